#!/usr/bin/env bash
# Profiles the echo servers with callgrind (instruction counts are steady on a noisy
# machine): each server runs under valgrind, gets 1 s of warm-up load (connections made,
# buffers grown), then its counters are zeroed, it echoes 50 connections x DEPTH (1) x 64 B
# for SECONDS_RUN (4) and the profile is dumped. cg_report.py prints instructions and system
# calls per message (messages as the load generator counted them, every one echoed while
# the counters ran) and the costliest functions.
#
#   [DEPTH=16] tests/benchmarks/profile.sh [BUILD_DIR] [SERVER...]   (default: build, every server)
#
# Needs valgrind. The build should have debug info (the default debugoptimized has).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
shift || true
bin=$build/tests/benchmarks
servers=("$@")
if [ ${#servers[@]} -eq 0 ]; then
  servers=(torsion_echo asio_echo)
  [ -x "$bin/uv_echo" ] && servers+=(uv_echo)
fi
out=${OUT:-$(mktemp -d)}
for s in "${servers[@]}"; do
  valgrind --tool=callgrind --callgrind-out-file="$out/cg.$s" "$bin/$s" >"$out/$s.out" 2>"$out/$s.err" &
  vp=$!
  for _ in $(seq 200); do [ -s "$out/$s.out" ] && break; sleep 0.1; done
  line=$(head -n1 "$out/$s.out")
  port=${line##*:}
  "$bin/loadgen" --port "$port" --conns 50 --depth "${DEPTH:-1}" --size 64 --seconds 1 --warmup 0.2 >/dev/null
  callgrind_control -z "$vp" >/dev/null
  line=$("$bin/loadgen" --port "$port" --conns 50 --depth "${DEPTH:-1}" --size 64 --seconds "${SECONDS_RUN:-4}" --warmup 0)
  msgs=$(sed -n 's/.* total_msgs=\([0-9]*\).*/\1/p' <<<"$line")
  callgrind_control -d "$vp" >/dev/null
  kill "$vp"
  wait "$vp" 2>/dev/null || true
  echo "== $s"
  dumps=("$out"/cg."$s".*)
  python3 "$root/tests/benchmarks/cg_report.py" "${dumps[-1]}" "${TOP:-12}" "$msgs"
  echo
done
echo "profiles in $out (callgrind_annotate --inclusive=yes FILE)"
