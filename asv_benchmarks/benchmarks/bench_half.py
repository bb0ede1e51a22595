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

from . import bench_bandwidth, bench_kernels, common

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
    kernel = operation[: -len("_backward")] if operation.endswith("_backward") else operation
    return common.kernel_call(operation, *_inputs(kernel, dtype, size))


def half_copy_call(arrays, dtype, size):
    """np.copyto of the bytes a kernel moves, as uint16 (float16 has no fast copy path)."""
    n = size * arrays // 2
    src = common.normal((n,), "float32", 3).astype(np.float16).view(np.uint16)
    dst = np.ones(n, np.uint16)
    return lambda: np.copyto(dst, src)


class HalfForward(bench_kernels.Forward):
    """fa.relu / leaky_relu / prelu / gelu (exact and tanh) on half arrays, with out=."""

    params = [common.KERNELS, HALF_DTYPES, common.SIZES, common.THREADS]
    kernel_call = staticmethod(half_call)


class HalfBackward(bench_kernels.Backward):
    """The *_backward kernels on half arrays."""

    params = [common.KERNELS, HALF_DTYPES, common.SIZES, common.THREADS]
    kernel_call = staticmethod(half_call)


class HalfBandwidth(bench_bandwidth.Bandwidth):
    """GB/s and fraction of the copy bandwidth of each kernel on half arrays."""

    params = [common.OPERATIONS, HALF_DTYPES, common.SIZES, common.THREADS]
    kernel_call = staticmethod(half_call)
    copy_call = staticmethod(half_copy_call)

    @staticmethod
    def itemsize(dtype):
        return 2
