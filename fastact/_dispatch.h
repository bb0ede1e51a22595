/*
 * fastact/_dispatch.h -- one portable build, the best loops for this CPU.
 *
 * The loops in _loops.h are compiled three times on x86-64 with GCC or Clang:
 * for the baseline (SSE2), for AVX2+FMA and for AVX-512, using function
 * target attributes, so the shipped binary needs no -march flag.  At import
 * the Cython module asks fa_detect_level() what the CPU can run and installs
 * the matching table; FASTACT_SIMD (read in Python) can force a lower level.
 * Other compilers and architectures get the baseline table only.
 *
 * Also here: thin OpenMP shims, so the Cython code builds with or without
 * OpenMP.
 */
#ifndef FASTACT_DISPATCH_H
#define FASTACT_DISPATCH_H

#include <stddef.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "_simd.h"

typedef ptrdiff_t fa_index;

enum { FA_LEVEL_BASELINE = 0, FA_LEVEL_AVX2 = 1, FA_LEVEL_AVX512 = 2, FA_NUM_LEVELS = 3 };
enum { FA_RELU = 0, FA_LEAKY_RELU = 1, FA_GELU = 2, FA_GELU_TANH = 3, FA_NUM_OPS = 4 };

typedef void (*fa_unary_f32)(const float *, float *, fa_index, double);
typedef void (*fa_unary_f64)(const double *, double *, fa_index, double);
typedef void (*fa_binary_f32)(const float *, const float *, float *, fa_index, double);
typedef void (*fa_binary_f64)(const double *, const double *, double *, fa_index, double);
typedef void (*fa_prelu_rows_f32)(const float *, const float *, float *, fa_index, fa_index);
typedef void (*fa_prelu_rows_f64)(const double *, const double *, double *, fa_index, fa_index);
typedef void (*fa_prelu_vector_backward_f32)(const float *, const float *, const float *, float *,
                                             double *, fa_index);
typedef void (*fa_prelu_vector_backward_f64)(const double *, const double *, const double *,
                                             double *, double *, fa_index);
typedef double (*fa_prelu_run_backward_f32)(const float *, const float *, double, float *, fa_index);
typedef double (*fa_prelu_run_backward_f64)(const double *, const double *, double, double *,
                                            fa_index);

/* Every loop of one instruction-set level.  Forward and backward are indexed
 * by the FA_RELU.. enum above. */
typedef struct {
    const char *name;
    fa_unary_f32 forward_f32[FA_NUM_OPS];
    fa_unary_f64 forward_f64[FA_NUM_OPS];
    fa_binary_f32 backward_f32[FA_NUM_OPS];
    fa_binary_f64 backward_f64[FA_NUM_OPS];
    fa_prelu_rows_f32 prelu_rows_f32;
    fa_prelu_rows_f64 prelu_rows_f64;
    fa_prelu_vector_backward_f32 prelu_vector_backward_f32;
    fa_prelu_vector_backward_f64 prelu_vector_backward_f64;
    fa_prelu_run_backward_f32 prelu_run_backward_f32;
    fa_prelu_run_backward_f64 prelu_run_backward_f64;
    void (*stream_store)(const void *, void *, fa_index);
} fa_table;

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define FA_HAVE_X86_LEVELS 1
#else
#define FA_HAVE_X86_LEVELS 0
#endif

/* ---- instantiate the loops ----------------------------------------------- */

#include "_gelu_sse2.h" /* SSE2 float32 exact GELU for the baseline: fa_gelu_f32_sse2, ... */

#define FA_ISA base
#define FA_TARGET
#define FA_NO_MASKED_LOADS  /* SSE2: a conditional load stops GCC's vectoriser */
#define FA_T float
#define FA_TS f32
#if FA_HAVE_SSE2_GELU
#define FA_GELU_EXACT_ELSEWHERE
#endif
#include "_loops.h"
#undef FA_GELU_EXACT_ELSEWHERE
#undef FA_T
#undef FA_TS
#define FA_T double
#define FA_TS f64
#include "_loops.h"
#undef FA_T
#undef FA_TS
#undef FA_ISA
#undef FA_TARGET
#undef FA_NO_MASKED_LOADS

#if FA_HAVE_X86_LEVELS
#define FA_ISA avx2
#define FA_TARGET __attribute__((target("avx2,fma")))
#define FA_MATH_SUFFIX math_avx2   /* _simd.h's element functions again, with fma() */
#define FA_MATH_FMA 1
#define FA_MATH_ATTR FA_TARGET
#include "_simd.h"
#define FA_T float
#define FA_TS f32
#define FA_GELU_LOOPS_ELSEWHERE /* float32 GELU comes from _gelu_x86.h here */
#include "_loops.h"
#undef FA_GELU_LOOPS_ELSEWHERE
#undef FA_T
#undef FA_TS
#define FA_T double
#define FA_TS f64
#include "_loops.h"
#undef FA_T
#undef FA_TS
#undef FA_ISA
#undef FA_TARGET
#undef FA_MATH_SUFFIX

#define FA_ISA avx512
#if defined(__clang__) /* clang rejects prefer-vector-width and would drop the whole attribute */
#define FA_TARGET __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma"), min_vector_width(512)))
#else
#define FA_TARGET __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma,prefer-vector-width=512")))
#endif
#define FA_MATH_SUFFIX math_avx512
#include "_simd.h"
#define FA_T float
#define FA_TS f32
#define FA_GELU_LOOPS_ELSEWHERE /* float32 GELU comes from _gelu_x86.h here */
#include "_loops.h"
#undef FA_GELU_LOOPS_ELSEWHERE
#undef FA_T
#undef FA_TS
#define FA_T double
#define FA_TS f64
#define FA_GELU_LOOPS_ELSEWHERE /* float64 GELU comes from _gelu_f64_x86.h here */
#include "_loops.h"
#undef FA_GELU_LOOPS_ELSEWHERE
#undef FA_T
#undef FA_TS
#undef FA_ISA
#undef FA_TARGET
#undef FA_MATH_SUFFIX
#undef FA_MATH_FMA
#undef FA_MATH_ATTR
#endif

#if FA_HAVE_X86_LEVELS
#include "_gelu_x86.h"   /* hand-vectorised float32 GELU: fa_gelu_f32_avx512_vec, ... */
#include "_gelu_f64_x86.h" /* hand-vectorised float64 GELU: fa_gelu_f64_avx512_vec, ... */
#endif
#include "_gelu_f64_sse2.h" /* its near path in SSE2 and AVX2; defines FA_GELU64_base, _avx2 */

/* ---- streaming stores ------------------------------------------------------
 * dst[0..bytes) = src[0..bytes) with non-temporal stores, dst 64-byte
 * aligned: for outputs far larger than the caches, writing around them saves
 * reading each destination line before overwriting it (a third of a
 * backward pass's memory traffic).  The sfence makes the stores visible
 * before the caller's threads join. */
#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
static void fa_stream_store_base(const void *src, void *dst, fa_index bytes)
{
    const char *s = (const char *)src;
    char *d = (char *)dst;
    fa_index i = 0;
    for (; i + 16 <= bytes; i += 16)
        _mm_stream_si128((__m128i *)(d + i), _mm_loadu_si128((const __m128i *)(s + i)));
    memcpy(d + i, s + i, (size_t)(bytes - i));
    _mm_sfence();
}
#else
static void fa_stream_store_base(const void *src, void *dst, fa_index bytes)
{
    memcpy(dst, src, (size_t)bytes);
}
#endif
#if FA_HAVE_X86_LEVELS
__attribute__((target("avx2"))) static void fa_stream_store_avx2(const void *src, void *dst,
                                                                 fa_index bytes)
{
    const char *s = (const char *)src;
    char *d = (char *)dst;
    fa_index i = 0;
    for (; i + 32 <= bytes; i += 32)
        _mm256_stream_si256((__m256i *)(d + i), _mm256_loadu_si256((const __m256i *)(s + i)));
    memcpy(d + i, s + i, (size_t)(bytes - i));
    _mm_sfence();
}
__attribute__((target("avx512f"))) static void fa_stream_store_avx512(const void *src, void *dst,
                                                                     fa_index bytes)
{
    const char *s = (const char *)src;
    char *d = (char *)dst;
    fa_index i = 0;
    for (; i + 64 <= bytes; i += 64)
        _mm512_stream_si512((__m512i *)(d + i), _mm512_loadu_si512(s + i));
    memcpy(d + i, s + i, (size_t)(bytes - i));
    _mm_sfence();
}
#endif

/* float32 GELU loops of a level: _gelu_sse2.h's (base) or _gelu_x86.h's */
#define FA_GELU32_base(name) FA_GS_LOOP32(name)
#define FA_GELU32_avx2(name) name##_f32_avx2_vec
#define FA_GELU32_avx512(name) name##_f32_avx512_vec
/* float64 GELU loops of a level: _gelu_f64_sse2.h's (base, avx2) or _gelu_f64_x86.h's */
#define FA_GELU64_avx512(name) name##_f64_avx512_vec

#define FA_TABLE(isa)                                                                            \
    {                                                                                            \
        #isa,                                                                                    \
        {fa_relu_f32_##isa, fa_leaky_relu_f32_##isa, FA_GELU32_##isa(fa_gelu),                   \
         FA_GELU32_##isa(fa_gelu_tanh)},                                                         \
        {fa_relu_f64_##isa, fa_leaky_relu_f64_##isa, FA_GELU64_##isa(fa_gelu),                   \
         FA_GELU64_##isa(fa_gelu_tanh)},                                                         \
        {fa_relu_backward_f32_##isa, fa_leaky_relu_backward_f32_##isa,                           \
         FA_GELU32_##isa(fa_gelu_backward), FA_GELU32_##isa(fa_gelu_tanh_backward)},             \
        {fa_relu_backward_f64_##isa, fa_leaky_relu_backward_f64_##isa,                           \
         FA_GELU64_##isa(fa_gelu_backward), FA_GELU64_##isa(fa_gelu_tanh_backward)},              \
        fa_prelu_rows_f32_##isa, fa_prelu_rows_f64_##isa,                                        \
        fa_prelu_vector_backward_f32_##isa, fa_prelu_vector_backward_f64_##isa,                  \
        fa_prelu_run_backward_f32_##isa, fa_prelu_run_backward_f64_##isa,                        \
        fa_stream_store_##isa,                                                                   \
    }

static const fa_table fa_tables[FA_NUM_LEVELS] = {
    FA_TABLE(base),
#if FA_HAVE_X86_LEVELS
    FA_TABLE(avx2),
    FA_TABLE(avx512),
#else
    FA_TABLE(base),
    FA_TABLE(base),
#endif
};

/* The highest level this CPU (and its OS, for the wider registers) can run. */
static int fa_detect_level(void)
{
#if FA_HAVE_X86_LEVELS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        return FA_LEVEL_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return FA_LEVEL_AVX2;
#endif
    return FA_LEVEL_BASELINE;
}

static int fa_levels_compiled(void) { return FA_HAVE_X86_LEVELS ? FA_NUM_LEVELS : 1; }

static const fa_table *fa_table_for(int level)
{
    if (level < 0 || level >= FA_NUM_LEVELS)
        level = FA_LEVEL_BASELINE;
    return &fa_tables[level];
}

#include "_half.h" /* float16 and bfloat16 through the float32 loops */

/* ---- OpenMP shims --------------------------------------------------------- */

static int fa_omp_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static void fa_omp_set_threads(int n)
{
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

static int fa_omp_in_parallel(void)
{
#ifdef _OPENMP
    return omp_in_parallel();
#else
    return 0;
#endif
}

#endif /* FASTACT_DISPATCH_H */
