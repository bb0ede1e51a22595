/*
 * fastact/_loops.h -- the contiguous inner loops, written once and compiled
 * once per (element type, instruction-set level).
 *
 * This file is deliberately included several times by _dispatch.h, each time
 * with these macros defined:
 *   FA_T       element type (float or double)
 *   FA_TS      its suffix (f32 or f64), used to pick the element maths
 *   FA_ISA     the instruction-set suffix (base, avx2, avx512)
 *   FA_TARGET  a function attribute selecting that instruction set (may be empty)
 * and optionally FA_GELU_LOOPS_ELSEWHERE, when hand-vectorised GELU loops
 * (_gelu_x86.h) replace the generic ones for this type and level, or
 * FA_GELU_EXACT_ELSEWHERE, when only the exact form's are replaced.
 *
 * The loops are plain C that GCC and Clang vectorise at -O3 with
 * -fno-trapping-math; the per-element maths lives in _simd.h.  Comparisons are
 * written so that NaN inputs give NaN outputs (a NaN fails both "x > 0" and
 * "x <= 0").  No restrict qualifiers: out may be the very same buffer as an
 * input (in-place use), and the compilers version the loops for that.
 */

#define FA_CAT3_(a, b, c) a##_##b##_##c
#define FA_CAT3(a, b, c) FA_CAT3_(a, b, c)
#define FA_CAT2_(a, b) a##_##b
#define FA_CAT2(a, b) FA_CAT2_(a, b)
#define FA_LOOP(name) FA_CAT3(name, FA_TS, FA_ISA)
/* the element maths of this level: fa_gelu_f64 or, when _dispatch.h set
 * FA_MATH_SUFFIX (e.g. math_avx2), fa_gelu_f64_math_avx2 (see _simd.h) */
#ifdef FA_MATH_SUFFIX
#define FA_MATH(name) FA_CAT3(name, FA_TS, FA_MATH_SUFFIX)
#else
#define FA_MATH(name) FA_CAT2(name, FA_TS)
#endif

/* ---- unary loops: out[i] = f(x[i]; param) -------------------------------- */

FA_TARGET static void FA_LOOP(fa_relu)(const FA_T *x, FA_T *out, fa_index n, double param)
{
    (void)param;
    for (fa_index i = 0; i < n; i++) {
        FA_T v = x[i];
        out[i] = v <= (FA_T)0 ? (FA_T)0 : v;
    }
}

FA_TARGET static void FA_LOOP(fa_leaky_relu)(const FA_T *x, FA_T *out, fa_index n, double param)
{
    const FA_T slope = (FA_T)param;
    for (fa_index i = 0; i < n; i++) {
        FA_T v = x[i];
        out[i] = v > (FA_T)0 ? v : v * slope;
    }
}

#ifndef FA_GELU_LOOPS_ELSEWHERE
#ifndef FA_GELU_EXACT_ELSEWHERE /* (the baseline's float32 exact form: _gelu_sse2.h) */
FA_TARGET static void FA_LOOP(fa_gelu)(const FA_T *x, FA_T *out, fa_index n, double param)
{
    (void)param;
    for (fa_index i = 0; i < n; i++)
        out[i] = FA_MATH(fa_gelu)(x[i]);
}
#endif

FA_TARGET static void FA_LOOP(fa_gelu_tanh)(const FA_T *x, FA_T *out, fa_index n, double param)
{
    (void)param;
    for (fa_index i = 0; i < n; i++)
        out[i] = FA_MATH(fa_gelu_tanh)(x[i]);
}
#endif

/* ---- backward loops: out[i] = g[i] * f'(x[i]; param) ---------------------- */

FA_TARGET static void FA_LOOP(fa_relu_backward)(const FA_T *g, const FA_T *x, FA_T *out,
                                                fa_index n, double param)
{
    (void)param;
    for (fa_index i = 0; i < n; i++) {
        FA_T v = x[i], gi = g[i];     /* read g unconditionally: one plain vector load */
        out[i] = v > (FA_T)0 ? gi : (v <= (FA_T)0 ? (FA_T)0 : v);
    }
}

FA_TARGET static void FA_LOOP(fa_leaky_relu_backward)(const FA_T *g, const FA_T *x, FA_T *out,
                                                      fa_index n, double param)
{
    const FA_T slope = (FA_T)param;
    for (fa_index i = 0; i < n; i++) {
        FA_T v = x[i], gi = g[i];     /* (g[i] in the branches became two masked loads) */
        out[i] = v > (FA_T)0 ? gi : (v <= (FA_T)0 ? gi * slope : v);
    }
}

#ifndef FA_GELU_LOOPS_ELSEWHERE
#ifndef FA_GELU_EXACT_ELSEWHERE
FA_TARGET static void FA_LOOP(fa_gelu_backward)(const FA_T *g, const FA_T *x, FA_T *out,
                                                fa_index n, double param)
{
    (void)param;
    for (fa_index i = 0; i < n; i++)
        out[i] = g[i] * FA_MATH(fa_gelu_grad)(x[i]);
}
#endif

FA_TARGET static void FA_LOOP(fa_gelu_tanh_backward)(const FA_T *g, const FA_T *x, FA_T *out,
                                                     fa_index n, double param)
{
    (void)param;
    for (fa_index i = 0; i < n; i++)
        out[i] = g[i] * FA_MATH(fa_gelu_tanh_grad)(x[i]);
}
#endif

/* ---- PReLU with one slope per channel, channels last: rows x channels --- */

/* out is x itself or disjoint from x and w (fastact._ops copies otherwise),
 * so no iteration depends on another: telling the compiler spares the
 * inner loop its run-time overlap checks, paid once per row (a row of 256
 * channels is only 16-32 vector iterations). */
#if defined(__clang__)
#define FA_NO_LOOP_DEPENDENCIES _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define FA_NO_LOOP_DEPENDENCIES _Pragma("GCC ivdep")
#else
#define FA_NO_LOOP_DEPENDENCIES
#endif

FA_TARGET static void FA_LOOP(fa_prelu_rows)(const FA_T *x, const FA_T *w, FA_T *out,
                                             fa_index rows, fa_index channels)
{
    for (fa_index r = 0; r < rows; r++) {
        const FA_T *xr = x + r * channels;
        FA_T *outr = out + r * channels;
        FA_NO_LOOP_DEPENDENCIES
        for (fa_index i = 0; i < channels; i++) {
            FA_T v = xr[i], wi = w[i];
            outr[i] = v > (FA_T)0 ? v : v * wi;
        }
    }
}

/* grad_input for one row, and grad_weight terms added into acc[i] (double). */
FA_TARGET static void FA_LOOP(fa_prelu_vector_backward)(const FA_T *g, const FA_T *x, const FA_T *w,
                                                        FA_T *grad_input, double *acc, fa_index n)
{
#ifdef FA_NO_MASKED_LOADS
    /* Two passes over the row: GCC 12 does not vectorise one loop that mixes
     * this compare-and-select with the float -> double products at SSE2
     * ("control flow in loop"), and its scalar loop branches on the sign of
     * every element, 10x slower.  The acc pass comes first, so grad_input
     * could even alias g or x. */
    for (fa_index i = 0; i < n; i++) {
        FA_T v = x[i], gi = g[i];
        acc[i] += v > (FA_T)0 ? 0.0 : (double)v * (double)gi;
    }
    for (fa_index i = 0; i < n; i++) {
        FA_T v = x[i], gi = g[i], wi = w[i];
        grad_input[i] = v > (FA_T)0 ? gi : (v <= (FA_T)0 ? gi * wi : v);
    }
#else
    for (fa_index i = 0; i < n; i++) {
        FA_T v = x[i];
        FA_T gi = g[i];
        grad_input[i] = v > (FA_T)0 ? gi : (v <= (FA_T)0 ? gi * w[i] : v);
        acc[i] += v > (FA_T)0 ? 0.0 : (double)v * (double)gi;
    }
#endif
}

/*
 * grad_input for a run that shares one slope, returning the sum of the
 * grad_weight terms.  FA_LANES partial sums in a fixed order keep the result
 * independent of how the caller splits the work, and let the compiler use
 * vector registers without reassociating (which it may not do by itself).
 */
#define FA_LANES 8
FA_TARGET static double FA_LOOP(fa_prelu_run_backward)(const FA_T *g, const FA_T *x, double param,
                                                       FA_T *grad_input, fa_index n)
{
    const FA_T slope = (FA_T)param;
    double lane[FA_LANES] = {0, 0, 0, 0, 0, 0, 0, 0};
    fa_index i = 0;
    for (; i + FA_LANES <= n; i += FA_LANES) {
        for (int k = 0; k < FA_LANES; k++) {
            FA_T v = x[i + k];
            FA_T gi = g[i + k];
            grad_input[i + k] = v > (FA_T)0 ? gi : (v <= (FA_T)0 ? gi * slope : v);
            lane[k] += v > (FA_T)0 ? 0.0 : (double)v * (double)gi;
        }
    }
    for (int k = 0; i < n; i++, k++) {
        FA_T v = x[i];
        FA_T gi = g[i];
        grad_input[i] = v > (FA_T)0 ? gi : (v <= (FA_T)0 ? gi * slope : v);
        lane[k] += v > (FA_T)0 ? 0.0 : (double)v * (double)gi;
    }
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

#undef FA_LANES
#undef FA_NO_LOOP_DEPENDENCIES
#undef FA_LOOP
#undef FA_MATH
