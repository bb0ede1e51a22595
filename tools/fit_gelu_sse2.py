#!/usr/bin/env python3
"""Reproduce the constants of fastact/_gelu_sse2.h (float32 exact GELU, SSE2).

With a = |x| (clamped to 15), Q(a) = Phi(-a) * exp(a^2/2) (scipy's erfcx) and
exp(-a^2/2) = 2^n * (1 + e) computed in float from an exact split of a^2:

  gelu(x)  = max(x, 0) - 2^n (P + P e),    P(a) = a Q(a) = t * g(t - TC_G)
  gelu'(x) = x < 0 ? G : 1 - G,  G = 2^n (D + D e),  D(a) = Q(a) - a/sqrt(2 pi)
                                           = d * q(t - TC_Q),  d = (a - r_hi) - r_lo

where t = a / (a + K) (one correctly rounded division) maps [0, 15] into
[0, 15/(15+K)), and g, q are polynomials in t - TC (TC the middle of that
range: smaller terms, less rounding in Horner's scheme).  q = D/(a - r) has
no root, so gelu' keeps its relative accuracy through the root r of D.

Fit: weighted least squares on Chebyshev nodes with Lawson's reweighting
(near-minimax relative error), coefficients rounded to float32 one at a time
from the highest, the lower ones refitted after each rounding.  q's constant
term is then nudged so that the float32 evaluation gives gelu'(0) = 0.5
exactly, and g's so that g(0) = K/2 (tiny x: gelu(x) = x/2 to 1 ulp).  The report gives the fit's relative error in exact arithmetic and
with float32 Horner evaluation.

usage: python tools/fit_gelu_sse2.py          # prints the C block + report
       python tools/fit_gelu_sse2.py --check  # also verify the header has it
"""
import os
import sys

import numpy as np
from scipy.special import erfcx

AMAX = 15.0
K_G, DEG_G = 3.0, 10
K_Q, DEG_Q = 4.0, 8
R_HI = np.float32(-0.7517915246935645) * -1          # root of D, as hi + lo
R = 0.7517915246935645 + 1.4956759177009883e-17
R_LO = np.float32(R - float(R_HI))
C = 1 / np.sqrt(2 * np.pi)


def Q(a):
    return 0.5 * erfcx(a / np.sqrt(2))


def g_target(a):
    return Q(a) * (a + K_G)            # P(a) = a Q(a) = t * g, t = a/(a+K_G)


def q_target(a):
    d = a - R
    near = np.abs(d) < 1e-6
    slope = -C * np.exp(R * R / 2) * R * 0 + (-(R * Q(R)) - C)   # D'(r) = Q'(r) - C, Q' = aQ - C
    return np.where(near, slope, (Q(a) - a * C) / np.where(near, 1.0, d))


def wls(V, y, target, iters=60):
    w = np.ones(len(y)) / len(y)
    best = None
    for _ in range(iters):
        sw = np.sqrt(w)
        cf, *_ = np.linalg.lstsq(V * (sw / y)[:, None], sw * target / y, rcond=None)
        err = (V @ cf - target) / y
        e = np.abs(err).max()
        if best is None or e < best[0]:
            best = (e, cf)
        w = w * np.abs(err)
        w /= w.sum()
    return best[1]


def fit(target, K, deg, n=3000):
    tmax = AMAX / (AMAX + K)
    tc = float(np.float32(tmax / 2))
    tt = np.cos(np.linspace(0, np.pi, n)) * tmax / 2 + tmax / 2
    a = K * tt / (1 - tt)
    y = target(a)
    ss = tt - tc
    fixed = {}
    for _ in range(deg + 1):
        free = [j for j in range(deg + 1) if j not in fixed]
        resid = y - sum(fixed[j] * ss**j for j in fixed)
        V = np.stack([ss**j for j in free], 1)
        cf = wls(V, y, resid)
        fixed[free[-1]] = float(np.float32(cf[-1]))
    return tc, [fixed[j] for j in range(deg + 1)]


def horner32(coefs, s):
    p = np.float32(coefs[-1])
    for c in coefs[-2::-1]:
        p = p * s + np.float32(c)
    return p


def report(name, target, K, tc, coefs):
    tmax = AMAX / (AMAX + K)
    a = np.linspace(0, AMAX, 200001)
    t32 = (a.astype(np.float32) / (a.astype(np.float32) + np.float32(K)))
    a64 = a.astype(np.float32).astype(np.float64)
    # what the kernel needs: P = t*g and D/(a - r) = q, from the rounded t
    y = a64 * Q(a64) if name == "g" else target(a64)
    w = t32.astype(np.float64) if name == "g" else 1.0
    exact = w * np.polyval(coefs[::-1], t32.astype(np.float64) - tc)
    p32 = w * horner32(coefs, t32 - np.float32(tc)).astype(np.float64)
    y, exact, p32 = y[1:], exact[1:], p32[1:]
    return "%s%s: K=%g deg %d on t in [0, %.4f]: rel err %.2e (exact arithmetic), %.2e (float32 Horner)" % (
        "P = t*g" if name == "g" else "q", "", K, len(coefs) - 1, tmax, np.abs(exact / y - 1).max(), np.abs(p32 / y - 1).max())


def nudge_q0(tc, coefs):
    """Constant term of q such that gelu'(0) = 1 - d*q(0 - TC) is exactly 0.5."""
    d0 = np.float32(-R_HI) - R_LO                          # (0 - r_hi) - r_lo in float32
    s0 = np.float32(0) - np.float32(tc)
    c0 = np.float32(coefs[0])
    for step in range(0, 64):
        for cand in (c0 + np.float32(step) * np.spacing(c0), c0 - np.float32(step) * np.spacing(c0)):
            trial = [float(cand)] + list(coefs[1:])
            if np.float32(d0 * horner32(trial, s0)) == np.float32(0.5):
                return trial
    raise RuntimeError("no constant term gives gelu'(0) = 0.5")


def nudge_g0(tc, coefs):
    """Constant term of g such that its float32 value at t = 0 is K_G/2 exactly
    (P = t*g: gelu(x) = x/2 rounded twice, not three times, for tiny x)."""
    s0 = np.float32(0) - np.float32(tc)
    c0 = np.float32(coefs[0])
    for step in range(0, 64):
        for cand in (c0 + np.float32(step) * np.spacing(c0), c0 - np.float32(step) * np.spacing(c0)):
            trial = [float(cand)] + list(coefs[1:])
            if horner32(trial, s0) == np.float32(K_G / 2):
                return trial
    raise RuntimeError("no constant term gives g(0) = K/2")


def fmt(v):
    return repr(float(np.float32(v))) + "f"


def main():
    tc_g, g = fit(g_target, K_G, DEG_G)
    tc_q, q = fit(q_target, K_Q, DEG_Q)
    q = nudge_q0(tc_q, q)
    g = nudge_g0(tc_g, g)
    lines = ["/* BEGIN GENERATED by tools/fit_gelu_sse2.py -- do not edit by hand */"]
    lines.append("#define FA_GS_KG %s  /* t = a/(a+K) for P */" % fmt(K_G))
    lines.append("#define FA_GS_TCG %s  /* g is a polynomial in t - TC */" % fmt(tc_g))
    lines.append("#define FA_GS_KQ %s  /* t = a/(a+K) for D */" % fmt(K_Q))
    lines.append("#define FA_GS_TCQ %s" % fmt(tc_q))
    lines.append("#define FA_GS_RHI %s  /* root of D: r_hi + r_lo */" % fmt(R_HI))
    lines.append("#define FA_GS_RLO %s" % fmt(R_LO))
    for name, coefs in (("G", g), ("Q", q)):
        for j, c in enumerate(coefs):
            lines.append("#define FA_GS_%s%d %s" % (name, j, fmt(c)))
    lines.append("/* END GENERATED */")
    block = "\n".join(lines)
    print(block)
    print("/* " + report("g", g_target, K_G, tc_g, g) + " */")
    print("/* " + report("q", q_target, K_Q, tc_q, q) + " */")
    if "--check" in sys.argv:
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "..", "fastact", "_gelu_sse2.h")) as f:
            if block not in f.read():
                sys.exit("fastact/_gelu_sse2.h does not hold this output")
        print("header up to date")


if __name__ == "__main__":
    main()
