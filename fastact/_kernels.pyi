"""Type stubs for the compiled kernel module fastact._kernels.

The kernels themselves are C-level entry points (see _kernels.pxd) called by
fastact._ops; from Python the module offers threads, SIMD-level control,
build facts and a threaded copy (the benchmarks' bandwidth floor).
"""

from typing import TypedDict, TypeVar

import numpy as np
import numpy.typing as npt

_F = TypeVar("_F", np.float32, np.float64)

RELU: int
LEAKY_RELU: int
GELU: int
GELU_TANH: int
LEVEL_NAMES: tuple[str, str, str]

class _BuildInfo(TypedDict):
    openmp: bool
    compiler: str
    simd_levels_compiled: tuple[str, ...]

def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def forked_child() -> bool: ...
def detected_simd_level() -> str: ...
def simd_level() -> str: ...
def compiled_simd_levels() -> tuple[str, ...]: ...
def set_simd_level(name: str) -> str: ...
def stream_min_bytes() -> int: ...
def build_info() -> _BuildInfo: ...
def copy(src: npt.NDArray[_F], dst: npt.NDArray[_F]) -> None: ...
