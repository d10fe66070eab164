#!/usr/bin/env bash
# Sets torsion up on a fresh Debian machine and runs the flagship examples:
# installs the Debian packages it needs (apt-get; sudo when not root), builds into
# ./build, then runs echo_server with echo_client against it, and the seed article's
# bulk_write experiment against a rate-limited discard_server in each --busy mode.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(g++ meson ninja-build pkg-config python3 libasio-dev doctest-dev libssl-dev openssl)
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
echo "bulk_write: 40 MiB to a reader limited to 20 MB/s, with a 50 ms busy loop per callback"
serve discard_server "$ex/discard_server" --rate 20000000 --rcvbuf 131072
for busy in none idle normal; do
  "$ex/bulk_write" 127.0.0.1 "$PORT" --busy "$busy" --sndbuf 600000
done
