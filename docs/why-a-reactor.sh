#!/usr/bin/env bash
# Runs every step of docs/why-a-reactor.md against one rate-limited reader and prints
# each step's wall and CPU time. Usage: docs/why-a-reactor.sh [BUILD_DIR] (default: build)
set -euo pipefail
ex="${1:-build}/examples"
fifo=$(mktemp -u); mkfifo "$fifo"
"$ex/discard_server" --rate 20000000 --rcvbuf 131072 > "$fifo" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$fifo"' EXIT
exec {fd}<"$fifo"
read -r -t 10 -u "$fd" line
port=${line##*:}
echo "reader: discard_server --rate 20000000 --rcvbuf 131072 ($line); 40 MiB per step; load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "1 blocking send:           $("$ex/why_blocking" 127.0.0.1 "$port" --sndbuf 600000)"
echo "2 non-blocking, by hand:   $("$ex/why_nonblocking" 127.0.0.1 "$port" --sndbuf 600000)"
echo "3 torsion transport:       $("$ex/bulk_write" 127.0.0.1 "$port" --busy none --sndbuf 600000)"
echo "4 busy work at idle:       $("$ex/bulk_write" 127.0.0.1 "$port" --busy idle --sndbuf 600000)"
echo "  (busy work at normal:    $("$ex/bulk_write" 127.0.0.1 "$port" --busy normal --sndbuf 600000))"
echo "5 coroutine client:        $("$ex/why_coroutine" 127.0.0.1 "$port" --busy none --sndbuf 600000)"
echo "  (coroutine, idle work:   $("$ex/why_coroutine" 127.0.0.1 "$port" --busy idle --sndbuf 600000))"
