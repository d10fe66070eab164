#!/usr/bin/env python3
"""Calls whose result must be kept are [[nodiscard]] (issue 18): each case of
tests/nodiscard_cases.cpp drops one such result and must fail to compile with
-Werror=unused-result, naming the attribute; case 0 keeps them all and must compile.

Usage: nodiscard.py SOURCE_ROOT COMPILER...   prints "nodiscard: N passed, N failed"
"""
import pathlib
import re
import subprocess
import sys

root = pathlib.Path(sys.argv[1]).resolve()
compiler = sys.argv[2:]
source = root / "tests" / "nodiscard_cases.cpp"
cases = sorted({int(n) for n in re.findall(r"^#(?:el)?if CASE == (\d+)$", source.read_text(), re.M)})
passed = failed = 0
for case in cases:
    run = subprocess.run(compiler + ["-std=c++20", "-fsyntax-only", "-Werror=unused-result",
                                     "-DASIO_NO_DEPRECATED", f"-DCASE={case}", f"-I{root}",
                                     str(source)], capture_output=True, text=True)
    if case == 0:
        ok = run.returncode == 0
        what = "keeping every result compiles"
    else:
        ok = run.returncode != 0 and "nodiscard" in run.stderr
        what = "dropping the result is refused"
    print(f"{'PASS' if ok else 'FAIL'} case {case}: {what}")
    if not ok:
        print(run.stderr[-3000:])
    passed, failed = passed + ok, failed + (not ok)
print(f"nodiscard: {passed} passed, {failed} failed")
sys.exit(1 if failed or not cases else 0)
