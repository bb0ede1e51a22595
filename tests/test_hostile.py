"""Hostile input: random types, shapes, dtypes, strides, axes, slopes, strings, outs.

Whatever it is given, a public function either returns the right answer or
raises one of the documented exceptions (TypeError, ValueError).  It never
crashes, never changes an input that is not out, and never writes outside
out: out lives inside a larger byte buffer (at any offset, aligned or not,
with any strides) whose other bytes must keep their guard value.  A result
must equal the same call on fresh contiguous copies without out=, so the
layout, alias and out= handling cannot change an answer.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastact as fa

DOCUMENTED = (TypeError, ValueError)
GUARD = 0xA5

ARRAY_DTYPES = ["float32", "float64", ">f4", ">f8", "float16", "int32", "int64", "bool",
                "complex64", "object", "U2"]
FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=32) | st.sampled_from(
    [0.0, -0.0, 1e-45, -1e-45, 3.4e38, -3.4e38])


@st.composite
def arrays(draw, shape=None, dtype=None):
    """An ndarray of a random dtype and layout (C, F, stepped, reversed)."""
    if dtype is None:
        dtype = draw(st.sampled_from(ARRAY_DTYPES))
    if shape is None:
        shape = tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
    layout = draw(st.sampled_from(["C", "F", "step", "reverse"]))
    size = int(np.prod(shape)) if shape else 1
    values = draw(st.lists(FLOATS, min_size=2 * size, max_size=2 * size))
    with np.errstate(all="ignore"):
        if dtype == "U2":
            base = np.array([str(v)[:2] for v in values], dtype)
        elif dtype == "object":
            base = np.array(values, dtype=object)
        elif dtype in ("int32", "int64", "bool"):
            base = np.nan_to_num(np.array(values)).clip(-1e6, 1e6).astype(dtype)
        else:
            base = np.array(values, np.float64).astype(dtype)
    if layout == "step" and shape:
        return base.reshape(shape[:-1] + (2 * shape[-1],))[..., ::2]
    arr = base[:size].reshape(shape)
    if layout == "F":
        return np.asfortranarray(arr)
    if layout == "reverse" and shape:
        return arr[..., ::-1]
    return arr


@st.composite
def hostile_values(draw, like=None):
    """Mostly arrays shaped like `like` (to reach the kernels), sometimes junk."""
    kind = draw(st.sampled_from(["like", "like", "like", "array", "junk"]))
    if kind == "like" and isinstance(like, np.ndarray):
        dtype = draw(st.sampled_from([like.dtype.str] * 4 + ARRAY_DTYPES))
        return draw(arrays(shape=like.shape, dtype=dtype))
    if kind in ("like", "array"):
        return draw(arrays())
    return draw(st.sampled_from([None, "abc", 2.5, -1, [1.0, -2.0], [[1.0], [2.0, 3.0]],
                                 {"a": 1}, object(), b"\x00\x01", 1j, [], ()]))


@st.composite
def guarded_out(draw, like):
    """(out, buffer, footprint): out inside a guard buffer, or junk with buffer None."""
    kind = draw(st.sampled_from(["guarded"] * 5 + ["none", "x", "list", "readonly"]))
    if kind == "none":
        return None, None, None
    if kind == "x":
        return "x", None, None
    if kind == "list":
        return [0.0, 1.0], None, None
    shape = like.shape if isinstance(like, np.ndarray) and draw(st.booleans()) else tuple(
        draw(st.lists(st.integers(0, 4), max_size=3)))
    dtype_str = like.dtype.str if isinstance(like, np.ndarray) else "<f4"
    dtype = np.dtype(draw(st.sampled_from([dtype_str] * 4 + ["float32", "float64", ">f4",
                                                              "int32", "float16"])))
    step = draw(st.sampled_from([1, 1, 2, 3]))
    order = draw(st.sampled_from(["C", "F"]))
    itemsize = dtype.itemsize
    strides, span = [], itemsize
    dims = range(len(shape)) if order == "F" else reversed(range(len(shape)))
    for axis in dims:
        strides.append((axis, span * step))
        span *= max(shape[axis], 1) * step
    strides = tuple(s for _, s in sorted(strides))
    offset = draw(st.integers(0, 3)) * itemsize + draw(st.sampled_from([0, 0, 0, 1, 2, 4]))
    buffer = np.full(offset + span + 64, GUARD, np.uint8)
    out = np.ndarray(shape, dtype, buffer=buffer, offset=offset, strides=strides)
    footprint = np.zeros_like(buffer)
    np.ndarray(shape, np.dtype((np.void, itemsize)), buffer=footprint, offset=offset,
               strides=strides)[...] = np.void(b"\xff" * itemsize)
    if kind == "readonly":
        out.flags.writeable = False
    return out, buffer, footprint


def _snapshot(value):
    return value.copy() if isinstance(value, np.ndarray) else None


def _same(a, b):
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.hasobject:
        return [repr(v) for v in a.ravel()] == [repr(v) for v in b.ravel()]
    return np.array_equal(np.ascontiguousarray(a).view(np.uint8),
                          np.ascontiguousarray(b).view(np.uint8))


def _fresh(value):
    return np.array(value, copy=True, order="C") if isinstance(value, np.ndarray) else value


SLOPES = st.one_of(FLOATS, st.sampled_from([0.01, -3, 10**400, -(10**400), True, None, "0.1",
                                            1j, np.float32(0.2), np.int64(2), np.nan, []]))
AXES = st.one_of(st.integers(-5, 5), st.sampled_from([2**70, -(2**70), None, 1.5, "1", True,
                                                      np.int64(1), np.uint8(0)]))
APPROXIMATE = st.one_of(st.sampled_from(["none", "tanh", "NONE", "Tanh", "", "erf", None, 1,
                                         b"tanh", np.str_("tanh")]), st.text(max_size=5))

SIGNATURES = {
    "relu": ("x",),
    "leaky_relu": ("x", "negative_slope"),
    "gelu": ("x", "approximate"),
    "prelu": ("x", "weight", "axis"),
    "relu_backward": ("grad_output", "x"),
    "leaky_relu_backward": ("grad_output", "x", "negative_slope"),
    "gelu_backward": ("grad_output", "x", "approximate"),
    "prelu_backward": ("grad_output", "x", "weight", "axis"),
}


@pytest.mark.parametrize("name", sorted(SIGNATURES))
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_hostile_calls(name, data):
    f = getattr(fa, name)
    kwargs = {}
    x = data.draw(hostile_values(like=None))
    kwargs["x"] = x
    for arg in SIGNATURES[name]:
        if arg == "grad_output":
            kwargs[arg] = data.draw(hostile_values(like=x))
        elif arg == "negative_slope":
            kwargs[arg] = data.draw(SLOPES)
        elif arg == "approximate":
            kwargs[arg] = data.draw(APPROXIMATE)
        elif arg == "axis":
            kwargs[arg] = data.draw(AXES)
        elif arg == "weight":
            channels = data.draw(st.sampled_from(
                [1] + ([x.shape[a] for a in range(x.ndim)] if isinstance(x, np.ndarray) else [])
                + [5]))
            weight_like = np.empty(channels, x.dtype if isinstance(x, np.ndarray) and
                                   x.dtype.kind == "f" else np.float32)
            kwargs[arg] = data.draw(hostile_values(like=weight_like))
    buffer = footprint = None
    if name != "prelu_backward":
        out, buffer, footprint = data.draw(guarded_out(like=x))
        if isinstance(out, str):
            out = x
        if out is not None:
            kwargs["out"] = out
    guard_before = buffer.copy() if buffer is not None else None
    before = {key: _snapshot(value) for key, value in kwargs.items() if key != "out"}
    fresh = {key: _fresh(value) for key, value in kwargs.items() if key != "out"}
    out = kwargs.get("out")

    try:
        result = f(**kwargs)
    except DOCUMENTED:
        result = None

    if buffer is not None:
        outside = footprint == 0
        assert np.array_equal(buffer[outside], guard_before[outside]), "wrote outside out"
    for key, copy in before.items():
        value = kwargs[key]
        if copy is None or (isinstance(out, np.ndarray) and np.shares_memory(value, out)):
            continue
        assert _same(value, copy), f"{key} was modified"
    if result is None:
        return
    # the same call on fresh contiguous copies, no out=: the same answer
    expected = f(**fresh)
    if isinstance(out, np.ndarray):
        assert result is out
    results = result if isinstance(result, tuple) else (result,)
    expecteds = expected if isinstance(expected, tuple) else (expected,)
    for got, want in zip(results, expecteds):
        assert got.shape == want.shape and got.dtype == want.dtype
        assert np.array_equal(got, want, equal_nan=True)


X = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)


@pytest.mark.parametrize("call, error, match", [
    # each of these escaped as OverflowError, or was accepted, before
    (lambda: fa.leaky_relu(X, 10**400), ValueError, "negative_slope"),
    (lambda: fa.leaky_relu_backward(X, X, -(10**400)), ValueError, "negative_slope"),
    (lambda: fa.prelu(X, np.ones(4, np.float32), axis=2**70), ValueError, "axis"),
    (lambda: fa.prelu_backward(X, X, np.ones(4, np.float32), axis=-(2**70)), ValueError, "axis"),
    (lambda: fa.gelu(X, np.array(["none"])), ValueError, "approximate"),
    (lambda: fa.gelu_backward(X, X, ["tanh"]), ValueError, "approximate"),
])
def test_found_by_hypothesis(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_huge_axis_is_ignored_with_a_shared_slope():
    assert np.array_equal(fa.prelu(X, np.array([0.5], np.float32), axis=2**70),
                          fa.leaky_relu(X, 0.5))


def test_huge_thread_count_means_no_cap():
    fa.set_num_threads(2**70)
    assert fa.get_num_threads() >= 1


def _unaligned(shape, dtype, fill=None):
    """An array of `shape` one byte past an aligned address (flags.aligned False)."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape))
    raw = np.zeros(size * dtype.itemsize + dtype.itemsize, np.uint8)
    arr = np.ndarray(shape, dtype, buffer=raw, offset=1)
    if fill is not None:
        arr[...] = fill
    assert not arr.flags.aligned
    return arr


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unaligned_arrays(dtype):
    """Views at odd byte offsets (as in a packed record or a raw buffer) are
    copied to aligned memory first: the C loops dereference typed pointers
    (UBSan reported the misaligned stores before)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((64, 33)).astype(dtype)
    g = rng.standard_normal((64, 33)).astype(dtype)
    w = rng.uniform(-1, 1, 33).astype(dtype)
    ux, ug, uw = _unaligned(x.shape, dtype, x), _unaligned(g.shape, dtype, g), \
        _unaligned(w.shape, dtype, w)
    out = _unaligned(x.shape, dtype)
    assert fa.relu(ux, out=out) is out and np.array_equal(out, fa.relu(x))
    assert np.array_equal(fa.gelu(ux), fa.gelu(x))
    assert np.array_equal(fa.leaky_relu_backward(ug, ux, 0.1), fa.leaky_relu_backward(g, x, 0.1))
    assert np.array_equal(fa.prelu(ux, uw, axis=1, out=out), fa.prelu(x, w, axis=1))
    for got, want in zip(fa.prelu_backward(ug, ux, uw), fa.prelu_backward(g, x, w)):
        assert np.array_equal(got, want)
    in_place = _unaligned(x.shape, dtype, x)
    fa.gelu(in_place, out=in_place)
    assert np.array_equal(in_place, fa.gelu(x))
