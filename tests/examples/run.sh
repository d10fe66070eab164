#!/usr/bin/env bash
# Runs every example end to end on 127.0.0.1 with kernel-picked ports.
# Usage: tests/examples/run.sh BUILD_DIR   (prints "examples: N passed, N failed")
set -u
build=${1:?usage: run.sh BUILD_DIR}
ex="$build/examples"
work=$(mktemp -d)
pids=()
passed=0
failed=0
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

check() {  # check NAME CONDITION-EXIT-CODE [DETAIL]
  if [ "$2" -eq 0 ]; then
    passed=$((passed + 1)); echo "PASS $1"
  else
    failed=$((failed + 1)); echo "FAIL $1 ${3:-}"
  fi
}

# start NAME CMD...: starts a server whose first output line is "listening on HOST:PORT";
# waits (up to 10 s, no polling) for that line and sets PORT; FD reads its later output.
start() {
  local name=$1; shift
  mkfifo "$work/$name.fifo"
  "$@" > "$work/$name.fifo" &
  pids+=($!)
  exec {FD}<"$work/$name.fifo"
  local line=""
  read -r -t 10 -u "$FD" line
  PORT=${line##*:}
}

# echo_server + echo_client
start echo "$ex/echo_server"
out=$(timeout 10 "$ex/echo_client" 127.0.0.1 "$PORT" "hello, torsion")
[ "$out" = "hello, torsion" ]; check "echo_client gets its echo from echo_server" $? "got '$out'"

# A refused connection is reported, with a non-zero status.
"$ex/echo_server" --port 0 --interface not-an-address >/dev/null 2>&1
[ $? -ne 0 ]; check "echo_server rejects a bad interface" $?
closed_port=$( (python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])') 2>/dev/null || echo 1)
err=$(timeout 10 "$ex/echo_client" 127.0.0.1 "$closed_port" x 2>&1 >/dev/null)
status=$?
[ $status -eq 1 ] && [[ "$err" == *"connection refused"* ]]
check "echo_client reports connection refused" $? "status $status: $err"

# echo_server --systemd under the real systemd-socket-activate (Debian systemd): it binds
# the port (picked by binding port 0 first; it takes no port 0 itself), passes it as
# descriptor 3 with LISTEN_FDS/LISTEN_PID, and starts the server at the first connection.
if command -v systemd-socket-activate >/dev/null; then
  sd_port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  mkfifo "$work/sd.err" "$work/sd.out"
  systemd-socket-activate -l "127.0.0.1:$sd_port" "$ex/echo_server" --systemd \
    > "$work/sd.out" 2> "$work/sd.err" &
  sd_pid=$!
  pids+=($sd_pid)
  exec {SDOUT}<"$work/sd.out" {SDERR}<"$work/sd.err"  # the order the server opens them
  line=""
  read -r -t 10 -u "$SDERR" line  # "Listening on 127.0.0.1:PORT as 3."
  [ "$line" = "Listening on 127.0.0.1:$sd_port as 3." ]
  check "systemd-socket-activate listens for echo_server" $? "'$line'"
  out=$(timeout 10 "$ex/echo_client" 127.0.0.1 "$sd_port" "socket activated")
  [ "$out" = "socket activated" ]; check "echo_server --systemd echoes on the passed socket" $? "got '$out'"
  line=""
  read -r -t 10 -u "$SDOUT" line
  [ "$line" = "listening on 127.0.0.1:$sd_port" ]; check "echo_server --systemd reports the passed socket" $? "'$line'"
  kill -TERM "$sd_pid"; wait "$sd_pid"
  check "echo_server --systemd exits 0 on SIGTERM" $?
  exec {SDERR}<&- {SDOUT}<&-
else
  echo "SKIP echo_server --systemd: systemd-socket-activate is not installed (Debian systemd)"
fi
# The unit files of docs/deploying.md, pointed at this build's echo_server.
if command -v systemd-analyze >/dev/null; then
  root=$(cd "$(dirname "$0")/../.." && pwd)
  mkdir "$work/units"
  cp "$root/examples/systemd/torsion-echo.socket" "$work/units/"
  sed "s|/usr/local/bin/echo_server|$(cd "$ex" && pwd)/echo_server|" \
    "$root/examples/systemd/torsion-echo.service" > "$work/units/torsion-echo.service"
  out=$(systemd-analyze verify "$work/units/torsion-echo.socket" "$work/units/torsion-echo.service" 2>&1)
  [ $? -eq 0 ] && [ -z "$out" ]; check "systemd-analyze verify passes the example units" $? "$out"
fi
# twistd's --pidfile and --uid: the pid is in the file while the server runs and gone after
# SIGTERM; as root, the server runs as nobody once its port is bound.
start pidfile "$ex/echo_server" --pidfile "$work/echo.pid"
pf_pid=${pids[-1]}
[ "$(cat "$work/echo.pid" 2>/dev/null)" = "$pf_pid" ]; check "echo_server --pidfile writes its pid" $?
timeout 10 "$ex/echo_client" 127.0.0.1 "$PORT" "x" >/dev/null  # run() handles SIGTERM now
kill -TERM "$pf_pid"; wait "$pf_pid"
[ ! -e "$work/echo.pid" ]; check "echo_server --pidfile removes it at exit" $?
# twistd's --logfile: the log is appended to the file; after logrotate's rename and a
# SIGHUP, the next line goes to a new file at the same path.
start logfile "$ex/echo_server" --logfile "$work/echo.log"
lf_pid=${pids[-1]}
grep -q "Z \[info\] echo_server: listening on 127.0.0.1:$PORT\$" "$work/echo.log"
check "echo_server --logfile writes the log to the file" $? "$(cat "$work/echo.log")"
mv "$work/echo.log" "$work/echo.log.1"
timeout 10 "$ex/echo_client" 127.0.0.1 "$PORT" "x" >/dev/null  # run() handles SIGTERM now
kill -HUP "$lf_pid"
kill -TERM "$lf_pid"; wait "$lf_pid"; status=$?
[ $status -eq 0 ] && grep -q "\[info\] received SIGTERM: shutting down" "$work/echo.log" \
  && [ "$(wc -l < "$work/echo.log.1")" -eq 1 ]
check "echo_server --logfile reopens the file on SIGHUP" $? \
  "status $status; new: $(cat "$work/echo.log" 2>&1); old: $(cat "$work/echo.log.1")"
# The journal's formats: "<N>" lines on stderr, and native datagrams to a socket the test
# binds (python3 stands in for journald; the real journal is never touched).
start priority "$ex/echo_server" --log-format priority 2> "$work/priority.err"
kill -TERM "${pids[-1]}"; wait "${pids[-1]}"
[ "$(head -1 "$work/priority.err")" = "<6>echo_server: listening on 127.0.0.1:$PORT" ]
check "echo_server --log-format priority prefixes syslog priorities" $? "$(cat "$work/priority.err")"
mkfifo "$work/journald.fifo"
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("ready", flush=True)
s.settimeout(10)
for _ in range(2):
    print(repr(s.recv(65536).decode()), flush=True)
' "$work/journal.sock" > "$work/journald.fifo" &
pids+=($!)
exec {JFD}<"$work/journald.fifo"
line=""; read -r -t 10 -u "$JFD" line
start journal "$ex/echo_server" --log-format journal --journal-socket "$work/journal.sock"
entry=""; read -r -t 10 -u "$JFD" entry
timeout 10 "$ex/echo_client" 127.0.0.1 "$PORT" "x" >/dev/null  # run() handles SIGTERM now
kill -TERM "${pids[-1]}"; wait "${pids[-1]}"
entry2=""; read -r -t 10 -u "$JFD" entry2
exec {JFD}<&-
want="'MESSAGE=echo_server: listening on 127.0.0.1:$PORT\\nPRIORITY=6\\nSYSLOG_IDENTIFIER=echo_server\\n'"
want2="'MESSAGE=received SIGTERM: shutting down\\nPRIORITY=6\\nSYSLOG_IDENTIFIER=echo_server\\n'"
[ "$entry" = "$want" ] && [ "$entry2" = "$want2" ]
check "echo_server --log-format journal sends the native protocol" $? "got $entry, $entry2"
if [ "$(id -u)" = 0 ] && id -u nobody >/dev/null 2>&1; then
  start nobody "$ex/echo_server" --uid nobody
  uid=$(awk '/^Uid:/ {print $2 "/" $3 "/" $4}' "/proc/${pids[-1]}/status")
  n=$(id -u nobody)
  [ "$uid" = "$n/$n/$n" ]; check "echo_server --uid nobody runs as nobody" $? "Uid: $uid"
  out=$(timeout 10 "$ex/echo_client" 127.0.0.1 "$PORT" "as nobody")
  [ "$out" = "as nobody" ]; check "echo_server --uid nobody echoes" $? "got '$out'"
else
  echo "SKIP echo_server --uid: needs root and a user 'nobody'"
fi
# bulk_write against a rate-limited discard_server, in each busy mode (short runs).
start discard "$ex/discard_server" --rate 50000000 --rcvbuf 131072
for busy in none idle normal; do
  line=$(timeout 60 "$ex/bulk_write" 127.0.0.1 "$PORT" --busy "$busy" --mib 4 --jobs 2 --slice 2 \
         --trace "$work/$busy.trace")
  status=$?
  [ $status -eq 0 ] && [[ "$line" == "busy=$busy bytes=4194304 wall="*"s cpu="*"s busy_cpu="* ]]
  check "bulk_write --busy $busy completes" $? "status $status: $line"
  # The trace's last sample is every byte handed to the kernel.
  last=$(grep '^b ' "$work/$busy.trace" | tail -1)
  [[ "$last" == *" 4194304" ]]; check "bulk_write --busy $busy traces every byte" $? "$last"
  if [ "$busy" != none ]; then
    slices=${line##*busy_slices=}
    [ "${slices:-0}" -gt 0 ] && grep -q '^s ' "$work/$busy.trace"
    check "bulk_write --busy $busy ran and traced busy slices" $? "$line"
  fi
done
# The server prints one line per closed connection: read all three (10 s deadline each).
counted=0
lines=""
for _ in 1 2 3; do
  line=""
  read -r -t 10 -u "$FD" line || break
  lines="$lines$line; "
  [[ "$line" == *"sent 4194304 bytes (connection closed cleanly)" ]] && counted=$((counted + 1))
done
[ $counted -eq 3 ]; check "discard_server counted every byte of each connection" $? "$lines"

# docs/why-a-reactor.md steps 1 and 2: plain sockets, blocking and non-blocking (short runs).
start discard_why "$ex/discard_server" --rate 50000000 --rcvbuf 131072
line=$(timeout 60 "$ex/why_blocking" 127.0.0.1 "$PORT" --mib 4 --sndbuf 600000)
status=$?
[ $status -eq 0 ] && [[ "$line" == "step=blocking bytes=4194304 wall="*"s cpu="*"s work_slices=0" ]]
check "why_blocking sends every byte and reports wall and CPU time" $? "status $status: $line"
line=$(timeout 60 "$ex/why_nonblocking" 127.0.0.1 "$PORT" --mib 4 --sndbuf 600000)
status=$?
slices=${line##*work_slices=}
[ $status -eq 0 ] && [[ "$line" == "step=nonblocking bytes=4194304 wall="* ]] && [ "${slices:-0}" -gt 0 ]
check "why_nonblocking sends every byte and does work slices while waiting" $? "status $status: $line"
"$ex/why_nonblocking" 127.0.0.1 "$PORT" --work sometimes >/dev/null 2>&1
[ $? -eq 2 ]; check "why_nonblocking rejects a bad --work" $?
# Step 5: the coroutine client, with idle work (a short run).
line=$(timeout 60 "$ex/why_coroutine" 127.0.0.1 "$PORT" --busy idle --mib 4 --jobs 2 --slice 2)
status=$?
slices=${line##*busy_slices=}
[ $status -eq 0 ] && [[ "$line" == "busy=idle bytes=4194304 wall="*"s cpu="* ]] && [ "${slices:-0}" -gt 0 ]
check "why_coroutine sends every byte from a coroutine and does idle work" $? "status $status: $line"
"$ex/why_coroutine" 127.0.0.1 "$PORT" --busy sometimes >/dev/null 2>&1
[ $? -eq 2 ]; check "why_coroutine rejects a bad --busy" $?
counted=0
lines=""
for _ in 1 2 3; do
  line=""
  read -r -t 10 -u "$FD" line || break
  lines="$lines$line; "
  [[ "$line" == *"sent 4194304 bytes (connection closed cleanly)" ]] && counted=$((counted + 1))
done
[ $counted -eq 3 ]; check "discard_server counted every byte from why_blocking, why_nonblocking and why_coroutine" $? "$lines"

# udp_echo: a datagram comes back to its sender.
start udp "$ex/udp_echo" 0
out=$(timeout 10 python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
s.sendto(b"ping over udp", ("127.0.0.1", int(sys.argv[1])))
print(s.recvfrom(100)[0].decode())' "$PORT" 2>&1)
[ "$out" = "ping over udp" ]; check "udp_echo echoes a datagram" $? "got '$out'"

# unix_echo: echo over a Unix socket in a temporary folder; it reports our credentials.
start unix "$ex/unix_echo" "$work/echo.sock"
out=$(timeout 10 python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])
s.sendall(b"ping over unix"); print(s.recv(100).decode())' "$work/echo.sock" 2>&1)
[ "$out" = "ping over unix" ]; check "unix_echo echoes over a Unix socket" $? "got '$out'"
line=""; read -r -t 10 -u "$FD" line
[[ "$line" == "client pid "*" uid $(id -u) "* ]]; check "unix_echo sees the peer's credentials" $? "$line"

# spawn: a child's stdout and stderr are streamed, and its exit status is ours.
out=$(timeout 10 "$ex/spawn" sh -c 'echo out; echo err >&2; exit 3' 2>&1)
status=$?
[ $status -eq 3 ] && [[ "$out" == *out* ]] && [[ "$out" == *err* ]]
check "spawn streams a child's output and returns its status" $? "status $status: $out"

# stdio_lines: a filter over stdin/stdout.
out=$(printf 'hello\nworld\n' | timeout 10 "$ex/stdio_lines")
[ "$(printf '%s\n' "$out" | wc -l)" -eq 2 ] && [[ "$out" == *olleh* ]] && [[ "$out" == *dlrow* ]]
check "stdio_lines numbers and reverses lines" $? "got '$out'"

# tls_echo_server / tls_echo_client with a throwaway CA (verification on).
if [ -x "$ex/tls_echo_server" ]; then
  sh "$(dirname "$0")/../../examples/make_test_cert.sh" "$work/certs" >/dev/null
  start tls "$ex/tls_echo_server" 0 "$work/certs/server.pem" "$work/certs/server.key"
  out=$(timeout 10 "$ex/tls_echo_client" 127.0.0.1 "$PORT" "$work/certs/ca.pem" "over tls" 2>&1)
  [[ "$out" == *"echoed: over tls"* ]]; check "tls_echo_client gets its echo over verified TLS" $? "$out"
  other=$(mktemp -d)
  sh "$(dirname "$0")/../../examples/make_test_cert.sh" "$other" >/dev/null
  out=$(timeout 10 "$ex/tls_echo_client" 127.0.0.1 "$PORT" "$other/ca.pem" "x" 2>&1)
  status=$?
  rm -rf "$other"
  [ $status -ne 0 ] && [[ "$out" == *"failed"* ]]; check "tls_echo_client refuses a server its CA did not sign" $? "$out"
fi

# One echo client three ways (callbacks, Deferreds, coroutine), against echo_server.
start echo2 "$ex/echo_server"
for way in echo_client_callbacks echo_client_deferreds coro_echo_client; do
  out=$(timeout 10 "$ex/$way" 127.0.0.1 "$PORT" "three ways" 2>&1)
  status=$?
  [ $status -eq 0 ] && [[ "$out" == *"three ways"* ]]; check "$way gets its echo" $? "status $status: $out"
done
out=$(timeout 10 "$ex/coro_echo_client" 127.0.0.1 "$closed_port" x 2>&1)
[ $? -ne 0 ] && [[ "$out" == *"refused"* ]]; check "coro_echo_client reports a refused connection" $? "$out"

# The coroutine line chat client, against its built-in server.
out=$(timeout 20 "$ex/coro_line_chat_client" --demo 2>&1)
status=$?
[ $status -eq 0 ] && [[ "$out" == *"you said"* ]]; check "coro_line_chat_client --demo talks" $? "status $status: $out"

# thread_pool hashes files off the reactor thread while serving.
printf 'abc' > "$work/a.txt"; printf '' > "$work/empty.txt"
out=$(timeout 30 "$ex/thread_pool" --threads 2 "$work/a.txt" "$work/empty.txt" 2>&1)
status=$?
# FNV-1a 64 of "abc" and of the empty string.
[ $status -eq 0 ] && [[ "$out" == *e71fa2190541574b* ]] && [[ "$out" == *cbf29ce484222325* ]]
check "thread_pool hashes files in the pool (FNV-1a)" $? "status $status: $out"

# kv_server against redis-server 7.0 (Debian redis-server, redis-tools): the same
# commands through redis-cli, and raw requests (inline, pipelined, malformed) byte for byte.
if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
  start kv "$ex/kv_server" --port 0
  kv_port=$PORT
  rport=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  mkfifo "$work/redis.fifo"
  redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no > "$work/redis.fifo" &
  pids+=($!)
  exec {RFD}<"$work/redis.fifo"
  ready=1
  while read -r -t 10 -u "$RFD" line; do  # up to 10 s per log line, no polling
    [[ "$line" == *"Ready to accept connections"* ]] && { ready=0; break; }
  done
  check "redis-server starts on 127.0.0.1:$rport" $ready
  commands="$(dirname "$0")/kv_commands.txt"
  timeout 20 redis-cli -p "$rport" < "$commands" > "$work/redis.txt" 2>&1
  timeout 20 redis-cli -p "$kv_port" < "$commands" > "$work/kv.txt" 2>&1
  diff "$work/redis.txt" "$work/kv.txt" > "$work/kv.diff"
  check "kv_server answers redis-cli as redis-server does ($(wc -l < "$work/redis.txt") lines)" $? \
    "$(head -20 "$work/kv.diff")"
  out=$(redis-cli -p "$kv_port" set greeting hello px 200; redis-cli -p "$kv_port" get greeting)
  [ "$out" = $'OK\nhello' ]; check "kv_server: redis-cli set and get" $? "$out"
  out=$(timeout 60 python3 "$(dirname "$0")/resp_compare.py" "$rport" "$kv_port" 2>&1)
  check "kv_server: raw requests byte for byte as redis-server" $? "$out"
else
  echo "SKIP kv_server against redis: redis-server or redis-cli missing (apt-get install redis-server redis-tools)"
fi

# http_server serves /hello and a directory; curl reuses one connection for three URLs and
# gets byte ranges of a file (206, and 416 past its end) and a 304 for -z.
if command -v curl >/dev/null; then
  mkdir -p "$work/site/sub"; printf '<h1>torsion</h1>' > "$work/site/index.html"
  printf 'nested' > "$work/site/sub/file.txt"
  start http "$ex/http_server" --port 0 --root "$work/site"
  base="http://127.0.0.1:$PORT"
  out=$(timeout 10 curl -sv "$base/hello" "$base/" "$base/sub/file.txt" 2>&1)
  [[ "$out" == *"hello world"* ]] && [[ "$out" == *"<h1>torsion</h1>"* ]] && [[ "$out" == *nested* ]] \
    && [ "$(grep -c 'Re-using existing connection' <<<"$out")" -eq 2 ]
  check "http_server answers curl on one kept-alive connection" $? "$out"
  code=$(timeout 10 curl -s -o /dev/null -w '%{http_code}' --path-as-is "$base/../etc/passwd")
  [ "$code" = 404 ]; check "http_server refuses a path outside its root" $? "got $code"
  out=$(timeout 10 curl -s -w ' %{http_code}' -r 2-4 "$base/sub/file.txt"; echo
         timeout 10 curl -s -w ' %{http_code}' -r -3 "$base/sub/file.txt"; echo
         timeout 10 curl -s -o /dev/null -w '%{http_code}' -r 6- "$base/sub/file.txt")
  [ "$out" = $'ste 206\nted 206\n416' ]; check "http_server answers curl's range requests" $? "$out"
  code=$(timeout 10 curl -s -o /dev/null -w '%{http_code}' -z "$work/site/sub/file.txt" "$base/sub/file.txt")
  [ "$code" = 304 ]; check "http_server answers curl -z (the file's own mtime) with 304" $? "got $code"
  out=$(timeout 10 "$ex/http_get" "$base/sub/file.txt" 2>&1)
  [[ "$out" == "HTTP/1.1 200 OK"*"Content-Length: 6"*nested ]]; check "http_get fetches from http_server" $? "$out"
  out=$(timeout 10 "$ex/http_get" "http://127.0.0.1:$closed_port/" 2>&1)
  [ $? -eq 1 ] && [[ "$out" == *"refused"* ]]; check "http_get reports a refused connection" $? "$out"
else
  echo "SKIP http_server: curl is not installed"
fi

# ws_chat: two python3-websockets clients in the room; each hears the other's line.
if /usr/bin/python3 -c 'import websockets' 2>/dev/null; then
  start ws_chat "$ex/ws_chat" --port 0
  out=$(timeout 20 /usr/bin/python3 -c '
import asyncio, sys, urllib.request, websockets
async def main(port):
    page = urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=10).read().decode()
    async with websockets.connect("ws://127.0.0.1:%d/chat" % port) as a:
        first = await a.recv()
        async with websockets.connect("ws://127.0.0.1:%d/chat" % port) as b:
            await b.recv()
            await a.recv()
            await a.send("hi from a")
            await a.recv()  # its own line comes back too
            print(first, "|", await b.recv(), "|", "new WebSocket" in page)
        print(await a.recv())
asyncio.run(main(int(sys.argv[1])))
' "$PORT" 2>&1)
  [ "$out" = "$(printf 'user1 joined | user1: hi from a | True\nuser2 left')" ]
  check "ws_chat: a line from one member reaches another; leaving is announced" $? "$out"
  # A member that stops reading is dropped once 64 KiB wait for it; the others go on.
  out=$(timeout 60 /usr/bin/python3 -c '
import asyncio, socket, sys, websockets
async def main(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    slow = await websockets.connect("ws://127.0.0.1:%d/chat" % port, sock=s, compression=None)
    name = (await slow.recv()).split()[0]
    slow.transport.pause_reading()
    async with websockets.connect("ws://127.0.0.1:%d/chat" % port) as fast:
        left = asyncio.Event()
        async def read():
            async for m in fast:
                if m == name + " left":
                    left.set()
        reader = asyncio.create_task(read())
        sent = 0
        while not left.is_set() and sent < 50000:
            await fast.send("x" * 1000)
            sent += 1
            await asyncio.sleep(0)  # let the reader run
        await asyncio.wait_for(left.wait(), 10)
        await fast.send("still here")
        print("dropped after", sent, "lines" if sent < 50000 else "(never)")
        reader.cancel()
    slow.transport.abort()
asyncio.run(main(int(sys.argv[1])))
' "$PORT" 2>&1)
  [[ "$out" == "dropped after "*" lines" ]]
  check "ws_chat: a member that stops reading is dropped, the room goes on" $? "$out"
else
  echo "SKIP ws_chat: python3-websockets is not installed"
fi

# Bad input: every example that takes arguments refuses a port out of range, a port in
# use, a missing or unreadable certificate or CA file, with one line on stderr and status 2.
bad_input() {  # bad_input CMD...
  local err status
  err=$(timeout 10 "$@" 2>&1 >/dev/null)
  status=$?
  [ $status -eq 2 ] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && [[ "$err" == *"error: "* ]]
  check "bad input: ${*#"$ex/"}" $? "status $status: $err"
}
start busy "$ex/echo_server"  # holds a TCP port for the 'in use' cases
busy=$PORT
for server in echo_server discard_server chat_server wire_server thread_pool kv_server http_server ws_chat; do
  bad_input "$ex/$server" --port 99999
  bad_input "$ex/$server" --port "$busy"
done
bad_input "$ex/echo_server" --port -1
bad_input "$ex/echo_server" --systemd  # no sockets passed
bad_input "$ex/echo_server" --uid no-such-user-torsion
bad_input "$ex/echo_server" --gid nogroup  # without --uid
bad_input "$ex/echo_server" --pidfile /nonexistent-dir/echo.pid
bad_input "$ex/udp_echo" 65536
bad_input "$ex/unix_echo" "$work/no-such-dir/echo.sock"
bad_input "$ex/port_forward" 99999 127.0.0.1 1
bad_input "$ex/port_forward" "$busy" 127.0.0.1 1
bad_input "$ex/port_forward" 0 127.0.0.1 0
bad_input "$ex/port_forward" --buffered 99999 127.0.0.1 1
for client in echo_client echo_client_callbacks echo_client_deferreds coro_echo_client; do
  bad_input "$ex/$client" 127.0.0.1 99999 x
done
for client in coro_line_chat_client bulk_write why_coroutine why_blocking why_nonblocking; do
  bad_input "$ex/$client" 127.0.0.1 65536
done
bad_input "$ex/spawn" "$work/no-such-program"
bad_input "$ex/http_get" "http://127.0.0.1:99999/"
if [ -x "$ex/tls_echo_server" ]; then
  bad_input "$ex/tls_echo_server" 99999 "$work/certs/server.pem" "$work/certs/server.key"
  bad_input "$ex/tls_echo_server" "$busy" "$work/certs/server.pem" "$work/certs/server.key"
  bad_input "$ex/tls_echo_server" 0 "$work/no-such.pem" "$work/certs/server.key"
  bad_input "$ex/tls_echo_server" 0 "$work/certs/server.pem" "$work/certs"  # a directory
  bad_input "$ex/tls_echo_client" 127.0.0.1 99999 "$work/certs/ca.pem"
  bad_input "$ex/tls_echo_client" 127.0.0.1 "$busy" "$work/no-such-ca.pem"
  bad_input "$ex/tls_echo_client" 127.0.0.1 "$busy" /dev/null  # no certificate in it
fi

echo "examples: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
