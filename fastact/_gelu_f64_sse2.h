/*
 * fastact/_gelu_f64_sse2.h -- float64 GELU (exact and tanh forms, forward
 * and backward) for the baseline level: SSE2 only (x86-64 v1: no FMA, no
 * permutes), two lanes; and for the AVX2 level: four lanes with FMA.  The
 * loops are _gelu_f64_near.h's, included once per level under the vector
 * layer defined here.
 *
 * The near path of _gelu_f64_x86.h, with the same tables: for a = |x| <
 * FA_GD_NEAR_MAX (3.875), k = round(4a) is read from the low mantissa bits
 * of a + 1.5*2^50 and picks one of 16 pieces; t = a - k/4 (exact);
 *   gelu(x)  = max(x,0) - F(a),  gelu'(x) = x < 0 ? G(a) : 1 - G(a)
 * with F, G (or the tanh form's Ft, Gt) of degree 11 in t, evaluated by
 * Horner's scheme with a multiply and an add per step (no FMA at the
 * baseline: each step rounds twice; |t| <= 1/8 keeps every product small next to its
 * coefficient, so the error stays a few units of 2^-53: report in
 * docs/accuracy.md).  Each coefficient pair is two scalar loads (one per
 * lane's piece) instead of a permute.  In the piece holding the root of G
 * (or Gt), t = (t - dhi) - dlo and the coefficient table has G = t*p(t),
 * so gelu' keeps its relative accuracy through the root.
 * Elements outside the near range (and NaNs) are queued per block and
 * computed on a packed copy, so each result depends on its own element
 * alone: at the AVX2 level those below FA_GF_END_* by the far range's own
 * maths (_gelu_f64_far.h, four lanes), the rest by the level's generic
 * loops (_loops.h + _simd.h) from a second queue; at the baseline all of
 * them by the generic loop.  Those past the saturation points of
 * _gelu_f64_x86.h take x (or g) directly.
 *
 * Only compiled where _gelu_f64_x86.h's tables are (GCC/Clang on x86).
 */
#ifndef FASTACT_GELU_F64_SSE2_H
#define FASTACT_GELU_F64_SSE2_H

#if FA_HAVE_X86_LEVELS && (defined(__SSE2__) || defined(_M_X64))
#define FA_HAVE_SSE2_GELU64 1
#include <immintrin.h>

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

#define FA_GS64_BLOCK 256
/* the far elements of a block: where they go, x and (backward) g */
typedef struct {
    double fx[FA_GS64_BLOCK + 8], fg[FA_GS64_BLOCK + 8], fr[FA_GS64_BLOCK + 8]; /* + filler */
    int at[FA_GS64_BLOCK + 8];
    int nf;
} fa_gs64_queue;

/* the results of the queued elements into out (the block's start) */
static inline void fa_gs64_scatter(const fa_gs64_queue *q, double *out)
{
    for (int j = 0; j < q->nf; j++)
        out[q->at[j]] = q->fr[j];
}

/* the baseline's vector layer for _gelu_f64_near.h: each coefficient pair is
 * two scalar loads (one per lane's piece); no FMA, so each Horner step
 * rounds twice */
#define GV_T __m128d
#define GV_N 2
#define GV_SFX sse2
#define GV_GENERIC base
#define GV_FN_ATTR static inline
#define GV_LOOP_ATTR static
#define GV_SET1 _mm_set1_pd
#define GV_ADD _mm_add_pd
#define GV_SUB _mm_sub_pd
#define GV_MUL _mm_mul_pd
#define GV_FMA(p, t, c) _mm_add_pd(_mm_mul_pd(p, t), c)
#define GV_AND _mm_and_pd
#define GV_ANDNOT _mm_andnot_pd
#define GV_OR _mm_or_pd
#define GV_MAX _mm_max_pd
#define GV_ZERO _mm_setzero_pd
#define GV_LOADU _mm_loadu_pd
#define GV_STOREU _mm_storeu_pd
#define GV_MOVEMASK _mm_movemask_pd
#define GV_CMPNLT _mm_cmpnlt_pd
#define GV_CMPGE _mm_cmpge_pd
#define GV_CMPLT _mm_cmplt_pd
#define GV_CMPEQ _mm_cmpeq_pd
#define GV_IDX_DECL(k)                                                                           \
    __m128i bits_ = _mm_castpd_si128(k);                                                         \
    int i0_ = _mm_cvtsi128_si32(bits_) & 15;                                                     \
    int i1_ = _mm_cvtsi128_si32(_mm_shuffle_epi32(bits_, 0xEE)) & 15
#define GV_TAB_T const fa_gs64_tabs *
#define GV_TAB_INIT(T, w) const fa_gs64_tabs *T = &fa_gs64_tab[w]
#define GV_COEF(p) _mm_loadh_pd(_mm_load_sd((p) + i0_), (p) + i1_)
#define GV_PAIR(T, j, lo, hi) (lo = GV_COEF(T->c[j]), hi = GV_COEF(T->c[(j) + 1]))
#include "_gelu_f64_near.h"
#include "_gelu_f64_vundef.h"
#undef GV_COEF

/* the far range's maths (_gelu_f64_far.h) at the AVX2 level */
#define FV_T __m256d
#define FV_N 4
#define FV_SFX avx2
#define FV_ATTR __attribute__((target("avx2,fma"), always_inline)) static inline
#define FV_SET1 _mm256_set1_pd
#define FV_ADD _mm256_add_pd
#define FV_SUB _mm256_sub_pd
#define FV_MUL _mm256_mul_pd
#define FV_DIV _mm256_div_pd
#define FV_XOR _mm256_xor_pd
#define FV_ANDNOT _mm256_andnot_pd
#define FV_LOADU _mm256_loadu_pd
#define FV_STOREU _mm256_storeu_pd
#define FV_FMA _mm256_fmadd_pd
#define FV_FMS _mm256_fmsub_pd
#define FV_LTSEL(x, y, t, f) _mm256_blendv_pd(f, t, _mm256_cmp_pd(x, y, _CMP_LT_OQ))
#define FV_SHL52(v) _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(v), 52))
#include "_gelu_f64_far.h"
#include "_gelu_f64_fvundef.h"

/* AVX2 queueing by register compress: for each 4-bit lane mask, the
 * vpermps indices that move the masked lanes of a vector to its front and
 * their lane numbers; one permute and one store per array instead of a
 * store per lane (the stores past the packed lanes are overwritten later
 * or ignored; nf <= off keeps them inside the arrays) */
static const int fa_gv_compress4[16][12] __attribute__((aligned(64))) = {
#define C1_(l) 2 * (l), 2 * (l) + 1
    {C1_(0), C1_(1), C1_(2), C1_(3), 0, 1, 2, 3},
    {C1_(0), C1_(1), C1_(2), C1_(3), 0, 1, 2, 3},
    {C1_(1), C1_(0), C1_(2), C1_(3), 1, 0, 2, 3},
    {C1_(0), C1_(1), C1_(2), C1_(3), 0, 1, 2, 3},
    {C1_(2), C1_(0), C1_(1), C1_(3), 2, 0, 1, 3},
    {C1_(0), C1_(2), C1_(1), C1_(3), 0, 2, 1, 3},
    {C1_(1), C1_(2), C1_(0), C1_(3), 1, 2, 0, 3},
    {C1_(0), C1_(1), C1_(2), C1_(3), 0, 1, 2, 3},
    {C1_(3), C1_(0), C1_(1), C1_(2), 3, 0, 1, 2},
    {C1_(0), C1_(3), C1_(1), C1_(2), 0, 3, 1, 2},
    {C1_(1), C1_(3), C1_(0), C1_(2), 1, 3, 0, 2},
    {C1_(0), C1_(1), C1_(3), C1_(2), 0, 1, 3, 2},
    {C1_(2), C1_(3), C1_(0), C1_(1), 2, 3, 0, 1},
    {C1_(0), C1_(2), C1_(3), C1_(1), 0, 2, 3, 1},
    {C1_(1), C1_(2), C1_(3), C1_(0), 1, 2, 3, 0},
    {C1_(0), C1_(1), C1_(2), C1_(3), 0, 1, 2, 3},
#undef C1_
};

__attribute__((target("avx2,fma"), always_inline)) static inline void
fa_gv64_push_avx2(fa_gs64_queue *q, int lanes, __m256d g, __m256d x, int off)
{
    const int *c = fa_gv_compress4[lanes];
    __m256i idx = _mm256_loadu_si256((const __m256i *)c);
    int nf = q->nf;
    _mm256_storeu_pd(q->fx + nf, _mm256_castps_pd(_mm256_permutevar8x32_ps(_mm256_castpd_ps(x), idx)));
    _mm256_storeu_pd(q->fg + nf, _mm256_castps_pd(_mm256_permutevar8x32_ps(_mm256_castpd_ps(g), idx)));
    _mm_storeu_si128((__m128i *)(q->at + nf),
                     _mm_add_epi32(_mm_loadu_si128((const __m128i *)(c + 8)), _mm_set1_epi32(off)));
    q->nf = nf + __builtin_popcount((unsigned)lanes);
}

/* the AVX2 level's: four lanes, FMA (one rounding a step); the four pieces'
 * coefficients come by one gather from each coefficient's table */
#define GV_T __m256d
#define GV_N 4
#define GV_SFX avx2near
#define GV_GENERIC avx2
#define GV_FAR_RUN fa_gf_run_avx2
#define GV_PUSH fa_gv64_push_avx2
#define GV_FN_ATTR __attribute__((target("avx2,fma"), always_inline)) static inline
#define GV_LOOP_ATTR __attribute__((target("avx2,fma"))) static
#define GV_SET1 _mm256_set1_pd
#define GV_ADD _mm256_add_pd
#define GV_SUB _mm256_sub_pd
#define GV_MUL _mm256_mul_pd
#define GV_FMA(p, t, c) _mm256_fmadd_pd(p, t, c)
#define GV_AND _mm256_and_pd
#define GV_ANDNOT _mm256_andnot_pd
#define GV_OR _mm256_or_pd
#define GV_MAX _mm256_max_pd
#define GV_ZERO _mm256_setzero_pd
#define GV_LOADU _mm256_loadu_pd
#define GV_STOREU _mm256_storeu_pd
#define GV_MOVEMASK _mm256_movemask_pd
#define GV_CMPNLT(a, b) _mm256_cmp_pd(a, b, _CMP_NLT_UQ)
#define GV_CMPGE(a, b) _mm256_cmp_pd(a, b, _CMP_GE_OQ)
#define GV_CMPLT(a, b) _mm256_cmp_pd(a, b, _CMP_LT_OQ)
#define GV_CMPEQ(a, b) _mm256_cmp_pd(a, b, _CMP_EQ_OQ)
#define GV_TAB_T const double *
#define GV_TAB_INIT(T, w)                                                                        \
    double rows_[16 * (FA_GD_DEG + 1)] __attribute__((aligned(32)));                            \
    for (int p_ = 0; p_ < 16; p_++)                                                              \
        for (int j_ = 0; j_ <= FA_GD_DEG; j_++)                                                  \
            rows_[p_ * (FA_GD_DEG + 1) + j_] = fa_gs64_tab[w].c[j_][p_];                         \
    const double *T = rows_
#define GV_IDX_DECL(k)                                                                           \
    const double *r_[4];                                                                         \
    {                                                                                            \
        long long b_[4];                                                                         \
        _mm256_storeu_si256((__m256i *)b_, _mm256_castpd_si256(k));                              \
        for (int l_ = 0; l_ < 4; l_++)                                                           \
            r_[l_] = T + (b_[l_] & 15) * (FA_GD_DEG + 1);                                        \
    }
/* lanes 0 and 2's pairs in one vector, 1 and 3's in another: unpacking them
 * gives each coefficient across the four lanes */
#define GV_PAIR(T, j, lo, hi)                                                                    \
    do {                                                                                         \
        __m256d e_ = _mm256_loadu2_m128d(r_[2] + (j), r_[0] + (j));                              \
        __m256d o_ = _mm256_loadu2_m128d(r_[3] + (j), r_[1] + (j));                              \
        lo = _mm256_unpacklo_pd(e_, o_);                                                         \
        hi = _mm256_unpackhi_pd(e_, o_);                                                         \
    } while (0)
#include "_gelu_f64_near.h"
#include "_gelu_f64_vundef.h"

#define FA_HAVE_AVX2_GELU64 1
#define FA_GELU64_avx2(name) name##_f64_avx2near
#define FA_GELU64_base(name) name##_f64_sse2
#else
#define FA_HAVE_SSE2_GELU64 0
#define FA_HAVE_AVX2_GELU64 0
#define FA_GELU64_base(name) name##_f64_base
#define FA_GELU64_avx2(name) name##_f64_avx2
#endif

#endif /* FASTACT_GELU_F64_SSE2_H */
