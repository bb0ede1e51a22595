"""The thread plan: how many threads a call gets and how its elements are split.

The drivers wake another thread only when each gets at least a grain of
elements (fastact._kernels.grains()), never more threads than the cap, and
cut one contiguous slice per thread on 64-element boundaries.  These tests
pin that logic for machines of any core count, this 2-core one included:
OpenMP accepts a thread count above the number of cores.
"""

import numpy as np
import pytest

import fastact as fa
from fastact import _kernels

OPENMP = _kernels.build_info()["openmp"]
GRAINS = _kernels.grains()
needs_openmp = pytest.mark.skipif(not OPENMP, reason="built without OpenMP")


@pytest.fixture
def cap():
    previous = fa.get_num_threads()
    yield fa.set_num_threads
    fa.set_num_threads(previous)


def test_grains_are_ordered_by_cost():
    # Float32 GELU costs ~0.4 ns/element, float64 GELU ~1.4 ns: the dearer
    # the element, the fewer a thread needs to repay its wake-up.
    assert GRAINS["gelu_float64"] < GRAINS["gelu_float32"]
    assert all(g >= 1024 and g & (g - 1) == 0 for g in GRAINS.values())


@needs_openmp
@pytest.mark.parametrize("kind", sorted(GRAINS))
@pytest.mark.parametrize("threads", [1, 2, 4, 8, 16, 64])
def test_thread_count_for_sizes(cap, kind, threads):
    cap(threads)
    grain = GRAINS[kind]
    for n in [0, 1, grain - 1, grain, 2 * grain - 1, 2 * grain, 3 * grain + 5,
              7 * grain, 16 * grain, 1 << 24, (1 << 31) + 3]:
        expected = 1 if n < 2 * grain else min(threads, n // grain)
        assert _kernels.planned_threads(n, kind) == expected, (n, threads)


@needs_openmp
@pytest.mark.parametrize("kind", sorted(GRAINS))
@pytest.mark.parametrize("threads", [2, 3, 8, 16])
def test_slices_cover_the_array_once(cap, kind, threads):
    cap(threads)
    grain = GRAINS[kind]
    for n in [2 * grain, 2 * grain + 1, 5 * grain + 63, 16 * grain + 1000, (1 << 22) + 7]:
        slices = _kernels.planned_slices(n, kind)
        assert len(slices) == _kernels.planned_threads(n, kind)
        assert slices[0][0] == 0 and slices[-1][1] == n
        for (a, b), (c, _) in zip(slices, slices[1:]):
            assert b == c, "slices must be contiguous"
        for a, b in slices:
            assert a % 64 == 0 and b > a, "each slice starts on a cache line of doubles"
        # The slices are balanced: none more than 64 elements above the mean.
        sizes = [b - a for a, b in slices[:-1]]
        assert max(sizes, default=0) <= n / len(slices) + 64


def test_one_thread_below_two_grains(cap):
    cap(16)
    for kind, grain in GRAINS.items():
        assert _kernels.planned_threads(2 * grain - 1, kind) == 1
        assert _kernels.planned_slices(2 * grain - 1, kind) == [(0, 2 * grain - 1)]


def test_planned_threads_rejects_unknown_kind():
    with pytest.raises(ValueError, match="kind must be one of"):
        _kernels.planned_threads(100, "tanh")


def test_stream_threshold_is_at_least_the_last_level_cache():
    assert _kernels.stream_min_bytes() >= 64 << 20
    assert _kernels.stream_min_bytes() >= _kernels._last_level_cache_bytes()


@needs_openmp
def test_plan_matches_results_at_the_grain_boundary(cap, rng):
    # Sizes on both sides of each grain threshold give the same bits with
    # one thread and with many, whatever the plan chose.
    cap(1)
    for dtype, kind in [(np.float32, "gelu_float32"), (np.float64, "gelu_float64")]:
        for n in (2 * GRAINS[kind] - 1, 2 * GRAINS[kind], 4 * GRAINS[kind] + 1):
            x = rng.standard_normal(n).astype(dtype)
            cap(1)
            serial = fa.gelu(x)
            cap(16)
            assert fa.gelu(x).tobytes() == serial.tobytes()
