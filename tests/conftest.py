"""Shared fixtures: references in float64 and the SIMD levels to test."""

import numpy as np
import pytest

import fastact
from fastact import _kernels

# Every instruction-set level this build and this CPU can run: the kernels'
# tests run at each, so the baseline and AVX2 loops are exercised on an
# AVX-512 machine too.
AVAILABLE_LEVELS = [
    level
    for index, level in enumerate(_kernels.LEVEL_NAMES)
    if level in _kernels.compiled_simd_levels()
    and index <= _kernels.LEVEL_NAMES.index(_kernels.detected_simd_level())
]


@pytest.fixture(params=AVAILABLE_LEVELS)
def simd_level(request):
    """Run the test with the loops of one SIMD level, then restore the default."""
    previous = _kernels.set_simd_level(request.param)
    try:
        yield request.param
    finally:
        _kernels.set_simd_level(previous)


@pytest.fixture
def rng():
    return np.random.default_rng(20261126)


@pytest.fixture(autouse=True)
def _restore_threads():
    """Tests that change the thread count must not leak it into others."""
    before = fastact.get_num_threads()
    yield
    fastact.set_num_threads(before)


FLOAT_DTYPES = [np.float32, np.float64]
