"""Shared parameters, inputs and call tables of the fastact asv suite.

Nothing here is a benchmark.  The benchmark modules import it so that every
theme (fastact's kernels, the NumPy/SciPy formulas, the copy baseline, the
bandwidth figures) uses exactly the same sizes, dtypes and input data.

Inputs are standard-normal draws from a fixed seed (never zeros: a kernel
must not be timed on a special case).  They are built once per benchmark
process and cached, because the asv runner may call ``setup`` again before
every timed call: ``setup`` then only looks the arrays up.
"""

import functools
import math

import numpy as np

#: log2 of the element counts: L1-resident (32 KiB of float64), L2-sized,
#: last-level-cache-sized, and far beyond any cache (128 MiB of float64).
SIZE_EXPONENTS = (12, 16, 20, 24)
SIZES = [2**e for e in SIZE_EXPONENTS]
DTYPES = ["float32", "float64"]
THREADS = [1, 2]

#: The forward kernels; "gelu_tanh" is ``gelu(x, approximate="tanh")``.
KERNELS = ["relu", "leaky_relu", "prelu", "gelu", "gelu_tanh"]
#: Bandwidth cells: each kernel forward and backward.
OPERATIONS = [name + suffix for name in KERNELS for suffix in ("", "_backward")]

NEGATIVE_SLOPE = 0.01
#: PReLU runs on a 2-D ``(size // CHANNELS, CHANNELS)`` array, weight on axis 1.
CHANNELS = 256
SEED = 20240601

GELU_TANH_K = math.sqrt(2.0 / math.pi)
INV_SQRT2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def shape_of(kernel, size):
    """The array shape a kernel is benchmarked on."""
    if kernel.startswith("prelu"):
        return (size // CHANNELS, CHANNELS)
    return (size,)


@functools.lru_cache(maxsize=None)
def normal(shape, dtype, stream):
    """A cached standard-normal array; ``stream`` picks an independent draw."""
    rng = np.random.default_rng([SEED, stream])
    return rng.standard_normal(shape, dtype=np.dtype(dtype))


@functools.lru_cache(maxsize=None)
def empty(shape, dtype, stream=0):
    """A cached output buffer, touched once so its pages exist before timing."""
    out = np.empty(shape, dtype=dtype)
    out.fill(1.0)
    return out


@functools.lru_cache(maxsize=None)
def prelu_weight(dtype):
    """Per-channel PReLU slopes in [0.05, 0.3)."""
    rng = np.random.default_rng([SEED, 99])
    return rng.uniform(0.05, 0.3, CHANNELS).astype(dtype)


def inputs(kernel, dtype, size):
    """(x, grad_output, out) for a kernel; all cached, never recomputed."""
    shape = shape_of(kernel, size)
    return normal(shape, dtype, 1), normal(shape, dtype, 2), empty(shape, dtype)


def arrays_moved(operation):
    """Arrays of ``size`` elements one call reads plus writes.

    Forward: read x, write out (2).  Backward: read grad_output and x, write
    grad_input (3).  PReLU backward also reads the weight and writes
    grad_weight, CHANNELS elements each: not counted (at most 1/8 of the
    smallest array).
    """
    return 3 if operation.endswith("_backward") else 2


# -- fastact calls ------------------------------------------------------------


def fastact_call(operation, dtype, size):
    """A zero-argument callable running one fastact kernel with out=.

    ``prelu_backward`` has no ``out=`` and allocates its two results; that
    allocation is part of what it costs a caller, so it is timed.
    """
    kernel = operation[: -len("_backward")] if operation.endswith("_backward") else operation
    x, g, out = inputs(kernel, dtype, size)
    return kernel_call(operation, x, g, out, prelu_weight(dtype))


def kernel_call(operation, x, g, out, w):
    """A zero-argument callable running ``operation`` on the given arrays, with out=."""
    import fastact as fa

    s = NEGATIVE_SLOPE
    calls = {
        "relu": lambda: fa.relu(x, out=out),
        "relu_backward": lambda: fa.relu_backward(g, x, out=out),
        "leaky_relu": lambda: fa.leaky_relu(x, s, out=out),
        "leaky_relu_backward": lambda: fa.leaky_relu_backward(g, x, s, out=out),
        "prelu": lambda: fa.prelu(x, w, axis=1, out=out),
        "prelu_backward": lambda: fa.prelu_backward(g, x, w, axis=1),
        "gelu": lambda: fa.gelu(x, approximate="none", out=out),
        "gelu_backward": lambda: fa.gelu_backward(g, x, approximate="none", out=out),
        "gelu_tanh": lambda: fa.gelu(x, approximate="tanh", out=out),
        "gelu_tanh_backward": lambda: fa.gelu_backward(g, x, approximate="tanh", out=out),
    }
    return calls[operation]


# -- the NumPy / SciPy formulas a user would write ----------------------------
#
# Each writes its result into ``out`` where the idiom allows it; the
# temporaries the formula creates are part of its cost and are timed.


def _np_gelu(erf, x, out):
    return np.multiply(0.5 * x, 1.0 + erf(x * INV_SQRT2), out=out)


def _np_gelu_backward(erf, g, x, out):
    cdf = 0.5 * (1.0 + erf(x * INV_SQRT2))
    pdf = np.exp(-0.5 * x * x) * INV_SQRT_2PI
    return np.multiply(g, cdf + x * pdf, out=out)


def _np_gelu_tanh(x, out):
    inner = GELU_TANH_K * (x + 0.044715 * x**3)
    return np.multiply(0.5 * x, 1.0 + np.tanh(inner), out=out)


def _np_gelu_tanh_backward(g, x, out):
    t = np.tanh(GELU_TANH_K * (x + 0.044715 * x**3))
    dinner = GELU_TANH_K * (1.0 + 3 * 0.044715 * x * x)
    return np.multiply(g, 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * dinner, out=out)


def _np_prelu_backward(g, x, w):
    grad_input = np.where(x > 0, g, w * g)
    grad_weight = np.where(x > 0, 0, g * x).sum(axis=0)
    return grad_input, grad_weight


def numpy_call(operation, dtype, size):
    """A zero-argument callable running the NumPy/SciPy formula of an operation."""
    from scipy.special import erf  # imported here, in setup, never in the timed call

    kernel = operation[: -len("_backward")] if operation.endswith("_backward") else operation
    x, g, out = inputs(kernel, dtype, size)
    w = prelu_weight(dtype)
    s = NEGATIVE_SLOPE
    calls = {
        "relu": lambda: np.maximum(x, 0, out=out),
        "relu_backward": lambda: np.multiply(g, x > 0, out=out),
        "leaky_relu": lambda: np.where(x > 0, x, s * x),
        "leaky_relu_backward": lambda: np.where(x > 0, g, s * g),
        "prelu": lambda: np.where(x > 0, x, w * x),
        "prelu_backward": lambda: _np_prelu_backward(g, x, w),
        "gelu": lambda: _np_gelu(erf, x, out),
        "gelu_backward": lambda: _np_gelu_backward(erf, g, x, out),
        "gelu_tanh": lambda: _np_gelu_tanh(x, out),
        "gelu_tanh_backward": lambda: _np_gelu_tanh_backward(g, x, out),
    }
    return calls[operation]


# -- the copy baseline ----------------------------------------------------------


def copy_buffers(arrays, dtype, size):
    """(dst, src) whose copy moves as many bytes as an operation on ``arrays``.

    ``np.copyto(dst, src)`` reads src and writes dst: 2 arrays' worth of
    traffic.  For 2 arrays (a forward pass) both have ``size`` elements; for
    3 (a backward pass) both have ``3 * size / 2``, so the copy moves the
    same ``3 * size * itemsize`` bytes the backward pass does.
    """
    n = size * arrays // 2
    return empty((n,), dtype, 1), normal((n,), dtype, 3)


def copy_call(arrays, dtype, size):
    dst, src = copy_buffers(arrays, dtype, size)
    return lambda: np.copyto(dst, src)


# -- in-function timing for the track_ benchmarks -------------------------------


def median_time(call, min_sample=2e-3, samples=5):
    """Median seconds per call, each sample batching calls to >= min_sample s."""
    call()  # warm-up: caches, pages, thread pool
    start = _clock()
    call()
    once = max(_clock() - start, 1e-9)
    inner = max(1, int(math.ceil(min_sample / once)))
    times = []
    for _ in range(samples):
        start = _clock()
        for _ in range(inner):
            call()
        times.append((_clock() - start) / inner)
    times.sort()
    return times[len(times) // 2]


def _clock():
    import time

    return time.perf_counter()
