#!/usr/bin/env bash
# Soak: examples/echo_server under several hundred connections for a bounded time, with
# every echoed byte checked by the load generator (tests/benchmarks/loadgen.cpp). Passes
# when every round had no error and the server's memory and descriptors did not grow
# from the first round to the last (connections closed between rounds).
# Usage: tests/soak/run.sh BUILD_DIR [SECONDS (60)] [CONNECTIONS (300)]
# Prints "soak: N passed, N failed".
set -u
build=${1:?usage: run.sh BUILD_DIR [SECONDS] [CONNECTIONS]}
seconds=${2:-60}
conns=${3:-300}
rounds=6
per_round=$(awk -v s="$seconds" -v r="$rounds" 'BEGIN { printf "%.1f", s / r }')
loadgen="$build/tests/soak_loadgen"
passed=0
failed=0
check() {
  if [ "$2" -eq 0 ]; then passed=$((passed + 1)); echo "PASS $1"; else failed=$((failed + 1)); echo "FAIL $1 ${3:-}"; fi
}

fifo=$(mktemp -u); mkfifo "$fifo"
"$build/examples/echo_server" > "$fifo" &
server=$!
trap 'kill $server 2>/dev/null; wait 2>/dev/null; rm -f "$fifo"' EXIT
exec {fd}<"$fifo"
line=""; read -r -t 10 -u "$fd" line
port=${line##*:}

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$server/status"; }
fds() { ls "/proc/$server/fd" | wc -l; }
idle_fds=$(fds)

errors=0
messages=0
for round in $(seq 1 $rounds); do
  out=$("$loadgen" --port "$port" --mode echo --conns "$conns" --depth 1 --size 64 \
          --seconds "$per_round" --warmup 0 2>&1)
  status=$?
  [ $status -eq 0 ] || { errors=$((errors + 1)); echo "round $round: status $status: $out"; }
  n=$(printf '%s\n' "$out" | tr ' ' '\n' | sed -n 's/^msgs=//p' | head -1)
  messages=$((messages + ${n:-0}))
  # The round's connections are closed once loadgen exits; give the server its turn
  # to see them go (bounded: 5 s), then read its memory and descriptors.
  for _ in $(seq 50); do [ "$(fds)" -le "$idle_fds" ] && break; read -r -t 0.1 -u "$fd" _ ; done
  [ "$round" -eq 1 ] && base_rss=$(rss)
  echo "round $round: status $status, $(fds) descriptors, VmRSS $(rss) KiB"
done
end_rss=$(rss); end_fds=$(fds)

check "soak: $rounds rounds of $conns connections, every echo checked, no error" $((errors > 0)) "$errors bad rounds"
[ "$messages" -gt 0 ]; check "soak: messages were echoed ($messages)" $?
[ "$end_fds" -eq "$idle_fds" ]; check "soak: descriptors back to $idle_fds after the rounds" $? "now $end_fds"
[ "$end_rss" -le $((base_rss + 2048)) ]; check "soak: server memory did not grow (VmRSS $base_rss -> $end_rss KiB)" $?
echo "soak: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
