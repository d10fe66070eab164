# Shared by the server benchmarks (http_bench.sh, file_bench.sh, ws_bench.sh): sourced,
# not run. Gives each script its arguments and defaults, a temporary directory that goes
# with the servers when the script ends, CPU pinning, the servers' start-up, the CPU a
# process used (from /proc) and the median.
#
#   . "$(dirname "$0")/common.sh"
#   bench_init NAME.sh "$@"      # sets build, rounds, secs, conns, work, python, hz, pin_*
#
# Every start_* below sets PID and PORT (PID empty when the server is not available) and
# remembers the PID, so that the servers are stopped by PID when the script ends.

# bench_init SCRIPT [BUILD_DIR]: ROUNDS (3), SECONDS_PER_RUN (5) and CONNS (50) come from
# the environment.
bench_init() {
  local script=$1
  build=${2:?usage: $script BUILD_DIR}
  rounds=${ROUNDS:-3}
  secs=${SECONDS_PER_RUN:-5}
  conns=${CONNS:-50}
  work=$(mktemp -d)
  pids=()
  trap bench_cleanup EXIT
  pin_server=(); pin_load=()
  if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    pin_server=(taskset -c 0); pin_load=(taskset -c 1)
  fi
  python=/usr/bin/python3; [ -x "$python" ] || python=python3
  hz=$(getconf CLK_TCK)
}

bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}

need() {  # need COMMAND PACKAGE: ends the script if COMMAND is missing
  command -v "$1" >/dev/null || { echo "$1 is not installed (apt-get install $2)"; exit 1; }
}

free_port() { "$python" -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# The machine, for the first line of a report.
machine_line() {
  echo "$(date -u +%FT%TZ) $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
}

# CPU time a process used so far, all threads (utime + stime), in clock ticks (hz).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

median() { sort -g | awk '{a[NR] = $1} END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# start_with_port NAME COMMAND...: starts COMMAND pinned to the server CPU and reads its
# port from the first line it prints ("listening on 127.0.0.1:PORT" or just the number).
start_with_port() {
  local name=$1; shift
  local fifo; fifo=$(mktemp -u "$work/$name.XXXXXX")
  mkfifo "$fifo"
  "${pin_server[@]}" "$@" > "$fifo" 2>&1 &
  PID=$!; pids+=($PID)
  exec 3< "$fifo"  # returns once the server has opened its end
  rm -f "$fifo"
  local line=; read -r -t 60 line <&3; PORT=${line##*:}
  cat <&3 > /dev/null &  # keeps reading what the server prints later
  exec 3<&-
  [ -n "$PORT" ] || { echo "note: $name did not start: $line" >&2; PID=; }
}

# start_nginx HTTP_LINES SERVER_LINES: Debian's nginx on 127.0.0.1, one worker in the
# foreground, `access_log off`, `sendfile on`, serving $work; the arguments go into the
# http and server blocks. Skipped (PID empty) if nginx is missing.
start_nginx() {
  command -v nginx >/dev/null || { PID=; return; }
  PORT=$(free_port)
  cat > "$work/nginx.conf" <<CONF
worker_processes 1;
master_process off;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  ${1:-}
  server {
    listen 127.0.0.1:$PORT;
    location / { root $work; }
    ${2:-}
  }
}
CONF
  "${pin_server[@]}" nginx -c "$work/nginx.conf" -p "$work" &
  PID=$!; pids+=($PID)
  curl -s -o /dev/null --retry 10 --retry-connrefused "http://127.0.0.1:$PORT/"
}

# start_all NAME...: start_NAME for each, keeping its PID and PORT as pid_NAME and
# port_NAME; one that does not start is skipped with a note.
start_all() {
  local s
  for s in "$@"; do
    "start_$s"
    eval "pid_$s=\${PID:-}; port_$s=\${PORT:-}"
    [ -n "${PID:-}" ] || echo "note: $s is not available, skipped"
  done
}

# interleave NAME...: $rounds rounds, each calling `run` once per started NAME (PID and
# PORT set to its own), the output appended to $work/NAME.out.
interleave() {
  local round s
  for round in $(seq "$rounds"); do
    for s in "$@"; do
      eval "PID=\$pid_$s; PORT=\$port_$s"
      [ -n "$PID" ] || continue
      run >> "$work/$s.out"
    done
  done
}

# download_cost MIB: curl -o /dev/null of http://127.0.0.1:$PORT/big.bin (MIB MiB) on the
# load CPU; prints "MiB/s cpu_ms cpu_ms_per_MiB", the CPU being what $PID used meanwhile
# (a short download is said on stderr).
download_cost() {
  local c0 c1 out
  c0=$(cpu_ticks "$PID")
  out=$("${pin_load[@]}" curl -s -o /dev/null -w '%{size_download} %{time_total}' "http://127.0.0.1:$PORT/big.bin")
  c1=$(cpu_ticks "$PID")
  awk -v o="$out" -v t=$((c1 - c0)) -v hz="$hz" -v want=$(($1 * 1024 * 1024)) 'BEGIN {
    split(o, a, " "); if (a[1] != want) { print "short download: " a[1] > "/dev/stderr" }
    m = a[1] / 1048576; ms = t / hz * 1000
    printf "%.0f %.0f %.3f\n", (a[2] > 0 ? m / a[2] : 0), ms, (m > 0 ? ms / m : 0) }'
}

# ratio A B: A / B with two decimals; "-" when B is empty or 0.
ratio() { awk -v a="$1" -v b="${2:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }
