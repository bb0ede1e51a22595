"""Accuracy of fastact's float16 and bfloat16 kernels over every input value.

For each SIMD level this build and CPU can run, each half type and each
function, all 65,536 inputs (backward: with grad_output = 1) are checked
against

* the float32 kernel of the same level on the same values, rounded to the
  half type by NumPy / ml_dtypes: the count of results that differ (the
  promise is 0);
* a float64 reference (SciPy's ndtr / expit): the largest error in units of
  the half type's spacing at the reference, and the share of results that
  are the correctly rounded float64 value.

Prints a Markdown table.  Run: python tools/half_accuracy.py
"""

import argparse

import ml_dtypes
import numpy as np
from scipy import special

import fastact as fa
from fastact import _kernels

K = np.sqrt(2.0 / np.pi)
C = 0.044715


def _gelu(x):
    return x * special.ndtr(x)


def _gelu_grad(x):
    return special.ndtr(x) + x * np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)


def _tanh_s(x):
    return special.expit(2 * K * (x + C * x**3))


def _gelu_tanh(x):
    return x * _tanh_s(x)


def _gelu_tanh_grad(x):
    s = _tanh_s(x)
    return s + x * 2 * s * (1 - s) * K * (1 + 3 * C * x * x)


FUNCTIONS = {
    "relu": (lambda x: fa.relu(x), lambda x: np.maximum(x, 0.0)),
    "leaky_relu (0.01)": (lambda x: fa.leaky_relu(x, 0.01),
                          lambda x: np.where(x > 0, x, x * float(np.float32(0.01)))),
    "gelu": (lambda x: fa.gelu(x), _gelu),
    "gelu_backward": (lambda x: fa.gelu_backward(np.ones_like(x), x), _gelu_grad),
    "gelu tanh": (lambda x: fa.gelu(x, approximate="tanh"), _gelu_tanh),
    "gelu_backward tanh": (lambda x: fa.gelu_backward(np.ones_like(x), x, approximate="tanh"),
                           _gelu_tanh_grad),
}


def _spacing(values, dtype):
    """Spacing of the half type at each |value| (to the next larger magnitude)."""
    bits = values.astype(dtype).view(np.uint16) & np.uint16(0x7FFF)
    top = np.uint16(0x7BFF if dtype == np.float16 else 0x7F7F)
    up = np.minimum(bits + np.uint16(1), top)
    return up.view(dtype).astype(np.float64) - (up - np.uint16(1)).view(dtype).astype(np.float64)


def measure(call, reference, dtype):
    x = np.arange(1 << 16, dtype=np.uint16).view(dtype)
    x = x[np.isfinite(x.astype(np.float32))]
    got = call(x)
    with np.errstate(all="ignore"):
        rounded32 = call(x.astype(np.float32)).astype(dtype)
        x64 = x.astype(np.float64)
        ref = reference(x64)
        if reference in (_gelu, _gelu_grad, _gelu_tanh, _gelu_tanh_grad):
            huge = np.abs(x64) > 1e4          # where x**2 overflows the references
            grad = reference in (_gelu_grad, _gelu_tanh_grad)
            ref[huge] = np.where(x64[huge] > 0, 1.0 if grad else x64[huge], 0.0)
        ref_rounded = ref.astype(dtype)
    both_nan = np.isnan(got.astype(np.float32)) & np.isnan(rounded32.astype(np.float32))
    differ = int(np.count_nonzero((got.view(np.uint16) != rounded32.view(np.uint16)) & ~both_nan))
    g64 = got.astype(np.float64)
    finite = np.isfinite(ref_rounded.astype(np.float64))
    ulps = np.abs(g64 - ref)[finite] / _spacing(ref[finite], dtype)
    # by value: +0 and -0 count as equal (the underflowing GELU tail)
    correct = np.mean(g64 == ref_rounded.astype(np.float64))
    return differ, float(ulps.max()), float(correct)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args()
    levels = [lv for i, lv in enumerate(_kernels.LEVEL_NAMES)
              if lv in _kernels.compiled_simd_levels()
              and i <= _kernels.LEVEL_NAMES.index(_kernels.detected_simd_level())]
    print("| function | dtype | level | differ from rounded float32 | max error (half ulp) "
          "| correctly rounded |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, (call, reference) in FUNCTIONS.items():
        for dtype in (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16)):
            for level in levels:
                previous = _kernels.set_simd_level(level)
                try:
                    differ, worst, correct = measure(call, reference, dtype)
                finally:
                    _kernels.set_simd_level(previous)
                print(f"| {name} | {dtype.name} | {level} | {differ} | {worst:.4f} "
                      f"| {100 * correct:.3f} % |")


if __name__ == "__main__":
    main()
