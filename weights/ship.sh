#!/usr/bin/env bash
# Promote a finished training run to the shipped model and rebuild every shipped artifact.
#
# Why a script: the shipped set (checkpoint + sidecar + log, and its ONNX / OpenVINO / LiteRT /
# TensorRT exports in FP32 and INT8) must be reproducible from one checkpoint with one command,
# and must be rebuilt together so every sidecar names the same source checkpoint sha256.
#
#   bash weights/ship.sh runs/lite [IMGSZ] [DATA_ROOT]
#
# DST=weights/<name> builds a second model set beside the shipped one (the runtime uses it with
# SPIRE_EDGE_WEIGHTS=weights/<name> or --model <artifact folder>).
# IMGSZ (default 512) is the static input of the exports; frames larger than it are tiled by
# edge.run. INT8 is calibrated on the training split of DATA_ROOT/sirst-v2 (and checked on its val
# split), never on a test split.
set -euo pipefail
RUN=${1:?usage: bash weights/ship.sh RUN_DIR [IMGSZ] [DATA_ROOT]}
IMGSZ=${2:-512}
DATA=${3:-../shared/data}
PY=${PY:-python3}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DST=${DST:-weights/shipped}
for f in best.pt metadata.json log.csv train_args.json; do
  [ -f "$RUN/$f" ] || { echo "error: $RUN/$f missing; is $RUN a finished spire.train run?" >&2; exit 2; }
done
# Build into a fresh folder, swap at the end: a failed rebuild never leaves a half-shipped set.
NEW=$(mktemp -d weights/.shipped.XXXX)
trap 'rm -rf "$NEW"' EXIT
cp "$RUN"/{best.pt,metadata.json,log.csv,train_args.json} "$NEW/"
W="$NEW/best.pt"
for t in onnx openvino tflite tensorrt; do
  $PY -m export --weights "$W" --target "$t" --precision fp32 --imgsz "$IMGSZ" --out "$NEW/export"
done
$PY -m export --weights "$W" --target tflite --precision fp16 --imgsz "$IMGSZ" --out "$NEW/export"
# One PTQ run per backend: a converter that cannot produce a faithful INT8 model for this
# architecture (quantize refuses it with the reason) leaves that artifact out, says why in
# export/NOT_SHIPPED.txt, and does not stop the others. ONNX Runtime and OpenVINO must succeed.
# PTQ_ARGS_<backend> adds quantize.ptq options for one backend, e.g. (weights/dense):
#   PTQ_ARGS_onnxruntime="--calibrate-method Percentile --frames 120" PTQ_ARGS_tflite="--ignored-scope gate"
ptq_args() { local v="PTQ_ARGS_$1"; echo "${!v:-}"; }
for b in onnxruntime openvino tensorrt tflite; do
  if ! $PY -m quantize.ptq --weights "$W" --backend "$b" --imgsz "$IMGSZ" \
      --data "$DATA/sirst-v2" --split train --frames 300 --val-data "$DATA/sirst-v2" --val-split val \
      --val-frames 212 --threads "${THREADS:-2}" --out "$NEW/export" $(ptq_args "$b") 2>"$NEW/ptq_$b.err"; then
    tail -n 1 "$NEW/ptq_$b.err" >&2
    case $b in onnxruntime|openvino) exit 1 ;; esac
    echo "$b int8: $(tail -n 1 "$NEW/ptq_$b.err")" >> "$NEW/export/NOT_SHIPPED.txt"
  fi
  rm -f "$NEW/ptq_$b.err"
done
# QAT (QAT_EPOCHS=N): fake-quantised fine-tuning of the same checkpoint; each QAT artifact replaces
# the PTQ one of its backend only when its fidelity report has the higher INT8 F1 on validation.
if [ -n "${QAT_EPOCHS:-}" ]; then
  $PY -m quantize.qat --weights "$W" --data "$DATA/nuaa-sirst" "$DATA/sirst-v2" --val-data "$DATA/sirst-v2" \
    --imgsz "$IMGSZ" --epochs "$QAT_EPOCHS" --backend onnxruntime,openvino,tensorrt --val-frames 212 \
    --threads "${THREADS:-2}" --quiet --out "$NEW/qat"
  $PY - "$NEW/qat" "$NEW/export" <<'PYEOF'
import json, shutil, sys
from pathlib import Path
qat, exp = Path(sys.argv[1]), Path(sys.argv[2])
for f in sorted(qat.glob("*/fidelity.json")):
    ptq = exp / f.parent.name / "fidelity.json"
    q = json.loads(f.read_text())["int8_f1"]
    p = json.loads(ptq.read_text())["int8_f1"] if ptq.is_file() else -1.0
    keep = "qat" if q > p else "ptq"
    print(f"{f.parent.name}: INT8 F1 ptq {p:.4f} qat {q:.4f} -> ship {keep}")
    if keep == "qat":
        if ptq.parent.is_dir():
            shutil.copy(ptq, f.parent / "fidelity_ptq.json")
            shutil.rmtree(ptq.parent)
        shutil.move(str(f.parent), str(ptq.parent))
PYEOF
  mv "$NEW/qat/log.csv" "$NEW/qat_log.csv" 2>/dev/null || true
  rm -rf "$NEW/qat"
fi
# Per-backend default (edge.zoo reads export/defaults.json): the INT8 artifact only where its fidelity
# report shows it both faster than FP32 and within 0.5 F1 point of it on validation; else FP32.
$PY - "$NEW/export" <<'PYEOF'
import json, sys
from pathlib import Path
exp = Path(sys.argv[1])
fmts = {"onnx": "onnx", "openvino": "openvino_model", "tflite": "tflite", "tensorrt": "tensorrt"}
defaults = {}
for fmt, suffix in fmts.items():
    fp32 = sorted(exp.glob(f"*_fp32_{suffix}"))
    int8 = sorted(exp.glob(f"*_int8_{suffix}"))
    pick = fp32[0].name if fp32 else None
    if int8 and (int8[0] / "fidelity.json").is_file():
        f = json.loads((int8[0] / "fidelity.json").read_text())
        if f["int8_f1"] >= f["fp32_f1"] - 0.005 and (f.get("speedup") or 0) > 1.0:
            pick = int8[0].name
        print(f"{fmt}: INT8 F1 {f['int8_f1']:.4f} vs FP32 {f['fp32_f1']:.4f}, speed-up {f.get('speedup')} -> default {pick}")
    if pick:
        defaults[fmt] = pick
(exp / "defaults.json").write_text(json.dumps(defaults, indent=2) + "\n")
PYEOF
rm -rf "$DST.old"
[ -d "$DST" ] && mv "$DST" "$DST.old"
mv "$NEW" "$DST"
rm -rf "$DST.old"
trap - EXIT
echo "shipped: $DST (next: python -m benchmarks.run --data $DATA/sirst-v2 --split val, then write $DST/export/defaults.json)"
