#!/usr/bin/env python3
"""Reproduce the AVX-512 far-range tables of fastact/_gelu_x86.h.

The exact-form float32 GELU at the avx512 level evaluates a < 3.9375 with
the exp-free near tables (tools/fit_gelu_f32.py).  The remaining elements
that are not saturated, 3.9375 <= a < 14.5625, take

  gelu(x)  = max(x,0) - exp(-a^2/2) * P(a),          P(a) = a*Q(a)
  gelu'(x) = [x>=0] + sign * exp(-a^2/2) * D(a),     D(a) = Q(a) - a/sqrt(2*pi)

(Q(a) = Phi(-a)*exp(a^2/2)) with P and D here: pieces of width 1/2 centred
on k/2, k = round(2a) in 8..29, degree FAR_DEG in t = a - k/2, |t| <= 1/4.
k sits in the low mantissa bits of a + 1.5*2^22 and t is one vreduceps, so
the piece costs two instructions (no exponent arithmetic, no centre table).
Nothing in this range is near a root of D, so no piece needs a low part.

usage: python tools/fit_gelu_far512.py          # prints the C block + report
       python tools/fit_gelu_far512.py --check  # also verify the header has it
"""
import os
import sys

import mpmath as mp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fit_gelu_f32 as base  # noqa: E402  (the shared fitting helpers)

FAR_DEG = 4            # degree 5 gains nothing: float32 rounding of c0 dominates
FAR_K = range(8, 30)   # round(2a) for 3.9375 <= a < 14.75


def main():
    report, lines = [], []
    Pc, Dc = {}, {}
    for k in FAR_K:
        c = mp.mpf(k) / 2
        lo, hi = c - mp.mpf(1) / 4, c + mp.mpf(1) / 4
        Pc[k] = [base.f32(v) for v in base.cheb_mono(base.P, lo, hi, FAR_DEG, c)]
        Dc[k] = [base.f32(v) for v in base.cheb_mono(base.D, lo, hi, FAR_DEG, c)]
        report.append("far512 k=%d [%s, %s) P rel %.2e  D rel %.2e"
                      % (k, mp.nstr(lo, 5), mp.nstr(hi, 5),
                         base.max_rel(base.P, Pc[k], lo, hi, c, 200),
                         base.max_rel(base.D, Dc[k], lo, hi, c, 200)))

    def arr(name, table, j):
        vals = [table[k][j] if k in table else 0.0 for k in range(32)]
        return "static const float %s[32] FA_GX_ALIGN = {%s};" % (
            name, ", ".join(base.flit(v) for v in vals))

    lines.append("#define FA_GX_FAR_DEG %d" % FAR_DEG)
    lines.append("#define FA_GX_FAR_MAGIC 6291456.0f  /* 1.5*2^22: round(2a) in the low bits of a + it */")
    for name, table in (("fp", Pc), ("fd", Dc)):
        for j in range(FAR_DEG + 1):
            lines.append(arr("fa_gx_%s%d" % (name, j), table, j))
    base.emit("fit_gelu_far512.py", "_gelu_x86.h", lines, report)


if __name__ == "__main__":
    main()
