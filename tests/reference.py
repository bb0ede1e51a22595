"""Independent references for the kernels, and a table of the public ops.

The ReLU family's references are the textbook formulas evaluated by NumPy in
the array's own dtype (fastact must match them bit for bit).  GELU's are
computed in float64 with SciPy (accurate enough to judge float32 results)
or in high precision with mpmath (to judge float64 results).
"""

import functools

import mpmath
import numpy as np
from scipy import special

import fastact as fa

SQRT_2_OVER_PI = np.sqrt(2.0 / np.pi)
TANH_CUBIC = 0.044715


# --------------------------------------------------- ReLU family (bit-exact) --

def relu_ref(x):
    return np.where(x <= 0, x.dtype.type(0), x)


def relu_backward_ref(g, x):
    return np.where(x > 0, g, np.where(x <= 0, x.dtype.type(0), x))


# inf * 0 (a zero slope) is NaN in both fastact and the reference: no warning.
@np.errstate(invalid="ignore", over="ignore")
def leaky_relu_ref(x, slope):
    return np.where(x > 0, x, x * x.dtype.type(slope))


@np.errstate(invalid="ignore", over="ignore")
def leaky_relu_backward_ref(g, x, slope):
    return np.where(x > 0, g, np.where(x <= 0, g * x.dtype.type(slope), x))


def channel_shape(ndim, axis, channels):
    """Shape that broadcasts a per-channel weight along `axis` of an ndim array."""
    shape = [1] * ndim
    shape[axis] = channels
    return tuple(shape)


def prelu_ref(x, weight, axis):
    if weight.shape == (1,):
        return leaky_relu_ref(x, weight[0])
    w = weight.reshape(channel_shape(x.ndim, axis, weight.shape[0]))
    return np.where(x > 0, x, x * w)


def prelu_backward_ref(g, x, weight, axis):
    """(grad_input, grad_weight) with grad_weight summed exactly (math.fsum)."""
    shared = weight.shape == (1,)
    w = weight[0] if shared else weight.reshape(channel_shape(x.ndim, axis, weight.shape[0]))
    grad_input = np.where(x > 0, g, np.where(x <= 0, g * w, x))
    terms = np.where(x > 0, 0.0, x.astype(np.float64) * g.astype(np.float64))
    if shared:
        sums = [_fsum(terms.ravel())]
    else:
        moved = np.moveaxis(terms, axis, 0)
        sums = [_fsum(moved[c].ravel()) for c in range(weight.shape[0])]
    return grad_input, np.array(sums, dtype=np.float64)


def _fsum(values):
    import math

    return math.fsum(values.tolist()) if values.size else 0.0


# ------------------------------------------------------------------- GELU --

def gelu_ref64(x):
    """GELU in float64 from SciPy's ndtr; judges float32 results (|x| < 40)."""
    x = np.asarray(x, dtype=np.float64)
    return x * special.ndtr(x)


def gelu_grad_ref64(x):
    x = np.asarray(x, dtype=np.float64)
    return special.ndtr(x) + x * np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)


def gelu_tanh_ref64(x):
    x = np.asarray(x, dtype=np.float64)
    z = SQRT_2_OVER_PI * (x + TANH_CUBIC * x**3)
    return x * special.expit(2 * z)


def gelu_tanh_grad_ref64(x):
    x = np.asarray(x, dtype=np.float64)
    z = SQRT_2_OVER_PI * (x + TANH_CUBIC * x**3)
    s = special.expit(2 * z)
    dz = SQRT_2_OVER_PI * (1 + 3 * TANH_CUBIC * x * x)
    return s + x * 2 * s * (1 - s) * dz


@functools.lru_cache(maxsize=None)
def _mp_value(kind, x):
    """High-precision value at the exact double x (kind: gelu, grad, tanh, tanh_grad)."""
    with mpmath.workdps(50):
        t = mpmath.mpf(x)
        if kind in ("gelu", "grad"):
            cdf = mpmath.ncdf(t)
            if kind == "gelu":
                return float(t * cdf)
            return float(cdf + t * mpmath.npdf(t))
        c = mpmath.sqrt(2 / mpmath.pi)
        k = mpmath.mpf("0.044715")  # the decimal constant, not its double
        w = 2 * c * (t + k * t**3)
        s = 1 / (1 + mpmath.exp(-w))
        if kind == "tanh":
            return float(t * s)
        return float(s + t * s * (1 - s) * 2 * c * (1 + 3 * k * t * t))


def mp_reference(kind, x):
    """mpmath reference for each element of a float64 array (cached per value)."""
    return np.array([_mp_value(kind, float(v)) for v in np.ravel(x)]).reshape(np.shape(x))


# ------------------------------------------------------------- the op table --

def _prelu_fw(x, out=None):
    w = np.linspace(-0.5, 0.5, x.shape[1] if x.ndim >= 2 else 1).astype(x.dtype)
    return fa.prelu(x, w, out=out)


def _prelu_fw_ref(x):
    w = np.linspace(-0.5, 0.5, x.shape[1] if x.ndim >= 2 else 1).astype(x.dtype)
    return prelu_ref(x, w, 1)


def _prelu_bw(g, x, out=None):
    assert out is None
    w = np.linspace(-0.5, 0.5, x.shape[1] if x.ndim >= 2 else 1).astype(x.dtype)
    return fa.prelu_backward(g, x, w)[0]


def _prelu_bw_ref(g, x):
    w = np.linspace(-0.5, 0.5, x.shape[1] if x.ndim >= 2 else 1).astype(x.dtype)
    return prelu_backward_ref(g, x, w, 1)[0]


# name -> (forward(x, out=None), exact reference or None)
FORWARD_OPS = {
    "relu": (fa.relu, relu_ref),
    "leaky_relu": (lambda x, out=None: fa.leaky_relu(x, 0.1, out=out),
                   lambda x: leaky_relu_ref(x, 0.1)),
    "prelu": (_prelu_fw, _prelu_fw_ref),
    "gelu": (fa.gelu, None),
    "gelu_tanh": (lambda x, out=None: fa.gelu(x, approximate="tanh", out=out), None),
}

# name -> (backward(g, x, out=None), exact reference or None, supports out=)
BACKWARD_OPS = {
    "relu": (fa.relu_backward, relu_backward_ref, True),
    "leaky_relu": (lambda g, x, out=None: fa.leaky_relu_backward(g, x, 0.1, out=out),
                   lambda g, x: leaky_relu_backward_ref(g, x, 0.1), True),
    "prelu": (_prelu_bw, _prelu_bw_ref, False),
    "gelu": (fa.gelu_backward, None, True),
    "gelu_tanh": (lambda g, x, out=None: fa.gelu_backward(g, x, approximate="tanh", out=out),
                  None, True),
}

GELU_REF64 = {"gelu": gelu_ref64, "gelu_tanh": gelu_tanh_ref64}
GELU_GRAD_REF64 = {"gelu": gelu_grad_ref64, "gelu_tanh": gelu_tanh_grad_ref64}


def expected_forward(name, x):
    """What fastact must return for x: exact for ReLU-like, float64 reference rounded for GELU."""
    exact = FORWARD_OPS[name][1]
    if exact is not None:
        return exact(x)
    return GELU_REF64[name](x).astype(x.dtype)


def ulp_error(got, ref64):
    """Error of float32 results in units of the float32 spacing at the reference."""
    ref32 = np.abs(ref64).astype(np.float32)
    spacing = np.spacing(ref32).astype(np.float64)
    return np.abs(got.astype(np.float64) - ref64) / spacing


def every_float_around(points, dtype, ulps):
    """Every value of ``dtype`` (float32 or float64) within ``ulps`` units of
    each point, and their negatives."""
    bits_type = np.int32 if np.dtype(dtype) == np.float32 else np.int64
    out = []
    for p in points:
        bits = np.asarray(p, dtype).view(bits_type)
        out.append(np.arange(bits - ulps, bits + ulps + 1, dtype=bits_type).view(dtype))
    x = np.concatenate(out)
    return np.concatenate([x, -x])

