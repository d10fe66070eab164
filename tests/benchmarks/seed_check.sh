#!/usr/bin/env bash
# The seed article's claim, checked on medians (not a timed unit test; not run by CI):
# bulk_write against a rate-limited discard_server, each --busy mode (none, idle, normal)
# ROUNDS times (default 5), interleaved round by round so that machine load hits every
# mode alike. Asserts, on the medians:
#   - normal takes at least 1.3x none's wall time (busy work at normal priority stalls
#     the reader);
#   - idle takes at most 1.05x none's wall time (idle work does not);
#   - idle's busy work gets at least 80% of the CPU share (busy CPU seconds per wall
#     second) that normal's gets (idle work is not starved either).
# The setup (rate, buffers, jobs, slice) is bulk_write's default, whose arithmetic is in
# examples/bulk_write.cpp's header. Prints every run, the medians, the ratios and the load
# average, and ends with "seed_check: N passed, N failed".
# Usage: tests/benchmarks/seed_check.sh [BUILD_DIR] [ROUNDS]
#   TRACE_DIR=DIR also writes DIR/{none,idle,normal}.trace from the last round.
set -u
build=${1:-build}
rounds=${2:-5}
ex="$build/examples"
for p in discard_server bulk_write; do
  [ -x "$ex/$p" ] || { echo "seed_check: $ex/$p is not built"; echo "seed_check: 0 passed, 1 failed"; exit 1; }
done
work=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# The reader: 4 MB/s, a 212992-byte receive buffer (see bulk_write.cpp's header).
mkfifo "$work/server"
"$ex/discard_server" --rate 4000000 --rcvbuf 212992 > "$work/server" &
server=$!
exec {fd}<"$work/server"
line=""
read -r -t 10 -u "$fd" line
port=${line##*:}
[ -n "$port" ] || { echo "seed_check: discard_server did not start"; echo "seed_check: 0 passed, 1 failed"; exit 1; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
failed_runs=0
for round in $(seq 1 "$rounds"); do
  for busy in none idle normal; do
    trace=()
    [ -n "${TRACE_DIR:-}" ] && [ "$round" -eq "$rounds" ] && trace=(--trace "$TRACE_DIR/$busy.trace")
    out=$(timeout 120 "$ex/bulk_write" 127.0.0.1 "$port" --busy "$busy" "${trace[@]}")
    status=$?
    echo "round $round: $out"
    if [ $status -ne 0 ]; then failed_runs=$((failed_runs + 1)); continue; fi
    echo "$busy $out" >> "$work/runs"
  done
done
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"

# Medians and the three checks, in one place.
python3 - "$work/runs" "$failed_runs" <<'PY'
import re, statistics, sys
runs = {"none": [], "idle": [], "normal": []}
for line in open(sys.argv[1]):
    mode = line.split()[0]
    wall = float(re.search(r"wall=([0-9.]+)s", line).group(1))
    share = float(re.search(r"busy_share=([0-9.]+)", line).group(1))
    runs[mode].append((wall, share))
failed_runs = int(sys.argv[2])
med = {m: (statistics.median(w for w, _ in r) if r else float("nan"),
           statistics.median(s for _, s in r) if r else float("nan")) for m, r in runs.items()}
for m in ("none", "idle", "normal"):
    walls = sorted(w for w, _ in runs[m])
    spread = f"{walls[0]:.2f}-{walls[-1]:.2f} s" if walls else "no runs"
    print(f"median {m:6s}: wall {med[m][0]:.2f} s (runs {spread}), busy CPU share {med[m][1]:.2f}")
normal_ratio = med["normal"][0] / med["none"][0]
idle_ratio = med["idle"][0] / med["none"][0]
share_ratio = med["idle"][1] / med["normal"][1] if med["normal"][1] > 0 else float("nan")
print(f"normal / none wall: {normal_ratio:.2f}x   idle / none wall: {idle_ratio:.2f}x   "
      f"idle / normal busy CPU share: {share_ratio:.2f}")
checks = [
    ("every run completed", failed_runs == 0),
    ("normal priority slows the transfer: normal >= 1.3x none", normal_ratio >= 1.3),
    ("idle priority does not: idle <= 1.05x none", idle_ratio <= 1.05),
    ("idle work is not starved: idle's busy CPU share >= 0.8x normal's", share_ratio >= 0.8),
]
passed = sum(ok for _, ok in checks)
for name, ok in checks:
    print(("PASS " if ok else "FAIL ") + name)
print(f"seed_check: {passed} passed, {len(checks) - passed} failed")
sys.exit(0 if passed == len(checks) else 1)
PY
