#!/usr/bin/env bash
# Zero-copy file benchmark (issue 20): one local reader downloads a large file (1 GiB by
# default) from examples/http_server with sendfile(2), from the same server with
# --no-sendfile (the buffered path TLS keeps: read into a buffer, write to the socket),
# and from nginx (1 worker, `sendfile on`), interleaved round by round; each server on
# CPU 0, the reader (curl -o /dev/null) on CPU 1. Prints, per server, the median over
# ROUNDS of the throughput (MiB/s, wall clock of the download) and the server's CPU time
# for the download (utime+stime from /proc/PID/stat, in ms, and per MiB), and the ratios.
#
#   tests/benchmarks/file_bench.sh BUILD_DIR     (needs examples/http_server built there)
#   ROUNDS=5 FILE_MIB=1024 tests/benchmarks/file_bench.sh build
# Not a test: nothing here asserts a timing. The machine may be shared: say so with the
# figures, and compare only figures from the same run.
set -u
. "$(dirname "$0")/common.sh"
ROUNDS=${ROUNDS:-5} bench_init file_bench.sh "$@"
mib=${FILE_MIB:-1024}
need curl curl

# Random bytes, read once so that every server finds the file in the page cache.
head -c $((mib * 1024 * 1024)) /dev/urandom > "$work/big.bin"
cat "$work/big.bin" > /dev/null

start_sendfile() { start_with_port sendfile "$build/examples/http_server" --port 0 --root "$work"; }
start_buffered() { start_with_port buffered "$build/examples/http_server" --port 0 --root "$work" --no-sendfile; }

run() { download_cost "$mib"; }  # "MiB/s cpu_ms cpu_ms_per_MiB"
servers="sendfile buffered nginx"
start_all $servers
echo "# $(machine_line)"
echo "# curl -o /dev/null of a ${mib} MiB file, $rounds rounds interleaved; server on CPU 0, curl on CPU 1"
interleave $servers
printf '\n%-9s %10s %12s %12s %12s %12s\n' server "MiB/s" "CPU ms" "CPU ms/MiB" "MiB/s/nginx" "CPU/nginx"
for s in nginx sendfile buffered; do
  [ -f "$work/$s.out" ] || continue
  tp=$(cut -d' ' -f1 "$work/$s.out" | median)
  ms=$(cut -d' ' -f2 "$work/$s.out" | median)
  per=$(cut -d' ' -f3 "$work/$s.out" | median)
  eval "tp_$s=$tp; per_$s=$per"
  rt=-; rc=-
  [ "$s" = nginx ] || { rt=$(ratio "$tp" "${tp_nginx:-}"); rc=$(ratio "$per" "${per_nginx:-}"); }
  printf '%-9s %10s %12s %12s %12s %12s\n' "$s" "$tp" "$ms" "$per" "$rt" "$rc"
  echo "  $s rounds (MiB/s, CPU ms): $(awk '{printf "%s/%s ", $1, $2}' "$work/$s.out")" >> "$work/spread"
done
echo "# load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo; echo "# every round, to judge the noise:"; cat "$work/spread"
