#!/usr/bin/env python3
"""Markdown tables from ``fastact bench --json`` files, for docs/benchmarks.md.

    python tools/bench_tables.py count FILE...    # cells meeting the bar, per file
    python tools/bench_tables.py misses FILE...   # every cell that misses, per file
    python tools/bench_tables.py scale FILE...    # one column per input scale / dist
    python tools/bench_tables.py levels FILE...   # full runs of several levels side by side

``scale`` expects the files of one SIMD level, one per ``--scale``/``--dist``;
its rows (and counts) are the first file's cells, so a full run can supply
the σ = 1 column. Ratios are the fastest peer's time
over fastact's (above 1: fastact is faster); a cell marked with a cross misses
the bar (at most 1/1.2 of the fastest peer's time, or 90 % of the copy).
"""

import argparse
import json


def load(path):
    with open(path) as handle:
        data = json.load(handle)
    if "cells" not in data:
        raise SystemExit(f"{path}: not a `fastact bench --json` file (no 'cells')")
    return data


def level_of(data):
    return data["machine"]["fastact"]["simd_level"]


def input_of(cell):
    if cell["dist"] == "normal":
        return f"σ={cell['scale']:g}"
    return {"t3": "t(3)", "tiny": "subnormal results"}.get(cell["dist"], cell["dist"])


def speedup(cell):
    return 1.0 / cell["ratio_to_fastest_peer"]


def size_label(n):
    return f"2^{n.bit_length() - 1}" if n & (n - 1) == 0 else str(n)


def key(cell):
    return (cell["op"], cell["direction"][:3], cell["dtype"], cell["n"], cell["threads"])


def count(paths):
    rows = ["| file | level | input | cells meeting the bar | at 1 thread |",
            "| --- | --- | --- | --- | --- |"]
    for path in paths:
        data = load(path)
        cells = data["cells"]
        one = [c for c in cells if c["threads"] == 1]
        rows.append(f"| {path} | {level_of(data)} | {input_of(cells[0])} | "
                    f"{sum(c['meets_bar'] for c in cells)}/{len(cells)} | "
                    f"{sum(c['meets_bar'] for c in one)}/{len(one)} |")
    return "\n".join(rows)


def misses(paths):
    rows = ["| level | input | op | dir | dtype | N | thr | fastact ns/el | torch ns/el | "
            "peer / fastact | copy % |", "|" + " --- |" * 11]
    for path in paths:
        data = load(path)
        for c in data["cells"]:
            if c["meets_bar"]:
                continue
            torch = f"{c['torch'] / c['n'] * 1e9:.3f}" if "torch" in c else "-"
            rows.append(f"| {level_of(data)} | {input_of(c)} | {c['op']} | "
                        f"{c['direction'][:3]} | {c['dtype']} | {size_label(c['n'])} | "
                        f"{c['threads']} | {c['fastact'] / c['n'] * 1e9:.3f} | {torch} | "
                        f"{speedup(c):.2f} | {100 * c['copy_fraction']:.0f} |")
    return "\n".join(rows)


def scale(paths):
    runs = [load(p) for p in paths]
    inputs = [input_of(r["cells"][0]) for r in runs]
    by_input = [{key(c): c for c in r["cells"]} for r in runs]
    head = ["op", "dir", "dtype", "N", "thr"] + inputs
    rows = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for k in by_input[0]:
        marks = []
        for cells in by_input:
            c = cells.get(k)
            marks.append("-" if c is None else
                         f"{speedup(c):.2f}" + ("" if c["meets_bar"] else " ✗"))
        op, direction, dtype, n, threads = k
        rows.append(f"| {op} | {direction} | {dtype} | {size_label(n)} | {threads} | "
                    + " | ".join(marks) + " |")
    # counted over the first file's cells, so a full run can supply one column
    keys = list(by_input[0])
    met = [sum(cells[k]["meets_bar"] for k in keys if k in cells) for cells in by_input]
    total = [sum(k in cells for k in keys) for cells in by_input]
    rows.append("\nCells meeting the bar: " + ", ".join(
        f"{i} {m}/{t}" for i, m, t in zip(inputs, met, total)))
    return "\n".join(rows)


def alloc_within(cell, margin=1.1):
    """The allocating call takes at most ``margin`` times PyTorch's (True without torch)."""
    return "torch_alloc" not in cell or cell["fastact_alloc"] <= margin * cell["torch_alloc"]


def levels(paths):
    runs = [load(p) for p in paths]
    names = [level_of(r) for r in runs]
    rows = ["| level | cells meeting the bar | at 1 thread | allocating call within 10 % "
            "of PyTorch's |", "| --- | --- | --- | --- |"]
    for name, run in zip(names, runs):
        cells = run["cells"]
        one = [c for c in cells if c["threads"] == 1]
        rows.append(f"| {name} | {sum(c['meets_bar'] for c in cells)} of {len(cells)} | "
                    f"{sum(c['meets_bar'] for c in one)} of {len(one)} | "
                    f"{sum(alloc_within(c) for c in cells)} of {len(cells)} |")
    rows.append("")
    head = ["op", "dir", "dtype", "N", "thr"]
    for name in names:
        head += [f"{name}: fastact ns/el", "torch ns/el", "ratio", "copy %"]
    rows += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    by_level = [{key(c): c for c in r["cells"]} for r in runs]
    for k in by_level[0]:
        op, direction, dtype, n, threads = k
        row = [op, direction, dtype, size_label(n), str(threads)]
        for cells in by_level:
            c = cells.get(k)
            if c is None:
                row += ["-"] * 4
                continue
            torch = f"{c['torch'] / c['n'] * 1e9:.3f}" if "torch" in c else "-"
            row += [f"{c['fastact'] / c['n'] * 1e9:.3f}", torch,
                    f"{speedup(c):.2f}" + ("" if c["meets_bar"] else " ✗"),
                    f"{100 * c['copy_fraction']:.0f}"]
        rows.append("| " + " | ".join(row) + " |")
    return "\n".join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("table", choices=("count", "misses", "scale", "levels"))
    parser.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    tables = {"count": count, "misses": misses, "scale": scale, "levels": levels}
    print(tables[args.table](args.files))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
