/*
 * fastact/_gelu_f64_near.h -- one level's float64 GELU near-path loops,
 * included once per level by _gelu_f64_sse2.h (no include guard, on
 * purpose).  The includer defines the level's vector layer:
 *   GV_T, GV_N          vector type, lanes
 *   GV_SFX              suffix of this level's helper names
 *   GV_FN_ATTR          attributes of a helper (target, inline)
 *   GV_LOOP_ATTR        attributes of a loop
 *   GV_SET1 ADD SUB MUL AND ANDNOT OR MAX ZERO LOADU STOREU MOVEMASK
 *   GV_FMA(p, t, c)     p*t + c (one rounding where the level has FMA)
 *   GV_CMPNLT CMPGE CMPLT CMPEQ   masks, NaN as in SSE's cmpnlt/ge/lt/eq
 *   GV_TAB_T            what the loops pass the helpers to find coefficients by
 *   GV_TAB_INIT(T, w)   declares T (a GV_TAB_T) for fa_gs64_tab[w]
 *   GV_IDX_DECL(k)      declares the lanes' piece indices from k = a + MAGIC
 *   GV_PAIR(T, j, lo, hi)  lo, hi = coefficients j, j+1 of each lane's piece
 *   GV_GENERIC          suffix of the level's generic loops, for the far elements
 *   GV_PUSH(q, lanes, g, x, off)  optional: queues the lanes of x, g (else
 *                       stores lane by lane)
 *   GV_FAR_RUN          optional: _gelu_f64_far.h's fa_gf_run of this level; then
 *                       the far elements below FA_GF_END_* take it, and only
 *                       those past the end (and NaNs) the generic loops
 * The maths is described in _gelu_f64_sse2.h.
 */

#if FA_GD_DEG % 2 == 0
#error "GV_PAIR fetches coefficients in pairs: FA_GD_DEG must be odd"
#endif

#define GV_CAT2(a, b) a##_##b
#define GV_CAT(a, b) GV_CAT2(a, b)
#define GV_FN(n) GV_CAT(n, GV_SFX)

/* F or G of either form at a = |x| (meaningful for a < NEAR_MAX only; other
 * lanes get a finite or NaN value that the caller replaces).  For G the
 * root's piece takes t = (t - dhi) - dlo. */
GV_FN_ATTR GV_T GV_FN(fa_gv64_near)(GV_TAB_T T, GV_T a, int at_root, double dhi,
                                     double dlo)
{
    const GV_T magic = GV_SET1(FA_GD_MAGIC);
    GV_T k = GV_ADD(a, magic);
    GV_IDX_DECL(k);
    GV_T t = GV_SUB(a, GV_SUB(k, magic)); /* exact: |a - k/4| <= 1/8 */
    if (at_root) {
        GV_T root = GV_CMPEQ(k, GV_SET1(FA_GD_MAGIC + 0.25 * FA_GD_ROOTPIECE));
        t = GV_SUB(t, GV_AND(root, GV_SET1(dhi)));
        t = GV_SUB(t, GV_AND(root, GV_SET1(dlo)));
    }
    /* Horner's scheme, the coefficients fetched in pairs (FA_GD_DEG is odd) */
    GV_T lo, hi;
    GV_PAIR(T, FA_GD_DEG - 1, lo, hi);
    GV_T p = GV_FMA(hi, t, lo);
    for (int j = FA_GD_DEG - 3; j >= 0; j -= 2) {
        GV_PAIR(T, j, lo, hi);
        p = GV_FMA(GV_FMA(p, t, hi), t, lo);
    }
    return p;
}

#ifdef GV_PUSH
/* the level's own (a register compress) */
#define GV_PUSH_FN(q, lanes, g, x, off) GV_PUSH(q, lanes, g, x, off)
#else
#define GV_PUSH_FN(q, lanes, g, x, off) GV_FN(fa_gv64_push)(q, lanes, g, x, off)
GV_FN_ATTR void GV_FN(fa_gv64_push)(fa_gs64_queue *q, int lanes, GV_T g, GV_T x, int off)
{
    double xb[GV_N], gb[GV_N];
    GV_STOREU(xb, x);
    GV_STOREU(gb, g);
    /* every lane written, only the far ones kept: no branch to mispredict
     * where near and far elements mix (nf <= off + l keeps it in bounds) */
    int nf = q->nf;
    for (int l = 0; l < GV_N; l++) {
        q->fx[nf] = xb[l];
        q->fg[nf] = gb[l];
        q->at[nf] = off + l;
        nf += (lanes >> l) & 1;
    }
    q->nf = nf;
}
#endif

/* the far lanes into q (the far range's maths) or, past its end, NaN and
 * where the level has no far maths, into q2 (the generic loops) */
GV_FN_ATTR void GV_FN(fa_gv64_push2)(fa_gs64_queue *q, fa_gs64_queue *q2, int far, GV_T a,
                                     double end, GV_T g, GV_T x, int off)
{
#ifdef GV_FAR_RUN
    int fast = far & GV_MOVEMASK(GV_CMPLT(a, GV_SET1(end)));
    if (fast)
        GV_PUSH_FN(q, fast, g, x, off);
#else
    int fast = 0;
    (void)q, (void)a, (void)end;
#endif
    if (far & ~fast)
        GV_PUSH_FN(q2, far & ~fast, g, x, off);
}

GV_FN_ATTR GV_T GV_FN(fa_gv64_forward)(GV_TAB_T T, GV_T x, double sat, double end,
                                        fa_gs64_queue *q, fa_gs64_queue *q2, int off)
{
    GV_T a = GV_ANDNOT(GV_SET1(-0.0), x);
    /* max(0, x) returns the second operand on equal zeros: -0.0 stays -0.0 */
    GV_T r = GV_SUB(GV_MAX(GV_ZERO(), x), GV_FN(fa_gv64_near)(T, a, 0, 0.0, 0.0));
    int far = GV_MOVEMASK(GV_CMPNLT(a, GV_SET1(FA_GD_NEAR_MAX))); /* NaN too */
    if (far) {
        GV_T hi = GV_CMPGE(x, GV_SET1(sat));
        r = GV_OR(GV_AND(hi, x), GV_ANDNOT(hi, r));
        far &= ~GV_MOVEMASK(hi);
        if (far)
            GV_FN(fa_gv64_push2)(q, q2, far, a, end, x, x, off);
    }
    return r;
}

GV_FN_ATTR GV_T GV_FN(fa_gv64_backward)(GV_TAB_T T, GV_T g, GV_T x, double sat, double end,
                                         double dhi, double dlo, fa_gs64_queue *q,
                                         fa_gs64_queue *q2, int off)
{
    GV_T a = GV_ANDNOT(GV_SET1(-0.0), x);
    GV_T d = GV_FN(fa_gv64_near)(T, a, 1, dhi, dlo);
    GV_T neg = GV_CMPLT(x, GV_ZERO());
    GV_T r = GV_MUL(g, GV_OR(GV_AND(neg, d), GV_ANDNOT(neg, GV_SUB(GV_SET1(1.0), d))));
    int far = GV_MOVEMASK(GV_CMPNLT(a, GV_SET1(FA_GD_NEAR_MAX)));
    if (far) {
        GV_T hi = GV_CMPGE(x, GV_SET1(sat));
        r = GV_OR(GV_AND(hi, g), GV_ANDNOT(hi, r)); /* g * 1 */
        far &= ~GV_MOVEMASK(hi);
        if (far)
            GV_FN(fa_gv64_push2)(q, q2, far, a, end, g, x, off);
    }
    return r;
}

#ifdef GV_FAR_RUN
/* the far range's maths on q, filler lanes (-4: in range) up to a whole vector */
#define GV_FAR_FLUSH(which)                                                                      \
    if (q.nf) {                                                                                  \
        for (int l_ = 0; l_ < GV_N; l_++)                                                        \
            q.fx[q.nf + l_] = -4.0, q.fg[q.nf + l_] = 1.0;                                       \
        GV_FAR_RUN(which, q.fx, q.fg, q.fr, q.nf);                                               \
        fa_gs64_scatter(&q, out + b);                                                            \
    }
#else
#define GV_FAR_FLUSH(which)
#endif

/* Blocks of FA_GS64_BLOCK: whole vectors, then the tail through a padded
 * copy (filler 0.0, near); the queued elements last: q through the far
 * range's maths, q2 through the generic loop.
 * STEP(gv, xv, off) is one vector's result; the unary loops pass x for g. */
#define GV_BLOCKS(which, g, x, STEP, GENERIC)                                                    \
    GV_TAB_INIT(T, which);                                                                       \
    fa_gs64_queue q, q2;                                                                         \
    for (fa_index b = 0; b < n; b += FA_GS64_BLOCK) {                                            \
        fa_index e = n - b < FA_GS64_BLOCK ? n : b + FA_GS64_BLOCK, i = b;                       \
        q.nf = q2.nf = 0;                                                                        \
        for (; i + GV_N <= e; i += GV_N)                                                         \
            GV_STOREU(out + i, STEP(GV_LOADU(g + i), GV_LOADU(x + i), (int)(i - b)));            \
        if (i < e) {                                                                             \
            double gb[GV_N] = {0.0}, xb[GV_N] = {0.0}, buf[GV_N];                                \
            memcpy(gb, g + i, (size_t)(e - i) * sizeof(double));                                 \
            memcpy(xb, x + i, (size_t)(e - i) * sizeof(double));                                 \
            GV_STOREU(buf, STEP(GV_LOADU(gb), GV_LOADU(xb), (int)(i - b)));                      \
            memcpy(out + i, buf, (size_t)(e - i) * sizeof(double));                              \
        }                                                                                        \
        GV_FAR_FLUSH(which)                                                                      \
        if (q2.nf) {                                                                             \
            GENERIC;                                                                             \
            fa_gs64_scatter(&q2, out + b);                                                       \
        }                                                                                        \
    }
#define GV_FORWARD_STEP(gv, xv, off) GV_FN(fa_gv64_forward)(T, xv, sat_, end_, &q, &q2, off)
#define GV_BACKWARD_STEP(gv, xv, off)                                                            \
    GV_FN(fa_gv64_backward)(T, gv, xv, sat_, end_, dhi_, dlo_, &q, &q2, off)
#define GV_UNARY_LOOP(name, which, sat, end, generic)                                            \
    GV_LOOP_ATTR void name(const double *x, double *out, fa_index n, double param)               \
    {                                                                                            \
        const double sat_ = sat, end_ = end;                                                     \
        GV_BLOCKS(which, x, x, GV_FORWARD_STEP, generic(q2.fx, q2.fr, q2.nf, param))             \
    }
#define GV_BINARY_LOOP(name, which, sat, end, dhi, dlo, generic)                                 \
    GV_LOOP_ATTR void name(const double *g, const double *x, double *out, fa_index n,            \
                           double param)                                                         \
    {                                                                                            \
        const double sat_ = sat, end_ = end, dhi_ = dhi, dlo_ = dlo;                             \
        GV_BLOCKS(which, g, x, GV_BACKWARD_STEP, generic(q2.fg, q2.fx, q2.fr, q2.nf, param))     \
    }

GV_UNARY_LOOP(GV_CAT(fa_gelu_f64, GV_SFX), GD_F, FA_GD_SAT_F, FA_GF_END_F,
              GV_CAT(fa_gelu_f64, GV_GENERIC))
GV_UNARY_LOOP(GV_CAT(fa_gelu_tanh_f64, GV_SFX), GD_TANH_F, FA_GD_SAT_TF, FA_GF_END_T,
              GV_CAT(fa_gelu_tanh_f64, GV_GENERIC))
GV_BINARY_LOOP(GV_CAT(fa_gelu_backward_f64, GV_SFX), GD_G, FA_GD_SAT_G, FA_GF_END_F, FA_GD_DHI,
               FA_GD_DLO, GV_CAT(fa_gelu_backward_f64, GV_GENERIC))
GV_BINARY_LOOP(GV_CAT(fa_gelu_tanh_backward_f64, GV_SFX), GD_TANH_G, FA_GD_SAT_TG, FA_GF_END_T,
               FA_GD_TDHI, FA_GD_TDLO, GV_CAT(fa_gelu_tanh_backward_f64, GV_GENERIC))

#undef GV_UNARY_LOOP
#undef GV_BLOCKS
#undef GV_FORWARD_STEP
#undef GV_BACKWARD_STEP
#undef GV_BINARY_LOOP
#undef GV_FAR_FLUSH
#undef GV_PUSH_FN
#undef GV_FN
#undef GV_CAT
#undef GV_CAT2
