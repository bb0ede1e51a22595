#!/usr/bin/env python3
"""Reproduce the constants of fastact/_gelu_f64_x86.h (float64 GELU, AVX-512).

Near range a = |x| < NEAR_MAX = 3.875 (the tanh form likewise, with
Ft(a) = a/(1 + exp(w(a))) and Gt = Ft'): 16 pieces of width 1/4 centred on
k/4, k = round(4a), t = a - k/4 (|t| <= 1/8, exact):
  gelu(x)  = max(x,0) - F(a),          F(a) = a*Phi(-a)
  gelu'(x) = x < 0 ? G(a) : 1 - G(a),  G(a) = Phi(-a) - a*phi(a)
F and G are degree-DEG polynomials in t.  In the piece holding the root r
of G, t becomes (t - (r_hi - k/4)) - r_lo and G = t*p(t).  Over a piece the
Gaussian factor changes by at most exp(-a/8) <= exp(-1/2); degree 11
follows it to a few units of 2^-53.  16 pieces = one vpermt2pd per
coefficient.

Fits: Chebyshev interpolation in mpmath (dps 50), converted exactly to the
monomial basis, rounded to float64; errors measured on a grid in mpmath
with the rounded coefficients in exact arithmetic (the evaluation rounding
is measured by tools/gelu_accuracy.py and the tests).

usage: python tools/fit_gelu_near64.py          # prints the C block + report
       python tools/fit_gelu_near64.py --check  # also verify the header has it
"""
import os
import sys

import mpmath as mp

mp.mp.dps = 50

DEG = 11
PIECES = 16
STEP = mp.mpf(1) / 4
NEAR_MAX = (PIECES - mp.mpf(1) / 2) * STEP        # a < 3.875 keeps k <= 15
RS2PI = 1 / mp.sqrt(2 * mp.pi)


def F(a):
    return a * mp.erfc(a / mp.sqrt(2)) / 2


def G(a):
    return mp.erfc(a / mp.sqrt(2)) / 2 - a * RS2PI * mp.exp(-a * a / 2)


C1 = 2 * mp.sqrt(2 / mp.pi)
C3 = C1 * mp.mpf("0.044715")


def Ft(a):
    """tanh form: gelu_t(x) = max(x,0) - Ft(|x|)"""
    return a / (1 + mp.exp(C1 * a + C3 * a ** 3))


def Gt(a):
    """Ft'(a): gelu_t'(x) = Gt(|x|) for x < 0, 1 - Gt(|x|) for x >= 0"""
    E = mp.exp(C1 * a + C3 * a ** 3)
    return 1 / (1 + E) - a * E * (C1 + 3 * C3 * a * a) / (1 + E) ** 2


def cheb_mono(f, lo, hi, deg, center):
    """Chebyshev interpolant of f on [lo, hi] as monomial coefficients in t = x - center."""
    n = deg + 1
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    nodes = [mp.cos(mp.pi * (k + mp.mpf(1) / 2) / n) for k in range(n)]
    vals = [f(mid + half * u) for u in nodes]
    c = [2 * mp.fsum(vals[k] * mp.cos(mp.pi * j * (k + mp.mpf(1) / 2) / n) for k in range(n)) / n
         for j in range(n)]
    c[0] /= 2
    T = [[mp.mpf(1)], [mp.mpf(0), mp.mpf(1)]]
    for j in range(2, n):
        t = [mp.mpf(0)] + [2 * v for v in T[j - 1]]
        for i, v in enumerate(T[j - 2]):
            t[i] -= v
        T.append(t)
    mono_u = [mp.mpf(0)] * n
    for j in range(n):
        for i, v in enumerate(T[j]):
            mono_u[i] += c[j] * v
    alpha, beta = 1 / half, (center - mid) / half
    out = [mp.mpf(0)] * n
    for k, ck in enumerate(mono_u):
        for j in range(k + 1):
            out[j] += ck * mp.binomial(k, j) * alpha ** j * beta ** (k - j)
    return out


def fit_zero_const(fn, lo, hi, deg, center):
    """fn(center + t) = t * p(t): fit p (degree deg-1), return [0, p...]."""
    def quotient(x):
        t = x - center
        if abs(t) < mp.mpf(10) ** -40:
            return mp.diff(fn, center)
        return fn(x) / t
    return [mp.mpf(0)] + cheb_mono(quotient, lo, hi, deg - 1, center)


def max_rel(fn, coefs, lo, hi, center, npts=300):
    worst = 0
    for k in range(npts + 1):
        x = lo + (hi - lo) * mp.mpf(k) / npts
        if abs(x - center) < mp.mpf(10) ** -30:
            continue
        p = mp.mpf(0)
        for cf in reversed(coefs):
            p = p * (x - center) + mp.mpf(cf)
        worst = max(worst, abs(p / fn(x) - 1))
    return float(worst)


def lit(v):
    return repr(float(v))


def fit_near(fn, gn, root, rpiece, label, report):
    """The near tables of fn (= max(x,0) - gelu) and gn (its derivative)."""
    NF, NG = [], []
    for k in range(PIECES):
        c = k * STEP
        lo, hi = max(mp.mpf(0), c - STEP / 2), c + STEP / 2
        fc = fit_zero_const(fn, lo, hi, DEG, c) if k == 0 else cheb_mono(fn, lo, hi, DEG, c)
        if k == rpiece:
            gc, gcenter = fit_zero_const(gn, lo, hi, DEG, root), root
        else:
            gc, gcenter = cheb_mono(gn, lo, hi, DEG, c), c
        fc = [float(v) for v in fc]
        gc = [float(v) for v in gc]
        report.append("%snear %2d [%s, %s)  F rel %.2e  G rel %.2e"
                      % (label, k, mp.nstr(lo, 5), mp.nstr(hi, 5), max_rel(fn, fc, lo, hi, c),
                         max_rel(gn, gc, lo, hi, gcenter)))
        NF.append(fc)
        NG.append(gc)
    return NF, NG


def hi_lo(v):
    hi = float(v)
    return hi, float(v - mp.mpf(hi))


def main():
    r = -mp.findroot(lambda x: mp.ncdf(x) + x * mp.npdf(x), -0.75)   # root of G, 0.7518...
    rt = mp.findroot(Gt, mp.mpf("0.75"))                                # root of Gt, 0.7525...
    rpiece = int(mp.nint(r / STEP))
    assert rpiece == int(mp.nint(rt / STEP))
    (rhi, rlo), (rthi, rtlo) = hi_lo(r), hi_lo(rt)
    dhi, tdhi = rhi - rpiece * float(STEP), rthi - rpiece * float(STEP)   # exact
    assert mp.mpf(dhi) == mp.mpf(rhi) - rpiece * STEP
    assert mp.mpf(tdhi) == mp.mpf(rthi) - rpiece * STEP
    report = []
    NF, NG = fit_near(F, G, r, rpiece, "", report)
    NTF, NTG = fit_near(Ft, Gt, rt, rpiece, "tanh ", report)
    lines = ["#define FA_GD_DEG %d" % DEG,
             "#define FA_GD_NEAR_MAX %s  /* a below this: k = round(4a) <= 15 */" % lit(NEAR_MAX),
             "#define FA_GD_ROOTPIECE %d" % rpiece,
             "#define FA_GD_DHI %s  /* r_hi - ROOTPIECE/4, exact */" % lit(dhi),
             "#define FA_GD_DLO %s  /* r_lo */" % lit(rlo),
             "#define FA_GD_TDHI %s  /* rt_hi - ROOTPIECE/4, exact */" % lit(tdhi),
             "#define FA_GD_TDLO %s  /* rt_lo */" % lit(rtlo)]
    for name, table in (("fa_gd_f", NF), ("fa_gd_g", NG), ("fa_gd_tf", NTF), ("fa_gd_tg", NTG)):
        for j in range(DEG + 1):
            lines.append("static const double %s%d[16] FA_GD_ALIGN = {%s};"
                         % (name, j, ", ".join(lit(piece[j]) for piece in table)))
    block = ("/* BEGIN GENERATED by tools/fit_gelu_near64.py -- do not edit by hand */\n"
             + "\n".join(lines) + "\n/* END GENERATED */\n")
    print(block)
    print("/* fit report:\n" + "".join(" * %s\n" % line for line in report) + " */")
    if "--check" in sys.argv:
        header = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fastact",
                              "_gelu_f64_x86.h")
        ok = block in open(header).read()
        print("header contains generated block:", ok)
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
