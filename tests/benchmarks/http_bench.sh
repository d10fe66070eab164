#!/usr/bin/env bash
# HTTP benchmark: examples/http_server (torsion_web) against nginx (1 worker, access_log
# off, `return 200 "hello world"`, sendfile on; tcp_nopush left at its default, off:
# with it on, nginx's 1 MiB file rows here showed ~1.5x the requests/s but ~2x the CPU
# per request, so the anchor is the cheaper setting; torsion holds the head with
# MSG_MORE only before a file of at most 64 KiB, docs/web.md), h2o (1 thread, no access
# log, an mruby handler returning "hello world", file.dir for files) and twisted.web,
# interleaved round by round, each server pinned to CPU 0 and wrk to CPU 1. Modes:
# keep-alive GET /hello (wrk -t1 -c50), the same pipelined 16 deep (a wrk Lua script), a
# 1 MiB file as fast as wrk takes it, the same file paced (file_paced: each connection
# waits after every response, so that every server answers about RATE requests/s in all
# and the CPU per request is compared at the same rate), and a 4 KiB file (file_4k, where
# the head shares the body's segment); no twisted in the file modes. Prints the median
# over ROUNDS of requests/s, p50/p99 latency, the server's CPU per request (utime+stime
# from /proc/PID/stat over the run, all threads), wrk's CPU per request (on loopback the
# kernel's work for a transfer is split between sender and receiver, and how it splits
# depends on the timing of each send, so the two are read together), and the ratios to
# nginx and to h2o.
#
#   tests/benchmarks/http_bench.sh BUILD_DIR     (needs examples/http_server built there)
#   ROUNDS=3 SECONDS_PER_RUN=5 CONNS=50 RATE=400 MODES="file file_paced" \
#     tests/benchmarks/http_bench.sh build
# Not a test: nothing here asserts a timing. The machine may be shared: say so with the
# figures, and compare only figures from the same run.
set -u
. "$(dirname "$0")/common.sh"
bench_init http_bench.sh "$@"
rate=${RATE:-400}
need wrk wrk

head -c 1048576 /dev/urandom > "$work/big.bin"
head -c 4096 /dev/urandom > "$work/small.bin"
printf 'hello world' > "$work/hello.txt"
cat > "$work/pipeline.lua" <<'LUA'
init = function(args)
  local r = {}
  for i = 1, 16 do r[i] = wrk.format(nil, "/hello") end
  req = table.concat(r)
end
request = function() return req end
LUA
# The paced mode: each connection waits after every response, so that every server gets
# about the same request rate (RATE in all) instead of as many as the client can take.
cat > "$work/paced.lua" <<LUA
delay = function() return $(awk -v c="$conns" -v r="$rate" 'BEGIN { printf "%d", c * 1000 / r }') end
LUA

# --- the servers: each start_* sets PID and PORT ---------------------------------------
start_torsion() { start_with_port torsion "$build/examples/http_server" --port 0 --root "$work"; }
start_nginx_hello() {
  start_nginx 'keepalive_requests 100000000;' \
    'location = /hello { default_type text/plain; return 200 "hello world"; }'
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
  start_with_port twisted "$python" -c '
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
'
}

# run SERVER MODE: one wrk run; prints "rps p50_us p99_us server_cpu_us_per_request
# client_cpu_us_per_request" (the client's CPU: wrk's, read from the subshell that waited
# for it, as on loopback the kernel's work for one transfer is split between the two)
to_us() {  # wrk latency "1.23ms" -> microseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /s$/) print n * 1000000; else print n }'
}
run() {
  local server=$1 mode=$2 path=/hello extra=()
  case $mode in
    pipelined) extra=(-s "$work/pipeline.lua") ;;
    file) path=/big.bin ;;
    file_paced) path=/big.bin; extra=(-s "$work/paced.lua") ;;
    file_4k) path=/small.bin ;;
  esac
  local c0 c1 out
  c0=$(cpu_ticks "$PID")
  out=$("${pin_load[@]}" wrk -t1 -c"$conns" -d"${secs}s" --latency "${extra[@]}" "http://127.0.0.1:$PORT$path" 2>&1
        read -r -a st < "/proc/$BASHPID/stat"; echo "client_ticks $((st[15] + st[16]))")
  c1=$(cpu_ticks "$PID")
  local rps reqs p50 p99 client
  rps=$(sed -n 's/^Requests\/sec: *//p' <<<"$out")
  reqs=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' <<<"$out")
  p50=$(to_us "$(awk '$1 == "50%" {print $2}' <<<"$out")")
  p99=$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  client=$(sed -n 's/^client_ticks //p' <<<"$out")
  if grep -q "Non-2xx\|Socket errors" <<<"$out"; then echo "  ($server $mode: $(grep -E 'Non-2xx|Socket errors' <<<"$out"))" >&2; fi
  awk -v r="$rps" -v n="$reqs" -v a="$p50" -v b="$p99" -v t=$((c1 - c0)) -v w="$client" -v hz="$hz" \
    'BEGIN { if (n > 0) printf "%s %s %s %.2f %.2f\n", r, a, b, t / hz * 1e6 / n, w / hz * 1e6 / n }'
}

servers="torsion nginx h2o twisted"
modes=${MODES:-keepalive pipelined file file_paced file_4k}
for s in $servers; do
  if [ "$s" = nginx ]; then start_nginx_hello; else "start_$s"; fi
  eval "pid_$s=\${PID:-}; port_$s=\${PORT:-}"
  [ -n "${PID:-}" ] || echo "note: $s is not available, skipped"
done
echo "# $(machine_line)"
echo "# wrk -t1 -c$conns -d${secs}s, $rounds rounds interleaved; server on CPU 0, wrk on CPU 1;" \
     "file_paced: the 1 MiB file at about $rate req/s in all (RATE)"
for round in $(seq "$rounds"); do
  for mode in $modes; do
    for s in $servers; do
      eval "PID=\$pid_$s; PORT=\$port_$s"
      [ -n "$PID" ] || continue
      case $mode in file*) [ "$s" = twisted ] && continue ;; esac
      line=$(run "$s" "$mode")
      case $line in [0-9]*) echo "$line" >> "$work/$s.$mode" ;; *) echo "  ($s $mode: no figures)" >&2 ;; esac
    done
  done
done
printf '\n%-8s %-10s %10s %8s %8s %10s %10s %9s %9s %9s %9s\n' server mode "req/s" "p50 us" "p99 us" \
  "CPU us/req" "wrk us/req" "rps/nginx" "cpu/nginx" "rps/h2o" "cpu/h2o"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
for mode in $modes; do
  for s in nginx h2o torsion twisted; do  # the anchors first: the others' ratios need them
    [ -f "$work/$s.$mode" ] || continue
    rps=$(cut -d' ' -f1 "$work/$s.$mode" | median)
    p50=$(cut -d' ' -f2 "$work/$s.$mode" | median)
    p99=$(cut -d' ' -f3 "$work/$s.$mode" | median)
    cpu=$(cut -d' ' -f4 "$work/$s.$mode" | median)
    client=$(cut -d' ' -f5 "$work/$s.$mode" | median)
    eval "rps_${s}_$mode=$rps; cpu_${s}_$mode=$cpu"
    nr=$(eval "echo \${rps_nginx_$mode:-}"); nc=$(eval "echo \${cpu_nginx_$mode:-}")
    hr=$(eval "echo \${rps_h2o_$mode:-}"); hc=$(eval "echo \${cpu_h2o_$mode:-}")
    rn=-; cn=-; rh=-; ch=-
    [ "$s" != nginx ] && { rn=$(ratio "$rps" "$nr"); cn=$(ratio "$cpu" "$nc"); }
    [ "$s" != nginx ] && [ "$s" != h2o ] && { rh=$(ratio "$rps" "$hr"); ch=$(ratio "$cpu" "$hc"); }
    printf '%-8s %-10s %10s %8s %8s %10s %10s %9s %9s %9s %9s\n' "$s" "$mode" "$rps" "$p50" "$p99" \
      "$cpu" "$client" "$rn" "$cn" "$rh" "$ch"
    echo "  $s $mode rounds (req/s, server CPU us/req): $(awk '{printf "%s/%s ", $1, $4}' "$work/$s.$mode")" >> "$work/spread"
  done
done
tr=$(eval "echo \${rps_torsion_keepalive:-}"); wr=$(eval "echo \${rps_twisted_keepalive:-}")
[ -n "$tr" ] && [ -n "$wr" ] && echo "# keep-alive /hello: torsion $(ratio "$tr" "$wr")x twisted.web's req/s (target >= 3x)"
echo "# load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo; echo "# every round, to judge the noise:"; cat "$work/spread"
