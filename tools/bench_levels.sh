#!/usr/bin/env bash
# The measurements behind docs/benchmarks.md and docs/half-precision.md, one
# SIMD level at a time, every side capped at that level (`fastact bench --simd`):
#   full-<level>.json              all 160 float32/float64 cells, N(0, 1)
#   gelu-<level>-<input>.json      GELU cells at 2^16 and 2^20 for each input scale
#   gelu-<level>-disttiny.json     float32 exact GELU where its result is subnormal
#   half-<level>.json              the float16/bfloat16 cells
# Usage: OUT=dir LEVELS="avx512 avx2 baseline" bash tools/bench_levels.sh
# Levels above the CPU's are skipped. Run it on a quiet machine: 30-60 minutes.
set -euo pipefail
out=${OUT:-bench-levels}
mkdir -p "$out"
detected=$(python -c "from fastact import _kernels; print(_kernels.detected_simd_level())")
order="baseline avx2 avx512"
for level in ${LEVELS:-avx512 avx2 baseline}; do
    case " ${order%%"$detected"*}$detected " in
        *" $level "*) ;;
        *) echo "== $level: above this CPU's $detected, skipped"; continue ;;
    esac
    echo "== $level: full run"
    fastact bench --simd "$level" --cpu-time --json "$out/full-$level.json" > "$out/full-$level.txt"
    tail -1 "$out/full-$level.txt"
    for input in "--scale 0.5" "--scale 2" "--scale 4" "--scale 8" "--dist t3"; do
        name=$(echo "$input" | tr -d ' -')
        fastact bench --simd "$level" --ops gelu,gelu_tanh --sizes 2^16,2^20 --cpu-time $input \
            --json "$out/gelu-$level-$name.json" > "$out/gelu-$level-$name.txt"
        echo "   GELU $input: $(tail -1 "$out/gelu-$level-$name.txt")"
    done
    # the issue's subnormal-result bar is about float32 exact GELU
    fastact bench --simd "$level" --ops gelu --dtypes float32 --sizes 2^16,2^20 --cpu-time \
        --dist tiny --json "$out/gelu-$level-disttiny.json" > "$out/gelu-$level-disttiny.txt"
    echo "   GELU float32 --dist tiny: $(tail -1 "$out/gelu-$level-disttiny.txt")"
    echo "== $level: float16/bfloat16"
    fastact bench --simd "$level" --dtypes float16,bfloat16 --no-numpy --cpu-time \
        --json "$out/half-$level.json" > "$out/half-$level.txt"
    tail -1 "$out/half-$level.txt"
done
