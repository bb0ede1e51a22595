"""``fastact bench``: fastact against NumPy/SciPy, PyTorch and a plain copy, side by side.

Each cell is one kernel x dtype x size x thread count.  In one process and
one run, with a preallocated ``out=`` on every side, it times:

* fastact's kernel;
* the idiomatic NumPy/SciPy formula (``np.maximum(x, 0, out=o)``, ...);
* PyTorch's CPU kernel with ``out=`` (or its aten backward kernel), when
  torch is installed;
* a plain threaded copy of the same bytes at the same thread count: the
  memory-bandwidth floor.

The candidates of a cell are timed in interleaved rounds.  It reports the
median ns/element of the repeated timings, fastact's effective
GB/s, the fraction of the copy bandwidth it reaches, the ratio of its time to
the fastest peer's, and whether the cell meets the bar: at most 1/1.2 of the
fastest peer's time, or at least 90 % of the copy bandwidth.  The allocating
call (no ``out=``) is timed beside it against PyTorch's allocating call.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

import fastact
from fastact import _kernels

OPS = ("relu", "leaky_relu", "prelu", "gelu", "gelu_tanh")
DIRECTIONS = ("forward", "backward")
SIZES = (1 << 12, 1 << 16, 1 << 20, 1 << 24)
QUICK_SIZES = (1 << 12, 1 << 20)
PRELU_CHANNELS = 256
SLOPE = 0.01
SPEEDUP_BAR = 1.2         # fastact at most 1/1.2 of the fastest peer's time...
BANDWIDTH_BAR = 0.90      # ...or at least 90 % of the copy bandwidth


# ------------------------------------------------------------------ timing --

def _calls_per_sample(call, min_time, clock=time.perf_counter):
    """How many back-to-back calls make one sample of about min_time/4 seconds."""
    call()  # warm up (page faults, thread pool start)
    number = 1
    while True:
        start = clock()
        for _ in range(number):
            call()
        elapsed = clock() - start
        if elapsed >= min_time / 4 or number >= 1 << 20:
            break
        number *= 4
    return max(1, int(number * (min_time / 4) / max(elapsed, 1e-9)))


def median_seconds(calls, min_time=0.02, repeats=7, clock=time.perf_counter):
    """Median seconds per call of each of `calls` (a dict name -> callable).

    The candidates are timed in interleaved rounds (a sample of each, then
    the next round) rather than one after the other, so a change in the
    machine's load during the cell weighs on all of them alike and the
    ratios between them stay meaningful on a shared host.  `clock` is
    time.perf_counter (wall time) or, for calls that run on the calling
    thread alone, time.thread_time: its CPU time, which the time spent
    waiting for a core on a busy host does not inflate.
    """
    numbers = {name: _calls_per_sample(call, min_time, clock) for name, call in calls.items()}
    samples = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            number = numbers[name]
            start = clock()
            for _ in range(number):
                call()
            samples[name].append((clock() - start) / number)
    return {name: statistics.median(times) for name, times in samples.items()}


# ------------------------------------------------------------------ inputs --

DISTRIBUTIONS = ("normal", "t3", "tiny")

# Where GELU's result is subnormal or about to underflow: gelu(x) ~ -phi(x)
# falls below the smallest normal number at x ~ -13.2 in float32 (and the half
# types, computed in float32) and at x ~ -37.6 in float64.
_TINY_RESULT_RANGE = {"float64": (-38.6, -37.6)}
_TINY_RESULT_RANGE_FLOAT32 = (-14.5, -13.0)


def _draw(rng, shape, dist, dtype="float32"):
    """Unit-scale samples: standard normal, Student's t with 3 degrees of freedom,
    or ("tiny") uniform over the x where GELU's result in ``dtype`` is subnormal."""
    if dist == "t3":
        return rng.standard_t(3, shape)
    if dist == "tiny":
        low, high = _TINY_RESULT_RANGE.get(np.dtype(dtype).name, _TINY_RESULT_RANGE_FLOAT32)
        return rng.uniform(low, high, shape)
    return rng.standard_normal(shape)


def _inputs(op, n, dtype, rng, scale=1.0, dist="normal"):
    """x, grad_output, weight for a cell; PReLU gets a 2-D (n/256, 256) array.

    x is `scale` times a draw from `dist` (GELU's cost depends on how many
    elements lie outside its near range); grad_output stays N(0, 1).
    """
    shape = (n // PRELU_CHANNELS, PRELU_CHANNELS) if op == "prelu" else (n,)
    x = (scale * _draw(rng, shape, dist, dtype)).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    w = rng.uniform(0.05, 0.5, PRELU_CHANNELS).astype(dtype)
    return x, g, w


HALF_DTYPES = ("float16", "bfloat16")


def resolve_dtype(name):
    """np.dtype of a dtype name; bfloat16 comes from ml_dtypes (fastact[half])."""
    if name == "bfloat16":
        try:
            import ml_dtypes
        except ImportError:
            raise SystemExit("fastact bench: bfloat16 needs ml_dtypes "
                             "(pip install 'fastact[half]')") from None
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def _copy_call(x, out_offset=None):
    """A threaded copy of x's bytes (half types have no float loop of their own),
    into a destination placed like the outputs (see _like_at_offset)."""
    src = x.ravel()
    dst = np.empty_like(src) if out_offset is None else _like_at_offset(src, out_offset)
    if src.dtype.itemsize == 2:   # bfloat16 has no buffer format: copy it as uint16
        src, dst = src.view(np.uint16), dst.view(np.uint16)
        return lambda: _kernels.copy_bytes(src, dst)
    return lambda: _kernels.copy(src, dst)


def _half_numpy_call(op, direction, x, g, w, out):
    """NumPy's formula on a half type, or None where NumPy/SciPy have no loop for it."""
    call = _numpy_call(op, direction, x, g, w, out)
    try:
        with np.errstate(all="ignore"):
            call()
    except (TypeError, ValueError):   # ufunc loop or promotion missing
        return None
    return call


def _fastact_calls(op, direction, x, g, w, out):
    """(call with out=, allocating call) for fastact."""
    approximate = "tanh" if op == "gelu_tanh" else "none"
    if direction == "forward":
        return {
            "relu": (lambda: fastact.relu(x, out=out), lambda: fastact.relu(x)),
            "leaky_relu": (lambda: fastact.leaky_relu(x, SLOPE, out=out),
                           lambda: fastact.leaky_relu(x, SLOPE)),
            "prelu": (lambda: fastact.prelu(x, w, out=out), lambda: fastact.prelu(x, w)),
            "gelu": (lambda: fastact.gelu(x, out=out), lambda: fastact.gelu(x)),
            "gelu_tanh": (lambda: fastact.gelu(x, approximate, out=out),
                          lambda: fastact.gelu(x, approximate)),
        }[op]
    return {
        "relu": (lambda: fastact.relu_backward(g, x, out=out),
                 lambda: fastact.relu_backward(g, x)),
        "leaky_relu": (lambda: fastact.leaky_relu_backward(g, x, SLOPE, out=out),
                       lambda: fastact.leaky_relu_backward(g, x, SLOPE)),
        # prelu_backward allocates its two results: no out= form exists.
        "prelu": (lambda: fastact.prelu_backward(g, x, w),
                  lambda: fastact.prelu_backward(g, x, w)),
        "gelu": (lambda: fastact.gelu_backward(g, x, out=out),
                 lambda: fastact.gelu_backward(g, x)),
        "gelu_tanh": (lambda: fastact.gelu_backward(g, x, approximate, out=out),
                      lambda: fastact.gelu_backward(g, x, approximate)),
    }[op]


def _numpy_call(op, direction, x, g, w, out):
    """The idiomatic NumPy/SciPy formula with out= where NumPy allows it."""
    from scipy import special

    dtype = x.dtype.type
    half, slope = dtype(0.5), dtype(SLOPE)
    inv_sqrt2 = dtype(1 / np.sqrt(2))
    c, k = dtype(np.sqrt(2 / np.pi)), dtype(0.044715)
    mask = np.empty(x.shape, bool)
    tmp = np.empty_like(x)

    def gelu_forward():
        np.multiply(x, inv_sqrt2, out=tmp)
        special.erf(tmp, out=tmp)
        np.add(tmp, 1, out=tmp)
        np.multiply(tmp, x, out=out)
        np.multiply(out, half, out=out)

    def gelu_backward():
        np.multiply(x, inv_sqrt2, out=tmp)
        special.erf(tmp, out=tmp)
        np.add(tmp, 1, out=tmp)
        np.multiply(tmp, half, out=tmp)                     # Phi(x)
        np.multiply(x, x, out=out)
        np.multiply(out, -half, out=out)
        np.exp(out, out=out)
        np.multiply(out, x, out=out)
        np.multiply(out, dtype(1 / np.sqrt(2 * np.pi)), out=out)  # x * phi(x)
        np.add(out, tmp, out=out)
        np.multiply(out, g, out=out)

    def tanh_inner():
        np.multiply(x, x, out=tmp)
        np.multiply(tmp, k, out=tmp)
        np.add(tmp, 1, out=tmp)
        np.multiply(tmp, x, out=tmp)
        np.multiply(tmp, c, out=tmp)
        np.tanh(tmp, out=tmp)                               # t

    def gelu_tanh_forward():
        tanh_inner()
        np.add(tmp, 1, out=tmp)
        np.multiply(tmp, x, out=out)
        np.multiply(out, half, out=out)

    def gelu_tanh_backward():
        tanh_inner()
        np.multiply(tmp, tmp, out=out)
        np.subtract(1, out, out=out)                        # 1 - t^2
        np.multiply(out, half * c, out=out)
        np.multiply(out, x, out=out)
        np.multiply(out, 1 + 3 * k * x * x, out=out)
        np.add(tmp, 1, out=tmp)
        np.multiply(tmp, half, out=tmp)
        np.add(out, tmp, out=out)
        np.multiply(out, g, out=out)

    def prelu_backward():
        np.greater(x, 0, out=mask)
        grad_input = np.where(mask, g, g * w)
        contribution = np.where(mask, 0, g * x)
        return grad_input, contribution.sum(axis=0)

    table = {
        ("relu", "forward"): lambda: np.maximum(x, 0, out=out),
        ("relu", "backward"): lambda: np.multiply(g, x > 0, out=out),
        ("leaky_relu", "forward"): lambda: np.where(x > 0, x, x * slope),
        ("leaky_relu", "backward"): lambda: np.where(x > 0, g, g * slope),
        ("prelu", "forward"): lambda: np.where(x > 0, x, x * w),
        ("prelu", "backward"): prelu_backward,
        ("gelu", "forward"): gelu_forward,
        ("gelu", "backward"): gelu_backward,
        ("gelu_tanh", "forward"): gelu_tanh_forward,
        ("gelu_tanh", "backward"): gelu_tanh_backward,
    }
    return table[(op, direction)]


def _torch_calls(torch, op, direction, x, g, w, out=None):
    """(call with out=, allocating call) for PyTorch's CPU kernels, or None."""
    aten = torch.ops.aten
    if x.dtype.name == "bfloat16":   # the same buffers as torch.bfloat16
        tx, tg, tw = (torch.from_numpy(a.view(np.int16)).view(torch.bfloat16) for a in (x, g, w))
        to = torch.empty_like(tx) if out is None else (
            torch.from_numpy(out.view(np.int16)).view(torch.bfloat16))
    else:
        tx, tg, tw = torch.from_numpy(x), torch.from_numpy(g), torch.from_numpy(w)
        to = torch.empty_like(tx) if out is None else torch.from_numpy(out)
    approximate = "tanh" if op == "gelu_tanh" else "none"
    F = torch.nn.functional
    if direction == "forward":
        return {
            "relu": (lambda: aten.relu.out(tx, out=to), lambda: torch.relu(tx)),
            "leaky_relu": (lambda: aten.leaky_relu.out(tx, SLOPE, out=to),
                           lambda: F.leaky_relu(tx, SLOPE)),
            "prelu": (lambda: aten._prelu_kernel(tx, tw), lambda: F.prelu(tx, tw)),
            "gelu": (lambda: aten.gelu.out(tx, approximate="none", out=to),
                     lambda: F.gelu(tx)),
            "gelu_tanh": (lambda: aten.gelu.out(tx, approximate="tanh", out=to),
                          lambda: F.gelu(tx, approximate="tanh")),
        }[op]

    def prelu_backward():
        grad_input, grad_weight = aten._prelu_kernel_backward(tg, tx, tw)
        return grad_input, grad_weight.sum(0)

    return {
        "relu": (lambda: aten.threshold_backward.grad_input(tg, tx, 0, grad_input=to),
                 lambda: aten.threshold_backward(tg, tx, 0)),
        "leaky_relu": (
            lambda: aten.leaky_relu_backward.grad_input(tg, tx, SLOPE, False, grad_input=to),
            lambda: aten.leaky_relu_backward(tg, tx, SLOPE, False)),
        "prelu": (prelu_backward, prelu_backward),
        "gelu": (lambda: aten.gelu_backward.grad_input(tg, tx, approximate="none",
                                                       grad_input=to),
                 lambda: aten.gelu_backward(tg, tx, approximate="none")),
        "gelu_tanh": (lambda: aten.gelu_backward.grad_input(tg, tx, approximate=approximate,
                                                            grad_input=to),
                      lambda: aten.gelu_backward(tg, tx, approximate=approximate)),
    }[op]


# ------------------------------------------------------------------- cells --

def _like_at_offset(x, offset):
    """An uninitialised array like x (C order) whose data starts `offset`
    bytes past x's modulo 4096: 0 puts each output element on the same page
    offset as its input, where a store and a later load of the other array
    can look alike to the CPU's memory disambiguation (4K aliasing)."""
    if offset % x.itemsize:
        raise ValueError(f"out offset {offset} must be a multiple of the item size {x.itemsize}")
    raw = np.empty(x.nbytes + 8192, np.uint8)
    start = (x.ctypes.data + offset - raw.ctypes.data) % 4096
    return raw[start:start + x.nbytes].view(x.dtype).reshape(x.shape)


def run_cell(op, direction, dtype, n, threads, torch=None, rng=None, min_time=0.02,
             scale=1.0, dist="normal", out_offset=None, cpu_time=False, numpy=True):
    """Time one cell; returns a dict of seconds per call and derived figures.

    The input x is `scale` times a draw from `dist` ("normal" or "t3").
    `out_offset` (bytes): place every output (fastact's and the peers') at
    that offset from x modulo 4096 (None: wherever NumPy puts it).
    `cpu_time`: time 1-thread cells with the thread's CPU time.
    `numpy`: False leaves the NumPy/SciPy formula out.
    """
    rng = rng or np.random.default_rng(0)
    x, g, w = _inputs(op, n, dtype, rng, scale, dist)
    out = np.empty_like(x) if out_offset is None else _like_at_offset(x, out_offset)
    fastact.set_num_threads(threads)
    if torch is not None:
        torch.set_num_threads(threads)
    arrays = 2 if direction == "forward" else 3
    nbytes = arrays * x.nbytes
    with_out, allocating = _fastact_calls(op, direction, x, g, w, out)
    calls = {
        "fastact": with_out,
        "fastact_alloc": allocating,
        "copy": _copy_call(x, out_offset),
        "numpy": (_half_numpy_call if x.dtype.name in HALF_DTYPES else _numpy_call)(
            op, direction, x, g, w, out),
    }
    if calls["numpy"] is None or not numpy:
        del calls["numpy"]
    if torch is not None:
        torch_out = None if out_offset is None else _like_at_offset(x, out_offset)
        calls["torch"], calls["torch_alloc"] = _torch_calls(torch, op, direction, x, g, w,
                                                            torch_out)
    cell = {"op": op, "direction": direction, "dtype": np.dtype(dtype).name, "n": n,
            "threads": threads, "scale": scale, "dist": dist}
    clock = time.thread_time if cpu_time and threads == 1 else time.perf_counter
    cell.update(median_seconds(calls, min_time, clock=clock))
    cell["clock"] = "thread CPU" if clock is time.thread_time else "wall"
    cell["out_offset"] = out_offset
    # Copy bandwidth: the copy moves 2 arrays (read + write) of x's size.
    copy_bandwidth = 2 * x.nbytes / cell["copy"]
    cell["gb_per_s"] = nbytes / cell["fastact"] / 1e9
    cell["copy_fraction"] = (nbytes / cell["fastact"]) / copy_bandwidth
    peers = [cell[k] for k in ("numpy", "torch") if k in cell]
    cell["ratio_to_fastest_peer"] = cell["fastact"] / min(peers) if peers else float("nan")
    cell["meets_bar"] = bool(cell["ratio_to_fastest_peer"] <= 1 / SPEEDUP_BAR
                             or cell["copy_fraction"] >= BANDWIDTH_BAR)
    if "torch_alloc" in cell:
        cell["alloc_not_slower_than_torch"] = bool(cell["fastact_alloc"] <= cell["torch_alloc"])
    return cell


def _try_import_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def machine_description():
    """A few facts about where the numbers come from."""
    info = fastact._config()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {
        "machine": platform.machine(),
        "processor": _cpu_model(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "fastact": info,
        "load_average_1min": load,
    }


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


# ------------------------------------------------------------- SIMD level --

# PyTorch's name for each fastact level.  ATEN_CPU_CAPABILITY alone does not
# reach PyTorch's exact GELU on float32/bfloat16: that runs oneDNN, whose JIT
# picks its own ISA (AVX-512 on an AVX-512 machine even under
# ATEN_CPU_CAPABILITY=avx2), so oneDNN is capped too.  SSE4.1 is oneDNN's
# lowest ISA; None leaves oneDNN at the CPU's best.
_ATEN_CAPABILITY = {"baseline": "default", "avx2": "avx2", "avx512": "avx512"}
_ONEDNN_MAX_ISA = {"baseline": "SSE41", "avx2": "AVX2", "avx512": None}
_FORCED_VARIABLES = ("FASTACT_SIMD", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA",
                     "NPY_DISABLE_CPU_FEATURES")


def _numpy_dispatch_targets():
    """The CPU features NumPy can pick its loops for at run time (its dispatch list)."""
    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:  # NumPy 1.x
        from numpy.core import _multiarray_umath as umath
    return list(getattr(umath, "__cpu_dispatch__", ()))


def level_environment(level, numpy_dispatch=None):
    """The environment that puts fastact, PyTorch and NumPy on one SIMD level.

    Parameters
    ----------
    level : {"baseline", "avx2", "avx512"}
        fastact's level (``FASTACT_SIMD``).
    numpy_dispatch : list of str, optional
        NumPy's run-time dispatch targets; by default the running NumPy's.

    Returns
    -------
    dict
        Variable name to value, or to None for a variable that must be unset.
        NumPy's dispatch targets above the level are disabled; NumPy cannot go
        below its build's baseline (SSE4.2 for NumPy 2.x wheels), so a
        ``baseline`` run still gives NumPy that.
    """
    if level not in _ATEN_CAPABILITY:
        raise ValueError(f"level must be one of {sorted(_ATEN_CAPABILITY)}, got {level!r}")
    targets = _numpy_dispatch_targets() if numpy_dispatch is None else numpy_dispatch
    if level == "baseline":
        above = list(targets)
    elif level == "avx2":
        above = [t for t in targets if t.startswith("AVX512") or t == "X86_V4"]
    else:
        above = []
    return {
        "FASTACT_SIMD": level,
        "ATEN_CPU_CAPABILITY": _ATEN_CAPABILITY[level],
        "ONEDNN_MAX_CPU_ISA": _ONEDNN_MAX_ISA[level],
        "NPY_DISABLE_CPU_FEATURES": " ".join(above) or None,
    }


def _environment_matches(wanted, environ):
    return all(environ.get(name) == value for name, value in wanted.items())


def _rerun_at_level(level, argv):
    """Run this bench again in a process whose environment forces every side to ``level``.

    NumPy reads its variable when imported, before any command runs, so the
    level cannot be changed in this process.
    """
    wanted = level_environment(level)
    env = {k: v for k, v in os.environ.items() if k not in wanted}
    env.update({k: v for k, v in wanted.items() if v is not None})
    shown = " ".join(f"{k}={v!r}" for k, v in wanted.items() if v is not None)
    print(f"# fastact bench: running again with {shown}", flush=True)
    return subprocess.call([sys.executable, "-m", "fastact", *argv], env=env)


def _forced_levels():
    """What each side runs at, from the environment, for the header line."""
    return ", ".join(f"{name}={os.environ[name]!r}" for name in _FORCED_VARIABLES
                     if os.environ.get(name))


# ------------------------------------------------------------------ output --

def format_table(cells):
    """A Markdown table of the cells."""
    has_torch = any("torch" in c for c in cells)
    header = ["op", "dir", "dtype", "N", "thr", "fastact ns/el", "GB/s", "copy %",
              "numpy ns/el"]
    if has_torch:
        header += ["torch ns/el"]
    header += ["fastest peer / fastact", "bar", "alloc fastact µs"]
    if has_torch:
        header += ["alloc torch µs"]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for c in cells:
        n = c["n"]
        row = [c["op"], c["direction"][:3], c["dtype"], f"2^{n.bit_length() - 1}",
               str(c["threads"]), f"{c['fastact'] / n * 1e9:.3f}", f"{c['gb_per_s']:.1f}",
               f"{100 * c['copy_fraction']:.0f}",
               f"{c['numpy'] / n * 1e9:.3f}" if "numpy" in c else "-"]
        if has_torch:
            row.append(f"{c['torch'] / n * 1e9:.3f}" if "torch" in c else "-")
        row += [f"{1 / c['ratio_to_fastest_peer']:.2f}x", "ok" if c["meets_bar"] else "MISS",
                f"{c['fastact_alloc'] * 1e6:.1f}"]
        if has_torch:
            row.append(f"{c['torch_alloc'] * 1e6:.1f}" if "torch_alloc" in c else "-")
        rows.append("| " + " | ".join(row) + " |")
    return "\n".join(rows)


# --------------------------------------------------------------------- CLI --

# Argument types raise argparse.ArgumentTypeError so that its message, not
# argparse's generic "invalid value", reaches the user (with status 2).

def _csv(kind, allowed):
    def parse(text):
        items = [item.strip() for item in text.split(",") if item.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"no {kind} given")
        for item in items:
            if item not in allowed:
                raise argparse.ArgumentTypeError(
                    f"unknown {kind} {item!r}; choose from {', '.join(allowed)}")
        return items
    return parse


def _sizes(text):
    sizes = []
    for item in text.split(","):
        item = item.strip()
        try:
            value = 2 ** int(item[2:]) if item.startswith("2^") else int(item)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"size {item!r} is not an integer or 2^K") from None
        if value < PRELU_CHANNELS or value % PRELU_CHANNELS:
            raise argparse.ArgumentTypeError(
                f"size {item} must be a positive multiple of {PRELU_CHANNELS}")
        sizes.append(value)
    return sizes


def _thread_counts(text):
    try:
        counts = [int(v) for v in text.split(",")]
    except ValueError:
        counts = [0]
    if min(counts) < 1:
        raise argparse.ArgumentTypeError(
            f"expected positive thread counts like 1,2, got {text!r}")
    return counts


def _positive_float(text):
    import argparse
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 and np.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text!r}")
    return value


def register(subparsers):
    """Add the ``bench`` subcommand."""
    parser = subparsers.add_parser(
        "bench", help="time fastact against NumPy/SciPy, PyTorch and a plain copy",
        description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=_csv("op", OPS), default=list(OPS),
                        help="comma-separated ops (default: all)")
    parser.add_argument("--directions", type=_csv("direction", DIRECTIONS),
                        default=list(DIRECTIONS))
    parser.add_argument("--dtypes", type=_csv("dtype", ("float32", "float64") + HALF_DTYPES),
                        default=["float32", "float64"],
                        help="comma-separated dtypes (default: float32,float64; also "
                             "float16, bfloat16)")
    parser.add_argument("--sizes", type=_sizes, default=None,
                        help="comma-separated element counts, e.g. 2^12,2^20 (default: "
                             "2^12,2^16,2^20,2^24; --quick: 2^12,2^20)")
    parser.add_argument("--threads", type=_thread_counts,
                        default=[1, 2], help="comma-separated thread counts (default: 1,2)")
    parser.add_argument("--scale", type=_positive_float, default=1.0,
                        help="inputs are SCALE times the --dist draw (default 1)")
    parser.add_argument("--dist", choices=DISTRIBUTIONS, default="normal",
                        help="input distribution: normal (default), t3 (Student's t "
                             "with 3 degrees of freedom: heavy tails) or tiny (uniform over "
                             "the x where GELU's result is subnormal: [-14.5, -13] for "
                             "float32 and the half types, [-38.6, -37.6] for float64)")
    parser.add_argument("--out-offset", type=int, default=None, metavar="BYTES",
                        help="place the outputs BYTES past the input modulo 4096 (0: the same "
                             "page offset, where 4K aliasing can slow a loop; default: "
                             "wherever NumPy allocates them)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time 1-thread cells with the thread's CPU time instead of wall "
                             "time (steadier on a busy, shared host)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer sizes and shorter timings (under a minute)")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    parser.add_argument("--no-numpy", action="store_true",
                        help="leave the NumPy/SciPy formulas out (on float16 they take "
                             "seconds per call at 2^24)")
    parser.add_argument("--simd", choices=sorted(_ATEN_CAPABILITY), default=None,
                        help="run every side at one SIMD level: sets FASTACT_SIMD, "
                             "ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA (PyTorch's exact GELU "
                             "runs oneDNN) and NPY_DISABLE_CPU_FEATURES, and runs again")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.set_defaults(func=_main)


def _main(args):
    if args.simd and not _environment_matches(level_environment(args.simd), os.environ):
        return _rerun_at_level(args.simd, args.argv)
    try:
        sizes = args.sizes or list(QUICK_SIZES if args.quick else SIZES)
    except ValueError as exc:
        raise SystemExit(f"fastact bench: {exc}")
    if args.out_offset is not None and not (0 <= args.out_offset < 4096
                                            and args.out_offset % 8 == 0):
        raise SystemExit("fastact bench: --out-offset must be a multiple of 8 in [0, 4096), "
                         f"got {args.out_offset}")
    torch = None if args.no_torch else _try_import_torch()
    min_time = 0.004 if args.quick else 0.03
    machine = machine_description()
    print(f"# fastact {fastact.__version__} bench on {machine['processor']} "
          f"({machine['cpus']} CPUs), SIMD {machine['fastact']['simd_level']}, "
          f"numpy {np.__version__}"
          + (f", torch {torch.__version__}" if torch else ", torch not installed")
          + f", 1-min load {machine['load_average_1min']:.2f}"
          + f", inputs {args.scale:g} x {args.dist}"
          + ("" if args.out_offset is None else f", out at +{args.out_offset} B mod 4096")
          + (", 1-thread cells in thread CPU time" if args.cpu_time else ""), flush=True)
    forced = _forced_levels()
    print(f"# forced: {forced}" if forced else "# forced: nothing (each side at its own best level)",
          flush=True)
    detected = machine["fastact"]["simd_detected"]
    if machine["fastact"]["simd_level"] != detected and not args.simd:
        print(f"# note: fastact runs below this CPU's {detected} level but the peers may not; "
              "use --simd LEVEL to put every side on one level", flush=True)
    cells = []
    rng = np.random.default_rng(0)
    for op in args.ops:
        for direction in args.directions:
            for dtype in args.dtypes:
                for n in sizes:
                    for threads in args.threads:
                        cell = run_cell(op, direction, resolve_dtype(dtype), n, threads,
                                        torch=torch, rng=rng, min_time=min_time,
                                        scale=args.scale, dist=args.dist,
                                        out_offset=args.out_offset, cpu_time=args.cpu_time,
                                        numpy=not args.no_numpy)
                        cells.append(cell)
                        print(format_table([cell]).splitlines()[-1], flush=True)
    print()
    print(format_table(cells))
    missed = [c for c in cells if not c["meets_bar"]]
    print(f"\n{len(cells) - len(missed)} of {len(cells)} cells meet the bar "
          f"(<= 1/{SPEEDUP_BAR} of the fastest peer's time, or >= "
          f"{BANDWIDTH_BAR:.0%} of the copy bandwidth)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": machine, "forced": forced, "cells": cells}, handle,
                      indent=1)
    return 0
