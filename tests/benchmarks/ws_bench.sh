#!/usr/bin/env bash
# WebSocket echo benchmark: 50 connections, one message in flight each, 64 B and 64 KiB
# binary messages, against
#   ws_torsion  tests/benchmarks/ws_echo (torsion's websocket() upgrade + an echo protocol)
#   ws_python   python3-websockets' asyncio echo server (compression off, as the client
#               offers none)
#   raw_torsion tests/benchmarks/torsion_echo, a raw TCP echo of the same bytes (the same
#               masked frames, sent back unchanged): the load without WebSocket's work
# interleaved round by round, each server pinned to CPU 0 and ws_loadgen to CPU 1. Prints
# the median over ROUNDS of messages/s and the server's CPU per message (utime+stime from
# /proc/PID/stat over the measured window), the ratio of torsion's WebSocket echo to the
# raw echo (the framing overhead; the issue's target for 64 B is at most 1.2x CPU per
# message) and the load average before and after.
#
#   tests/benchmarks/ws_bench.sh BUILD_DIR   (needs ws_echo, ws_loadgen and torsion_echo:
#                                             meson setup BUILD_DIR -Dbenchmarks=true)
#   ROUNDS=5 SECONDS_PER_RUN=5 CONNS=50 tests/benchmarks/ws_bench.sh build-bench
# Not a test: nothing here asserts a timing. The machine may be shared: say so with the
# figures, and compare only figures from the same run.
set -u
. "$(dirname "$0")/common.sh"
bench_init ws_bench.sh "$@"
for b in ws_echo ws_loadgen torsion_echo; do
  [ -x "$build/tests/benchmarks/$b" ] || { echo "missing $build/tests/benchmarks/$b (-Dbenchmarks=true)"; exit 1; }
done

# --- the servers: each start_* sets PID and PORT ---------------------------------------
start_ws_torsion() { start_with_port ws_torsion "$build/tests/benchmarks/ws_echo" --port 0; }
start_raw_torsion() { start_with_port raw_torsion "$build/tests/benchmarks/torsion_echo" --port 0; }
start_ws_python() {
  "$python" -c 'import websockets' 2>/dev/null || { PID=; return; }
  cat > "$work/ws_echo.py" <<'PY'
import asyncio, websockets
async def echo(ws, path=None):
    async for message in ws:
        await ws.send(message)
async def main():
    async with websockets.serve(echo, '127.0.0.1', 0, compression=None, max_size=2**20) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()
asyncio.run(main())
PY
  start_with_port ws_python "$python" "$work/ws_echo.py"
}
stop() { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; }

# --- one run: prints "rate cpu_us_per_msg" ----------------------------------------------
run_one() {  # server mode size
  local server=$1 mode=$2 size=$3
  "start_$server"
  [ -n "$PID" ] || { echo "- -"; return; }
  local out
  out=$("${pin_load[@]}" "$build/tests/benchmarks/ws_loadgen" --port "$PORT" --mode "$mode" \
        --conns "$conns" --size "$size" --seconds "$secs" --warmup 1 --server-pid "$PID" 2>&1)
  stop
  local rate cpu
  rate=$(sed -n 's/.* rate=\([0-9.]*\).*/\1/p' <<<"$out")
  cpu=$(sed -n 's/.*cpu_us_per_msg=\([0-9.]*\).*/\1/p' <<<"$out")
  if [ -z "$rate" ]; then echo "$server $size: $out" >&2; echo "- -"; return; fi
  echo "$rate $cpu"
}

servers=(ws_torsion ws_python raw_torsion)
declare -A mode=([ws_torsion]=ws [ws_python]=ws [raw_torsion]=raw)
sizes=(64 65536)
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)  (nproc $(nproc))"
start_time=$SECONDS
for r in $(seq 1 "$rounds"); do
  for size in "${sizes[@]}"; do
    for s in "${servers[@]}"; do
      read -r rate cpu < <(run_one "$s" "${mode[$s]}" "$size")
      echo "$rate" >> "$work/$s.$size.rate"
      echo "$cpu" >> "$work/$s.$size.cpu"
      echo "round $r size $size $s: $rate msg/s, $cpu us CPU/msg"
    done
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)  ($((SECONDS - start_time)) s)"
echo
printf '%-12s %8s %12s %14s\n' server size "msg/s" "cpu_us/msg"
for size in "${sizes[@]}"; do
  for s in "${servers[@]}"; do
    rate=$(grep -v '^-' "$work/$s.$size.rate" | median)
    cpu=$(grep -v '^-' "$work/$s.$size.cpu" | median)
    printf '%-12s %8s %12s %14s\n' "$s" "$size" "$rate" "$cpu"
    eval "med_${s}_${size}=$cpu"
  done
  ws=$(eval echo "\$med_ws_torsion_${size}"); raw=$(eval echo "\$med_raw_torsion_${size}")
  py=$(eval echo "\$med_ws_python_${size}")
  awk -v w="$ws" -v r="$raw" -v p="$py" -v s="$size" 'BEGIN {
    if (r > 0) printf "size %s: ws_torsion / raw_torsion CPU per message = %.2fx", s, w / r;
    if (w > 0 && p > 0) printf "; ws_python / ws_torsion = %.1fx", p / w;
    printf "\n" }'
done
