"""The public API's contract: dtypes, shapes, layouts, out=, in place, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastact as fa
from reference import BACKWARD_OPS, FORWARD_OPS, expected_forward, prelu_backward_ref

FLOATS = [np.float32, np.float64]


def _close(got, want, dtype):
    """GELU results are compared loosely here; accuracy has its own tests."""
    if dtype == np.float32:
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-37)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)


def _check_forward(name, x):
    forward, exact = FORWARD_OPS[name]
    got = forward(x)
    assert got.dtype == x.dtype and got.shape == x.shape
    want = expected_forward(name, x)
    if exact is not None:
        np.testing.assert_array_equal(got, want)
    else:
        _close(got, want, x.dtype)
    return got


# --------------------------------------------------------------- shapes ---

@pytest.mark.parametrize("name", FORWARD_OPS)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(), (0,), (1,), (7,), (3, 0, 2), (4, 5), (2, 3, 4, 5)])
def test_forward_any_shape(name, dtype, shape, rng):
    x = rng.standard_normal(shape).astype(dtype)
    got = _check_forward(name, x)
    assert isinstance(got, np.ndarray)


@pytest.mark.parametrize("name", FORWARD_OPS)
@pytest.mark.parametrize("dtype", FLOATS)
def test_forward_layouts(name, dtype, rng):
    base = rng.standard_normal((6, 8, 10)).astype(dtype)
    layouts = {
        "C": base,
        "F": np.asfortranarray(base),
        "strided": base[::2, 1::3, ::2],
        "negative": base[::-1, :, ::-2],
        "transposed": base.transpose(2, 0, 1),
    }
    for label, x in layouts.items():
        before = x.copy()
        got = _check_forward(name, x)
        np.testing.assert_array_equal(x, before, err_msg=f"{label}: input modified")
        if x.flags.f_contiguous and not x.flags.c_contiguous:
            assert got.flags.f_contiguous, "a Fortran input keeps its layout"


@st.composite
def strided_arrays(draw):
    """Float arrays of random shape viewed with random (possibly negative) strides."""
    dtype = draw(st.sampled_from(FLOATS))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6))
    base = draw(hnp.arrays(dtype, tuple(2 * s + 1 for s in shape),
                           elements=st.floats(-30, 30, width=32)))
    index = tuple(
        slice(None, None, draw(st.sampled_from([1, 2, -1, -2]))) for _ in shape
    )
    view = base[index]
    view = view[tuple(slice(0, s) for s in shape)]
    if draw(st.booleans()) and view.ndim > 1:
        view = view.T
    return view


@pytest.mark.parametrize("name", FORWARD_OPS)
@given(x=strided_arrays())
@settings(max_examples=40, deadline=None)
def test_forward_property_any_layout(name, x):
    before = x.copy()
    _check_forward(name, x)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("name", BACKWARD_OPS)
@given(x=strided_arrays(), data=st.data())
@settings(max_examples=30, deadline=None)
def test_backward_property_any_layout(name, x, data):
    backward, exact, _ = BACKWARD_OPS[name]
    g = data.draw(hnp.arrays(x.dtype, x.shape, elements=st.floats(-5, 5, width=32)))
    if data.draw(st.booleans()) and g.ndim:
        g = np.asfortranarray(g)
    got = backward(g, x)
    assert got.shape == x.shape and got.dtype == x.dtype
    if exact is not None:
        np.testing.assert_array_equal(got, exact(g, x))


# ------------------------------------------------------------ out= / in place -

@pytest.mark.parametrize("name", FORWARD_OPS)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("order", ["C", "F", "strided"])
def test_forward_out(name, dtype, order, rng):
    x = rng.standard_normal((5, 6, 7)).astype(dtype)
    want = expected_forward(name, x)
    if order == "strided":
        holder = np.full((10, 6, 7), np.nan, dtype)
        out = holder[::2]
    else:
        out = np.full(x.shape, np.nan, dtype, order=order)
    result = FORWARD_OPS[name][0](x, out=out)
    assert result is out
    if FORWARD_OPS[name][1] is not None:
        np.testing.assert_array_equal(out, want)
    else:
        _close(out, want, dtype)
    if order == "strided":
        assert np.isnan(holder[1::2]).all(), "out's gaps must not be written"


@pytest.mark.parametrize("name", FORWARD_OPS)
@pytest.mark.parametrize("dtype", FLOATS)
def test_forward_in_place(name, dtype, rng):
    x = rng.standard_normal((33, 17)).astype(dtype)
    want = expected_forward(name, x)
    result = FORWARD_OPS[name][0](x, out=x)
    assert result is x
    np.testing.assert_array_equal(x, want) if FORWARD_OPS[name][1] else _close(x, want, dtype)


@pytest.mark.parametrize("name", FORWARD_OPS)
def test_forward_out_overlapping_input(name, rng):
    """out shifted against x over the same memory: computed as if x were copied first."""
    buf = rng.standard_normal(1000)
    x = buf[:-1]
    out = buf[1:]
    want = expected_forward(name, x.copy())
    FORWARD_OPS[name][0](x, out=out)
    np.testing.assert_allclose(out, want, rtol=1e-13, atol=0)
    reverse = rng.standard_normal(500)
    want = expected_forward(name, reverse.copy())
    FORWARD_OPS[name][0](reverse, out=reverse[::-1])
    np.testing.assert_allclose(reverse[::-1], want, rtol=1e-13, atol=0)


@pytest.mark.parametrize("name", [n for n, v in BACKWARD_OPS.items() if v[2]])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("target", ["new", "grad_output", "x"])
@pytest.mark.parametrize("scale", [1.0, 6.0])
def test_backward_out_and_in_place(name, dtype, target, scale, simd_level, rng):
    # scale 6: GELU's loops queue most elements for their exp path, whose
    # products with grad_output must not read an out that aliases it.
    backward, exact, _ = BACKWARD_OPS[name]
    x = (scale * rng.standard_normal((40, 300))).astype(dtype)
    g = rng.standard_normal((40, 300)).astype(dtype)
    want = backward(g.copy(), x.copy())
    out = {"new": np.empty_like(x), "grad_output": g, "x": x}[target]
    result = backward(g, x, out=out)
    assert result is out
    np.testing.assert_array_equal(out, want)


def test_inputs_never_modified(rng):
    x = rng.standard_normal((64, 8)).astype(np.float32)
    g = rng.standard_normal((64, 8)).astype(np.float32)
    w = rng.random(8).astype(np.float32)
    copies = [a.copy() for a in (x, g, w)]
    fa.relu(x), fa.relu_backward(g, x), fa.leaky_relu(x), fa.leaky_relu_backward(g, x)
    fa.gelu(x), fa.gelu_backward(g, x), fa.gelu(x, "tanh"), fa.gelu_backward(g, x, "tanh")
    fa.prelu(x, w), fa.prelu_backward(g, x, w)
    for before, after in zip(copies, (x, g, w)):
        np.testing.assert_array_equal(before, after)


# --------------------------------------------------------------- dtypes ---

@pytest.mark.parametrize("dtype", FLOATS)
def test_dtype_kept_and_lists_accepted(dtype):
    x = np.array([-1.5, 0.0, 2.0], dtype)
    assert fa.relu(x).dtype == dtype
    assert fa.prelu(x, [0.25]).dtype == dtype  # a sequence takes x's dtype
    np.testing.assert_array_equal(fa.relu([-1.0, 2.0]), [0.0, 2.0])


def test_non_native_byte_order_is_converted():
    x = np.array([-1.0, 0.5, 3.0], dtype=">f8")
    got = fa.relu(x)
    assert got.dtype == np.float64 and got.dtype.isnative
    np.testing.assert_array_equal(got, [0.0, 0.5, 3.0])


def test_read_only_input_is_fine():
    x = np.linspace(-1, 1, 11)
    x.flags.writeable = False
    np.testing.assert_array_equal(fa.relu(x), np.maximum(x, 0))


# ------------------------------------------------------------ bad input ---

BAD_DTYPES = [np.int32, np.int64, np.uint8, np.bool_, np.complex64, np.complex128, np.uint16]


@pytest.mark.parametrize("dtype", BAD_DTYPES)
def test_bad_dtype_names_the_argument(dtype):
    x = np.zeros(4, dtype)
    good = np.zeros(4, np.float32)
    for call, argument in [
        (lambda: fa.relu(x), "x"),
        (lambda: fa.leaky_relu(x), "x"),
        (lambda: fa.gelu(x), "x"),
        (lambda: fa.prelu(x, np.ones(1, np.float32)), "x"),
        (lambda: fa.relu_backward(x, good), "grad_output"),
        (lambda: fa.gelu_backward(good, x), "x"),
        (lambda: fa.prelu(good, x[:1]), "weight"),
    ]:
        with pytest.raises(TypeError, match=rf"\b{argument}\b.*float32 or float64"):
            call()


@pytest.mark.parametrize("bad", [None, "abc", [[1.0], [1.0, 2.0]], {"a": 1}, object()])
def test_not_an_array(bad):
    with pytest.raises(TypeError, match=r"\bx\b"):
        fa.relu(bad)


def test_mixed_float_dtypes_are_an_error():
    x32 = np.ones(3, np.float32)
    x64 = np.ones(3, np.float64)
    with pytest.raises(TypeError, match="grad_output has dtype float64 but x has dtype float32"):
        fa.relu_backward(x64, x32)
    with pytest.raises(TypeError, match="weight has dtype float64"):
        fa.prelu(x32, np.ones(1))


def test_shape_mismatch():
    with pytest.raises(ValueError, match=r"grad_output must have the shape of x \(3,\)"):
        fa.gelu_backward(np.ones(4), np.ones(3))
    with pytest.raises(ValueError, match="grad_output"):
        fa.prelu_backward(np.ones((2, 3)), np.ones((3, 2)), np.ones(2))


@pytest.mark.parametrize(
    "out, error, pattern",
    [
        (np.empty(4, np.float32), TypeError, "out must have dtype float64"),
        (np.empty(5), ValueError, r"out must have the shape of x \(4,\)"),
        ([0.0] * 4, TypeError, "out must be a numpy.ndarray"),
    ],
)
def test_bad_out(out, error, pattern):
    x = np.ones(4)
    for call in (lambda: fa.relu(x, out=out), lambda: fa.gelu_backward(x, x, out=out)):
        with pytest.raises(error, match=pattern):
            call()


def test_read_only_out():
    x = np.ones(4)
    out = np.empty(4)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        fa.leaky_relu(x, out=out)


def test_bad_parameters():
    x = np.ones(4)
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
        fa.gelu(x, approximate="erf")
    with pytest.raises(ValueError, match="approximate"):
        fa.gelu_backward(x, x, approximate=None)
    for slope in ("0.1", None, np.ones(2), True, 1j):
        with pytest.raises(TypeError, match="negative_slope must be a real number"):
            fa.leaky_relu(x, slope)


def test_prelu_weight_and_axis_errors():
    x = np.ones((2, 3, 4), np.float32)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\) to match x.shape\[1\]"):
        fa.prelu(x, np.ones(4, np.float32))
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\)"):
        fa.prelu(x, np.ones(3, np.float32), axis=2)
    with pytest.raises(ValueError, match="axis 3 is out of range for x with 3 dimension"):
        fa.prelu(x, np.ones(3, np.float32), axis=3)
    with pytest.raises(ValueError, match="weight must be 1-D"):
        fa.prelu(x, np.ones((1, 3), np.float32))
    with pytest.raises(ValueError, match="weight must be 1-D"):
        fa.prelu(x, np.float32(0.25))
    with pytest.raises(TypeError, match="axis must be an integer"):
        fa.prelu(x, np.ones(3, np.float32), axis=1.0)
    with pytest.raises(ValueError, match="axis 1 is out of range for x with 1 dimension"):
        fa.prelu_backward(np.ones(3), np.ones(3), np.ones(3))


def test_errors_leave_out_untouched():
    x = np.ones(4)
    out = np.full(4, 7.0)
    with pytest.raises(ValueError):
        fa.gelu(x, approximate="bad", out=out)
    np.testing.assert_array_equal(out, 7.0)


# ------------------------------------------------------------------ PReLU ---

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(
    "shape, axis",
    [((5, 3), 1), ((4, 3, 6), 1), ((2, 3, 4, 5), 1), ((4, 3, 6), -1), ((4, 3, 6), 0),
     ((7,), 0), ((3, 4), 0), ((2, 0, 3), 1), ((0, 3), 1)],
)
@pytest.mark.parametrize("order", ["C", "F", "strided"])
def test_prelu_per_channel(dtype, shape, axis, order, rng):
    x = rng.standard_normal(shape).astype(dtype)
    if order == "F":
        x = np.asfortranarray(x)
    elif order == "strided":
        x = np.repeat(x, 2, axis=-1)[..., ::2]
    channels = shape[axis]
    w = rng.uniform(-1, 1, channels).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    np.testing.assert_array_equal(fa.prelu(x, w, axis=axis), _prelu_expected(x, w, axis))
    grad_input, grad_weight = fa.prelu_backward(g, x, w, axis=axis)
    want_input, want_weight = prelu_backward_ref(g, x, w, axis)
    np.testing.assert_array_equal(grad_input, want_input)
    assert grad_weight.shape == w.shape and grad_weight.dtype == dtype
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(grad_weight, want_weight, rtol=rtol, atol=1e-30)


def _prelu_expected(x, w, axis):
    shape = [1] * x.ndim
    shape[axis] = w.shape[0]
    return np.where(x > 0, x, x * w.reshape(shape))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (2, 3, 4)])
def test_prelu_shared_slope(dtype, shape, rng):
    x = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    w = np.array([-0.3], dtype)
    np.testing.assert_array_equal(fa.prelu(x, w), np.where(x > 0, x, x * w[0]))
    grad_input, grad_weight = fa.prelu_backward(g, x, w)
    want_input, want_weight = prelu_backward_ref(g, x, w, 1)
    np.testing.assert_array_equal(grad_input, want_input)
    assert grad_weight.shape == (1,)
    np.testing.assert_allclose(grad_weight, want_weight, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_prelu_out_overlapping_weight():
    """Slopes stored in out's own memory are read before out is written."""
    buf = np.array([[-1.0, -2.0, 3.0], [0.5, 0.25, -4.0]])
    x = np.array([[-1.0, -1.0, -1.0], [-2.0, 2.0, -2.0]])
    weight = buf[0]  # a view into the first row of out, written before the second is
    want = np.where(x > 0, x, x * weight.copy())
    fa.prelu(x, weight, out=buf)
    np.testing.assert_array_equal(buf, want)


def test_prelu_empty_gives_zero_weight_gradient():
    x = np.empty((0, 3))
    grad_input, grad_weight = fa.prelu_backward(x, x, np.ones(3))
    assert grad_input.shape == (0, 3)
    np.testing.assert_array_equal(grad_weight, np.zeros(3))
