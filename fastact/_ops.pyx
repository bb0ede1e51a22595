# cython: language_level=3
"""Validation and dispatch: the public activation functions of fastact.

This module turns whatever the user passed into contiguous buffers of one
memory order for fastact._kernels' C entry points, and back.  It is compiled
because its common path -- a contiguous float array, with or without out= --
runs on every call and must cost well under a microsecond: it reads
contiguity and overlap from the buffer protocol instead of NumPy attributes.

Rules enforced here, documented in the public docstrings:

* x may be anything np.asarray accepts; its dtype must be float32, float64,
  float16 or bfloat16 (ml_dtypes.bfloat16; non-native byte order is
  converted).  Integer, bool, complex: TypeError.  The half types compute in
  float32 and round each result to nearest even (see fastact/_half.h).
  NumPy exports float16 buffers ('e') but no user dtype, so bfloat16 buffers
  travel to the kernels as uint16 views of the same memory.
* Further *arrays* (grad_output, weight) must have x's dtype: fastact never
  converts silently between float precisions.  Python scalars and sequences
  are converted to x's dtype.
* out must be an ndarray of x's shape and dtype, writable; it may be x.
* Slopes are real numbers (TypeError otherwise; ValueError for an integer
  beyond the float64 range); axis an integer (TypeError), in range
  (ValueError); approximate the string "none" or "tanh" (ValueError).
* Inputs are never modified unless they are out.  If out overlaps an input
  without being that very array, the input is copied first.
* A dask array among the array arguments makes the call lazy: it is handed
  to fastact._dask (checked only after the ndarray tests fail).
"""

import operator
import sys

import numpy as np

from cpython.buffer cimport (
    PyBUF_C_CONTIGUOUS,
    PyBUF_F_CONTIGUOUS,
    PyBUF_WRITABLE,
    PyBuffer_Release,
    PyObject_GetBuffer,
)

from fastact cimport _kernels as K

from . import _kernels

cdef object _F32 = np.dtype(np.float32)
cdef object _F64 = np.dtype(np.float64)
cdef object _F16 = np.dtype(np.float16)
cdef object _U16 = np.dtype(np.uint16)
cdef object _ndarray = np.ndarray

cdef int _RELU = _kernels.RELU
cdef int _LEAKY_RELU = _kernels.LEAKY_RELU
cdef int _GELU = _kernels.GELU
cdef int _GELU_TANH = _kernels.GELU_TANH


# ------------------------------------------------------------ validation --

cdef inline bint _dask_args(object a, object b, object c) except -1:
    """Whether an argument is a dask array, asked only once one is not an exact
    ndarray, so the NumPy path never pays.  Dask is never imported here: until
    something else imports dask.array, nothing can be one."""
    if type(a) is _ndarray and type(b) is _ndarray and type(c) is _ndarray:
        return False
    da = sys.modules.get("dask.array")
    return da is not None and (isinstance(a, da.Array) or isinstance(b, da.Array)
                               or isinstance(c, da.Array))


def _lazy(name, *args, **kwargs):
    """The lazy form of a public function, from fastact._dask (imports dask)."""
    from . import _dask
    return getattr(_dask, name)(*args, **kwargs)


cdef object _as_float_array(object value, str name):
    """value as an ndarray of native float32 or float64, or a TypeError."""
    cdef object arr, dtype
    if type(value) is _ndarray:
        arr = value
    elif value is None:
        raise TypeError(f"{name} must be a float16, bfloat16, float32 or float64 array, got None")
    else:
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{name} must be convertible to a float16, bfloat16, float32 or float64 array ({exc})"
            ) from None
    dtype = arr.dtype
    if dtype is _F32 or dtype is _F64:
        return arr
    if dtype.kind == "f" and dtype.itemsize in (2, 4, 8):
        if dtype.isnative:
            return arr
        return arr.astype(dtype.newbyteorder("="))
    if _is_bfloat16(dtype):
        return arr
    raise TypeError(f"{name} must have dtype float16, bfloat16, float32 or float64, got {dtype}")


# The bfloat16 dtype object once recognised: dtype.name alone costs 0.5 us
# for a user dtype, a third of a small call's time.
cdef object _bfloat16_seen = None


cdef bint _is_bfloat16(object dtype) except -1:
    """ml_dtypes' bfloat16, recognised without importing ml_dtypes: a dtype
    of that name can only exist once something has registered it."""
    global _bfloat16_seen
    cdef object ml_dtypes
    if dtype is _bfloat16_seen:
        return True
    if dtype.itemsize != 2 or dtype.kind == "f" or dtype.name != "bfloat16":
        return False
    ml_dtypes = sys.modules.get("ml_dtypes")
    if ml_dtypes is None or dtype == ml_dtypes.bfloat16:
        _bfloat16_seen = dtype
        return True
    return False


cdef inline int _half_kind(object dtype) except -1:
    """0 for float32/float64, 1 for float16, 2 for bfloat16."""
    if dtype is _F32 or dtype is _F64 or dtype.itemsize != 2:
        return 0
    return 1 if dtype.kind == "f" else 2


cdef inline object _half_buffer(object arr, bint bf16):
    """arr as the buffer protocol takes it: NumPy exports float16 ('e') but no
    user dtype, so a bfloat16 array goes as a uint16 view of its memory."""
    return arr.view(_U16) if bf16 else arr


cdef inline object _half_result(object result, object dtype, bint bf16):
    return result.view(dtype) if bf16 else result


cdef object _half_out(object out, object dtype, bint bf16):
    """out checked against x's half dtype, as _half_buffer gives it (None stays
    None); its shape and writability are checked by _Call.output."""
    if out is None:
        return None
    if not isinstance(out, _ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"out must have dtype {dtype} (the dtype of x), got {out.dtype}")
    return _half_buffer(out, bf16)


cdef object _as_companion(object value, str name, object dtype):
    """An array argument that must share x's dtype (see the module rules)."""
    cdef object arr
    if type(value) is _ndarray and value.dtype is dtype:     # the common case
        return value
    if isinstance(value, _ndarray):
        arr = _as_float_array(value, name)
        if arr.dtype != dtype:
            raise TypeError(
                f"{name} has dtype {arr.dtype} but x has dtype {dtype}: pass them in "
                f"one dtype (fastact does not convert between float precisions)"
            )
        return arr
    arr = _as_float_array(value, name)
    return arr.astype(dtype, copy=False)


cdef tuple _gradient_inputs(object grad_output, object x):
    """Validated (grad_output, x) of a backward function."""
    x = _as_float_array(x, "x")
    grad_output = _as_companion(grad_output, "grad_output", x.dtype)
    if grad_output.shape != x.shape:
        raise ValueError(
            f"grad_output must have the shape of x {x.shape}, got {grad_output.shape}"
        )
    return grad_output, x


cdef double _as_slope(object value, str name) except? -1.0:
    if type(value) is float:
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    try:
        return float(value)
    except OverflowError:   # an int beyond the float range
        raise ValueError(
            f"{name} must be within the float64 range, got an integer of "
            f"{value.bit_length()} bits"
        ) from None


cdef bint _is_tanh(object approximate) except -1:
    # only a str: an array's == is elementwise, and ["none"] would pass
    if isinstance(approximate, str):
        if approximate == "none":
            return False
        if approximate == "tanh":
            return True
    raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")


# ------------------------------------------------------------------ layout --

cdef int _acquire(Py_buffer *view, object arr, int flags) except -1:
    """Get arr's buffer if it is contiguous as flags ask: 1, or 0 when it is not."""
    try:
        PyObject_GetBuffer(arr, view, flags)
    except (BufferError, ValueError):  # NumPy raises ValueError for "not contiguous"
        return 0
    if (<size_t>view.buf) & <size_t>(view.itemsize - 1):
        # An unaligned array (a view at an odd byte offset): the C loops
        # dereference float/double pointers, which must be aligned (UBSan
        # flagged it; vector code may even fault), so it is copied instead.
        PyBuffer_Release(view)
        return 0
    return 1


cdef inline bint _intersects(Py_buffer *a, Py_buffer *b) noexcept:
    """True when two buffers share any memory."""
    cdef char *a0 = <char *>a.buf
    cdef char *b0 = <char *>b.buf
    return a0 < b0 + b.len and b0 < a0 + a.len


cdef inline bint _overlaps(Py_buffer *a, Py_buffer *b) noexcept:
    """True when two elementwise operands share memory without being the same
    buffer (the same buffer is fine: element i is read before it is written)."""
    return a.buf != b.buf and _intersects(a, b)


cdef class _Call:
    """The contiguous buffers of one kernel call, all in one memory order.

    The order is the output's when out is given and contiguous, else the
    first input's (C when neither is contiguous).  In that order element i of
    every buffer is the same array element, so the kernels can treat them as
    flat.  Inputs not contiguous in that order, or overlapping the output
    without being it, are copied first; a non-contiguous out gets a scratch
    buffer that finish() copies into it.
    """
    cdef Py_buffer out_view
    cdef Py_buffer in_views[3]
    cdef int n_in
    cdef bint out_held
    cdef int contiguity
    cdef bint fresh_output
    cdef object result
    cdef object scratch
    cdef object order

    def __dealloc__(self):
        self.release()

    cdef void release(self) noexcept:
        if self.out_held:
            PyBuffer_Release(&self.out_view)
            self.out_held = False
        while self.n_in > 0:
            self.n_in -= 1
            PyBuffer_Release(&self.in_views[self.n_in])

    cdef int _set_order(self, int contiguity) except -1:
        self.contiguity = contiguity
        self.order = "F" if contiguity == PyBUF_F_CONTIGUOUS else "C"
        return 0

    cdef int output(self, object out, object x) except -1:
        """Check out against x (or allocate it) and fix the memory order."""
        cdef object dtype = x.dtype
        if out is None:
            # The order follows x: acquire x now, it is needed anyway.
            if _acquire(&self.in_views[0], x, PyBUF_C_CONTIGUOUS):
                self._set_order(PyBUF_C_CONTIGUOUS)
            elif _acquire(&self.in_views[0], x, PyBUF_F_CONTIGUOUS):
                self._set_order(PyBUF_F_CONTIGUOUS)
            else:
                self._set_order(PyBUF_C_CONTIGUOUS)
                PyObject_GetBuffer(np.array(x, order="C"), &self.in_views[0],
                                   PyBUF_C_CONTIGUOUS)
            self.n_in = 1
            self.result = np.empty(x.shape, dtype, order=self.order)
            PyObject_GetBuffer(self.result, &self.out_view, self.contiguity | PyBUF_WRITABLE)
            self.out_held = True
            self.fresh_output = True
            return 0
        if not isinstance(out, _ndarray):
            raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
        if out.dtype is not dtype and out.dtype != dtype:
            raise TypeError(f"out must have dtype {dtype} (the dtype of x), got {out.dtype}")
        if out.shape != x.shape:
            raise ValueError(f"out must have the shape of x {x.shape}, got {out.shape}")
        if not out.flags.writeable:
            raise ValueError("out is read-only: pass a writable array")
        self.result = out
        self.fresh_output = False
        if _acquire(&self.out_view, out, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE):
            self._set_order(PyBUF_C_CONTIGUOUS)
        elif _acquire(&self.out_view, out, PyBUF_F_CONTIGUOUS | PyBUF_WRITABLE):
            self._set_order(PyBUF_F_CONTIGUOUS)
        else:
            self._set_order(PyBUF_C_CONTIGUOUS)
            self.scratch = np.empty(x.shape, dtype)
            self.fresh_output = True
            PyObject_GetBuffer(self.scratch, &self.out_view, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE)
        self.out_held = True
        return 0

    cdef int input(self, object arr) except -1:
        """Add an input, copied if it is not contiguous in the order or overlaps out."""
        cdef Py_buffer *view = &self.in_views[self.n_in]
        if not _acquire(view, arr, self.contiguity):
            arr = np.array(arr, order=self.order)
            PyObject_GetBuffer(arr, view, self.contiguity)
        elif not self.fresh_output and _overlaps(view, &self.out_view):
            PyBuffer_Release(view)
            arr = np.array(arr, order=self.order)
            PyObject_GetBuffer(arr, view, self.contiguity)
        self.n_in += 1
        return 0

    cdef inline Py_ssize_t size(self) noexcept nogil:
        return self.out_view.len // self.out_view.itemsize

    cdef inline bint is_double(self) noexcept nogil:
        return self.out_view.itemsize == 8

    cdef object finish(self):
        self.release()
        if self.scratch is not None:
            self.result[...] = self.scratch
        return self.result


# ------------------------------------------------------------- drivers --

cdef object _unary(int op, object x, object out, double param):
    cdef int half = _half_kind(x.dtype)
    if half:
        return _unary_half(op, half == 2, x, out, param)
    cdef _Call call = _Call.__new__(_Call)
    call.output(out, x)
    if call.n_in == 0:
        call.input(x)
    with nogil:
        K.run_forward(op, call.is_double(), call.in_views[0].buf, call.out_view.buf,
                      call.size(), param)
    return call.finish()


cdef object _binary(int op, object grad_output, object x, object out, double param):
    # x first: with out=None it decides the memory order.
    cdef int half = _half_kind(x.dtype)
    if half:
        return _binary_half(op, half == 2, grad_output, x, out, param)
    cdef _Call call = _Call.__new__(_Call)
    call.output(out, x)
    if call.n_in == 0:
        call.input(x)
    call.input(grad_output)
    with nogil:
        K.run_backward(op, call.is_double(), call.in_views[1].buf, call.in_views[0].buf,
                       call.out_view.buf, call.size(), param)
    return call.finish()


cdef object _unary_half(int op, bint bf16, object x, object out, double param):
    """_unary for float16/bfloat16 (bfloat16 buffers viewed as uint16)."""
    cdef object dtype = x.dtype
    cdef object xu = _half_buffer(x, bf16)
    cdef _Call call = _Call.__new__(_Call)
    call.output(_half_out(out, dtype, bf16), xu)
    if call.n_in == 0:
        call.input(xu)
    with nogil:
        K.run_forward_half(op, bf16, call.in_views[0].buf, call.out_view.buf, call.size(),
                           param)
    result = call.finish()
    return out if out is not None else _half_result(result, dtype, bf16)


cdef object _binary_half(int op, bint bf16, object grad_output, object x, object out,
                         double param):
    """_binary for float16/bfloat16 (bfloat16 buffers viewed as uint16)."""
    cdef object dtype = x.dtype
    cdef object xu = _half_buffer(x, bf16)
    cdef _Call call = _Call.__new__(_Call)
    call.output(_half_out(out, dtype, bf16), xu)
    if call.n_in == 0:
        call.input(xu)
    call.input(_half_buffer(grad_output, bf16))
    with nogil:
        K.run_backward_half(op, bf16, call.in_views[1].buf, call.in_views[0].buf,
                            call.out_view.buf, call.size(), param)
    result = call.finish()
    return out if out is not None else _half_result(result, dtype, bf16)


# ------------------------------------------------------------ public API --

def relu(x, out=None):
    """Rectified linear unit, ``max(x, 0)``, elementwise.

    Parameters
    ----------
    x : array_like of float32, float64, float16 or bfloat16
        Input of any shape and memory layout.
    out : ndarray, optional
        Array to write the result into: x's shape and dtype, writable.
        May be ``x`` itself for in-place use.

    Returns
    -------
    ndarray
        ``out`` if given, else a new array of x's shape and dtype.

    Raises
    ------
    TypeError
        If x is not a float32/float64 array, or out has the wrong dtype.
    ValueError
        If out has the wrong shape or is read-only.

    Notes
    -----
    NaN propagates; ``relu(-0.0)`` is ``+0.0``.
    """
    if _dask_args(x, x, x): return _lazy("relu", x, out=out)
    x = _as_float_array(x, "x")
    return _unary(_RELU, x, out, 0.0)


def relu_backward(grad_output, x, out=None):
    """Gradient of :func:`relu`: ``grad_output`` where ``x > 0``, else 0.

    Parameters
    ----------
    grad_output : array_like
        Gradient of the loss with respect to relu's output; x's shape and dtype.
    x : array_like of float32, float64, float16 or bfloat16
        The input relu was applied to.
    out : ndarray, optional
        Where to write the gradient with respect to x (may be grad_output or x).

    Returns
    -------
    ndarray
        The gradient with respect to x.

    Notes
    -----
    The derivative at ``x == 0`` is taken as 0 (as PyTorch does); where x is
    NaN the result is NaN.
    """
    if _dask_args(grad_output, x, x): return _lazy("relu_backward", grad_output, x, out=out)
    grad_output, x = _gradient_inputs(grad_output, x)
    return _binary(_RELU, grad_output, x, out, 0.0)


def leaky_relu(x, negative_slope=0.01, out=None):
    """Leaky ReLU: ``x`` where ``x > 0``, else ``negative_slope * x``.

    Parameters
    ----------
    x : array_like of float32, float64, float16 or bfloat16
        Input of any shape and memory layout.
    negative_slope : float, default 0.01
        Slope for ``x <= 0``; rounded to x's dtype before use (to float32 for float16
        and bfloat16, which compute in float32), as in PyTorch.
    out : ndarray, optional
        Array to write the result into (may be ``x``).

    Returns
    -------
    ndarray
        ``out`` if given, else a new array of x's shape and dtype.

    Raises
    ------
    TypeError
        If x is not a float32/float64 array, negative_slope is not a real
        number, or out has the wrong dtype.
    ValueError
        If negative_slope is an integer beyond the float64 range, or out has
        the wrong shape or is read-only.
    """
    if _dask_args(x, x, x): return _lazy("leaky_relu", x, negative_slope, out=out)
    x = _as_float_array(x, "x")
    return _unary(_LEAKY_RELU, x, out, _as_slope(negative_slope, "negative_slope"))


def leaky_relu_backward(grad_output, x, negative_slope=0.01, out=None):
    """Gradient of :func:`leaky_relu`.

    ``grad_output`` where ``x > 0``, else ``negative_slope * grad_output``
    (the slope applies at ``x == 0``, as in PyTorch).

    Parameters
    ----------
    grad_output : array_like
        Gradient with respect to the output; x's shape and dtype.
    x : array_like of float32, float64, float16 or bfloat16
        The forward input.
    negative_slope : float, default 0.01
        The slope used in the forward pass.
    out : ndarray, optional
        Where to write the gradient (may be grad_output or x).

    Returns
    -------
    ndarray
        The gradient with respect to x.
    """
    if _dask_args(grad_output, x, x): return _lazy("leaky_relu_backward", grad_output, x, negative_slope, out=out)
    grad_output, x = _gradient_inputs(grad_output, x)
    return _binary(_LEAKY_RELU, grad_output, x, out,
                   _as_slope(negative_slope, "negative_slope"))


def gelu(x, approximate="none", out=None):
    """Gaussian error linear unit, ``x * Phi(x)``.

    Parameters
    ----------
    x : array_like of float32, float64, float16 or bfloat16
        Input of any shape and memory layout.
    approximate : {"none", "tanh"}, default "none"
        "none": the exact form ``0.5 * x * (1 + erf(x / sqrt(2)))``.
        "tanh": ``0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))``.
    out : ndarray, optional
        Array to write the result into (may be ``x``).

    Returns
    -------
    ndarray
        ``out`` if given, else a new array of x's shape and dtype.

    Notes
    -----
    Accurate over the whole real line, the negative tail included (see
    docs/accuracy.md): ``gelu(-inf) = 0``, ``gelu(inf) = inf``, NaN propagates.
    """
    if _dask_args(x, x, x): return _lazy("gelu", x, approximate, out=out)
    x = _as_float_array(x, "x")
    return _unary(_GELU_TANH if _is_tanh(approximate) else _GELU, x, out, 0.0)


def gelu_backward(grad_output, x, approximate="none", out=None):
    """Gradient of :func:`gelu`: ``grad_output * gelu'(x)``.

    Parameters
    ----------
    grad_output : array_like
        Gradient with respect to the output; x's shape and dtype.
    x : array_like of float32, float64, float16 or bfloat16
        The forward input.
    approximate : {"none", "tanh"}, default "none"
        Which GELU the forward pass used.
    out : ndarray, optional
        Where to write the gradient (may be grad_output or x).

    Returns
    -------
    ndarray
        The gradient with respect to x.
    """
    if _dask_args(grad_output, x, x): return _lazy("gelu_backward", grad_output, x, approximate, out=out)
    grad_output, x = _gradient_inputs(grad_output, x)
    return _binary(_GELU_TANH if _is_tanh(approximate) else _GELU, grad_output, x, out, 0.0)


# ------------------------------------------------------------------ PReLU --

cdef tuple _prelu_layout(object x, object weight, object axis):
    """Check weight against x and axis; return (shared, axis) with axis >= 0."""
    cdef Py_ssize_t ndim = x.ndim
    cdef Py_ssize_t ax = 0
    cdef bint beyond = False     # an integer too large for Py_ssize_t
    try:
        if type(axis) is int:        # the common case, without the checks below
            ax = axis
        elif isinstance(axis, (bool, np.bool_)):
            raise TypeError(f"axis must be an integer, got {type(axis).__name__}")
        else:
            try:
                ax = operator.index(axis)
            except TypeError:
                raise TypeError(f"axis must be an integer, got {type(axis).__name__}") from None
    except OverflowError:
        beyond = True
    if weight.ndim != 1:
        raise ValueError(
            f"weight must be 1-D with shape (x.shape[axis],) or (1,), got shape {weight.shape}"
        )
    if weight.shape[0] == 1:
        return True, 0
    if beyond:
        raise ValueError(
            f"axis is out of range for x with {ndim} dimension(s), got an integer of "
            f"{operator.index(axis).bit_length()} bits"
        )
    if not (-ndim <= ax < ndim):
        raise ValueError(
            f"axis {ax} is out of range for x with {ndim} dimension(s); a weight of "
            f"{weight.shape[0]} channels needs a valid channel axis"
        )
    if ax < 0:
        ax += ndim
    if weight.shape[0] != x.shape[ax]:
        raise ValueError(
            f"weight must have shape ({x.shape[ax]},) to match x.shape[{ax}], or (1,) "
            f"for a shared slope; got shape {weight.shape}"
        )
    return False, ax


cdef tuple _channel_view(tuple shape, Py_ssize_t axis, object order):
    """(outer, channels, inner) of the flat array in the given memory order."""
    cdef Py_ssize_t outer = 1, inner = 1, i
    cdef Py_ssize_t ndim = len(shape)
    for i in range(axis):
        outer *= shape[i]
    for i in range(axis + 1, ndim):
        inner *= shape[i]
    if order == "F":
        outer, inner = inner, outer
    return outer, shape[axis], inner


def prelu(x, weight, axis=1, out=None):
    """Parametric ReLU: ``x`` where ``x > 0``, else ``weight[c] * x``.

    Parameters
    ----------
    x : array_like of float32, float64, float16 or bfloat16
        Input of any shape and memory layout.
    weight : array_like
        Slopes, shape ``(x.shape[axis],)`` (one per channel) or ``(1,)``
        (shared).  An ndarray must have x's dtype; a sequence is converted.
    axis : int, default 1
        The channel axis (1, as in PyTorch's NCHW).  Not used for a shared
        slope, so any x works with a weight of shape ``(1,)``.
    out : ndarray, optional
        Array to write the result into (may be ``x``).

    Returns
    -------
    ndarray
        ``out`` if given, else a new array of x's shape and dtype.
    """
    if _dask_args(x, weight, weight): return _lazy("prelu", x, weight, axis, out=out)
    x = _as_float_array(x, "x")
    weight = _as_companion(weight, "weight", x.dtype)
    shared, ax = _prelu_layout(x, weight, axis)
    if shared:
        return _unary(_LEAKY_RELU, x, out, float(weight[0]))
    cdef _Call call = _Call.__new__(_Call)
    cdef Py_buffer wview
    cdef Py_ssize_t outer, channels, inner
    cdef int status = 0
    cdef int half = _half_kind(x.dtype)
    cdef object dtype = x.dtype
    cdef object given_out = out
    if half:   # bfloat16 buffers as uint16 (see _half_buffer)
        out = _half_out(out, dtype, half == 2)
        x = _half_buffer(x, half == 2)
        weight = _half_buffer(weight, half == 2)
    call.output(out, x)
    if call.n_in == 0:
        call.input(x)
    outer, channels, inner = _channel_view(x.shape, ax, call.order)
    if not _acquire(&wview, weight, PyBUF_C_CONTIGUOUS):
        weight = np.array(weight, order="C")     # a copy: contiguous and aligned
        PyObject_GetBuffer(weight, &wview, PyBUF_C_CONTIGUOUS)
    if not call.fresh_output and _intersects(&wview, &call.out_view):
        PyBuffer_Release(&wview)  # out would overwrite slopes still to be read
        weight = weight.copy()
        PyObject_GetBuffer(weight, &wview, PyBUF_C_CONTIGUOUS)
    try:
        with nogil:
            if half:
                status = K.run_prelu_forward_half(half == 2, call.in_views[0].buf, wview.buf,
                                                  call.out_view.buf, outer, channels, inner)
            else:
                K.run_prelu_forward(call.is_double(), call.in_views[0].buf, wview.buf,
                                    call.out_view.buf, outer, channels, inner)
    finally:
        PyBuffer_Release(&wview)
    if status != 0:
        raise MemoryError("prelu: could not allocate the float32 copy of the weight")
    result = call.finish()
    if half:
        return given_out if given_out is not None else _half_result(result, dtype, half == 2)
    return result


def prelu_backward(grad_output, x, weight, axis=1):
    """Gradients of :func:`prelu` with respect to its input and its weight.

    Parameters
    ----------
    grad_output : array_like
        Gradient with respect to prelu's output; x's shape and dtype.
    x : array_like of float32, float64, float16 or bfloat16
        The forward input.
    weight : array_like
        The slopes used in the forward pass (shape ``(C,)`` or ``(1,)``).
    axis : int, default 1
        The channel axis used in the forward pass.

    Returns
    -------
    grad_input : ndarray
        ``grad_output`` where ``x > 0``, else ``weight[c] * grad_output``.
    grad_weight : ndarray
        weight's shape and x's dtype: the sum over each channel of
        ``grad_output * x`` where ``x <= 0``.  Accumulated in float64 in
        fixed-size blocks, so the result does not depend on the thread count.
    """
    if _dask_args(grad_output, x, weight): return _lazy("prelu_backward", grad_output, x, weight, axis)
    grad_output, x = _gradient_inputs(grad_output, x)
    weight = _as_companion(weight, "weight", x.dtype)
    shared, ax = _prelu_layout(x, weight, axis)
    cdef _Call call = _Call.__new__(_Call)
    cdef Py_buffer wview, gwview
    cdef int status
    cdef Py_ssize_t outer, channels, inner
    cdef int half = _half_kind(x.dtype)
    cdef object dtype = x.dtype
    if half:   # bfloat16 buffers as uint16 (see _half_buffer)
        x = _half_buffer(x, half == 2)
        grad_output = _half_buffer(grad_output, half == 2)
        weight = _half_buffer(weight, half == 2)
    call.output(None, x)
    call.input(grad_output)
    if shared:
        outer, channels, inner = 1, 1, x.size
    else:
        outer, channels, inner = _channel_view(x.shape, ax, call.order)
    grad_weight = np.empty(weight.shape[0], np.float64)
    if not _acquire(&wview, weight, PyBUF_C_CONTIGUOUS):
        PyObject_GetBuffer(np.array(weight, order="C"), &wview, PyBUF_C_CONTIGUOUS)
    PyObject_GetBuffer(grad_weight, &gwview, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE)
    try:
        with nogil:
            if half:
                status = K.run_prelu_backward_half(half == 2, call.in_views[1].buf,
                                                   call.in_views[0].buf, wview.buf,
                                                   call.out_view.buf, <double *>gwview.buf,
                                                   outer, channels, inner)
            else:
                status = K.run_prelu_backward(call.is_double(), call.in_views[1].buf,
                                              call.in_views[0].buf, wview.buf,
                                              call.out_view.buf, <double *>gwview.buf, outer,
                                              channels, inner)
    finally:
        PyBuffer_Release(&gwview)
        PyBuffer_Release(&wview)
    if status != 0:
        raise MemoryError("prelu_backward: could not allocate the weight-gradient blocks")
    if half:
        return _half_result(call.finish(), dtype, half == 2), grad_weight.astype(dtype)
    return call.finish(), grad_weight.astype(x.dtype, copy=False)
