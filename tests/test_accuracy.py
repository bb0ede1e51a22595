"""Numerical results of every kernel at every SIMD level, against independent references.

ReLU, Leaky ReLU and PReLU must equal the textbook formula bit for bit.
GELU (exact and tanh forms, forward and backward) is held to the bars of
the core issue: float32 within 4 ulp (exact forward) or 8 ulp (the rest),
float64 within 1e-14 (exact forward) or 1e-13 relative (the rest).
"""

import mpmath
import numpy as np
import pytest

import fastact as fa
from reference import (
    every_float_around,
    GELU_GRAD_REF64,
    GELU_REF64,
    leaky_relu_backward_ref,
    leaky_relu_ref,
    mp_reference,
    relu_backward_ref,
    relu_ref,
    ulp_error,
)

FLOATS = [np.float32, np.float64]


def special_values(dtype):
    info = np.finfo(dtype)
    values = [0.0, -0.0, np.inf, -np.inf, np.nan, info.max, -info.max, info.tiny, -info.tiny,
              info.smallest_subnormal, -info.smallest_subnormal, 1.0, -1.0, 0.5, -3.0, 1e-30]
    return np.array(values, dtype=dtype)


def mixed_values(dtype, rng, n=4099):
    """Random values with special values sprinkled in, length not a multiple of any vector."""
    x = (rng.standard_normal(n) * 4).astype(dtype)
    specials = special_values(dtype)
    x[rng.integers(0, n, 3 * specials.size)] = np.tile(specials, 3)
    return x


# ---------------------------------------------------- ReLU family, bit-exact --

@pytest.mark.parametrize("dtype", FLOATS)
def test_relu_family_bit_exact(simd_level, dtype, rng):
    x = mixed_values(dtype, rng)
    g = mixed_values(dtype, rng)
    for start in range(0, 9):  # misaligned starts exercise the loops' peel and tail code
        xs, gs = x[start:], g[start:]
        np.testing.assert_array_equal(fa.relu(xs), relu_ref(xs))
        np.testing.assert_array_equal(fa.relu_backward(gs, xs), relu_backward_ref(gs, xs))
        for slope in (0.01, 0.2, -0.5, 0.0, 3.0):
            np.testing.assert_array_equal(fa.leaky_relu(xs, slope), leaky_relu_ref(xs, slope))
            np.testing.assert_array_equal(fa.leaky_relu_backward(gs, xs, slope),
                                          leaky_relu_backward_ref(gs, xs, slope))


def _placed(page, distance, n, dtype):
    """An n-element view that starts `distance` bytes into a page of `page`."""
    step = np.dtype(dtype).itemsize
    start = (-page.ctypes.data % 4096 + distance) // step
    return page[start:start + n]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("below", [8, 16, 48, 272, 504, 512, 2048, 4080])
def test_relu_family_whatever_inputs_trail_out_by(simd_level, dtype, below, rng):
    """Inputs placed at any distance below out modulo 4 KiB (where loads can
    be confused with earlier stores) give the textbook result."""
    n = 17 * 61
    step = np.dtype(dtype).itemsize
    pages = [np.empty(n + 8192 // step, dtype) for _ in range(3)]
    out = _placed(pages[0], 2048, n, dtype)
    x = _placed(pages[1], (2048 - below) % 4096, n, dtype)
    g = _placed(pages[2], (2048 - below) % 4096, n, dtype)
    x[:] = mixed_values(dtype, rng, n)
    g[:] = mixed_values(dtype, rng, n)
    w = rng.uniform(-1, 1, 61).astype(dtype)
    checks = [(lambda: fa.relu(x, out=out), relu_ref(x)),
              (lambda: fa.prelu(x.reshape(17, 61), w, out=out.reshape(17, 61)).ravel(),
               np.where(x > 0, x, x * np.tile(w, 17))),
              (lambda: fa.leaky_relu(x, 0.2, out=out), leaky_relu_ref(x, 0.2)),
              (lambda: fa.relu_backward(g, x, out=out), relu_backward_ref(g, x)),
              (lambda: fa.leaky_relu_backward(g, x, 0.2, out=out),
               leaky_relu_backward_ref(g, x, 0.2))]
    for call, expected in checks:
        out[:] = 7
        np.testing.assert_array_equal(call(), expected)


@pytest.mark.parametrize("dtype", FLOATS)
def test_relu_family_special_values(dtype):
    x = special_values(dtype)
    got = fa.relu(x)
    assert np.isnan(got[np.isnan(x)]).all(), "NaN propagates"
    assert got[2] == np.inf and got[3] == 0
    assert not np.signbit(got[1]), "relu(-0.0) is +0.0"
    assert np.isnan(fa.leaky_relu(x)[np.isnan(x)]).all()
    assert fa.leaky_relu(x)[3] == -np.inf
    assert np.isnan(fa.relu_backward(np.ones_like(x), x)[np.isnan(x)]).all()


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape, axis", [((64, 37), 1), ((3, 5, 33), 1), ((40000, 3), 1),
                                          ((2, 3, 70000), 1), ((5, 2049), 1)])
def test_prelu_bit_exact_and_weight_gradient(simd_level, dtype, shape, axis, rng):
    x = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    w = rng.uniform(-1, 1, shape[axis]).astype(dtype)
    b = [1] * len(shape)
    b[axis] = shape[axis]
    wb = w.reshape(b)
    np.testing.assert_array_equal(fa.prelu(x, w, axis), np.where(x > 0, x, x * wb))
    grad_input, grad_weight = fa.prelu_backward(g, x, w, axis)
    np.testing.assert_array_equal(grad_input, np.where(x > 0, g, g * wb))
    terms = np.where(x > 0, 0.0, x.astype(np.float64) * g.astype(np.float64))
    exact = np.array([mpmath.fsum(c.ravel().tolist())
                      for c in np.moveaxis(terms, axis, 0)], dtype=np.float64)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(grad_weight, exact.astype(dtype), rtol=rtol)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("channels", [3, 16, 256])
def test_prelu_channels_last_at_every_output_offset(simd_level, dtype, channels, rng):
    """The forward aligns its stores by starting rows part-way into the
    weight; every offset of out within a cache line must give the textbook
    result."""
    rows = 41
    x = rng.standard_normal((rows, channels)).astype(dtype)
    w = rng.uniform(-1, 1, channels).astype(dtype)
    expected = np.where(x > 0, x, x * w)
    itemsize = np.dtype(dtype).itemsize
    storage = np.empty(rows * channels + 64, dtype)
    for offset in range(64 // itemsize):
        out = storage[offset:offset + rows * channels].reshape(rows, channels)
        result = fa.prelu(x, w, out=out)
        assert result is out
        np.testing.assert_array_equal(out, expected, err_msg=f"offset {offset}")


# ------------------------------------------------------------------- GELU --

def float32_grid():
    """A dense sample of every float32 binade in [-20, 20], both signs, plus tiny values."""
    positive = np.arange(np.float32(1e-6).view(np.int32), np.float32(20).view(np.int32), 577,
                         dtype=np.int32).view(np.float32)
    return np.concatenate([positive, -positive, np.float32([1e-30, -1e-30, 1e-40, -1e-40])])


GELU_KINDS = [("gelu", "none"), ("gelu_tanh", "tanh")]


def _assert_gelu_float32_within_bars(x, name, approximate):
    """Forward within 4 ulp (exact form) or 8 (tanh form), backward within 8,
    against the float64 references (docs/accuracy.md)."""
    forward = fa.gelu(x, approximate=approximate)
    backward = fa.gelu_backward(np.ones_like(x), x, approximate=approximate)
    forward_ulp = ulp_error(forward, GELU_REF64[name](x))
    backward_ulp = ulp_error(backward, GELU_GRAD_REF64[name](x))
    forward_bar = 4 if approximate == "none" else 8
    assert forward_ulp.max() <= forward_bar, f"worst at x={x[forward_ulp.argmax()]!r}"
    assert backward_ulp.max() <= 8, f"worst at x={x[backward_ulp.argmax()]!r}"


@pytest.mark.parametrize("name, approximate", GELU_KINDS)
def test_gelu_float32_accuracy(simd_level, name, approximate):
    _assert_gelu_float32_within_bars(float32_grid(), name, approximate)


# Where the float32 loops stop computing and return x, 1 or -0.0 (the
# FA_GX_SAT* constants of _gelu_x86.h), and the subnormal tail below x = -13.
FLOAT32_SATURATION_POINTS = [5.375, -14.375, 5.9375, -14.5625, 4.9375, -10.8125, 5.5, -10.9375]


def float32_windows():
    """Every float32 within 1/32 of each saturation point, and a dense sample
    of the tails where the results are subnormal."""
    windows = []
    for point in FLOAT32_SATURATION_POINTS:
        lo, hi = np.float32(abs(point) - 1 / 32), np.float32(abs(point) + 1 / 32)
        every = np.arange(lo.view(np.int32), hi.view(np.int32), dtype=np.int32).view(np.float32)
        windows.append(every if point > 0 else -every)
    for lo, hi in [(13.0, 14.75), (9.0, 11.0)]:
        windows.append(-np.arange(np.float32(lo).view(np.int32), np.float32(hi).view(np.int32), 7,
                                  dtype=np.int32).view(np.float32))
    return np.concatenate(windows)


@pytest.mark.parametrize("name, approximate", GELU_KINDS)
def test_gelu_float32_accuracy_at_saturation_and_subnormal_tail(simd_level, name, approximate):
    _assert_gelu_float32_within_bars(float32_windows(), name, approximate)


def float32_slow_path_windows():
    """Every float32 within 1/32 of +-8 and +-13, alone and with +-20 in every
    group of four: the SSE2 baseline finishes a vector holding some |x| > 13
    without subnormal arithmetic (and returns x or 1 from x >= 8 on), so both
    sides of each point must be right on either path."""
    windows = []
    for point in [8.0, 13.0]:
        lo, hi = np.float32(point - 1 / 32), np.float32(point + 1 / 32)
        every = np.arange(lo.view(np.int32), hi.view(np.int32), dtype=np.int32).view(np.float32)
        windows += [every, -every]
    x = np.concatenate(windows)
    mixed = x.copy()
    mixed[::4] = np.where(np.arange(mixed[::4].size) % 2 == 0, 20.0, -20.0).astype(np.float32)
    return np.concatenate([x, mixed])


@pytest.mark.parametrize("name, approximate", GELU_KINDS)
def test_gelu_float32_accuracy_next_to_the_slow_path_points(simd_level, name, approximate):
    _assert_gelu_float32_within_bars(float32_slow_path_windows(), name, approximate)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_float32_nan_next_to_huge_values(simd_level, approximate):
    """A NaN sharing a vector with |x| > 13 (the baseline's subnormal-safe
    finish) still gives NaN, forward and backward."""
    x = np.array([np.nan, 20, -np.inf, np.nan, -14, np.nan, 1.0, np.inf], np.float32)
    nan = np.isnan(x)
    forward = fa.gelu(x, approximate=approximate)
    backward = fa.gelu_backward(np.ones_like(x), x, approximate=approximate)
    assert np.array_equal(np.isnan(forward), nan) and np.array_equal(np.isnan(backward), nan)


# Where the float32 loops switch formulas for |x| (fastact/_gelu_x86.h): the
# end of the exp-free near range at each level (3.75 at avx2, 3.9375 at
# avx512), the edges of the AVX2 exact form's far pieces
# (tools/fit_gelu_f32_avx2far.py), and x = -12.9, below which a vector's
# far results may be subnormal and are scaled another way.
FLOAT32_PATH_EDGES = [3.75, 3.9375, 4.5, 5.5, 6.5, 7.5, 9.0, 11.0, 13.0, 12.899]


def float32_edge_windows(ulps=3000):
    """Every float32 within `ulps` ulps of each edge, both signs."""
    return every_float_around(FLOAT32_PATH_EDGES, np.float32, ulps)


@pytest.mark.parametrize("name, approximate", GELU_KINDS)
def test_gelu_float32_accuracy_at_path_edges(simd_level, name, approximate):
    _assert_gelu_float32_within_bars(float32_edge_windows(), name, approximate)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_float32_far_results_do_not_depend_on_their_neighbours(simd_level, approximate, rng):
    """Far elements are queued, computed together and stored back one by one,
    and a vector of them holding one x below -12.9 is scaled another way:
    shuffled, or alone, each result is the same, bit for bit."""
    x = np.concatenate([float32_edge_windows(300), float32_windows()[::3],
                        (8 * rng.standard_normal(4001)).astype(np.float32)])
    _assert_results_depend_on_their_element_alone(x, approximate, rng, every=97)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_float32_runs_of_far_vectors_match_the_queue(simd_level, approximate, rng):
    """At AVX-512 the exact forward computes a run of whole far vectors at
    the start of a block (after a block with many far ones: x far out in the
    tail, where the results are subnormal) without the queue; runs broken by
    a near, saturated or NaN lane give each element its own result, bit for
    bit, and the accuracy bars hold."""
    tail = rng.uniform(-15.0, -3.95, 6000).astype(np.float32)
    tail[rng.integers(0, tail.size, 30)] = np.float32([0.5, -1.0, 20.0, -20.0, np.nan, 6.0])[
        rng.integers(0, 6, 30)]
    x = np.concatenate([tail, (8 * rng.standard_normal(3000)).astype(np.float32), tail[::-1]])
    for start in (0, 5):
        _assert_results_depend_on_their_element_alone(x[start:], approximate, rng, every=37)
    finite = x[np.isfinite(x)]
    _assert_gelu_float32_within_bars(finite, "gelu" if approximate == "none" else "gelu_tanh", approximate)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_float32_backward_is_g_times_derivative(simd_level, approximate, rng):
    """Far elements are finished in a separate step of the loop; their
    gradient must still be the float32 product g * gelu'(x), like the rest."""
    x = np.concatenate([float32_windows()[::5], (8 * rng.standard_normal(20011)).astype(np.float32)])
    x = x[rng.permutation(x.size)]
    g = rng.standard_normal(x.size).astype(np.float32)
    derivative = fa.gelu_backward(np.ones_like(x), x, approximate=approximate)
    _same_bits(fa.gelu_backward(g, x, approximate=approximate), g * derivative)


def subnormal_tail_products(rng):
    """x in the tail where gelu'(x) is subnormal (and the other lanes a vector
    there may hold), and g of every kind: normal, making the product normal or
    subnormal, exactly halfway between two subnormals (odd multiples of 1/2
    times an odd k * 2^-149), subnormal, zero, infinite, NaN."""
    info = np.finfo(np.float32)
    tail = -np.arange(np.float32(12.875).view(np.int32), np.float32(15.25).view(np.int32), 101,
                      dtype=np.int32).view(np.float32)
    others = np.float32([20.0, 13.5, 7.99, 8.0, 0.5, -0.0, 0.0, -1.0, -np.inf, np.inf, np.nan, -20.0])
    x = np.concatenate([tail, np.tile(others, 40)])
    x = x[rng.permutation(x.size)]
    special = np.float32([0.0, -0.0, np.inf, -np.inf, np.nan, info.max, -info.max, info.tiny,
                          info.smallest_subnormal, -3 * info.smallest_subnormal, 1e30, -3e37, 1.0])
    kinds = [
        rng.standard_normal(x.size),                                    # gradients as they come
        rng.standard_normal(x.size) * 10.0 ** rng.uniform(20, 38, x.size),   # g * gelu' normal
        (2 * rng.integers(-500, 500, x.size) + 1) * 0.5,                 # halfway products
        (2 * rng.integers(-500, 500, x.size) + 1) * 0.25,
        rng.integers(-2**20, 2**20, x.size) * float(info.smallest_subnormal),   # g subnormal
        rng.choice(special, x.size),
    ]
    return x, [np.asarray(g, np.float32) for g in kinds]


def test_gelu_float32_backward_rounds_subnormal_products_once(simd_level, rng):
    """Where gelu'(x) is subnormal the loops form g * gelu'(x) without
    subnormal arithmetic: it must still be the product of the two float32
    values rounded once, as the float64 product (exact: 24 + 24 bits) cast to
    float32, whatever g is."""
    x, gs = subnormal_tail_products(rng)
    derivative = fa.gelu_backward(np.ones_like(x), x).astype(np.float64)
    assert np.any((derivative != 0) & (np.abs(derivative) < np.finfo(np.float32).tiny))
    halfway = 0
    for g in gs:
        with np.errstate(invalid="ignore", over="ignore"):
            exact = g.astype(np.float64) * derivative
            expected = exact.astype(np.float32)
            units = exact / float(np.finfo(np.float32).smallest_subnormal)
            halfway += np.count_nonzero((np.abs(units) < 2**23) & (units % 1 == 0.5))
        for start in (0, 1, 3):     # the vector loops and their tails
            _same_bits(fa.gelu_backward(g[start:], x[start:]), expected[start:])
    assert halfway > 100, "the sample holds no ties to round"


def derivative_root(approximate):
    """The x < 0 where GELU's derivative is zero, to ~1e-40."""
    with mpmath.workdps(60):
        if approximate == "none":
            f = lambda t: mpmath.ncdf(t) + t * mpmath.npdf(t)  # noqa: E731
        else:
            c = mpmath.sqrt(2 / mpmath.pi)
            k = mpmath.mpf("0.044715")

            def f(t):
                w = 2 * c * (t + k * t**3)
                s = 1 / (1 + mpmath.exp(-w))
                return s + t * s * (1 - s) * 2 * c * (1 + 3 * k * t * t)

        return mpmath.findroot(f, -0.75)


def float64_sample(approximate):
    rng = np.random.default_rng(7)
    magnitudes = np.concatenate([
        np.logspace(-300, 1.6, 1500),              # every scale up to ~40
        rng.uniform(0, 40, 800),
        rng.uniform(0, 2, 300),
    ])
    root = float(derivative_root(approximate))
    near_root = root + np.spacing(root) * np.arange(-40, 41)
    near_root = np.concatenate([near_root, root * (1 + np.logspace(-14, -2, 60)),
                                root * (1 - np.logspace(-14, -2, 60))])
    return np.concatenate([magnitudes, -magnitudes, near_root])


def relative_error_where_normal(got, ref, dtype=np.float64):
    tiny = np.finfo(dtype).tiny
    normal = np.abs(ref) >= tiny
    rel = np.abs(got[normal] - ref[normal]) / np.abs(ref[normal])
    absolute = np.abs(got[~normal] - ref[~normal])
    return rel, absolute


@pytest.mark.parametrize("name, approximate", GELU_KINDS)
def test_gelu_float64_accuracy(simd_level, name, approximate):
    x = float64_sample(approximate)
    kind = "gelu" if approximate == "none" else "tanh"
    forward = fa.gelu(x, approximate=approximate)
    backward = fa.gelu_backward(np.ones_like(x), x, approximate=approximate)
    smallest = np.finfo(np.float64).smallest_subnormal
    for got, ref_kind, bar in [(forward, kind, 1e-14 if kind == "gelu" else 1e-13),
                               (backward, kind.replace("gelu", "grad") if kind == "gelu"
                                else "tanh_grad", 1e-13)]:
        ref = mp_reference(ref_kind, x)
        rel, absolute = relative_error_where_normal(got, ref)
        worst = np.argmax(np.where(np.abs(ref) >= np.finfo(np.float64).tiny,
                                   np.abs(got - ref) / np.maximum(np.abs(ref), 1e-300), 0))
        assert rel.max() <= bar, f"{ref_kind}: rel {rel.max():.3g} at x={x[worst]!r}"
        assert absolute.size == 0 or absolute.max() <= 4 * smallest


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_special_values(simd_level, dtype, approximate):
    info = np.finfo(dtype)
    x = np.array([np.inf, -np.inf, np.nan, info.max, -info.max, 0.0, -0.0,
                  info.smallest_subnormal, -info.smallest_subnormal, info.tiny], dtype)
    y = fa.gelu(x, approximate=approximate)
    d = fa.gelu_backward(np.ones_like(x), x, approximate=approximate)
    assert y[0] == np.inf
    assert y[1] == 0
    assert np.isnan(y[2]) and np.isnan(d[2])
    assert y[3] == info.max, "gelu(huge) = huge"
    assert y[4] == 0
    assert y[5] == 0 and y[6] == 0
    assert abs(y[7]) <= info.smallest_subnormal and abs(y[8]) <= info.smallest_subnormal
    assert y[9] == pytest.approx(info.tiny / 2, rel=1e-6)
    assert d[0] == 1 and d[1] == 0 and d[3] == 1 and d[4] == 0
    assert d[5] == 0.5 and d[6] == 0.5


def _same_bits(got, expected):
    """Equal bit for bit (so +0.0 differs from -0.0), NaN matching NaN."""
    nan = np.isnan(expected)
    assert np.array_equal(np.isnan(got), nan)
    uint = np.uint32 if got.dtype == np.float32 else np.uint64
    mismatch = np.flatnonzero(got[~nan].view(uint) != expected[~nan].view(uint))
    assert mismatch.size == 0, f"{mismatch.size} elements differ, e.g. {got[~nan][mismatch[:3]]}"


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_element_does_not_depend_on_its_neighbours(simd_level, dtype, approximate, rng):
    """A vector loop may take a slower path for a whole vector when one of its
    elements needs it (|x| large, NaN); each result must still depend on its
    own element alone, whatever shares its vector."""
    x = mixed_values(dtype, rng)                  # 4*N(0,1): most vectors mix both paths
    _assert_results_depend_on_their_element_alone(x, approximate, rng, every=13)


def _assert_results_depend_on_their_element_alone(x, approximate, rng, every):
    """GELU of x, forward and backward, is the same bit for bit after a shuffle,
    and every `every`-th element gives the same result computed alone."""
    order = rng.permutation(x.size)
    g = np.ones_like(x)
    forward = fa.gelu(x, approximate=approximate)
    backward = fa.gelu_backward(g, x, approximate=approximate)
    _same_bits(fa.gelu(x[order], approximate=approximate), forward[order])
    _same_bits(fa.gelu_backward(g, x[order], approximate=approximate), backward[order])
    alone = np.array([fa.gelu(x[i:i + 1], approximate=approximate)[0]
                      for i in range(0, x.size, every)], x.dtype)
    _same_bits(alone, forward[::every])


# ------------------------------------------- backward vs finite differences --

def _fd_points(rng):
    x = rng.uniform(-6, 6, 4000)
    return x[np.abs(x) > 1e-3]  # keep away from the ReLU-family kink at 0


@pytest.mark.parametrize(
    "forward, backward",
    [
        (fa.relu, fa.relu_backward),
        (lambda x: fa.leaky_relu(x, 0.07), lambda g, x: fa.leaky_relu_backward(g, x, 0.07)),
        (lambda x: fa.prelu(x, np.array([-0.3])),
         lambda g, x: fa.prelu_backward(g, x, np.array([-0.3]))[0]),
        (fa.gelu, fa.gelu_backward),
        (lambda x: fa.gelu(x, "tanh"), lambda g, x: fa.gelu_backward(g, x, "tanh")),
    ],
    ids=["relu", "leaky_relu", "prelu", "gelu", "gelu_tanh"],
)
def test_backward_matches_finite_differences(simd_level, forward, backward, rng):
    x = _fd_points(rng)
    g = rng.standard_normal(x.size)
    h = 1e-6
    numeric = (forward(x + h) - forward(x - h)) / (2 * h)
    np.testing.assert_allclose(backward(g, x), g * numeric, rtol=1e-6, atol=1e-8)


def test_prelu_weight_gradient_matches_finite_differences(rng):
    x = rng.standard_normal((6, 4, 5))
    g = rng.standard_normal(x.shape)
    w = rng.uniform(-1, 1, 4)
    _, grad_weight = fa.prelu_backward(g, x, w)
    h = 1e-6
    for c in range(4):
        step = np.zeros(4)
        step[c] = h
        loss_plus = np.sum(g * fa.prelu(x, w + step))
        loss_minus = np.sum(g * fa.prelu(x, w - step))
        assert grad_weight[c] == pytest.approx((loss_plus - loss_minus) / (2 * h), rel=1e-6)
