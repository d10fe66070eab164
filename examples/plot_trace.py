#!/usr/bin/env python3
"""Draws bulk_write --trace files as one PNG: each mode's cumulative bytes handed to the
kernel against time (top), and when its busy slices ran (one shaded row per mode, below).

Usage: examples/plot_trace.py OUT.png NONE.trace IDLE.trace NORMAL.trace
Needs python3-matplotlib (Debian). Used by examples/demo.sh; docs/why-a-reactor.md shows
the result (docs/images/bulk_write_trace.png).
"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLOURS = {"none": "#9e9e9e", "idle": "#1b7837", "normal": "#c2185b"}


def read_trace(path):
    """(header, [(seconds, bytes)], [(start, end)]) from a bulk_write --trace file."""
    header, samples, busy = "", [], []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "#":
                header = line[2:].strip()
            elif parts[0] == "b":
                samples.append((float(parts[1]), int(parts[2])))
            elif parts[0] == "s":
                busy.append((float(parts[1]), float(parts[2])))
    return header, samples, busy


def field(header, name):
    for word in header.split():
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return "?"


def merged(spans, gap=0.0005):
    """Busy slices closer than `gap` seconds drawn as one span (fewer, clearer shapes)."""
    out = []
    for a, b in sorted(spans):
        if out and a - out[-1][1] <= gap:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def main(argv):
    if len(argv) != 5:
        sys.stderr.write(__doc__)
        return 2
    out, paths = argv[1], argv[2:]
    traces = [read_trace(p) for p in paths]
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(8, 4.6), dpi=100, sharex=True, gridspec_kw={"height_ratios": [3.2, 1]}
    )
    rows = []
    for row, (header, samples, busy) in enumerate(traces):
        mode = field(header, "busy")
        colour = COLOURS.get(mode, "black")
        t = [s[0] for s in samples]
        mib = [s[1] / 1048576 for s in samples]
        # none is drawn wide and dashed, below the others: idle's curve lies on top of it.
        style = {"lw": 4, "ls": "--", "zorder": 1} if mode == "none" else {"lw": 1.6, "zorder": 2}
        top.step(t, mib, where="post", color=colour, label=f"--busy {mode}: {t[-1]:.2f} s" if t else mode,
                 **style)
        y = len(traces) - 1 - row
        spans = merged(busy)
        bottom.broken_barh([(a, b - a) for a, b in spans], (y - 0.35, 0.7),
                           facecolors=colour, alpha=0.55, lw=0)
        rows.append(mode)
    header = traces[0][0]
    top.set_ylabel("MiB handed to the kernel")
    top.set_title(
        f"bulk_write {field(header, 'bytes')} bytes to a 4 MB/s reader; busy work: "
        f"{field(header, 'jobs')} jobs x {field(header, 'slice_ms')} ms slices",
        fontsize=10,
    )
    top.grid(alpha=0.3)
    top.legend(loc="lower right", fontsize=9)
    bottom.set_yticks(range(len(rows)))
    bottom.set_yticklabels(list(reversed(rows)))
    bottom.set_ylim(-0.6, len(rows) - 0.4)
    bottom.set_ylabel("busy")
    bottom.set_xlabel("seconds since the start of the run")
    bottom.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
