# Sourced by boards/<name>/bench.sh: produce the benchmark table on this device with its profile.
#   BOARD=name BACKENDS="b1 b2" source boards/common.sh; bench "$@"
# env: PY (python3), DATA (labelled dataset root; default: synthetic frames), SPLIT (val),
#      OUT (results folder; default runs/bench/<board>-<date>). Extra arguments go to benchmarks.run.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY=${PY:-python3}

die() { echo "error: $*" >&2; exit 2; }

check_install() {
  "$PY" -c "import edge" 2>/dev/null \
    || die "spire-edge is not importable with $PY; install it with the 'setup' commands in boards/$BOARD/profile.json"
}

bench() {
  cd "$root"
  [ -f "boards/$BOARD/profile.json" ] || die "boards/$BOARD/profile.json missing; restore it from git"
  check_install
  local out="${OUT:-runs/bench/$BOARD-$(date +%Y%m%d-%H%M%S)}"
  local args=(--board "$BOARD" --out "$out")
  # shellcheck disable=SC2206  # BACKENDS is a space-separated list on purpose
  [ -n "${BACKENDS:-}" ] && args+=(--backends $BACKENDS)
  [ -n "${DATA:-}" ] && args+=(--data "$DATA" --split "${SPLIT:-val}")
  echo "$PY -m benchmarks.run ${args[*]} $*"
  "$PY" -m benchmarks.run "${args[@]}" "$@"
  echo "table: $out/results.json (+ CSV and plot); also appended to benchmarks/results.log"
}
