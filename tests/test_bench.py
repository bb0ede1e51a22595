"""`fastact bench` runs end to end and reports what it promises (no timing claims here)."""

import json

import numpy as np
import pytest

from fastact import bench
from fastact.cli import main


def test_median_seconds_times_every_candidate_in_rounds():
    order = []
    calls = {"a": lambda: order.append("a"), "b": lambda: order.append("b")}
    result = bench.median_seconds(calls, min_time=1e-4, repeats=3)
    assert set(result) == {"a", "b"} and all(v > 0 for v in result.values())
    # after calibration, the rounds alternate between the candidates
    timed = order[order.index("b"):]
    assert "a" in timed[timed.index("b"):], "candidates were not interleaved"


@pytest.mark.parametrize("op", bench.OPS)
def test_run_cell_reports_ratios_and_bar(op):
    cell = bench.run_cell(op, "forward", np.dtype(np.float32), 1 << 12, 1, min_time=1e-3)
    for key in ("fastact", "fastact_alloc", "copy", "numpy"):
        assert cell[key] > 0
    assert cell["ratio_to_fastest_peer"] == pytest.approx(cell["fastact"] / cell["numpy"])
    assert cell["meets_bar"] == (cell["ratio_to_fastest_peer"] <= 1 / bench.SPEEDUP_BAR
                                 or cell["copy_fraction"] >= bench.BANDWIDTH_BAR)


def test_cli_writes_table_and_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench", "--ops", "relu,gelu", "--directions", "backward", "--dtypes", "float64",
                 "--sizes", "2^12", "--threads", "1", "--quick", "--no-torch",
                 "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "cells meet the bar" in text and "| gelu | bac | float64 | 2^12 | 1 |" in text
    data = json.loads(out.read_text())
    assert [(c["op"], c["direction"], c["n"]) for c in data["cells"]] == [
        ("relu", "backward", 4096), ("gelu", "backward", 4096)]
    assert data["machine"]["fastact"]["simd_level"]


def test_cli_rejects_bad_sizes_and_ops():
    with pytest.raises(SystemExit):
        main(["bench", "--sizes", "100", "--no-torch"])
    with pytest.raises(SystemExit):
        main(["bench", "--ops", "softmax", "--no-torch"])


def test_cli_half_dtypes(tmp_path, capsys):
    pytest.importorskip("ml_dtypes")
    out = tmp_path / "bench.json"
    code = main(["bench", "--ops", "relu,prelu,gelu", "--dtypes", "float16,bfloat16",
                 "--sizes", "2^12", "--threads", "1", "--quick", "--no-torch",
                 "--json", str(out)])
    assert code == 0
    assert "| prelu | for | bfloat16 | 2^12 | 1 |" in capsys.readouterr().out
    cells = json.loads(out.read_text())["cells"]
    assert {c["dtype"] for c in cells} == {"float16", "bfloat16"}
    # the copy of a half array moves half-width bytes and is timed like the kernels
    assert all(c["copy"] > 0 and c["copy_fraction"] > 0 for c in cells)
