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
# THR before PTQ: each fidelity report then compares INT8 with FP32 at the threshold that ships.
if [ -n "${THR:-}" ]; then
  $PY -m quantize.pick "$NEW/export" --thr "$THR" ${FIT:+--fit "$FIT"} --thr-rule "$THR_RULE" >/dev/null
fi
# One PTQ run per backend: a converter that cannot produce a faithful INT8 model for this
# architecture (quantize refuses it with the reason) leaves that artifact out, says why in
# export/NOT_SHIPPED.txt, and does not stop the others. ONNX Runtime and OpenVINO must succeed.
# --allow-drop (here and for QAT): every INT8 artifact is kept with its fidelity.json, and
# quantize.pick below is the gate (INT8 is a backend's default only within 0.5 F1 point of FP32).
# Each backend follows the architecture's INT8 recipe (spire.models ModelCfg.int8: the layers kept in
# FP32, the calibration statistic); PTQ_ARGS_<backend> adds or overrides quantize.ptq options, e.g.
#   PTQ_ARGS_onnxruntime="--calibrate-method MinMax --frames 120" PTQ_ARGS_tflite="--ignored-scope gate"
ptq_args() { local v="PTQ_ARGS_$1"; echo "${!v:-}"; }
for b in onnxruntime openvino tensorrt tflite; do
  if ! $PY -m quantize.ptq --weights "$W" --backend "$b" --imgsz "$IMGSZ" \
      --data "$DATA/sirst-v2" --split train --frames 300 --val-data "$DATA/sirst-v2" --val-split val \
      --val-frames 212 --threads "${THREADS:-2}" --allow-drop --out "$NEW/export" $(ptq_args "$b") \
      2>"$NEW/ptq_$b.err"; then
    tail -n 1 "$NEW/ptq_$b.err" >&2
    case $b in onnxruntime|openvino) exit 1 ;; esac
    echo "$b int8: $(tail -n 1 "$NEW/ptq_$b.err")" >> "$NEW/export/NOT_SHIPPED.txt"
  fi
  rm -f "$NEW/ptq_$b.err"
done
# QAT (QAT_EPOCHS=N): fake-quantised fine-tuning of the same checkpoint into $NEW/qat.
if [ -n "${QAT_EPOCHS:-}" ]; then
  $PY -m quantize.qat --weights "$W" --data "$DATA/nuaa-sirst" "$DATA/sirst-v2" --val-data "$DATA/sirst-v2" \
    --imgsz "$IMGSZ" --epochs "$QAT_EPOCHS" --backend onnxruntime,openvino,tensorrt --val-frames 212 \
    --threads "${THREADS:-2}" --allow-drop --quiet --out "$NEW/qat"
fi
# Which INT8 artifact ships (QAT where it beats PTQ) and each backend's default (export/defaults.json,
# read by edge.zoo): INT8 only where its report shows it faster than FP32 and within 0.5 F1 point.
# THR=T THR_RULE="why" [FIT=pad]: one decode threshold (and small-frame policy) for the checkpoint and every artifact (chosen on validation;
# the reason is kept in each sidecar's extra.operating_point).
$PY -m quantize.pick "$NEW/export" ${QAT_EPOCHS:+--qat "$NEW/qat"} ${THR:+--thr "$THR" ${FIT:+--fit "$FIT"} --thr-rule "$THR_RULE"}
if [ -d "$NEW/qat" ]; then
  mv "$NEW/qat/log.csv" "$NEW/qat_log.csv" 2>/dev/null || true
  rm -rf "$NEW/qat"
fi
rm -rf "$DST.old"
[ -d "$DST" ] && mv "$DST" "$DST.old"
mv "$NEW" "$DST"
rm -rf "$DST.old"
trap - EXIT
echo "shipped: $DST (next: python -m benchmarks.run --model $DST/best.pt --data $DATA/sirst-v2 --split val)"
