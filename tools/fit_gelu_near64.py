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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fit_gelu_f32 import F, G, Ft, Gt, emit, fit_near  # noqa: E402  (shared with float32)

mp.mp.dps = 50

DEG = 11
PIECES = 16
STEP = mp.mpf(1) / 4
NEAR_MAX = (PIECES - mp.mpf(1) / 2) * STEP        # a < 3.875 keeps k <= 15


def lit(v):
    return repr(float(v))


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
    sizes = dict(pieces=PIECES, step=STEP, deg=DEG, rnd=float)
    NF, NG = fit_near(F, G, r, (rpiece,), "", report, **sizes)[:2]
    NTF, NTG = fit_near(Ft, Gt, rt, (rpiece,), "tanh ", report, **sizes)[:2]
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
    emit("fit_gelu_near64.py", "_gelu_f64_x86.h", lines, report)


if __name__ == "__main__":
    main()
