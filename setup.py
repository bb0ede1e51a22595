"""Build the compiled parts of fastact.

Only what must be code lives here: the extension modules, the OpenMP probe
and the compiler flags.  Metadata is in pyproject.toml.

Environment variables read at build time:

FASTACT_OPENMP
    "0" builds without OpenMP (serial kernels); "1" requires it (the build
    fails if the compiler cannot do OpenMP); unset probes the compiler and
    falls back to a serial build with a warning.
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


def _openmp_flags(compiler_type):
    """Return (compile_args, link_args) that switch OpenMP on for this compiler."""
    if compiler_type == "msvc":
        return ["/openmp"], []
    if sys.platform == "darwin":
        # Apple clang needs libomp installed separately (Homebrew or conda-forge).
        return ["-Xpreprocessor", "-fopenmp"], ["-lomp"]
    return ["-fopenmp"], ["-fopenmp"]


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
    """Compile and link a tiny OpenMP program; True when it works."""
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


def _compiler_description(compiler):
    """A short human-readable name of the C compiler, for show_config()."""
    executable = getattr(compiler, "compiler", None) or [compiler.compiler_type]
    return " ".join(os.path.basename(part) for part in executable[:1])


class BuildExtWithOpenMP(build_ext):
    """build_ext that probes OpenMP and records what it decided in the modules."""

    def build_extensions(self):
        compiler_type = self.compiler.compiler_type
        request = os.environ.get("FASTACT_OPENMP", "").strip()
        omp_compile, omp_link = _openmp_flags(compiler_type)
        if request == "0":
            use_openmp = False
        elif _compiler_can_openmp(self.compiler, omp_compile, omp_link):
            use_openmp = True
        elif request == "1":
            raise RuntimeError(
                "FASTACT_OPENMP=1 but the C compiler cannot build an OpenMP program"
            )
        else:
            warnings.warn(
                "The C compiler does not support OpenMP: building fastact "
                "without threads (set FASTACT_OPENMP=0 to silence this).",
                stacklevel=1,
            )
            use_openmp = False

        compiler_name = _compiler_description(self.compiler)
        for ext in self.extensions:
            ext.extra_compile_args = _speed_flags(compiler_type) + (
                omp_compile if use_openmp else []
            )
            ext.extra_link_args = omp_link if use_openmp else []
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
        Extension("fastact._kernels", ["fastact/_kernels.pyx"], include_dirs=["fastact"]),
        Extension("fastact._ops", ["fastact/_ops.pyx"]),
    ]
    if os.path.exists(os.path.join("fastact", "nn", "_fused.pyx")):
        modules.append(Extension("fastact.nn._fused", ["fastact/nn/_fused.pyx"]))
    return cythonize(modules, compiler_directives=directives)


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExtWithOpenMP})
