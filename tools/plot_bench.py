#!/usr/bin/env python3
"""Plot a ``fastact bench --json`` file: speed against size, per kernel.

    fastact bench --json bench.json [options]
    python tools/plot_bench.py bench.json --out docs/_static/bench

For each dtype in the file it writes two figures, ``<out>-time-<dtype>.png``
(time per element against the number of elements) and
``<out>-copy-<dtype>.png`` (bandwidth as a fraction of a plain copy's),
each with one panel per kernel (op x direction) and one line per candidate:
fastact, NumPy/SciPy, PyTorch (when the file has it) and, in the time plot,
the copy of the same bytes.  With several thread counts in the file, one
thread count is drawn (``--threads``, default: the smallest).

Bytes moved are counted as ``fastact bench`` counts them: 2 arrays of x's
size for a forward pass, 3 for a backward pass; the copy moves 2 arrays, so
a peer's fraction is (bytes / its time) / (2 x x's bytes / the copy's time).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

OPS = ("relu", "leaky_relu", "prelu", "gelu", "gelu_tanh")
DIRECTIONS = ("forward", "backward")
STYLE = {  # candidate -> (label, colour, marker)
    "fastact": ("fastact", "C0", "o"),
    "numpy": ("NumPy/SciPy", "C1", "s"),
    "torch": ("PyTorch", "C2", "^"),
    "copy": ("copy (same bytes)", "0.5", ""),
}


def load(path):
    with open(path) as handle:
        data = json.load(handle)
    if "cells" not in data or "machine" not in data:
        raise SystemExit(f"{path}: not a `fastact bench --json` file (no 'cells'/'machine')")
    return data


def copy_fraction(cell, candidate):
    """Bytes moved per second by `candidate`, as a fraction of the copy's rate."""
    arrays = 2 if cell["direction"] == "forward" else 3
    return (arrays / cell[candidate]) / (2 / cell["copy"])


def series(cells, op, direction, dtype, threads, candidate, metric):
    """Sorted (sizes, values) of one candidate's line, or None when absent."""
    rows = sorted((c["n"], c) for c in cells
                  if c["op"] == op and c["direction"] == direction and c["dtype"] == dtype
                  and c["threads"] == threads and candidate in c)
    if not rows:
        return None
    sizes = np.array([n for n, _ in rows], dtype=float)
    if metric == "time":
        values = np.array([c[candidate] / n * 1e9 for n, c in rows])
    else:
        values = np.array([copy_fraction(c, candidate) for _, c in rows])
    return sizes, values


def title_line(data, threads):
    m = data["machine"]
    fa = m.get("fastact", {})
    return (f"fastact {fa.get('version', '?')} on {m.get('processor', '?')} ({m.get('cpus', '?')} CPUs), "
            f"SIMD {fa.get('simd_level', '?')}, NumPy {m.get('numpy', '?')}, {threads} thread(s)")


def plot(data, dtype, threads, metric, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = data["cells"]
    candidates = ["fastact", "numpy", "torch"] + (["copy"] if metric == "time" else [])
    fig, axes = plt.subplots(len(DIRECTIONS), len(OPS), figsize=(3.2 * len(OPS), 5.6),
                             sharex=True, sharey="row" if metric == "copy" else False,
                             squeeze=False, constrained_layout=True)
    drawn = set()
    for row, direction in enumerate(DIRECTIONS):
        for col, op in enumerate(OPS):
            ax = axes[row][col]
            for candidate in candidates:
                line = series(cells, op, direction, dtype, threads, candidate, metric)
                if line is None:
                    continue
                label, colour, marker = STYLE[candidate]
                ax.plot(*line, color=colour, marker=marker, markersize=4, label=label,
                        linestyle="--" if candidate == "copy" else "-")
                drawn.add(candidate)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            if metric == "copy":
                ax.axhline(1.0, color="0.5", linewidth=0.8, linestyle="--")
            ax.set_title(f"{op} {direction}", fontsize=10)
            ax.grid(True, which="major", alpha=0.3)
            if row == len(DIRECTIONS) - 1:
                ax.set_xlabel("elements")
            if col == 0:
                ax.set_ylabel("ns per element" if metric == "time" else "fraction of copy bandwidth")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), frameon=False)
    what = "time per element" if metric == "time" else "bandwidth as a fraction of a copy's"
    fig.suptitle(f"{what}, {dtype}\n{title_line(data, threads)}", fontsize=10)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return drawn


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", help="a file written by `fastact bench --json`")
    parser.add_argument("--out", default="bench", help="path prefix of the PNG files (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None,
                        help="the thread count to draw (default: the smallest in the file)")
    args = parser.parse_args(argv)
    data = load(args.json)
    cells = data["cells"]
    if not cells:
        raise SystemExit(f"{args.json}: no cells")
    thread_counts = sorted({c["threads"] for c in cells})
    threads = args.threads if args.threads is not None else thread_counts[0]
    if threads not in thread_counts:
        raise SystemExit(f"--threads {threads}: the file has {thread_counts}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for dtype in sorted({c["dtype"] for c in cells}):
        for metric in ("time", "copy"):
            path = out.parent / f"{out.name}-{metric}-{dtype}.png"
            plot(data, dtype, threads, metric, path)
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
