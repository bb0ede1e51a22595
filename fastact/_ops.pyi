"""Type stubs for the compiled public API module fastact._ops."""

from typing import Literal, TypeVar

import numpy as np
import numpy.typing as npt

# float16 and float32/float64; bfloat16 (ml_dtypes, an optional dependency)
# has no NumPy scalar type to name here, so its arrays match Any.
_F = TypeVar("_F", np.float16, np.float32, np.float64)
_Approximate = Literal["none", "tanh"]

def relu(x: npt.ArrayLike, out: npt.NDArray[_F] | None = None) -> npt.NDArray[_F]: ...
def relu_backward(
    grad_output: npt.ArrayLike, x: npt.ArrayLike, out: npt.NDArray[_F] | None = None
) -> npt.NDArray[_F]: ...
def leaky_relu(
    x: npt.ArrayLike, negative_slope: float = 0.01, out: npt.NDArray[_F] | None = None
) -> npt.NDArray[_F]: ...
def leaky_relu_backward(
    grad_output: npt.ArrayLike,
    x: npt.ArrayLike,
    negative_slope: float = 0.01,
    out: npt.NDArray[_F] | None = None,
) -> npt.NDArray[_F]: ...
def prelu(
    x: npt.ArrayLike,
    weight: npt.ArrayLike,
    axis: int = 1,
    out: npt.NDArray[_F] | None = None,
) -> npt.NDArray[_F]: ...
def prelu_backward(
    grad_output: npt.ArrayLike, x: npt.ArrayLike, weight: npt.ArrayLike, axis: int = 1
) -> tuple[npt.NDArray[_F], npt.NDArray[_F]]: ...
def gelu(
    x: npt.ArrayLike, approximate: _Approximate = "none", out: npt.NDArray[_F] | None = None
) -> npt.NDArray[_F]: ...
def gelu_backward(
    grad_output: npt.ArrayLike,
    x: npt.ArrayLike,
    approximate: _Approximate = "none",
    out: npt.NDArray[_F] | None = None,
) -> npt.NDArray[_F]: ...
