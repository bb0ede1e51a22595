#!/usr/bin/env bash
# Thread scaling on a many-core machine: build in place, then the grain sweep
# (tools/thread_scaling.py) and `fastact bench --threads 1,4,8,16 --sizes 2^20,2^24`.
# Writes into ${OUT:-.} : scaling.txt/json, bench16.txt/json.
set -uo pipefail
out=${OUT:-.}
nproc; lscpu | grep -E "Model name|Thread|Socket|NUMA node|L3" ; free -g | head -2
python3 -c "import torch, numpy, setuptools; print('torch', torch.__version__, 'numpy', numpy.__version__, 'setuptools', setuptools.__version__)"
if ! python3 setup.py build_ext --inplace -q >"$out/build.log" 2>&1; then
    # an older setuptools does not read the SPDX license string
    sed -i 's/^license = .*/license = {text = "BSD-3-Clause"}/; /^license-files/d' pyproject.toml
    python3 setup.py build_ext --inplace -q >>"$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
fi
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
python3 -m fastact info
python3 tools/thread_scaling.py --threads 1,2,4,8,16 --json "$out/scaling.json" | tee "$out/scaling.txt"
python3 -m fastact bench --threads 1,4,8,16 --sizes 2^20,2^24 ${BENCH_ARGS:-} --json "$out/bench16.json" | tee "$out/bench16.txt"
