"""Build the compiled parts of fastact.

Only what must be code lives here: the extension modules, the OpenMP probe
and the compiler flags.  Metadata is in pyproject.toml.

Environment variables read at build time:

FASTACT_OPENMP
    "0" builds without OpenMP (serial kernels); "1" requires it (the build
    fails if the compiler cannot do OpenMP); unset (or "auto") probes the
    compiler and falls back to a serial build with a warning.  "off"/"on",
    "false"/"true" and "no"/"yes" are accepted too.
FASTACT_LIBOMP_PREFIX
    macOS only: the prefix of an LLVM libomp (with include/omp.h and
    lib/libomp.dylib) for Apple clang.  Without it, the probe also tries
    $CONDA_PREFIX and Homebrew's libomp.  The wheels point it at a libomp
    built for their deployment target (see docs/packaging.md).
"""

import os
import shutil
import sys
import tempfile
import textwrap
import warnings

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return omp_get_max_threads() > 0 && n > 0 ? 0 : 1;
    }
    """
)


def _libomp_prefixes():
    """Where an LLVM libomp for Apple clang may live, most specific first."""
    candidates = [
        os.environ.get("FASTACT_LIBOMP_PREFIX", ""),
        os.environ.get("CONDA_PREFIX", ""),
        "/opt/homebrew/opt/libomp",  # Homebrew on Apple silicon
        "/usr/local/opt/libomp",  # Homebrew on Intel
    ]
    return [
        prefix
        for prefix in dict.fromkeys(c.strip() for c in candidates)
        if prefix and os.path.exists(os.path.join(prefix, "include", "omp.h"))
    ]


def _openmp_candidates(compiler_type):
    """Flag sets that may switch OpenMP on, as (compile_args, link_args) pairs.

    The probe takes the first one that compiles and links a small OpenMP
    program.
    """
    if compiler_type == "msvc":
        # MSVC's OpenMP 2.0 runtime, vcomp140.dll (vendored into the wheels by
        # delvewheel).  prange loops use signed indices, as 2.0 requires.
        return [(["/openmp"], [])]
    candidates = [(["-fopenmp"], ["-fopenmp"])]  # GCC, LLVM clang, Intel
    if sys.platform == "darwin":
        # Apple clang has no OpenMP runtime: it needs -Xpreprocessor -fopenmp
        # and LLVM's libomp, found through its prefix (the rpath lets delocate
        # find the library and a local build run in place).
        for prefix in _libomp_prefixes():
            include, lib = os.path.join(prefix, "include"), os.path.join(prefix, "lib")
            candidates.append(
                (
                    ["-Xpreprocessor", "-fopenmp", "-I" + include],
                    ["-L" + lib, "-lomp", "-Wl,-rpath," + lib],
                )
            )
        candidates.append((["-Xpreprocessor", "-fopenmp"], ["-lomp"]))
    return candidates


def _openmp_request():
    """FASTACT_OPENMP as "off", "on" or "auto"."""
    value = os.environ.get("FASTACT_OPENMP", "").strip().lower()
    if value in ("0", "off", "false", "no"):
        return "off"
    if value in ("1", "on", "true", "yes"):
        return "on"
    if value in ("", "auto"):
        return "auto"
    raise ValueError(f"FASTACT_OPENMP={value!r}: expected 0, 1 or auto")


def _speed_flags(compiler_type):
    """Optimisation flags that stay portable: no -march=native, ever.

    -fno-trapping-math lets GCC vectorise selects and polynomial maths; it
    changes only floating-point exception flags, never results.  ISA-specific
    code paths are chosen at run time (see fastact/_loops.h).
    """
    if compiler_type == "msvc":
        return ["/O2"]
    return ["-O3", "-fno-trapping-math", "-fno-math-errno"]


def _compiler_can_openmp(compiler, compile_args, link_args):
    """Compile and link a tiny OpenMP program; True when it works.

    The program is linked, never run, so cross-compiling probes correctly.
    """
    tmpdir = tempfile.mkdtemp(prefix="fastact-omp-")
    try:
        source = os.path.join(tmpdir, "probe.c")
        with open(source, "w") as handle:
            handle.write(OPENMP_PROBE)
        objects = compiler.compile([source], output_dir=tmpdir, extra_postargs=compile_args)
        compiler.link_executable(
            objects, "probe", output_dir=tmpdir, extra_postargs=link_args
        )
        return True
    except Exception:  # any compile or link failure means "no OpenMP here"
        return False
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _find_openmp_flags(compiler):
    """The first OpenMP flag set this compiler accepts, or None."""
    for compile_args, link_args in _openmp_candidates(compiler.compiler_type):
        if _compiler_can_openmp(compiler, compile_args, link_args):
            return compile_args, link_args
    return None


def _compiler_description(compiler):
    """A short human-readable name of the C compiler, for show_config()."""
    executable = getattr(compiler, "compiler", None) or [compiler.compiler_type]
    return " ".join(os.path.basename(part) for part in executable[:1])


class BuildExtWithOpenMP(build_ext):
    """build_ext that probes OpenMP and records what it decided in the modules."""

    def build_extensions(self):
        compiler_type = self.compiler.compiler_type
        request = _openmp_request()
        omp_compile, omp_link = [], []
        if request == "off":
            use_openmp = False
        else:
            found = _find_openmp_flags(self.compiler)
            use_openmp = found is not None
            if use_openmp:
                omp_compile, omp_link = found
            elif request == "on":
                raise RuntimeError(
                    "FASTACT_OPENMP=1 but the C compiler cannot build an OpenMP program"
                    + (" (on macOS: install libomp, or set FASTACT_LIBOMP_PREFIX)"
                       if sys.platform == "darwin" else "")
                )
            else:
                warnings.warn(
                    "The C compiler does not support OpenMP: building fastact "
                    "without threads (set FASTACT_OPENMP=0 to silence this).",
                    stacklevel=1,
                )
        print(
            "fastact: building %s OpenMP (FASTACT_OPENMP=%s)%s"
            % (
                "with" if use_openmp else "without",
                request,
                ": " + " ".join(omp_compile + omp_link) if use_openmp else "",
            )
        )

        compiler_name = _compiler_description(self.compiler)
        for ext in self.extensions:
            ext.extra_compile_args = _speed_flags(compiler_type) + omp_compile
            ext.extra_link_args = list(omp_link)
            ext.define_macros = [
                ("FASTACT_BUILT_WITH_OPENMP", "1" if use_openmp else "0"),
                ("FASTACT_COMPILER", '"%s"' % compiler_name.replace('"', "")),
            ]
        super().build_extensions()


def _extensions():
    from Cython.Build import cythonize

    directives = {
        "language_level": "3",
        "boundscheck": False,
        "wraparound": False,
        "cdivision": True,
        "initializedcheck": False,
        "embedsignature": True,
    }
    modules = [
        Extension(
            "fastact._kernels",
            ["fastact/_kernels.pyx"],
            include_dirs=["fastact"],
            depends=[
                "fastact/_dispatch.h",
                "fastact/_loops.h",
                "fastact/_simd.h",
                "fastact/_gelu_x86.h",
                "fastact/_gelu_f64_x86.h",
                "fastact/_gelu_sse2.h",
                "fastact/_gelu_f64_sse2.h",
                "fastact/_gelu_f64_near.h",
                "fastact/_gelu_f64_vundef.h",
                "fastact/_gelu_f64_far.h",
                "fastact/_gelu_f64_fvundef.h",
                "fastact/_half.h",
            ],
        ),
        Extension("fastact._ops", ["fastact/_ops.pyx"]),
        Extension(
            "fastact.nn._fused",
            ["fastact/nn/_fused.pyx"],
            include_dirs=["fastact/nn"],
            depends=["fastact/nn/_fused_impl.h"],
        ),
    ]
    return cythonize(modules, compiler_directives=directives)


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExtWithOpenMP})
