/*
 * fastact/_half.h -- float16 and bfloat16 arrays through the float32 loops.
 *
 * Every half-precision kernel computes in float32: a block of elements is
 * converted into a float32 buffer on the stack (exactly: every half value is
 * a float32 value), the float32 loop of the current level runs on it in
 * place, and the block is rounded back to the half type, to nearest with
 * ties to even.  So each result is the correctly rounded value of the
 * float32 result, and GELU reuses the accurate float32 code of each level.
 * The buffer stays in L1, so for the memory-bound ReLU family the extra
 * passes cost instructions, not memory traffic.
 *
 * Conversions ("codecs") per level, chosen at run time:
 *   baseline  portable C (bit manipulation, no tables)
 *   avx2      F16C vcvtph2ps/vcvtps2ph for float16 (when the CPU has F16C),
 *             AVX2 integer rounding for bfloat16
 *   avx512    AVX-512F vcvtph2ps/vcvtps2ph for float16; for bfloat16
 *             AVX512-BF16 vcvtneps2bf16 when the CPU has it, AVX-512
 *             integer rounding otherwise
 * bfloat16 -> float32 is a 16-bit shift at every level.
 *
 * Included by _dispatch.h after the loops and tables.
 */
#ifndef FASTACT_HALF_H
#define FASTACT_HALF_H

#include <stdint.h>
#include <string.h>

typedef uint16_t fa_half;

typedef void (*fa_half_load)(const fa_half *, float *, fa_index);
typedef void (*fa_half_store)(const float *, fa_half *, fa_index);

typedef void (*fa_half_unary)(int, const fa_half *, fa_half *, fa_index, double);
typedef void (*fa_half_binary)(int, const fa_half *, const fa_half *, fa_half *, fa_index,
                               double);

typedef struct {
    const char *name;
    fa_half_load load;    /* half -> float32, exact */
    fa_half_store store;  /* float32 -> half, round to nearest even */
    /* ReLU and Leaky ReLU converting in registers, or NULL: for these
     * memory-bound ops the trip through the L1 buffer costs as much as the
     * arithmetic (same results: the same float32 operations) */
    fa_half_unary relu_family_forward;
    fa_half_binary relu_family_backward;
    /* PReLU with one slope per channel (rows x channels), likewise, or NULL */
    void (*prelu_rows)(const fa_half *, const float *, fa_half *, fa_index, fa_index);
    void (*prelu_vector_backward)(const fa_half *, const fa_half *, const float *, fa_half *,
                                  double *, fa_index);
    /* the type's +inf pattern and NaN quiet bit, for ReLU on the 16-bit
     * patterns where relu_family_forward is NULL (0: not used) */
    fa_half inf, quiet;
} fa_half_codec;

/* Elements per block: 1 KiB of float32 per buffer.  Short blocks keep the
 * traffic to the arrays steady: each block ends with a burst of stores to
 * output lines that are not yet in cache, and with 1024-element blocks that
 * burst (2 KiB of output) held up the next block's work -- bfloat16 GELU at
 * 2^24 elements took 1.5x its in-cache time per element (AVX-512, Zen 4),
 * and streaming the stores instead removed the loss.  256 elements were as
 * fast as in cache for both half types, forward and backward; 64 paid for
 * the per-block calls. */
#define FA_HALF_BLOCK 256

static inline uint32_t fa_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float fa_f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---- baseline: portable C ------------------------------------------------ */

/* float16 -> float32, exact.  Normal numbers: move the exponent and
 * mantissa into place and rebias with one multiply by 2^-112 (which also
 * maps the float16 inf/NaN exponent onto float32's); subnormals: build
 * 0.5 + m*2^-24 ... and subtract 0.5, exact.  Branch-free, so it
 * vectorises. */
static inline float fa_f16_to_f32(fa_half h)
{
    const uint32_t w = (uint32_t)h << 16;
    const uint32_t sign = w & 0x80000000u;
    const uint32_t two_w = w + w;
    const float normalized = fa_f32_from_bits((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
    const float denormalized = fa_f32_from_bits((two_w >> 17) | (126u << 23)) - 0.5f;
    const uint32_t bits = two_w < (1u << 27) ? fa_f32_bits(denormalized) : fa_f32_bits(normalized);
    return fa_f32_from_bits(sign | bits);
}

/* float32 -> float16, round to nearest even.  The float32 addition of a
 * power of two chosen from x's exponent makes the FPU round x's mantissa
 * at float16's precision (including float16's subnormal range); the
 * multiplies by 2^112 and 2^-110 first send everything beyond float16's
 * range to infinity.  NaN becomes a quiet NaN of the same sign. */
static inline fa_half fa_f32_to_f16(float f)
{
    float base = (fabsf(f) * 0x1.0p+112f) * 0x1.0p-110f;
    const uint32_t w = fa_f32_bits(f);
    const uint32_t shl1_w = w + w;
    const uint32_t sign = w & 0x80000000u;
    uint32_t bias = shl1_w & 0xFF000000u;
    if (bias < 0x71000000u)
        bias = 0x71000000u;
    base = fa_f32_from_bits((bias >> 1) + 0x07800000u) + base;
    const uint32_t bits = fa_f32_bits(base);
    const uint32_t nonsign = ((bits >> 13) & 0x00007C00u) + (bits & 0x00000FFFu);
    return (fa_half)((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

static inline float fa_bf16_to_f32(fa_half h) { return fa_f32_from_bits((uint32_t)h << 16); }

/* float32 -> bfloat16, round to nearest even: add 0x7FFF plus the lowest
 * kept bit, keep the upper half; a NaN keeps its upper half, made quiet. */
static inline fa_half fa_f32_to_bf16(float f)
{
    const uint32_t u = fa_f32_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u)
        return (fa_half)((u >> 16) | 0x0040u);
    return (fa_half)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

static void fa_f16_load_base(const fa_half *src, float *dst, fa_index n)
{
    for (fa_index i = 0; i < n; i++)
        dst[i] = fa_f16_to_f32(src[i]);
}

static void fa_f16_store_base(const float *src, fa_half *dst, fa_index n)
{
    for (fa_index i = 0; i < n; i++)
        dst[i] = fa_f32_to_f16(src[i]);
}

static void fa_bf16_load_base(const fa_half *src, float *dst, fa_index n)
{
    for (fa_index i = 0; i < n; i++)
        dst[i] = fa_bf16_to_f32(src[i]);
}

static void fa_bf16_store_base(const float *src, fa_half *dst, fa_index n)
{
    for (fa_index i = 0; i < n; i++)
        dst[i] = fa_f32_to_bf16(src[i]);
}

/* ReLU on the 16-bit patterns (any level): each result is x (or g), +0 or
 * the input's NaN with its quiet bit set -- what the float32 round trip gives
 * -- so no conversion is needed.  Branch-free, so compilers vectorise the
 * loops.  inf is the pattern of +inf, quiet the NaN quiet bit. */
static inline fa_half fa_half_relu1(fa_half h, fa_half inf, fa_half quiet)
{
    fa_half nan = (fa_half)-(fa_half)((fa_half)(h & 0x7FFFu) > inf);
    fa_half keep = (fa_half)(nan | (fa_half)((h >> 15) - 1u));   /* NaN or sign clear */
    return (fa_half)((h & keep) | (nan & quiet));
}

static inline fa_half fa_half_relu_backward1(fa_half g, fa_half v, fa_half inf, fa_half quiet)
{
    fa_half vm = (fa_half)(v & 0x7FFFu);
    fa_half vnan = (fa_half)-(fa_half)(vm > inf);
    fa_half gnan = (fa_half)-(fa_half)((fa_half)(g & 0x7FFFu) > inf);
    /* v > 0: sign clear, not zero, not NaN (no && : the loop stays branch-free) */
    fa_half positive = (fa_half)-(fa_half)(((v >> 15) == 0) & (vm != 0) & (vm <= inf));
    return (fa_half)(((g | (gnan & quiet)) & positive) | ((v | quiet) & vnan));
}

static void fa_half_relu_bits(const fa_half *x, fa_half *out, fa_index n, fa_half inf,
                              fa_half quiet)
{
    for (fa_index i = 0; i < n; i++)
        out[i] = fa_half_relu1(x[i], inf, quiet);
}

static void fa_half_relu_backward_bits(const fa_half *g, const fa_half *x, fa_half *out,
                                       fa_index n, fa_half inf, fa_half quiet)
{
    for (fa_index i = 0; i < n; i++)
        out[i] = fa_half_relu_backward1(g[i], x[i], inf, quiet);
}

/* ---- x86: F16C, AVX2, AVX-512 ------------------------------------------ */

#if FA_HAVE_X86_LEVELS
#include <immintrin.h>

#define FA_TARGET_F16C __attribute__((target("avx2,fma,f16c")))
#define FA_TARGET_AVX512_HALF __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))

FA_TARGET_F16C static void fa_f16_load_f16c(const fa_half *src, float *dst, fa_index n)
{
    fa_index i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(src + i + 8));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(a));
        _mm256_storeu_ps(dst + i + 8, _mm256_cvtph_ps(b));
    }
    for (; i < n; i++)
        dst[i] = _cvtsh_ss(src[i]);
}

FA_TARGET_F16C static void fa_f16_store_f16c(const float *src, fa_half *dst, fa_index n)
{
    fa_index i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i a = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
        __m128i b = _mm256_cvtps_ph(_mm256_loadu_ps(src + i + 8), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)(dst + i), a);
        _mm_storeu_si128((__m128i *)(dst + i + 8), b);
    }
    for (; i < n; i++)
        dst[i] = (fa_half)_cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}

__attribute__((target("avx2"))) static void fa_bf16_load_avx2(const fa_half *src, float *dst,
                                                              fa_index n)
{
    fa_index i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + i)));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_slli_epi32(w, 16));
    }
    for (; i < n; i++)
        dst[i] = fa_bf16_to_f32(src[i]);
}

/* 8 floats -> 8 bfloat16 in the low 16 bits of each 32-bit lane */
__attribute__((target("avx2"))) static inline __m256i fa_bf16_round_avx2(__m256 v)
{
    const __m256i u = _mm256_castps_si256(v);
    const __m256i hi = _mm256_srli_epi32(u, 16);
    const __m256i lsb = _mm256_and_si256(hi, _mm256_set1_epi32(1));
    const __m256i rounded =
        _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7FFF)), lsb), 16);
    const __m256i magnitude = _mm256_and_si256(u, _mm256_set1_epi32(0x7FFFFFFF));
    const __m256i nan = _mm256_cmpgt_epi32(magnitude, _mm256_set1_epi32(0x7F800000));
    const __m256i quiet = _mm256_or_si256(hi, _mm256_set1_epi32(0x40));
    return _mm256_blendv_epi8(rounded, quiet, nan);
}

__attribute__((target("avx2"))) static void fa_bf16_store_avx2(const float *src, fa_half *dst,
                                                               fa_index n)
{
    fa_index i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i a = fa_bf16_round_avx2(_mm256_loadu_ps(src + i));
        __m256i b = fa_bf16_round_avx2(_mm256_loadu_ps(src + i + 8));
        /* packus works per 128-bit lane: a0 b0 a1 b1 -> reorder the quadwords */
        __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xD8);
        _mm256_storeu_si256((__m256i *)(dst + i), packed);
    }
    for (; i < n; i++)
        dst[i] = fa_f32_to_bf16(src[i]);
}

FA_TARGET_AVX512_HALF static void fa_f16_load_avx512(const fa_half *src, float *dst, fa_index n)
{
    fa_index i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(src + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(src + i + 16));
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(a));
        _mm512_storeu_ps(dst + i + 16, _mm512_cvtph_ps(b));
    }
    for (; i < n; i += 16) {
        __mmask16 m = (__mmask16)(n - i >= 16 ? 0xFFFF : (1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, src + i)));
    }
}

FA_TARGET_AVX512_HALF static void fa_f16_store_avx512(const float *src, fa_half *dst, fa_index n)
{
    fa_index i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i a = _mm512_cvtps_ph(_mm512_loadu_ps(src + i),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256i b = _mm512_cvtps_ph(_mm512_loadu_ps(src + i + 16),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_storeu_si256((__m256i *)(dst + i), a);
        _mm256_storeu_si256((__m256i *)(dst + i + 16), b);
    }
    for (; i < n; i += 16) {
        __mmask16 m = (__mmask16)(n - i >= 16 ? 0xFFFF : (1u << (n - i)) - 1);
        __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, src + i),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_mask_storeu_epi16(dst + i, m, h);
    }
}

FA_TARGET_AVX512_HALF static void fa_bf16_load_avx512(const fa_half *src, float *dst, fa_index n)
{
    fa_index i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(src + i)));
        _mm512_storeu_si512(dst + i, _mm512_slli_epi32(w, 16));
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, src + i));
        _mm512_mask_storeu_epi32(dst + i, m, _mm512_slli_epi32(w, 16));
    }
}

/* float32 -> bfloat16 bits in the upper half of each 32-bit lane, rounded
 * to nearest even; NaN (found by vfpclassps) just made quiet. */
FA_TARGET_AVX512_HALF static inline __m512i
fa_bf16_round_avx512(__m512 v)
{
    const __m512i u = _mm512_castps_si512(v);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const __m512i rounded = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF)), lsb);
    const __mmask16 nan = _mm512_fpclass_ps_mask(v, 0x81);   /* QNaN | SNaN */
    return _mm512_mask_or_epi32(rounded, nan, u, _mm512_set1_epi32(0x00400000));
}

/* the upper halves of the 32-bit lanes of a (elements 0-15) and b (16-31), in order */
FA_TARGET_AVX512_HALF static inline __m512i fa_upper_halves(__m512i a, __m512i b)
{
    const __m512i odd = _mm512_set_epi16(63, 61, 59, 57, 55, 53, 51, 49, 47, 45, 43, 41, 39, 37,
                                         35, 33, 31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9,
                                         7, 5, 3, 1);
    return _mm512_permutex2var_epi16(a, odd, b);
}

FA_TARGET_AVX512_HALF static void
fa_bf16_store_avx512(const float *src, fa_half *dst, fa_index n)
{
    fa_index i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512i a = fa_bf16_round_avx512(_mm512_loadu_ps(src + i));
        __m512i b = fa_bf16_round_avx512(_mm512_loadu_ps(src + i + 16));
        _mm512_storeu_si512(dst + i, fa_upper_halves(a, b));
    }
    for (; i < n; i += 16) {
        __mmask16 m = (__mmask16)(n - i >= 16 ? 0xFFFF : (1u << (n - i)) - 1);
        __m512i r = _mm512_srli_epi32(fa_bf16_round_avx512(_mm512_maskz_loadu_ps(m, src + i)), 16);
        _mm256_mask_storeu_epi16(dst + i, m, _mm512_cvtepi32_epi16(r));
    }
}

#if (defined(__clang__) && __clang_major__ >= 9) || (!defined(__clang__) && __GNUC__ >= 10)
#define FA_HAVE_AVX512BF16_INTRINSICS 1
#define FA_TARGET_AVX512BF16 \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c,avx512bf16")))
/* vcvtne2ps2bf16 rounds to nearest even and quiets NaN, but flushes
 * subnormal inputs to zero whatever MXCSR says; a pair of vectors with a
 * subnormal (rare) takes the integer rounding instead. */
FA_TARGET_AVX512BF16 static void fa_bf16_store_avx512bf16(const float *src, fa_half *dst,
                                                          fa_index n)
{
    fa_index i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 a = _mm512_loadu_ps(src + i);
        __m512 b = _mm512_loadu_ps(src + i + 16);
        __m512i h = (__m512i)_mm512_cvtne2ps_pbh(b, a);   /* a in the low half */
        __mmask16 tiny = _mm512_fpclass_ps_mask(a, 0x20) | _mm512_fpclass_ps_mask(b, 0x20);
        if (tiny)
            h = fa_upper_halves(fa_bf16_round_avx512(a), fa_bf16_round_avx512(b));
        _mm512_storeu_si512(dst + i, h);
    }
    if (i < n)
        fa_bf16_store_avx512(src + i, dst + i, n - i);
}
#else
#define FA_HAVE_AVX512BF16_INTRINSICS 0
#endif

/* ---- ReLU family in registers (AVX-512) ----------------------------------
 * One template per 16-element load/store pair: the same float32 operations
 * as the loops of _loops.h, in the same order, so the results are those of
 * the blocked path bit for bit. */
FA_TARGET_AVX512_HALF static inline __m512 fa_f16_load16(const fa_half *p, __mmask16 m)
{
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}
FA_TARGET_AVX512_HALF static inline void fa_f16_store16(fa_half *p, __mmask16 m, __m512 v)
{
    _mm256_mask_storeu_epi16(p, m, _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
FA_TARGET_AVX512_HALF static inline __m512 fa_bf16_load16(const fa_half *p, __mmask16 m)
{
    return _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}
FA_TARGET_AVX512_HALF static inline void fa_bf16_store16(fa_half *p, __mmask16 m, __m512 v)
{
    _mm256_mask_storeu_epi16(p, m,
                             _mm512_cvtepi32_epi16(_mm512_srli_epi32(fa_bf16_round_avx512(v), 16)));
}

/* 32 results at once: two conversions in one instruction where the type allows */
FA_TARGET_AVX512_HALF static inline void fa_f16_store32(fa_half *p, __m512 a, __m512 b)
{
    fa_f16_store16(p, 0xFFFF, a);
    fa_f16_store16(p + 16, 0xFFFF, b);
}
FA_TARGET_AVX512_HALF static inline void fa_bf16_store32(fa_half *p, __m512 a, __m512 b)
{
    _mm512_storeu_si512(p, fa_upper_halves(fa_bf16_round_avx512(a), fa_bf16_round_avx512(b)));
}

#define FA_RELU_FAMILY_FORWARD(v)                                                                \
    (op == FA_RELU /* v <= 0 ? 0 : v */                                                          \
         ? _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LE_OQ), zero)                  \
         /* v > 0 ? v : v * slope */                                                             \
         : _mm512_mask_mov_ps(_mm512_mul_ps(v, slope), _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ), v))
/* v > 0 ? g : (v <= 0 ? (0 or g * slope) : v, the NaN) */
#define FA_RELU_FAMILY_BACKWARD(gi, v)                                                           \
    _mm512_mask_mov_ps(                                                                          \
        _mm512_mask_mov_ps(op == FA_RELU ? zero : _mm512_mul_ps(gi, slope),                      \
                           _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ), gi),                         \
        _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v)

#define FA_HALF_FUSED_AVX512(SUFFIX, TARGET, LOAD16, STORE16, STORE32)                           \
    TARGET static void fa_relu_family_forward_##SUFFIX(int op, const fa_half *x, fa_half *out,   \
                                                       fa_index n, double param)                 \
    {                                                                                            \
        const __m512 zero = _mm512_setzero_ps(), slope = _mm512_set1_ps((float)param);           \
        fa_index i = 0;                                                                          \
        for (; i + 32 <= n; i += 32) {                                                           \
            __m512 a = LOAD16(x + i, 0xFFFF), b = LOAD16(x + i + 16, 0xFFFF);                    \
            STORE32(out + i, FA_RELU_FAMILY_FORWARD(a), FA_RELU_FAMILY_FORWARD(b));              \
        }                                                                                        \
        for (; i < n; i += 16) {                                                                 \
            __mmask16 m = (__mmask16)(n - i >= 16 ? 0xFFFF : (1u << (n - i)) - 1);                \
            __m512 v = LOAD16(x + i, m);                                                         \
            STORE16(out + i, m, FA_RELU_FAMILY_FORWARD(v));                                      \
        }                                                                                        \
    }                                                                                            \
    TARGET static void fa_relu_family_backward_##SUFFIX(int op, const fa_half *g,                \
                                                        const fa_half *x, fa_half *out,          \
                                                        fa_index n, double param)                \
    {                                                                                            \
        const __m512 zero = _mm512_setzero_ps(), slope = _mm512_set1_ps((float)param);           \
        fa_index i = 0;                                                                          \
        for (; i + 32 <= n; i += 32) {                                                           \
            __m512 a = LOAD16(x + i, 0xFFFF), b = LOAD16(x + i + 16, 0xFFFF);                    \
            __m512 ga = LOAD16(g + i, 0xFFFF), gb = LOAD16(g + i + 16, 0xFFFF);                  \
            STORE32(out + i, FA_RELU_FAMILY_BACKWARD(ga, a), FA_RELU_FAMILY_BACKWARD(gb, b));    \
        }                                                                                        \
        for (; i < n; i += 16) {                                                                 \
            __mmask16 m = (__mmask16)(n - i >= 16 ? 0xFFFF : (1u << (n - i)) - 1);                \
            __m512 v = LOAD16(x + i, m), gi = LOAD16(g + i, m);                                  \
            STORE16(out + i, m, FA_RELU_FAMILY_BACKWARD(gi, v));                                 \
        }                                                                                        \
    }

/* PReLU per channel: the loops of _loops.h (fa_prelu_rows, fa_prelu_vector_backward)
 * with the conversions in registers; the float64 weight-gradient terms are
 * added to acc[i] one row at a time, as there. */
#define FA_HALF_PRELU_AVX512(SUFFIX, TARGET, LOAD16, STORE16)                                    \
    TARGET static void fa_prelu_rows_##SUFFIX(const fa_half *x, const float *w, fa_half *out,     \
                                              fa_index rows, fa_index channels)                  \
    {                                                                                            \
        const __m512 zero = _mm512_setzero_ps();                                                 \
        for (fa_index r = 0; r < rows; r++) {                                                    \
            const fa_half *xr = x + r * channels;                                                \
            fa_half *outr = out + r * channels;                                                  \
            for (fa_index i = 0; i < channels; i += 16) {                                        \
                __mmask16 m =                                                                    \
                    (__mmask16)(channels - i >= 16 ? 0xFFFF : (1u << (channels - i)) - 1);       \
                __m512 v = LOAD16(xr + i, m), wi = _mm512_maskz_loadu_ps(m, w + i);              \
                STORE16(outr + i, m,                                                             \
                        _mm512_mask_mov_ps(_mm512_mul_ps(v, wi),                                 \
                                           _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ), v));         \
            }                                                                                    \
        }                                                                                        \
    }                                                                                            \
    TARGET static void fa_prelu_vector_backward_##SUFFIX(const fa_half *g, const fa_half *x,     \
                                                         const float *w, fa_half *gin,           \
                                                         double *acc, fa_index n)                \
    {                                                                                            \
        const __m512 zero = _mm512_setzero_ps();                                                 \
        for (fa_index i = 0; i < n; i += 16) {                                                   \
            __mmask16 m = (__mmask16)(n - i >= 16 ? 0xFFFF : (1u << (n - i)) - 1);                \
            __m512 v = LOAD16(x + i, m), gi = LOAD16(g + i, m);                                  \
            __m512 wi = _mm512_maskz_loadu_ps(m, w + i);                                         \
            __mmask16 gt = _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ);                              \
            __m512 r = _mm512_mask_mov_ps(_mm512_mul_ps(gi, wi), gt, gi);                        \
            r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v);                \
            STORE16(gin + i, m, r);                                                              \
            /* acc[i] += v > 0 ? 0 : (double)v * (double)g, in two halves of 8 */                \
            __mmask16 add = (__mmask16)(~gt & m);                                                \
            __m512d vlo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));                            \
            __m512d glo = _mm512_cvtps_pd(_mm512_castps512_ps256(gi));                           \
            __m512d vhi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(               \
                _mm512_castps_pd(v), 1)));                                                       \
            __m512d ghi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(               \
                _mm512_castps_pd(gi), 1)));                                                      \
            __m512d alo = _mm512_maskz_loadu_pd((__mmask8)(m & 0xFF), acc + i);                  \
            __m512d ahi = _mm512_maskz_loadu_pd((__mmask8)(m >> 8), acc + i + 8);                \
            alo = _mm512_mask_add_pd(alo, (__mmask8)(add & 0xFF), alo, _mm512_mul_pd(vlo, glo)); \
            ahi = _mm512_mask_add_pd(ahi, (__mmask8)(add >> 8), ahi, _mm512_mul_pd(vhi, ghi));   \
            _mm512_mask_storeu_pd(acc + i, (__mmask8)(m & 0xFF), alo);                           \
            _mm512_mask_storeu_pd(acc + i + 8, (__mmask8)(m >> 8), ahi);                         \
        }                                                                                        \
    }

FA_HALF_PRELU_AVX512(f16_avx512, FA_TARGET_AVX512_HALF, fa_f16_load16, fa_f16_store16)
FA_HALF_PRELU_AVX512(bf16_avx512, FA_TARGET_AVX512_HALF, fa_bf16_load16, fa_bf16_store16)

FA_HALF_FUSED_AVX512(f16_avx512, FA_TARGET_AVX512_HALF, fa_f16_load16, fa_f16_store16,
                     fa_f16_store32)
FA_HALF_FUSED_AVX512(bf16_avx512, FA_TARGET_AVX512_HALF, fa_bf16_load16, fa_bf16_store16,
                     fa_bf16_store32)

#if FA_HAVE_AVX512BF16_INTRINSICS
FA_TARGET_AVX512BF16 static inline void fa_bf16_store16_bf16(fa_half *p, __mmask16 m, __m512 v)
{
    __m256i h = (__m256i)_mm512_cvtneps_pbh(v);
    if (_mm512_fpclass_ps_mask(v, 0x20))   /* a subnormal: see fa_bf16_store_avx512bf16 */
        h = _mm512_cvtepi32_epi16(_mm512_srli_epi32(fa_bf16_round_avx512(v), 16));
    _mm256_mask_storeu_epi16(p, m, h);
}
FA_TARGET_AVX512BF16 static inline void fa_bf16_store32_bf16(fa_half *p, __m512 a, __m512 b)
{
    __m512i h = (__m512i)_mm512_cvtne2ps_pbh(b, a);
    if (_mm512_fpclass_ps_mask(a, 0x20) | _mm512_fpclass_ps_mask(b, 0x20))
        h = fa_upper_halves(fa_bf16_round_avx512(a), fa_bf16_round_avx512(b));
    _mm512_storeu_si512(p, h);
}
FA_HALF_FUSED_AVX512(bf16_avx512bf16, FA_TARGET_AVX512BF16, fa_bf16_load16, fa_bf16_store16_bf16,
                     fa_bf16_store32_bf16)
FA_HALF_PRELU_AVX512(bf16_avx512bf16, FA_TARGET_AVX512BF16, fa_bf16_load16, fa_bf16_store16_bf16)
#endif
#endif /* FA_HAVE_X86_LEVELS */

/* ---- ReLU family and PReLU rows in registers (AVX2 + F16C) ----------------
 * The AVX-512 templates above with 8 lanes: the same float32 operations, so
 * the same bits as the blocked path; the last n % 16 elements go one by one
 * through the scalar conversions, which round the same way. */
#if FA_HAVE_X86_LEVELS
FA_TARGET_F16C static inline __m256 fa_f16_load8(const fa_half *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}
FA_TARGET_F16C static inline void fa_f16_store16_avx2(fa_half *p, __m256 a, __m256 b)
{
    _mm_storeu_si128((__m128i *)p, _mm256_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT));
    _mm_storeu_si128((__m128i *)(p + 8), _mm256_cvtps_ph(b, _MM_FROUND_TO_NEAREST_INT));
}
FA_TARGET_F16C static inline float fa_f16_to_f32_f16c(fa_half h) { return _cvtsh_ss(h); }
FA_TARGET_F16C static inline fa_half fa_f32_to_f16_f16c(float f)
{
    return (fa_half)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}
FA_TARGET_F16C static inline __m256 fa_bf16_load8(const fa_half *p)
{
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}
/* round to nearest even, for values known not to be NaN */
FA_TARGET_F16C static inline __m256i fa_bf16_round_number_avx2(__m256 v)
{
    const __m256i u = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    return _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7FFF)), lsb),
                             16);
}
FA_TARGET_F16C static inline void fa_bf16_store16_avx2(fa_half *p, __m256 a, __m256 b)
{
    __m256i ra, rb;
    /* NaNs are rare: one test for both vectors saves their quieting blends */
    if (__builtin_expect(_mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_UNORD_Q)) != 0, 0)) {
        ra = fa_bf16_round_avx2(a);
        rb = fa_bf16_round_avx2(b);
    } else {
        ra = fa_bf16_round_number_avx2(a);
        rb = fa_bf16_round_number_avx2(b);
    }
    /* packus works per 128-bit lane: a0 b0 a1 b1 -> reorder the quadwords */
    _mm256_storeu_si256((__m256i *)p, _mm256_permute4x64_epi64(_mm256_packus_epi32(ra, rb), 0xD8));
}

/* v <= 0 ? 0 : v (ReLU), v > 0 ? v : v * slope (Leaky ReLU) */
#define FA_RELU_FAMILY_FORWARD8(v)                                                               \
    (op == FA_RELU ? _mm256_blendv_ps(v, zero, _mm256_cmp_ps(v, zero, _CMP_LE_OQ))               \
                   : _mm256_blendv_ps(_mm256_mul_ps(v, slope), v, _mm256_cmp_ps(v, zero, _CMP_GT_OQ)))
#define FA_RELU_FAMILY_FORWARD1(v) (op == FA_RELU ? ((v) <= 0.0f ? 0.0f : (v)) : ((v) > 0.0f ? (v) : (v) * s))
/* v > 0 ? g : (v <= 0 ? (0 or g * slope) : v, the NaN) */
#define FA_RELU_FAMILY_BACKWARD8(gi, v)                                                          \
    _mm256_blendv_ps(_mm256_blendv_ps(op == FA_RELU ? zero : _mm256_mul_ps(gi, slope), gi,       \
                                      _mm256_cmp_ps(v, zero, _CMP_GT_OQ)),                       \
                     v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q))
#define FA_RELU_FAMILY_BACKWARD1(gi, v)                                                          \
    ((v) > 0.0f ? (gi) : ((v) <= 0.0f ? (op == FA_RELU ? 0.0f : (gi) * s) : (v)))

/* ReLU needs no arithmetic: each result is x (or g), +0 or a NaN of the
 * input, all exact in the half type, so it runs on the 16-bit patterns, 16
 * lanes at a time.  What the float32 round trip does to a NaN -- set its
 * quiet bit -- is done here too, so the bits are the blocked path's. */
#define FA_HALF_RELU16_LANES(INF, QUIET)                                                         \
    const __m256i inf = _mm256_set1_epi16(INF), quiet = _mm256_set1_epi16(QUIET);                \
    const __m256i magnitude = _mm256_set1_epi16(0x7FFF), zero16 = _mm256_setzero_si256()
/* the lanes of h that are NaN, and h with their quiet bit set */
#define FA_HALF_NAN16(h) _mm256_cmpgt_epi16(_mm256_and_si256(h, magnitude), inf)
#define FA_HALF_QUIET16(h, nan) _mm256_or_si256(h, _mm256_and_si256(nan, quiet))
/* the lanes where the value is > 0: sign clear, not zero, not NaN */
#define FA_HALF_POSITIVE16(h, nan)                                                               \
    _mm256_andnot_si256(_mm256_or_si256(nan, _mm256_cmpeq_epi16(h, zero16)),                     \
                        _mm256_cmpgt_epi16(h, zero16))

#define FA_HALF_RELU16_AVX2(SUFFIX, INF, QUIET)                                                  \
    FA_TARGET_F16C static void fa_relu16_forward_##SUFFIX(const fa_half *x, fa_half *out,        \
                                                          fa_index n)                            \
    {                                                                                            \
        FA_HALF_RELU16_LANES(INF, QUIET);                                                        \
        fa_index i = 0;                                                                          \
        (void)zero16;                                                                            \
        for (; i + 16 <= n; i += 16) {                                                           \
            __m256i h = _mm256_loadu_si256((const __m256i *)(x + i));                            \
            __m256i nan = FA_HALF_NAN16(h);                                                      \
            __m256i keep = _mm256_or_si256(nan, _mm256_cmpgt_epi16(h, _mm256_set1_epi16(-1)));   \
            _mm256_storeu_si256((__m256i *)(out + i),                                            \
                                FA_HALF_QUIET16(_mm256_and_si256(h, keep), nan));                \
        }                                                                                        \
        for (; i < n; i++)                                                                       \
            out[i] = fa_half_relu1(x[i], INF, QUIET);                                            \
    }                                                                                            \
    FA_TARGET_F16C static void fa_relu16_backward_##SUFFIX(const fa_half *g, const fa_half *x,   \
                                                           fa_half *out, fa_index n)             \
    {                                                                                            \
        FA_HALF_RELU16_LANES(INF, QUIET);                                                        \
        fa_index i = 0;                                                                          \
        for (; i + 16 <= n; i += 16) {                                                           \
            __m256i v = _mm256_loadu_si256((const __m256i *)(x + i));                            \
            __m256i gi = _mm256_loadu_si256((const __m256i *)(g + i));                           \
            __m256i vnan = FA_HALF_NAN16(v);                                                     \
            __m256i r = _mm256_and_si256(FA_HALF_QUIET16(gi, FA_HALF_NAN16(gi)),                 \
                                         FA_HALF_POSITIVE16(v, vnan));                           \
            r = _mm256_blendv_epi8(r, FA_HALF_QUIET16(v, vnan), vnan);                           \
            _mm256_storeu_si256((__m256i *)(out + i), r);                                        \
        }                                                                                        \
        for (; i < n; i++)                                                                       \
            out[i] = fa_half_relu_backward1(g[i], x[i], INF, QUIET);                             \
    }

FA_HALF_RELU16_AVX2(f16, 0x7C00, 0x0200)
FA_HALF_RELU16_AVX2(bf16, 0x7F80, 0x0040)

#define FA_HALF_FUSED_AVX2(SUFFIX, TYPE, LOAD8, STORE16, TO_F32, FROM_F32)                       \
    FA_TARGET_F16C static void fa_relu_family_forward_##SUFFIX(int op, const fa_half *x,         \
                                                               fa_half *out, fa_index n,         \
                                                               double param)                     \
    {                                                                                            \
        const __m256 zero = _mm256_setzero_ps(), slope = _mm256_set1_ps((float)param);           \
        const float s = (float)param;                                                            \
        fa_index i = 0;                                                                          \
        if (op == FA_RELU) {                                                                     \
            fa_relu16_forward_##TYPE(x, out, n);                                                 \
            return;                                                                              \
        }                                                                                        \
        for (; i + 16 <= n; i += 16) {                                                           \
            __m256 a = LOAD8(x + i), b = LOAD8(x + i + 8);                                       \
            STORE16(out + i, FA_RELU_FAMILY_FORWARD8(a), FA_RELU_FAMILY_FORWARD8(b));            \
        }                                                                                        \
        for (; i < n; i++) {                                                                     \
            float v = TO_F32(x[i]);                                                              \
            out[i] = FROM_F32(FA_RELU_FAMILY_FORWARD1(v));                                       \
        }                                                                                        \
    }                                                                                            \
    FA_TARGET_F16C static void fa_relu_family_backward_##SUFFIX(int op, const fa_half *g,        \
                                                                const fa_half *x, fa_half *out,  \
                                                                fa_index n, double param)        \
    {                                                                                            \
        const __m256 zero = _mm256_setzero_ps(), slope = _mm256_set1_ps((float)param);           \
        const float s = (float)param;                                                            \
        fa_index i = 0;                                                                          \
        if (op == FA_RELU) {                                                                     \
            fa_relu16_backward_##TYPE(g, x, out, n);                                             \
            return;                                                                              \
        }                                                                                        \
        for (; i + 16 <= n; i += 16) {                                                           \
            __m256 a = LOAD8(x + i), b = LOAD8(x + i + 8);                                       \
            __m256 ga = LOAD8(g + i), gb = LOAD8(g + i + 8);                                     \
            STORE16(out + i, FA_RELU_FAMILY_BACKWARD8(ga, a), FA_RELU_FAMILY_BACKWARD8(gb, b));  \
        }                                                                                        \
        for (; i < n; i++) {                                                                     \
            float v = TO_F32(x[i]), gi = TO_F32(g[i]);                                           \
            out[i] = FROM_F32(FA_RELU_FAMILY_BACKWARD1(gi, v));                                  \
        }                                                                                        \
    }                                                                                            \
    FA_TARGET_F16C static void fa_prelu_rows_##SUFFIX(const fa_half *x, const float *w,          \
                                                      fa_half *out, fa_index rows,               \
                                                      fa_index channels)                         \
    {                                                                                            \
        const __m256 zero = _mm256_setzero_ps();                                                 \
        for (fa_index r = 0; r < rows; r++) {                                                    \
            const fa_half *xr = x + r * channels;                                                \
            fa_half *outr = out + r * channels;                                                  \
            fa_index i = 0;                                                                      \
            for (; i + 16 <= channels; i += 16) {                                                \
                __m256 a = LOAD8(xr + i), b = LOAD8(xr + i + 8);                                 \
                __m256 wa = _mm256_loadu_ps(w + i), wb = _mm256_loadu_ps(w + i + 8);             \
                STORE16(outr + i,                                                                \
                        _mm256_blendv_ps(_mm256_mul_ps(a, wa), a, _mm256_cmp_ps(a, zero, _CMP_GT_OQ)), \
                        _mm256_blendv_ps(_mm256_mul_ps(b, wb), b, _mm256_cmp_ps(b, zero, _CMP_GT_OQ))); \
            }                                                                                    \
            for (; i < channels; i++) {                                                          \
                float v = TO_F32(xr[i]);                                                         \
                outr[i] = FROM_F32(v > 0.0f ? v : v * w[i]);                                     \
            }                                                                                    \
        }                                                                                        \
    }

FA_HALF_FUSED_AVX2(f16_avx2, f16, fa_f16_load8, fa_f16_store16_avx2, fa_f16_to_f32_f16c,
                   fa_f32_to_f16_f16c)
FA_HALF_FUSED_AVX2(bf16_avx2, bf16, fa_bf16_load8, fa_bf16_store16_avx2, fa_bf16_to_f32,
                   fa_f32_to_bf16)
#endif

/* ---- codec selection --------------------------------------------------- */

enum { FA_HALF_F16 = 0, FA_HALF_BF16 = 1 };

static const fa_half_codec fa_codec_f16_base = {"portable C", fa_f16_load_base, fa_f16_store_base,
                                                NULL, NULL, NULL, NULL, 0x7C00u, 0x0200u};
static const fa_half_codec fa_codec_bf16_base = {"portable C", fa_bf16_load_base,
                                                 fa_bf16_store_base, NULL, NULL, NULL, NULL,
                                                 0x7F80u, 0x0040u};
#if FA_HAVE_X86_LEVELS
static const fa_half_codec fa_codec_f16_f16c = {
    "F16C", fa_f16_load_f16c, fa_f16_store_f16c, fa_relu_family_forward_f16_avx2,
    fa_relu_family_backward_f16_avx2, fa_prelu_rows_f16_avx2, NULL};
static const fa_half_codec fa_codec_bf16_avx2 = {
    "AVX2 integer rounding", fa_bf16_load_avx2, fa_bf16_store_avx2,
    fa_relu_family_forward_bf16_avx2, fa_relu_family_backward_bf16_avx2, fa_prelu_rows_bf16_avx2,
    NULL};
static const fa_half_codec fa_codec_f16_avx512 = {
    "AVX-512F", fa_f16_load_avx512, fa_f16_store_avx512, fa_relu_family_forward_f16_avx512,
    fa_relu_family_backward_f16_avx512, fa_prelu_rows_f16_avx512,
    fa_prelu_vector_backward_f16_avx512};
static const fa_half_codec fa_codec_bf16_avx512 = {
    "AVX-512 integer rounding", fa_bf16_load_avx512, fa_bf16_store_avx512,
    fa_relu_family_forward_bf16_avx512, fa_relu_family_backward_bf16_avx512,
    fa_prelu_rows_bf16_avx512, fa_prelu_vector_backward_bf16_avx512};
#if FA_HAVE_AVX512BF16_INTRINSICS
static const fa_half_codec fa_codec_bf16_avx512bf16 = {
    "AVX512-BF16", fa_bf16_load_avx512, fa_bf16_store_avx512bf16,
    fa_relu_family_forward_bf16_avx512bf16, fa_relu_family_backward_bf16_avx512bf16,
    fa_prelu_rows_bf16_avx512bf16, fa_prelu_vector_backward_bf16_avx512bf16};
#endif
#endif

/* CPU features beyond a level's own, detected once; the tests can turn
 * AVX512-BF16 off to exercise the integer rounding on a machine that has it. */
static int fa_cpu_f16c = 0;
static int fa_cpu_avx512bf16 = 0;
static int fa_use_avx512bf16 = 0;

static int fa_half_init(void)
{
#if FA_HAVE_X86_LEVELS
    __builtin_cpu_init();
    fa_cpu_f16c = __builtin_cpu_supports("f16c") ? 1 : 0;
#if FA_HAVE_AVX512BF16_INTRINSICS
    fa_cpu_avx512bf16 = __builtin_cpu_supports("avx512bf16") ? 1 : 0;
#endif
#endif
    fa_use_avx512bf16 = fa_cpu_avx512bf16;
    return 0;
}

/* Turn the AVX512-BF16 instruction on or off (on only where the CPU has it);
 * returns whether it was on. */
static int fa_half_set_avx512bf16(int on)
{
    int previous = fa_use_avx512bf16;
    fa_use_avx512bf16 = on && fa_cpu_avx512bf16;
    return previous;
}

static const fa_half_codec *fa_half_codec_for(int level, int kind)
{
#if FA_HAVE_X86_LEVELS
    if (level >= FA_LEVEL_AVX512) {
        if (kind == FA_HALF_F16)
            return &fa_codec_f16_avx512;
#if FA_HAVE_AVX512BF16_INTRINSICS
        if (fa_use_avx512bf16)
            return &fa_codec_bf16_avx512bf16;
#endif
        return &fa_codec_bf16_avx512;
    }
    if (level == FA_LEVEL_AVX2) {
        if (kind == FA_HALF_F16)
            return fa_cpu_f16c ? &fa_codec_f16_f16c : &fa_codec_f16_base;
        return &fa_codec_bf16_avx2;
    }
#else
    (void)level;
#endif
    return kind == FA_HALF_F16 ? &fa_codec_f16_base : &fa_codec_bf16_base;
}

/* ---- blocked drivers: one thread's contiguous share ---------------------- */

#if defined(__GNUC__) || defined(__clang__)
#define FA_ALIGN64 __attribute__((aligned(64)))
#else
#define FA_ALIGN64
#endif

static void fa_half_forward(const fa_table *t, const fa_half_codec *c, int op, const fa_half *x,
                            fa_half *out, fa_index n, double param)
{
    float buf[FA_HALF_BLOCK] FA_ALIGN64;
    if ((op == FA_RELU || op == FA_LEAKY_RELU) && c->relu_family_forward) {
        c->relu_family_forward(op, x, out, n, param);
        return;
    }
    if (op == FA_RELU && c->inf) {
        fa_half_relu_bits(x, out, n, c->inf, c->quiet);
        return;
    }
    for (fa_index i = 0; i < n; i += FA_HALF_BLOCK) {
        fa_index m = n - i < FA_HALF_BLOCK ? n - i : FA_HALF_BLOCK;
        c->load(x + i, buf, m);
        t->forward_f32[op](buf, buf, m, param);
        c->store(buf, out + i, m);
    }
}

static void fa_half_backward(const fa_table *t, const fa_half_codec *c, int op, const fa_half *g,
                             const fa_half *x, fa_half *out, fa_index n, double param)
{
    float gbuf[FA_HALF_BLOCK] FA_ALIGN64;
    float xbuf[FA_HALF_BLOCK] FA_ALIGN64;
    if ((op == FA_RELU || op == FA_LEAKY_RELU) && c->relu_family_backward) {
        c->relu_family_backward(op, g, x, out, n, param);
        return;
    }
    if (op == FA_RELU && c->inf) {
        fa_half_relu_backward_bits(g, x, out, n, c->inf, c->quiet);
        return;
    }
    for (fa_index i = 0; i < n; i += FA_HALF_BLOCK) {
        fa_index m = n - i < FA_HALF_BLOCK ? n - i : FA_HALF_BLOCK;
        c->load(g + i, gbuf, m);
        c->load(x + i, xbuf, m);
        t->backward_f32[op](gbuf, xbuf, xbuf, m, param);
        c->store(xbuf, out + i, m);
    }
}

/* PReLU, channels last: rows x channels with the weight already in float32 */
static void fa_half_prelu_rows(const fa_table *t, const fa_half_codec *c, const fa_half *x,
                               const float *w, fa_half *out, fa_index rows, fa_index channels)
{
    float buf[FA_HALF_BLOCK] FA_ALIGN64;
    if (c->prelu_rows) {
        c->prelu_rows(x, w, out, rows, channels);
        return;
    }
    if (channels <= FA_HALF_BLOCK) {
        /* whole rows per block */
        fa_index per = FA_HALF_BLOCK / channels;
        for (fa_index r = 0; r < rows; r += per) {
            fa_index k = rows - r < per ? rows - r : per;
            c->load(x + r * channels, buf, k * channels);
            t->prelu_rows_f32(buf, w, buf, k, channels);
            c->store(buf, out + r * channels, k * channels);
        }
        return;
    }
    for (fa_index r = 0; r < rows; r++) {
        for (fa_index i = 0; i < channels; i += FA_HALF_BLOCK) {
            fa_index m = channels - i < FA_HALF_BLOCK ? channels - i : FA_HALF_BLOCK;
            c->load(x + r * channels + i, buf, m);
            t->prelu_rows_f32(buf, w + i, buf, 1, m);
            c->store(buf, out + r * channels + i, m);
        }
    }
}

/* PReLU backward for one row: grad_input, and grad_weight terms into acc */
static void fa_half_prelu_vector_backward(const fa_table *t, const fa_half_codec *c,
                                          const fa_half *g, const fa_half *x, const float *w,
                                          fa_half *gin, double *acc, fa_index n)
{
    float gbuf[FA_HALF_BLOCK] FA_ALIGN64;
    float xbuf[FA_HALF_BLOCK] FA_ALIGN64;
    if (c->prelu_vector_backward) {
        c->prelu_vector_backward(g, x, w, gin, acc, n);
        return;
    }
    for (fa_index i = 0; i < n; i += FA_HALF_BLOCK) {
        fa_index m = n - i < FA_HALF_BLOCK ? n - i : FA_HALF_BLOCK;
        c->load(g + i, gbuf, m);
        c->load(x + i, xbuf, m);
        t->prelu_vector_backward_f32(gbuf, xbuf, w + i, gbuf, acc + i, m);
        c->store(gbuf, gin + i, m);
    }
}

/* PReLU backward for a run of one slope; returns the grad_weight sum */
static double fa_half_prelu_run_backward(const fa_table *t, const fa_half_codec *c,
                                         const fa_half *g, const fa_half *x, double slope,
                                         fa_half *gin, fa_index n)
{
    float gbuf[FA_HALF_BLOCK] FA_ALIGN64;
    float xbuf[FA_HALF_BLOCK] FA_ALIGN64;
    double sum = 0.0;
    for (fa_index i = 0; i < n; i += FA_HALF_BLOCK) {
        fa_index m = n - i < FA_HALF_BLOCK ? n - i : FA_HALF_BLOCK;
        c->load(g + i, gbuf, m);
        c->load(x + i, xbuf, m);
        sum += t->prelu_run_backward_f32(gbuf, xbuf, slope, gbuf, m);
        c->store(gbuf, gin + i, m);
    }
    return sum;
}

/* a half-precision weight vector in float32 (exact) */
static void fa_half_to_f32(int kind, const fa_half *src, float *dst, fa_index n)
{
    if (kind == FA_HALF_F16)
        fa_f16_load_base(src, dst, n);
    else
        fa_bf16_load_base(src, dst, n);
}

#endif /* FASTACT_HALF_H */
