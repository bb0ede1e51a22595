# cython: language_level=3
"""Compiled kernels of fastact: threaded drivers around the C loops.

The entry points (declared in _kernels.pxd, called by fastact._ops) take raw
pointers to contiguous buffers of one dtype and trust their caller to have
validated them.  They run without the GIL.

Threading: work is split into at most one contiguous slice per thread with
OpenMP ``prange``, and only when every thread gets at least a grain of
elements (below that a parallel region costs more than it saves).
Elementwise results do not depend on the split.  The PReLU weight gradient
is reduced in blocks whose size does not depend on the thread count, then
combined in a fixed order, so it is also identical for any thread count.
"""

from cython.parallel cimport prange
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memcpy

cdef extern from "_dispatch.h" nogil:
    ctypedef Py_ssize_t fa_index
    ctypedef void (*fa_unary_f32)(const float *, float *, fa_index, double)
    ctypedef void (*fa_unary_f64)(const double *, double *, fa_index, double)
    ctypedef void (*fa_binary_f32)(const float *, const float *, float *, fa_index, double)
    ctypedef void (*fa_binary_f64)(const double *, const double *, double *, fa_index, double)
    ctypedef void (*fa_prelu_rows_f32)(const float *, const float *, float *, fa_index, fa_index)
    ctypedef void (*fa_prelu_rows_f64)(const double *, const double *, double *, fa_index,
                                       fa_index)
    ctypedef void (*fa_prelu_vector_backward_f32)(const float *, const float *, const float *,
                                                  float *, double *, fa_index)
    ctypedef void (*fa_prelu_vector_backward_f64)(const double *, const double *, const double *,
                                                  double *, double *, fa_index)
    ctypedef double (*fa_prelu_run_backward_f32)(const float *, const float *, double, float *,
                                                 fa_index)
    ctypedef double (*fa_prelu_run_backward_f64)(const double *, const double *, double, double *,
                                                 fa_index)
    ctypedef void (*fa_stream_store)(const void *, void *, fa_index)
    ctypedef struct fa_table:
        const char *name
        fa_unary_f32 forward_f32[4]
        fa_unary_f64 forward_f64[4]
        fa_binary_f32 backward_f32[4]
        fa_binary_f64 backward_f64[4]
        fa_prelu_rows_f32 prelu_rows_f32
        fa_prelu_rows_f64 prelu_rows_f64
        fa_prelu_vector_backward_f32 prelu_vector_backward_f32
        fa_prelu_vector_backward_f64 prelu_vector_backward_f64
        fa_prelu_run_backward_f32 prelu_run_backward_f32
        fa_prelu_run_backward_f64 prelu_run_backward_f64
        fa_stream_store stream_store

    enum:
        FA_LEVEL_BASELINE
        FA_LEVEL_AVX2
        FA_LEVEL_AVX512
        FA_NUM_LEVELS
        FA_RELU
        FA_LEAKY_RELU
        FA_GELU
        FA_GELU_TANH

    int fa_detect_level()
    int fa_levels_compiled()
    const fa_table *fa_table_for(int level)
    int fa_omp_max_threads()
    void fa_omp_set_threads(int n)
    int fa_omp_in_parallel()

cdef extern from *:
    """
    #ifndef FASTACT_BUILT_WITH_OPENMP
    #define FASTACT_BUILT_WITH_OPENMP 0
    #endif
    #ifndef FASTACT_COMPILER
    #define FASTACT_COMPILER "unknown"
    #endif
    """
    int FASTACT_BUILT_WITH_OPENMP
    const char *FASTACT_COMPILER

ctypedef fused floating:
    float
    double

# Operation codes shared with fastact._ops (they index the loop tables).
RELU = FA_RELU
LEAKY_RELU = FA_LEAKY_RELU
GELU = FA_GELU
GELU_TANH = FA_GELU_TANH

LEVEL_NAMES = ("baseline", "avx2", "avx512")

# Minimum elements per thread before another thread is worth waking: a
# thread must get about 5-10 us of work to repay its wake-up (GNU OpenMP's
# idle threads sleep after a short spin, see __init__.py).  ReLU-like loops
# move memory at ~0.15 ns/element in cache, float32 GELU costs ~0.4 ns and
# float64 GELU ~1.4 ns.  Measured on a 16-core Xeon (tools/thread_scaling.py,
# docs/threads.md): float32 GELU with 2 threads of 4096 elements each ran
# 0.6x the speed of 1 thread, 2 threads of 16384 each 1.2x; float64 GELU
# already gains with 4096 per thread.
cdef fa_index GRAIN_CHEAP = 1 << 15
cdef fa_index GRAIN_GELU_F32 = 1 << 14
cdef fa_index GRAIN_GELU_F64 = 1 << 12
# Block of the PReLU weight-gradient reduction (elements): fixed, so the
# reduction order never depends on the number of threads.
cdef fa_index REDUCE_BLOCK = 1 << 14
# ReLU-family outputs of at least this many bytes are written with
# non-temporal stores (through a small per-thread buffer of 4 KiB): far
# beyond the caches that saves reading each output line before overwriting
# it.  Measured (1 thread, AVX-512, this VM): ReLU and Leaky ReLU backward
# 1.2-1.3x faster at 64 MiB, no better at 32 MiB, slower at 16 MiB and
# below (where the result would still be in cache for its next reader).
# GELU is left out: streaming made its float64 form 2x slower at 64 MiB.
# On a CPU whose last-level cache holds more than that (a 16-core Xeon),
# a 64 MiB result still partly fits, and streaming it ran at 66 % of a
# plain copy's speed: there the threshold is the cache's size instead.
cdef fa_index STREAM_MIN_BYTES_FLOOR = 64 << 20


def _last_level_cache_bytes():
    """Size of one instance of the largest CPU cache Linux reports, or 0."""
    import glob
    size = 0
    for folder in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*"):
        try:
            with open(folder + "/size") as handle:
                text = handle.read().strip()
        except OSError:
            continue
        digits = text.rstrip("KMGkmg")
        unit = text[len(digits):].upper()
        if digits.isdigit() and unit in ("", "K", "M", "G"):
            size = max(size, int(digits) << {"": 0, "K": 10, "M": 20, "G": 30}[unit])
    return size


cdef fa_index STREAM_MIN_BYTES = max(STREAM_MIN_BYTES_FLOOR, _last_level_cache_bytes())
cdef enum:
    # The buffer alternates a burst of loads (the kernel) with a burst of
    # streaming stores; with 16 KiB bursts the two did not overlap: a C loop
    # doing the same at float64 2^24 took 0.9-1.0 ns per element, with 4 KiB
    # (or 1 KiB, 512 B) 0.56-0.63, as fast as storing directly (AVX-512,
    # Zen 4).
    STREAM_BUFFER_DOUBLES = 512
    # PReLU runs (one channel's inner elements) shorter than this skip the
    # store alignment: the second call costs more than it saves
    PRELU_ALIGNED_RUN = 1024

cdef int _level = fa_detect_level()
cdef const fa_table *_table = fa_table_for(_level)
cdef int _thread_cap = 0   # 0: not set by set_num_threads, follow OpenMP

# Fork safety.  GNU OpenMP's thread pool does not survive fork(): a child
# that enters a parallel region after its parent ran one waits forever
# (GCC bug 60035), and nothing outside libgomp can repair the pool.  So a
# child handler marks every process forked after this module was loaded,
# and such a process runs every kernel on one thread (no parallel region at
# all).  That also covers a pool poisoned by another library sharing
# libgomp, which fastact cannot see.  The check costs one load per call.
cdef extern from "<pthread.h>" nogil:
    int pthread_atfork(void (*prepare)() noexcept nogil, void (*parent)() noexcept nogil,
                       void (*child)() noexcept nogil)

cdef int _forked = 0


cdef void _mark_forked_child() noexcept nogil:
    global _forked
    _forked = 1


if pthread_atfork(NULL, NULL, _mark_forked_child) != 0:
    raise ImportError("fastact: pthread_atfork failed; cannot make the kernels fork-safe")


# ---------------------------------------------------------------- threads --

cdef inline int _threads_for(fa_index n, fa_index grain) noexcept nogil:
    """How many threads a call on n elements should use."""
    if _forked:
        return 1
    cdef int nt = fa_omp_max_threads()
    if _thread_cap > 0 and _thread_cap < nt:
        nt = _thread_cap
    if fa_omp_in_parallel():
        return 1
    if n < 2 * grain:
        return 1
    if n // grain < nt:
        nt = <int>(n // grain)
    return nt if nt > 1 else 1


_FORKED_WARNING = (
    "fastact runs on 1 thread in a process made by fork(): GNU OpenMP's threads "
    "do not survive fork, so asking for {n} would hang.  Start worker processes "
    "with multiprocessing's 'spawn' or 'forkserver' method to use threads in them."
)


def set_num_threads(int n):
    """Cap the number of OpenMP threads fastact uses (see fastact.set_num_threads).

    In a forked child a cap above 1 is recorded but not applied (the child
    stays serial, see _mark_forked_child) and a RuntimeWarning says so.
    """
    global _thread_cap
    if n < 1:
        raise ValueError(f"n must be a positive number of threads, got {n}")
    _thread_cap = n
    if _forked:
        if n > 1:
            import warnings
            warnings.warn(_FORKED_WARNING.format(n=n), RuntimeWarning, stacklevel=2)
        return
    fa_omp_set_threads(n)


def grains():
    """Minimum elements per thread before another thread is woken, per kind
    of op: ``{"cheap": ..., "gelu_float32": ..., "gelu_float64": ...}`` (the
    ReLU family, PReLU and the copy are cheap)."""
    return {"cheap": GRAIN_CHEAP, "gelu_float32": GRAIN_GELU_F32,
            "gelu_float64": GRAIN_GELU_F64}


def planned_threads(fa_index n, str kind):
    """How many threads a call on n elements of a ``kind`` op (a key of
    grains()) would use now: the count the drivers run, for tests and tools."""
    cdef dict table = grains()
    if kind not in table:
        raise ValueError(f"kind must be one of {sorted(table)}, got {kind!r}")
    return _threads_for(n, table[kind])


def planned_slices(fa_index n, str kind):
    """The ``[start, stop)`` slice of each thread of such a call, as the
    elementwise drivers cut it (after their 64-byte alignment head)."""
    cdef int nt = planned_threads(n, kind)
    cdef fa_index part = _slice_length(n, nt) if nt > 1 else n
    return [(t * part, min((t + 1) * part, n)) for t in range(nt) if t * part < n]


def forked_child():
    """Whether this process was forked after fastact was loaded (kernels run serially)."""
    return bool(_forked)


def get_num_threads():
    """The number of threads a large call from this Python thread would use."""
    if _forked:
        return 1
    cdef int nt = fa_omp_max_threads()
    if _thread_cap > 0 and _thread_cap < nt:
        nt = _thread_cap
    return nt


# ------------------------------------------------------------ SIMD levels --

def detected_simd_level():
    """Name of the highest instruction-set level this CPU supports."""
    return LEVEL_NAMES[fa_detect_level()]


def simd_level():
    """Name of the instruction-set level whose loops are in use."""
    return LEVEL_NAMES[_level]


def compiled_simd_levels():
    """Names of the levels compiled into this build."""
    return LEVEL_NAMES[:fa_levels_compiled()]


def set_simd_level(str name):
    """Use the loops of level ``name`` (not above what the CPU supports).

    Returns the previous level's name.  Used by FASTACT_SIMD and the tests.
    """
    global _table, _level
    if name not in LEVEL_NAMES:
        raise ValueError(f"SIMD level must be one of {LEVEL_NAMES}, got {name!r}")
    cdef int wanted = LEVEL_NAMES.index(name)
    if wanted >= fa_levels_compiled() or wanted > fa_detect_level():
        raise ValueError(
            f"SIMD level {name!r} is not available here: this build and CPU "
            f"support up to {LEVEL_NAMES[min(fa_detect_level(), fa_levels_compiled() - 1)]!r}"
        )
    previous = LEVEL_NAMES[_level]
    _level = wanted
    _table = fa_table_for(wanted)
    return previous


def stream_min_bytes():
    """ReLU-family outputs of at least this many bytes (64-byte aligned) are
    written with non-temporal stores: 64 MiB, or the size of the CPU's
    largest cache where that is larger."""
    return STREAM_MIN_BYTES


def build_info():
    """What this build was compiled with: a dict for show_config()."""
    return {
        "openmp": bool(FASTACT_BUILT_WITH_OPENMP),
        "compiler": FASTACT_COMPILER.decode("utf-8", "replace"),
        "simd_levels_compiled": compiled_simd_levels(),
    }


# -------------------------------------------------- elementwise drivers --

# float16 and bfloat16 (16-bit values) run through the float32 loops of the
# current level in blocks converted on the stack (see _half.h).
cdef extern from "_dispatch.h" nogil:
    ctypedef unsigned short fa_half
    ctypedef struct fa_half_codec:
        const char *name
    int fa_half_init()
    int fa_half_set_avx512bf16(int on)
    const fa_half_codec *fa_half_codec_for(int level, int kind)
    void fa_half_forward(const fa_table *t, const fa_half_codec *c, int op, const fa_half *x,
                         fa_half *out, fa_index n, double param)
    void fa_half_backward(const fa_table *t, const fa_half_codec *c, int op, const fa_half *g,
                          const fa_half *x, fa_half *out, fa_index n, double param)
    void fa_half_prelu_rows(const fa_table *t, const fa_half_codec *c, const fa_half *x,
                            const float *w, fa_half *out, fa_index rows, fa_index channels)
    void fa_half_prelu_vector_backward(const fa_table *t, const fa_half_codec *c,
                                       const fa_half *g, const fa_half *x, const float *w,
                                       fa_half *gin, double *acc, fa_index n)
    double fa_half_prelu_run_backward(const fa_table *t, const fa_half_codec *c,
                                      const fa_half *g, const fa_half *x, double slope,
                                      fa_half *gin, fa_index n)
    void fa_half_to_f32(int kind, const fa_half *src, float *dst, fa_index n)


cdef inline fa_index _aligning_head(int op, const void *out, fa_index n,
                                    size_t itemsize) noexcept nogil:
    """Elements to run first so the rest of out starts on a 64-byte boundary.

    NumPy's large arrays start 16 bytes past a page boundary, so 64-byte
    stores straddle cache lines.  Aligning out first was measured (1 thread,
    2^24 elements) to make ReLU 20 % and float32 GELU 10-35 % faster, and
    the AVX-512 float64 GELU loops 13 % faster (2^20), but the
    compiler-vectorised float64 GELU loops of the lower levels twice as
    slow, so those are left as they are.  0 when out cannot be aligned.
    """
    cdef size_t address = <size_t>out
    cdef fa_index head
    if itemsize == 8 and (op == FA_GELU or op == FA_GELU_TANH) and _level != FA_LEVEL_AVX512:
        return 0
    if address % itemsize:
        return 0
    head = <fa_index>(((64 - address % 64) % 64) // itemsize)
    return head if head < n else n


cdef inline fa_index _slice_length(fa_index n, int nt) noexcept nogil:
    """Elements per thread: one contiguous slice each, rounded up to 64
    elements (a cache line of doubles) so no two threads write one line."""
    return ((n + nt - 1) // nt + 63) // 64 * 64


cdef void _streamed(int op, const floating *g, const floating *x, floating *out, fa_index n,
                    double param) noexcept nogil:
    """One thread's share through a 4 KiB buffer to streaming stores; g is
    NULL for a forward op.  Kept out of line: the plain path needs no buffer."""
    cdef double buffer[STREAM_BUFFER_DOUBLES]
    cdef floating *chunk = <floating *>buffer
    cdef fa_index step = sizeof(buffer) // sizeof(floating)
    cdef fa_index start = 0, length
    while start < n:
        length = min(step, n - start)
        if floating is float:
            if g == NULL:
                _table.forward_f32[op](x + start, chunk, length, param)
            else:
                _table.backward_f32[op](g + start, x + start, chunk, length, param)
        else:
            if g == NULL:
                _table.forward_f64[op](x + start, chunk, length, param)
            else:
                _table.backward_f64[op](g + start, x + start, chunk, length, param)
        _table.stream_store(chunk, out + start, length * sizeof(floating))
        start += step


cdef inline void _unary(int op, const floating *x, floating *out, fa_index n, double param,
                        bint stream) noexcept nogil:
    """One thread's share of a forward op."""
    if stream:
        _streamed(op, <const floating *>NULL, x, out, n, param)
    elif floating is float:
        _table.forward_f32[op](x, out, n, param)
    else:
        _table.forward_f64[op](x, out, n, param)


cdef inline void _binary(int op, const floating *g, const floating *x, floating *out, fa_index n,
                         double param, bint stream) noexcept nogil:
    """One thread's share of a backward op."""
    if stream:
        _streamed(op, g, x, out, n, param)
    elif floating is float:
        _table.backward_f32[op](g, x, out, n, param)
    else:
        _table.backward_f64[op](g, x, out, n, param)


cdef inline bint _streams(int op, const void *out, fa_index n, size_t itemsize) noexcept nogil:
    """Whether a call writes out with streaming stores: a ReLU-family op with
    a large, 64-byte aligned output."""
    return ((op == FA_RELU or op == FA_LEAKY_RELU) and n * <fa_index>itemsize >= STREAM_MIN_BYTES
            and (<size_t>out) % 64 == 0)


cdef enum:
    _F32 = 0
    _F64 = 1
    _HALF = 2       # float16 or bfloat16, through the codec's conversions


cdef struct _Elementwise:
    # One elementwise call: what each thread's slice runs.
    int op
    int kind
    const fa_half_codec *codec
    const char *g               # NULL for a forward op
    const char *x
    char *out
    size_t itemsize
    double param
    bint stream


cdef inline _Elementwise _call(int op, int kind, const fa_half_codec *codec, const void *g,
                               const void *x, void *out, double param) noexcept nogil:
    cdef _Elementwise job
    job.op = op
    job.kind = kind
    job.codec = codec
    job.g = <const char *>g
    job.x = <const char *>x
    job.out = <char *>out
    job.itemsize = 2 if kind == _HALF else (8 if kind == _F64 else 4)
    job.param = param
    job.stream = False
    return job


cdef void _run_range(const _Elementwise *job, fa_index start, fa_index n) noexcept nogil:
    """Elements [start, start + n) of the call, on the calling thread."""
    cdef size_t at = <size_t>start * job.itemsize
    cdef const char *g = job.g + at if job.g != NULL else NULL
    cdef const char *x = job.x + at
    cdef char *out = job.out + at
    if job.kind == _HALF:
        if g == NULL:
            fa_half_forward(_table, job.codec, job.op, <const fa_half *>x, <fa_half *>out, n,
                            job.param)
        else:
            fa_half_backward(_table, job.codec, job.op, <const fa_half *>g,
                             <const fa_half *>x, <fa_half *>out, n, job.param)
    elif job.kind == _F32:
        if g == NULL:
            _unary(job.op, <const float *>x, <float *>out, n, job.param, job.stream)
        else:
            _binary(job.op, <const float *>g, <const float *>x, <float *>out, n, job.param,
                    job.stream)
    else:
        if g == NULL:
            _unary(job.op, <const double *>x, <double *>out, n, job.param, job.stream)
        else:
            _binary(job.op, <const double *>g, <const double *>x, <double *>out, n, job.param,
                    job.stream)


cdef void _elementwise(_Elementwise *job, fa_index n, int nt) noexcept nogil:
    """Run a call on nt threads, one contiguous slice each, after a head that
    aligns out to 64 bytes (the half loops align like the float32 ones)."""
    cdef fa_index part, start, stop
    cdef int t
    cdef fa_index head = _aligning_head(FA_RELU if job.kind == _HALF else job.op, job.out, n,
                                        job.itemsize)
    job.stream = False
    if head:
        _run_range(job, 0, head)
    job.stream = job.kind != _HALF and _streams(job.op, job.out + head * job.itemsize,
                                                n - head, job.itemsize)
    if nt <= 1:
        _run_range(job, head, n - head)
        return
    # slices start on multiples of 64 elements past the head: still 64-byte aligned
    part = _slice_length(n - head, nt)
    for t in prange(nt, num_threads=nt, schedule="static", chunksize=1):
        start = head + t * part
        stop = min(start + part, n)
        if start < stop:
            _run_range(job, start, stop - start)


cdef void _forward(int op, const floating *x, floating *out, fa_index n, double param,
                   int nt) noexcept nogil:
    cdef _Elementwise job = _call(op, _F32 if floating is float else _F64, NULL, NULL, x, out,
                                  param)
    _elementwise(&job, n, nt)


cdef inline fa_index _grain(int op, bint is_double) noexcept nogil:
    if op == FA_GELU or op == FA_GELU_TANH:
        return GRAIN_GELU_F64 if is_double else GRAIN_GELU_F32
    return GRAIN_CHEAP


cdef void run_forward(int op, bint is_double, const void *x, void *out, Py_ssize_t n,
                      double param) noexcept nogil:
    cdef _Elementwise job = _call(op, _F64 if is_double else _F32, NULL, NULL, x, out, param)
    _elementwise(&job, n, _threads_for(n, _grain(op, is_double)))


cdef void run_backward(int op, bint is_double, const void *grad_output, const void *x,
                       void *out, Py_ssize_t n, double param) noexcept nogil:
    cdef _Elementwise job = _call(op, _F64 if is_double else _F32, NULL, grad_output, x, out,
                                  param)
    _elementwise(&job, n, _threads_for(n, _grain(op, is_double)))


cdef void _threaded_copy(const char *src, char *dst, fa_index n, size_t itemsize,
                        int nt) noexcept nogil:
    """memcpy of n items, one slice per thread like the elementwise kernels."""
    cdef fa_index part, start, stop
    cdef int t
    if nt <= 1:     # no parallel region at all (see _mark_forked_child)
        memcpy(dst, src, n * itemsize)
        return
    part = _slice_length(n, nt)
    for t in prange(nt, num_threads=nt, schedule="static", chunksize=1):
        start = t * part
        stop = min(start + part, n)
        if start < stop:
            memcpy(dst + start * itemsize, src + start * itemsize, (stop - start) * itemsize)


def copy(const floating[::1] src not None, floating[::1] dst not None):
    """dst[:] = src[:], threaded like the ReLU kernels: the benchmarks' bandwidth floor."""
    cdef fa_index n = src.shape[0]
    if dst.shape[0] != n:
        raise ValueError(f"dst must have {n} elements like src, got {dst.shape[0]}")
    if n == 0:
        return
    with nogil:
        _threaded_copy(<const char *>&src[0], <char *>&dst[0], n, sizeof(floating),
                       _threads_for(n, GRAIN_CHEAP))


# --------------------------------------------------------------- PReLU --
#
# The caller views x as (outer, channels, inner) in memory order, with the
# weight indexed by the middle axis.  inner == 1 (channels last) uses the
# per-element-slope loops over whole rows; inner > 1 runs the one-slope loops
# over each run of `inner` elements.


cdef void run_prelu_forward(bint is_double, const void *x, const void *weight, void *out,
                            Py_ssize_t outer, Py_ssize_t channels,
                            Py_ssize_t inner) noexcept nogil:
    """PReLU forward with x viewed as (outer, channels, inner)."""
    cdef fa_index n = outer * channels * inner
    cdef int nt = _threads_for(n, GRAIN_CHEAP)
    if n == 0:
        return
    if is_double:
        if inner == 1:
            _prelu_rows(<const double *>x, <const double *>weight, <double *>out, outer,
                        channels, nt)
        else:
            _prelu_runs(<const double *>x, <const double *>weight, <double *>out,
                        outer * channels, channels, inner, nt)
    else:
        if inner == 1:
            _prelu_rows(<const float *>x, <const float *>weight, <float *>out, outer,
                        channels, nt)
        else:
            _prelu_runs(<const float *>x, <const float *>weight, <float *>out,
                        outer * channels, channels, inner, nt)


cdef void _prelu_rows(const floating *x, const floating *w, floating *out, fa_index rows,
                      fa_index channels, int nt) noexcept nogil:
    """Channels last: one call of the row loop per thread, on a slice of rows.

    The rows loop reads the weight once per vector, so it reads a copy of it
    aligned to 64 bytes.  When out is not 64-byte aligned either (NumPy's
    large arrays start 16 bytes into a line) the first `head` elements run
    alone and the rest as rows that start `head` channels in, with the copy
    rotated to match, so the stores are aligned too.  Measured (2^16
    float64, 256 channels, 1 thread): 0.256 -> 0.19 ns/element.
    """
    cdef fa_index n = rows * channels
    cdef fa_index head = _aligning_head(FA_LEAKY_RELU, out, n, sizeof(floating))
    cdef fa_index full, tail
    cdef void *block
    cdef floating *aligned_w
    if head >= channels:
        head = 0
    block = malloc(channels * sizeof(floating) + 64)
    if block == NULL:            # the unaligned weight is just as correct
        _prelu_row_slices(x, w, out, rows, channels, nt)
        return
    aligned_w = <floating *>((<size_t>block + 63) // 64 * 64)
    # rotate by head (no modulo: a division per channel cost ~1 us at 256)
    memcpy(aligned_w, w + head, (channels - head) * sizeof(floating))
    memcpy(aligned_w + channels - head, w, head * sizeof(floating))
    if head:
        _prelu_row_block(x, w, out, 1, head)
    full = (n - head) // channels
    tail = (n - head) % channels
    _prelu_row_slices(x + head, aligned_w, out + head, full, channels, nt)
    if tail:
        _prelu_row_block(x + head + full * channels, aligned_w, out + head + full * channels, 1,
                         tail)
    free(block)


cdef void _prelu_row_slices(const floating *x, const floating *w, floating *out, fa_index rows,
                            fa_index channels, int nt) noexcept nogil:
    cdef fa_index part, first, last
    cdef int t
    if nt <= 1:
        _prelu_row_block(x, w, out, rows, channels)
        return
    part = (rows + nt - 1) // nt
    for t in prange(nt, num_threads=nt, schedule="static", chunksize=1):
        first = t * part
        last = min(first + part, rows)
        if first < last:
            _prelu_row_block(x + first * channels, w, out + first * channels, last - first,
                             channels)


cdef inline void _prelu_row_block(const floating *x, const floating *w, floating *out,
                                  fa_index rows, fa_index channels) noexcept nogil:
    if floating is float:
        _table.prelu_rows_f32(x, w, out, rows, channels)
    else:
        _table.prelu_rows_f64(x, w, out, rows, channels)


cdef void _prelu_runs(const floating *x, const floating *w, floating *out, fa_index runs,
                      fa_index channels, fa_index inner, int nt) noexcept nogil:
    cdef fa_index r
    if nt <= 1:
        for r in range(runs):
            _prelu_run(x + r * inner, out + r * inner, inner, <double>w[r % channels])
    elif runs >= nt:
        for r in prange(runs, num_threads=nt, schedule="static"):
            _prelu_run(x + r * inner, out + r * inner, inner, <double>w[r % channels])
    else:
        # Few long runs (for example a handful of channels): split each run.
        for r in range(runs):
            _forward(FA_LEAKY_RELU, x + r * inner, out + r * inner, inner,
                     <double>w[r % channels], nt)


cdef inline void _prelu_run(const floating *x, floating *out, fa_index n,
                            double slope) noexcept nogil:
    """One run of one channel on this thread.  Short runs (small feature maps)
    go straight to the loop: aligning their stores first would cost a second
    call per run, which at 16 elements doubled the run's time."""
    if n < PRELU_ALIGNED_RUN:
        _unary(FA_LEAKY_RELU, x, out, n, slope, False)
    else:
        _forward(FA_LEAKY_RELU, x, out, n, slope, 1)


cdef int run_prelu_backward(bint is_double, const void *grad_output, const void *x,
                            const void *weight, void *grad_input, double *grad_weight,
                            Py_ssize_t outer, Py_ssize_t channels,
                            Py_ssize_t inner) noexcept nogil:
    """PReLU backward: writes grad_input and sums grad_weight (float64).

    grad_weight[c] = sum of grad_output * x over the elements of channel c
    where x <= 0, accumulated in float64 in blocks of fixed size.  Returns
    -1 when the reduction buffer cannot be allocated, else 0.
    """
    cdef fa_index n = outer * channels * inner
    cdef fa_index c
    cdef int nt = _threads_for(n, GRAIN_CHEAP)
    for c in range(channels):
        grad_weight[c] = 0.0
    if n == 0:
        return 0
    if is_double:
        if inner == 1:
            return _prelu_backward_rows(<const double *>grad_output, <const double *>x,
                                        <const double *>weight, <double *>grad_input,
                                        grad_weight, outer, channels, nt)
        return _prelu_backward_runs(<const double *>grad_output, <const double *>x,
                                    <const double *>weight, <double *>grad_input, grad_weight,
                                    outer * channels, channels, inner, nt)
    if inner == 1:
        return _prelu_backward_rows(<const float *>grad_output, <const float *>x,
                                    <const float *>weight, <float *>grad_input,
                                    grad_weight, outer, channels, nt)
    return _prelu_backward_runs(<const float *>grad_output, <const float *>x,
                                <const float *>weight, <float *>grad_input, grad_weight,
                                outer * channels, channels, inner, nt)


cdef int _prelu_backward_rows(const floating *g, const floating *x, const floating *w,
                              floating *gin, double *gw, fa_index rows, fa_index channels,
                              int nt) noexcept nogil:
    """Channels last: each block of whole rows sums into its own partial vector."""
    cdef fa_index rows_per_block = (REDUCE_BLOCK + channels - 1) // channels
    cdef fa_index blocks = (rows + rows_per_block - 1) // rows_per_block
    cdef fa_index b, r, c
    cdef double *partial
    if blocks == 1:
        for r in range(rows):
            _prelu_row_backward(g + r * channels, x + r * channels, w, gin + r * channels,
                                gw, channels)
        return 0
    partial = <double *>calloc(blocks * channels, sizeof(double))
    if partial == NULL:
        return -1
    if nt <= 1:     # no parallel region at all (see _mark_forked_child)
        for b in range(blocks):
            _prelu_rows_block_backward(g, x, w, gin, partial, b, rows_per_block, rows, channels)
    else:
        for b in prange(blocks, num_threads=nt, schedule="static"):
            _prelu_rows_block_backward(g, x, w, gin, partial, b, rows_per_block, rows,
                                       channels)
    for b in range(blocks):
        for c in range(channels):
            gw[c] += partial[b * channels + c]
    free(partial)
    return 0


cdef inline void _prelu_rows_block_backward(const floating *g, const floating *x,
                                            const floating *w, floating *gin, double *partial,
                                            fa_index b, fa_index rows_per_block, fa_index rows,
                                            fa_index channels) noexcept nogil:
    """Block b of rows into its own partial vector."""
    cdef fa_index r
    cdef fa_index first = b * rows_per_block
    cdef fa_index last = first + rows_per_block
    if last > rows:
        last = rows
    for r in range(first, last):
        _prelu_row_backward(g + r * channels, x + r * channels, w, gin + r * channels,
                            partial + b * channels, channels)


cdef inline void _prelu_row_backward(const floating *g, const floating *x, const floating *w,
                                     floating *gin, double *acc, fa_index n) noexcept nogil:
    if floating is float:
        _table.prelu_vector_backward_f32(g, x, w, gin, acc, n)
    else:
        _table.prelu_vector_backward_f64(g, x, w, gin, acc, n)


cdef int _prelu_backward_runs(const floating *g, const floating *x, const floating *w,
                              floating *gin, double *gw, fa_index runs, fa_index channels,
                              fa_index inner, int nt) noexcept nogil:
    """Runs of one slope: each fixed-size piece of a run sums into one partial."""
    cdef fa_index pieces_per_run = (inner + REDUCE_BLOCK - 1) // REDUCE_BLOCK
    cdef fa_index items = runs * pieces_per_run
    cdef fa_index item
    cdef double *partial = <double *>malloc(items * sizeof(double))
    if partial == NULL:
        return -1
    if nt <= 1:     # no parallel region at all (see _mark_forked_child)
        for item in range(items):
            partial[item] = _prelu_item_backward(g, x, w, gin, item, pieces_per_run, channels,
                                                 inner)
    else:
        for item in prange(items, num_threads=nt, schedule="static"):
            partial[item] = _prelu_item_backward(g, x, w, gin, item, pieces_per_run,
                                                 channels, inner)
    for item in range(items):
        gw[(item // pieces_per_run) % channels] += partial[item]
    free(partial)
    return 0


cdef inline double _prelu_item_backward(const floating *g, const floating *x,
                                        const floating *w, floating *gin, fa_index item,
                                        fa_index pieces_per_run, fa_index channels,
                                        fa_index inner) noexcept nogil:
    """Piece `item` of the runs: its sum of g * x where x <= 0 (grad_input written)."""
    cdef fa_index r = item // pieces_per_run
    cdef fa_index start = (item % pieces_per_run) * REDUCE_BLOCK
    cdef fa_index stop = start + REDUCE_BLOCK
    if stop > inner:
        stop = inner
    return _prelu_piece_backward(g + r * inner + start, x + r * inner + start,
                                 <double>w[r % channels], gin + r * inner + start,
                                 stop - start)


cdef inline double _prelu_piece_backward(const floating *g, const floating *x, double slope,
                                         floating *gin, fa_index n) noexcept nogil:
    if floating is float:
        return _table.prelu_run_backward_f32(g, x, slope, gin, n)
    else:
        return _table.prelu_run_backward_f64(g, x, slope, gin, n)


# ------------------------------------------------------- half precision --
#
# The elementwise half kernels share the drivers above.  PReLU's threading
# mirrors the float32 one: one contiguous slice per thread, the weight
# gradient in blocks of fixed size.

cdef int _half_ready = fa_half_init()


def half_conversions():
    """The float16 and bfloat16 conversions the current SIMD level uses."""
    return {
        "float16": fa_half_codec_for(_level, 0).name.decode(),
        "bfloat16": fa_half_codec_for(_level, 1).name.decode(),
    }


def set_avx512_bf16(bint on):
    """Use AVX512-BF16's vcvtneps2bf16 at the AVX-512 level (only where the
    CPU has it; else integer rounding).  Returns the previous setting.  For
    the tests, which check both conversions on a CPU that has the
    instruction."""
    return bool(fa_half_set_avx512bf16(on))


cdef void run_forward_half(int op, bint is_bf16, const void *x, void *out, Py_ssize_t n,
                           double param) noexcept nogil:
    cdef _Elementwise job = _call(op, _HALF, fa_half_codec_for(_level, is_bf16), NULL, x, out,
                                  param)
    _elementwise(&job, n, _threads_for(n, _grain(op, False)))


cdef void run_backward_half(int op, bint is_bf16, const void *grad_output, const void *x,
                            void *out, Py_ssize_t n, double param) noexcept nogil:
    cdef _Elementwise job = _call(op, _HALF, fa_half_codec_for(_level, is_bf16), grad_output,
                                  x, out, param)
    _elementwise(&job, n, _threads_for(n, _grain(op, False)))


cdef float *_half_weight(bint is_bf16, const void *weight, fa_index channels,
                         void **block) noexcept nogil:
    """The weight in float32 (exact), 64-byte aligned; NULL if out of memory."""
    block[0] = malloc(channels * sizeof(float) + 64)
    if block[0] == NULL:
        return NULL
    cdef float *w = <float *>((<size_t>block[0] + 63) // 64 * 64)
    fa_half_to_f32(is_bf16, <const fa_half *>weight, w, channels)
    return w


cdef int run_prelu_forward_half(bint is_bf16, const void *x, const void *weight, void *out,
                                Py_ssize_t outer, Py_ssize_t channels,
                                Py_ssize_t inner) noexcept nogil:
    """PReLU forward with x viewed as (outer, channels, inner); -1 when out of memory."""
    cdef const fa_table *t = _table
    cdef const fa_half_codec *c = fa_half_codec_for(_level, is_bf16)
    cdef fa_index n = outer * channels * inner
    cdef int nt = _threads_for(n, GRAIN_CHEAP)
    cdef const fa_half *xs = <const fa_half *>x
    cdef fa_half *os = <fa_half *>out
    cdef void *block
    cdef float *w
    cdef fa_index part, first, last, r, runs
    cdef int th
    cdef _Elementwise job
    if n == 0:
        return 0
    w = _half_weight(is_bf16, weight, channels, &block)
    if w == NULL:
        return -1
    if inner == 1:
        if nt <= 1:
            fa_half_prelu_rows(t, c, xs, w, os, outer, channels)
        else:
            part = (outer + nt - 1) // nt
            for th in prange(nt, num_threads=nt, schedule="static", chunksize=1):
                first = th * part
                last = min(first + part, outer)
                if first < last:
                    fa_half_prelu_rows(t, c, xs + first * channels, w, os + first * channels,
                                       last - first, channels)
    else:
        runs = outer * channels
        if nt <= 1:
            for r in range(runs):
                fa_half_forward(t, c, FA_LEAKY_RELU, xs + r * inner, os + r * inner, inner,
                                <double>w[r % channels])
        elif runs >= nt:
            for r in prange(runs, num_threads=nt, schedule="static"):
                fa_half_forward(t, c, FA_LEAKY_RELU, xs + r * inner, os + r * inner, inner,
                                <double>w[r % channels])
        else:
            for r in range(runs):
                job = _call(FA_LEAKY_RELU, _HALF, c, NULL, xs + r * inner, os + r * inner,
                            <double>w[r % channels])
                _elementwise(&job, inner, nt)
    free(block)
    return 0


cdef int run_prelu_backward_half(bint is_bf16, const void *grad_output, const void *x,
                                 const void *weight, void *grad_input, double *grad_weight,
                                 Py_ssize_t outer, Py_ssize_t channels,
                                 Py_ssize_t inner) noexcept nogil:
    """PReLU backward on half buffers: grad_input, and grad_weight summed in
    float64 in blocks of fixed size (as run_prelu_backward).  -1 when out of
    memory, else 0."""
    cdef const fa_table *t = _table
    cdef const fa_half_codec *c = fa_half_codec_for(_level, is_bf16)
    cdef fa_index n = outer * channels * inner
    cdef int nt = _threads_for(n, GRAIN_CHEAP)
    cdef const fa_half *gs = <const fa_half *>grad_output
    cdef const fa_half *xs = <const fa_half *>x
    cdef fa_half *gin = <fa_half *>grad_input
    cdef void *block
    cdef float *w
    cdef double *partial
    cdef fa_index rows_per_block, blocks, b, r, ch, first, last
    cdef fa_index pieces_per_run, items, item, start, stop, runs
    for ch in range(channels):
        grad_weight[ch] = 0.0
    if n == 0:
        return 0
    w = _half_weight(is_bf16, weight, channels, &block)
    if w == NULL:
        return -1
    if inner == 1:
        rows_per_block = (REDUCE_BLOCK + channels - 1) // channels
        blocks = (outer + rows_per_block - 1) // rows_per_block
        partial = <double *>calloc(blocks * channels, sizeof(double))
        if partial == NULL:
            free(block)
            return -1
        for b in prange(blocks, num_threads=nt, schedule="static"):
            first = b * rows_per_block
            last = first + rows_per_block
            if last > outer:
                last = outer
            for r in range(first, last):
                fa_half_prelu_vector_backward(t, c, gs + r * channels, xs + r * channels, w,
                                              gin + r * channels, partial + b * channels,
                                              channels)
        for b in range(blocks):
            for ch in range(channels):
                grad_weight[ch] += partial[b * channels + ch]
    else:
        runs = outer * channels
        pieces_per_run = (inner + REDUCE_BLOCK - 1) // REDUCE_BLOCK
        items = runs * pieces_per_run
        partial = <double *>malloc(items * sizeof(double))
        if partial == NULL:
            free(block)
            return -1
        for item in prange(items, num_threads=nt, schedule="static"):
            r = item // pieces_per_run
            start = (item % pieces_per_run) * REDUCE_BLOCK
            stop = start + REDUCE_BLOCK
            if stop > inner:
                stop = inner
            partial[item] = fa_half_prelu_run_backward(t, c, gs + r * inner + start,
                                                       xs + r * inner + start,
                                                       <double>w[r % channels],
                                                       gin + r * inner + start, stop - start)
        for item in range(items):
            grad_weight[(item // pieces_per_run) % channels] += partial[item]
    free(partial)
    free(block)
    return 0


def copy_bytes(src, dst):
    """dst[:] = src[:] for contiguous arrays of one itemsize and size, by
    bytes, threaded like copy(): the copy bandwidth of half arrays."""
    cdef const unsigned char[::1] s = memoryview(src).cast("B")
    cdef unsigned char[::1] d = memoryview(dst).cast("B")
    cdef fa_index n = s.shape[0]
    if d.shape[0] != n:
        raise ValueError("src and dst must have the same number of bytes")
    if n == 0:
        return
    with nogil:     # threads split as for 2-byte items, in 2-byte slices
        _threaded_copy(<const char *>&s[0], <char *>&d[0], n // 2, 2,
                       _threads_for(n // 2, GRAIN_CHEAP))
        if n % 2:
            d[n - 1] = s[n - 1]
