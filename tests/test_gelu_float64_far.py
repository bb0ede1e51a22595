"""float64 GELU on the far range and at its edges.

At the AVX2 and AVX-512 levels the float64 loops send 3.875 <= |x| < 37.5
(exact form) or < 20 (tanh form), when not saturated, to the far range's own
maths (_gelu_f64_far.h: one-factor 2^n, a Mills-ratio fit of its own, 1/(1+E)
as a polynomial) and only the elements past those ends, infinities and NaNs
to the generic maths; the baseline sends all of them to the generic maths.
Checked here at every level against mpmath: every float64 a few ulp around
each edge (both signs), a sweep of the whole range, and vectors mixing
near, far, past-the-end and special elements, which must give what each
element gives alone.
"""

import numpy as np
import pytest

import fastact as fa
from reference import every_float_around, mp_reference

# the start of the far range and the ends of the far maths of each form
EDGES = [3.875, 20.0, 37.5]
# max relative error on normal results: a few units of 2^-53 (measured
# 6.5e-16 at most on these points, at every level)
BAR = 2e-15
KINDS = [("gelu", "none"), ("grad", "none"), ("tanh", "tanh"), ("tanh_grad", "tanh")]


def _run(kind, approximate, x, g=None):
    if kind in ("gelu", "tanh"):
        return fa.gelu(x, approximate=approximate)
    return fa.gelu_backward(np.ones_like(x) if g is None else g, x, approximate=approximate)


def _check(kind, approximate, x):
    got = _run(kind, approximate, x)
    ref = mp_reference(kind, x)
    normal = np.abs(ref) >= np.finfo(np.float64).tiny
    rel = np.abs(got[normal] - ref[normal]) / np.abs(ref[normal])
    assert rel.max() <= BAR, f"{kind}: rel {rel.max():.3g} at x={x[normal][rel.argmax()]!r}"
    # subnormal results (x below about -37.5): within 1.5 units of 2^-1074
    tiny = np.abs(got[~normal] - ref[~normal]) / 2.0**-1074
    assert tiny.max(initial=0) <= 1.5


@pytest.mark.parametrize("kind, approximate", KINDS)
def test_gelu_float64_at_the_far_edges(simd_level, kind, approximate):
    _check(kind, approximate, every_float_around(EDGES, np.float64, 8))


@pytest.mark.parametrize("kind, approximate", KINDS)
def test_gelu_float64_across_the_far_range(simd_level, kind, approximate, rng):
    a = np.concatenate([rng.uniform(3.875, 40.0, 1500), rng.uniform(19.0, 21.0, 100),
                        rng.uniform(37.0, 38.6, 100)])
    _check(kind, approximate, np.concatenate([a, -a]))


@pytest.mark.parametrize("kind, approximate", KINDS)
def test_gelu_float64_far_classes_mixed_each_element_alone(simd_level, kind, approximate, rng):
    """Near, far, past-the-end (both forms), saturated and special elements
    shuffled together, over lengths that cross the blocks of the queues:
    every result is bitwise what the element gives alone."""
    pool = np.array([0.5, -2.0, 3.874, -3.875, 4.5, -6.0, 8.25, -11.0, -19.99, -20.0,
                     -25.0, -37.49, -37.5, -38.0, -45.0, 9.5, np.nan, np.inf, -np.inf])
    for n in (7, 64, 257, 600, 1100):
        x = rng.choice(pool, n)
        g = rng.uniform(-2.0, 2.0, n)
        got = _run(kind, approximate, x, g)
        alone = np.array([_run(kind, approximate, x[i:i + 1], g[i:i + 1])[0] for i in range(n)])
        np.testing.assert_array_equal(got.view(np.int64)[~np.isnan(got)],
                                      alone.view(np.int64)[~np.isnan(alone)])
        assert np.array_equal(np.isnan(got), np.isnan(x))
