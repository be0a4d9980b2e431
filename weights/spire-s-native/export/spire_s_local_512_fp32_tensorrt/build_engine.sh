#!/usr/bin/env bash
# Build a TensorRT engine from an exported SPIRE-Edge `*_tensorrt/` artifact ON the device that
# will run it (an engine only runs on the TensorRT version and GPU that built it), then compare
# the engine's outputs with onnxruntime on the same ONNX and the same inputs (polygraphy).
#
#   usage: build_engine.sh [ARTIFACT_DIR] [--precision fp32|fp16|int8] [--workspace MiB]
#                          [--dla N] [--no-compare] [-- extra trtexec flags]
#
#   ARTIFACT_DIR  folder written by `python -m export --target tensorrt` (onnx + metadata.json);
#                 default: the folder this script sits in, when it holds a metadata.json.
#   --precision   default: the sidecar's. fp32: plain; fp16: --fp16;
#                 int8 (a Q/DQ ONNX): TensorRT >= 10 --stronglyTyped, TensorRT 8.x --int8 --fp16.
#   --dla N       run on DLA core N (Jetson AGX/NX Orin) with GPU fallback.
#   env: TRTEXEC (path to trtexec), TRT_VERSION (skip version detection), PY (python3).
# Writes ARTIFACT_DIR/<stem>.engine (atomically; its sha256 into metadata.json "files", checked on
# load), build_engine.log and, with the comparison,
# polygraphy_inputs.json / onnxrt_outputs.json. Then run:
#   python3 -m edge.run --backend tensorrt --model ARTIFACT_DIR
set -euo pipefail

die() { echo "error: $*" >&2; exit 2; }
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY=${PY:-python3}
dir="" prec="" ws=1024 compare=1 dla=""
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --precision) prec="${2:-}"; shift 2 ;;
    --workspace) ws="${2:-}"; shift 2 ;;
    --dla) dla="${2:-}"; shift 2 ;;
    --no-compare) compare=0; shift ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    -*) die "unknown option $1 (see $0 --help)" ;;
    *) dir="$1"; shift ;;
  esac
done
if [ -z "$dir" ] && [ -f "$here/metadata.json" ]; then dir="$here"; fi
[ -n "$dir" ] || die "pass the exported *_tensorrt folder (python -m export --target tensorrt --precision int8)"
dir="$(cd "$dir" && pwd)"
meta="$dir/metadata.json"
[ -f "$meta" ] || die "$dir: no metadata.json; export it with python -m export --target tensorrt"

# model file, precision, format, sha256, input name from the sidecar (python3 ships with JetPack)
read -r onnx sprec fmt sha inname < <("$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(d["model_file"], d["precision"], d["format"], d["model_sha256"], d["input"]["name"])' "$meta") \
  || die "$meta: unreadable sidecar; re-export with python -m export --target tensorrt"
[ "$fmt" = "tensorrt" ] || die "$meta: format is '$fmt', not 'tensorrt'; export with --target tensorrt"
prec="${prec:-$sprec}"
case "$prec" in fp32|fp16|int8) ;; *) die "--precision $prec: choose fp32, fp16 or int8" ;; esac
[ "$prec" != "int8" ] || [ "$sprec" = "int8" ] \
  || die "$meta: this ONNX is $sprec (no Q/DQ); for int8 export with python -m export --target tensorrt --precision int8"
model="$dir/$onnx"
[ -f "$model" ] || die "$model: missing; copy the whole artifact folder or re-export it"
got=$(sha256sum "$model" | cut -d' ' -f1)
[ "$got" = "$sha" ] || die "$model: sha256 differs from metadata.json (the ONNX was replaced); re-export it"
engine="$dir/${onnx%.onnx}.engine"

trtexec="${TRTEXEC:-$(command -v trtexec || echo /usr/src/tensorrt/bin/trtexec)}"
[ -x "$trtexec" ] || die "trtexec not found (JetPack: sudo apt install tensorrt; it lives in /usr/src/tensorrt/bin) or set TRTEXEC"
ver="${TRT_VERSION:-$("$PY" -c 'import tensorrt; print(tensorrt.__version__)' 2>/dev/null \
  || dpkg-query -W -f='${Version}' libnvinfer-bin 2>/dev/null || true)}"
major="${ver%%.*}"
[[ "$major" =~ ^[0-9]+$ ]] || die "cannot tell the TensorRT version (install python3-libnvinfer or set TRT_VERSION=10.3)"

case "$prec" in
  fp32) flags=() ;;
  fp16) flags=(--fp16) ;;
  int8) if [ "$major" -ge 10 ]; then flags=(--stronglyTyped); else flags=(--int8 --fp16); fi ;;
esac
[ -n "$dla" ] && flags+=(--useDLACore="$dla" --allowGPUFallback)

echo "TensorRT $ver: building $prec engine from $onnx (${flags[*]:-no precision flags})"
log="$dir/build_engine.log"
tmp_engine="$engine.tmp.$$"
trap 'rm -f "$tmp_engine"' EXIT
"$trtexec" --onnx="$model" --saveEngine="$tmp_engine" --memPoolSize=workspace:"$ws" \
  --timingCacheFile="$dir/timing.cache" ${flags[@]+"${flags[@]}"} ${extra[@]+"${extra[@]}"} 2>&1 | tee "$log"
[ -s "$tmp_engine" ] || die "trtexec wrote no engine; see $log"
mv -f "$tmp_engine" "$engine"
# the engine's sha256 goes into the sidecar's "files", so edge.run checks the engine it loads (edge.model.integrity)
"$PY" - "$meta" "$(basename "$engine")" "$(sha256sum "$engine" | cut -d' ' -f1)" <<'PYEOF' \
  || die "$meta: could not record the engine's sha256 (is the folder writable?)"
import json, os, sys, tempfile
path, name, sha = sys.argv[1:4]
d = json.load(open(path))
d.setdefault("files", {})[name] = sha
fd, tmp = tempfile.mkstemp(prefix=".metadata.", suffix=".tmp", dir=os.path.dirname(path))
with os.fdopen(fd, "w") as f:
    f.write(json.dumps(d, indent=2) + "\n")
os.chmod(tmp, os.stat(path).st_mode & 0o777)
os.replace(tmp, path)
PYEOF
echo "engine: $engine"

if [ "$compare" = 1 ]; then
  if ! command -v polygraphy >/dev/null 2>&1; then
    echo "polygraphy not installed (pip install polygraphy): skipped the TensorRT vs onnxruntime comparison"
  else
    case "$prec" in
      fp32) tol=(--atol 1e-3 --rtol 1e-3) ;;
      fp16) tol=(--atol 1e-2 --rtol 1e-2) ;;
      int8) tol=(--atol 5e-2 --rtol 5e-2 --check-error-stat mean) ;;
    esac
    # Same random inputs (normalised-pixel range) through onnxruntime, then through the built engine.
    polygraphy run "$model" --onnxrt --seed 0 --val-range "$inname:[-2,2]" \
      --save-inputs "$dir/polygraphy_inputs.json" --save-outputs "$dir/onnxrt_outputs.json"
    polygraphy run "$engine" --model-type engine --trt --load-inputs "$dir/polygraphy_inputs.json" \
      --load-outputs "$dir/onnxrt_outputs.json" "${tol[@]}" \
      || die "engine outputs differ from onnxruntime beyond ${tol[*]}; see above (try --precision fp16)"
  fi
fi
echo "next: python3 -m edge.run --backend tensorrt --model $dir"
