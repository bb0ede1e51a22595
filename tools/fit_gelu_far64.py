#!/usr/bin/env python3
"""Reproduce the far-range Mills-ratio fit of fastact/_gelu_f64_far.h.

The float64 exact-form GELU at the AVX2 and AVX-512 levels computes the
far range NEAR_MAX = 3.875 <= a = |x| < END = 37.5 as
    Phi(-a) = exp(-a^2/2) * m(a),   m(a) = g(u)/(a + K),   u = (P*a + Q)/(a + K)
like the generic code of _simd.h (tools/fit_gelu.py), but g is fitted on
[NEAR_MAX, END] only, where it needs degree MDEG instead of 21 on [0, 40].
u maps [NEAR_MAX, END] onto [-1, 1]; g is the Chebyshev interpolant in u
(mpmath, dps 50) rounded to float64, its error measured through the
float64-rounded P and Q.

usage: python tools/fit_gelu_far64.py          # prints the C block + report
       python tools/fit_gelu_far64.py --check  # also verify the header has it
"""
import os
import sys

import mpmath as mp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fit_gelu_f32 import cheb_mono, emit, horner  # noqa: E402  (emit: the block, --check)

mp.mp.dps = 50

NEAR_MAX = mp.mpf("3.875")
END = mp.mpf("37.5")
K = mp.mpf(4)
TARGET = 7e-17        # the generic fit (degree 21 on [0, 40]) has 7.2e-17


def m_exact(a):
    return mp.erfc(a / mp.sqrt(2)) / 2 * mp.exp(a * a / 2)


def main():
    # t = (a - K)/(a + K) in [tlo, thi]; u = (t - mid)/half = (P a + Q)/(a + K)
    tlo, thi = (NEAR_MAX - K) / (NEAR_MAX + K), (END - K) / (END + K)
    mid, half = (tlo + thi) / 2, (thi - tlo) / 2
    P, Q = float((1 - mid) / half), float((-K - mid * K) / half)

    def g_of_u(u):
        t = mid + half * u
        a = K * (1 + t) / (1 - t)
        return m_exact(a) * (a + K)

    for deg in range(12, 22):
        coefs = [float(c) for c in cheb_mono(g_of_u, -1, 1, deg, 0)]
        worst = mp.mpf(0)
        for k in range(1201):          # m itself on a grid of a, through the rounded P, Q
            a = NEAR_MAX + (END - NEAR_MAX) * k / 1200
            u = (mp.mpf(P) * a + mp.mpf(Q)) / (a + K)
            worst = max(worst, abs(horner([mp.mpf(c) for c in coefs], u) / (a + K) / m_exact(a) - 1))
        if worst <= TARGET:
            break
    else:
        raise RuntimeError("no degree met the target")
    lines = ["#define FA_GF_END_F 37.5  /* exact form: exp(-a^2/2) stays normal below */",
             "#define FA_GF_END_T 20.0  /* tanh form: w(a) <= 603, exp(-w) normal */",
             "#define FA_GF_MK %r  /* m(a) = g(u)/(a + K) */" % float(K),
             "#define FA_GF_MP %r  /* u = (P*a + Q)/(a + K) */" % P,
             "#define FA_GF_MQ %r" % Q,
             "#define FA_GF_MDEG %d" % deg,
             "static const double fa_gf_m[FA_GF_MDEG + 1] = {%s};" % ", ".join(repr(c) for c in coefs)]
    report = ["m on [%s, %s]: K=%s degree %d, max rel err %.3g (through rounded P, Q)"
              % (mp.nstr(NEAR_MAX, 5), mp.nstr(END, 5), mp.nstr(K, 3), deg, float(worst))]
    emit("fit_gelu_far64.py", "_gelu_f64_far.h", lines, report)


if __name__ == "__main__":
    main()
