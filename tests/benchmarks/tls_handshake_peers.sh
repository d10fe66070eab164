#!/usr/bin/env bash
# Memory per pending TLS handshake, torsion against the servers people deploy, measured
# the same way from outside: tls_handshake_memory --peer opens N plain TCP clients of the
# server, idle and then each having sent one ClientHello that is never followed up, and
# reports the resident set the server process gained per connection. Servers, each
# started afresh for every run (a freed heap is reused, so a second run on the same
# process would show nothing) and interleaved round by round:
#   torsion  examples/tls_echo_server (listen_ssl, default options)
#   nginx    Debian's nginx, one worker, `listen ... ssl`
#   haproxy  Debian's haproxy, a tcp-mode frontend with `bind ... ssl crt`
# All three use the system's OpenSSL and the same P-256 certificate. Prints the median
# over ROUNDS of each figure and torsion's ratio to each peer.
#
#   tests/benchmarks/tls_handshake_peers.sh BUILD_DIR   (needs tls_handshake_memory:
#                                                        meson setup BUILD_DIR -Dbenchmarks=true)
#   ROUNDS=3 N=1000 tests/benchmarks/tls_handshake_peers.sh build-bench
# Not a test: nothing here asserts a figure.
set -u
. "$(dirname "$0")/common.sh"
bench_init tls_handshake_peers.sh "$@"
n=${N:-1000}
probe=$build/tests/benchmarks/tls_handshake_memory
[ -x "$probe" ] || { echo "missing $probe (-Dbenchmarks=true)"; exit 1; }
[ -x "$build/examples/tls_echo_server" ] || { echo "missing $build/examples/tls_echo_server"; exit 1; }
ulimit -n $((4 * n + 512)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj /CN=localhost -keyout "$work/key.pem" -out "$work/cert.pem" >/dev/null 2>&1 ||
  { echo "openssl could not make a certificate"; exit 1; }
cat "$work/cert.pem" "$work/key.pem" > "$work/both.pem"

# --- the servers: each start_* sets PID and PORT (PID empty if it is not installed) ------
start_torsion() {
  start_with_port torsion "$build/examples/tls_echo_server" 0 "$work/cert.pem" "$work/key.pem"
}
start_nginx_tls() {
  command -v nginx >/dev/null || { PID=; return; }
  start_nginx "server { listen 127.0.0.1:$(free_port) ssl; ssl_certificate $work/cert.pem;
                        ssl_certificate_key $work/key.pem; return 200; }"
  local http=$PORT
  PORT=$(sed -n 's/.*listen 127.0.0.1:\([0-9]*\) ssl;.*/\1/p' "$work/nginx.conf")
  # nginx is up once its plain port answers (start_nginx waited for it).
  [ -n "$PORT" ] && [ -n "$http" ] || PID=
}
start_haproxy() {
  command -v haproxy >/dev/null || { PID=; return; }
  PORT=$(free_port)
  cat > "$work/haproxy.cfg" <<CFG
global
  maxconn $((n + 100))
defaults
  mode tcp
  timeout connect 5s
  timeout client 600s
  timeout server 600s
frontend tls
  bind 127.0.0.1:$PORT ssl crt $work/both.pem
  default_backend none
backend none
  server nowhere 127.0.0.1:1
CFG
  "${pin_server[@]}" haproxy -f "$work/haproxy.cfg" -db > "$work/haproxy.log" 2>&1 &
  PID=$!; pids+=($PID)
  "$python" - "$PORT" <<'PY' || PID=
import socket, sys, time
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close(); sys.exit(0)
    except OSError: time.sleep(0.05)
sys.exit(1)
PY
}
stop() { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; }

echo "# $(machine_line)"
echo "# N=$n clients per run, $rounds rounds, servers interleaved; resident set gained per connection (KiB)"
servers=(torsion nginx_tls haproxy)
for round in $(seq "$rounds"); do
  for s in "${servers[@]}"; do
    "start_$s"
    [ -n "$PID" ] || { echo "note: $s is not available, skipped" >&2; continue; }
    "${pin_load[@]}" "$probe" --peer "$PORT" "$PID" "$n" |
      sed -n 's/.* rss \([0-9.-]*\) KiB per idle connection, \([0-9.-]*\) KiB per pending.*/\1 \2/p' \
      >> "$work/$s.out"
    stop
  done
done
printf '%-10s %10s %14s\n' server idle pending
for s in "${servers[@]}"; do
  [ -s "$work/$s.out" ] || continue
  idle=$(cut -d' ' -f1 "$work/$s.out" | median); hello=$(cut -d' ' -f2 "$work/$s.out" | median)
  eval "idle_$s=$idle hello_$s=$hello"
  printf '%-10s %10s %14s   (rounds: %s)\n' "$s" "$idle" "$hello" "$(cut -d' ' -f2 "$work/$s.out" | tr '\n' ' ')"
done
for s in nginx_tls haproxy; do
  eval "h=\${hello_$s:-}"
  [ -n "$h" ] && [ -n "${hello_torsion:-}" ] &&
    echo "torsion / $s, pending handshake: $(ratio "$hello_torsion" "$h")"
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
