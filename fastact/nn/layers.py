"""Layers of the fastact.nn trainer: a dense layer and four activations.

Every layer keeps its own work buffers, sized for the largest batch it has
seen, and writes its results into views of them (NumPy ``out=`` arguments
and fastact's in-place kernels), so a training step after the first one
allocates no new arrays.  A result therefore stays valid only until the
layer's next call of the same method.

A dense layer followed by an activation is run as one fused step: the bias
is added and the activation applied in one pass (``Dense.forward(x, act)``),
and on the way back the activation's gradient and the bias gradient are
computed in one pass.  The piecewise-linear activations do this in the
compiled helper :mod:`fastact.nn._fused`; GELU uses fastact's kernels.

Shapes: inputs are ``(batch, features)``, C-contiguous, of the layer's
dtype (a dense layer also takes the bfloat16 output of a mixed-precision
activation, see :func:`make_activation`'s ``storage_dtype``).
``Dense.weight`` has shape ``(in_features, out_features)`` so that the
forward pass is ``x @ weight + bias`` (the transpose of PyTorch's
``Linear.weight``).
"""

import math

import numpy as np

import fastact as fa

try:  # the compiled fused loops; everything works without them, slower
    from . import _fused
except ImportError:  # pragma: no cover - only when the extension is not built
    _fused = None

__all__ = [
    "Layer",
    "Dense",
    "Activation",
    "ReLU",
    "LeakyReLU",
    "PReLU",
    "GELU",
    "make_activation",
    "ACTIVATIONS",
    "fused_available",
]

#: Set to False to run every step through NumPy and fastact's public kernels
#: only (the tests compare both paths).
USE_FUSED = True

ACTIVATIONS = ("relu", "leaky_relu", "prelu", "gelu", "gelu_tanh")

# Codes of the activations the compiled helper fuses (see _fused.pyx).
_KIND_RELU, _KIND_LEAKY, _KIND_PRELU = 0, 1, 2


def fused_available():
    """True when the compiled fused loops are built and enabled."""
    return _fused is not None and USE_FUSED


class _Buffers:
    """Named scratch arrays that grow to the largest batch seen.

    ``get(name, rows, cols)`` returns a C-contiguous ``(rows, cols)`` view of
    an array with at least ``rows`` rows, allocating only when it must grow.
    """

    __slots__ = ("dtype", "_arrays")

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        self._arrays = {}

    def get(self, name, rows, cols):
        arr = self._arrays.get(name)
        if arr is None or arr.shape[0] < rows or arr.shape[1] != cols:
            arr = np.empty((max(rows, 1), cols), dtype=self.dtype)
            self._arrays[name] = arr
        return arr[:rows]

    def clear(self):
        self._arrays.clear()


class Layer:
    """Base class: a layer with parameters and their gradients.

    ``param_names`` lists the attribute names of the parameters; the
    gradient of ``name`` lives in the attribute ``"grad_" + name`` (same
    shape and dtype, overwritten by every ``backward``).

    Parameters
    ----------
    dtype : float32 or float64
        The dtype of the parameters, gradients and results.

    Raises
    ------
    TypeError
        ``dtype`` is neither float32 nor float64.
    """

    param_names = ()

    def __init__(self, dtype=np.float32):
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        self._buf = _Buffers(self.dtype)

    def parameters(self):
        """List of ``(name, param, grad)`` for every parameter of the layer.

        Returns
        -------
        list of (str, ndarray, ndarray)
            One entry per name in ``param_names``, in that order: the
            name, the parameter and its gradient (same shape, the layer's
            dtype).  The arrays are the layer's own, not copies: writing
            into ``param`` changes the layer.  Empty for a layer without
            parameters.
        """
        return [(n, getattr(self, n), getattr(self, "grad_" + n)) for n in self.param_names]

    def forward(self, x):  # pragma: no cover - abstract
        """The layer's output for the batch ``x``; kept ready for :meth:`backward`.

        Parameters
        ----------
        x : ndarray of shape (batch, features)
            C-contiguous, of the layer's dtype.  The layer keeps a
            reference to it (not a copy) for :meth:`backward`: do not
            modify it in between.

        Returns
        -------
        ndarray of shape (batch, out_features)
            A view of the layer's work buffer, overwritten by the next
            ``forward``.
        """
        raise NotImplementedError

    def backward(self, grad):  # pragma: no cover - abstract
        """Gradient with respect to the input of the last :meth:`forward`.

        Parameters
        ----------
        grad : ndarray of shape (batch, out_features)
            Gradient of the loss with respect to the last output, of the
            layer's dtype.

        Returns
        -------
        ndarray of shape (batch, features)
            A view of the layer's work buffer, overwritten by the next
            ``backward``.  The gradients of the parameters are written
            into the ``grad_*`` attributes (overwritten, not accumulated).
        """
        raise NotImplementedError

    def config(self):
        """The constructor arguments (JSON-friendly) that rebuild this layer.

        Returns
        -------
        dict
            Keyword arguments such that ``type(layer)(**config, dtype=...)``
            builds a layer of the same shape and settings (not the same
            parameter values).  Empty when the defaults do.
        """
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class Dense(Layer):
    """Fully connected layer ``y = x @ weight + bias``.

    Parameters
    ----------
    in_features, out_features : int
        Sizes of the input and the output.
    dtype : float32 or float64
    rng : numpy.random.Generator, optional
        Source of the initial weights.  Like PyTorch's ``nn.Linear``, weight
        and bias are drawn from U(-1/sqrt(in_features), 1/sqrt(in_features))
        (kaiming-uniform with a = sqrt(5) for the weight); values are drawn
        in float64 and rounded, so float32 and float64 models with one seed
        start from the same point.
    input_grad : bool
        Whether ``backward`` computes the gradient with respect to the input
        (not needed for the first layer of a network; skipping it saves one
        matrix product per step).

    Raises
    ------
    ValueError
        A size is below 1.
    TypeError
        ``dtype`` is neither float32 nor float64.
    """

    param_names = ("weight", "bias")

    def __init__(self, in_features, out_features, *, dtype=np.float32, rng=None, input_grad=True):
        super().__init__(dtype)
        in_features, out_features = int(in_features), int(out_features)
        if in_features < 1 or out_features < 1:
            raise ValueError(
                f"Dense layer sizes must be positive, got {in_features} -> {out_features}"
            )
        self.in_features, self.out_features = in_features, out_features
        self.input_grad = bool(input_grad)
        rng = np.random.default_rng() if rng is None else rng
        bound = 1.0 / math.sqrt(in_features)
        # Drawn in PyTorch's (out, in) order, stored transposed (in, out).
        w = rng.uniform(-bound, bound, size=(out_features, in_features))
        self.weight = np.ascontiguousarray(w.T, dtype=self.dtype)
        self.bias = rng.uniform(-bound, bound, size=out_features).astype(self.dtype)
        self.grad_weight = np.zeros_like(self.weight)
        self.grad_bias = np.zeros_like(self.bias)
        self._x = None
        self._act = None

    def config(self):
        return {"in_features": self.in_features, "out_features": self.out_features}

    def _widened(self, x):
        """x in the layer dtype: x itself, or a scratch float copy of a bfloat16 x.

        NumPy has no bfloat16 matrix product, so a mixed-precision input is
        widened (exactly) for each product; only the bfloat16 array is kept.
        """
        if x.dtype == self.dtype:
            return x
        wide = self._buf.get("x_wide", x.shape[0], x.shape[1])
        np.copyto(wide, x, casting="unsafe")
        return wide

    def forward(self, x, act=None):
        """``x @ weight + bias``, then ``act`` (an Activation) if given.

        With an activation the pre-activation values are kept for the
        backward pass and the activation's output is returned.

        Parameters
        ----------
        x : ndarray of shape (batch, in_features)
            C-contiguous, of the layer's dtype; an input of another dtype
            (the bfloat16 output of a mixed-precision activation) is
            converted into a scratch array of the layer's dtype for the
            product.  The layer keeps a reference to ``x`` (not a copy) for
            :meth:`backward`: do not modify it in between.
        act : Activation, optional
            The activation that follows this layer, run fused with the bias
            addition (:meth:`Activation.forward_biased`) and remembered for
            :meth:`backward`.

        Returns
        -------
        ndarray of shape (batch, out_features)
            Without ``act``: ``x @ weight + bias`` in the layer's dtype.
            With it: the activation's output, in its storage dtype (the
            layer's dtype, or bfloat16 for mixed precision).  Either is a
            view of a work buffer, overwritten by the next ``forward``.

        Raises
        ------
        ValueError
            ``x`` does not have ``in_features`` columns (raised by
            :func:`numpy.matmul`).
        """
        n = x.shape[0]
        self._x = x
        self._act = act
        z = np.matmul(self._widened(x), self.weight, out=self._buf.get("z", n, self.out_features))
        if act is None:
            if fused_available():
                _fused.bias_add(z, self.bias)
            else:
                np.add(z, self.bias, out=z)
            return z
        return act.forward_biased(z, self.bias)

    def backward(self, grad):
        """Gradients of weight and bias (stored) and of the input (returned).

        ``grad`` is the gradient of the loss with respect to this step's
        output (the activation's output if forward had one).  Returns None
        when the layer was built with ``input_grad=False``.

        Parameters
        ----------
        grad : ndarray of shape (batch, out_features)
            C-contiguous, of the layer's dtype, for the batch of the last
            :meth:`forward`.

        Returns
        -------
        ndarray of shape (batch, in_features), or None
            The gradient with respect to the last ``x``, in the layer's
            dtype: a view of a work buffer, overwritten by the next
            ``backward``.  ``grad_weight`` (shape ``(in_features,
            out_features)``) and ``grad_bias`` (shape ``(out_features,)``)
            are overwritten in place, not accumulated; so is the gradient
            of a PReLU activation's slopes.
        """
        act = self._act
        if act is None:
            dz = grad
            if fused_available():
                _fused.column_sums(dz, self.grad_bias)
            else:
                np.sum(dz, axis=0, out=self.grad_bias)
        else:
            dz = act.backward_biased(grad, self.grad_bias)
        np.matmul(self._widened(self._x).T, dz, out=self.grad_weight)
        if not self.input_grad:
            return None
        return np.matmul(dz, self.weight.T, out=self._buf.get("dx", dz.shape[0], self.in_features))


class Activation(Layer):
    """Base class of the activation layers (element-wise, no shape change).

    Subclasses implement ``forward``/``backward`` with fastact's kernels;
    ``forward_biased``/``backward_biased`` add the preceding dense layer's
    bias and compute its gradient, fused where possible.
    """

    name = None
    _kind = None  # code of the compiled fused loop, or None
    _flush = False  # zero subnormal outputs/gradients in the fused path
    #: None, or the 16-bit dtype (bfloat16) in which the pre-activation and
    #: the output are stored for the backward pass (set by make_activation).
    storage_dtype = None

    def _fused_weight(self):
        return self._no_weight

    def _fused_grad_weight(self):
        return self._no_weight

    def forward(self, x):
        """The activation of every element of ``x``; ``x`` is kept for :meth:`backward`.

        Parameters
        ----------
        x : ndarray of shape (batch, width)
            C-contiguous, of the layer's dtype, or of ``storage_dtype``
            when that is set.  Kept by reference (not copied): do not
            modify it before :meth:`backward`.

        Returns
        -------
        ndarray of shape (batch, width)
            Same dtype as ``x``; a view of the layer's work buffer,
            overwritten by the next ``forward``.
        """
        raise NotImplementedError  # pragma: no cover

    def backward(self, grad):
        """Gradient with respect to the input of the last :meth:`forward`.

        Parameters
        ----------
        grad : ndarray of shape (batch, width)
            Gradient of the loss with respect to the last output, C-contiguous,
            of the dtype of that output.

        Returns
        -------
        ndarray of shape (batch, width)
            ``grad`` times the activation's derivative at the last input,
            same dtype as ``grad``; a view of the layer's work buffer,
            overwritten by the next ``backward``.
        """
        raise NotImplementedError  # pragma: no cover

    def forward_biased(self, z, bias):
        """Add ``bias`` to ``z`` in place (z is kept) and apply the activation.

        The fused step behind ``Dense.forward(x, act)``.

        Parameters
        ----------
        z : ndarray of shape (batch, width)
            The preceding dense layer's ``x @ weight``, C-contiguous, of the
            layer's dtype.  Modified in place: it becomes the
            pre-activation ``z + bias``, which the layer keeps (with
            ``storage_dtype``, a rounded copy of it) for
            :meth:`backward_biased`.
        bias : ndarray of shape (width,)
            The dense layer's bias, of the layer's dtype.

        Returns
        -------
        ndarray of shape (batch, width)
            The activation of ``z + bias``, in ``storage_dtype`` if set,
            else in the layer's dtype; a view of a work buffer, overwritten
            by the next call.  GELU's subnormal outputs are set to zero
            where the compiled helper or ``storage_dtype`` is in use.
        """
        if self.storage_dtype is not None:
            return self._forward_stored(z, bias)
        if self._kind is not None and fused_available():
            self._x = z
            out = self._buf.get("out", z.shape[0], z.shape[1])
            _fused.bias_act_forward(
                z, bias, out, self._kind, self._slope(), self._fused_weight()
            )
            return out
        if fused_available():
            _fused.bias_add(z, bias)
            out = self.forward(z)
            if self._flush:
                _fused.flush_subnormals(out)
            return out
        np.add(z, bias, out=z)
        return self.forward(z)

    def backward_biased(self, grad, grad_bias):
        """Gradient w.r.t. the pre-activation (returned); bias gradient into grad_bias.

        The fused step behind ``Dense.backward`` after
        :meth:`forward_biased`.

        Parameters
        ----------
        grad : ndarray of shape (batch, width)
            Gradient of the loss with respect to the last output of
            :meth:`forward_biased`, C-contiguous, of the layer's dtype (with
            ``storage_dtype`` it is rounded to that dtype first).
        grad_bias : ndarray of shape (width,)
            Of the layer's dtype; overwritten with the column sums of the
            returned gradient (the gradient of the dense layer's bias).

        Returns
        -------
        ndarray of shape (batch, width)
            The gradient with respect to the pre-activation ``z + bias``, in
            the layer's dtype; a view of a work buffer, overwritten by the
            next call.  A PReLU layer also overwrites ``grad_weight``.  GELU's
            subnormal gradients are set to zero where the compiled helper or
            ``storage_dtype`` is in use.
        """
        if self.storage_dtype is not None:
            return self._backward_stored(grad, grad_bias)
        if self._kind is not None and fused_available():
            z = self._x
            dz = self._buf.get("dx", z.shape[0], z.shape[1])
            _fused.act_bias_backward(
                grad, z, dz, grad_bias, self._kind, self._slope(),
                self._fused_weight(), self._fused_grad_weight(),
            )
            return dz
        dz = self.backward(grad)
        if fused_available():
            _fused.column_sums(dz, grad_bias, self._flush)
        else:
            np.sum(dz, axis=0, out=grad_bias)
        return dz

    # Mixed precision (storage_dtype bfloat16): the bias is added in the
    # layer dtype, the sum rounded once to bfloat16 and kept; the activation
    # and its gradient run in fastact's bfloat16 kernels (float32 arithmetic,
    # one rounding per result); the incoming gradient is rounded to bfloat16
    # for the kernel, and the pre-activation gradient widened back for the
    # bias gradient and the matrix products.  The fused loops are float-only.

    def _forward_stored(self, z, bias):
        np.add(z, bias, out=z)
        zs = self._store.get("z", z.shape[0], z.shape[1])
        np.copyto(zs, z, casting="unsafe")  # round to nearest even
        out = self.forward(zs)
        if self._flush:
            _flush_subnormals_16(out)
        return out

    def _backward_stored(self, grad, grad_bias):
        gs = self._store.get("grad", grad.shape[0], grad.shape[1])
        np.copyto(gs, grad, casting="unsafe")
        dzs = self.backward(gs)
        if self._flush:
            _flush_subnormals_16(dzs)
        dz = self._buf.get("dx", grad.shape[0], grad.shape[1])
        np.copyto(dz, dzs, casting="unsafe")  # exact
        np.sum(dz, axis=0, out=grad_bias)
        return dz

    def _slope(self):
        return 0.0

    def _scratch(self, dtype):
        if dtype == self.dtype:
            return self._buf
        if self.storage_dtype is not None and dtype == self.storage_dtype:
            return self._store
        allowed = str(self.dtype) + ("" if self.storage_dtype is None
                                     else f" or {self.storage_dtype}")
        raise TypeError(f"{type(self).__name__} layer of dtype {self.dtype}: arrays must be "
                        f"{allowed}, got {dtype}")

    def _out(self, x):
        self._x = x
        return self._scratch(x.dtype).get("out", x.shape[0], x.shape[1])

    def _dx(self, grad):
        return self._scratch(grad.dtype).get("dx", grad.shape[0], grad.shape[1])

    def set_storage_dtype(self, dtype):
        """Store activations in ``dtype`` (bfloat16) for a float32 layer; None: the layer dtype.

        Parameters and gradients stay in the layer dtype (mixed precision).

        Parameters
        ----------
        dtype : bfloat16 or None
            ``ml_dtypes.bfloat16`` (or its name, with ml_dtypes imported),
            or None to store in the layer's dtype again.  Sets
            :attr:`storage_dtype`.

        Raises
        ------
        TypeError
            ``dtype`` is not bfloat16, or the layer is not float32.
        """
        if dtype is None:
            self.storage_dtype = None
            return
        dtype = np.dtype(dtype)
        if dtype.name != "bfloat16" or self.dtype != np.float32:
            raise TypeError(
                f"storage_dtype must be bfloat16 on a float32 layer, got {dtype} on {self.dtype}")
        self.storage_dtype = dtype
        self._store = _Buffers(dtype)

    def __init__(self, dtype=np.float32):
        super().__init__(dtype)
        self._x = None
        self._no_weight = np.zeros(1, dtype=self.dtype)


def _flush_subnormals_16(a):
    """Zero (keeping the sign) the subnormal values of a bfloat16 array in place.

    bfloat16 has float32's exponent range, so its subnormals widen to float32
    subnormals, which slow the following matrix products down (see GELU).
    """
    bits = a.view(np.uint16)
    sub = (bits & 0x7F80) == 0
    bits[sub] &= 0x8000


class ReLU(Activation):
    """max(x, 0).

    Parameters
    ----------
    dtype : float32 or float64
    """

    name = "relu"
    _kind = _KIND_RELU

    def forward(self, x):
        return fa.relu(x, out=self._out(x))

    def backward(self, grad):
        return fa.relu_backward(grad, self._x, out=self._dx(grad))


class LeakyReLU(Activation):
    """x if x > 0 else negative_slope * x (PyTorch's default slope 0.01).

    Parameters
    ----------
    negative_slope : float
        The slope for negative inputs.
    dtype : float32 or float64

    Raises
    ------
    ValueError
        ``negative_slope`` is not finite.
    """

    name = "leaky_relu"
    _kind = _KIND_LEAKY

    def __init__(self, negative_slope=0.01, dtype=np.float32):
        super().__init__(dtype)
        self.negative_slope = float(negative_slope)
        if not math.isfinite(self.negative_slope):
            raise ValueError(f"negative_slope must be finite, got {negative_slope!r}")

    def config(self):
        return {"negative_slope": self.negative_slope}

    def _slope(self):
        return self.negative_slope

    def forward(self, x):
        return fa.leaky_relu(x, self.negative_slope, out=self._out(x))

    def backward(self, grad):
        return fa.leaky_relu_backward(grad, self._x, self.negative_slope, out=self._dx(grad))


class PReLU(Activation):
    """x if x > 0 else weight * x, with a learned slope per unit.

    Parameters
    ----------
    num_parameters : int
        Number of slopes: the layer width (one per unit) or 1 (shared).
    init : float
        Initial slope, 0.25 as in PyTorch.  Learned slopes may become
        negative or exceed 1; nothing constrains them.
    dtype : float32 or float64

    Attributes
    ----------
    weight, grad_weight : ndarray of shape (num_parameters,)
        The slopes and their gradient, of the layer's dtype.

    Raises
    ------
    ValueError
        ``num_parameters`` is below 1.
    """

    name = "prelu"
    _kind = _KIND_PRELU
    param_names = ("weight",)

    def __init__(self, num_parameters=1, init=0.25, dtype=np.float32):
        super().__init__(dtype)
        num_parameters = int(num_parameters)
        if num_parameters < 1:
            raise ValueError(f"num_parameters must be positive, got {num_parameters}")
        self.num_parameters = num_parameters
        self.init = float(init)
        self.weight = np.full(num_parameters, self.init, dtype=self.dtype)
        self.grad_weight = np.zeros_like(self.weight)

    def config(self):
        return {"num_parameters": self.num_parameters, "init": self.init}

    def _fused_weight(self):
        return self.weight

    def _fused_grad_weight(self):
        return self.grad_weight

    def _weight_as(self, dtype):
        # A mixed-precision layer runs the bfloat16 kernel with the float32
        # slopes rounded to bfloat16; the float32 slopes stay the parameter.
        return self.weight if dtype == self.dtype else self.weight.astype(dtype)

    def forward(self, x):
        return fa.prelu(x, self._weight_as(x.dtype), axis=1, out=self._out(x))

    def backward(self, grad):
        """As :meth:`Activation.backward`; also overwrites ``grad_weight``.

        ``grad_weight`` receives the gradient of the loss with respect to
        the slopes (one per unit, or their total for a shared slope).
        """
        grad_input, grad_weight = fa.prelu_backward(
            grad, self._x, self._weight_as(self._x.dtype), axis=1)
        self.grad_weight[...] = np.reshape(grad_weight, self.grad_weight.shape)
        dx = self._dx(grad)
        dx[...] = grad_input
        return dx


class GELU(Activation):
    """x * Phi(x), exact (``approximate="none"``) or with the tanh formula.

    Parameters
    ----------
    approximate : {"none", "tanh"}
        ``"none"``: the exact GELU; ``"tanh"``: the tanh approximation.
    dtype : float32 or float64

    Raises
    ------
    ValueError
        ``approximate`` is neither ``"none"`` nor ``"tanh"``.
    """

    name = "gelu"
    # GELU of inputs below about -13 (float32) is subnormal, and so is its
    # gradient; in a training step they are flushed to zero (a change below
    # 1.2e-38) because subnormals slow the following matrix products down
    # many times over -- epochs grew 2x slower as training went on.
    _flush = True

    def __init__(self, approximate="none", dtype=np.float32):
        super().__init__(dtype)
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def config(self):
        return {"approximate": self.approximate}

    def forward(self, x):
        return fa.gelu(x, approximate=self.approximate, out=self._out(x))

    def backward(self, grad):
        return fa.gelu_backward(grad, self._x, approximate=self.approximate, out=self._dx(grad))


def make_activation(name, width, dtype=np.float32, *, negative_slope=0.01,
                    prelu_init=0.25, shared_prelu=False, storage_dtype=None):
    """Build an activation layer by name (one of :data:`ACTIVATIONS`).

    ``"gelu"`` is the exact GELU, ``"gelu_tanh"`` the tanh approximation.
    ``width`` is the number of units (used by PReLU's per-unit slopes).
    ``storage_dtype`` (bfloat16, with ``dtype`` float32) keeps the layer's
    pre-activation and output in bfloat16 (mixed precision).

    Parameters
    ----------
    name : str
        ``"relu"``, ``"leaky_relu"``, ``"prelu"``, ``"gelu"`` or
        ``"gelu_tanh"``; case and surrounding spaces are ignored, ``-``
        reads as ``_``, and ``"leakyrelu"`` and ``"gelu_approx"`` are
        accepted too.
    width : int
        Number of units; PReLU gets one slope per unit.
    dtype : float32 or float64
        The layer's dtype.
    negative_slope : float
        Leaky ReLU's slope (other activations ignore it).
    prelu_init : float
        PReLU's initial slope (other activations ignore it).
    shared_prelu : bool
        PReLU with one slope shared by all units instead of ``width``.
    storage_dtype : bfloat16 or None
        See :meth:`Activation.set_storage_dtype`.

    Returns
    -------
    Activation
        A new :class:`ReLU`, :class:`LeakyReLU`, :class:`PReLU` or
        :class:`GELU`.

    Raises
    ------
    ValueError
        Unknown ``name``, or a parameter the layer refuses (a non-finite
        ``negative_slope``, ``width`` below 1 for PReLU).
    TypeError
        ``dtype`` is neither float32 nor float64, or ``storage_dtype`` is
        neither None nor bfloat16 on a float32 layer.
    """
    act = _make_activation(name, width, dtype, negative_slope, prelu_init, shared_prelu)
    act.set_storage_dtype(storage_dtype)
    return act


def _make_activation(name, width, dtype, negative_slope, prelu_init, shared_prelu):
    key = str(name).strip().lower().replace("-", "_")
    if key == "relu":
        return ReLU(dtype=dtype)
    if key in ("leaky_relu", "leakyrelu"):
        return LeakyReLU(negative_slope, dtype=dtype)
    if key == "prelu":
        return PReLU(1 if shared_prelu else width, prelu_init, dtype=dtype)
    if key == "gelu":
        return GELU("none", dtype=dtype)
    if key in ("gelu_tanh", "gelu_approx"):
        return GELU("tanh", dtype=dtype)
    raise ValueError(
        f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}"
    )
