"""GELU over input scale: N(0, sigma^2) for several sigma, and Student's t(3).

fastact's GELU loops evaluate most elements of unit-scale data with a
polynomial and no exp; elements beyond |x| ~ 3.75-3.9 take an exp path, and
past fixed points the result is a constant (x, 1 or 0).  How many elements
fall where depends on the input's scale, so the speed does too: these cells
track it.  ``time_*`` times fastact (out=); ``TorchGeluScale`` times PyTorch's
aten kernels on the same arrays when torch is installed (skipped otherwise),
so the two can be set side by side per commit.  The thread count is a
parameter, set in ``setup``.
"""

import functools

import numpy as np

import fastact

from . import common

#: "1".."8": N(0, sigma^2); "t3": Student's t with 3 degrees of freedom
#: (heavy tails: about 0.9 % of it lies beyond |x| = 6).
SCALES = ["0.5", "1", "2", "4", "8", "t3"]
SIZES = [2**16, 2**20]
FORMS = ["none", "tanh"]


@functools.lru_cache(maxsize=None)
def scaled(scale, dtype, size):
    """(x, grad_output, out) for one scale; cached per process."""
    rng = np.random.default_rng([common.SEED, 7])
    if scale == "t3":
        x = rng.standard_t(3, size)
    else:
        x = float(scale) * rng.standard_normal(size)
    g = rng.standard_normal(size)
    out = np.empty(size, dtype)
    out.fill(1.0)
    return x.astype(dtype), g.astype(dtype), out


class GeluScale:
    params = [SCALES, FORMS, common.DTYPES, SIZES, common.THREADS]
    param_names = ["scale", "approximate", "dtype", "size", "threads"]
    repeat = (5, 50, 1.0)
    timeout = 120

    def setup(self, scale, approximate, dtype, size, threads):
        fastact.set_num_threads(threads)
        self.x, self.g, self.out = scaled(scale, dtype, size)

    def time_forward(self, scale, approximate, dtype, size, threads):
        fastact.gelu(self.x, approximate, out=self.out)

    def time_backward(self, scale, approximate, dtype, size, threads):
        fastact.gelu_backward(self.g, self.x, approximate, out=self.out)


class TorchGeluScale:
    params = GeluScale.params
    param_names = GeluScale.param_names
    repeat = (5, 50, 1.0)
    timeout = 120

    def setup(self, scale, approximate, dtype, size, threads):
        try:
            import torch
        except ImportError:
            raise NotImplementedError("torch is not installed")
        torch.set_num_threads(threads)
        x, g, out = scaled(scale, dtype, size)
        self.aten = torch.ops.aten
        self.x, self.g = torch.from_numpy(x), torch.from_numpy(g)
        self.out = torch.from_numpy(out.copy())

    def time_forward(self, scale, approximate, dtype, size, threads):
        self.aten.gelu.out(self.x, approximate=approximate, out=self.out)

    def time_backward(self, scale, approximate, dtype, size, threads):
        self.aten.gelu_backward.grad_input(self.g, self.x, approximate=approximate,
                                           grad_input=self.out)
