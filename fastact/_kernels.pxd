# Declarations of fastact._kernels' C-level entry points, for fastact._ops.
#
# Each takes raw pointers to contiguous buffers that the caller has
# validated (same length, same dtype; is_double selects float64), picks
# the thread count itself and runs without the GIL.

cdef void run_forward(int op, bint is_double, const void *x, void *out, Py_ssize_t n,
                      double param) noexcept nogil
cdef void run_backward(int op, bint is_double, const void *grad_output, const void *x,
                       void *out, Py_ssize_t n, double param) noexcept nogil
cdef void run_prelu_forward(bint is_double, const void *x, const void *weight, void *out,
                            Py_ssize_t outer, Py_ssize_t channels,
                            Py_ssize_t inner) noexcept nogil
cdef int run_prelu_backward(bint is_double, const void *grad_output, const void *x,
                            const void *weight, void *grad_input, double *grad_weight,
                            Py_ssize_t outer, Py_ssize_t channels,
                            Py_ssize_t inner) noexcept nogil

# Half precision (float16 when is_bf16 is false, else bfloat16): the buffers
# hold 16-bit values; the arithmetic is float32 (see _half.h).
cdef void run_forward_half(int op, bint is_bf16, const void *x, void *out, Py_ssize_t n,
                           double param) noexcept nogil
cdef void run_backward_half(int op, bint is_bf16, const void *grad_output, const void *x,
                            void *out, Py_ssize_t n, double param) noexcept nogil
cdef int run_prelu_forward_half(bint is_bf16, const void *x, const void *weight, void *out,
                                Py_ssize_t outer, Py_ssize_t channels,
                                Py_ssize_t inner) noexcept nogil
cdef int run_prelu_backward_half(bint is_bf16, const void *grad_output, const void *x,
                                 const void *weight, void *grad_input, double *grad_weight,
                                 Py_ssize_t outer, Py_ssize_t channels,
                                 Py_ssize_t inner) noexcept nogil
