# cython: language_level=3
"""Fused single-pass loops for the fastact.nn trainer.

Each function does in one pass over memory what would otherwise take several
NumPy calls (and temporaries): the Adam and SGD updates, bias + activation
(forward) and activation gradient + bias gradient (backward) for the
piecewise-linear activations, and softmax cross-entropy with its gradient.
The loops themselves are plain C in _fused_impl.h (vectorised, with an
AVX+FMA clone chosen at load time where the toolchain supports it).

All arrays are C-contiguous and of one floating type (float32 or float64);
output arrays must not overlap the inputs.  The Python layer
(fastact/nn/*.py) checks shapes and dtypes; these functions check lengths
again and raise ValueError rather than touch memory out of bounds.
Nothing here allocates an array.
"""

from libc.math cimport exp, log, sqrt

cdef extern from "_fused_impl.h" nogil:
    void fa_adam_f32(float *p, const float *g, float *m, float *v, Py_ssize_t n,
                     float step, float b1, float b2, float c1, float c2,
                     float inv_sqrt_bc2, float eps, float wd)
    void fa_adam_f64(double *p, const double *g, double *m, double *v, Py_ssize_t n,
                     double step, double b1, double b2, double c1, double c2,
                     double inv_sqrt_bc2, double eps, double wd)
    void fa_sgd_f32(float *p, const float *g, float *buf, Py_ssize_t n, float lr,
                    float mu, float damp, float wd, int nesterov, int first)
    void fa_sgd_f64(double *p, const double *g, double *buf, Py_ssize_t n, double lr,
                    double mu, double damp, double wd, int nesterov, int first)
    void fa_bias_act_f32(float *z, const float *bias, float *out, Py_ssize_t rows,
                         Py_ssize_t cols, int kind, float slope, const float *w, int shared)
    void fa_bias_act_f64(double *z, const double *bias, double *out, Py_ssize_t rows,
                         Py_ssize_t cols, int kind, double slope, const double *w, int shared)
    void fa_act_bias_back_f32(const float *g, const float *z, float *gz, float *gb,
                              Py_ssize_t rows, Py_ssize_t cols, int kind, float slope,
                              const float *w, float *gw, int shared)
    void fa_act_bias_back_f64(const double *g, const double *z, double *gz, double *gb,
                              Py_ssize_t rows, Py_ssize_t cols, int kind, double slope,
                              const double *w, double *gw, int shared)
    void fa_bias_add_f32(float *z, const float *bias, Py_ssize_t rows, Py_ssize_t cols)
    void fa_bias_add_f64(double *z, const double *bias, Py_ssize_t rows, Py_ssize_t cols)
    void fa_column_sums_f32(const float *a, float *out, Py_ssize_t rows, Py_ssize_t cols)
    void fa_column_sums_f64(const double *a, double *out, Py_ssize_t rows, Py_ssize_t cols)
    void fa_flush_f32(float *a, Py_ssize_t n)
    void fa_flush_f64(double *a, Py_ssize_t n)
    void fa_flush_column_sums_f32(float *a, float *out, Py_ssize_t rows, Py_ssize_t cols)
    void fa_flush_column_sums_f64(double *a, double *out, Py_ssize_t rows, Py_ssize_t cols)

ctypedef fused real:
    float
    double

# Activation codes (match FA_ACT_* in _fused_impl.h and layers.py).
RELU = 0
LEAKY_RELU = 1
PRELU = 2


def adam_update(real[::1] param, const real[::1] grad, real[::1] exp_avg,
                real[::1] exp_avg_sq, double lr, double beta1, double beta2,
                double eps, double bias_correction1, double bias_correction2,
                double weight_decay):
    """One Adam step (PyTorch's formulation) over flat arrays, in place.

    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
    p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
    with g = grad + weight_decay * p.  Moments below the smallest normal
    number are flushed to zero.
    """
    cdef Py_ssize_t n = param.shape[0]
    if grad.shape[0] != n or exp_avg.shape[0] != n or exp_avg_sq.shape[0] != n:
        raise ValueError("adam_update: arrays differ in length")
    if n == 0:
        return
    cdef double step = lr / bias_correction1
    cdef double isb = 1.0 / sqrt(bias_correction2)
    with nogil:
        if real is float:
            fa_adam_f32(&param[0], &grad[0], &exp_avg[0], &exp_avg_sq[0], n,
                        <float>step, <float>beta1, <float>beta2, <float>(1.0 - beta1),
                        <float>(1.0 - beta2), <float>isb, <float>eps, <float>weight_decay)
        else:
            fa_adam_f64(&param[0], &grad[0], &exp_avg[0], &exp_avg_sq[0], n,
                        step, beta1, beta2, 1.0 - beta1, 1.0 - beta2, isb, eps,
                        weight_decay)


def sgd_update(real[::1] param, const real[::1] grad, real[::1] momentum_buffer,
               double lr, double momentum, double dampening, double weight_decay,
               bint nesterov, bint first_step):
    """One SGD step with momentum (PyTorch's formulation) over flat arrays.

    g = grad + wd p;  buf = g (first step) or momentum buf + (1 - dampening) g;
    p -= lr * (g + momentum buf if nesterov else buf).  With momentum == 0
    the buffer is not touched.
    """
    cdef Py_ssize_t n = param.shape[0]
    if grad.shape[0] != n or momentum_buffer.shape[0] != n:
        raise ValueError("sgd_update: arrays differ in length")
    if n == 0:
        return
    with nogil:
        if real is float:
            fa_sgd_f32(&param[0], &grad[0], &momentum_buffer[0], n, <float>lr,
                       <float>momentum, <float>(1.0 - dampening), <float>weight_decay,
                       nesterov, first_step)
        else:
            fa_sgd_f64(&param[0], &grad[0], &momentum_buffer[0], n, lr, momentum,
                       1.0 - dampening, weight_decay, nesterov, first_step)


cdef int _check_weight(Py_ssize_t nw, Py_ssize_t cols, int kind) except -1:
    if kind < 0 or kind > 2:
        raise ValueError(f"unknown activation code {kind}")
    if nw != 1 and (kind != PRELU or nw != cols):
        raise ValueError("prelu weight must have length 1 or the number of columns")
    return 0


def bias_act_forward(real[:, ::1] z, const real[::1] bias, real[:, ::1] out,
                     int kind, double negative_slope, const real[::1] weight):
    """z += bias (row-wise), then out = act(z); act chosen by ``kind``.

    kind 0 (RELU): relu; 1 (LEAKY_RELU): leaky relu with ``negative_slope``;
    2 (PRELU): prelu with the per-column slopes ``weight`` (length
    z.shape[1], or 1 for a shared slope; ignored, but of length 1, for the
    other kinds).  ``out`` must not overlap ``z``.
    """
    cdef Py_ssize_t rows = z.shape[0], cols = z.shape[1]
    if bias.shape[0] != cols or out.shape[0] != rows or out.shape[1] != cols:
        raise ValueError("bias_act_forward: shape mismatch")
    _check_weight(weight.shape[0], cols, kind)
    if rows == 0 or cols == 0:
        return
    cdef int shared = weight.shape[0] == 1
    with nogil:
        if real is float:
            fa_bias_act_f32(&z[0, 0], &bias[0], &out[0, 0], rows, cols, kind,
                            <float>negative_slope, &weight[0], shared)
        else:
            fa_bias_act_f64(&z[0, 0], &bias[0], &out[0, 0], rows, cols, kind,
                            negative_slope, &weight[0], shared)


def act_bias_backward(const real[:, ::1] grad, const real[:, ::1] z,
                      real[:, ::1] grad_z, real[::1] grad_bias, int kind,
                      double negative_slope, const real[::1] weight,
                      real[::1] grad_weight):
    """grad_z = act'(z) * grad; grad_bias = column sums of grad_z.

    For prelu (kind 2) also grad_weight = column sums of grad * min(z, 0)
    (one total when the slope is shared, length 1).  grad_bias and
    grad_weight are overwritten, not accumulated; grad_z must not overlap
    grad or z.
    """
    cdef Py_ssize_t rows = z.shape[0], cols = z.shape[1]
    if (grad.shape[0] != rows or grad.shape[1] != cols or grad_z.shape[0] != rows
            or grad_z.shape[1] != cols or grad_bias.shape[0] != cols):
        raise ValueError("act_bias_backward: shape mismatch")
    _check_weight(weight.shape[0], cols, kind)
    if grad_weight.shape[0] != weight.shape[0]:
        raise ValueError("act_bias_backward: grad_weight and weight differ in length")
    if cols == 0:
        return
    if rows == 0:
        grad_bias[:] = 0
        grad_weight[:] = 0
        return
    cdef int shared = weight.shape[0] == 1
    with nogil:
        if real is float:
            fa_act_bias_back_f32(&grad[0, 0], &z[0, 0], &grad_z[0, 0], &grad_bias[0],
                                 rows, cols, kind, <float>negative_slope, &weight[0],
                                 &grad_weight[0], shared)
        else:
            fa_act_bias_back_f64(&grad[0, 0], &z[0, 0], &grad_z[0, 0], &grad_bias[0],
                                 rows, cols, kind, negative_slope, &weight[0],
                                 &grad_weight[0], shared)


def bias_add(real[:, ::1] z, const real[::1] bias):
    """z += bias, row-wise, in place."""
    cdef Py_ssize_t rows = z.shape[0], cols = z.shape[1]
    if bias.shape[0] != cols:
        raise ValueError("bias_add: shape mismatch")
    if rows == 0 or cols == 0:
        return
    with nogil:
        if real is float:
            fa_bias_add_f32(&z[0, 0], &bias[0], rows, cols)
        else:
            fa_bias_add_f64(&z[0, 0], &bias[0], rows, cols)


def column_sums(real[:, ::1] a, real[::1] out, bint flush=False):
    """out[j] = sum_i a[i, j] (overwrites out).

    With ``flush``, subnormal entries of ``a`` are first set to zero in place
    (they would slow down every later matrix product that reads ``a``).
    """
    cdef Py_ssize_t rows = a.shape[0], cols = a.shape[1]
    if out.shape[0] != cols:
        raise ValueError("column_sums: shape mismatch")
    if cols == 0:
        return
    if rows == 0:
        out[:] = 0
        return
    with nogil:
        if real is float:
            if flush:
                fa_flush_column_sums_f32(&a[0, 0], &out[0], rows, cols)
            else:
                fa_column_sums_f32(&a[0, 0], &out[0], rows, cols)
        else:
            if flush:
                fa_flush_column_sums_f64(&a[0, 0], &out[0], rows, cols)
            else:
                fa_column_sums_f64(&a[0, 0], &out[0], rows, cols)


def flush_subnormals(real[:, ::1] a):
    """Set the subnormal entries of ``a`` (|x| < smallest normal) to zero, in place.

    GELU maps large negative inputs to subnormal outputs and gradients;
    x86 processors handle those many times more slowly, in every matrix
    product that later reads them.
    """
    if a.shape[0] == 0 or a.shape[1] == 0:
        return
    with nogil:
        if real is float:
            fa_flush_f32(&a[0, 0], a.shape[0] * a.shape[1])
        else:
            fa_flush_f64(&a[0, 0], a.shape[0] * a.shape[1])


def softmax_cross_entropy(const real[:, ::1] logits, const int[::1] labels,
                          real[:, ::1] grad, const real[::1] bias, real[::1] grad_bias):
    """Mean softmax cross-entropy of (logits + bias) and its gradient.

    ``bias`` has length C, or 0 for none (it is not added into ``logits``).
    Writes d(mean loss)/d(logits) into ``grad`` (must not overlap logits)
    and, when ``grad_bias`` has length C, that gradient's column sums.
    Returns ``(mean loss, number of rows whose largest logit is the label)``.
    Labels must lie in [0, C) (checked).  Every row is shifted by its
    maximum before exponentiating, so large logits neither overflow nor
    lose precision in the loss.
    """
    cdef Py_ssize_t i, j, rows = logits.shape[0], cols = logits.shape[1]
    cdef bint has_bias = bias.shape[0] != 0
    cdef bint has_grad_bias = grad_bias.shape[0] != 0
    cdef double total = 0, mx, ssum, inv, p, zy, t
    cdef double inv_n = 1.0 / rows if rows > 0 else 0.0
    cdef int y, arg, bad = 0
    cdef Py_ssize_t correct = 0
    cdef const real *zr
    cdef real *gr
    cdef double tiny = 1.1754943508222875e-38 if real is float else 2.2250738585072014e-308
    if labels.shape[0] != rows or grad.shape[0] != rows or grad.shape[1] != cols:
        raise ValueError("softmax_cross_entropy: shape mismatch")
    if (has_bias and bias.shape[0] != cols) or (has_grad_bias and grad_bias.shape[0] != cols):
        raise ValueError("softmax_cross_entropy: bias has the wrong length")
    if cols == 0:
        raise ValueError("softmax_cross_entropy: no classes")
    with nogil:
        if has_grad_bias:
            for j in range(cols):
                grad_bias[j] = 0
        for i in range(rows):
            y = labels[i]
            if y < 0 or y >= cols:
                bad = 1
                break
            zr = &logits[i, 0]
            gr = &grad[i, 0]
            mx = zr[0] + (bias[0] if has_bias else 0)
            arg = 0
            for j in range(cols):
                t = zr[j] + (bias[j] if has_bias else 0)
                gr[j] = <real>t
                if t > mx:
                    mx = t
                    arg = <int>j
            if arg == y:
                correct += 1
            zy = gr[y]
            ssum = 0
            for j in range(cols):
                p = exp(gr[j] - mx)
                ssum += p
                gr[j] = <real>p
            total += log(ssum) + mx - zy
            inv = inv_n / ssum
            for j in range(cols):
                p = gr[j] * inv
                gr[j] = <real>p if p > tiny else 0  # no subnormal gradients
            gr[y] = <real>(gr[y] - inv_n)
            if has_grad_bias:
                for j in range(cols):
                    grad_bias[j] += gr[j]
    if bad:
        raise ValueError(f"labels must be class indices in 0..{cols - 1}: "
                         f"softmax_cross_entropy got one outside")
    return (total / rows if rows > 0 else 0.0), correct
