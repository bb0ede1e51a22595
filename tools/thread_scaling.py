"""Time fastact's kernels at every thread count its grain allows, per size.

Used to choose the per-op grain (the fewest elements a thread must get before
another thread is woken): with grain G a call on n elements uses at most
n // G threads, so for each size this script times every allowed thread
count T (interleaved, medians) and prints ns/element and the speed-up over
one thread.  A grain is too small where the largest allowed T is slower than
T/2 on the same size, and too large where a size one step below the grain's
threshold would still have gained from a second thread.

Usage: python tools/thread_scaling.py [--threads 1,2,4,8,16] [--json PATH]
"""

import argparse
import json
import os

import numpy as np

import fastact as fa
from fastact import _kernels
from fastact.bench import machine_description, median_seconds

SIZES = [1 << k for k in range(12, 25)]


def _cases(n, dtype, rng):
    x = rng.standard_normal(n).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    out = np.empty_like(x)
    x2 = x.reshape(-1, 256)
    w = rng.uniform(0.05, 0.5, 256).astype(dtype)
    out2 = out.reshape(-1, 256)
    return {
        "relu forward": (lambda: fa.relu(x, out=out), "cheap"),
        "relu backward": (lambda: fa.relu_backward(g, x, out=out), "cheap"),
        "prelu forward": (lambda: fa.prelu(x2, w, out=out2), "cheap"),
        "gelu forward": (lambda: fa.gelu(x, out=out), f"gelu_{dtype}"),
        "gelu backward": (lambda: fa.gelu_backward(g, x, out=out), f"gelu_{dtype}"),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2,4,8,16")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--json")
    args = parser.parse_args()
    wanted = [int(t) for t in args.threads.split(",")]
    grains = _kernels.grains()
    rng = np.random.default_rng(0)
    rows = []
    print(json.dumps(machine_description()))
    print(f"grains: {grains}")
    for dtype in args.dtypes.split(","):
        for n in SIZES:
            for name, (call, kind) in _cases(n, np.dtype(dtype), rng).items():
                allowed = [t for t in wanted if t == 1 or n // grains[kind] >= t]
                allowed = [t for t in allowed if t <= (os.cpu_count() or 1)]

                def at(threads, call=call):
                    def run():
                        fa.set_num_threads(threads)
                        call()
                    return run

                times = median_seconds({t: at(t) for t in allowed}, min_time=0.01, repeats=5)
                row = {"op": name, "dtype": dtype, "n": n,
                       "ns_per_element": {t: times[t] / n * 1e9 for t in allowed}}
                rows.append(row)
                cells = "  ".join(f"T={t}: {times[t] / n * 1e9:7.3f} ({times[1] / times[t]:4.1f}x)"
                                  for t in allowed)
                print(f"{name:14s} {dtype:7s} 2^{n.bit_length() - 1:<2d}  {cells}", flush=True)
    fa.set_num_threads(os.cpu_count() or 1)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": machine_description(), "grains": grains, "rows": rows},
                      handle, indent=1)


if __name__ == "__main__":
    main()
