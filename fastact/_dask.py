"""The public activation functions on dask arrays: lazy, block by block.

fastact._ops hands a call here when one of its array arguments is a
``dask.array.Array`` (it looks only after its ndarray checks fail, so the
NumPy path does not pay).  Every function builds a graph that calls the
public NumPy kernel on each block; nothing is computed here.

Rules (documented in docs/dask.md):

* The result is a dask array with the chunks of x (or, when x is a NumPy
  array and grad_output a dask array, of grad_output).  Other array
  arguments are rechunked (dask arrays) or wrapped with ``da.from_array``
  (NumPy arrays) to match: mixing dask and NumPy arguments is allowed.
* Dtype rules, shapes and arguments are checked at call time, with the
  errors of the NumPy functions: the kernels are run once on zero-size
  arrays of the arguments' dtypes, which also gives the result's dtype.
* ``out=`` is refused: dask arrays are immutable.
* ``prelu``'s weight is split to match the chunks of x's channel axis.
  ``prelu_backward`` computes both gradients in one kernel call per block;
  each block's grad_weight partial stays in float64 and the partials are
  summed with ``dask.array.reduction`` (a tree reduction), rounded to x's
  dtype once at the end, as the in-memory function does.
"""

import math
import operator

import dask.array as da
import numpy as np

from . import _ops

__all__ = [
    "relu",
    "relu_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "gelu",
    "gelu_backward",
    "prelu",
    "prelu_backward",
]


def _refuse_out(out):
    if out is not None:
        raise TypeError(
            "out= cannot be used with dask arrays (they are immutable): "
            "use the returned dask array instead"
        )


def _as_array(value, name):
    """A dask array unchanged; anything else as an ndarray."""
    if isinstance(value, da.Array):
        return value
    if value is None:
        raise TypeError(f"{name} must be a float32 or float64 array, got None")
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must be convertible to a float32 or float64 array ({exc})"
        ) from None


def _companion(value, name, dtype):
    """An array argument beside x: arrays keep their dtype (the kernels'
    probe then refuses a mismatch); sequences and scalars take x's float
    dtype, as in the NumPy functions."""
    is_array = isinstance(value, (da.Array, np.ndarray))
    arr = _as_array(value, name)
    if not is_array and arr.dtype.kind == "f":
        arr = arr.astype(dtype)
    return arr


def _probe(shape, dtype):
    return np.empty(shape, dtype)


def _meta(ndim, dtype):
    return np.empty((0,) * ndim, dtype)


def _same_shape(a, b):
    return len(a) == len(b) and all(
        p == q or (isinstance(p, float) and math.isnan(p)) or (isinstance(q, float) and math.isnan(q))
        for p, q in zip(a, b)
    )


def _like(arr, chunks):
    """arr as a dask array with the given chunks."""
    if isinstance(arr, da.Array):
        return arr if arr.chunks == chunks else arr.rechunk(chunks)
    return da.from_array(arr, chunks=chunks)


# ------------------------------------------------------------ elementwise --

def _unary(fn, x, out, *params):
    _refuse_out(out)
    dtype = fn(_probe((0,), x.dtype), *params).dtype  # every check, at call time
    return x.map_blocks(fn, *params, dtype=dtype, meta=_meta(x.ndim, dtype),
                        token="fastact-" + fn.__name__)


def _binary(fn, grad_output, x, out, *params):
    _refuse_out(out)
    x = _as_array(x, "x")
    if x.dtype.kind == "f" or isinstance(x, da.Array):
        grad_output = _companion(grad_output, "grad_output", x.dtype)
    else:
        grad_output = _as_array(grad_output, "grad_output")
    dtype = fn(_probe((0,), grad_output.dtype), _probe((0,), x.dtype), *params).dtype
    if not _same_shape(grad_output.shape, x.shape):
        raise ValueError(
            f"grad_output must have the shape of x {x.shape}, got {grad_output.shape}"
        )
    chunks = (x if isinstance(x, da.Array) else grad_output).chunks
    return da.map_blocks(fn, _like(grad_output, chunks), _like(x, chunks), *params,
                         dtype=dtype, meta=_meta(len(chunks), dtype),
                         token="fastact-" + fn.__name__)


def relu(x, out=None):
    """Lazy :func:`fastact.relu` of a dask array."""
    return _unary(_ops.relu, x, out)


def relu_backward(grad_output, x, out=None):
    """Lazy :func:`fastact.relu_backward`; either argument may be a dask array."""
    return _binary(_ops.relu_backward, grad_output, x, out)


def leaky_relu(x, negative_slope=0.01, out=None):
    """Lazy :func:`fastact.leaky_relu` of a dask array."""
    return _unary(_ops.leaky_relu, x, out, negative_slope)


def leaky_relu_backward(grad_output, x, negative_slope=0.01, out=None):
    """Lazy :func:`fastact.leaky_relu_backward`; either argument may be a dask array."""
    return _binary(_ops.leaky_relu_backward, grad_output, x, out, negative_slope)


def gelu(x, approximate="none", out=None):
    """Lazy :func:`fastact.gelu` of a dask array."""
    return _unary(_ops.gelu, x, out, approximate)


def gelu_backward(grad_output, x, approximate="none", out=None):
    """Lazy :func:`fastact.gelu_backward`; either argument may be a dask array."""
    return _binary(_ops.gelu_backward, grad_output, x, out, approximate)


# ------------------------------------------------------------------ PReLU --

def _prelu_args(x, weight, axis):
    """(x, weight, channel axis or None when shared, result dtype), checked by
    running the NumPy prelu on a zero-size x that keeps x's channel count."""
    x = _as_array(x, "x")
    weight = _companion(weight, "weight", x.dtype) if x.dtype.kind == "f" else _as_array(
        weight, "weight")
    ax = None
    if not isinstance(axis, (bool, np.bool_)):
        try:
            ax = operator.index(axis)
        except TypeError:
            pass
    if ax is not None and -x.ndim <= ax < x.ndim:
        ax %= x.ndim
    else:
        ax = None
    shared = weight.ndim == 1 and weight.shape[0] == 1
    if shared:
        ax = None
    # Zero along every axis but the channel axis: the probe meets every check
    # yet holds at most a weight's worth of elements (none once x is 2-D).
    # Broadcast, it costs no memory when the checks refuse a channel count.
    shape = tuple(d if i == ax else 0 for i, d in enumerate(x.shape))
    if any(isinstance(d, float) and math.isnan(d) for d in shape):
        raise ValueError("x has chunks of unknown size on its channel axis: "
                         "call x.compute_chunk_sizes() first")
    w_probe = weight if isinstance(weight, np.ndarray) else _probe(weight.shape, weight.dtype)
    x_probe = np.broadcast_to(_probe((), x.dtype), shape)
    dtype = _ops.prelu(x_probe, w_probe, axis).dtype
    return x, weight, (None if shared else ax), dtype


def _weight_index(weight, x, ax):
    """weight as a dask array and its blockwise index: x's channel index, or a
    dummy one-chunk index for a shared slope.

    The chunks then agree already, and blockwise is called with
    align_arrays=False: dask 2026.8's alignment, given a 0-size chunk beside
    the dummy index, merged blocks and returned a wrong shape.
    """
    if ax is None:
        return _like(weight, ((1,),)), (x.ndim,)
    return _like(weight, (x.chunks[ax],)), (ax,)


def prelu(x, weight, axis=1, out=None):
    """Lazy :func:`fastact.prelu`; x or weight may be a dask array.

    With a per-channel weight the channel axis may be chunked: each block
    gets the slopes of its channels.
    """
    _refuse_out(out)
    x, weight, ax, dtype = _prelu_args(x, weight, axis)
    if not isinstance(x, da.Array):
        x = da.from_array(x, chunks=-1)  # only the weight is lazy
    w, w_index = _weight_index(weight, x, ax)
    index = tuple(range(x.ndim))
    return da.blockwise(_prelu_block, index, x, index, w, w_index, axis=axis,
                        shared=ax is None, dtype=dtype, meta=_meta(x.ndim, dtype),
                        concatenate=True, align_arrays=False, token="fastact-prelu")


def _prelu_block(x, w, axis, shared):
    # A block holding one channel gets a weight of shape (1,), which prelu
    # reads as a shared slope: the same numbers, so no special case is needed.
    return _ops.prelu(x, w, axis=0 if shared else axis)


def _prelu_backward_block(g, x, w, axis, shared, red_axes):
    """Both gradients of one block: grad_input in x's dtype and the float64
    grad_weight partial, shaped for the reduction (1 on every summed axis)."""
    dtype = x.dtype
    if dtype != np.float64:
        # The kernel keeps grad_weight in float64 but returns it in x's
        # dtype; run it in float64 so the partials are not rounded before the
        # cross-block sum.  grad_input is unchanged: the product of two
        # floats is exact in float64 and is rounded once on the way back.
        g, x, w = g.astype(np.float64), x.astype(np.float64), w.astype(np.float64)
    grad_input, grad_weight = _ops.prelu_backward(g, x, w, axis=0 if shared else axis)
    keep = [1] * x.ndim
    if not shared:
        keep[axis] = grad_weight.shape[0]
    return grad_input.astype(dtype, copy=False), grad_weight.reshape(keep)


def _partial_sum(parts, axis, keepdims):
    return np.sum(parts, axis=axis, keepdims=keepdims, dtype=np.float64)


def prelu_backward(grad_output, x, weight, axis=1):
    """Lazy :func:`fastact.prelu_backward`; any argument may be a dask array.

    Returns
    -------
    grad_input : dask array
        x's chunks and dtype.
    grad_weight : dask array
        weight's shape and x's dtype: the per-block float64 partials summed
        by a tree reduction, then rounded once.
    """
    x_in = _as_array(x, "x")
    if x_in.dtype.kind == "f" or isinstance(x_in, da.Array):
        grad_output = _companion(grad_output, "grad_output", x_in.dtype)
    else:
        grad_output = _as_array(grad_output, "grad_output")
    x, weight, ax, dtype = _prelu_args(x_in, weight, axis)
    _ops.relu_backward(_probe((0,), grad_output.dtype), _probe((0,), x.dtype))  # dtype rule
    if not _same_shape(grad_output.shape, x.shape):
        raise ValueError(
            f"grad_output must have the shape of x {x.shape}, got {grad_output.shape}"
        )
    ref = x if isinstance(x, da.Array) else (
        grad_output if isinstance(grad_output, da.Array) else da.from_array(x, chunks=-1))
    chunks = ref.chunks
    g, xd = _like(grad_output, chunks), _like(x, chunks)
    w, w_index = _weight_index(weight, xd, ax)
    ndim = xd.ndim
    index = tuple(range(ndim))
    red_axes = tuple(i for i in range(ndim) if i != ax)
    pairs = da.blockwise(
        _prelu_backward_block, index, g, index, xd, index, w, w_index,
        axis=axis if ax is None else ax, shared=ax is None, red_axes=red_axes,
        dtype=dtype, meta=_meta(ndim, dtype), concatenate=True, align_arrays=False,
        token="fastact-prelu-backward")
    grad_input = pairs.map_blocks(operator.itemgetter(0), dtype=dtype,
                                  meta=_meta(ndim, dtype), token="fastact-grad-input")
    grad_weight = da.reduction(
        pairs, _take_partial, _partial_sum, combine=_partial_sum, axis=red_axes,
        keepdims=False, dtype=np.float64, meta=_meta(1 if ax is not None else 0, np.float64),
        concatenate=True, name="fastact-grad-weight")
    grad_weight = grad_weight.reshape(weight.shape).astype(dtype)
    return grad_input, grad_weight


def _take_partial(pair, axis, keepdims):
    return pair[1]
