"""Derived figures: effective GB/s and the fraction of copy bandwidth.

Each ``track_`` function times its own calls (common.median_time: the
median of 5 samples, each batching calls to at least 2 ms) and reports

* ``track_gbps``: bytes moved / median seconds per call / 1e9, with bytes
  moved = arrays x size x itemsize, arrays = 2 forward (read x, write out)
  and 3 backward (read grad_output and x, write grad_input);
* ``track_copy_fraction``: that figure divided by the GB/s of a
  single-threaded ``np.copyto`` that moves the same number of bytes (see
  common.copy_buffers), timed the same way in the same process.  1.0 means
  "as fast as copying the data"; it can exceed 1 with 2 threads, or in cache
  where a copy is not the bound.
"""

import fastact

from . import common


class Bandwidth:
    params = [common.OPERATIONS, common.DTYPES, common.SIZES, common.THREADS]
    param_names = ["operation", "dtype", "size", "threads"]
    processes = 1
    timeout = 180

    def setup(self, operation, dtype, size, threads):
        fastact.set_num_threads(threads)
        self.call = self.kernel_call(operation, dtype, size)
        arrays = common.arrays_moved(operation)
        self.nbytes = arrays * size * self.itemsize(dtype)
        self.copy = self.copy_call(arrays, dtype, size)

    kernel_call = staticmethod(common.fastact_call)
    copy_call = staticmethod(common.copy_call)

    @staticmethod
    def itemsize(dtype):
        return common.np.dtype(dtype).itemsize

    def track_gbps(self, operation, dtype, size, threads):
        return round(self.nbytes / common.median_time(self.call) / 1e9, 3)

    track_gbps.unit = "GB/s"

    def track_copy_fraction(self, operation, dtype, size, threads):
        kernel_gbps = self.nbytes / common.median_time(self.call)
        copy_gbps = self.nbytes / common.median_time(self.copy)
        return round(kernel_gbps / copy_gbps, 4)

    track_copy_fraction.unit = "fraction of copy GB/s"
