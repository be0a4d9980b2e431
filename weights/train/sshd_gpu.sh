#!/usr/bin/env bash
# SSHD-Net, the heavy reference row (28.7 M parameters, 41 GMAC at 512²), trained from scratch on every
# training set of the rungs' mixture, sized for about 10 minutes of one GPU (the run stops itself after 9
# minutes, saving last.pt; continue it with `python -m spire.train --resume --out runs/sshd_gpu`).
# Nothing here needs a GPU to start: try it for one step on the CPU first (options given last win):
#   bash weights/train/sshd_gpu.sh --device cpu --threads 1 --workers 0 --batch 2 --epoch-size 2 \
#        --epochs 1 --max-val-frames 4 --out runs/sshd_try
# DATA (default ../shared/data) is the folder holding the four datasets; PYTHON the interpreter (default python).
set -euo pipefail
D=${DATA:-../shared/data}
exec "${PYTHON:-python}" -m spire.train --model sshd \
  --data "$D/nuaa-sirst" "$D/sirst-v2" "$D/ir-drone" "$D/irstd-1k" \
  --data-weights 0.15 0.225 0.375 0.25 --bg-weights 0 0.8 0.2 0 \
  --val-data "$D/sirst-v2" "$D/irstd-1k" "$D/ir-drone" --val-split val --val-frame-stride 10 \
  --val-fit pad --val-imgsz 512 \
  --imgsz 256 --batch 32 --epoch-size 4000 --epochs 40 --lr 1e-3 --eval-every 4 --photometric 0.5 \
  --device cuda --workers 8 --cache --time-limit-min 9 --out runs/sshd_gpu "$@"
