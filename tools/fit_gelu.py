#!/usr/bin/env python3
"""Reproduce every numeric constant used in fastact/_simd.h.

All fits are Chebyshev interpolants computed in mpmath (mp.dps = 50) at
Chebyshev nodes, converted exactly (in mpmath) to the monomial basis of the
variable that the header evaluates with Horner's rule, then rounded to the
nearest double.  The script prints the approximation error of the *rounded*
coefficients (measured in mpmath on a dense grid) and the C code (Horner
expressions, decimal literals with 17 significant digits, which round-trip
exactly) that is pasted verbatim into the header between the markers
"BEGIN GENERATED" / "END GENERATED".

usage:  python tools/fit_gelu.py            # prints C block + error report
        python tools/fit_gelu.py --check    # also verify the header contains it
"""
import os
import sys
import mpmath as mp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fit_gelu_f32 import emit  # noqa: E402  (prints the block, --check)

mp.mp.dps = 50

# ---------------------------------------------------------------- helpers
def cheb_monomial(f, lo, hi, deg, npts=None):
    """Chebyshev interpolant of f on [lo,hi] of degree deg, returned as
    monomial coefficients in u = (x - mid)/half  (u in [-1, 1])."""
    n = deg + 1
    lo, hi = mp.mpf(lo), mp.mpf(hi)
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    nodes = [mp.cos(mp.pi * (k + mp.mpf(1) / 2) / n) for k in range(n)]
    vals = [f(mid + half * u) for u in nodes]
    c = [2 * mp.fsum(vals[k] * mp.cos(mp.pi * j * (k + mp.mpf(1) / 2) / n)
                     for k in range(n)) / n for j in range(n)]
    c[0] /= 2
    # Chebyshev -> monomial (exact in mp)
    T = [[mp.mpf(1)], [mp.mpf(0), mp.mpf(1)]]
    for j in range(2, n):
        a, b = T[j - 1], T[j - 2]
        t = [mp.mpf(0)] + [2 * v for v in a]
        for i, v in enumerate(b):
            t[i] -= v
        T.append(t)
    mono = [mp.mpf(0)] * n
    for j in range(n):
        for i, v in enumerate(T[j]):
            mono[i] += c[j] * v
    return mono, mid, half


def rescale(mono, mid, half):
    """monomial coeffs in u=(x-mid)/half  ->  monomial coeffs in x (only used
    when mid == 0: then c_k/half^k)."""
    assert mid == 0
    return [cf / half ** k for k, cf in enumerate(mono)]


def horner_mp(coefs, u):
    p = mp.mpf(0)
    for cf in reversed(coefs):
        p = p * u + cf
    return p


def to_double(coefs):
    return [float(c) for c in coefs]


def max_rel_err(fexact, coefs_d, lo, hi, npts=2000, varmap=None):
    worst = (mp.mpf(0), None)
    for k in range(npts + 1):
        x = mp.mpf(lo) + (mp.mpf(hi) - mp.mpf(lo)) * k / npts
        u = varmap(x) if varmap else x
        approx = horner_mp([mp.mpf(c) for c in coefs_d], u)
        ex = fexact(x)
        if ex == 0:
            continue
        e = abs(approx / ex - 1)
        if e > worst[0]:
            worst = (e, x)
    return float(worst[0]), float(worst[1])


def lit(v):
    s = repr(float(v))
    if 'e' not in s and '.' not in s and 'inf' not in s:
        s += '.0'
    return s


def c_horner(name, coefs, comment):
    # nested Horner expression; GCC contracts a*b+c into fma when available
    expr = lit(coefs[-1])
    for cf in reversed(coefs[:-1]):
        expr = "%s + u * (%s)" % (lit(cf), expr)
    # pretty: one term per line
    lines = ["/* %s */" % comment,
             "static inline double %s(double u)" % name, "{",
             "    double p = %s;" % lit(coefs[-1])]
    for cf in reversed(coefs[:-1]):
        lines.append("    p = p * u + %s;" % lit(cf))
    lines += ["    return p;", "}"]
    return "\n".join(lines)


out = []          # C lines
report = []       # error report lines


def const(name, v, comment=""):
    out.append("#define %-22s %s%s" % (name, lit(v), ("  /* %s */" % comment) if comment else ""))


def hi_lo(name, v, comment=""):
    hi = float(v)
    lo = float(v - mp.mpf(hi))
    const(name + "_HI", hi, comment)
    const(name + "_LO", lo)
    return hi, lo


def pick_degree(fexact, lo, hi, target, degs, varmap_mono=None, npts=1500):
    """smallest degree whose double-rounded coefficients meet target."""
    for d in degs:
        mono, mid, half = cheb_monomial(fexact, lo, hi, d)
        if varmap_mono == "x":          # evaluate in x itself (mid must be 0)
            coefs = to_double(rescale(mono, mid, half))
            err = max_rel_err(fexact, coefs, lo, hi, npts)[0]
        else:                            # evaluate in u = (x-mid)/half
            coefs = to_double(mono)
            err = max_rel_err(lambda u: fexact(mid + half * u), coefs, -1, 1, npts)[0]
        if err <= target:
            return d, coefs, err, mid, half
    raise RuntimeError("no degree met target")


# ---------------------------------------------------------------- constants
SQ2PI_INV = 1 / mp.sqrt(2 * mp.pi)
out.append("/* ---- constants ---- */")
hi_lo("FA_RSQRT2PI", SQ2PI_INV, "1/sqrt(2*pi)")
C1 = 2 * mp.sqrt(2 / mp.pi)                     # 2z = C1*x + C3*x^3
C3 = C1 * mp.mpf('0.044715')
hi_lo("FA_TC1", C1, "2*sqrt(2/pi)")
hi_lo("FA_TC3", C3, "2*sqrt(2/pi)*0.044715")
const("FA_LOG2E", 1 / mp.log(2))
# ln2 hi part with 42 significant bits so n*LN2_HI is exact for |n| < 2^11
ln2 = mp.log(2)
ln2_hi = mp.floor(ln2 * 2 ** 42) / 2 ** 42
const("FA_LN2_HI", ln2_hi, "42 bits: n*FA_LN2_HI exact for |n| <= 2047")
const("FA_LN2_LO", ln2 - ln2_hi)

# ---------------------------------------------------------------- exp
def fexp(r):
    return mp.exp(r)

RMAX = mp.mpf('0.3475')   # ln2/2 = 0.34657.. plus slack for the compensated part
for tag, target, degs in (("64", 2.5e-17, range(9, 16)), ("32", 2e-11, range(5, 12))):
    d, coefs, err, mid, half = pick_degree(fexp, -RMAX, RMAX, target, degs, "x")
    report.append("exp%s: degree %d on |r|<=%s  max rel err %.3g" % (tag, d, mp.nstr(RMAX, 6), err))
    out.append(c_horner("fa__exp_poly%s" % tag, coefs,
                        "exp(u) on |u| <= %s, degree %d, rel err %.2g" % (mp.nstr(RMAX, 6), d, err)))
    if tag == "64":   # the same coefficients for the vector far path (_gelu_f64_far.h)
        out.append("#define FA__EXP_DEG64 %d" % d)
        out.append("#define FA__EXP_COEFS64 %s  /* c[0] .. c[DEG] */" % ", ".join(lit(c) for c in coefs))


# ---------------------------------------------------------------- m(a)
# Phi(-a) = exp(-a^2/2) * m(a);  m(a) = g(u) / (a + K),
# u = (P*a + Q)/(a + K) is an affine image of t = (a-K)/(a+K) onto [-1, 1]
# over a in [0, AMAX].
def m_exact(a):
    return mp.erfc(a / mp.sqrt(2)) / 2 * mp.exp(a * a / 2)


for tag, K, AMAX, target, degs in (("64", mp.mpf(5), mp.mpf(40), 1.2e-16, range(18, 34)),
                                    ("32", mp.mpf(4), mp.mpf(16), 2e-11, range(8, 24))):
    tlo, thi = mp.mpf(-1), (AMAX - K) / (AMAX + K)
    # g as function of t
    def g_of_t(t, K=K):
        a = K * (1 + t) / (1 - t)
        return m_exact(a) * (a + K)
    d, coefs, err, mid, half = pick_degree(g_of_t, tlo, thi, target, degs)
    # u = (t - mid)/half = ((a-K)/(a+K) - mid)/half = (P a + Q)/(a+K)
    P = (1 - mid) / half
    Q = (-K - mid * K) / half
    const("FA_MK%s" % tag, K, "m(a) = g(u)/(a+K)")
    const("FA_MP%s" % tag, P, "u = (P*a + Q)/(a + K)")
    const("FA_MQ%s" % tag, Q)
    const("FA_MAMAX%s" % tag, AMAX, "fit range of a")
    report.append("m%s: K=%s a in [0,%s] degree %d, g(u) max rel err %.3g"
                  % (tag, mp.nstr(K, 4), mp.nstr(AMAX, 4), d, err))
    out.append(c_horner("fa__m_poly%s" % tag, coefs,
                        "g(u) = m(a)*(a+K), degree %d, rel err %.2g" % (d, err)))
    # sanity: relative error of m itself at a few a through the u-map (mp)
    worst = 0
    for k in range(401):
        a = AMAX * k / 400
        u = (mp.mpf(float(P)) * a + mp.mpf(float(Q))) / (a + K)
        mm = horner_mp([mp.mpf(c) for c in coefs], u) / (a + K)
        worst = max(worst, abs(mm / m_exact(a) - 1))
    report.append("   m%s via rounded P,Q: max rel err %.3g" % (tag, float(worst)))


# ---------------------------------------------------------------- roots
def dgelu(x):                       # d/dx x*Phi(x)
    return mp.ncdf(x) + x * mp.npdf(x)


def dgelu_tanh(x):
    w = C1 * x + C3 * x ** 3
    s = 1 / (1 + mp.exp(-w))
    return s + x * s * (1 - s) * (C1 + 3 * C3 * x * x)


for name, fn, guess in (("ERF", dgelu, -0.75), ("TANH", dgelu_tanh, -0.75)):
    r = mp.findroot(fn, guess)
    rhi, rlo = hi_lo("FA_ROOT_" + name, r, "root of the derivative")
    report.append("root %s = %s" % (name, mp.nstr(r, 30)))
    for tag, W, target, degs in (("64", mp.mpf(1) / 64, 1.3e-16, range(5, 16)),
                                 ("32", mp.mpf(1) / 512, 2e-11, range(1, 10))):
        # derivative near root = d * P(d), d = x - r
        def Pd(dd, r=r, fn=fn):
            if dd == 0:
                return mp.diff(fn, r)
            return fn(r + dd) / dd
        dg, coefs, err, mid, half = pick_degree(Pd, -W, W, target, degs, "x", npts=400)
        const("FA_ROOTW_%s%s" % (name, tag), W, "window |x - root| < W")
        report.append("   root poly %s%s: |d|<=%s degree %d rel err %.3g"
                      % (name, tag, mp.nstr(W, 5), dg, err))
        out.append(c_horner("fa__root_poly_%s%s" % (name.lower(), tag), coefs,
                            "grad(root + u) = u * p(u), |u| <= %s, degree %d, rel err %.2g"
                            % (mp.nstr(W, 5), dg, err)))

emit("fit_gelu.py", "_simd.h", out, report)
