#!/usr/bin/env python3
"""Constants of the AVX2 float32 exact-GELU far path (fastact/_gelu_x86.h).

At the avx2 level the exp-free near range ends at a = |x| = 3.75; past it
(up to the saturation points, FA_GX_SAT*), as in tools/fit_gelu_f32.py,
  gelu(x)  = max(x,0) - exp(-a^2/2) * P(a),   P(a) = a*Q(a)
  gelu'(x) = [x>=0] + sign * exp(-a^2/2) * D(a),  D(a) = Q(a) - a/sqrt(2*pi)
with Q(a) = Phi(-a)*exp(a^2/2).  Here P and D have 8 pieces on [3.75, 15),
picked by i = (bits(a) - bits(3.75)) >> 21 (a clamped below 15): the edges
3.75, 4.5, 5.5, 6.5, 7.5, 9, 11, 13, 15 are the float32 values whose bits
are bits(3.75) + k*2^21.  Eight pieces are one AVX2 register per
coefficient, so each coefficient costs one vpermps (the general far tables,
29 pieces from 1/8 up, need two vpermps and a blend).  Each piece is a
degree-DEG polynomial in t = a - c, c the piece's midpoint (exact in
float32, and so is t).

Fits: Chebyshev interpolation in mpmath, coefficients rounded to float32,
errors on a dense grid against mpmath (the helpers of fit_gelu_f32.py).

usage: python tools/fit_gelu_f32_avx2far.py          # prints the C block + report
       python tools/fit_gelu_f32_avx2far.py --check  # also verify the header has it
"""
import os
import struct
import sys

import mpmath as mp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fit_gelu_f32 as fg  # noqa: E402  (shared fitting helpers and P, D)

DEG = 5
FIRST = 3.75               # the AVX2 near range's end (FA_GX_A2_NEAR_MAX)
SHIFT = 21                 # pieces of 2^21 float32 bits: 4 per binade
NPIECE = 8


def bits(v):
    return struct.unpack("I", struct.pack("f", v))[0]


def from_bits(b):
    return struct.unpack("f", struct.pack("I", b))[0]


def main():
    assert FIRST == float(fg.A2_NEAR_MAX)
    edges = [mp.mpf(from_bits(bits(FIRST) + (k << SHIFT))) for k in range(NPIECE + 1)]
    assert edges[-1] == 15
    report, centers, Pc, Dc = [], [], [], []
    for i in range(NPIECE):
        lo, hi = edges[i], edges[i + 1]
        c = fg.f32((lo + hi) / 2)
        pc = [fg.f32(v) for v in fg.cheb_mono(fg.P, lo, hi, DEG, mp.mpf(c))]
        dc = [fg.f32(v) for v in fg.cheb_mono(fg.D, lo, hi, DEG, mp.mpf(c))]
        report.append("avx2 far piece %d [%s, %s) c=%r  P rel %.2e  D rel %.2e"
                      % (i, mp.nstr(lo, 4), mp.nstr(hi, 4), c,
                         fg.max_rel(fg.P, pc, lo, hi, mp.mpf(c)),
                         fg.max_rel(fg.D, dc, lo, hi, mp.mpf(c))))
        centers.append(c)
        Pc.append(pc)
        Dc.append(dc)

    def arr(name, vals):
        return "static const float %s[%d] FA_GX_ALIGN = {%s};" % (
            name, NPIECE, ", ".join(fg.flit(v) for v in vals))

    lines = ["#define FA_GX_A2F_DEG %d" % DEG,
             "#define FA_GX_A2F_BASE 0x%08x  /* bits(%s): piece = (bits(a) - BASE) >> SHIFT */"
             % (bits(FIRST), FIRST),
             "#define FA_GX_A2F_SHIFT %d" % SHIFT]
    lines.append(arr("fa_gx_a2f_c", centers))
    for k in range(DEG + 1):
        lines.append(arr("fa_gx_a2f_p%d" % k, [pc[k] for pc in Pc]))
    for k in range(DEG + 1):
        lines.append(arr("fa_gx_a2f_d%d" % k, [dc[k] for dc in Dc]))
    fg.emit("fit_gelu_f32_avx2far.py", "_gelu_x86.h", lines, report)


if __name__ == "__main__":
    main()
