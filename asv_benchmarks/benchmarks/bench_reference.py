"""What fastact is measured against: NumPy/SciPy formulas and a plain copy.

Same sizes, dtypes and inputs as bench_kernels.  The formulas are the ones
a NumPy user writes (common.numpy_call): GELU's exact form uses
``scipy.special.erf``, everything else is NumPy.  They run on one thread,
as NumPy's element-wise functions do.  Their temporaries are part of the
formula and are timed; the final result goes through ``out=`` where the
idiom allows it.

``Copy`` is ``np.copyto`` of as many bytes as a forward pass (arrays=2:
read and write ``size`` elements) or a backward pass (arrays=3: read two
arrays of ``size`` elements and write one) moves: the speed a memory-bound
kernel cannot beat on one thread.
"""

from . import common


class _Reference:
    params = [common.KERNELS, common.DTYPES, common.SIZES]
    param_names = ["kernel", "dtype", "size"]
    repeat = (5, 50, 1.0)
    processes = 1  # a baseline: one round is enough
    timeout = 180
    direction = ""

    def setup(self, kernel, dtype, size):
        self.call = common.numpy_call(kernel + self.direction, dtype, size)


class NumPyForward(_Reference):
    def time_forward(self, kernel, dtype, size):
        self.call()


class NumPyBackward(_Reference):
    direction = "_backward"

    def time_backward(self, kernel, dtype, size):
        self.call()


class Copy:
    params = [[2, 3], common.DTYPES, common.SIZES]
    param_names = ["arrays", "dtype", "size"]
    repeat = (5, 50, 1.0)
    processes = 1
    timeout = 120

    def setup(self, arrays, dtype, size):
        self.call = common.copy_call(arrays, dtype, size)

    def time_copy(self, arrays, dtype, size):
        self.call()
