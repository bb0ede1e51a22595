"""Threads: results identical for any thread count, the controls work, Python threads are safe."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import fastact as fa
from fastact import _kernels

OPENMP = _kernels.build_info()["openmp"]

# Large enough that every kernel really uses several threads.
N = (1 << 18) + 37


def _all_results(x, g, w2d, x2d, g2d):
    return [
        fa.relu(x), fa.relu_backward(g, x),
        fa.leaky_relu(x, 0.02), fa.leaky_relu_backward(g, x, 0.02),
        fa.gelu(x), fa.gelu_backward(g, x),
        fa.gelu(x, "tanh"), fa.gelu_backward(g, x, "tanh"),
        fa.prelu(x2d, w2d), *fa.prelu_backward(g2d, x2d, w2d),
        *fa.prelu_backward(g2d.T.copy(), x2d.T.copy(), w2d, axis=0),
        *fa.prelu_backward(g, x, np.array([0.3], x.dtype)),
        *fa.prelu_backward(g2d[:, :, None].repeat(3, 2), x2d[:, :, None].repeat(3, 2), w2d),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bitwise_identical_for_any_thread_count(dtype, rng):
    x = rng.standard_normal(N).astype(dtype)
    g = rng.standard_normal(N).astype(dtype)
    x2d = rng.standard_normal((4099, 64)).astype(dtype)
    g2d = rng.standard_normal((4099, 64)).astype(dtype)
    w2d = rng.uniform(-1, 1, 64).astype(dtype)
    fa.set_num_threads(1)
    serial = _all_results(x, g, w2d, x2d, g2d)
    for threads in (2, 3, 4):
        fa.set_num_threads(threads)
        for a, b in zip(serial, _all_results(x, g, w2d, x2d, g2d)):
            assert a.tobytes() == b.tobytes(), f"differs with {threads} threads"


def test_set_and_get_num_threads():
    fa.set_num_threads(3)
    assert fa.get_num_threads() == (3 if OPENMP else 1)
    fa.set_num_threads(1)
    assert fa.get_num_threads() == 1
    with pytest.raises(ValueError, match="positive"):
        fa.set_num_threads(0)
    with pytest.raises(TypeError, match="integer"):
        fa.set_num_threads(2.5)


@pytest.mark.skipif(not OPENMP, reason="built without OpenMP")
def test_threadpoolctl_limits_fastact():
    fa.set_num_threads(4)
    assert any(info["user_api"] == "openmp" for info in threadpool_info())
    with threadpool_limits(limits=1, user_api="openmp"):
        assert fa.get_num_threads() == 1
    assert fa.get_num_threads() == 4


@pytest.mark.skipif(not OPENMP, reason="built without OpenMP")
def test_omp_num_threads_is_honoured():
    code = "import fastact; print(fastact.get_num_threads())"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == "1"


def test_many_python_threads_at_once(rng):
    """Kernels release the GIL and keep no shared state between calls."""
    x = rng.standard_normal((8, 1 << 16))
    g = rng.standard_normal((8, 1 << 16))
    w = np.array([0.2])
    want = [(fa.gelu(x[i]), fa.prelu_backward(g[i], x[i], w)) for i in range(8)]
    got = [None] * 8
    errors = []

    def work(i):
        try:
            for _ in range(5):
                got[i] = (fa.gelu(x[i]), fa.prelu_backward(g[i], x[i], w))
        except Exception as exc:  # reported below, in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for (y0, (gi0, gw0)), (y1, (gi1, gw1)) in zip(want, got):
        assert y0.tobytes() == y1.tobytes()
        assert gi0.tobytes() == gi1.tobytes() and gw0.tobytes() == gw1.tobytes()


def test_forced_simd_level_from_environment():
    code = "import fastact; print(fastact.show_config()['simd_level'])"
    env = dict(os.environ, FASTACT_SIMD="baseline")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip().endswith("baseline")
    env["FASTACT_SIMD"] = "sse9"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "FASTACT_SIMD" in result.stderr


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_streamed_large_outputs_equal_small_calls(simd_level, dtype):
    """ReLU-family outputs past _kernels.stream_min_bytes() go through a buffer
    and non-temporal stores; every element must equal the one computed by
    calls small enough not to stream, in place too (GELU, which does not
    stream, rides along)."""
    n = _kernels.stream_min_bytes() // np.dtype(dtype).itemsize + 4099
    rng = np.random.default_rng(11)
    x = rng.standard_normal(n).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    piece = 1 << 18
    pieces = range(0, n, piece)
    for forward in (fa.relu, lambda a, out=None: fa.leaky_relu(a, 0.1, out=out), fa.gelu):
        expected = np.concatenate([forward(x[i:i + piece]) for i in pieces])
        assert np.array_equal(forward(x), expected)
        in_place = x.copy()
        forward(in_place, out=in_place)
        assert np.array_equal(in_place, expected)
    expected = np.concatenate([fa.leaky_relu_backward(g[i:i + piece], x[i:i + piece], 0.1)
                               for i in pieces])
    assert np.array_equal(fa.leaky_relu_backward(g, x, 0.1), expected)


def _every_kernel(x, g, x2, g2, w, x3, g3, w3):
    """Every public kernel and variant once, on one thread's own arrays."""
    shared = np.array([0.3], x.dtype)
    out = np.empty_like(x)
    return [
        fa.relu(x), fa.relu_backward(g, x),
        fa.leaky_relu(x, 0.02), fa.leaky_relu_backward(g, x, 0.02),
        fa.gelu(x), fa.gelu_backward(g, x),
        fa.gelu(x, "tanh"), fa.gelu_backward(g, x, "tanh"),
        fa.prelu(x2, w), *fa.prelu_backward(g2, x2, w),
        fa.prelu(x3, w3), *fa.prelu_backward(g3, x3, w3),
        fa.prelu(x, shared), *fa.prelu_backward(g, x, shared),
        fa.gelu(x2[:, ::3]), fa.relu_backward(g2.T, x2.T),
        fa.gelu(x, out=out).copy(),
    ]


@pytest.mark.parametrize("threads", [1, 2])
def test_sixteen_python_threads_every_kernel(threads):
    """16 Python threads run every kernel at once on their own arrays: the
    results equal the sequential ones bit for bit (kernels keep no shared
    state; with 2 OpenMP threads each call also runs its own parallel region)."""
    from concurrent.futures import ThreadPoolExecutor

    fa.set_num_threads(threads)
    workers = 16

    def arrays(i):
        rng = np.random.default_rng(1000 + i)
        dtype = (np.float32, np.float64)[i % 2]
        n = (1 << 17) + 512 * i         # threaded at 2 threads, each its own size
        x = rng.standard_normal(n).astype(dtype)
        g = rng.standard_normal(n).astype(dtype)
        x2, g2 = x.reshape(-1, 64), g.reshape(-1, 64)
        w = rng.uniform(-1, 1, 64).astype(dtype)
        x3, g3 = x.reshape(-1, 8, 64), g.reshape(-1, 8, 64)
        return x, g, x2, g2, w, x3, g3, w[:8].copy()

    inputs = [arrays(i) for i in range(workers)]
    sequential = [_every_kernel(*a) for a in inputs]
    start = threading.Barrier(workers)

    def work(i):
        start.wait()                    # all 16 enter the kernels together
        return [_every_kernel(*inputs[i]) for _ in range(3)]

    with ThreadPoolExecutor(workers) as pool:
        concurrent = list(pool.map(work, range(workers)))
    for i, repeats in enumerate(concurrent):
        for results in repeats:
            assert len(results) == len(sequential[i])
            for k, (a, b) in enumerate(zip(sequential[i], results)):
                assert a.dtype == b.dtype and a.shape == b.shape
                assert a.tobytes() == b.tobytes(), f"thread {i}, result {k} differs"


_PUBLIC_CALLS = {
    "relu": lambda x, g, out: fa.relu(x, out=out),
    "relu_backward": lambda x, g, out: fa.relu_backward(g, x, out=out),
    "leaky_relu": lambda x, g, out: fa.leaky_relu(x, 0.1, out=out),
    "leaky_relu_backward": lambda x, g, out: fa.leaky_relu_backward(g, x, 0.1, out=out),
    "prelu": lambda x, g, out: fa.prelu(x, np.array([0.1]), out=out),
    "prelu_backward": lambda x, g, out: fa.prelu_backward(g, x, np.array([0.1])),
    "gelu": lambda x, g, out: fa.gelu(x, out=out),
    "gelu_backward": lambda x, g, out: fa.gelu_backward(g, x, out=out),
}


@pytest.mark.parametrize("name", sorted(_PUBLIC_CALLS))
def test_kernel_releases_the_gil(name):
    """Proof without timing: with a switch interval of 100 s a thread holding
    the GIL is never made to give it up, so another Python thread can only
    advance its counter during the call if the kernel released the GIL."""
    call = _PUBLIC_CALLS[name]
    fa.set_num_threads(1)
    x = np.random.default_rng(3).standard_normal(1 << 22)
    g = np.ones_like(x)
    out = np.empty_like(x)
    counter = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            counter[0] += 1
            time.sleep(0)   # gives the GIL back, so the main thread can go on

    previous = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    thread = threading.Thread(target=count)
    thread.start()
    advanced = False
    try:
        while counter[0] == 0:
            time.sleep(0)
        for _ in range(50):     # one observation proves it; the OS may starve it
            before = counter[0]
            call(x, g, out)
            if counter[0] != before:
                advanced = True
                break
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(previous)
    assert advanced, f"{name} never let another Python thread run during the call"
