"""Fork safety: every kernel works in a forked child, bit for bit as in the parent.

GNU OpenMP's thread pool does not survive fork(): a child that enters a
parallel region after its parent ran one waits forever.  fastact notices the
fork and runs the child's kernels on one thread.  Each scenario runs in its
own Python process under a timeout, so a hang fails the test (and its
process group is killed) instead of blocking the run.
"""

import os
import signal
import subprocess
import sys

import pytest

from fastact import _kernels

TIMEOUT_S = 120

pytestmark = pytest.mark.skipif(
    not hasattr(os, "fork") or not _kernels.build_info()["openmp"],
    reason="needs os.fork and an OpenMP build",
)

# Shared by every scenario: threaded calls in the parent, then the same calls
# in a child; each call's result is reduced to a digest of its bytes.
PRELUDE = r'''
import concurrent.futures, hashlib, json, multiprocessing, os, sys, threading, warnings
import numpy as np
import fastact as fa
from fastact import _kernels

# 2^18 elements: at least two grains (2^15 for the ReLU family, 2^12 for
# GELU) per thread, so with 2 threads every kernel runs a parallel region.
N = 1 << 18

try:
    import ml_dtypes
    HALF = (np.float16, ml_dtypes.bfloat16)
except ImportError:
    HALF = (np.float16,)

def all_digests(_=None):
    digests = []
    for dtype in (np.float32, np.float64, *HALF):
        rng = np.random.default_rng(7)
        x = rng.standard_normal(N).astype(dtype)
        g = rng.standard_normal(N).astype(dtype)
        x2, g2 = x.reshape(-1, 64), g.reshape(-1, 64)
        w = rng.uniform(-1, 1, 64).astype(dtype)
        x3, g3 = x.reshape(64, 8, -1), g.reshape(64, 8, -1)
        w3 = w[:8].copy()
        shared = np.array([0.25], dtype)
        results = [
            fa.relu(x), fa.relu_backward(g, x),
            fa.leaky_relu(x, 0.02), fa.leaky_relu_backward(g, x, 0.02),
            fa.gelu(x), fa.gelu_backward(g, x),
            fa.gelu(x, "tanh"), fa.gelu_backward(g, x, "tanh"),
            fa.prelu(x2, w), *fa.prelu_backward(g2, x2, w),
            fa.prelu(x3, w3), *fa.prelu_backward(g3, x3, w3),
            fa.prelu(x, shared), *fa.prelu_backward(g, x, shared),
            fa.relu(x2[:, ::2]), fa.gelu(x2.T),
        ]
        out = x.copy()
        results.append(fa.gelu(out, out=out))
        digests += [hashlib.sha256(np.ascontiguousarray(r).tobytes()).hexdigest()
                    for r in results]
    return digests

def child_state(_=None):
    """What a child reports about its threads (before and after asking for 2)."""
    before = fa.get_num_threads()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fa.set_num_threads(2)
    return [before, fa.get_num_threads(), fa.show_config(file=open(os.devnull, "w"))["threads"],
            [str(w.message) for w in caught]]

def report_from_child(write_fd, digests):
    os.write(write_fd, json.dumps([digests, child_state()]).encode())
    os.close(write_fd)

def fork_and_collect(work):
    """Run work() in a child made by os.fork(); return what it reported."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            report_from_child(write_fd, work())
        finally:
            os._exit(0)
    os.close(write_fd)
    chunks = []
    while True:
        chunk = os.read(read_fd, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    assert status == 0, f"child exited with status {status}"
    return json.loads(b"".join(chunks))

def check_child(report, want):
    digests, (before, after, shown, messages) = report
    assert digests == want, "a kernel's result in the child differs from the parent's"
    assert before == after == shown == 1, (before, after, shown)
    assert any("fork" in m for m in messages), messages

fa.set_num_threads(2)
assert fa.get_num_threads() == 2
WANT = all_digests()
'''


def _run(body):
    """Run PRELUDE + body in a fresh interpreter; fail (not hang) past TIMEOUT_S."""
    proc = subprocess.Popen(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", PRELUDE + body],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)   # the scenario and every child it made
        proc.communicate()
        pytest.fail(f"the scenario hung for {TIMEOUT_S} s (a child deadlocked?)", pytrace=False)
    assert proc.returncode == 0, err
    assert out.splitlines()[-1:] == ["OK"], out + err


def test_os_fork():
    _run('check_child(fork_and_collect(all_digests), WANT)\nprint("OK")\n')


def test_grandchild():
    _run(r'''
def child_then_grandchild():
    mine = all_digests()
    assert mine == WANT
    grandchild = fork_and_collect(all_digests)
    check_child(grandchild, WANT)
    return mine

check_child(fork_and_collect(child_then_grandchild), WANT)
print("OK")
''')


def test_multiprocessing_pool_fork():
    _run(r'''
with multiprocessing.get_context("fork").Pool(2) as pool:
    for digests in pool.map(all_digests, range(4)):
        assert digests == WANT
    for before, after, shown, messages in pool.map(child_state, range(2)):
        assert before == after == shown == 1
print("OK")
''')


def test_process_pool_executor_fork():
    _run(r'''
context = multiprocessing.get_context("fork")
with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
    for digests in pool.map(all_digests, range(4)):
        assert digests == WANT
print("OK")
''')


def test_fork_while_another_thread_is_inside_a_kernel():
    _run(r'''
big = np.random.default_rng(1).standard_normal(1 << 22).astype(np.float32)
stop = threading.Event()
started = threading.Event()

def busy():
    # threaded calls back to back: the GIL is released inside each, so the
    # main thread forks while this one is (almost always) inside a kernel
    while not stop.is_set():
        started.set()
        fa.gelu_backward(big, big)

thread = threading.Thread(target=busy)
thread.start()
started.wait()
try:
    for _ in range(5):
        check_child(fork_and_collect(all_digests), WANT)
finally:
    stop.set()
    thread.join()
print("OK")
''')


def test_parent_keeps_its_threads():
    """Only the child is serial: the parent still runs (and reports) 2 threads."""
    _run(r'''
check_child(fork_and_collect(all_digests), WANT)
assert fa.get_num_threads() == 2 and not _kernels.forked_child()
assert all_digests() == WANT
print("OK")
''')
