#!/usr/bin/env python3
"""Max-error measurement for the 8 GELU kernels of fastact.

  python tools/gelu_accuracy.py --impl header [--cflags "-mavx2 -mfma"] [--quick]
  python tools/gelu_accuracy.py --impl fastact [--level baseline|avx2|avx512]
      (without --level: FASTACT_SIMD if set, else the best level of this CPU)
  python tools/gelu_accuracy.py --impl scipy     (the textbook formulas in the
      input's dtype with NumPy and scipy.special, as a user would write them)
  python tools/gelu_accuracy.py --impl torch [--level default|avx2|avx512]
      (PyTorch's CPU kernels; --level sets ATEN_CPU_CAPABILITY)
  options: --dtype f32|f64|both  --stride N (f32 sweep: every N-th float)
           --n64 N (random float64 points)  --json PATH  --bench

float32: every float32 in [-20, 20] (stride 1 = all ~2.2e9 values, processed
  in chunks) plus special/extreme inputs outside that range.  Reference: float64
  formulas (scipy.special.ndtr / np.exp).  Their relative error is at most a few
  units of 2^-53 times the condition number of the function; away from the roots
  of the derivatives the condition number is below ~1e3 on [-20,20] (the
  erfc(-x/sqrt2) argument rounding is amplified x^2 <= 400 times), i.e. <1e-12
  relative, far below 1 float32 ulp (>= 6e-8).  Within 1e-3 of the derivative
  roots (where the formula cancels) the reference is recomputed with mpmath.
  Reported error: |out - ref| / ulp32(ref), ulp32 = 2^(exponent-23), min 2^-149.
float64: mpmath (dps 50) on a random log-spaced sample of |x| in [1e-300, 40],
  both signs, plus points near the derivative roots (ulp steps and log-spaced
  offsets), the underflow edges and special values.  Reported: max relative
  error where |ref| >= 2^-1022, and max absolute error in units of 2^-1074
  where the reference is subnormal.
"""
import argparse, ctypes, json, os, subprocess, sys, tempfile, time
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FUNCS = ["gelu", "gelu_grad", "gelu_tanh", "gelu_tanh_grad"]
C1 = 2 * np.sqrt(2 / np.pi)
C3 = C1 * 0.044715

# ---------------------------------------------------------------- implementations
LOOP_C = r"""
#include "_simd.h"
#define LOOP(name, T) \
void loop_##name(const T *x, T *y, long n) { long i; for (i = 0; i < n; i++) y[i] = fa_##name(x[i]); }
LOOP(gelu_f64, double) LOOP(gelu_grad_f64, double) LOOP(gelu_tanh_f64, double) LOOP(gelu_tanh_grad_f64, double)
LOOP(gelu_f32, float) LOOP(gelu_grad_f32, float) LOOP(gelu_tanh_f32, float) LOOP(gelu_tanh_grad_f32, float)
"""


class HeaderImpl:
    def __init__(self, cflags="", cc=None):
        cc = cc or os.environ.get("CC", "cc")
        self.tmp = tempfile.mkdtemp(prefix="fa_gelu_")
        src = os.path.join(self.tmp, "loops.c")
        lib = os.path.join(self.tmp, "loops.so")
        with open(src, "w") as f:
            f.write(LOOP_C)
        cmd = [cc, "-O3", "-fno-trapping-math", "-shared", "-fPIC",
               "-I", os.path.join(ROOT, "fastact")] + cflags.split() + [src, "-o", lib, "-lm"]
        subprocess.check_call(cmd)
        self.cmd = " ".join(cmd)
        self.lib = ctypes.CDLL(lib)

    def __call__(self, name, x):
        x = np.ascontiguousarray(x)
        y = np.empty_like(x)
        tag = "f64" if x.dtype == np.float64 else "f32"
        getattr(self.lib, "loop_%s_%s" % (name, tag))(
            x.ctypes.data_as(ctypes.c_void_p), y.ctypes.data_as(ctypes.c_void_p),
            ctypes.c_long(x.size))
        return y


class FastactImpl:
    def __init__(self, level=None):
        sys.path.insert(0, ROOT)
        import fastact
        from fastact import _kernels
        self.fa = fastact
        if level:                       # else: FASTACT_SIMD or the best level for this CPU
            _kernels.set_simd_level(level)
        self.level = _kernels.simd_level() if hasattr(_kernels, "simd_level") else (level or "?")
        self.cmd = "fastact %s, SIMD level %s" % (getattr(fastact, "__version__", "?"), self.level)

    def __call__(self, name, x):
        appr = "tanh" if "tanh" in name else "none"
        if name.endswith("grad"):
            return np.asarray(self.fa.gelu_backward(np.ones_like(x), x, approximate=appr))
        return np.asarray(self.fa.gelu(x, approximate=appr))


class ScipyImpl:
    """The formulas as written with NumPy/SciPy, evaluated in the input's dtype."""

    def __init__(self):
        import scipy
        from scipy.special import erf
        self.erf = erf
        self.cmd = "NumPy %s / SciPy %s formulas in the input's dtype" % (np.__version__, scipy.__version__)

    def __call__(self, name, x):
        t = x.dtype.type
        c = t(np.sqrt(2 / np.pi))
        with np.errstate(all="ignore"):
            if name == "gelu":
                return t(0.5) * x * (t(1) + self.erf(x / t(np.sqrt(2))))
            if name == "gelu_grad":
                cdf = t(0.5) * (t(1) + self.erf(x / t(np.sqrt(2))))
                return cdf + x * np.exp(t(-0.5) * x * x) / t(np.sqrt(2 * np.pi))
            th = np.tanh(c * (x + t(0.044715) * x * x * x))
            if name == "gelu_tanh":
                return t(0.5) * x * (t(1) + th)
            return (t(0.5) * (t(1) + th)
                    + t(0.5) * x * (t(1) - th * th) * c * (t(1) + t(3 * 0.044715) * x * x))


class TorchImpl:
    """PyTorch's CPU kernels: torch.nn.functional.gelu and aten.gelu_backward."""

    def __init__(self, level=None):
        onednn = {"default": "SSE41", "avx2": "AVX2"}.get(level)
        if level:                       # read when torch is first imported
            os.environ["ATEN_CPU_CAPABILITY"] = level
        if onednn:                      # exact GELU on float32 runs oneDNN's own JIT
            os.environ["ONEDNN_MAX_CPU_ISA"] = onednn
        import torch
        self.torch = torch
        torch.set_num_threads(1)
        cap = torch.backends.cpu.get_cpu_capability()
        self.cmd = "PyTorch %s, ATEN_CPU_CAPABILITY %s, ONEDNN_MAX_CPU_ISA %s" % (
            torch.__version__, cap, os.environ.get("ONEDNN_MAX_CPU_ISA", "unset"))

    def __call__(self, name, x):
        torch = self.torch
        appr = "tanh" if "tanh" in name else "none"
        tx = torch.from_numpy(np.ascontiguousarray(x))
        if name.endswith("grad"):
            y = torch.ops.aten.gelu_backward(torch.ones_like(tx), tx, approximate=appr)
        else:
            y = torch.nn.functional.gelu(tx, approximate=appr)
        return y.numpy()


# ---------------------------------------------------------------- references
def ref64_float(name, x):
    """float64 reference for the float32 sweep (see module doc)."""
    from scipy.special import ndtr
    if name == "gelu":
        return x * ndtr(x)
    if name == "gelu_grad":
        return ndtr(x) + x * np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)
    w = C1 * x + C3 * x ** 3
    with np.errstate(over="ignore"):
        if name == "gelu_tanh":
            return np.where(x < 0, x * np.exp(w) / (1 + np.exp(w)), x / (1 + np.exp(-w)))
        e = np.exp(-np.abs(w))
        sig = np.where(x < 0, e / (1 + e), 1 / (1 + e))
        return sig + x * sig * (1 - sig) * (C1 + 3 * C3 * x * x)


_mp = None


def mp_ref(name, xs, dps=50):
    global _mp
    import mpmath as mp
    mp.mp.dps = dps
    c1 = 2 * mp.sqrt(2 / mp.pi)
    c3 = c1 * mp.mpf("0.044715")
    out = []
    for xv in xs:
        xv = float(xv)
        if np.isnan(xv):
            out.append(np.nan); continue
        if np.isinf(xv) or abs(xv) > 100:   # true values round to x/0/1 here
            out.append({"gelu": xv if xv > 0 else 0.0, "gelu_tanh": xv if xv > 0 else 0.0}.get(
                name, 1.0 if xv > 0 else 0.0)); continue
        x = mp.mpf(xv)
        if name == "gelu":
            r = x * mp.ncdf(x)
        elif name == "gelu_grad":
            r = mp.ncdf(x) + x * mp.npdf(x)
        else:
            w = c1 * x + c3 * x ** 3
            s = 1 / (1 + mp.exp(-w))
            r = x * s if name == "gelu_tanh" else s + x * s * (1 - s) * (c1 + 3 * c3 * x * x)
        out.append(r)
    return out


ROOTS = {"gelu_grad": -0.7517915246935645, "gelu_tanh_grad": -0.7524614220710163}


# The maximum over all inputs is dominated by whichever region an
# implementation handles worst; these regions show where that is: the
# negative tail (where the textbook formulas cancel), the negative body
# (which holds the derivatives' roots) and x >= 0 (nothing cancels there).
REGIONS = (("x<-3", -np.inf, -3.0), ("-3<=x<0", -3.0, 0.0), ("x>=0", 0.0, np.inf))


def region_of(x):
    for label, lo, hi in REGIONS:
        if lo <= x < hi or (hi == np.inf and x == np.inf):
            return label
    return REGIONS[0][0]          # -inf


# ---------------------------------------------------------------- float32
def ulp32(ref):
    a = np.abs(ref)
    _, e = np.frexp(a)
    return np.ldexp(1.0, np.maximum(e - 24, -149))


def f32_chunks(stride, quick):
    """yield float32 arrays covering [-20, 20]."""
    hi = int(np.array(20.0, np.float32).view(np.uint32))
    if quick:
        rng = np.random.default_rng(1)
        b = rng.integers(0, hi + 1, 2_000_000, dtype=np.uint64).astype(np.uint32)
        v = b.view(np.float32)
        yield np.concatenate([v, -v])
        return
    step = 1 << 24
    for start in range(0, hi + 1, step):
        b = np.arange(start, min(start + step, hi + 1), stride, dtype=np.uint32)
        v = b.view(np.float32)
        yield v
        yield -v


def f32_extra():
    v = [np.inf, -np.inf, np.nan, 3.4028235e38, -3.4028235e38, 1e30, -1e30, 25.0, -25.0,
         100.0, -100.0, 1e-45, -1e-45, 1.1754944e-38, -1.1754944e-38]
    for r in ROOTS.values():               # every float within 2^-12 of the roots
        c = np.float32(r).view(np.uint32).astype(np.int64)
        v += list(np.arange(c - 40000, c + 40000).astype(np.uint32).view(np.float32))
    return np.array(v, np.float32)


def run_f32(impl, args, results):
    for name in FUNCS:
        t0 = time.time()
        worst, wx, nval = -1.0, None, 0
        regions = {label: [0.0, None] for label, _, _ in REGIONS}
        nanbad = []
        chunks = list([f32_extra()])
        def gen():
            yield f32_extra()
            yield from f32_chunks(args.stride, args.quick)
        for xf in gen():
            y = impl(name, xf).astype(np.float64)
            x = xf.astype(np.float64)
            fin = np.isfinite(x)
            ref = np.empty_like(x)
            with np.errstate(all="ignore"):
                ref[fin] = ref64_float(name, x[fin])
            nf = ~fin
            if nf.any():
                ref[nf] = np.array(mp_ref(name, x[nf]), dtype=float)
            if name in ROOTS:
                near = fin & (np.abs(x - ROOTS[name]) < 1e-3)
                if near.any():
                    ref[near] = np.array([float(r) for r in mp_ref(name, x[near])])
            nan_ref = np.isnan(ref)
            bad = nan_ref != np.isnan(y)
            if bad.any():
                nanbad += list(x[bad][:5])
            ok = ~nan_ref & ~np.isnan(y)
            # reference rounded to float32 semantics: overflow to inf
            r32 = ref[ok].astype(np.float32).astype(np.float64)
            yy = y[ok]
            with np.errstate(all="ignore"):
                err = np.where(np.isinf(r32) | np.isinf(yy), np.where(r32 == yy, 0.0, np.inf),
                               np.abs(yy - ref[ok]) / ulp32(ref[ok]))
            nval += x.size
            i = int(np.argmax(err))
            if err[i] > worst:
                worst, wx = float(err[i]), float(x[ok][i])
            xo = x[ok]
            for label, lo, hi in REGIONS:
                m = (xo >= lo) & ((xo < hi) | (hi == np.inf))
                if m.any():
                    j = int(np.argmax(np.where(m, err, -1.0)))
                    if err[j] > regions[label][0]:
                        regions[label] = [float(err[j]), float(xo[j])]
        key = (name, "float32")
        results[key] = {"max_ulp": worst, "at_x": wx, "n": nval, "nan_mismatch": [float(v) for v in nanbad],
                        "regions_max_ulp": regions,
                        "seconds": round(time.time() - t0, 1)}
        print("  %-15s float32  max %.3f ulp at x=%r  (%d values, %.0fs)%s" % (
            name, worst, wx, nval, time.time() - t0, "  NaN MISMATCH %s" % nanbad if nanbad else ""),
            flush=True)


# ---------------------------------------------------------------- float64
def f64_points(n, seed=2):
    rng = np.random.default_rng(seed)
    mag = 10.0 ** rng.uniform(-300, np.log10(40.0), n // 2)
    pts = [mag, -mag]
    lin = rng.uniform(-40, 40, n // 4)
    pts.append(lin)
    for r in ROOTS.values():
        c = np.float64(r).view(np.int64)
        pts.append(np.arange(c - 2000, c + 2000).view(np.float64))
        off = 10.0 ** np.linspace(-17, -0.5, 2000)
        pts += [r + off, r - off]
    # underflow edges / tails
    pts.append(np.linspace(-39.5, -37.0, 4000))
    pts.append(np.linspace(-23.0, -20.5, 4000))
    pts.append(np.linspace(-8, 8, 4001))
    pts.append(np.array([0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, -2.2250738585072014e-308,
                         1.7976931348623157e308, -1.7976931348623157e308, np.inf, -np.inf, np.nan,
                         40.0, -40.0, 25.0, -25.0, 1e-10, -1e-10]))
    return np.concatenate(pts)


def run_f64(impl, args, results):
    x = f64_points(args.n64)
    import mpmath as mp
    for name in FUNCS:
        t0 = time.time()
        y = impl(name, x)
        refs = mp_ref(name, x)
        worst_rel, wx_rel, worst_sub, wx_sub, nanbad = 0.0, None, 0.0, None, []
        regions = {label: [0.0, None] for label, _, _ in REGIONS}
        tiny = mp.mpf(2) ** -1022
        for xi, yi, ri in zip(x, y, refs):
            if isinstance(ri, float) and np.isnan(ri):
                if not np.isnan(yi):
                    nanbad.append(float(xi))
                continue
            if np.isnan(yi):
                nanbad.append(float(xi)); continue
            if np.isinf(yi) or (isinstance(ri, float) and np.isinf(ri)):
                if float(ri) != yi:
                    worst_rel, wx_rel = float("inf"), float(xi)
                    regions[region_of(float(xi))] = [float("inf"), float(xi)]
                continue
            ri = mp.mpf(ri)
            if abs(ri) >= tiny:
                e = float(abs((mp.mpf(float(yi)) - ri) / ri))
                region = regions[region_of(float(xi))]
                if e > region[0]:
                    region[:] = [e, float(xi)]
                if e > worst_rel:
                    worst_rel, wx_rel = e, float(xi)
            else:
                e = float(abs(mp.mpf(float(yi)) - ri) * mp.mpf(2) ** 1074)
                if e > worst_sub:
                    worst_sub, wx_sub = e, float(xi)
        results[(name, "float64")] = {"max_rel": worst_rel, "at_x": wx_rel, "regions_max_rel": regions,
                                      "max_subnormal_abs_units": worst_sub, "sub_at_x": wx_sub,
                                      "n": int(x.size), "nan_mismatch": nanbad[:10],
                                      "seconds": round(time.time() - t0, 1)}
        print("  %-15s float64  max rel %.3e at x=%r ; subnormal max %.2f units at x=%r (%d pts, %.0fs)%s" % (
            name, worst_rel, wx_rel, worst_sub, wx_sub, x.size, time.time() - t0,
            "  NaN MISMATCH %s" % nanbad[:5] if nanbad else ""), flush=True)


def bench(impl, results, n=1 << 20, reps=30):
    rng = np.random.default_rng(3)
    for dt in (np.float32, np.float64):
        x = rng.uniform(-6, 6, n).astype(dt)
        for name in FUNCS:
            impl(name, x)
            best = 1e9
            for _ in range(reps):
                t0 = time.perf_counter(); impl(name, x); best = min(best, time.perf_counter() - t0)
            ns = best / n * 1e9
            results[(name, np.dtype(dt).name, "ns_per_elem")] = ns
            print("  bench %-15s %-8s %.3f ns/elem" % (name, np.dtype(dt).name, ns), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--impl", choices=["header", "fastact", "scipy", "torch"], default="header")
    ap.add_argument("--level", choices=["baseline", "avx2", "avx512", "default"],
                    help="--impl fastact: the SIMD level to measure (fastact._kernels.set_simd_level); "
                         "--impl torch: ATEN_CPU_CAPABILITY (default, avx2, avx512)")
    ap.add_argument("--cflags", default="", help="extra compiler flags for --impl header, e.g. '-mavx2 -mfma'")
    ap.add_argument("--dtype", choices=["f32", "f64", "both"], default="both")
    ap.add_argument("--quick", action="store_true", help="f32: 4M random floats instead of the sweep; f64: 20k points")
    ap.add_argument("--stride", type=int, default=1, help="f32 sweep: test every N-th float (1 = all)")
    ap.add_argument("--n64", type=int, default=200_000)
    ap.add_argument("--bench", action="store_true", help="also time the loops (ns/elem, 1 thread)")
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.quick and args.n64 == 200_000:
        args.n64 = 20_000
    if args.impl == "header":
        impl = HeaderImpl(args.cflags)
    elif args.impl == "scipy":
        impl = ScipyImpl()
    elif args.impl == "torch":
        impl = TorchImpl(args.level)
    else:
        impl = FastactImpl(None if args.level == "default" else args.level)
    print("impl:", impl.cmd, flush=True)
    results = {}
    if args.dtype in ("f32", "both"):
        run_f32(impl, args, results)
    if args.dtype in ("f64", "both"):
        run_f64(impl, args, results)
    if args.bench:
        bench(impl, results)
    bars = {("float32", "gelu"): 4, ("float32", "other"): 8, ("float64", "gelu"): 1e-14, ("float64", "other"): 1e-13}
    print("\n%-16s %-8s %-14s %-26s %s" % ("function", "dtype", "max error", "at x", "bar"))
    allok = True
    for (k, v) in results.items():
        if len(k) != 2:
            continue
        name, dt = k
        bar = bars[(dt, "gelu" if name == "gelu" else "other")]
        if dt == "float32":
            e, s = v["max_ulp"], "%.3f ulp" % v["max_ulp"]
        else:
            e, s = v["max_rel"], "%.3e rel" % v["max_rel"]
        ok = e <= bar and not v["nan_mismatch"]
        allok &= ok
        print("%-16s %-8s %-14s %-26r %s %s" % (name, dt, s, v["at_x"], bar, "ok" if ok else "FAIL"))
        reg = v.get("regions_max_ulp") or v.get("regions_max_rel") or {}
        print("    " + "   ".join("%s: %.3g" % (label, r[0]) for label, r in reg.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"impl": impl.cmd, "args": vars(args),
                       "results": {"/".join(k): v for k, v in results.items()}}, f, indent=1)
    return 0 if allok else 1


if __name__ == "__main__":
    sys.exit(main())
