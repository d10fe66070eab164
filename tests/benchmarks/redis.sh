#!/usr/bin/env bash
# examples/kv_server against Debian's redis-server 7.0 (issue 17): redis-benchmark
# -t ping,set,get -n 200000 -c 50, without and with -P 16, and a redis-cli --pipe bulk
# load, run against each server in turn, round by round (interleaved, so that a noisy
# neighbour hurts both alike). Both servers run on 127.0.0.1 on CPU 0 and the load on
# CPU 1; the script starts them and stops them by PID. The figure that decides is the
# server's CPU time per request: the sum over its threads of /proc/PID/task/*/schedstat
# (ns on CPU) across one run, divided by the requests. Medians over ROUNDS; "min" is the
# least disturbed run. Prints one table.
#
#   tests/benchmarks/redis.sh [BUILD_DIR]     (default: build-bench, a release build;
#                                              build-bench-uring: kv_server on io_uring)
#
# Environment: ROUNDS (5), REQUESTS (200000), CLIENTS (50), PIPE_COMMANDS (148520),
# PIN (1), SYSCALLS (1 when perf can count tracepoints: one more run of each row per
# server under `perf stat`, printing its system calls per request by kind; exact, so
# neighbours do not disturb it), FLOOR (1: the PING_INLINE rows also run against
# tests/benchmarks/epoll_echo --pong, a minimal epoll server that answers each line with
# +PONG and parses nothing: the least CPU per request any server on this kernel can
# spend on that row, printed against both servers).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-bench}
ROUNDS=${ROUNDS:-5}
N=${REQUESTS:-200000}
C=${CLIENTS:-50}
PIPE_COMMANDS=${PIPE_COMMANDS:-148520}
PIN=${PIN:-1}

for tool in redis-server redis-benchmark redis-cli python3; do
  command -v "$tool" >/dev/null || { echo "redis.sh: $tool is missing (apt-get install redis-server redis-tools python3)"; exit 1; }
done
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$root" -Dbenchmarks=true -Dtests=false -Dbuildtype=release >/dev/null
else  # e.g. run.sh's BUILD_DIR-uring (io_uring), set up without the examples
  meson configure "$build" -Dexamples=true >/dev/null
fi
ninja -C "$build" -j2 examples/kv_server >/dev/null
FLOOR=${FLOOR:-1}
if [ "$FLOOR" = 1 ] && ! ninja -C "$build" -j2 tests/benchmarks/epoll_echo >/dev/null 2>&1; then
  echo "redis.sh: no epoll_echo in $build (-Dbenchmarks=true): the floor is skipped" >&2
  FLOOR=0
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

server_cpu=""
load_cpu=""
if [ "$PIN" = 1 ]; then
  server_cpu="taskset -c 0"
  load_cpu="taskset -c 1"
fi

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# start_until NAME PATTERN CMD...: starts a server, waits (10 s per line, no polling) for a
# line of its output matching PATTERN; sets PID.
start_until() {
  local name=$1 pattern=$2; shift 2
  mkfifo "$work/$name.fifo"
  "$@" > "$work/$name.fifo" 2>&1 &
  PID=$!
  pids+=("$PID")
  local fd line
  exec {fd}<"$work/$name.fifo"
  while read -r -t 10 -u "$fd" line; do
    if [[ "$line" == *$pattern* ]]; then LINE=$line; return 0; fi
  done
  echo "redis.sh: $name did not start" >&2
  exit 1
}

redis_port=$(free_port)
start_until redis "Ready to accept connections" \
  $server_cpu redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no
redis_pid=$PID
start_until kv "listening on" $server_cpu "$build/examples/kv_server" --port 0
kv_pid=$PID
kv_port=${LINE##*:}
floor_pid="" floor_port=""
if [ "$FLOOR" = 1 ]; then
  start_until floor "listening on" $server_cpu "$build/tests/benchmarks/epoll_echo" --pong
  floor_pid=$PID
  floor_port=${LINE##*:}
fi

# ns on CPU, all threads of a process.
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%.0f", s}'; }

# The bulk load: PIPE_COMMANDS SET commands with 100-byte values, in RESP.
python3 - "$PIPE_COMMANDS" > "$work/bulk.resp" <<'EOF'
import sys
n = int(sys.argv[1])
out = sys.stdout.buffer
value = b"v" * 100
for i in range(n):
    key = b"key:%d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$100\r\n%s\r\n" % (len(key), key, value))
EOF

rows=(ping_inline ping_mbulk set get ping_inline/P16 ping_mbulk/P16 set/P16 get/P16 pipe)

# run ROW PORT: runs one row against a server; prints "requests rps".
run_row() {
  local row=$1 port=$2 test=${1%/P16} pipeline=1
  [[ $row == */P16 ]] && pipeline=16
  if [ "$row" = pipe ]; then
    local t0 t1
    t0=$(date +%s.%N)
    $load_cpu redis-cli -p "$port" --pipe < "$work/bulk.resp" > "$work/pipe.out"
    t1=$(date +%s.%N)
    grep -q "errors: 0, replies: $PIPE_COMMANDS" "$work/pipe.out" || { cat "$work/pipe.out" >&2; exit 1; }
    echo "$PIPE_COMMANDS $(python3 -c "print(round($PIPE_COMMANDS / ($t1 - $t0)))")"
  else
    local csv
    csv=$($load_cpu redis-benchmark -p "$port" -t "$test" -n "$N" -c "$C" -P "$pipeline" -q --csv | tail -1)
    echo "$N $(echo "$csv" | cut -d, -f2 | tr -d '"' | cut -d. -f1)"
  fi
}

declare -A cpu rps
for round in $(seq "$ROUNDS"); do
  for row in "${rows[@]}"; do
    servers=(redis kv)
    [[ -n $floor_pid && $row == ping_inline* ]] && servers+=(floor)
    for server in "${servers[@]}"; do
      case $server in
        redis) pid=$redis_pid port=$redis_port ;;
        kv) pid=$kv_pid port=$kv_port ;;
        floor) pid=$floor_pid port=$floor_port ;;
      esac
      before=$(cpu_ns "$pid")
      read -r requests r < <(run_row "$row" "$port")
      after=$(cpu_ns "$pid")
      echo "round $round $row $server: $(( (after - before) / requests )) ns/request, $r requests/s" >&2
      cpu[$server,$row]+="$(( (after - before) / requests )) "
      rps[$server,$row]+="$r "
    done
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : int((a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
minimum() { tr ' ' '\n' | grep -v '^$' | sort -n | head -1; }

echo
echo "server CPU per request (ns, median of $ROUNDS; min in brackets) and requests/s, -n $N -c $C"
echo "rows P16: -P 16; pipe: redis-cli --pipe of $PIPE_COMMANDS SET commands (100-byte values)"
printf '%-16s %18s %18s %7s %12s %12s\n' row redis-server kv_server ratio "redis rps" "kv rps"
for row in "${rows[@]}"; do
  r_med=$(echo "${cpu[redis,$row]}" | median); r_min=$(echo "${cpu[redis,$row]}" | minimum)
  k_med=$(echo "${cpu[kv,$row]}" | median); k_min=$(echo "${cpu[kv,$row]}" | minimum)
  ratio=$(python3 -c "print(f'{$k_med / $r_med:.2f}x')")
  printf '%-16s %9s [%6s] %9s [%6s] %7s %12s %12s\n' "$row" "$r_med" "$r_min" "$k_med" "$k_min" \
    "$ratio" "$(echo "${rps[redis,$row]}" | median)" "$(echo "${rps[kv,$row]}" | median)"
done
if [ -n "$floor_pid" ]; then
  echo "the floor, epoll_echo --pong (one recv and one send per readable event, no parsing):"
  for row in ping_inline ping_inline/P16; do
    f_med=$(echo "${cpu[floor,$row]}" | median)
    r_med=$(echo "${cpu[redis,$row]}" | median); k_med=$(echo "${cpu[kv,$row]}" | median)
    printf '  %-16s floor %6s ns: floor / redis-server %s, kv_server / floor %s  (rounds: %s)\n' \
      "$row" "$f_med" "$(python3 -c "print(f'{$f_med / $r_med:.2f}x')")" \
      "$(python3 -c "print(f'{$k_med / $f_med:.2f}x')")" "${cpu[floor,$row]}"
  done
fi
echo "noise: per-run CPU figures for each row: redis / kv"
for row in "${rows[@]}"; do echo "  $row: ${cpu[redis,$row]}/ ${cpu[kv,$row]}"; done

# System calls per request, by kind, from one more run of each row under perf stat.
kinds=(read recvmsg write sendmsg epoll_wait epoll_ctl)
events=raw_syscalls:sys_enter
for k in "${kinds[@]}"; do events+=",syscalls:sys_enter_$k"; done
SYSCALLS=${SYSCALLS:-$(perf stat -e "$events" true >/dev/null 2>&1 && echo 1 || echo 0)}
if [ "$SYSCALLS" = 1 ]; then
  echo
  echo "system calls per request (perf stat, one run each): all, then by kind"
  printf '%-16s %-6s %6s' row server all; printf ' %10s' "${kinds[@]}"; echo
  for row in "${rows[@]}"; do
    for server in redis kv; do
      if [ $server = redis ]; then pid=$redis_pid port=$redis_port; else pid=$kv_pid port=$kv_port; fi
      # Started disabled; "enable" is acknowledged once perf counts, then the run starts.
      rm -f "$work/ctl" "$work/ack"
      mkfifo "$work/ctl" "$work/ack"
      perf stat -x, -e "$events" -p "$pid" -o "$work/perf.out" -D -1 \
        --control "fifo:$work/ctl,$work/ack" &
      perf_pid=$!
      pids+=("$perf_pid")
      echo enable > "$work/ctl"
      read -r -t 10 _ < "$work/ack"
      read -r requests _ < <(run_row "$row" "$port")
      kill -INT "$perf_pid"
      wait "$perf_pid" || true
      printf '%-16s %-6s' "$row" "$server"
      awk -F, -v n="$requests" '$3 ~ /sys_enter/ {printf " %*.3f", (NR == 1 ? 6 : 10), $1 / n}' \
        <(grep -v '^#' "$work/perf.out" | grep -v '^$')
      echo
    done
  done
fi
