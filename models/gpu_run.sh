#!/usr/bin/env bash
# The prepared GPU run: the training stages of a recipe in ONE device command (< 10 minutes of one
# H100 or H200: MINUTES is wall-clock, so a slower card trains fewer epochs in the same time), on Keras 3's
# PyTorch backend. Everything else (pack, prior, export, card) runs on the CPU.
#
# Here, first:   python -m models.gpu_prep             (builds .gpu/pack and .whl, both git-ignored)
#                python -m models.gpu_prep --aside     (the float references, not read there, out of the tree)
# There:         bash models/gpu_run.sh                (device tool: carry .gpu and .whl)
# Back here:     python -m models.gpu_prep --restore, then
#                python -m models.gpu_prep --unpack DIR  (puts the weights into the run folder), then
#                python -m models.train --recipe models/recipes/gpu-teacher-student.yaml --resume --ship
#
# Settings: RECIPE (models/recipes/gpu-teacher-student.yaml), MINUTES of training (6.5), PARALLEL variants side by
# side (4), OUT (the device tool's result folder; at most 8 files come back).
set -uo pipefail
RECIPE=${RECIPE:-models/recipes/gpu-teacher-student.yaml}
MINUTES=${MINUTES:-6.5}
PARALLEL=${PARALLEL:-4}
OUT=${OUT:-/tmp/gpu_out}
RUN=${RUN:-/tmp/fer_run}
PACK=${PACK:-.gpu/pack}
mkdir -p "$OUT" "$RUN"
if [ -z "${SKIP_WHEELS:-}" ] && ls .whl/*.whl >/dev/null 2>&1; then   # Keras 3 and what it lacks there (PyTorch is installed)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 3
  export PYTHONPATH=/tmp/site:$PWD
fi
export KERAS_BACKEND=${KERAS_BACKEND:-torch} PYTHONUNBUFFERED=1
PRECISION=${PRECISION:-float32}   # the loop is bound by Python and augmentation, not by FLOPs
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1; python3 -c \
  "import torch, keras; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'keras', keras.__version__)") \
  | tee "$OUT/machine.txt"
START=$(date +%s)
python3 -m models.train --recipe "$RECIPE" --run "$RUN" --pack "$PACK" --steps stages \
  --time-budget "$MINUTES" --parallel "$PARALLEL" --workers "$(( $(nproc) - 1 ))" \
  --precision "$PRECISION" 2>&1 | tr '\r' '\n' | grep -v '\[#* *\]' | tee "$OUT/train.log"
echo "training took $(( $(date +%s) - START )) s" | tee -a "$OUT/train.log"
python3 -m models.gpu_prep --collect "$RUN" --out "$OUT"
