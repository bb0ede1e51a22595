#!/usr/bin/env python3
"""Reproduce the near-range tables of fastact/_gelu_sse2.h (float32 exact
GELU at the baseline level: SSE2, no FMA, no permutes).

Near range a = |x| < NEAR_MAX = 5.9375: PIECES = 48 pieces of width 1/8
centred on k/8, k = round(8a) (read from the low mantissa bits of
a + 1.5*2^20), t = a - k/8 (|t| <= 1/16, exact):
  gelu(x)  = max(x,0) - F(a),          F(a) = a*Phi(-a)
  gelu'(x) = x < 0 ? G(a) : 1 - G(a),  G(a) = Phi(-a) - a*phi(a)
F and G are degree-5 polynomials in t: each piece is a row of 8 floats
(6 coefficients, 2 zeros; 32 bytes) that SSE2, having no permutes, loads
per lane and transposes into coefficient vectors.  G's pieces are centred
on k/8 + (r - 6/8), r = 0.7518 the root of G, in its piece 6: G is a
polynomial in t' = (t - (r_hi - 6/8)) - r_lo for every lane (no mask to
find the root's piece), and G = t'*p(t') in the root's piece, so gelu'
keeps its relative accuracy through the root.  fa_gs_ng holds G in rows
0..63 and 1 - G in rows 64..127 (1 past the near range): the sign of x
picks the half, and gelu' = x < 0 ? G : 1 - G needs no select.  Rows 48..63 are zero: k is
masked to 6 bits, so the lanes outside the near range (whose results are
replaced) read inside the table.

Why these sizes: the loop is bound by its instruction count, and degree 5
needs half the shuffles of degree 7 (one 4x4 transpose and two shufps).
Evaluated in float32 without FMA (each step rounds twice), width 1/8 and
degree 5 give about 2.1 ulp forward and 2.5 backward up to a = 5.9375; the
coefficients are plain float32 roundings of Chebyshev interpolants, and
beyond a ~ 6 their rounding (the Gaussian's decay makes the terms
alternate) pushes the forward error past 4 ulp (6 ulp at 56 pieces).

Saturation: gelu(x) = x in float32 for x >= SAT_F (F(a) below half an ulp
of a there), gelu'(x) = 1 for x >= SAT_G (|G(a)| < 2^-24); both are
rounded up to a multiple of 1/16.

Fits: tools/fit_gelu_f32.py's fit_near (Chebyshev interpolation in mpmath,
exact conversion to monomials, float32 rounding); its report gives each
piece's error with the rounded coefficients in exact arithmetic; the
evaluation rounding is measured by tools/gelu_accuracy.py --level baseline.

usage: python tools/fit_gelu_sse2_near.py          # prints the C block + report
       python tools/fit_gelu_sse2_near.py --check  # also verify the header has it
"""
import os
import sys

import mpmath as mp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fit_gelu_f32 import (F, G, cheb_mono, emit, f32, fit_near, fit_zero_const, flit,  # noqa: E402
                          hi_lo32, max_rel)  # (the shared fitting helpers)

mp.mp.dps = 40

DEG = 5
WIDTH = 8                                          # floats per row: 32 bytes
PIECES = 48
ROWS = 64                                          # k is masked to 6 bits
STEP = mp.mpf(1) / 8
NEAR_MAX = (PIECES - mp.mpf(1) / 2) * STEP        # a < 5.9375 keeps k <= 47


def sat_point(fn, bound):
    """the smallest multiple of 1/16 from which fn(a) < bound (fn decreasing there)"""
    a = mp.findroot(lambda v: fn(v) - bound, 5.5)
    return mp.ceil(a * 16) / 16


def main():
    r = -mp.findroot(lambda x: mp.ncdf(x) + x * mp.npdf(x), -0.75)   # root of G, 0.7518...
    rpiece = int(mp.nint(r / STEP))
    rhi, rlo = hi_lo32(r)
    dhi = f32(mp.mpf(rhi) - rpiece * STEP)
    assert mp.mpf(dhi) == mp.mpf(rhi) - rpiece * STEP                 # exact
    report = []
    NF = fit_near(F, G, r, (rpiece,), "", report, pieces=PIECES, step=STEP, deg=DEG)[0]
    # G: every piece centred on k/8 + (r - ROOTPIECE/8), t' = (t - dhi) - dlo
    # for every lane (no mask for the root's piece, where G = t'*p(t'))
    # and gelu'(x) = 1 - G(a) for x >= 0 in rows 64 + k (the sign of x picks
    # the half: no select per lane); rows 64 + 48.. hold 1 (saturated)
    NG, NG1 = [], []
    for k in range(PIECES):
        lo, hi = max(mp.mpf(0), k * STEP - STEP / 2), k * STEP + STEP / 2
        if k == rpiece:
            c = r
            gc = fit_zero_const(G, lo, hi, DEG, c)
        else:
            c = k * STEP + (mp.mpf(dhi) + mp.mpf(rlo))
            gc = cheb_mono(G, lo, hi, DEG, c)
        g1c = [f32(v) for v in cheb_mono(lambda v: 1 - G(v), lo, hi, DEG, c)]
        gc = [f32(v) for v in gc]
        report.append("near %d G (centre k/8 + %s) rel %.2e  1 - G rel %.2e"
                      % (k, mp.nstr(c - k * STEP, 6), max_rel(G, gc, lo, hi, c, 200),
                         max_rel(lambda v: 1 - G(v), g1c, lo, hi, c, 200)))
        NG.append(gc)
        NG1.append(g1c)
    # gelu(x) = x where F(x) < ulp(x)/2 = 2^-22 on [4, 8); gelu' = 1 where |G| < 2^-24
    sat_f = sat_point(F, mp.mpf(2) ** -22)
    sat_g = sat_point(lambda v: -G(v), mp.mpf(2) ** -24)
    assert 4 <= sat_f <= NEAR_MAX and sat_g <= NEAR_MAX      # the C code relies on it
    report.append("saturation: F(%s) = %.3g < 2^-22, |G(%s)| = %.3g < 2^-24"
                  % (mp.nstr(sat_f, 6), float(F(sat_f)), mp.nstr(sat_g, 6), float(-G(sat_g))))
    lines = ["#define FA_GS_NEAR_DEG %d" % DEG,
             "#define FA_GS_NEAR_WIDTH %d  /* floats per row */" % WIDTH,
             "#define FA_GS_NEAR_MAX %s  /* a below this: k = round(8a) <= %d */"
             % (flit(float(NEAR_MAX)), PIECES - 1),
             "#define FA_GS_NEAR_ROOTPIECE %d" % rpiece,
             "#define FA_GS_NEAR_DHI %s  /* r_hi - ROOTPIECE/8, exact: G's t' = (t - DHI) - DLO */" % flit(dhi),
             "#define FA_GS_NEAR_DLO %s  /* r_lo */" % flit(rlo),
             "#define FA_GS_SAT_F %s  /* gelu(x) = x for x >= this */" % flit(float(sat_f)),
             "#define FA_GS_SAT_G %s  /* gelu'(x) = 1 for x >= this */" % flit(float(sat_g))]
    def pad(table, fill):
        rows = [list(piece) + [0.0] * (WIDTH - DEG - 1) for piece in table]
        return rows + [[fill] + [0.0] * (WIDTH - 1)] * (ROWS - PIECES)

    for name, rows in (("fa_gs_nf", pad(NF, 0.0)), ("fa_gs_ng", pad(NG, 0.0) + pad(NG1, 1.0))):
        lines.append("static const float %s[%d][%d] FA_GS_ALIGN16 = {" % (name, len(rows), WIDTH))
        for piece in rows:
            lines.append("    {%s}," % ", ".join(flit(v) for v in piece))
        lines.append("};")
    emit("fit_gelu_sse2_near.py", "_gelu_sse2.h", lines, report)


if __name__ == "__main__":
    main()
