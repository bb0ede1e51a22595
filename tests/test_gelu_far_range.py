"""float32 GELU past the near range, where the SIMD loops switch formulas.

At the avx512 level the float32 loops evaluate |x| < 3.9375 with exp-free
pieces of width 1/8 and queue the rest for an exp path whose pieces have
width 1/2 (k = round(2|x|), t = |x| - k/2, both rounded to nearest even),
clamp |x| to 14.625 and return -0.0 below the negative saturation points
(_gelu_x86.h, tools/fit_gelu_far512.py).  Every boundary of that scheme is
checked here against the float64 SciPy references at every SIMD level, so
the levels agree on what the boundaries must give.
"""

import numpy as np
import pytest

import fastact as fa
from reference import GELU_GRAD_REF64, GELU_REF64, every_float_around, ulp_error

GELU_KINDS = [("gelu", "none"), ("gelu_tanh", "tanh")]


# the near/far switch, the ties between far pieces ((2j+1)/4: the piece index
# and t must round them the same way), the far clamp
FAR_BOUNDARIES = [3.9375] + [(2 * j + 1) / 4 for j in range(7, 30)] + [14.625]


def _check(x, name, approximate):
    forward = fa.gelu(x, approximate=approximate)
    backward = fa.gelu_backward(np.ones_like(x), x, approximate=approximate)
    forward_ulp = ulp_error(forward, GELU_REF64[name](x))
    backward_ulp = ulp_error(backward, GELU_GRAD_REF64[name](x))
    assert forward_ulp.max() <= (4 if approximate == "none" else 8), \
        f"forward worst at x={x[forward_ulp.argmax()]!r}: {forward_ulp.max():.2f} ulp"
    assert backward_ulp.max() <= 8, \
        f"backward worst at x={x[backward_ulp.argmax()]!r}: {backward_ulp.max():.2f} ulp"


@pytest.mark.parametrize("name, approximate", GELU_KINDS)
def test_gelu_float32_at_far_piece_boundaries(simd_level, name, approximate):
    _check(every_float_around(FAR_BOUNDARIES, np.float32, 96), name, approximate)


# the baseline (SSE2) scheme: its near pieces' ties ((2j+1)/16: k = round(8a)
# and t must round them alike), the forward's saturation point, the end of
# the near range (5.9375: past it x > 0 reads a zero row, x < 0 takes the exp
# path) and the clamp of the table index (_gelu_sse2.h)
BASELINE_BOUNDARIES = [(2 * j + 1) / 16 for j in range(48)] + [5.375, 5.9375, 7.75]


def test_gelu_float32_at_baseline_near_boundaries(simd_level):
    _check(every_float_around(BASELINE_BOUNDARIES, np.float32, 64), "gelu", "none")


@pytest.mark.parametrize("name, approximate", GELU_KINDS)
def test_gelu_float32_negative_tail_rounds_like_the_reference(simd_level, name, approximate):
    """Below the negative saturation points the results underflow: they must
    be the float32 rounding of the reference, sign of zero included (the
    AVX-512 loops now reach them through the exp path and its clamp)."""
    x = -np.concatenate([
        np.arange(np.float32(14.0).view(np.int32), np.float32(16.0).view(np.int32), 97,
                  dtype=np.int32).view(np.float32),
        np.float32([14.625, 20.0, 1e3, 1e20, np.finfo(np.float32).max]),
    ])
    if approximate == "tanh":
        x = np.concatenate([x, -np.arange(np.float32(10.5).view(np.int32),
                                          np.float32(14.0).view(np.int32), 97,
                                          dtype=np.int32).view(np.float32)])
    for got, ref in [(fa.gelu(x, approximate=approximate), GELU_REF64[name](x)),
                     (fa.gelu_backward(np.ones_like(x), x, approximate=approximate),
                      GELU_GRAD_REF64[name](x))]:
        # where the reference is below half the smallest subnormal, float32 gives -0.0
        zero = np.abs(ref) < float(np.finfo(np.float32).smallest_subnormal) / 2
        assert zero.any()
        np.testing.assert_array_equal(got[zero].view(np.uint32), np.uint32(0x80000000))
        assert ulp_error(got[~zero], ref[~zero]).max() <= 8


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("draw", ["normal8", "t3"])
def test_gelu_float32_wide_inputs_each_element_alone(simd_level, approximate, draw, rng):
    """Wide inputs send many elements of every vector to the exp path (and,
    block by block, switch the loop between its branchy and branch-free
    forms): each result must still depend on its own element alone."""
    n = 3 * 1024 + 77
    z = 8 * rng.standard_normal(n) if draw == "normal8" else rng.standard_t(3, n)
    x = z.astype(np.float32)
    x[: n // 3] /= 8                       # a narrow stretch: the loop changes form on the way
    g = rng.standard_normal(n).astype(np.float32)
    order = rng.permutation(n)
    y = fa.gelu(x, approximate=approximate)
    d = fa.gelu_backward(g, x, approximate=approximate)
    np.testing.assert_array_equal(fa.gelu(x[order], approximate=approximate).view(np.uint32),
                                  y[order].view(np.uint32))
    np.testing.assert_array_equal(fa.gelu_backward(g[order], x[order], approximate=approximate)
                                  .view(np.uint32), d[order].view(np.uint32))
    _check(x, "gelu" if approximate == "none" else "gelu_tanh", approximate)


# float64, AVX-512: past these x the loops return x (forward) and g (backward)
# without the generic maths (FA_GD_SAT* in _gelu_f64_x86.h)
FLOAT64_SATURATION = {("gelu", "none"): 8.5, ("grad", "none"): 9.0,
                      ("tanh", "tanh"): 8.0, ("tanh_grad", "tanh"): 9.0}


@pytest.mark.parametrize("kind, approximate", list(FLOAT64_SATURATION))
def test_gelu_float64_at_high_saturation_is_correctly_rounded(simd_level, kind, approximate):
    """From the far range's start to past each point the result is within
    1e-14 of the mpmath value, and past the point it is the float64 rounding
    of it, x itself (or 1): a point set too low would return x too early."""
    from reference import mp_reference

    point = FLOAT64_SATURATION[(kind, approximate)]
    steps = np.concatenate([np.arange(-40, 41), [-2**20, -2**30, 2**30]])
    x = np.concatenate([point + steps * np.spacing(point), np.linspace(3.875, point, 300),
                        [point + 0.25, 16.0, 2.0**10, 1e300]])
    if kind in ("gelu", "tanh"):
        got = fa.gelu(x, approximate=approximate)
    else:
        got = fa.gelu_backward(np.ones_like(x), x, approximate=approximate)
    ref = mp_reference(kind, x)
    past = x >= point
    np.testing.assert_array_equal(ref[past], x[past] if kind in ("gelu", "tanh") else 1.0)
    rel = np.abs(got - ref) / np.abs(ref)
    assert rel.max() <= 1e-14, f"worst at x={x[rel.argmax()]!r}"
    np.testing.assert_array_equal(got[past], ref[past])


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_float32_same_bits_in_a_mostly_negative_tail(simd_level, approximate, rng):
    """Inputs nearly all far in the negative tail switch the baseline loops to
    their exp-first form, where the other elements are blended in from the
    near path: every element must get the same bits there as among
    unit-scale inputs, where the loops run near-first and queue the tail."""
    n = 6 * 1024 + 13
    x = (-rng.uniform(5.0, 16.0, n)).astype(np.float32)
    few = rng.random(n) < 0.1
    x[few] = (4 * rng.standard_normal(few.sum())).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    # the same elements scattered among 20 times as many N(0, 1) inputs
    w = rng.standard_normal(21 * n).astype(np.float32)
    wg = rng.standard_normal(21 * n).astype(np.float32)
    at = rng.choice(21 * n, n, replace=False)
    w[at], wg[at] = x, g
    for got, among in [(fa.gelu(x, approximate=approximate), fa.gelu(w, approximate=approximate)),
                       (fa.gelu_backward(g, x, approximate=approximate),
                        fa.gelu_backward(wg, w, approximate=approximate))]:
        np.testing.assert_array_equal(got.view(np.uint32), among[at].view(np.uint32))
    _check(x, "gelu" if approximate == "none" else "gelu_tanh", approximate)
