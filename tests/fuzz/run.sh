#!/bin/sh
# Builds the libFuzzer targets with clang (ASan + UBSan, coverage on the whole library) in
# their own build directory and runs each for a bounded number of inputs with a fixed
# seed, starting from its seed corpus in tests/fuzz/corpus/<target>/ (left unchanged:
# new inputs go to a scratch directory). Exits non-zero on the first crash, leak,
# property failure or over-large allocation.
#
#   tests/fuzz/run.sh                    # 20000 runs per target
#   FUZZ_RUNS=1000000 tests/fuzz/run.sh  # longer
#   FUZZ_BUILD_DIR=/tmp/bf tests/fuzz/run.sh
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
runs=${FUZZ_RUNS:-20000}
targets="endpoints_fuzz http_chunked_fuzz http_request_fuzz http_response_fuzz line_receiver_fuzz netstring_fuzz prefixed_string_fuzz proxy_protocol_fuzz resp_fuzz"

if [ ! -f "$build/build.ninja" ]; then
  CC=clang CXX=clang++ meson setup "$build" "$root" \
    -Dfuzz=true -Dtests=false -Dbuildtype=debugoptimized \
    -Db_sanitize=address,undefined -Db_lundef=false \
    -Dcpp_args=-fsanitize=fuzzer-no-link
fi
ninja -C "$build" -j2 $(for t in $targets; do printf 'tests/fuzz/%s ' "$t"; done)

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
for t in $targets; do
  echo "== $t: $runs runs"
  mkdir -p "$scratch/$t"
  "$build/tests/fuzz/$t" -runs="$runs" -seed=1 -max_len=4096 \
    -malloc_limit_mb=64 -rss_limit_mb=1024 -print_final_stats=1 \
    "$scratch/$t" "$root/tests/fuzz/corpus/$t"
done
echo "all fuzz targets passed $runs runs each"
