#!/usr/bin/env bash
# Fine-tune the embedded shapes model with layout conditioning on a GPU, then bench it.
#
#   OUT=/some/folder scripts/train_embedded_gpu.sh [--minutes 7] [--batch 256] [--workers N] [--device auto]
#
# Starts from gems_mcp/shapes/weights (the shipped EMA weights; their conv_in gains zero-initialised
# layout channels), trains for --minutes of wall clock with N data workers (default: all cores),
# writes the EMA weights to "$OUT/ema" (model.safetensors + config.json, drop-in for
# gems_mcp/shapes/weights) and the log to "$OUT/train.log", then runs the first-try bench on the
# same device for position and color_attr, without and with plan_layout() layouts
# ("$OUT/bench.md"). Needs only `pip install -e .` and torch; downloads nothing.
set -euo pipefail

MINUTES=7
BATCH=""
WORKERS="$(nproc)"
DEVICE=auto
BENCH_LIMIT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) MINUTES="$2"; shift 2 ;;
    --batch) BATCH="$2"; shift 2 ;;
    --workers) WORKERS="$2"; shift 2 ;;
    --device) DEVICE="$2"; shift 2 ;;
    --bench-limit) BENCH_LIMIT="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
: "${OUT:?set OUT to an output folder}"
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.."

DEVICE="$(python -c "import torch,sys; d=sys.argv[1]; print(('cuda' if torch.cuda.is_available() else 'cpu') if d=='auto' else d)" "$DEVICE")"
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
echo "device $DEVICE, $MINUTES min, workers $WORKERS, cores $(nproc)"

BATCH_ARGS=()
[ -n "$BATCH" ] && BATCH_ARGS=(--batch "$BATCH")
THREADS=()
[ "$DEVICE" = cpu ] && THREADS=(--threads "$(nproc)")

start=$(date +%s)
python -m gems_mcp.shapes.train \
  --init-from gems_mcp/shapes/weights --size small --device "$DEVICE" \
  --minutes "$MINUTES" --schedule-steps auto --workers "$WORKERS" \
  --checkpoint-minutes 1000 --log-every 250 --out "$OUT" "${BATCH_ARGS[@]}" "${THREADS[@]}" \
  2>&1 | tee "$OUT/train.log"
rm -f "$OUT/checkpoint.pt"   # optimizer state too: only the EMA weights are the product
echo "training took $(( $(date +%s) - start )) s; weights in $OUT/ema:"
ls -l "$OUT/ema"
python -c "import json,sys; c=json.load(open(sys.argv[1])); print({k: c.get(k) for k in ('step','loss','batch','train_minutes','guidance')})" "$OUT/ema/config.json"

LIMIT_ARGS=()
[ -n "$BENCH_LIMIT" ] && LIMIT_ARGS=(--limit "$BENCH_LIMIT")
python -m gems_mcp.shapes.bench --weights "$OUT/ema" --device "$DEVICE" \
  --categories position,color_attr --no-speed "${LIMIT_ARGS[@]}" | tee "$OUT/bench.md"
echo "total $(( $(date +%s) - start )) s"
