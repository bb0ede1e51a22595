"""tools/bench_tables.py turns bench JSON into the documentation's tables faithfully."""

import importlib.util
import json
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[1] / "tools" / "bench_tables.py"


@pytest.fixture(scope="module")
def tables():
    if not TOOL.exists():   # a run against an installed wheel has tests/ but not tools/
        pytest.skip("tools/bench_tables.py is not beside these tests (not part of the package)")
    spec = importlib.util.spec_from_file_location("bench_tables", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cell(op, n, threads, fastact, peer, meets, scale=1.0, dist="normal", alloc=1.0):
    return {"op": op, "direction": "forward", "dtype": "float32", "n": n,
            "threads": threads, "scale": scale, "dist": dist, "fastact": fastact,
            "torch": peer, "ratio_to_fastest_peer": fastact / peer, "copy_fraction": 0.5,
            "meets_bar": meets, "fastact_alloc": alloc, "torch_alloc": 1.0}


def write(tmp_path, name, level, cells):
    path = tmp_path / name
    path.write_text(json.dumps({"machine": {"fastact": {"simd_level": level}},
                                "cells": cells}))
    return str(path)


def test_count_misses_and_levels(tables, tmp_path):
    a = write(tmp_path, "a.json", "avx2", [
        cell("gelu", 1 << 16, 1, 2e-5, 4e-5, True),
        cell("gelu", 1 << 16, 2, 3e-5, 3e-5, False, alloc=1.2)])
    b = write(tmp_path, "b.json", "baseline", [
        cell("gelu", 1 << 16, 1, 4e-5, 2e-5, False),
        cell("gelu", 1 << 16, 2, 1e-5, 3e-5, True)])
    assert "| avx2 | σ=1 | 1/2 | 1/1 |" in tables.count([a])
    misses = tables.misses([a, b]).splitlines()
    assert len(misses) == 2 + 2
    assert "| avx2 | σ=1 | gelu | for | float32 | 2^16 | 2 | 0.458 | 0.458 | 1.00 | 50 |" in misses
    levels = tables.levels([a, b])
    assert "| avx2 | 1 of 2 | 1 of 1 | 1 of 2 |" in levels       # one alloc 1.2x PyTorch's
    assert "| baseline | 1 of 2 | 0 of 1 | 2 of 2 |" in levels
    assert ("| gelu | for | float32 | 2^16 | 1 | 0.305 | 0.610 | 2.00 | 50 | 0.610 | 0.305 | "
            "0.50 ✗ | 50 |") in levels


def test_scale_puts_each_input_in_a_column(tables, tmp_path):
    files = [write(tmp_path, f"s{i}.json", "avx512", [
        cell("gelu", 1 << 20, 1, 1e-4, peer, peer > 1.2e-4, scale=scale, dist=dist)])
        for i, (scale, dist, peer) in enumerate([(0.5, "normal", 3e-4), (1.0, "t3", 1e-4),
                                                 (1.0, "tiny", 2e-4)])]
    text = tables.scale(files)
    assert "| op | dir | dtype | N | thr | σ=0.5 | t(3) | subnormal results |" in text
    assert "| gelu | for | float32 | 2^20 | 1 | 3.00 | 1.00 ✗ | 2.00 |" in text
    assert "σ=0.5 1/1, t(3) 0/1, subnormal results 1/1" in text
    # a file with more cells (a full run) is counted over the first file's rows only
    full = write(tmp_path, "full.json", "avx512", [
        cell("gelu", 1 << 20, 1, 1e-4, 3e-4, True), cell("relu", 1 << 20, 1, 1e-4, 1e-4, False)])
    text = tables.scale([files[0], full])
    assert "σ=0.5 1/1, σ=1 1/1" in text and "relu" not in text


def test_rejects_a_file_that_is_not_bench_output(tables, tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{}")
    with pytest.raises(SystemExit, match="not a `fastact bench --json` file"):
        tables.count([str(path)])
