"""float64 GELU at the edges of the table-driven near path.

At every level (AVX-512, AVX2, baseline) the float64 loops evaluate |x| < 3.875
with one polynomial per piece of width 1/4 (k = round(4|x|), rounded to
nearest even, so the ties (2j+1)/8 sit on piece edges; _gelu_f64_x86.h,
_gelu_f64_sse2.h, _gelu_f64_near.h) and send larger |x| and NaN to the generic maths.  Every
float64 a few ulp around each of those edges, both signs, is checked here
against mpmath at every SIMD level, and so are vectors mixing a near element
with NaN, infinities or -0.0.
"""

import numpy as np
import pytest

import fastact as fa
from reference import every_float_around, mp_reference

# the piece edges (2j+1)/8, the last of them the end of the near range
PIECE_EDGES = [(2 * j + 1) / 8 for j in range(16)]
KINDS = [("gelu", "none", 1e-14), ("grad", "none", 1e-13),
         ("tanh", "tanh", 1e-13), ("tanh_grad", "tanh", 1e-13)]


def _run(kind, approximate, x, g=None):
    if kind in ("gelu", "tanh"):
        return fa.gelu(x, approximate=approximate)
    return fa.gelu_backward(np.ones_like(x) if g is None else g, x, approximate=approximate)


@pytest.mark.parametrize("kind, approximate, bar", KINDS)
def test_gelu_float64_at_piece_edges(simd_level, kind, approximate, bar):
    x = every_float_around(PIECE_EDGES, np.float64, 6)
    got = _run(kind, approximate, x)
    ref = mp_reference(kind, x)
    rel = np.abs(got - ref) / np.abs(ref)
    assert rel.max() <= bar, f"{kind}: rel {rel.max():.3g} at x={x[rel.argmax()]!r}"


@pytest.mark.parametrize("kind, approximate, bar", KINDS)
def test_gelu_float64_specials_next_to_near_elements(simd_level, kind, approximate, bar):
    """Each special value at either lane of a vector (and of wider vectors)
    beside near elements: the specials give their own results, the near
    elements stay within the bar and match what they give alone."""
    near = np.array([0.3, -1.2, 2.9, -0.75, 3.8, -3.1, 0.01])
    specials = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 40.0, -40.0])
    for offset in range(8):
        x = np.resize(near, 16)
        where = np.arange(offset, 16, 3)
        x[where] = np.resize(specials, where.size)
        for n in (16, 15):
            got = _run(kind, approximate, x[:n])
            alone = np.array([_run(kind, approximate, x[i:i + 1])[0] for i in range(n)])
            np.testing.assert_array_equal(got.view(np.int64)[~np.isnan(got)],
                                          alone.view(np.int64)[~np.isnan(alone)])
            assert np.array_equal(np.isnan(got), np.isnan(x[:n]))
            ref = mp_reference(kind, np.nan_to_num(x[:n], posinf=40.0, neginf=-40.0))
            finite = np.isfinite(x[:n]) & (ref != 0)
            rel = np.abs(got[finite] - ref[finite]) / np.abs(ref[finite])
            assert rel.max() <= bar
            zero = x[:n] == 0
            if kind in ("gelu", "tanh"):
                assert np.all(got[zero] == 0)
                # gelu(-0.0) = -0.0 * Phi(0) = -0.0 at every level, +0.0 for +0.0
                assert np.array_equal(np.signbit(got[zero]), np.signbit(x[:n][zero]))
                assert np.all(got[x[:n] == np.inf] == np.inf)
                assert np.all(got[x[:n] == -np.inf] == 0)
            else:
                assert np.all(got[zero] == 0.5)
                assert np.all(got[x[:n] == np.inf] == 1)
                assert np.all(got[x[:n] == -np.inf] == 0)


@pytest.mark.parametrize("kind, approximate, bar", [k for k in KINDS if "grad" in k[0]])
def test_gelu_float64_backward_scales_by_g_at_the_edges(simd_level, kind, approximate, bar):
    """g * gelu'(x) with g != 1 through the near path and across its end."""
    x = every_float_around([0.625, 0.875, 3.875], np.float64, 3)
    g = np.resize(np.array([-2.5, 0.125, 3.0, -1e-3]), x.size)
    got = _run(kind, approximate, x, g)
    ref = g * mp_reference(kind, x)
    rel = np.abs(got - ref) / np.abs(ref)
    assert rel.max() <= bar, f"rel {rel.max():.3g} at x={x[rel.argmax()]!r}"


@pytest.mark.parametrize("kind, approximate, bar", KINDS)
def test_gelu_float64_every_tail_and_block_edge(simd_level, kind, approximate, bar, rng):
    """Lengths that leave every tail of 1..7 elements after whole vectors, and
    cross the 256-element blocks whose far elements are queued: far, NaN and
    saturated elements at the last places give what they give alone, and the
    rest stays within the bar."""
    base = rng.uniform(-3.8, 3.8, 520)
    specials = np.array([np.nan, -7.5, 5.25, 40.0, -0.0, 3.874])
    for n in list(range(1, 10)) + [255, 256, 257, 259, 511, 512, 513, 515]:
        x = base[:n].copy()
        for j, v in enumerate(specials[:n]):
            x[n - 1 - 2 * j if n - 1 - 2 * j >= 0 else j] = v
        g = np.resize(np.array([1.5, -0.25, 2.0]), n)
        got = _run(kind, approximate, x, g)
        alone = np.array([_run(kind, approximate, x[i:i + 1], g[i:i + 1])[0] for i in range(n)])
        np.testing.assert_array_equal(got.view(np.int64)[~np.isnan(got)],
                                      alone.view(np.int64)[~np.isnan(alone)])
        assert np.array_equal(np.isnan(got), np.isnan(x))
        ok = ~np.isnan(x) & (x != 0)
        if not ok.any():
            continue
        ref = mp_reference(kind, x[ok])
        if kind in ("grad", "tanh_grad"):
            ref = g[ok] * ref
        rel = np.abs(got[ok] - ref) / np.abs(ref)
        assert rel.max() <= bar, f"n={n}: rel {rel.max():.3g} at x={x[ok][rel.argmax()]!r}"
