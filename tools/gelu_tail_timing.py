#!/usr/bin/env python3
"""Time float32 exact GELU (forward and backward) on inputs far out in the tails.

`fastact bench --scale/--dist` covers normal and heavy-tailed inputs; this
covers what they rarely reach: x uniform in [lo, hi], for example where
gelu's float32 result is subnormal ([-14.375, -12.9]) or where every element
needs the exp-based path ([-14.375, -3.75]).  1 thread, out= on both sides,
best of many repetitions (a shared machine's noise only ever adds).

  FASTACT_SIMD=avx2 ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 \\
      python tools/gelu_tail_timing.py [--n 65536] [--range -14.375,-12.9 ...]

Prints ns/element for fastact and, when it is installed, PyTorch.
"""
import argparse
import time

import numpy as np

import fastact as fa
from fastact import _kernels


def best_ns_per_element(f, n, repeats=30, inner=5):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            f()
        best = min(best, (time.perf_counter() - t0) / inner)
    return best / n * 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1 << 16, help="elements (default 65536)")
    ap.add_argument("--range", action="append", dest="ranges", metavar="LO,HI",
                    help="x uniform in [LO, HI] (repeatable; default: the subnormal-result "
                         "window, x < -13, and the whole negative exp-path range)")
    args = ap.parse_args()
    ranges = [tuple(float(v) for v in r.split(",")) for r in args.ranges or
              ["-14.375,-12.9", "-20,-13", "-14.375,-3.75"]]
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        torch = None
    fa.set_num_threads(1)
    rng = np.random.default_rng(0)
    print(f"fastact SIMD level {_kernels.simd_level()}")
    for lo, hi in ranges:
        x = rng.uniform(lo, hi, args.n).astype(np.float32)
        out, g = np.empty_like(x), np.ones_like(x)
        line = (f"x in [{lo:g}, {hi:g}]: fastact forward "
                f"{best_ns_per_element(lambda: fa.gelu(x, out=out), args.n):.3f} backward "
                f"{best_ns_per_element(lambda: fa.gelu_backward(g, x, out=out), args.n):.3f}")
        if torch is not None:
            tx, tg = torch.from_numpy(x), torch.from_numpy(g)
            tout = torch.empty_like(tx)
            fwd = best_ns_per_element(lambda: torch._C._nn.gelu(tx, out=tout), args.n)
            bwd = best_ns_per_element(
                lambda: torch.ops.aten.gelu_backward.grad_input(tg, tx, grad_input=tout), args.n)
            line += f" | torch forward {fwd:.3f} backward {bwd:.3f}"
        print(line + " ns/element")


if __name__ == "__main__":
    main()
