#!/usr/bin/env bash
# Sets torsion up on a fresh Debian machine and runs the flagship examples:
# installs the Debian packages it needs (apt-get; sudo when not root), builds into
# ./build, then runs echo_server with echo_client against it, and the seed article's
# bulk_write experiment (tests/benchmarks/seed_check.sh: each --busy mode 5 times against a
# rate-limited discard_server; it prints the medians and ratios) and draws its trace as
# build/bulk_write_trace.png (examples/plot_trace.py, python3-matplotlib).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(g++ meson ninja-build pkg-config python3 python3-matplotlib libasio-dev doctest-dev
          libssl-dev openssl zlib1g-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

[ -d build ] || meson setup build
ninja -C build

ex=build/examples
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

# serve NAME CMD...: runs a server, waits for "listening on HOST:PORT", sets PORT.
serve() {
  local fifo; fifo=$(mktemp -u); mkfifo "$fifo"
  "${@:2}" > "$fifo" &
  pids+=($!)
  exec {fd}<"$fifo"; rm -f "$fifo"
  local line; read -r -t 10 -u "$fd" line
  echo "$1: $line"
  PORT=${line##*:}
}

serve echo_server "$ex/echo_server"
echo "echo_client says: $("$ex/echo_client" 127.0.0.1 "$PORT" "hello, torsion")"

echo
echo "bulk_write: 8 MiB to a reader limited to 4 MB/s while 20 busy jobs run 20 ms slices,"
echo "at no, idle and normal priority, 5 runs each (about 90 s; examples/bulk_write.cpp says why)"
traces=build/bulk_write_traces
mkdir -p "$traces"
TRACE_DIR="$traces" bash tests/benchmarks/seed_check.sh build 5 > build/seed_check.log 2>&1 \
  && verdict="the seed's claim holds" || verdict="the seed's claim did NOT hold this time (see build/seed_check.log)"
grep -E '^(load average|median|normal / none|PASS|FAIL)' build/seed_check.log
echo "$verdict"
# Debian's python3 has python3-matplotlib, whichever python3 comes first on PATH.
py=python3; [ -x /usr/bin/python3 ] && py=/usr/bin/python3
# PICTURE=docs/images/bulk_write_trace.png regenerates the one docs/why-a-reactor.md shows.
picture=${PICTURE:-build/bulk_write_trace.png}
if "$py" examples/plot_trace.py "$picture" \
     "$traces/none.trace" "$traces/idle.trace" "$traces/normal.trace"; then
  echo "picture of the last round: $picture"
fi
