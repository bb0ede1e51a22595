"""fastact's kernels: every activation, forward and backward.

Each cell times one call on arrays made in ``setup`` (see common.py), the
result written through ``out=`` so that allocation is not what is measured.
The thread count is a parameter, set with ``fastact.set_num_threads`` in
``setup``; asv's "spawn" launch runs each cell in a fresh process, so it
does not leak from one cell into the next.
"""

import fastact

from . import common


class _KernelBenchmark:
    params = [common.KERNELS, common.DTYPES, common.SIZES, common.THREADS]
    param_names = ["kernel", "dtype", "size", "threads"]
    # The largest cells take up to ~0.1 s a call: a few samples suffice there,
    # while the microsecond cells collect many.
    repeat = (5, 50, 1.0)
    timeout = 120
    direction = ""

    def setup(self, kernel, dtype, size, threads):
        fastact.set_num_threads(threads)
        self.call = common.fastact_call(kernel + self.direction, dtype, size)


class Forward(_KernelBenchmark):
    """fa.relu / leaky_relu / prelu / gelu (exact and tanh), with out=."""

    def time_forward(self, kernel, dtype, size, threads):
        self.call()


class Backward(_KernelBenchmark):
    """The *_backward kernels (prelu_backward allocates its two results)."""

    direction = "_backward"

    def time_backward(self, kernel, dtype, size, threads):
        self.call()
