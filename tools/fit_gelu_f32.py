#!/usr/bin/env python3
"""Reproduce every constant of fastact/_gelu_x86.h (the float32 SIMD GELU).

Exact form, a = |x|, Q(a) = Phi(-a) * exp(a^2/2) (entire, ~1/(a*sqrt(2*pi))):
  gelu(x)  = max(x,0) - exp(-a^2/2) * P(a),   P(a) = a*Q(a)
  gelu'(x) = [x>=0] + sign * exp(-a^2/2) * D(a),  D(a) = Q(a) - a/sqrt(2*pi)
P and D are piecewise polynomials of degree DEG in t = a - c[i] (D: t = (a -
c[i]) - clo[i]); the piece i is picked from the float32 bits of a:
  i = clamp((bits(a) >> 23) - 124, 0, 6):  [0,1/4) [1/4,1/2) [1/2,1) [1,2) ... [8,16)
(a is clamped to <= 15 before).  c[i] is the piece's midpoint (exact in
float32, so a - c[i] is exact by Sterbenz), except piece 0 (c = 0, P has no
constant term) and the piece [1/2,1) that holds the root r = 0.75179... of D:
there c = r_hi, clo = r_lo and D = t*p(t) has no constant term either.
exp: exp(h) = 2^n * (1 + e), e = r * q(r) on |r| <= ln2/2 (+ slack).
tanh form: near its derivative root rt, gelu_t'(rt + d) = d * p(d), |d| < W.

Near range, a < NEAR_MAX = 3.9375 (almost every element of unit-scale data):
no exp at all (the tanh form likewise, with Ft(a) = a/(1 + exp(w(a))) and
Gt = Ft', its root rt in the same piece).  AVX2: 8 pieces of width 1/2,
degree A2_DEG, the two pieces next to the roots centred on them (A2_* below).  32 pieces of width 1/8 centred on k/8, k = round(8a), and
t = a - k/8 (|t| <= 1/16, exact):
  gelu(x)  = max(x,0) - F(a),        F(a) = a*Phi(-a)
  gelu'(x) = x < 0 ? G(a) : 1 - G(a), G(a) = Phi(-a) - a*phi(a)
F and G are degree-DEG polynomials in t; in the piece holding the root r of
G, t is replaced by (t - (r_hi - 6/8)) - r_lo so G = t*p(t) keeps its relative
accuracy through the root.  The Gaussian decay over a piece is at most
exp(-a/16) <= exp(-1/4), which degree 5 follows to ~5e-8 relative.

Fits: Chebyshev interpolation in mpmath (dps 40), converted exactly to the
monomial basis, rounded to float32 (highest coefficient first, then the lower
ones refitted?  no: plain rounding), errors measured on a dense grid in mpmath
against the function, evaluated with float32-rounded coefficients in exact
arithmetic (the evaluation rounding is measured by tools/gelu_accuracy.py).

usage: python tools/fit_gelu_f32.py          # prints the C block + report
       python tools/fit_gelu_f32.py --check  # also verify the header has it
"""
import os
import sys
import struct
import mpmath as mp

mp.mp.dps = 40

DEG = int(os.environ.get("FA_FIT_DEG", "5"))        # piecewise P, D
DEG_EXP = 6                                           # e = r*q(r), q degree DEG_EXP-1
ROOTW_TANH = mp.mpf(1) / 32
DEG_ROOT_TANH = 5
EMIN = -3                  # piece 0 is [0, 2^EMIN)
PER_BINADE = 4             # pieces per binade above it: i = (bits(a) >> 21) - FA_GX_IBASE
EDGES = [mp.mpf(0)] + [mp.mpf(2) ** k * (1 + mp.mpf(j) / PER_BINADE)
                       for k in range(EMIN, 4) for j in range(PER_BINADE)] + [mp.mpf(16)]
NPIECE = len(EDGES) - 1    # 29 <= 32: two registers of 16, one vpermt2ps
NEAR_PIECES = 32           # k = round(8a) in 0..31: two registers, one vpermt2ps
NEAR_STEP = mp.mpf(1) / 8
NEAR_MAX = (NEAR_PIECES - mp.mpf(1) / 2) * NEAR_STEP   # a < 3.9375 keeps k <= 31
# AVX2 has no two-register permute: its near tables are 8 pieces of width 1/2
# (one vpermps per coefficient) of higher degree.  Both derivative roots lie
# just above the boundary 3/4 of pieces 1 and 2, so for G both pieces use
# t = (a - r_hi) - r_lo (exact up to r_lo: a - r_hi is a multiple of 2^-25
# below 1/2 in magnitude) and G = t*p(t).
A2_PIECES = 8
A2_STEP = mp.mpf(1) / 2
A2_DEG = 8
A2_NEAR_MAX = (A2_PIECES - mp.mpf(1) / 2) * A2_STEP         # a < 3.75 keeps k <= 7
A2_ROOT_PIECES = (1, 2)


def f32(v):
    return struct.unpack("f", struct.pack("f", float(v)))[0]


def cheb_mono(f, lo, hi, deg, center):
    """Chebyshev interpolant of f on [lo,hi], as monomial coefficients in t = x - center."""
    n = deg + 1
    lo, hi = mp.mpf(lo), mp.mpf(hi)
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    nodes = [mp.cos(mp.pi * (k + mp.mpf(1) / 2) / n) for k in range(n)]
    vals = [f(mid + half * u) for u in nodes]
    c = [2 * mp.fsum(vals[k] * mp.cos(mp.pi * j * (k + mp.mpf(1) / 2) / n) for k in range(n)) / n
         for j in range(n)]
    c[0] /= 2
    # Chebyshev T_j(u) -> monomials in u, u = (x - mid)/half = (t + center - mid)/half
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
    # u = alpha*t + beta
    alpha, beta = 1 / half, (mp.mpf(center) - mid) / half
    out = [mp.mpf(0)] * n
    for k, ck in enumerate(mono_u):          # ck*(alpha t + beta)^k
        for j in range(k + 1):
            out[j] += ck * mp.binomial(k, j) * alpha ** j * beta ** (k - j)
    return out


def horner(coefs, t):
    p = mp.mpf(0)
    for cf in reversed(coefs):
        p = p * t + cf
    return p


def Q(a):
    return mp.erfc(a / mp.sqrt(2)) / 2 * mp.exp(a * a / 2)


RS2PI = 1 / mp.sqrt(2 * mp.pi)


def P(a):
    return a * Q(a)


def D(a):
    return Q(a) - a * RS2PI


def F(a):
    return a * mp.erfc(a / mp.sqrt(2)) / 2


def G(a):
    return mp.erfc(a / mp.sqrt(2)) / 2 - a * RS2PI * mp.exp(-a * a / 2)


def dgelu(x):
    return mp.ncdf(x) + x * mp.npdf(x)


C1 = 2 * mp.sqrt(2 / mp.pi)
C3 = C1 * mp.mpf("0.044715")


def dgelu_tanh(x):
    w = C1 * x + C3 * x ** 3
    s = 1 / (1 + mp.exp(-w))
    return s + x * s * (1 - s) * (C1 + 3 * C3 * x * x)


def flit(v):
    """a C float literal that round-trips"""
    t = "%.9g" % v
    if "e" not in t and "." not in t and "n" not in t:
        t += ".0"
    return t + "f"


def hi_lo32(v):
    hi = f32(v)
    lo = f32(v - mp.mpf(hi))
    return hi, lo


def fit_zero_const(fn, lo, hi, deg, center):
    """fn(center + t) = t * p(t): fit p (degree deg-1), return [0, p...]."""
    def g(x):
        t = x - center
        if abs(t) < mp.mpf(10) ** -30:
            return mp.diff(fn, center)
        return fn(x) / t
    return [mp.mpf(0)] + cheb_mono(g, lo, hi, deg - 1, center)


def max_rel(fn, coefs, lo, hi, center, npts=600):
    worst = 0
    for k in range(npts + 1):
        x = lo + (hi - lo) * mp.mpf(k) / npts
        ex = fn(x)
        if abs(x - center) < mp.mpf(10) ** -20:
            continue
        worst = max(worst, abs(horner([mp.mpf(c) for c in coefs], x - center) / ex - 1))
    return float(worst)


def Ft(a):
    """tanh form: gelu_t(x) = max(x,0) - Ft(|x|)"""
    return a / (1 + mp.exp(C1 * a + C3 * a ** 3))


def Gt(a):
    """Ft'(a): gelu_t'(x) = Gt(|x|) for x < 0, 1 - Gt(|x|) for x >= 0"""
    E = mp.exp(C1 * a + C3 * a ** 3)
    return 1 / (1 + E) - a * E * (C1 + 3 * C3 * a * a) / (1 + E) ** 2


def fit_near(fn, gn, root, root_pieces, label, report, pieces=NEAR_PIECES, step=NEAR_STEP,
             deg=DEG, rnd=f32):
    """Near-range tables: pieces of width `step` centred on k*step, degree `deg`.

    fn is max(x,0) - gelu (no constant term in piece 0), gn its derivative;
    in `root_pieces` gn is fitted as t*p(t) about its root.  Coefficients
    are rounded with `rnd` (f32, or float for the float64 tables).  Returns
    (F coefficients, G coefficients, G centres, G centre low parts).
    """
    NF, NG, GC, GCLO = [], [], [], []
    for k in range(pieces):
        c = k * step
        lo, hi = max(mp.mpf(0), c - step / 2), c + step / 2
        fc = fit_zero_const(fn, lo, hi, deg, c) if k == 0 else cheb_mono(fn, lo, hi, deg, c)
        if k in root_pieces:
            gc, gcenter = fit_zero_const(gn, lo, hi, deg, root), root
        else:
            gc, gcenter = cheb_mono(gn, lo, hi, deg, c), c
        ghi = rnd(gcenter)
        fc = [rnd(v) for v in fc]
        gc = [rnd(v) for v in gc]
        report.append("%snear %d [%s, %s) F rel %.2e  G rel %.2e"
                      % (label, k, mp.nstr(lo, 5), mp.nstr(hi, 5),
                         max_rel(fn, fc, lo, hi, c, 200), max_rel(gn, gc, lo, hi, gcenter, 200)))
        NF.append(fc)
        NG.append(gc)
        GC.append(ghi)
        GCLO.append(rnd(gcenter - mp.mpf(ghi)))
    return NF, NG, GC, GCLO


def emit(script, header, lines, report):
    """Print the generated C block and the fit report; with --check, exit 0
    only if fastact/<header> holds the block exactly (every fit script)."""
    block = ("/* BEGIN GENERATED by tools/%s -- do not edit by hand */\n" % script
             + "\n".join(lines) + "\n/* END GENERATED */\n")
    print(block)
    print("/* fit report:")
    for line in report:
        print(" * " + line)
    print(" */")
    if "--check" in sys.argv:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fastact", header)
        ok = block in open(path).read()
        print("header contains generated block:", ok)
        sys.exit(0 if ok else 1)


def main():
    report, lines = [], []
    r = mp.findroot(dgelu, -0.75)             # root of gelu'; D(-r) = 0
    rhi, rlo = hi_lo32(-r)
    rt = mp.findroot(dgelu_tanh, -0.75)
    rthi, rtlo = hi_lo32(rt)
    centers, clos, Pc, Dc = [], [], [], []
    for i in range(NPIECE):
        lo, hi = EDGES[i], EDGES[i + 1]
        if i == 0:
            c, cl = 0.0, 0.0
            pc = fit_zero_const(P, lo, hi, DEG, mp.mpf(0))
            dc = cheb_mono(D, lo, hi, DEG, 0)
        elif lo <= -r < hi or lo <= -r - mp.mpf(1) / 8 < hi:   # root piece and the one below
            c, cl = rhi, rlo
            rr = mp.mpf(rhi) + mp.mpf(rlo)
            pc = cheb_mono(P, lo, hi, DEG, mp.mpf(rhi))
            dc = fit_zero_const(D, lo, hi, DEG, -r)
        else:
            c, cl = f32((lo + hi) / 2), 0.0
            pc = cheb_mono(P, lo, hi, DEG, mp.mpf(c))
            dc = cheb_mono(D, lo, hi, DEG, mp.mpf(c))
        pc = [f32(v) for v in pc]
        dc = [f32(v) for v in dc]
        eP = max_rel(P, pc, lo, hi, mp.mpf(c))
        eD = max_rel(D, dc, lo, hi, mp.mpf(c) + mp.mpf(cl))
        report.append("piece %d [%s, %s) c=%r clo=%r  P rel %.2e  D rel %.2e"
                      % (i, mp.nstr(lo, 4), mp.nstr(hi, 4), c, cl, eP, eD))
        centers.append(c); clos.append(cl); Pc.append(pc); Dc.append(dc)
    # near range: F and G on 32 pieces of width 1/8, no exp (both forms)
    rpiece = int(mp.nint(-r / NEAR_STEP))
    assert rpiece == int(mp.nint(-rt / NEAR_STEP))              # both roots in one piece
    near_dhi = f32(mp.mpf(rhi) - rpiece * NEAR_STEP)          # exact: r_hi - 6/8
    near_tdhi = f32(mp.mpf(-rthi) - rpiece * NEAR_STEP)       # exact: -rt_hi - 6/8
    NF, NG = fit_near(F, G, -r, (rpiece,), "", report)[:2]
    NTF, NTG = fit_near(Ft, Gt, -rt, (rpiece,), "tanh ", report)[:2]
    avx2 = dict(pieces=A2_PIECES, step=A2_STEP, deg=A2_DEG)
    A2 = fit_near(F, G, -r, A2_ROOT_PIECES, "avx2 ", report, **avx2)
    A2T = fit_near(Ft, Gt, -rt, A2_ROOT_PIECES, "tanh avx2 ", report, **avx2)
    # exp: e = expm1(r) = r*q(r)
    RMAX = mp.mpf("0.3467")
    ec = [f32(v) for v in fit_zero_const(mp.expm1, -RMAX, RMAX, DEG_EXP, mp.mpf(0))]
    worst = 0
    for k in range(801):
        x = -RMAX + 2 * RMAX * k / 800
        worst = max(worst, abs((1 + horner([mp.mpf(c) for c in ec], x)) / mp.exp(x) - 1))
    report.append("exp: 1 + r*q(r), degree %d, |r| <= %s, rel err of 1+e %.2e"
                  % (DEG_EXP, mp.nstr(RMAX, 5), float(worst)))
    # tanh-form root window
    W = ROOTW_TANH
    rtc = [f32(v) for v in fit_zero_const(dgelu_tanh, rt - W, rt + W, DEG_ROOT_TANH, rt)]
    ert = max_rel(dgelu_tanh, rtc, rt - W, rt + W, rt, 400)
    report.append("tanh root window |d| < %s degree %d rel err %.2e" % (mp.nstr(W, 5), DEG_ROOT_TANH, ert))

    def arr(name, vals, n=32):
        vals = list(vals) + [0.0] * (n - len(vals))
        return "static const float %s[%d] FA_GX_ALIGN = {%s};" % (
            name, n, ", ".join(flit(v) for v in vals))

    lit = flit
    lines.append("#define FA_GX_DEG %d" % DEG)
    lines.append("#define FA_GX_NPIECE %d" % NPIECE)
    lines.append("#define FA_GX_IBASE %d  /* piece = clamp((bits(a) >> 21) - IBASE, 0, NPIECE-1) */"
                 % (((127 + EMIN) << 2) - 1))
    rp = [i for i in range(NPIECE) if centers[i] == rhi]
    assert rp == [rp[0], rp[0] + 1] and rp[0] % 2 == 0
    lines.append("#define FA_GX_ROOTPIECE %d  /* this piece and the next: t = (a - r_hi) - r_lo */" % rp[0])
    lines.append("#define FA_GX_DEG_EXP %d" % DEG_EXP)
    ln2 = mp.log(2)
    ln2hi = mp.floor(ln2 * 2 ** 16) / 2 ** 16            # 16 bits: n*LN2_HI exact for |n| < 256
    lines.append("#define FA_GX_LOG2E %s" % flit(f32(1 / ln2)))
    lines.append("#define FA_GX_LN2_HI %s  /* 16 bits: n*LN2_HI exact for |n| < 256 */" % flit(f32(ln2hi)))
    lines.append("#define FA_GX_LN2_LO %s" % flit(f32(ln2 - ln2hi)))
    lines.append("#define FA_GX_RS2PI %s" % flit(f32(RS2PI)))
    c1h, c1l = hi_lo32(C1)
    c3h, c3l = hi_lo32(C3)
    c33h, c33l = hi_lo32(3 * C3)
    for nm, v in (("TC1_HI", c1h), ("TC1_LO", c1l), ("TC3_HI", c3h), ("TC3_LO", c3l),
                  ("TC33_HI", c33h), ("TC33_LO", c33l), ("RT_HI", rthi), ("RT_LO", rtlo),
                  ("RT_W", float(W))):
        lines.append("#define FA_GX_%s %s" % (nm, flit(v)))
    for k, v in enumerate(ec):
        lines.append("#define FA_GX_E%d %s" % (k, lit(v)))
    for k, v in enumerate(rtc):
        lines.append("#define FA_GX_RT%d %s" % (k, lit(v)))
    lines.append("#define FA_GX_NEAR_MAX %s  /* a below this: k = round(8a) <= 31 */"
                 % flit(float(NEAR_MAX)))
    lines.append("#define FA_GX_NEAR_ROOTPIECE %d" % rpiece)
    lines.append("#define FA_GX_NEAR_DHI %s  /* r_hi - ROOTPIECE/8, exact */" % flit(near_dhi))
    lines.append("#define FA_GX_NEAR_DLO %s  /* r_lo */" % flit(rlo))
    lines.append("#define FA_GX_NEAR_TDHI %s  /* -rt_hi - ROOTPIECE/8, exact */" % flit(near_tdhi))
    lines.append("#define FA_GX_NEAR_TDLO %s  /* -rt_lo */" % flit(-rtlo))
    for name, table in (("nf", NF), ("ng", NG), ("ntf", NTF), ("ntg", NTG)):
        for k in range(DEG + 1):
            lines.append(arr("fa_gx_%s%d" % (name, k), [pc[k] for pc in table]))
    lines.append("#define FA_GX_A2_DEG %d" % A2_DEG)
    lines.append("#define FA_GX_A2_NEAR_MAX %s  /* a below this: k = round(2a) <= 7 */"
                 % flit(float(A2_NEAR_MAX)))
    for prefix, (nf, ng, gc, gclo) in (("a2_", A2), ("a2_t", A2T)):
        for name, table in (("f", nf), ("g", ng)):
            for k in range(A2_DEG + 1):
                lines.append(arr("fa_gx_%s%s%d" % (prefix, name, k), [pc[k] for pc in table], 8))
        lines.append(arr("fa_gx_%sgc" % prefix, gc, 8))
        lines.append(arr("fa_gx_%sgclo" % prefix, gclo, 8))
    lines.append(arr("fa_gx_center", centers))
    lines.append(arr("fa_gx_clo", clos))
    for k in range(DEG + 1):
        lines.append(arr("fa_gx_p%d" % k, [pc[k] for pc in Pc]))
    for k in range(DEG + 1):
        lines.append(arr("fa_gx_d%d" % k, [dc[k] for dc in Dc]))
    emit("fit_gelu_f32.py", "_gelu_x86.h", lines, report)


if __name__ == "__main__":
    main()
