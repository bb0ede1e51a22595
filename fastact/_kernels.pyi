"""Type stubs for the compiled kernel module fastact._kernels.

Every kernel takes 1-D C-contiguous arrays of one dtype (float32 or float64)
and trusts its caller (fastact._ops) to have validated them.
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
def detected_simd_level() -> str: ...
def simd_level() -> str: ...
def compiled_simd_levels() -> tuple[str, ...]: ...
def set_simd_level(name: str) -> str: ...
def build_info() -> _BuildInfo: ...
def forward(
    op: int, x: npt.NDArray[_F], out: npt.NDArray[_F], param: float = ...
) -> None: ...
def backward(
    op: int,
    grad_output: npt.NDArray[_F],
    x: npt.NDArray[_F],
    out: npt.NDArray[_F],
    param: float = ...,
) -> None: ...
def copy(src: npt.NDArray[_F], dst: npt.NDArray[_F]) -> None: ...
def prelu_forward(
    x: npt.NDArray[_F],
    weight: npt.NDArray[_F],
    out: npt.NDArray[_F],
    outer: int,
    channels: int,
    inner: int,
) -> None: ...
def prelu_backward(
    grad_output: npt.NDArray[_F],
    x: npt.NDArray[_F],
    weight: npt.NDArray[_F],
    grad_input: npt.NDArray[_F],
    grad_weight: npt.NDArray[np.float64],
    outer: int,
    channels: int,
    inner: int,
) -> None: ...
