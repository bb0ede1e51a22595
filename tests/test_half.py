"""float16 and bfloat16 arrays: exhaustive accuracy at every SIMD level, the API rules.

Every half-precision result must be the float32 result rounded to nearest
even -- checked bit for bit over all 65,536 values of each type against
fastact's own float32 kernels at the same level, rounded by NumPy /
ml_dtypes -- and so within 1 ulp of the half type against a float64
reference (checked too, for GELU, against SciPy).
"""

import io
import subprocess
import sys

import numpy as np
import pytest

import fastact as fa
from fastact import _kernels
from reference import (
    gelu_grad_ref64,
    gelu_ref64,
    gelu_tanh_grad_ref64,
    gelu_tanh_ref64,
    leaky_relu_backward_ref,
    leaky_relu_ref,
    prelu_backward_ref,
    relu_backward_ref,
    relu_ref,
)

try:
    import ml_dtypes
except ImportError:  # float16 still works without it
    ml_dtypes = None

HALF_TYPES = [np.float16] + ([ml_dtypes.bfloat16] if ml_dtypes is not None else [])
HALF_IDS = [np.dtype(t).name for t in HALF_TYPES]


# float16, and bfloat16 rounded by AVX512-BF16's vcvtneps2bf16 or by integer
# arithmetic at the AVX-512 level (the lower levels have only the latter)
CASES = [(np.float16, None)] + (
    [(ml_dtypes.bfloat16, True), (ml_dtypes.bfloat16, False)] if ml_dtypes is not None else [])
CASE_IDS = ["float16", "bfloat16-instruction", "bfloat16-integer"][:len(CASES)]


@pytest.fixture(params=CASES, ids=CASE_IDS)
def half_case(request):
    """A half dtype, with the bfloat16 rounding at the AVX-512 level chosen."""
    dtype, instruction = request.param
    previous = _kernels.set_avx512_bf16(bool(instruction))
    try:
        yield dtype
    finally:
        _kernels.set_avx512_bf16(previous)


def every_value(dtype):
    """All 65,536 values of a 16-bit float type, NaNs and infinities included."""
    return np.arange(1 << 16, dtype=np.uint16).view(dtype)


def assert_same_half(got, expected):
    """Equal bit for bit, except that any NaN matches any NaN."""
    assert got.dtype == expected.dtype
    got_nan = np.isnan(got.astype(np.float32))
    want_nan = np.isnan(expected.astype(np.float32))
    np.testing.assert_array_equal(got_nan, want_nan)
    bad = np.flatnonzero((got.view(np.uint16) != expected.view(np.uint16)) & ~want_nan)
    assert bad.size == 0, (
        f"{bad.size} results differ from the rounded float32 result, e.g. "
        f"{got[bad[:5]]} instead of {expected[bad[:5]]}"
    )


FORWARD = {
    "relu": lambda x: fa.relu(x),
    "leaky_relu": lambda x: fa.leaky_relu(x, 0.01),
    "leaky_relu_ties": lambda x: fa.leaky_relu(x, 1.5),   # x * 1.5: ties to even for odd x
    "gelu": lambda x: fa.gelu(x),
    "gelu_tanh": lambda x: fa.gelu(x, approximate="tanh"),
    "prelu": lambda x: fa.prelu(x.reshape(256, 256), x[:256].astype(np.float32).clip(-3, 3)
                                .astype(x.dtype)).ravel(),
}

BACKWARD = {
    "relu": lambda g, x: fa.relu_backward(g, x),
    "leaky_relu": lambda g, x: fa.leaky_relu_backward(g, x, 0.01),
    "leaky_relu_ties": lambda g, x: fa.leaky_relu_backward(g, x, 1.5),
    "gelu": lambda g, x: fa.gelu_backward(g, x),
    "gelu_tanh": lambda g, x: fa.gelu_backward(g, x, approximate="tanh"),
    "prelu": lambda g, x: fa.prelu_backward(
        g.reshape(256, 256), x.reshape(256, 256),
        (np.arange(-128, 128) / 64).astype(x.dtype))[0].ravel(),  # exact in both
    "prelu_shared": lambda g, x: fa.prelu_backward(g, x, np.array([0.375], x.dtype))[0],
}


def _rounded_float32(call, *arrays):
    """The same call on float32 copies, rounded to the half type."""
    dtype = arrays[0].dtype
    with np.errstate(over="ignore", invalid="ignore"):   # ml_dtypes warns casting NaN
        return call(*[a.astype(np.float32) for a in arrays]).astype(dtype)


@pytest.mark.parametrize("name", sorted(FORWARD))
def test_forward_is_the_rounded_float32_result(simd_level, half_case, name):
    dtype = half_case
    x = every_value(dtype)
    got = FORWARD[name](x)
    assert got.dtype == x.dtype
    assert_same_half(got, _rounded_float32(FORWARD[name], x))


@pytest.mark.parametrize("name", sorted(BACKWARD))
@pytest.mark.filterwarnings("ignore:overflow encountered in cast")   # grad_weight's rounding
def test_backward_is_the_rounded_float32_result(simd_level, half_case, name, rng):
    dtype = half_case
    x = every_value(dtype)
    # every x with every g once (a permutation), and every x with g = 1 and g = -3
    pairings = [x[rng.permutation(x.size)], np.ones_like(x), np.full_like(x, -3)]
    for g in pairings:
        got = BACKWARD[name](g, x)
        assert got.dtype == x.dtype
        assert_same_half(got, _rounded_float32(BACKWARD[name], g, x))


def _half_spacing(values):
    """The spacing of the half type at each |value| (towards larger magnitude)."""
    dtype = values.dtype
    bits = values.view(np.uint16) & np.uint16(0x7FFF)
    up = np.minimum(bits + np.uint16(1), np.uint16(0x7BFF if dtype == np.float16 else 0x7F7F))
    low = np.maximum(up, np.uint16(1)) - np.uint16(1)
    return (up.view(dtype).astype(np.float64) - low.view(dtype).astype(np.float64))


GELU_REFS = {
    "gelu": (lambda x: fa.gelu(x), gelu_ref64),
    "gelu_tanh": (lambda x: fa.gelu(x, approximate="tanh"), gelu_tanh_ref64),
    "gelu_backward": (lambda x: fa.gelu_backward(np.ones_like(x), x), gelu_grad_ref64),
    "gelu_tanh_backward": (lambda x: fa.gelu_backward(np.ones_like(x), x, approximate="tanh"),
                           gelu_tanh_grad_ref64),
}


@pytest.mark.parametrize("dtype", HALF_TYPES, ids=HALF_IDS)
@pytest.mark.parametrize("name", sorted(GELU_REFS))
def test_gelu_within_one_ulp_of_float64(simd_level, dtype, name):
    x = every_value(dtype)
    x = x[np.isfinite(x.astype(np.float32))]
    call, reference = GELU_REFS[name]
    got = call(x).astype(np.float64)
    x64 = x.astype(np.float64)
    with np.errstate(all="ignore"):
        ref = reference(x64)
    # the float64 references lose their way where x**2 overflows; the limits are known
    huge = np.abs(x64) > 1e4
    if "backward" in name:
        ref[huge] = np.where(x64[huge] > 0, 1.0, 0.0)
    else:
        ref[huge] = np.where(x64[huge] > 0, x64[huge], -0.0)
    error = np.abs(got - ref)
    spacing = _half_spacing(got.astype(dtype))
    worst = np.argmax(error / spacing)
    assert np.all(error <= spacing), (
        f"{name}({x[worst]}) = {got[worst]!r}, float64 reference {ref[worst]!r}"
    )


@pytest.mark.parametrize("dtype", HALF_TYPES, ids=HALF_IDS)
def test_special_values(simd_level, dtype):
    x = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0], dtype)
    gelu = fa.gelu(x).astype(np.float32)
    assert np.isnan(gelu[0]) and gelu[1] == np.inf and gelu[2] == 0 and gelu[4] == 0
    relu = fa.relu(x).astype(np.float32)
    assert np.isnan(relu[0]) and relu[1] == np.inf and relu[2] == 0
    assert not np.signbit(relu[3])
    leaky = fa.leaky_relu(x, 0.5).astype(np.float32)
    assert leaky[2] == -np.inf and np.signbit(leaky[3])
    tiny = np.array([1, 0x8001, 3], np.uint16).view(dtype)   # subnormals stay subnormal
    np.testing.assert_array_equal(fa.relu(tiny).view(np.uint16), [1, 0, 3])
    np.testing.assert_array_equal(fa.leaky_relu(tiny, 1.0).view(np.uint16), [1, 0x8001, 3])


@pytest.mark.parametrize("dtype", HALF_TYPES, ids=HALF_IDS)
def test_relu_family_matches_textbook(simd_level, dtype, rng):
    """Independent of the float32 kernels: ReLU and its gradient are exact."""
    x = every_value(dtype)
    g = x[rng.permutation(x.size)]
    x32, g32 = x.astype(np.float32), g.astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):   # ml_dtypes warns casting NaN
        assert_same_half(fa.relu(x), relu_ref(x32).astype(dtype))
        assert_same_half(fa.relu_backward(g, x), relu_backward_ref(g32, x32).astype(dtype))
        assert_same_half(fa.leaky_relu(x, 0.2), leaky_relu_ref(x32, 0.2).astype(dtype))
        assert_same_half(fa.leaky_relu_backward(g, x, 0.2),
                         leaky_relu_backward_ref(g32, x32, 0.2).astype(dtype))


@pytest.mark.parametrize("dtype", HALF_TYPES, ids=HALF_IDS)
@pytest.mark.parametrize("layout", ["channels_last", "nchw", "shared"])
def test_prelu_backward_grad_weight(simd_level, dtype, layout, rng):
    shape, axis, channels = {"channels_last": ((300, 7), 1, 7), "nchw": ((5, 6, 40, 41), 1, 6),
                             "shared": ((3000,), 0, 1)}[layout]
    x = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    w = rng.uniform(-1, 1, channels).astype(dtype)
    grad_input, grad_weight = fa.prelu_backward(g, x, w, axis=axis)
    assert grad_input.dtype == grad_weight.dtype == x.dtype
    assert grad_weight.shape == w.shape
    want_input, want_weight = prelu_backward_ref(g.astype(np.float32), x.astype(np.float32),
                                                 w.astype(np.float32), axis)
    assert_same_half(grad_input, want_input.astype(dtype))
    # summed in float64 from exact products, then rounded once to the half type
    np.testing.assert_allclose(grad_weight.astype(np.float64), want_weight,
                               rtol=2.0 ** -10 if dtype is np.float16 else 2.0 ** -7, atol=0)
    forward = fa.prelu(x, w, axis=axis)
    assert_same_half(forward, _rounded_float32(lambda a, b: fa.prelu(a, b, axis=axis), x, w))


# ----------------------------------------------------------- API rules --

@pytest.mark.parametrize("dtype", HALF_TYPES, ids=HALF_IDS)
def test_layouts_out_and_in_place(dtype, rng):
    base = rng.standard_normal((40, 30)).astype(dtype)
    g = rng.standard_normal((40, 30)).astype(dtype)
    expected = fa.gelu(base.astype(np.float32)).astype(dtype)
    for view in [base, np.asfortranarray(base), base[::-1, ::2], base.T, base[3, :]]:
        want = fa.gelu(np.ascontiguousarray(view).astype(np.float32)).astype(dtype)
        before = view.copy()
        got = fa.gelu(view)
        assert got.dtype == dtype and got.shape == view.shape
        assert_same_half(got.ravel(), want.ravel())
        np.testing.assert_array_equal(view.view(np.uint16), before.view(np.uint16))
    out = np.empty((30, 40), dtype).T                  # a non-contiguous out
    assert fa.gelu(base, out=out) is out
    assert_same_half(out.ravel(), expected.ravel())
    inplace = base.copy()
    assert fa.gelu(inplace, out=inplace) is inplace
    assert_same_half(inplace.ravel(), expected.ravel())
    back = fa.relu_backward(g, base, out=g)
    assert back is g
    assert fa.gelu(np.zeros((0, 3), dtype)).shape == (0, 3)
    scalar = fa.relu(np.array(-2.0, dtype))
    assert scalar.shape == () and scalar.dtype == dtype and float(scalar) == 0.0
    w = fa.prelu(base, [0.25] * 30, axis=1)            # a sequence is converted to x's dtype
    assert w.dtype == dtype


@pytest.mark.parametrize("dtype", HALF_TYPES, ids=HALF_IDS)
def test_errors(dtype):
    x = np.ones(4, dtype)
    other = np.float32 if dtype is not np.float16 else np.float64
    with pytest.raises(TypeError, match="out must have dtype"):
        fa.relu(x, out=np.empty(4, np.float32))
    with pytest.raises(TypeError, match="out must have dtype"):
        fa.relu(x, out=np.empty(4, np.uint16))
    with pytest.raises(ValueError, match="out must have the shape"):
        fa.relu(x, out=np.empty(5, dtype))
    read_only = np.empty(4, dtype)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        fa.gelu(x, out=read_only)
    with pytest.raises(TypeError, match="grad_output has dtype"):
        fa.relu_backward(np.ones(4, other), x)
    with pytest.raises(TypeError, match="weight has dtype"):
        fa.prelu(x, np.ones(1, other))
    with pytest.raises(TypeError, match="out must be a numpy.ndarray"):
        fa.relu(x, out=[0.0] * 4)


@pytest.mark.skipif(ml_dtypes is None, reason="needs ml_dtypes")
def test_float16_and_bfloat16_do_not_mix():
    with pytest.raises(TypeError, match="grad_output has dtype float16 but x has dtype bfloat16"):
        fa.gelu_backward(np.ones(3, np.float16), np.ones(3, ml_dtypes.bfloat16))
    with pytest.raises(TypeError, match="out must have dtype bfloat16"):
        fa.relu(np.ones(3, ml_dtypes.bfloat16), out=np.empty(3, np.float16))


@pytest.mark.parametrize("dtype", HALF_TYPES, ids=HALF_IDS)
@pytest.mark.parametrize("op", ["relu", "gelu", "prelu"])
def test_thread_count_does_not_change_results(dtype, op, rng):
    shape = (1 << 12, 64)
    x = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    w = rng.uniform(0, 1, 64).astype(dtype)
    results = []
    for threads in (1, 2, 3):
        fa.set_num_threads(threads)
        if op == "prelu":
            gi, gw = fa.prelu_backward(g, x, w, axis=1)
            results.append((fa.prelu(x, w, axis=1), gi, gw))
            gi, gw = fa.prelu_backward(g.T, x.T, w, axis=0)   # the runs path
            results[-1] += (gi, gw)
        else:
            results.append((getattr(fa, op)(x), getattr(fa, op + "_backward")(g, x)))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a.view(np.uint16), b.view(np.uint16))


def test_import_does_not_load_ml_dtypes():
    code = (
        "import sys, numpy as np, fastact as fa\n"
        "assert fa.relu(np.ones(3, np.float16)).dtype == np.float16\n"
        "assert 'ml_dtypes' not in sys.modules, 'fastact imported ml_dtypes'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_conversions_reported():
    conversions = _kernels.half_conversions()
    assert set(conversions) == {"float16", "bfloat16"}
    previous = _kernels.set_simd_level("baseline")
    try:
        assert _kernels.half_conversions() == {"float16": "portable C", "bfloat16": "portable C"}
    finally:
        _kernels.set_simd_level(previous)


def test_show_config_names_the_conversions():
    text = fa.show_config(file=io.StringIO())["half_types"]
    assert text.startswith("float16 ") and "; bfloat16 " in text


def test_big_endian_and_overlapping_out():
    x = np.array([-1.5, 2.0, np.nan, -0.0], dtype=">f2")
    got = fa.relu(x)
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, [0.0, 2.0, np.nan, 0.0])
    a = np.arange(10, dtype=np.float16) - 5
    fa.relu(a[:-2], out=a[2:])      # out overlaps x shifted: x is read before it is overwritten
    np.testing.assert_array_equal(a, [-5, -4, 0, 0, 0, 0, 0, 0, 1, 2])


@pytest.mark.skipif(ml_dtypes is None, reason="needs ml_dtypes")
def test_other_ml_dtypes_are_rejected():
    with pytest.raises(TypeError, match="x must have dtype float16, bfloat16, float32 or float64"):
        fa.relu(np.ones(3, ml_dtypes.float8_e4m3fn))
