"""Arrays of more than 2^31 float32 elements (8.6 GB each): no index overflows.

Each array holds a fixed pattern of period B (not a power of two), so every
element's expected value comes from small calls on the pattern, chunk by
chunk (elementwise results do not depend on where an element sits).  The
elements around index 2^31 and at the far end are also checked against the
float64 references in tests/reference.py, and PReLU's grad_weight against an
exactly summed reference within its documented 1e-5 (docs/accuracy.md).

Marked ``hugemem``: deselected by default (see pyproject.toml), run with
``python -m pytest -m hugemem tests/test_huge.py``; each test skips with a
reason when /proc/meminfo's MemAvailable is too small for it.
"""

import gc
import math

import numpy as np
import pytest
from reference import gelu_grad_ref64, gelu_ref64, prelu_backward_ref, ulp_error

import fastact as fa

pytestmark = pytest.mark.hugemem

N = 2**31 + 65560            # > 2^31, a multiple of 8 (channels below)
B = 1_000_000                # the pattern's period, a multiple of 8
GB = N * 4
CHANNELS = 8
# where an index overflow would show: around 2^31 and at the far end
WINDOWS = [(2**31 - 4096, 2**31 + 4096), (N - 8192, N)]

_base = (np.random.default_rng(31).standard_normal(2 * B) * 3).astype(np.float32)
_base[B:] = _base[:B]        # two periods, so any window of up to B fits
_base[5:13] = 0.0            # exact zeros: the x == 0 cases of the backward passes


def _need(arrays):
    """Skip unless `arrays` float32 arrays of N elements (+1 GiB) fit in memory."""
    need = arrays * GB + (1 << 30)
    available = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except OSError:
        pass
    if available < need:
        pytest.skip(f"needs {need / 2**30:.1f} GiB of free memory, MemAvailable is "
                    f"{available / 2**30:.1f} GiB")


def _pattern(start, stop):
    """The pattern's values at flat indices [start, stop), stop - start <= B."""
    offset = start % B
    return _base[offset:offset + stop - start]


def _fill(flat):
    for i in range(0, flat.size, B):
        j = min(i + B, flat.size)
        flat[i:j] = _pattern(i, j)


def _chunks(bounds=()):
    """[start, stop) pieces covering [0, N), at most B long, split at `bounds`."""
    edges = sorted(set(range(0, N, B)) | set(bounds) | {N})
    return zip(edges[:-1], edges[1:])


def _check_all(flat, expected, bounds=()):
    """Every element of flat equals expected(pattern piece, start) bit for bit."""
    for i, j in _chunks(bounds):
        want = expected(_pattern(i, j), i)
        if not np.array_equal(flat[i:j].view(np.uint32), want.view(np.uint32)):
            bad = i + int(np.argmax(flat[i:j].view(np.uint32) != want.view(np.uint32)))
            raise AssertionError(f"element {bad} is {flat[bad]!r}, expected {want[bad - i]!r}")


def _windows():
    return [(i, j, _pattern(i, j).astype(np.float64)) for i, j in WINDOWS]


@pytest.fixture
def big():
    """One float32 array of N elements holding the pattern; freed afterwards."""
    _need(1)
    x = np.empty(N, np.float32)
    _fill(x)
    yield x
    del x
    gc.collect()


def test_relu_and_gelu_in_place_contiguous(big):
    x = big
    fa.relu(x, out=x)           # past 64 MiB: the streaming-store path
    _check_all(x, lambda p, i: fa.relu(p))
    for i, j, ref in _windows():
        assert np.array_equal(x[i:j], np.maximum(ref, 0).astype(np.float32))
    _fill(x)
    fa.gelu(x, out=x)
    _check_all(x, lambda p, i: fa.gelu(p))
    for i, j, ref in _windows():
        assert ulp_error(x[i:j], gelu_ref64(ref)).max() <= 4    # docs/accuracy.md


def test_prelu_in_place_per_channel(big):
    x = big
    w = np.linspace(-0.5, 0.5, CHANNELS, dtype=np.float32)
    # channels last: x as (N / 8, 8), channel = flat index % 8
    fa.prelu(x.reshape(-1, CHANNELS), w, axis=1, out=x.reshape(-1, CHANNELS))
    per_row = np.tile(w, B // CHANNELS)
    _check_all(x, lambda p, i: np.where(p > 0, p, per_row[:p.size] * p))
    for i, j, ref in _windows():
        want = np.where(ref > 0, ref, w[np.arange(i, j) % CHANNELS] * ref.astype(np.float32))
        assert np.array_equal(x[i:j], want.astype(np.float32))
    # channels first: x as (8, N / 8), runs of N / 8 elements per slope
    _fill(x)
    run = N // CHANNELS
    fa.prelu(x.reshape(CHANNELS, -1), w, axis=0, out=x.reshape(CHANNELS, -1))
    _check_all(x, lambda p, i: np.where(p > 0, p, w[i // run] * p),
               bounds=range(0, N, run))
    i, j, ref = _windows()[-1]
    assert np.array_equal(x[i:j], np.where(ref > 0, ref, w[-1] * ref.astype(np.float32))
                          .astype(np.float32))


def test_fortran_order_transposed(big):
    """A transposed (Fortran-ordered) view takes the no-copy path too."""
    x = big
    xt = x.reshape(CHANNELS, -1).T            # shape (N / 8, 8), F-contiguous
    w = np.linspace(0.1, 0.8, CHANNELS, dtype=np.float32)
    fa.prelu(xt, w, axis=1, out=xt)           # channel c is row c of the C view
    run = N // CHANNELS
    _check_all(x, lambda p, i: np.where(p > 0, p, w[i // run] * p), bounds=range(0, N, run))
    _fill(x)
    fa.gelu(xt, "tanh", out=xt)
    _check_all(x, lambda p, i: fa.gelu(p, "tanh"))


def test_backward_passes_contiguous():
    _need(2)
    x = np.empty(N, np.float32)
    _fill(x)
    g = np.empty(N, np.float32)
    try:
        g.fill(1.0)
        fa.relu_backward(g, x, out=g)
        _check_all(g, lambda p, i: (p > 0).astype(np.float32))
        g.fill(1.0)
        fa.gelu_backward(g, x, out=g)
        _check_all(g, lambda p, i: fa.gelu_backward(np.ones_like(p), p))
        for i, j, ref in _windows():
            assert ulp_error(g[i:j], gelu_grad_ref64(ref)).max() <= 8   # docs/accuracy.md
        del g
        gc.collect()
        # PReLU with grad_output = x (the same array): grad_weight sums x^2 where x <= 0
        w = np.linspace(-0.5, 0.5, CHANNELS, dtype=np.float32)
        x2 = x.reshape(-1, CHANNELS)
        grad_input, grad_weight = fa.prelu_backward(x2, x2, w, axis=1)
        per_row = np.tile(w, B // CHANNELS)
        _check_all(grad_input.reshape(-1),
                   lambda p, i: np.where(p > 0, p, per_row[:p.size] * p))
        del grad_input
        gc.collect()
        np.testing.assert_allclose(grad_weight, _exact_grad_weight(CHANNELS), rtol=1e-5)
        shared = np.array([0.25], np.float32)
        grad_input, grad_weight = fa.prelu_backward(x, x, shared)
        _check_all(grad_input, lambda p, i: np.where(p > 0, p, shared[0] * p))
        i, j, ref = _windows()[-1]
        want_input, _ = prelu_backward_ref(ref.astype(np.float32), ref.astype(np.float32),
                                           shared, 0)
        assert np.array_equal(grad_input[i:j], want_input)
        del grad_input
        np.testing.assert_allclose(grad_weight, _exact_grad_weight(1), rtol=1e-5)
    finally:
        del x
        gc.collect()


def _exact_grad_weight(channels):
    """Per channel, the exact sum over the whole array of x * x where x <= 0."""
    period = _base[:B].astype(np.float64)
    terms = np.where(period > 0, 0.0, period * period)   # exact in float64
    full, rest = divmod(N, B)
    sums = []
    for c in range(channels):
        one = math.fsum(terms[c::channels].tolist())
        tail = math.fsum(terms[:rest][c::channels].tolist())
        sums.append(full * one + tail)
    return np.array(sums)


def test_strided_input_broadcast_rows():
    """A non-contiguous input of more than 2^31 elements (rows of stride 0, so
    its own memory is small): copied to a contiguous buffer, then computed."""
    _need(2)
    row = _base[:1000].copy()
    rows = N // 1000 + 1
    xb = np.broadcast_to(row, (rows, 1000))
    assert xb.size > 2**31 and not xb.flags.c_contiguous
    for f in (fa.relu, fa.gelu):
        y = f(xb)
        want = f(row)
        for start in range(0, rows, 4096):
            block = y[start:start + 4096]
            assert np.array_equal(block, np.broadcast_to(want, block.shape))
        del y, block
        gc.collect()
    ref = row.astype(np.float64)
    assert np.array_equal(fa.relu(row), np.maximum(ref, 0).astype(np.float32))
    assert ulp_error(fa.gelu(row), gelu_ref64(ref)).max() <= 4
