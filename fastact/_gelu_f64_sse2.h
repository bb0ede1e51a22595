/*
 * fastact/_gelu_f64_sse2.h -- float64 GELU (exact and tanh forms, forward
 * and backward) for the baseline level: SSE2 only (x86-64 v1: no FMA, no
 * permutes), two lanes.
 *
 * The near path of _gelu_f64_x86.h, with the same tables: for a = |x| <
 * FA_GD_NEAR_MAX (3.875), k = round(4a) is read from the low mantissa bits
 * of a + 1.5*2^50 and picks one of 16 pieces; t = a - k/4 (exact);
 *   gelu(x)  = max(x,0) - F(a),  gelu'(x) = x < 0 ? G(a) : 1 - G(a)
 * with F, G (or the tanh form's Ft, Gt) of degree 11 in t, evaluated by
 * Horner's scheme with a multiply and an add per step (no FMA here: each
 * step rounds twice; |t| <= 1/8 keeps every product small next to its
 * coefficient, so the error stays a few units of 2^-53: report in
 * docs/accuracy.md).  Each coefficient pair is two scalar loads (one per
 * lane's piece) instead of a permute.  In the piece holding the root of G
 * (or Gt), t = (t - dhi) - dlo and the coefficient table has G = t*p(t),
 * so gelu' keeps its relative accuracy through the root.
 * Elements outside the near range (and NaNs) are queued per block and run
 * through the generic baseline loops (_loops.h + _simd.h) on a packed copy,
 * so each result depends on its own element alone; those past the
 * saturation points of _gelu_f64_x86.h take x (or g) directly.
 *
 * Only compiled where _gelu_f64_x86.h's tables are (GCC/Clang on x86).
 */
#ifndef FASTACT_GELU_F64_SSE2_H
#define FASTACT_GELU_F64_SSE2_H

#if FA_HAVE_X86_LEVELS && (defined(__SSE2__) || defined(_M_X64))
#define FA_HAVE_SSE2_GELU64 1
#include <emmintrin.h>

typedef struct {
    const double *c[FA_GD_DEG + 1];
} fa_gs64_tabs;

static const fa_gs64_tabs fa_gs64_tab[4] = {
    {{fa_gd_f0, fa_gd_f1, fa_gd_f2, fa_gd_f3, fa_gd_f4, fa_gd_f5,
      fa_gd_f6, fa_gd_f7, fa_gd_f8, fa_gd_f9, fa_gd_f10, fa_gd_f11}},
    {{fa_gd_g0, fa_gd_g1, fa_gd_g2, fa_gd_g3, fa_gd_g4, fa_gd_g5,
      fa_gd_g6, fa_gd_g7, fa_gd_g8, fa_gd_g9, fa_gd_g10, fa_gd_g11}},
    {{fa_gd_tf0, fa_gd_tf1, fa_gd_tf2, fa_gd_tf3, fa_gd_tf4, fa_gd_tf5,
      fa_gd_tf6, fa_gd_tf7, fa_gd_tf8, fa_gd_tf9, fa_gd_tf10, fa_gd_tf11}},
    {{fa_gd_tg0, fa_gd_tg1, fa_gd_tg2, fa_gd_tg3, fa_gd_tg4, fa_gd_tg5,
      fa_gd_tg6, fa_gd_tg7, fa_gd_tg8, fa_gd_tg9, fa_gd_tg10, fa_gd_tg11}},
};

/* F or G of either form at a = |x| (meaningful for a < NEAR_MAX only; other
 * lanes get a finite or NaN value that the caller replaces).  For G the
 * root's piece takes t = (t - dhi) - dlo. */
static inline __m128d fa_gs64_near(const fa_gs64_tabs *T, __m128d a, int at_root, double dhi,
                                   double dlo)
{
    const __m128d magic = _mm_set1_pd(FA_GD_MAGIC);
    __m128d k = _mm_add_pd(a, magic);
    __m128i bits = _mm_castpd_si128(k);
    int i0 = _mm_cvtsi128_si32(bits) & 15;
    int i1 = _mm_cvtsi128_si32(_mm_shuffle_epi32(bits, 0xEE)) & 15;
    __m128d t = _mm_sub_pd(a, _mm_sub_pd(k, magic));   /* exact: |a - k/4| <= 1/8 */
    if (at_root) {
        __m128d root = _mm_cmpeq_pd(k, _mm_set1_pd(FA_GD_MAGIC + 0.25 * FA_GD_ROOTPIECE));
        t = _mm_sub_pd(t, _mm_and_pd(root, _mm_set1_pd(dhi)));
        t = _mm_sub_pd(t, _mm_and_pd(root, _mm_set1_pd(dlo)));
    }
    __m128d p = _mm_loadh_pd(_mm_load_sd(T->c[FA_GD_DEG] + i0), T->c[FA_GD_DEG] + i1);
    for (int j = FA_GD_DEG - 1; j >= 0; j--)
        p = _mm_add_pd(_mm_mul_pd(p, t), _mm_loadh_pd(_mm_load_sd(T->c[j] + i0), T->c[j] + i1));
    return p;
}

#define FA_GS64_BLOCK 256
/* the far elements of a block: where they go, x and (backward) g */
typedef struct {
    double fx[FA_GS64_BLOCK], fg[FA_GS64_BLOCK], fr[FA_GS64_BLOCK];
    int at[FA_GS64_BLOCK];
    int nf;
} fa_gs64_queue;

static inline void fa_gs64_push(fa_gs64_queue *q, int lanes, __m128d g, __m128d x, int off)
{
    double xb[2], gb[2];
    _mm_storeu_pd(xb, x);
    _mm_storeu_pd(gb, g);
    for (int l = 0; l < 2; l++)
        if (lanes & (1 << l)) {
            q->fx[q->nf] = xb[l];
            q->fg[q->nf] = gb[l];
            q->at[q->nf++] = off + l;
        }
}

/* which: 0 exact F, 1 exact G, 2 tanh F, 3 tanh G */
static inline __m128d fa_gs64_forward(const fa_gs64_tabs *T, __m128d x, double sat,
                                      fa_gs64_queue *q, int off)
{
    __m128d a = _mm_andnot_pd(_mm_set1_pd(-0.0), x);
    /* max(0, x): SSE returns the second operand on equal zeros, so -0.0 stays -0.0 */
    __m128d r = _mm_sub_pd(_mm_max_pd(_mm_setzero_pd(), x), fa_gs64_near(T, a, 0, 0.0, 0.0));
    int far = _mm_movemask_pd(_mm_cmpnlt_pd(a, _mm_set1_pd(FA_GD_NEAR_MAX)));   /* NaN too */
    if (far) {
        __m128d hi = _mm_cmpge_pd(x, _mm_set1_pd(sat));
        r = _mm_or_pd(_mm_and_pd(hi, x), _mm_andnot_pd(hi, r));
        far &= ~_mm_movemask_pd(hi);
        if (far)
            fa_gs64_push(q, far, x, x, off);
    }
    return r;
}

static inline __m128d fa_gs64_backward(const fa_gs64_tabs *T, __m128d g, __m128d x, double sat,
                                       double dhi, double dlo, fa_gs64_queue *q, int off)
{
    __m128d a = _mm_andnot_pd(_mm_set1_pd(-0.0), x);
    __m128d d = fa_gs64_near(T, a, 1, dhi, dlo);
    __m128d neg = _mm_cmplt_pd(x, _mm_setzero_pd());
    __m128d r = _mm_mul_pd(g, _mm_or_pd(_mm_and_pd(neg, d),
                                        _mm_andnot_pd(neg, _mm_sub_pd(_mm_set1_pd(1.0), d))));
    int far = _mm_movemask_pd(_mm_cmpnlt_pd(a, _mm_set1_pd(FA_GD_NEAR_MAX)));
    if (far) {
        __m128d hi = _mm_cmpge_pd(x, _mm_set1_pd(sat));
        r = _mm_or_pd(_mm_and_pd(hi, g), _mm_andnot_pd(hi, r));             /* g * 1 */
        far &= ~_mm_movemask_pd(hi);
        if (far)
            fa_gs64_push(q, far, g, x, off);
    }
    return r;
}

/* the results of the queued elements into out (the block's start) */
static inline void fa_gs64_scatter(const fa_gs64_queue *q, double *out)
{
    for (int j = 0; j < q->nf; j++)
        out[q->at[j]] = q->fr[j];
}

/* Blocks of FA_GS64_BLOCK: whole vectors, then the tail through a padded
 * copy (filler 0.0, near); the far elements last, through the generic loop. */
#define FA_GS64_UNARY(name, which, sat, generic)                                              \
    static void name(const double *x, double *out, fa_index n, double param)                  \
    {                                                                                         \
        const fa_gs64_tabs *T = &fa_gs64_tab[which];                                          \
        fa_gs64_queue q;                                                                      \
        for (fa_index b = 0; b < n; b += FA_GS64_BLOCK) {                                     \
            fa_index e = n - b < FA_GS64_BLOCK ? n : b + FA_GS64_BLOCK, i = b;                \
            q.nf = 0;                                                                         \
            for (; i + 2 <= e; i += 2)                                                        \
                _mm_storeu_pd(out + i, fa_gs64_forward(T, _mm_loadu_pd(x + i), sat, &q,       \
                                                       (int)(i - b)));                        \
            if (i < e) {                                                                      \
                double buf[2];                                                                \
                _mm_storeu_pd(buf, fa_gs64_forward(T, _mm_set_pd(0.0, x[i]), sat, &q,         \
                                                   (int)(i - b)));                            \
                out[i] = buf[0];                                                              \
            }                                                                                 \
            if (q.nf) {                                                                       \
                generic(q.fx, q.fr, q.nf, param);                                             \
                fa_gs64_scatter(&q, out + b);                                                 \
            }                                                                                 \
        }                                                                                     \
    }
#define FA_GS64_BINARY(name, which, sat, dhi, dlo, generic)                                   \
    static void name(const double *g, const double *x, double *out, fa_index n, double param) \
    {                                                                                         \
        const fa_gs64_tabs *T = &fa_gs64_tab[which];                                          \
        fa_gs64_queue q;                                                                      \
        for (fa_index b = 0; b < n; b += FA_GS64_BLOCK) {                                     \
            fa_index e = n - b < FA_GS64_BLOCK ? n : b + FA_GS64_BLOCK, i = b;                \
            q.nf = 0;                                                                         \
            for (; i + 2 <= e; i += 2)                                                        \
                _mm_storeu_pd(out + i, fa_gs64_backward(T, _mm_loadu_pd(g + i),               \
                                                        _mm_loadu_pd(x + i), sat, dhi, dlo,   \
                                                        &q, (int)(i - b)));                   \
            if (i < e) {                                                                      \
                double buf[2];                                                                \
                _mm_storeu_pd(buf, fa_gs64_backward(T, _mm_set_pd(0.0, g[i]),                 \
                                                    _mm_set_pd(0.0, x[i]), sat, dhi, dlo,     \
                                                    &q, (int)(i - b)));                       \
                out[i] = buf[0];                                                              \
            }                                                                                 \
            if (q.nf) {                                                                       \
                generic(q.fg, q.fx, q.fr, q.nf, param);                                       \
                fa_gs64_scatter(&q, out + b);                                                 \
            }                                                                                 \
        }                                                                                     \
    }

FA_GS64_UNARY(fa_gelu_f64_sse2, GD_F, FA_GD_SAT_F, fa_gelu_f64_base)
FA_GS64_UNARY(fa_gelu_tanh_f64_sse2, GD_TANH_F, FA_GD_SAT_TF, fa_gelu_tanh_f64_base)
FA_GS64_BINARY(fa_gelu_backward_f64_sse2, GD_G, FA_GD_SAT_G, FA_GD_DHI, FA_GD_DLO,
               fa_gelu_backward_f64_base)
FA_GS64_BINARY(fa_gelu_tanh_backward_f64_sse2, GD_TANH_G, FA_GD_SAT_TG, FA_GD_TDHI, FA_GD_TDLO,
               fa_gelu_tanh_backward_f64_base)

#undef FA_GS64_UNARY
#undef FA_GS64_BINARY
#define FA_GELU64_base(name) name##_f64_sse2
#else
#define FA_HAVE_SSE2_GELU64 0
#define FA_GELU64_base(name) name##_f64_base
#endif

#endif /* FASTACT_GELU_F64_SSE2_H */
