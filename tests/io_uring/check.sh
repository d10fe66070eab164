#!/usr/bin/env bash
# Test programs of a build configured -Dio_uring=true (Asio's ASIO_HAS_IO_URING +
# ASIO_DISABLE_EPOLL, linked with liburing): sockets, timers and descriptor watches on one
# io_uring. Only the named doctest programs are built (default: framework, the one CI
# runs; docs/installing.md says why transports is not among them yet), without
# optimisation or debug information, to keep the step short on a machine with no ccache.
# When this kernel or container refuses io_uring, a Reactor cannot be made in such a
# build (Asio has no fallback to epoll within one build): the step then says why and skips.
#
#   tests/io_uring/check.sh SOURCE_DIR [BUILD_DIR] [AREA...]     (AREA: framework, ...)
#
# Prints "uring: N passed, N failed" (doctest test cases).
set -u
src=${1:?usage: check.sh SOURCE_DIR [BUILD_DIR] [AREA...]}
build=${2:-$src/build-io-uring}
shift $(($# < 2 ? $# : 2))
areas=("$@")
[ ${#areas[@]} -gt 0 ] || areas=(framework)
jobs=$(nproc 2>/dev/null || echo 2)

if ! pkg-config --exists liburing; then
  echo "skipped: liburing is not installed (Debian: liburing-dev)"
  echo "uring: 0 passed, 0 failed"
  exit 0
fi
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$src" -Dio_uring=true -Dbuildtype=debug -Ddebug=false \
    -Dexamples=false -Dwerror=true >"$build.setup.log" 2>&1 || { cat "$build.setup.log"; exit 1; }
fi
binaries=()
for a in "${areas[@]}"; do binaries+=("tests/${a}_tests"); done
start=$SECONDS
ninja -C "$build" -j"$jobs" "${binaries[@]}" >"$build.build.log" 2>&1 \
  || { tail -50 "$build.build.log"; exit 1; }
echo "built ${binaries[*]} in $((SECONDS - start)) s"

passed=0
failed=0
status=0
for b in "${binaries[@]}"; do
  log="$build/$(basename "$b").log"
  "$build/$b" >"$log" 2>&1 || status=1
  if grep -q "refuses io_uring" "$log"; then
    # No Reactor can be made here: say why once and skip the rest.
    echo "skipped: $(grep -o 'this kernel refuses io_uring ([^)]*)' "$log" | head -n1)"
    echo "uring: 0 passed, 0 failed"
    exit 0
  fi
  read -r p f < <(sed -n 's/^\[doctest\] test cases: *[0-9]* | *\([0-9]*\) passed | *\([0-9]*\) failed.*/\1 \2/p' "$log" | tail -n1)
  if [ -z "${p:-}" ]; then p=0; f=1; fi
  echo "$b: $p passed, $f failed (io_uring)"
  [ "$f" -gt 0 ] && grep -B2 -A12 "ERROR\|FATAL" "$log" | head -60
  passed=$((passed + p)); failed=$((failed + f))
done
echo "uring: $passed passed, $failed failed"
[ $failed -eq 0 ] && exit $status
exit 1
