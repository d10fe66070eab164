#!/usr/bin/env bash
# HTTP benchmark: examples/http_server (torsion_web) against nginx (1 worker, access_log
# off, `return 200 "hello world"`, sendfile on; tcp_nopush left at its default, off:
# with it on, nginx's 1 MiB file rows here showed ~1.5x the requests/s but ~2x the CPU
# per request, so the anchor is the cheaper setting; torsion sends a head that a file
# follows with MSG_MORE), h2o (1 thread, no access log, an mruby
# handler returning "hello world", file.dir for files) and twisted.web, interleaved round
# by round, each server pinned to CPU 0 and wrk to CPU 1. Modes: keep-alive GET /hello (wrk -t1 -c50), the same
# pipelined 16 deep (a wrk Lua script), and a 1 MiB file (not twisted). Prints the
# median over ROUNDS of requests/s, p50/p99 latency and the server's CPU per request
# (utime+stime from /proc/PID/stat over the run, all threads), and the ratios to nginx
# and to h2o.
#
#   tests/benchmarks/http_bench.sh BUILD_DIR     (needs examples/http_server built there)
#   ROUNDS=3 SECONDS_PER_RUN=5 CONNS=50 tests/benchmarks/http_bench.sh build
# Not a test: nothing here asserts a timing. The machine may be shared: say so with the
# figures, and compare only figures from the same run.
set -u
build=${1:?usage: http_bench.sh BUILD_DIR}
rounds=${ROUNDS:-3}
secs=${SECONDS_PER_RUN:-5}
conns=${CONNS:-50}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
pin_server=(); pin_load=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  pin_server=(taskset -c 0); pin_load=(taskset -c 1)
fi
python=/usr/bin/python3; [ -x "$python" ] || python=python3
free_port() { "$python" -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
hz=$(getconf CLK_TCK)

head -c 1048576 /dev/urandom > "$work/big.bin"
printf 'hello world' > "$work/hello.txt"
cat > "$work/pipeline.lua" <<'LUA'
init = function(args)
  local r = {}
  for i = 1, 16 do r[i] = wrk.format(nil, "/hello") end
  req = table.concat(r)
end
request = function() return req end
LUA

# --- the servers: each start_* sets PID and PORT ---------------------------------------
start_torsion() {
  mkfifo "$work/t.fifo"
  "${pin_server[@]}" "$build/examples/http_server" --port 0 --root "$work" > "$work/t.fifo" 2>&1 &
  PID=$!; pids+=($PID)
  local line; read -r -t 10 line < "$work/t.fifo"; PORT=${line##*:}
  cat "$work/t.fifo" > /dev/null &
}
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
  keepalive_requests 100000000;
  sendfile on;
  server {
    listen 127.0.0.1:$PORT;
    location = /hello { default_type text/plain; return 200 "hello world"; }
    location / { root $work; }
  }
}
CONF
  "${pin_server[@]}" nginx -c "$work/nginx.conf" -p "$work" &
  PID=$!; pids+=($PID)
  curl -s -o /dev/null --retry 10 --retry-connrefused "http://127.0.0.1:$PORT/hello"
}
start_h2o() {
  command -v h2o >/dev/null || { PID=; return; }
  PORT=$(free_port)
  # As root h2o would switch to nobody, who cannot read the mktemp directory.
  cat > "$work/h2o.conf" <<CONF
num-threads: 1
user: $(id -un)
error-log: $work/h2o.err
listen:
  host: 127.0.0.1
  port: $PORT
hosts:
  default:
    paths:
      /hello:
        mruby.handler: |
          Proc.new do |env|
            [200, {"content-type" => "text/plain"}, ["hello world"]]
          end
      /:
        file.dir: $work
CONF
  "${pin_server[@]}" h2o -c "$work/h2o.conf" > "$work/h2o.out" 2>&1 &
  PID=$!; pids+=($PID)
  curl -s -o /dev/null --retry 10 --retry-connrefused "http://127.0.0.1:$PORT/hello"
}
start_twisted() {
  "$python" -c 'import twisted' 2>/dev/null || { PID=; return; }
  mkfifo "$work/tw.fifo"
  "${pin_server[@]}" "$python" -c '
import sys
from twisted.internet import reactor
from twisted.web import server, resource
class Hello(resource.Resource):
    isLeaf = True
    def render_GET(self, request):
        return b"hello world"
site = server.Site(Hello())
site.noisy = False
port = reactor.listenTCP(0, site, interface="127.0.0.1")
print("listening on 127.0.0.1:%d" % port.getHost().port, flush=True)
reactor.run()
' > "$work/tw.fifo" 2>&1 &
  PID=$!; pids+=($PID)
  local line; read -r -t 60 line < "$work/tw.fifo"; PORT=${line##*:}
  [ -n "$PORT" ] || { echo "note: twisted.web did not start: $line" >&2; PID=; }
  cat "$work/tw.fifo" > /dev/null &
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run SERVER MODE: one wrk run; prints "rps p50_us p99_us cpu_us_per_request"
to_us() {  # wrk latency "1.23ms" -> microseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /s$/) print n * 1000000; else print n }'
}
run() {
  local server=$1 mode=$2 path=/hello extra=()
  [ "$mode" = pipelined ] && extra=(-s "$work/pipeline.lua")
  [ "$mode" = file ] && path=/big.bin
  local c0 c1 out
  c0=$(cpu_ticks "$PID")
  out=$("${pin_load[@]}" wrk -t1 -c"$conns" -d"${secs}s" --latency "${extra[@]}" "http://127.0.0.1:$PORT$path" 2>&1)
  c1=$(cpu_ticks "$PID")
  local rps reqs p50 p99
  rps=$(sed -n 's/^Requests\/sec: *//p' <<<"$out")
  reqs=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' <<<"$out")
  p50=$(to_us "$(awk '$1 == "50%" {print $2}' <<<"$out")")
  p99=$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  if grep -q "Non-2xx\|Socket errors" <<<"$out"; then echo "  ($server $mode: $(grep -E 'Non-2xx|Socket errors' <<<"$out"))" >&2; fi
  awk -v r="$rps" -v n="$reqs" -v a="$p50" -v b="$p99" -v t=$((c1 - c0)) -v hz="$hz" \
    'BEGIN { printf "%s %s %s %.2f\n", r, a, b, (n > 0 ? t / hz * 1e6 / n : 0) }'
}

median() { sort -g | awk '{a[NR] = $1} END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

servers="torsion nginx h2o twisted"
for s in $servers; do
  "start_$s"
  eval "pid_$s=\${PID:-}; port_$s=\${PORT:-}"
  [ -n "${PID:-}" ] || echo "note: $s is not available, skipped"
done
echo "# $(date -u +%FT%TZ) $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# wrk -t1 -c$conns -d${secs}s, $rounds rounds interleaved; server on CPU 0, wrk on CPU 1"
for round in $(seq "$rounds"); do
  for mode in keepalive pipelined file; do
    for s in $servers; do
      eval "PID=\$pid_$s; PORT=\$port_$s"
      [ -n "$PID" ] || continue
      [ "$s" = twisted ] && [ "$mode" = file ] && continue
      line=$(run "$s" "$mode")
      case $line in [0-9]*) echo "$line" >> "$work/$s.$mode" ;; *) echo "  ($s $mode: no figures)" >&2 ;; esac
    done
  done
done
printf '\n%-8s %-10s %12s %9s %9s %12s %10s %10s %9s %9s\n' server mode "req/s" "p50 us" "p99 us" "CPU us/req" "rps/nginx" "cpu/nginx" "rps/h2o" "cpu/h2o"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
for mode in keepalive pipelined file; do
  for s in nginx h2o torsion twisted; do  # the anchors first: the others' ratios need them
    [ -f "$work/$s.$mode" ] || continue
    rps=$(cut -d' ' -f1 "$work/$s.$mode" | median)
    p50=$(cut -d' ' -f2 "$work/$s.$mode" | median)
    p99=$(cut -d' ' -f3 "$work/$s.$mode" | median)
    cpu=$(cut -d' ' -f4 "$work/$s.$mode" | median)
    eval "rps_${s}_$mode=$rps; cpu_${s}_$mode=$cpu"
    nr=$(eval "echo \${rps_nginx_$mode:-}"); nc=$(eval "echo \${cpu_nginx_$mode:-}")
    hr=$(eval "echo \${rps_h2o_$mode:-}"); hc=$(eval "echo \${cpu_h2o_$mode:-}")
    rn=-; cn=-; rh=-; ch=-
    [ "$s" != nginx ] && { rn=$(ratio "$rps" "$nr"); cn=$(ratio "$cpu" "$nc"); }
    [ "$s" != nginx ] && [ "$s" != h2o ] && { rh=$(ratio "$rps" "$hr"); ch=$(ratio "$cpu" "$hc"); }
    printf '%-8s %-10s %12s %9s %9s %12s %10s %10s %9s %9s\n' "$s" "$mode" "$rps" "$p50" "$p99" "$cpu" "$rn" "$cn" "$rh" "$ch"
    echo "  $s $mode rounds: $(cut -d' ' -f1 "$work/$s.$mode" | tr '\n' ' ')" >> "$work/spread"
  done
done
tr=$(eval "echo \${rps_torsion_keepalive:-}"); wr=$(eval "echo \${rps_twisted_keepalive:-}")
[ -n "$tr" ] && [ -n "$wr" ] && echo "# keep-alive /hello: torsion $(ratio "$tr" "$wr")x twisted.web's req/s (target >= 3x)"
echo "# load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo; echo "# every round (req/s), to judge the noise:"; cat "$work/spread"
