/* Hot loops of fastact/nn/_fused.pyx, in plain C so that the compiler
 * vectorises them (restrict pointers, no memoryview indexing).
 *
 * Each loop is generated for float and double by FA_DEFINE(T, SUF, SQRT, TINY).
 * On x86-64 Linux with GCC the loops are also compiled for AVX+FMA and that
 * clone is chosen at load time where the CPU has FMA (target_clones; the
 * "fma" target implies AVX).  Note: an "arch=haswell" clone would be wrong,
 * GCC dispatches it only on CPUs that *are* Haswell.  Elsewhere only the
 * portable build exists.  Nothing here allocates memory.
 */
#ifndef FASTACT_NN_FUSED_IMPL_H
#define FASTACT_NN_FUSED_IMPL_H

#include <float.h>
#include <math.h>
#include <stddef.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && (__GNUC__ >= 8)
#define FA_CLONES __attribute__((target_clones("fma", "default")))
#else
#define FA_CLONES
#endif

#if defined(__GNUC__) || defined(__clang__)
#define FA_RESTRICT __restrict__
#elif defined(_MSC_VER)
#define FA_RESTRICT __restrict
#else
#define FA_RESTRICT
#endif

#define FA_ACT_RELU 0
#define FA_ACT_LEAKY 1
#define FA_ACT_PRELU 2

#define FA_DEFINE(T, SUF, SQRT, TINY)                                                   \
                                                                                        \
/* Adam (PyTorch's maths); moments below the smallest normal are flushed. */          \
FA_CLONES static void fa_adam_##SUF(T *FA_RESTRICT p, const T *FA_RESTRICT g,          \
                                    T *FA_RESTRICT m, T *FA_RESTRICT v, ptrdiff_t n,    \
                                    T step, T b1, T b2, T c1, T c2, T inv_sqrt_bc2,     \
                                    T eps, T wd)                                        \
{                                                                                       \
    ptrdiff_t i;                                                                        \
    if (wd != 0) {                                                                      \
        for (i = 0; i < n; i++) {                                                       \
            T gi = g[i] + wd * p[i];                                                    \
            T mi = b1 * m[i] + c1 * gi;                                                 \
            T vi = b2 * v[i] + c2 * (gi * gi);                                          \
            mi = (mi > TINY || mi < -TINY) ? mi : (T)0;                                 \
            vi = vi > TINY ? vi : (T)0;                                                 \
            m[i] = mi;                                                                  \
            v[i] = vi;                                                                  \
            p[i] = p[i] - step * (mi / (SQRT(vi) * inv_sqrt_bc2 + eps));                \
        }                                                                               \
    } else {                                                                            \
        for (i = 0; i < n; i++) {                                                       \
            T gi = g[i];                                                                \
            T mi = b1 * m[i] + c1 * gi;                                                 \
            T vi = b2 * v[i] + c2 * (gi * gi);                                          \
            mi = (mi > TINY || mi < -TINY) ? mi : (T)0;                                 \
            vi = vi > TINY ? vi : (T)0;                                                 \
            m[i] = mi;                                                                  \
            v[i] = vi;                                                                  \
            p[i] = p[i] - step * (mi / (SQRT(vi) * inv_sqrt_bc2 + eps));                \
        }                                                                               \
    }                                                                                   \
}                                                                                       \
                                                                                        \
/* SGD with momentum (PyTorch's maths). */                                             \
FA_CLONES static void fa_sgd_##SUF(T *FA_RESTRICT p, const T *FA_RESTRICT g,           \
                                   T *FA_RESTRICT buf, ptrdiff_t n, T lr, T mu,         \
                                   T damp, T wd, int nesterov, int first)               \
{                                                                                       \
    ptrdiff_t i;                                                                        \
    if (mu == 0) {                                                                      \
        for (i = 0; i < n; i++)                                                         \
            p[i] = p[i] - lr * (g[i] + wd * p[i]);                                      \
        return;                                                                         \
    }                                                                                   \
    for (i = 0; i < n; i++) {                                                           \
        T gi = g[i] + wd * p[i];                                                        \
        T bi = first ? gi : mu * buf[i] + damp * gi;                                    \
        bi = (bi > TINY || bi < -TINY) ? bi : (T)0;                                     \
        buf[i] = bi;                                                                    \
        p[i] = p[i] - lr * (nesterov ? gi + mu * bi : bi);                              \
    }                                                                                   \
}                                                                                       \
                                                                                        \
/* z += bias (row-wise); out = act(z).  out must not overlap z. */                            \
FA_CLONES static void fa_bias_act_##SUF(T *z, const T *FA_RESTRICT bias, T *out,       \
                                        ptrdiff_t rows, ptrdiff_t cols, int kind,       \
                                        T slope, const T *FA_RESTRICT w, int shared)    \
{                                                                                       \
    ptrdiff_t i, j;                                                                     \
    for (i = 0; i < rows; i++) {                                                        \
        T *FA_RESTRICT zr = z + i * cols;                                               \
        T *FA_RESTRICT orow = out + i * cols;                                           \
        if (kind == FA_ACT_RELU) {                                                      \
            for (j = 0; j < cols; j++) {                                                \
                T t = zr[j] + bias[j];                                                  \
                zr[j] = t;                                                              \
                orow[j] = t > 0 ? t : (T)0;                                             \
            }                                                                           \
        } else if (kind == FA_ACT_LEAKY || shared) {                                    \
            T s = kind == FA_ACT_LEAKY ? slope : w[0];                                  \
            for (j = 0; j < cols; j++) {                                                \
                T t = zr[j] + bias[j];                                                  \
                zr[j] = t;                                                              \
                orow[j] = t > 0 ? t : s * t;                                            \
            }                                                                           \
        } else {                                                                        \
            for (j = 0; j < cols; j++) {                                                \
                T t = zr[j] + bias[j];                                                  \
                zr[j] = t;                                                              \
                orow[j] = t > 0 ? t : w[j] * t;                                         \
            }                                                                           \
        }                                                                               \
    }                                                                                   \
}                                                                                       \
                                                                                        \
/* gz = act'(z) * g; gb = column sums of gz; for prelu gw = sums of g*min(z,0).        \
 * gz must not overlap g or z. */                                                                  \
FA_CLONES static void fa_act_bias_back_##SUF(const T *g, const T *FA_RESTRICT z,       \
                                             T *gz, T *FA_RESTRICT gb,                  \
                                             ptrdiff_t rows, ptrdiff_t cols, int kind,  \
                                             T slope, const T *FA_RESTRICT w,           \
                                             T *FA_RESTRICT gw, int shared)             \
{                                                                                       \
    ptrdiff_t i, j;                                                                     \
    for (j = 0; j < cols; j++) gb[j] = 0;                                               \
    if (kind == FA_ACT_PRELU) {                                                         \
        ptrdiff_t nw = shared ? 1 : cols;                                               \
        for (j = 0; j < nw; j++) gw[j] = 0;                                             \
    }                                                                                   \
    for (i = 0; i < rows; i++) {                                                        \
        const T *FA_RESTRICT gr = g + i * cols;                                         \
        const T *FA_RESTRICT zr = z + i * cols;                                         \
        T *FA_RESTRICT out = gz + i * cols;                                             \
        if (kind == FA_ACT_RELU) {                                                      \
            for (j = 0; j < cols; j++) {                                                \
                T t = zr[j] > 0 ? gr[j] : (T)0;                                         \
                out[j] = t;                                                             \
                gb[j] += t;                                                             \
            }                                                                           \
        } else if (kind == FA_ACT_LEAKY) {                                              \
            for (j = 0; j < cols; j++) {                                                \
                T t = zr[j] > 0 ? gr[j] : slope * gr[j];                                \
                out[j] = t;                                                             \
                gb[j] += t;                                                             \
            }                                                                           \
        } else if (shared) {                                                            \
            T s = w[0], acc = 0;                                                        \
            for (j = 0; j < cols; j++) {                                                \
                T zv = zr[j], gv = gr[j];                                               \
                acc += zv > 0 ? (T)0 : gv * zv;                                         \
                T t = zv > 0 ? gv : s * gv;                                             \
                out[j] = t;                                                             \
                gb[j] += t;                                                             \
            }                                                                           \
            gw[0] += acc;                                                               \
        } else {                                                                        \
            for (j = 0; j < cols; j++) {                                                \
                T zv = zr[j], gv = gr[j];                                               \
                gw[j] += zv > 0 ? (T)0 : gv * zv;                                       \
                T t = zv > 0 ? gv : w[j] * gv;                                          \
                out[j] = t;                                                             \
                gb[j] += t;                                                             \
            }                                                                           \
        }                                                                               \
    }                                                                                   \
}                                                                                       \
                                                                                        \
FA_CLONES static void fa_bias_add_##SUF(T *FA_RESTRICT z, const T *FA_RESTRICT bias,   \
                                        ptrdiff_t rows, ptrdiff_t cols)                 \
{                                                                                       \
    ptrdiff_t i, j;                                                                     \
    for (i = 0; i < rows; i++)                                                          \
        for (j = 0; j < cols; j++)                                                      \
            z[i * cols + j] += bias[j];                                                 \
}                                                                                       \
                                                                                        \
FA_CLONES static void fa_column_sums_##SUF(const T *FA_RESTRICT a, T *FA_RESTRICT out, \
                                           ptrdiff_t rows, ptrdiff_t cols)              \
{                                                                                       \
    ptrdiff_t i, j;                                                                     \
    for (j = 0; j < cols; j++) out[j] = 0;                                              \
    for (i = 0; i < rows; i++)                                                          \
        for (j = 0; j < cols; j++)                                                      \
            out[j] += a[i * cols + j];                                                  \
}                                                                                       \
                                                                                        \
/* Values below the smallest normal number (subnormals) become zero. */                \
FA_CLONES static void fa_flush_##SUF(T *FA_RESTRICT a, ptrdiff_t n)                    \
{                                                                                       \
    ptrdiff_t i;                                                                        \
    for (i = 0; i < n; i++) {                                                           \
        T t = a[i];                                                                     \
        a[i] = (t > TINY || t < -TINY) ? t : (T)0;                                      \
    }                                                                                   \
}                                                                                       \
                                                                                        \
/* Flush subnormals of a to zero, and out = column sums of a. */                       \
FA_CLONES static void fa_flush_column_sums_##SUF(T *FA_RESTRICT a, T *FA_RESTRICT out, \
                                                 ptrdiff_t rows, ptrdiff_t cols)        \
{                                                                                       \
    ptrdiff_t i, j;                                                                     \
    for (j = 0; j < cols; j++) out[j] = 0;                                              \
    for (i = 0; i < rows; i++)                                                          \
        for (j = 0; j < cols; j++) {                                                    \
            T t = a[i * cols + j];                                                      \
            t = (t > TINY || t < -TINY) ? t : (T)0;                                     \
            a[i * cols + j] = t;                                                        \
            out[j] += t;                                                                \
        }                                                                               \
}

FA_DEFINE(float, f32, sqrtf, FLT_MIN)
FA_DEFINE(double, f64, sqrt, DBL_MIN)

#endif /* FASTACT_NN_FUSED_IMPL_H */
