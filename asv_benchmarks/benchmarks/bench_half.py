"""float16 and bfloat16 (ml_dtypes): every kernel, and its fraction of the copy bandwidth.

The same kernels, sizes, thread counts and input draws as bench_kernels and
bench_bandwidth (the float32 draws of common.py, rounded to the half type),
for the two 16-bit types.  bfloat16 cells need ``ml_dtypes``
(``fastact[half]``); without it asv skips them.

``track_copy_fraction`` divides the kernel's GB/s by that of ``np.copyto``
of the same number of half-width bytes (as uint16), timed the same way in
the same process: at 2^24 elements the ReLU family and PReLU should reach
at least 0.9 of it.
"""

import functools

import numpy as np

import fastact

from . import common

HALF_DTYPES = ["float16", "bfloat16"]


def half_dtype(name):
    """np.dtype of a half type; NotImplementedError (asv: skip) without ml_dtypes."""
    if name == "bfloat16":
        try:
            import ml_dtypes
        except ImportError:
            raise NotImplementedError("bfloat16 needs ml_dtypes") from None
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


@functools.lru_cache(maxsize=None)
def _inputs(kernel, dtype, size):
    """(x, grad_output, out, weight) in the half type; cached like common.inputs."""
    dt = half_dtype(dtype)
    x, g, _ = common.inputs(kernel, "float32", size)
    out = np.ones(x.shape, dt)
    return x.astype(dt), g.astype(dt), out, common.prelu_weight("float32").astype(dt)


def half_call(operation, dtype, size):
    """A zero-argument callable running one fastact kernel on half arrays, with out=."""
    import fastact as fa

    kernel = operation[: -len("_backward")] if operation.endswith("_backward") else operation
    x, g, out, w = _inputs(kernel, dtype, size)
    s = common.NEGATIVE_SLOPE
    return {
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
    }[operation]


class _HalfKernel:
    params = [common.KERNELS, HALF_DTYPES, common.SIZES, common.THREADS]
    param_names = ["kernel", "dtype", "size", "threads"]
    repeat = (5, 50, 1.0)
    timeout = 120
    direction = ""

    def setup(self, kernel, dtype, size, threads):
        fastact.set_num_threads(threads)
        self.call = half_call(kernel + self.direction, dtype, size)


class HalfForward(_HalfKernel):
    """fa.relu / leaky_relu / prelu / gelu (exact and tanh) on half arrays, with out=."""

    def time_forward(self, kernel, dtype, size, threads):
        self.call()


class HalfBackward(_HalfKernel):
    """The *_backward kernels on half arrays."""

    direction = "_backward"

    def time_backward(self, kernel, dtype, size, threads):
        self.call()


class HalfBandwidth:
    params = [common.OPERATIONS, HALF_DTYPES, common.SIZES, common.THREADS]
    param_names = ["operation", "dtype", "size", "threads"]
    processes = 1
    timeout = 180

    def setup(self, operation, dtype, size, threads):
        fastact.set_num_threads(threads)
        self.call = half_call(operation, dtype, size)
        arrays = common.arrays_moved(operation)
        self.nbytes = arrays * size * 2
        n = size * arrays // 2
        src = common.normal((n,), "float32", 3).astype(np.float16).view(np.uint16)
        dst = np.ones(n, np.uint16)
        self.copy = lambda: np.copyto(dst, src)

    def track_gbps(self, operation, dtype, size, threads):
        return round(self.nbytes / common.median_time(self.call) / 1e9, 3)

    track_gbps.unit = "GB/s"

    def track_copy_fraction(self, operation, dtype, size, threads):
        kernel_gbps = self.nbytes / common.median_time(self.call)
        copy_gbps = self.nbytes / common.median_time(self.copy)
        return round(kernel_gbps / copy_gbps, 4)

    track_copy_fraction.unit = "fraction of copy GB/s"
