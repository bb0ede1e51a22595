#!/usr/bin/env bash
# Build fastact's extensions with AddressSanitizer and UndefinedBehaviorSanitizer
# (GCC) in a scratch copy of the source tree and run the kernel tests against
# that build.  Not part of CI (a few minutes, and ASan needs LD_PRELOAD).
#
#   bash tools/sanitize.sh [pytest arguments]
#
# Default tests: test_api, test_accuracy, test_threads, test_fork,
# test_memory, test_hostile (test_huge is deselected by its marker).  Needs the
# development environment (.venv with the [test] extra, Cython, setuptools).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
# SANITIZE_DIR=DIR reuses (or keeps) a build there; by default a scratch
# directory is made and removed unless a sanitizer reported something.
work="${SANITIZE_DIR:-}"
if [ -z "$work" ]; then
    work="$(mktemp -d "${TMPDIR:-/tmp}/fastact-sanitize.XXXXXX")"
    cleanup=1
fi
mkdir -p "$work"
reports="$work/reports"
flags="-fsanitize=address,undefined -fno-omit-frame-pointer -g"

if [ ! -f "$work/fastact/_kernels.c" ]; then
    # the working tree as it is (tracked and untracked files, no build products)
    (cd "$root" && git ls-files -z --cached --others --exclude-standard) |
        (cd "$root" && xargs -0 cp --parents -t "$work" 2>/dev/null || true)
    echo "== building in $work with $flags"
    # in CC, not CFLAGS/LDFLAGS: setup.py's OpenMP probe links a program
    # without LDFLAGS, and an unsanitized link of sanitized code fails
    (cd "$work" && CC="gcc $flags" FASTACT_OPENMP=1 "$python" setup.py -q build_ext \
        --inplace >build.log 2>&1) || { tail -30 "$work/build.log"; exit 1; }
fi
cd "$work"
rm -rf "$reports" && mkdir -p "$reports"

# CPython is not built with ASan, so its runtime must be loaded first; CPython
# leaks by design at exit, so leak detection is off.  PYTHONMALLOC=malloc sends
# Python's small objects through malloc too, where ASan sees them.
export LD_PRELOAD="$(gcc -print-file-name=libasan.so)"
# Reports go to files: pytest captures file descriptor 2 while a test runs.
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:log_path=$reports/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan"
export PYTHONMALLOC=malloc
"$python" -c "import fastact, sys; assert fastact.__file__.startswith('$work'), fastact.__file__; \
assert fastact._kernels.build_info()['openmp']; print('== testing', fastact.__file__)"
if [ $# -eq 0 ]; then
    # The fork-during-a-kernel test can hang under ASan itself: GCC 12's
    # runtime takes no fork handlers, so a child may wait on an allocator lock
    # another thread held at the fork (docs/sanitizers.md).
    set -- tests/test_api.py tests/test_accuracy.py tests/test_threads.py tests/test_fork.py \
        tests/test_memory.py tests/test_hostile.py \
        --deselect tests/test_fork.py::test_fork_while_another_thread_is_inside_a_kernel
fi
status=0
"$python" -m pytest -q -p no:cacheprovider "$@" || status=$?
if compgen -G "$reports/*" >/dev/null; then
    echo "== sanitizer reports (kept in $reports)"
    cat "$reports"/*
    exit 1
fi
echo "== no sanitizer reports"
[ "$status" -eq 0 ] && [ "${cleanup:-0}" = 1 ] && rm -rf "$work"
exit "$status"
