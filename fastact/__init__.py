"""fastact: fast, exact CPU kernels for neural-network activations.

Forward and backward passes of ReLU, Leaky ReLU, PReLU and GELU (exact and
tanh forms) on NumPy float32 and float64 arrays of any shape and layout,
threaded with OpenMP and vectorised for the CPU they run on.

>>> import numpy as np, fastact as fa
>>> x = np.linspace(-2, 2, 5, dtype=np.float32)
>>> fa.relu(x)
array([0., 0., 0., 1., 2.], dtype=float32)
"""

import os as _os

# GNU OpenMP lets idle worker threads spin for ~300,000 iterations before
# sleeping.  On a machine whose cores are shared with other processes that
# spinning steals the core a descheduled worker needs, and a 2-thread call
# was measured 30x slower than a 1-thread one (16.6 ms against 0.7 ms for a
# 2^20-element ReLU next to one busy process); with a short spin it stayed
# faster than 1 thread.  libgomp reads this when it is loaded, which is just
# below, so it only applies if nothing loaded libgomp earlier and the user
# has not chosen a policy.
if "GOMP_SPINCOUNT" not in _os.environ and "OMP_WAIT_POLICY" not in _os.environ:
    _os.environ["GOMP_SPINCOUNT"] = "1000"

from . import _kernels  # noqa: E402  (after the OpenMP environment is settled)
from ._ops import (
    gelu,
    gelu_backward,
    leaky_relu,
    leaky_relu_backward,
    prelu,
    prelu_backward,
    relu,
    relu_backward,
)
from ._version import __version__

__all__ = [
    "relu",
    "relu_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "prelu",
    "prelu_backward",
    "gelu",
    "gelu_backward",
    "set_num_threads",
    "get_num_threads",
    "show_config",
    "__version__",
]


def set_num_threads(n):
    """Set the number of threads fastact's kernels use.

    Parameters
    ----------
    n : int
        A positive number of threads.  It caps fastact's OpenMP threads in
        every Python thread and sets OpenMP's default in the calling one.
        ``OMP_NUM_THREADS`` and ``threadpoolctl.threadpool_limits`` also
        lower the count; the smallest limit wins.  In a process made by
        ``fork()`` fastact stays on 1 thread (GNU OpenMP's threads do not
        survive fork): n > 1 is then ignored with a ``RuntimeWarning``.

    Raises
    ------
    TypeError
        If n is not an integer.
    ValueError
        If n is less than 1.
    """
    if isinstance(n, bool) or not hasattr(n, "__index__"):
        raise TypeError(f"n must be an integer number of threads, got {type(n).__name__}")
    # a cap beyond any machine's threads means no cap; clamp it to a C int
    _kernels.set_num_threads(min(n.__index__(), 2**31 - 1))


def get_num_threads():
    """The number of threads a large call from this Python thread would use.

    Returns
    -------
    int
        At least 1; 1 when fastact was built without OpenMP, and 1 in a
        process made by ``fork()`` after fastact was imported.
    """
    return _kernels.get_num_threads()


def show_config(file=None):
    """Print (and return) how this fastact was built and what it runs with.

    Parameters
    ----------
    file : file-like, optional
        Where to print; defaults to standard output.

    Returns
    -------
    dict
        version, compiler, openmp, threads, forked_child (True when this
        process was forked after fastact's import, so runs serially),
        simd_level (in use), simd_detected (the CPU's best), simd_compiled and
        half_types (the float16/bfloat16 conversions of the level in use).
    """
    info = _config()
    lines = ["fastact " + info["version"]]
    for key in ("compiler", "openmp", "threads", "forked_child", "simd_level", "simd_detected",
                "simd_compiled", "half_types"):
        value = info[key]
        if isinstance(value, (list, tuple)):
            value = ", ".join(value)
        lines.append(f"  {key + ':':15s}{value}")
    print("\n".join(lines), file=file)
    return info


def _config():
    build = _kernels.build_info()
    return {
        "version": __version__,
        "compiler": build["compiler"],
        "openmp": build["openmp"],
        "threads": get_num_threads(),
        "forked_child": _kernels.forked_child(),
        "simd_level": _kernels.simd_level(),
        "simd_detected": _kernels.detected_simd_level(),
        "simd_compiled": list(build["simd_levels_compiled"]),
        "half_types": "; ".join(f"{k} {v}" for k, v in _kernels.half_conversions().items()),
    }


def _apply_simd_environment():
    """Honour FASTACT_SIMD=baseline|avx2|avx512 (a level above the CPU's is an error)."""
    wanted = _os.environ.get("FASTACT_SIMD", "").strip().lower()
    if wanted and wanted != "auto":
        try:
            _kernels.set_simd_level(wanted)
        except ValueError as exc:
            raise ImportError(f"FASTACT_SIMD={wanted!r}: {exc}") from None


_apply_simd_environment()
