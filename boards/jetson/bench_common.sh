# Jetson part of bench.sh: state the power mode, build missing TensorRT engines, then bench.
# Sourced after boards/common.sh by boards/jetson-*/bench.sh.
# env: ENGINE_DIRS (folders holding *_tensorrt artifacts; default "weights/shipped/export runs/export").
jetson_prepare() {
  cd "$root"
  if command -v nvpmodel >/dev/null 2>&1; then
    echo "power mode: $(nvpmodel -q 2>/dev/null | head -1) (max performance: sudo nvpmodel -m 0 && sudo jetson_clocks)"
  fi
  local d parent
  for parent in ${ENGINE_DIRS:-weights/shipped/export runs/export}; do
  for d in "$parent"/*_tensorrt; do
    [ -f "$d/metadata.json" ] || continue
    if ! ls "$d"/*.engine >/dev/null 2>&1; then
      echo "building the TensorRT engine for $d (once per device and TensorRT version)"
      bash boards/jetson/build_engine.sh "$d"
    fi
  done
  done
}
