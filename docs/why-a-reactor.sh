#!/usr/bin/env bash
# Runs every step of docs/why-a-reactor.md once, in one run, against one rate-limited
# reader (the setup of examples/bulk_write.cpp's header: 8 MiB to a 4 MB/s reader, 212992-
# byte socket buffers, 20 busy jobs of 20 ms slices), and prints the page's table: wall
# time, CPU time (user + system) and the work done while waiting, per model.
# Usage: docs/why-a-reactor.sh [BUILD_DIR] (default: build)
set -euo pipefail
ex="${1:-build}/examples"
fifo=$(mktemp -u); mkfifo "$fifo"
"$ex/discard_server" --rate 4000000 --rcvbuf 212992 > "$fifo" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$fifo"' EXIT
exec {fd}<"$fifo"
read -r -t 10 -u "$fd" line
port=${line##*:}
echo "reader: discard_server --rate 4000000 --rcvbuf 212992 ($line); 8 MiB per step"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| step | program | wall | CPU | work done while waiting |"
echo "|---|---|---|---|---|"
# row STEP PROGRAM-LABEL CMD...: runs CMD and prints one table row from its output line.
row() {
  local step=$1 label=$2; shift 2
  local out; out=$("$@")
  local wall=${out#*wall=}; wall=${wall%%s *}
  local cpu=${out#*cpu=}; cpu=${cpu%%s *}
  local work="none"
  if [[ "$out" == *work_slices=* ]]; then
    local n=${out##*work_slices=}
    [ "$n" -gt 0 ] && work="$n slices of 1 ms"
  elif [[ "$out" == *busy_slices=* ]]; then
    local n=${out##*busy_slices=} bcpu=${out#*busy_cpu=} share=${out#*busy_share=}
    bcpu=${bcpu%%s *}; share=${share%% *}
    [ "$n" -gt 0 ] && work="$n slices of 20 ms: ${bcpu} s of CPU, ${share} of a core"
  fi
  printf '| %s | `%s` | %.2f s | %.2f s | %s |\n' "$step" "$label" "$wall" "$cpu" "$work"
}
args=(127.0.0.1 "$port" --mib 8 --sndbuf 212992)
row "1 blocking send" "why_blocking" "$ex/why_blocking" "${args[@]}"
row "2 non-blocking, by hand" "why_nonblocking" "$ex/why_nonblocking" "${args[@]}"
row "3 torsion transport" "bulk_write --busy none" "$ex/bulk_write" "${args[@]}" --busy none
row "4 work at idle priority" "bulk_write --busy idle" "$ex/bulk_write" "${args[@]}" --busy idle
row "(work at normal priority)" "bulk_write --busy normal" "$ex/bulk_write" "${args[@]}" --busy normal
row "5 coroutine client" "why_coroutine --busy none" "$ex/why_coroutine" "${args[@]}" --busy none
row "(coroutine, idle work)" "why_coroutine --busy idle" "$ex/why_coroutine" "${args[@]}" --busy idle
row "(coroutine, normal work)" "why_coroutine --busy normal" "$ex/why_coroutine" "${args[@]}" --busy normal
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
