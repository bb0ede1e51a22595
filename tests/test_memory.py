"""Memory: 10^5 calls of every public function leak neither memory nor references.

Each public function is called 10^5 times, spread over its variants (with
and without out=, contiguous, strided and Fortran-ordered input, float32 and
float64, and the bad-input paths that raise).  After a warm-up, resident
memory (from /proc/self/statm) may grow by at most 2 MB, and the reference
counts of the inputs and outputs must be what they were.  Arrays are small,
so the whole file runs in seconds.
"""

import io
import os
import sys

import numpy as np
import pytest

import fastact as fa

CALLS = 100_000
WARM_UP = 2_000
RSS_SLACK = 2 << 20

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"),
                                reason="reads resident memory from /proc/self/statm")
# AddressSanitizer (tools/sanitize.sh) keeps freed memory in a quarantine of
# up to 256 MB, so resident memory grows there without any leak.
rss_is_meaningful = pytest.mark.skipif(
    "libasan" in os.environ.get("LD_PRELOAD", ""),
    reason="under AddressSanitizer resident memory includes its quarantine",
)


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _arrays():
    rng = np.random.default_rng(5)
    a = {}
    for dtype in (np.float32, np.float64):
        k = np.dtype(dtype).char
        a["x" + k] = rng.standard_normal((8, 16)).astype(dtype)
        a["g" + k] = rng.standard_normal((8, 16)).astype(dtype)
        a["out" + k] = np.empty((8, 16), dtype)
        a["wide" + k] = rng.standard_normal((8, 32)).astype(dtype)   # strided views below
        a["gwide" + k] = rng.standard_normal((8, 32)).astype(dtype)
        a["owide" + k] = np.empty((8, 32), dtype)
        a["w" + k] = rng.uniform(-1, 1, 16).astype(dtype)
        a["w8" + k] = rng.uniform(-1, 1, 8).astype(dtype)
        a["shared" + k] = np.array([0.2], dtype)
        a["xF" + k] = np.asfortranarray(a["x" + k])
        a["gF" + k] = np.asfortranarray(a["g" + k])
        for key in ("wide", "gwide", "owide"):      # every other column
            a[key + "_view" + k] = a[key + k][:, ::2]
    ro = a["xf"].copy()
    ro.flags.writeable = False
    a["readonly"] = ro
    a["ints"] = np.arange(128).reshape(8, 16)
    a["bad_shape"] = np.empty((16, 8), np.float32)
    return a


def _variants(name, a):
    """(call, exception it must raise or None) pairs exercising `name`."""
    f = getattr(fa, name)
    out = []
    for k in "fd":
        out += _dtype_variants(name, f, a, k)
    return out + _common_variants(name, a)


def _dtype_variants(name, f, a, k):
    """The variants for one dtype (a function of its own, so each lambda
    binds this dtype's arrays)."""
    out = []
    x, g, o = a["x" + k], a["g" + k], a["out" + k]
    xs, gs, os_ = a["wide_view" + k], a["gwide_view" + k], a["owide_view" + k]
    xf = a["xF" + k]
    if name in ("relu", "gelu", "leaky_relu"):
        extra = {"gelu": ("tanh",), "leaky_relu": (0.1,)}.get(name, ())
        out += [
            (lambda: f(x, *extra), None),
            (lambda: f(x, *extra, out=o), None),
            (lambda: f(xs, *extra), None),
            (lambda: f(xs, *extra, out=os_), None),
            (lambda: f(xf, *extra), None),
            (lambda: f(x, *extra, out=a["bad_shape"]), ValueError if k == "f" else TypeError),
        ]
    elif name in ("relu_backward", "gelu_backward", "leaky_relu_backward"):
        extra = {"gelu_backward": ("tanh",), "leaky_relu_backward": (0.1,)}.get(name, ())
        out += [
            (lambda: f(g, x, *extra), None),
            (lambda: f(g, x, *extra, out=o), None),
            (lambda: f(gs, xs, *extra), None),
            (lambda: f(gs, xs, *extra, out=os_), None),
            (lambda: f(a["gF" + k], xf, *extra), None),
            (lambda: f(g[:4], x, *extra), ValueError),
        ]
    elif name == "prelu":
        w, w8, sh = a["w" + k], a["w8" + k], a["shared" + k]
        out += [
            (lambda: f(x, w8, 0), None),
            (lambda: f(x, w, -1, out=o), None),
            (lambda: f(xs, w8, 0, out=os_), None),
            (lambda: f(xf, sh), None),
            (lambda: f(x, w), None),
            (lambda: f(x, w8), ValueError),
        ]
    elif name == "prelu_backward":
        w, w8, sh = a["w" + k], a["w8" + k], a["shared" + k]
        out += [
            (lambda: f(g, x, w8, 0), None),
            (lambda: f(g, x, w, 1), None),
            (lambda: f(gs, xs, w8, 0), None),
            (lambda: f(g, xf, sh), None),
            (lambda: f(g, x, w8, 1), ValueError),
        ]
    return out


def _common_variants(name, a):
    f = getattr(fa, name)
    out = []
    bad_type = {
        "relu": lambda: fa.relu(a["ints"]),
        "gelu": lambda: fa.gelu(a["xf"], "erf"),
        "leaky_relu": lambda: fa.leaky_relu(a["xf"], "slope"),
        "relu_backward": lambda: fa.relu_backward(a["gd"], a["xf"]),
        "gelu_backward": lambda: fa.gelu_backward(a["gf"], None),
        "leaky_relu_backward": lambda: fa.leaky_relu_backward(a["gf"], a["xf"], None),
        "prelu": lambda: fa.prelu(a["xf"], a["wd"]),
        "prelu_backward": lambda: fa.prelu_backward(a["gf"], a["xf"], a["wf"], 1.5),
    }
    errors = {"gelu": ValueError}
    out.append((bad_type[name], errors.get(name, TypeError)))
    if name in ("relu", "gelu", "leaky_relu"):
        out.append((lambda: f(a["xf"], out=a["readonly"]), ValueError))
        out.append((lambda: f([0.5, -1.0, 2.0]), None))
    return out


def _run(variants, calls):
    n = len(variants)
    for i in range(calls):
        call, error = variants[i % n]
        if error is None:
            call()
        else:
            try:
                call()
            except error:
                pass
            else:
                raise AssertionError(f"expected {error.__name__}")


def _refcounts(a):
    return {key: sys.getrefcount(value) for key, value in a.items()}


KERNELS = ["relu", "relu_backward", "leaky_relu", "leaky_relu_backward",
           "prelu", "prelu_backward", "gelu", "gelu_backward"]


@rss_is_meaningful
@pytest.mark.parametrize("name", KERNELS)
def test_kernel_calls_leak_nothing(name):
    a = _arrays()
    variants = _variants(name, a)
    for call, error in variants:       # every variant behaves as listed
        if error is None:
            call()
        else:
            with pytest.raises(error):
                call()
    _run(variants, WARM_UP)
    counts, rss = _refcounts(a), _rss()
    _run(variants, CALLS)
    grown = _rss() - rss
    assert _refcounts(a) == counts, "a reference to an input or out= array leaked"
    assert grown <= RSS_SLACK, f"{name}: resident memory grew {grown} bytes over {CALLS} calls"


@pytest.mark.parametrize("name", KERNELS)
def test_each_call_keeps_reference_counts(name):
    a = _arrays()
    for call, error in _variants(name, a):
        if error is not None:
            continue
        counts = _refcounts(a)
        result = call()
        parts = result if isinstance(result, tuple) else (result,)
        del result
        for part in parts:
            if not any(part is v for v in a.values()):
                # a fresh array: held only by `parts`, `part` and getrefcount's argument
                assert sys.getrefcount(part) == 3
        del parts, part
        assert _refcounts(a) == counts


@rss_is_meaningful
def test_thread_and_config_calls_leak_nothing():
    before = fa.get_num_threads()
    sink = io.StringIO()
    variants = [
        (lambda: fa.set_num_threads(before), None),
        (fa.get_num_threads, None),
        (lambda: fa.set_num_threads(0), ValueError),
        (lambda: fa.set_num_threads("2"), TypeError),
    ]
    _run(variants, WARM_UP)
    rss = _rss()
    _run(variants, CALLS)
    for _ in range(CALLS // 100):          # show_config builds a dict and prints
        sink.seek(0)
        fa.show_config(file=sink)
    grown = _rss() - rss
    assert grown <= RSS_SLACK, f"resident memory grew {grown} bytes"
