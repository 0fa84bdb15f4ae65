#!/usr/bin/env bash
# The GPU check of issue 16, in one call on one GPU (budget: under 8 minutes on an H200):
#   (a) the bundled tiny models in bf16 on CUDA: `generate`, and bench-style timings;
#   (b) one-process torchrun with a real process group (NCCL) for SynVid, AccVideo (adversarial
#       from step 0) and GPD, the students sharded with FSDP2, at tiny sizes;
#   (c) the Wan2.1-1.3B transformer with random weights: one SynVid trajectory at 81x480x832 and a
#       few AccVideo / GPD steps at the preset's settings, step time and peak memory beside
#       `accvideo plan` for the same config.
# Usage: bash scripts/gpu_check.sh OUT   (or OUT=... bash scripts/gpu_check.sh)
# Writes OUT/<part>.out (its JSON result) and OUT/<part>.log for every part, and OUT/figures.json; prints the table for docs/GPU.md.
# A part that fails is reported and the others still run; the exit status is 1 if any failed.
set -uo pipefail

OUT=${1:-${OUT:-}}
if [ -z "$OUT" ]; then
  echo "usage: bash scripts/gpu_check.sh OUT_DIR (or set OUT): the folder for the figures" >&2
  exit 2
fi
cd "$(dirname "$0")/.." || exit 2
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PY=${PYTHON:-python}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

if ! $PY -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
  echo "gpu_check: no CUDA device here (torch.cuda.is_available() is False); this check needs one GPU." \
       "Nothing was run. On a machine without a GPU run the CPU part instead:" \
       "python -m pytest tests/test_gpu_check.py" >&2
  exit 1
fi
GPU_MEM=$($PY -c 'import torch; print(round(torch.cuda.get_device_properties(0).total_memory / 1e9, 1))')
$PY -c 'import torch; print("gpu_check on", torch.cuda.get_device_name(0), "torch", torch.__version__)' \
  | tee "$OUT/device.txt"

# the big run folders (a real-size checkpoint is ~17 GB) go to scratch space, deleted at the end
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
STEPS=${GPU_CHECK_STEPS:-3}   # distillation steps at real size: the first pays warm-up, the rest are timed
FAILED=()
T0=$(date +%s)

# part NAME LIMIT_S CMD...: stdout to OUT/NAME.out, stderr to OUT/NAME.log, a time limit so that a
# hang in one part cannot eat the whole budget
part() {
  local name=$1 limit=$2 start
  shift 2
  start=$(date +%s)
  echo "== $name"
  if timeout "$limit" "$@" > "$OUT/$name.out" 2> "$OUT/$name.log"; then
    echo "   ok in $(( $(date +%s) - start )) s"
  else
    echo "   FAILED (exit $?) after $(( $(date +%s) - start )) s; last lines of $OUT/$name.log:"
    tail -n 5 "$OUT/$name.log" | sed 's/^/   | /'
    FAILED+=("$name")
  fi
}
# torchrun with one process that still starts the process group (NCCL here) and shards with FSDP2
TORCHRUN=(env ACCVIDEO_PROCESS_GROUP=1 "$PY" -m torch.distributed.run --standalone --nproc-per-node 1)

# (a) the tiny models in bf16 on CUDA
part tiny-generate-teacher 120 $PY -m accvideo generate --model tiny-teacher --prompt "a red circle moving left" \
  --dtype bf16 --device cuda --json
part tiny-generate-accvideo 120 $PY -m accvideo generate --model tiny-accvideo --prompt "a red circle moving left" \
  --dtype bf16 --device cuda --json
# `accvideo bench` has no --device / --dtype (its loader is in accvideo/eval/bench.py): the helper
# times the same generate() calls the same way (warm-up, interleaved, medians) in bf16 on CUDA
part tiny-bench 180 $PY scripts/gpu_check_real.py tiny --repeats 3

# (b) NCCL at world size 1, FSDP2, tiny sizes (the overrides of the 2-process gloo tests)
printf 'a red circle moving left\na blue square moving up\n' > "$WORK/prompts.txt"
part nccl-synvid 180 "${TORCHRUN[@]}" -m accvideo synvid --teacher tiny-teacher --prompts "$WORK/prompts.txt" \
  --num-steps 10 --store key:5 --compute-dtype bf16 --samples-per-prompt 2 --shard-size 2 --no-progress \
  --out "$WORK/tiny-synvid"
part nccl-accvideo 180 "${TORCHRUN[@]}" -m accvideo distill accvideo --teacher tiny-teacher \
  --synvid "$WORK/tiny-synvid" --out "$WORK/tiny-accvideo" \
  --set trainer.steps=3 --set trainer.batch_size=2 --set trainer.log_every=1 --set trainer.checkpoint_every=3 \
  --set trainer.warmup_steps=1 --set method.num_key_steps=5 --set method.adv_start=0 --set method.lambda_adv=0.5 \
  --set trainer.parallel=fsdp2 --set trainer.mixed_precision=bf16
part nccl-gpd 180 "${TORCHRUN[@]}" -m accvideo distill gpd --teacher tiny-teacher --out "$WORK/tiny-gpd" \
  --set trainer.steps=2 --set trainer.batch_size=2 --set trainer.log_every=1 --set trainer.checkpoint_every=2 \
  --set trainer.warmup_steps=1 --set trainer.lr=1e-3 --set method.teacher_steps=4 --set "method.schedule=[2,1]" \
  --set trainer.parallel=fsdp2 --set trainer.mixed_precision=bf16

# (c) the real Wan2.1-1.3B architecture, random weights, the preset's settings
REAL="$WORK/wan2.1-1.3b-random"
part real-build 240 $PY scripts/gpu_check_real.py build "$REAL"
part real-synvid 240 $PY scripts/gpu_check_real.py synvid --teacher "$REAL" --out "$WORK/real-synvid" \
 
part plan-synvid 120 $PY -m accvideo plan configs/wan2.1-t2v-1.3b/synvid.yaml --gpus 1 --gpu-mem "$GPU_MEM" --json
part real-accvideo 300 $PY scripts/gpu_check_real.py distill accvideo --torchrun --teacher "$REAL" \
  --synvid "$WORK/real-synvid" --out "$WORK/real-accvideo" --steps "$STEPS"
rm -rf "$WORK/real-accvideo"  # its checkpoint and exported student: ~23 GB of disk
part plan-accvideo 120 $PY -m accvideo plan configs/wan2.1-t2v-1.3b/accvideo.yaml --gpus 1 --gpu-mem "$GPU_MEM" \
  --set method.adv_start=0 --json
part real-gpd 300 $PY scripts/gpu_check_real.py distill gpd --torchrun --teacher "$REAL" \
  --out "$WORK/real-gpd" --steps "$STEPS"
rm -rf "$WORK/real-gpd"
part plan-gpd 120 $PY -m accvideo plan configs/wan2.1-t2v-1.3b/gpd.yaml --gpus 1 --gpu-mem "$GPU_MEM" \
  --set "method.schedule=[24]" --json

echo "== figures ($(( $(date +%s) - T0 )) s in all)"
$PY scripts/gpu_check_real.py report "$OUT"
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "gpu_check: FAILED parts: ${FAILED[*]} (their logs are in $OUT)" >&2
  exit 1
fi
echo "gpu_check: all parts passed; figures in $OUT/figures.json"
