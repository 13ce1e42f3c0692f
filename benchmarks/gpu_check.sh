#!/usr/bin/env bash
# The GPU path checked where a GPU is lent, in one go (about 8 minutes on one GPU), one table at
# the end: the CUDA tests, the training step against the reference (256 px, batch 1 and 8,
# baseline and +local; the reference without cuDNN autotuning or TF32), the swap's achieved
# TFLOP/s against its GEMM count at relu3_1 and relu4_1 of 512-px images, and a 2-epoch 256-px
# `labkit ablate` of the baseline with compile on. Refuses at once where no GPU is visible.
#
#     bash benchmarks/gpu_check.sh            # PYTHON=... to use another interpreter
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "gpu_check: no GPU is visible here (torch.cuda.is_available() is False); nothing was run" >&2
  exit 2
fi
out=$(mktemp -d)
export LABKIT_RUNS="$out/runs" LABKIT_LOG="$out/lablog"
rows=()
step() {  # step NAME COMMAND...: run it, keep its output, add a row (status, seconds)
  local name=$1; shift
  local started=$SECONDS
  echo "== $name: $*"
  if "$@" >"$out/$name.log" 2>&1; then status=ok; else status="FAILED (exit $?)"; fi
  cat "$out/$name.log"
  rows+=("$(printf '%-16s %-16s %5ss' "$name" "$status" "$((SECONDS - started))")")
}
"$PY" -c "import torch; p = torch.cuda.get_device_properties(0); print(f'GPU: {p.name}, {p.total_memory / 2**30:.0f} GiB; torch {torch.__version__}')"
step cuda-tests "$PY" -m pytest -q -n 0 -rs tests/test_speed.py tests/test_distributed.py tests/test_swap.py -k "cuda or gpu or autocast"
step train-step "$PY" benchmarks/train_step.py --device cuda --batch 1 8 --steps 20 --rounds 3 --warmup 5
step swap-relu3_1 "$PY" benchmarks/swap_memory.py --device cuda --size 512 --layer relu3_1
step swap-relu4_1 "$PY" benchmarks/swap_memory.py --device cuda --size 512 --layer relu4_1
step ablate-compiled "$PY" -m labkit.cli ablate baseline --no-log --no-progress --set device=cuda --set compile=on \
  --set image_size=256 --set n_epochs=1 --set n_epochs_decay=1 --set synthetic_count=48 --set eval_every=2
echo
echo "== gpu_check (logs in $out)"
printf '%s\n' "${rows[@]}"
grep -h -E "^(baseline|local), batch|TFLOP/s|FINISHED|FAILED|passed|failed" "$out"/*.log
