#!/usr/bin/env bash
# What a newcomer sees on a fresh Debian machine: builds a bare Debian root with mmdebstrap
# (--variant=minbase: no compiler, no /etc/hosts, nothing the repository does not install
# itself), copies the tree into it, and runs there, as root:
#   1. the README's first command (sets everything up and runs the flagship examples),
#   2. the README's second command (the whole test suite),
#   3. an install of the .deb files tests/install/deb.sh built (apt-get install ./...deb),
#      then a consumer (tests/install/consumer) built against them with g++ $(pkg-config)
#      and with CMake, and the packaged echo_server answering the packaged echo_client.
# The two commands are read from the README's first code block, so they cannot drift.
# Needs root, mmdebstrap and Debian's archive (BARE_MIRROR, default deb.debian.org).
# Usage: tests/install/bare.sh SOURCE_DIR DEB_DIR     prints "bare: N passed, N failed"
set -u
if [ "${1:-}" = --inside ]; then
  # Run by mmdebstrap's customize hook, with /proc, /sys and /dev mounted in ROOT.
  shift
  root=$1 src=$2 debs=$3 work=$4
  inroot() {  # inroot LOG COMMAND: runs COMMAND with bash in the root, from /src
    chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      HOME=/root LANG=C.UTF-8 TERM=dumb bash -c "cd /src && $2" >"$1" 2>&1
  }
  result() { echo "$1 $2" >>"$work/results"; }
  [ ! -e "$root/etc/hosts" ]; result $? "the root has no /etc/hosts, as minimal containers have none"
  . "$src/tests/install/common.sh"  # copy_tree
  mkdir -p "$root/debs"
  copy_tree "$src" "$root/src"
  cp "$debs"/*.deb "$root/debs/" 2>/dev/null
  # The README's first code block: its first two commands, comments dropped.
  mapfile -t readme < <(awk '/^```/{n++; next} n==1' "$src/README.md" \
    | sed 's/[[:space:]]*#.*$//' | grep -v '^[[:space:]]*$' | head -2)
  echo "README command 1: ${readme[0]:-}" >"$work/commands"
  echo "README command 2: ${readme[1]:-}" >>"$work/commands"
  inroot "$work/readme1.log" "${readme[0]:-false}"; result $? "README command 1 (${readme[0]:-}) works"
  inroot "$work/readme2.log" "${readme[1]:-false}"; result $? "README command 2 (${readme[1]:-}) passes"
  inroot "$work/deb.log" 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends cmake /debs/libtorsion-dev_*.deb /debs/torsion-examples_*.deb'
  result $? "the .deb files install with apt-get (dependencies from the archive)"
  inroot "$work/consumer.log" '
    set -e
    rm -rf /tmp/consumer && cp -r tests/install/consumer /tmp/consumer && cd /tmp/consumer
    sh /src/examples/make_test_cert.sh /tmp/certs >/dev/null
    g++ -std=c++20 -Wall -Werror main.cpp -o consumer $(pkg-config --cflags --libs torsion)
    ./consumer
    g++ -std=c++20 -Wall -Werror tls_main.cpp -o tls_consumer $(pkg-config --cflags --libs torsion_tls)
    ./tls_consumer /tmp/certs
    cmake -G Ninja -S . -B cmake-build -DWANT="$(pkg-config --modversion torsion)" >/dev/null
    cmake --build cmake-build >/dev/null
    cmake-build/consumer && cmake-build/tls_consumer /tmp/certs'
  result $? "a consumer builds and runs against the packages (pkg-config and CMake)"
  inroot "$work/examples.log" '
    set -e
    /usr/libexec/torsion/echo_server >/tmp/echo_server.out & pid=$!
    trap "kill $pid" EXIT
    for i in $(seq 100); do grep -q "listening on" /tmp/echo_server.out && break; sleep 0.1; done
    port=$(sed -n "s/.*listening on .*:\([0-9]*\)$/\1/p" /tmp/echo_server.out)
    [ "$(/usr/libexec/torsion/echo_client 127.0.0.1 "$port" "hello, package")" = "hello, package" ]'
  result $? "the packaged echo_client talks to the packaged echo_server"
  exit 0
fi

src=$(cd "$1" && pwd)
debs=$(cd "$2" 2>/dev/null && pwd || echo "$2")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/common.sh"  # check
finish() { echo "bare: $passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit; }

if [ "$(id -u)" -ne 0 ] || ! command -v mmdebstrap >/dev/null; then
  check "root and mmdebstrap (Debian mmdebstrap) to build a bare Debian root" 1
  finish
fi
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
mirror=${BARE_MIRROR:-http://deb.debian.org/debian}
mmdebstrap --variant=minbase --mode=root "$suite" "$work/root" "$mirror" \
  --customize-hook="bash '$src/tests/install/bare.sh' --inside \"\$1\" '$src' '$debs' '$work'" \
  </dev/null >"$work/mmdebstrap.log" 2>&1
check "mmdebstrap builds a bare $suite root and runs the checks in it" $? "$work/mmdebstrap.log"
cat "$work/commands" 2>/dev/null
logs=(- "$work/readme1.log" "$work/readme2.log" "$work/deb.log" "$work/consumer.log" "$work/examples.log")
i=0
while read -r status name; do
  log=${logs[$i]:-}
  [ "$log" = - ] && log=""
  check "$name" "$status" "$log"
  i=$((i + 1))
done < <(cat "$work/results" 2>/dev/null)
# The suite's own summary, as the newcomer saw it.
grep -E '^(Ok|Fail|Skipped|Timeout):' "$work/readme2.log" 2>/dev/null
rm -rf "$work/root"
finish
