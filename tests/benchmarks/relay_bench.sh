#!/usr/bin/env bash
# Relay benchmark (issue 20, splice): a local reader (curl -o /dev/null) downloads a large
# file (1 GiB by default) from nginx through examples/port_forward splicing (socket ->
# pipe -> socket, the default), through port_forward --buffered (every byte read into the
# process and written out), and through Debian's haproxy in tcp mode with
# `option splice-request` and `option splice-response`, interleaved round by round. The
# relay runs on CPU 0; nginx and curl share CPU 1. Prints, per relay, the median over
# ROUNDS of the throughput (MiB/s, wall clock of the download) and of the relay's CPU time
# per GiB (utime+stime from /proc/PID/stat), with ratios to haproxy and every round.
#
#   tests/benchmarks/relay_bench.sh BUILD_DIR     (needs examples/port_forward built there)
#   ROUNDS=5 FILE_MIB=1024 tests/benchmarks/relay_bench.sh build
# Not a test: nothing here asserts a timing. The machine may be shared: say so with the
# figures, and compare only figures from the same run.
set -u
. "$(dirname "$0")/common.sh"
ROUNDS=${ROUNDS:-5} bench_init relay_bench.sh "$@"
mib=${FILE_MIB:-1024}
need curl curl
need nginx nginx-light

head -c $((mib * 1024 * 1024)) /dev/urandom > "$work/big.bin"
cat "$work/big.bin" > /dev/null

# The origin, on the load CPU with curl.
saved=("${pin_server[@]}"); pin_server=("${pin_load[@]}")
start_nginx
pin_server=("${saved[@]}")
[ -n "${PID:-}" ] || { echo "nginx did not start"; exit 1; }
origin=$PORT

# start_relay NAME COMMAND...: COMMAND listens on $PORT (set here) on the relay CPU.
start_relay() {
  local name=$1; shift
  "${pin_server[@]}" "$@" > "$work/$name.log" 2>&1 &
  PID=$!; pids+=($PID)
  if ! curl -s -o /dev/null --retry 20 --retry-connrefused --retry-delay 0 "http://127.0.0.1:$PORT/"; then
    echo "note: $name did not start: $(head -c 300 "$work/$name.log")" >&2; PID=
  fi
}
start_splice() { PORT=$(free_port); start_relay splice "$build/examples/port_forward" "$PORT" 127.0.0.1 "$origin"; }
start_buffered() { PORT=$(free_port); start_relay buffered "$build/examples/port_forward" --buffered "$PORT" 127.0.0.1 "$origin"; }
start_haproxy() {
  command -v haproxy >/dev/null || { PID=; return; }
  PORT=$(free_port)
  cat > "$work/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn 64
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option splice-request
  option splice-response
frontend relay
  bind 127.0.0.1:$PORT
  default_backend origin
backend origin
  server nginx 127.0.0.1:$origin
CONF
  start_relay haproxy haproxy -db -f "$work/haproxy.cfg"
}

# One download through the relay at $PORT (pid $PID); prints "MiB/s cpu_ms_per_GiB".
run() { download_cost "$mib" | awk '{ printf "%s %.1f\n", $1, $3 * 1024 }'; }
relays="splice buffered haproxy"
start_all $relays
echo "# $(machine_line)"
echo "# curl -o /dev/null of a ${mib} MiB file from nginx through each relay, $rounds rounds interleaved; relay on CPU 0, nginx and curl on CPU 1"
interleave $relays
printf '\n%-9s %10s %14s %14s %14s\n' relay "MiB/s" "CPU ms/GiB" "MiB/s/haproxy" "CPU/haproxy"
for r in haproxy splice buffered; do
  [ -f "$work/$r.out" ] || continue
  tp=$(cut -d' ' -f1 "$work/$r.out" | median)
  per=$(cut -d' ' -f2 "$work/$r.out" | median)
  eval "tp_$r=$tp; per_$r=$per"
  rt=-; rc=-
  [ "$r" = haproxy ] || { rt=$(ratio "$tp" "${tp_haproxy:-}"); rc=$(ratio "$per" "${per_haproxy:-}"); }
  printf '%-9s %10s %14s %14s %14s\n' "$r" "$tp" "$per" "$rt" "$rc"
  echo "  $r rounds (MiB/s, CPU ms/GiB): $(awk '{printf "%s/%s ", $1, $2}' "$work/$r.out")" >> "$work/spread"
done
echo "# load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo; echo "# every round, to judge the noise:"; cat "$work/spread"
