"""GELU then a sum over a lazily generated float32 dask array larger than memory.

Each run is one child process with dask's threaded scheduler: it builds
``x = da.random.default_rng(0).standard_normal(n, dtype=float32, chunks=...)``,
then ``gelu(x).sum()`` with

* ``fastact``: ``fastact.gelu(x)`` (lazy, block by block), or
* ``scipy``: ``x * 0.5 * (1 + scipy.special.erf(x / math.sqrt(2)))`` (SciPy's
  erf ufunc reaches dask through ``__array_ufunc__``; the Python float keeps
  the arithmetic in float32), or
* ``none``: ``x.sum()`` alone, the cost of generating the numbers,

and computes it.  fastact runs its kernels with one OpenMP thread, so the
dask workers are the only parallelism and the 1- and 2-worker runs compare
the threaded scheduler alone.  The child reports its wall time and its peak
resident memory (``getrusage``; with the threaded scheduler the child is the
whole process tree), and the cores it kept busy during the compute (its CPU
time over its wall time).

Usage::

    python tools/dask_gelu_benchmark.py --gib 64 --impl fastact,scipy --workers 2
    python tools/dask_gelu_benchmark.py --gib 4 --impl fastact --workers 1,2
"""

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time


def child(impl, gib, workers, chunk_mib):
    import dask
    import dask.array as da
    import numpy as np

    import fastact as fa

    fa.set_num_threads(1)
    n = int(gib * 2**30) // 4
    chunk = int(chunk_mib * 2**20) // 4
    x = da.random.default_rng(0).standard_normal(n, dtype=np.float32, chunks=chunk)
    if impl == "fastact":
        y = fa.gelu(x)
    elif impl == "scipy":
        import scipy.special

        y = x * 0.5 * (1 + scipy.special.erf(x / math.sqrt(2)))
    elif impl == "none":
        y = x
    else:
        raise SystemExit(f"unknown --impl {impl!r}")
    total = y.sum(dtype=np.float64)
    t0, cpu0 = time.perf_counter(), time.process_time()
    with dask.config.set(scheduler="threads", num_workers=workers):
        value = float(total.compute())
    seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - cpu0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_kib = usage.ru_maxrss
    print(json.dumps({
        "impl": impl, "gib": gib, "workers": workers, "chunk_mib": chunk_mib,
        "chunks": x.numblocks[0], "seconds": round(seconds, 2),
        "gib_per_s": round(gib / seconds, 3), "peak_rss_mib": round(peak_kib / 1024),
        # CPU seconds per wall second: how many cores the run kept busy (above
        # 1 only if the workers ran at the same time, the GIL released).
        "cores_busy": round(cpu_seconds / seconds, 2),
        "sum": value,
    }), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=64.0, help="array size in GiB (float32)")
    parser.add_argument("--impl", default="fastact,scipy", help="fastact, scipy, none (comma list)")
    parser.add_argument("--workers", default="2", help="threaded-scheduler workers (comma list)")
    parser.add_argument("--chunk-mib", type=float, default=64.0, help="chunk size in MiB")
    parser.add_argument("--json", help="append each result as a JSON line to this file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.impl, args.gib, int(args.workers), args.chunk_mib)
        return
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"uptime: {os.popen('uptime').read().strip()}", flush=True)
    for impl in args.impl.split(","):
        for workers in args.workers.split(","):
            load_before = os.getloadavg()[0]
            out = subprocess.run(
                [sys.executable, __file__, "--child", "--impl", impl, "--gib", str(args.gib),
                 "--workers", workers, "--chunk-mib", str(args.chunk_mib)],
                check=True, capture_output=True, text=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
            result["load_1min_before"] = round(load_before, 2)
            result["load_1min_after"] = round(os.getloadavg()[0], 2)
            line = json.dumps(result)
            print(line, flush=True)
            if args.json:
                with open(args.json, "a") as handle:
                    handle.write(line + "\n")


if __name__ == "__main__":
    main()
