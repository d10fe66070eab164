#!/bin/sh
# Builds the libFuzzer targets with clang (ASan + UBSan, coverage on the whole library) in
# their own build directory and runs each for a bounded time with a fixed seed, starting
# from its kept corpus in tests/fuzz/corpus/<target>/. New inputs go to a scratch
# directory; the kept corpus changes only with FUZZ_MERGE=1. Every target runs even if
# one fails; a failing input is kept in <build>/artifacts/ and printed in base64. Prints
# the number of inputs each target ran, and ends with "fuzz: N passed, N failed".
# Two targets run at a time on a machine with two or more cores (FUZZ_JOBS=1: one).
#
#   tests/fuzz/run.sh                          # 45 s per target (CI)
#   FUZZ_SECONDS=600 tests/fuzz/run.sh         # longer
#   FUZZ_TARGETS="netstring_fuzz" tests/fuzz/run.sh
#   FUZZ_RUNS=20000 tests/fuzz/run.sh          # also stop after this many inputs
#   FUZZ_BUILD_DIR=/tmp/bf tests/fuzz/run.sh
#   FUZZ_MERGE=1 nice -n 19 tests/fuzz/run.sh  # grow the kept corpora: adds the new inputs
#                                              # that reach new coverage (-merge=1)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
seconds=${FUZZ_SECONDS:-45}
runs=${FUZZ_RUNS:--1}
# One target a line; keep in step with fuzz_targets in tests/fuzz/meson.build.
targets=${FUZZ_TARGETS:-"
byte_range_fuzz
endpoints_fuzz
http_chunked_fuzz
http_request_fuzz
http_response_fuzz
line_deadline_fuzz
line_receiver_fuzz
netstring_fuzz
prefixed_string_fuzz
proxy_protocol_fuzz
resp_fuzz
ws_deflate_fuzz
ws_frame_fuzz
"}

if [ ! -f "$build/build.ninja" ]; then
  CC=clang CXX=clang++ meson setup "$build" "$root" \
    -Dfuzz=true -Dtests=false -Dexamples=false -Dbuildtype=debugoptimized \
    -Db_sanitize=address,undefined -Db_lundef=false \
    -Dcpp_args=-fsanitize=fuzzer-no-link
fi
ninja -C "$build" -j2 $(for t in $targets; do printf 'tests/fuzz/%s ' "$t"; done)

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$build/artifacts"
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

# fuzz_one TARGET: runs one target for its time; leaves "ok RUNS" or "failed RUNS" in
# $scratch/TARGET.result (libFuzzer uses one core, so FUZZ_JOBS targets run at once).
fuzz_one() {
  t=$1
  mkdir -p "$scratch/$t"
  log="$scratch/$t.log"
  rm -f "$build/artifacts/$t-"*
  if "$build/tests/fuzz/$t" -max_total_time="$seconds" -runs="$runs" -seed=1 -max_len=4096 \
       -timeout=20 -malloc_limit_mb=64 -rss_limit_mb=1024 -print_final_stats=1 \
       -artifact_prefix="$build/artifacts/$t-" \
       "$scratch/$t" "$root/tests/fuzz/corpus/$t" >"$log" 2>&1; then
    ok=ok
  else
    ok=failed
  fi
  n=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -1)
  echo "$ok ${n:-0}" >"$scratch/$t.result"
}

jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
[ "$jobs" -gt 2 ] && jobs=2
running=0
for t in $targets; do
  echo "== $t: ${seconds} s"
  fuzz_one "$t" &
  running=$((running + 1))
  if [ $running -ge "$jobs" ]; then wait; running=0; fi
done
wait

passed=0
failed=0
summary=""
for t in $targets; do
  read -r ok n <"$scratch/$t.result" || { ok=failed; n=0; }
  if [ "$ok" = ok ]; then
    passed=$((passed + 1))
    echo "$t: $n runs, clean"
    summary="$summary $t=$n"
    if [ "${FUZZ_MERGE:-0}" = 1 ]; then
      "$build/tests/fuzz/$t" -merge=1 -max_len=4096 "$root/tests/fuzz/corpus/$t" "$scratch/$t" \
        >"$scratch/$t.merge.log" 2>&1 || { tail -20 "$scratch/$t.merge.log"; exit 1; }
      grep '^MERGE-OUTER: [0-9]* new files' "$scratch/$t.merge.log" || true
    fi
  else
    failed=$((failed + 1))
    tail -60 "$scratch/$t.log"
    echo "$t: FAILED after $n runs"
    for a in "$build/artifacts/$t-"*; do
      [ -f "$a" ] || continue
      echo "input $a (base64):"
      base64 -w0 "$a"
      echo
    done
    summary="$summary $t=FAILED"
  fi
done
echo "runs in ${seconds} s per target:$summary"
echo "fuzz: $passed passed, $failed failed"
[ $failed = 0 ]
