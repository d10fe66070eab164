#!/usr/bin/env bash
# Builds the benchmarks and runs the whole suite: torsion's echo server against the raw-Asio
# baseline (and libuv's, when libuv1-dev is installed), interleaved round by round so that
# a noisy neighbour hurts both alike; then idle-connection memory, the reactor pool, and the
# Google Benchmark micro-benchmarks. Prints one table; the figure that decides is the
# server's CPU time per message (from /proc/PID/task/*/schedstat), the steadiest one on a
# shared machine. Each figure is the median of ROUNDS runs; "CPU min" is the least
# disturbed run, since interference only ever adds CPU time.
#
#   tests/benchmarks/run.sh [BUILD_DIR]        (default: build-bench, a release build)
#
# Environment: RUN_SECONDS (1) per run, WARMUP (0.3) s before each, ROUNDS (5),
# PIN (1: server on CPU 0, load generator on CPU 1), IDLE_CONNS (10000), MICRO (1),
# SECTIONS ("echo idle flood pool micro": which parts to run), BURST (262144: bytes each
# idle connection echoes before memory is measured again), BASE_ECHO (a torsion_echo built
# from another commit: run as server "base" beside the others, to compare before/after),
# URING (1 when liburing is installed: also torsion built -Dio_uring=true in BUILD_DIR-uring
# as server "t-uring", raw Asio on io_uring "asio-ur" and the io_uring floor "uring").
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-bench}
T=${RUN_SECONDS:-1}
WARMUP=${WARMUP:-0.3}
ROUNDS=${ROUNDS:-5}
PIN=${PIN:-1}
IDLE_CONNS=${IDLE_CONNS:-10000}
MICRO=${MICRO:-1}
SECTIONS=" ${SECTIONS:-echo idle flood pool micro} "
BURST=${BURST:-262144}
want() { [[ $SECTIONS == *" $1 "* ]]; }

if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$root" -Dbenchmarks=true -Dtests=false -Dbuildtype=release >/dev/null
else
  meson configure "$build" -Dbenchmarks=true >/dev/null
fi
# NINJA_TARGETS (default: everything) and URING_TARGETS (default: torsion_echo) narrow the
# builds, e.g. to what SECTIONS=echo runs.
# shellcheck disable=SC2086
if ! ninja -C "$build" -j2 ${NINJA_TARGETS:-} >"${TMPDIR:-/tmp}/torsion-bench-build.log" 2>&1; then
  cat "${TMPDIR:-/tmp}/torsion-bench-build.log" >&2
  exit 1
fi
bin=$build/tests/benchmarks
URING=${URING:-$([ -x "$bin/uring_echo" ] && echo 1 || echo 0)}
if [ "$URING" = 1 ]; then
  ubuild=$build-uring
  if [ ! -f "$ubuild/build.ninja" ]; then
    meson setup "$ubuild" "$root" -Dbenchmarks=true -Dtests=false -Dexamples=false \
      -Dio_uring=true -Dbuildtype=release >/dev/null
  fi
  # shellcheck disable=SC2086
  if ! ninja -C "$ubuild" -j2 ${URING_TARGETS:-tests/benchmarks/torsion_echo} \
      >"${TMPDIR:-/tmp}/torsion-bench-build.log" 2>&1; then
    cat "${TMPDIR:-/tmp}/torsion-bench-build.log" >&2
    exit 1
  fi
fi

servers=(torsion asio)
[ -x "$bin/uv_echo" ] && servers+=(libuv)
servers+=(epoll)  # the floor: one recv and one send per message
declare -A exe=([torsion]=torsion_echo [asio]=asio_echo [libuv]=uv_echo [epoll]=epoll_echo)
if [ "$URING" = 1 ]; then
  servers+=(t-uring asio-ur uring)
  exe[t-uring]=$ubuild/tests/benchmarks/torsion_echo
  exe[asio-ur]=asio_uring_echo
  exe[uring]=uring_echo  # the io_uring floor: one submit per loop turn
fi
# the executable of server NAME
server_exe() { if [[ ${exe[$1]} == /* ]]; then echo "${exe[$1]}"; else echo "$bin/${exe[$1]}"; fi; }
if [ -n "${BASE_ECHO:-}" ]; then
  servers+=(base)
  exe[base]=$BASE_ECHO
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

server_cpu=() load_cpu=()
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ]; then
  server_cpu=(taskset -c 0)
  load_cpu=(taskset -c 1)
fi

# start NAME PINNED(0/1) ARGS... : starts a server, sets $pid and $port.
start() {
  local name=$1 pinned=$2
  shift 2
  local out=$tmp/$name.$RANDOM.out
  local wrap=()
  [ "$pinned" = 1 ] && wrap=("${server_cpu[@]}")
  "${wrap[@]}" "$@" >"$out" 2>"$out.err" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do
    if [ -s "$out" ]; then break; fi
    sleep 0.05
  done
  local line
  line=$(head -n1 "$out")
  port=${line##*:}
  if [ -z "$port" ]; then echo "run.sh: $name did not start: $(cat "$out.err")" >&2; exit 1; fi
}

# field KEY LINE: the value of KEY=... in a loadgen line.
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }

# median and minimum of the arguments (numbers).
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
minimum() { printf '%s\n' "$@" | sort -g | head -n1; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

results=$tmp/results
: >"$results"

# run_config LABEL SERVER_ARGS LOADGEN_ARGS: every server, ROUNDS times, interleaved.
run_config() {
  local label=$1 sargs=$2 largs=$3
  declare -A spid sport
  for s in "${servers[@]}"; do
    # shellcheck disable=SC2086
    start "$s" 1 "$(server_exe "$s")" $sargs
    spid[$s]=$pid
    sport[$s]=$port
  done
  for r in $(seq "$ROUNDS"); do
    for s in "${servers[@]}"; do
      local line
      # shellcheck disable=SC2086
      line=$("${load_cpu[@]}" "$bin/loadgen" --port "${sport[$s]}" --server-pid "${spid[$s]}" \
        --seconds "$T" --warmup "$WARMUP" $largs)
      echo "$label|$s|$r|$line" >>"$results"
    done
  done
  for s in "${servers[@]}"; do kill "${spid[$s]}" 2>/dev/null || true; done
}

echo "torsion benchmarks: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores,"\
  "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
echo "runs of ${T}s after ${WARMUP}s warm-up, median of $ROUNDS interleaved rounds; pinned: $PIN"
echo

if want echo; then
run_config "echo 50 conns x depth 1 x 64 B" "" "--mode echo --conns 50 --depth 1 --size 64"
run_config "echo 50 conns x depth 16 x 64 B" "" "--mode echo --conns 50 --depth 16 --size 64"
if [ "${ECHO_ROWS:-all}" = all ]; then  # ECHO_ROWS=small: the two rows above only
run_config "echo 4 conns x depth 1 x 64 KiB" "" "--mode echo --conns 4 --depth 1 --size 65536"
run_config "sink 4 conns x 64 KiB writes" "--sink" "--mode sink --conns 4 --size 65536"
run_config "connect+echo+close, 8 clients" "" "--mode connrate --conns 8"
fi

fmt='%-34s %-8s %11s %9s %8s %9s %11s %8s\n'
# shellcheck disable=SC2059
printf "$fmt" configuration server "msgs/s" "MB/s" "p50 us" "p99 us" "CPU us/msg" "CPU min"
# shellcheck disable=SC2059
printf "$fmt" ---------------------------------- -------- ----------- --------- -------- \
  --------- ----------- --------
ratios=$tmp/ratios
: >"$ratios"
while IFS= read -r label; do
  declare -A med_rate=() med_mb=() med_cpu=() min_cpu=()
  for s in "${servers[@]}"; do
    mapfile -t lines < <(grep -F "$label|$s|" "$results" | cut -d'|' -f4)
    rates=() mbs=() p50s=() p99s=() cpus=()
    for l in "${lines[@]}"; do
      rates+=("$(field rate "$l")")
      mbs+=("$(field mb_per_s "$l")")
      p50s+=("$(field p50_us "$l")")
      p99s+=("$(field p99_us "$l")")
      cpus+=("$(field cpu_us_per_msg "$l")")
    done
    med_rate[$s]=$(median "${rates[@]}")
    med_mb[$s]=$(median "${mbs[@]}")
    med_cpu[$s]=$(median "${cpus[@]}")
    min_cpu[$s]=$(minimum "${cpus[@]}")
    p50=$(median "${p50s[@]}")
    p99=$(median "${p99s[@]}")
    # shellcheck disable=SC2059
    printf "$fmt" "$label" "$s" "$(printf '%.0f' "${med_rate[$s]}")" "${med_mb[$s]}" "${p50:--}" \
      "${p99:--}" "${med_cpu[$s]}" "${min_cpu[$s]}"
  done
  # shellcheck disable=SC2059
  printf "$fmt" "" "t/asio" "$(ratio "${med_rate[torsion]}" "${med_rate[asio]}")x" \
    "$(ratio "${med_mb[torsion]}" "${med_mb[asio]}")x" "" "" \
    "$(ratio "${med_cpu[torsion]}" "${med_cpu[asio]}")x" "$(ratio "${min_cpu[torsion]}" "${min_cpu[asio]}")x"
  if [ -n "${med_rate[base]:-}" ]; then
    # shellcheck disable=SC2059
    printf "$fmt" "" "t/base" "$(ratio "${med_rate[torsion]}" "${med_rate[base]}")x" \
      "$(ratio "${med_mb[torsion]}" "${med_mb[base]}")x" "" "" \
      "$(ratio "${med_cpu[torsion]}" "${med_cpu[base]}")x" "$(ratio "${min_cpu[torsion]}" "${min_cpu[base]}")x"
  fi
  # shellcheck disable=SC2059
  printf "$fmt" "" "t/epoll" "$(ratio "${med_rate[torsion]}" "${med_rate[epoll]}")x" \
    "$(ratio "${med_mb[torsion]}" "${med_mb[epoll]}")x" "" "" \
    "$(ratio "${med_cpu[torsion]}" "${med_cpu[epoll]}")x" "$(ratio "${min_cpu[torsion]}" "${min_cpu[epoll]}")x"
  if [ -n "${med_rate[uring]:-}" ]; then
    for pair in t-uring/uring t-uring/epoll asio-ur/asio uring/epoll; do
      a=${pair%/*} b=${pair#*/}
      # shellcheck disable=SC2059
      printf "$fmt" "" "${a/t-uring/tu}/$b" "$(ratio "${med_rate[$a]}" "${med_rate[$b]}")x" \
        "$(ratio "${med_mb[$a]}" "${med_mb[$b]}")x" "" "" \
        "$(ratio "${med_cpu[$a]}" "${med_cpu[$b]}")x" "$(ratio "${min_cpu[$a]}" "${min_cpu[$b]}")x"
    done
  fi
  if [ -n "${med_rate[libuv]:-}" ]; then
    # shellcheck disable=SC2059
    printf "$fmt" "" "uv/asio" "$(ratio "${med_rate[libuv]}" "${med_rate[asio]}")x" \
      "$(ratio "${med_mb[libuv]}" "${med_mb[asio]}")x" "" "" \
      "$(ratio "${med_cpu[libuv]}" "${med_cpu[asio]}")x" "$(ratio "${min_cpu[libuv]}" "${min_cpu[asio]}")x"
  fi
done < <(cut -d'|' -f1 "$results" | uniq)
echo "(the connect+echo+close rows count connections: msgs/s is connections/s, CPU us per connection)"
echo
fi

if want idle; then
# --- memory per idle connection --------------------------------------------------------
echo "memory per idle connection ($IDLE_CONNS connections, server RSS growth / connections),"
echo "idle, then idle again after each has echoed $BURST bytes:"
declare -A idle burst
for s in "${servers[@]}"; do
  [ "$s" = uring ] && continue  # a CPU floor only: it keeps a 64 KiB buffer per connection
  start "$s" 0 "$(server_exe "$s")"
  line=$("$bin/loadgen" --port "$port" --server-pid "$pid" --mode idle --conns "$IDLE_CONNS" \
    --burst "$BURST")
  kill "$pid" 2>/dev/null || true
  idle[$s]=$(field bytes_per_conn "$line")
  burst[$s]=$(field bytes_per_conn_after_burst "$line")
  printf '  %-8s %7s bytes/connection idle, %7s after the burst\n' "$s" "${idle[$s]}" "${burst[$s]}"
done
echo "  torsion - asio: $((idle[torsion] - idle[asio])) bytes/connection idle," \
  "$((burst[torsion] - burst[asio])) after the burst"
echo
fi

if want flood; then
# --- a peer that sends 1 GiB and never reads ---------------------------------------------
echo "a peer sends 1 GiB to an echo server and never reads (other clients echo meanwhile):"
flood_torsion=$build/examples/echo_server  # the example as a user writes it
[ -x "$flood_torsion" ] || flood_torsion=$(server_exe torsion)
python3 "$root/tests/benchmarks/flood.py" --label "torsion ($(basename "$flood_torsion"))" \
  -- "$flood_torsion" || true
python3 "$root/tests/benchmarks/flood.py" --label asio -- "$(server_exe asio)" || true
echo
fi

if want pool; then
# --- reactor pool: one reactor vs two ----------------------------------------------------
# Unpinned: two reactors and the load generator share the two cores. The raw-Asio baseline
# runs the same shapes (one io_context, thread and SO_REUSEPORT acceptor each), so that the
# cost of the second thread on this machine is told apart from torsion's own. Two loads:
# 50 connections (25 per reactor: small batches per wakeup) and 200.
echo "reactor pool, echo depth 16 x 64 B, unpinned (CPU split = each thread's share):"
declare -A ppid pport pcpu psplit
pool_servers=(torsion1 torsion2 asio1 asio2)
declare -A pool_cmd=([torsion1]="torsion_echo --threads 1" [torsion2]="torsion_echo --threads 2"
  [asio1]="asio_echo --threads 1" [asio2]="asio_echo --threads 2")
for s in "${pool_servers[@]}"; do
  # shellcheck disable=SC2086
  start "pool-$s" 0 $bin/${pool_cmd[$s]}
  ppid[$s]=$pid
  pport[$s]=$port
done
pool_conns=(50 200)
for r in $(seq "$ROUNDS"); do
  for c in "${pool_conns[@]}"; do
    for s in "${pool_servers[@]}"; do
      line=$("$bin/loadgen" --port "${pport[$s]}" --server-pid "${ppid[$s]}" --seconds "$T" \
        --warmup "$WARMUP" --mode echo --conns "$c" --depth 16 --size 64)
      pcpu[$s.$c]="${pcpu[$s.$c]:-} $(field cpu_us_per_msg "$line")"
      psplit[$s.$c]="${psplit[$s.$c]:-} $(field threads "$line")"
    done
  done
done
for s in "${pool_servers[@]}"; do
  kill -TERM "${ppid[$s]}"
  wait "${ppid[$s]}" 2>/dev/null || true
done
for c in "${pool_conns[@]}"; do
  echo "  $c connections:"
  for s in "${pool_servers[@]}"; do
    # shellcheck disable=SC2086
    printf '    %-9s CPU us/msg %s median, %s min (runs:%s); CPU split per round:%s\n' "$s" \
      "$(median ${pcpu[$s.$c]})" "$(minimum ${pcpu[$s.$c]})" "${pcpu[$s.$c]}" "${psplit[$s.$c]}"
  done
  # shellcheck disable=SC2086
  printf '    2 threads / 1, CPU per message (median; min): torsion %sx; %sx   asio %sx; %sx   torsion2/asio2 %sx\n' \
    "$(ratio "$(median ${pcpu[torsion2.$c]})" "$(median ${pcpu[torsion1.$c]})")" \
    "$(ratio "$(minimum ${pcpu[torsion2.$c]})" "$(minimum ${pcpu[torsion1.$c]})")" \
    "$(ratio "$(median ${pcpu[asio2.$c]})" "$(median ${pcpu[asio1.$c]})")" \
    "$(ratio "$(minimum ${pcpu[asio2.$c]})" "$(minimum ${pcpu[asio1.$c]})")" \
    "$(ratio "$(median ${pcpu[torsion2.$c]})" "$(median ${pcpu[asio2.$c]})")"
done
echo "  torsion2, $(cat "$tmp"/pool-torsion2.*.out.err 2>/dev/null | tail -n1)"
echo
fi

if want micro && [ "$MICRO" = 1 ]; then
  echo "micro-benchmarks (Google Benchmark):"
  "${load_cpu[@]}" "$bin/micro" --benchmark_counters_tabular=true 2>/dev/null
  echo
  # Parsing: one 64 KiB read holding many frames per iteration; the callbacks only count.
  echo "protocol parsing (MB/s of input; frames of 16 and 1000 bytes):"
  printf '  %-34s %10s %10s\n' receiver "16 B" "1000 B"
  "${load_cpu[@]}" "$bin/protocols_bench" --benchmark_format=csv 2>/dev/null |
    awk -F, 'NR > 1 && $1 ~ /^"?BM_/ {
      gsub(/"/, "", $1); split($1, a, "/"); sub(/^BM_/, "", a[1]);
      if (!(a[1] in seen)) { seen[a[1]] = 1; order[++n] = a[1] }
      mb[a[1], a[2]] = sprintf("%.0f", $6 / 1e6)
    } END { for (i = 1; i <= n; ++i) printf "  %-34s %10s %10s\n", order[i], mb[order[i], 16], mb[order[i], 1000] }'
fi
echo
echo "run.sh took $SECONDS s"
