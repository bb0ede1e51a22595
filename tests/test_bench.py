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


@pytest.mark.parametrize("scale, dist", [(4.0, "normal"), (1.0, "t3")])
def test_run_cell_draws_inputs_at_the_given_scale(scale, dist, monkeypatch):
    seen = {}
    original = bench._inputs

    def spy(*args, **kwargs):
        x, g, w = original(*args, **kwargs)
        seen["x"] = x
        return x, g, w

    monkeypatch.setattr(bench, "_inputs", spy)
    cell = bench.run_cell("gelu", "forward", np.dtype(np.float32), 1 << 16, 1, min_time=1e-3,
                          scale=scale, dist=dist)
    assert cell["scale"] == scale and cell["dist"] == dist
    x = seen["x"].astype(np.float64)
    if dist == "normal":
        assert np.std(x) == pytest.approx(scale, rel=0.05)
    else:
        # Student's t(3): heavy tails, about 0.93 % beyond |x| = 6 (a normal: 2e-9)
        assert 0.006 < np.mean(np.abs(x) > 6) < 0.013


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tiny_dist_lands_where_gelu_is_subnormal(dtype):
    special = pytest.importorskip("scipy.special")
    x = bench._draw(np.random.default_rng(0), (10000,), "tiny", dtype)
    exact = x * special.ndtr(x)          # float64 reference of gelu(x)
    tiny = np.finfo(dtype).tiny
    assert np.all(np.abs(exact) < 8 * tiny)
    assert np.mean(np.abs(exact.astype(dtype)) < tiny) > 0.5


def test_cli_scale_and_dist_options(capsys):
    code = main(["bench", "--ops", "gelu", "--directions", "forward", "--dtypes", "float32",
                 "--sizes", "2^12", "--threads", "1", "--quick", "--no-torch",
                 "--scale", "8", "--dist", "t3"])
    assert code == 0
    assert "inputs 8 x t3" in capsys.readouterr().out
    for bad in (["--scale", "0"], ["--scale", "-1"], ["--scale", "nan"], ["--dist", "cauchy"]):
        with pytest.raises(SystemExit):
            main(["bench", "--no-torch", *bad])


@pytest.mark.parametrize("offset", [0, 8, 64, 2048, 4088])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_outputs_land_at_the_requested_page_offset(offset, dtype):
    x = np.ones(1000, dtype)
    out = bench._like_at_offset(x, offset)
    assert out.shape == x.shape and out.dtype == x.dtype and out.flags.c_contiguous
    assert (out.ctypes.data - x.ctypes.data) % 4096 == offset
    out[...] = 2                       # the whole view lies inside its buffer


def test_cli_out_offset_and_cpu_time(tmp_path):
    path = tmp_path / "cells.json"
    code = main(["bench", "--ops", "relu", "--directions", "forward", "--dtypes", "float32",
                 "--sizes", "2^12", "--threads", "1", "--quick", "--no-torch",
                 "--out-offset", "0", "--cpu-time", "--json", str(path)])
    assert code == 0
    (cell,) = json.loads(path.read_text())["cells"]
    assert cell["out_offset"] == 0 and cell["clock"] == "thread CPU"
    for bad in ("12", "-8", "4096"):
        with pytest.raises(SystemExit):
            main(["bench", "--no-torch", "--out-offset", bad])


NUMPY_TARGETS = ["X86_V3", "X86_V4", "AVX512_ICL", "AVX512_SPR"]


@pytest.mark.parametrize("level, aten, onednn, numpy_off", [
    ("baseline", "default", "SSE41", "X86_V3 X86_V4 AVX512_ICL AVX512_SPR"),
    ("avx2", "avx2", "AVX2", "X86_V4 AVX512_ICL AVX512_SPR"),
    ("avx512", "avx512", None, None),
])
def test_level_environment_caps_every_side(level, aten, onednn, numpy_off):
    env = bench.level_environment(level, NUMPY_TARGETS)
    assert env == {"FASTACT_SIMD": level, "ATEN_CPU_CAPABILITY": aten,
                   "ONEDNN_MAX_CPU_ISA": onednn, "NPY_DISABLE_CPU_FEATURES": numpy_off}


def test_level_environment_knows_numpy_1_feature_names():
    old = ["SSSE3", "SSE41", "AVX2", "FMA3", "AVX512F", "AVX512_SKX"]
    env = bench.level_environment("avx2", old)
    assert env["NPY_DISABLE_CPU_FEATURES"] == "AVX512F AVX512_SKX"
    with pytest.raises(ValueError, match="level must be one of"):
        bench.level_environment("sse4", old)


def test_cli_simd_runs_every_side_at_that_level(tmp_path, capsys, monkeypatch):
    for name in ("FASTACT_SIMD", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA",
                 "NPY_DISABLE_CPU_FEATURES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE")   # must be replaced
    path = tmp_path / "cells.json"
    code = main(["bench", "--simd", "baseline", "--ops", "relu", "--directions", "forward",
                 "--dtypes", "float32", "--sizes", "2^12", "--threads", "1", "--quick",
                 "--no-torch", "--json", str(path)])
    assert code == 0
    data = json.loads(path.read_text())
    assert data["machine"]["fastact"]["simd_level"] == "baseline"
    assert "FASTACT_SIMD='baseline'" in data["forced"]
    assert "ATEN_CPU_CAPABILITY='default'" in data["forced"]
    assert "ONEDNN_MAX_CPU_ISA='SSE41'" in data["forced"]
    with pytest.raises(SystemExit):
        main(["bench", "--simd", "sse4", "--no-torch"])


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("n", [0, 1, 4097, 1 << 17])
def test_threaded_copies_copy_every_byte(threads, n):
    import fastact
    from fastact import _kernels

    previous = fastact.get_num_threads()
    fastact.set_num_threads(threads)
    try:
        rng = np.random.default_rng(n)
        for dtype in (np.float32, np.float64):
            src = rng.standard_normal(n).astype(dtype)
            dst = np.zeros_like(src)
            _kernels.copy(src, dst)
            assert np.array_equal(dst.view(np.uint8), src.view(np.uint8))
        raw = rng.integers(0, 256, 2 * n + 1, dtype=np.uint8)    # odd byte count too
        for src in (raw[:2 * n], raw):
            dst = np.zeros_like(src)
            _kernels.copy_bytes(src, dst)
            assert np.array_equal(dst, src)
        with pytest.raises(ValueError, match="same number of bytes"):
            _kernels.copy_bytes(raw, raw[:-1].copy())
    finally:
        fastact.set_num_threads(previous)
