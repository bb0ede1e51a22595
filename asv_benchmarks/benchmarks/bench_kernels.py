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

    kernel_call = staticmethod(common.fastact_call)

    def setup(self, kernel, dtype, size, threads):
        fastact.set_num_threads(threads)
        self.call = self.kernel_call(kernel + self.direction, dtype, size)


class Forward(_KernelBenchmark):
    """fa.relu / leaky_relu / prelu / gelu (exact and tanh), with out=."""

    def time_forward(self, kernel, dtype, size, threads):
        self.call()


class Backward(_KernelBenchmark):
    """The *_backward kernels (prelu_backward allocates its two results)."""

    direction = "_backward"

    def time_backward(self, kernel, dtype, size, threads):
        self.call()


class GeluInputScale:
    """GELU on N(0, scale^2) inputs, 2^16 elements, one thread.

    The AVX2/AVX-512 GELU loops take an exp-free path for |x| below ~3.9 and
    also run the exp-based one for any vector holding a larger element, so
    their speed depends on how wide the data is: scale 1 is the common case,
    scale 4 puts a large element in nearly every vector.
    """

    params = [["gelu", "gelu_backward", "gelu_tanh", "gelu_tanh_backward"], common.DTYPES,
              [1.0, 4.0]]
    param_names = ["operation", "dtype", "scale"]
    size = 2**16

    def setup(self, operation, dtype, scale):
        import numpy as np

        fastact.set_num_threads(1)
        rng = np.random.default_rng(common.SEED)
        self.x = (rng.standard_normal(self.size) * scale).astype(dtype)
        self.g = rng.standard_normal(self.size).astype(dtype)
        self.out = np.empty_like(self.x)
        self.approximate = "tanh" if "tanh" in operation else "none"
        self.backward = operation.endswith("_backward")

    def time_gelu(self, operation, dtype, scale):
        if self.backward:
            fastact.gelu_backward(self.g, self.x, self.approximate, out=self.out)
        else:
            fastact.gelu(self.x, self.approximate, out=self.out)
