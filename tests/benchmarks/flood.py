#!/usr/bin/env python3
"""flood.py: a peer that sends 1 GiB to an echo server and never reads its answers.

    tests/benchmarks/flood.py [--bytes N] [--limit-mib M] -- SERVER_COMMAND...

Starts the server (it must print "listening on ADDR:PORT" first, as examples/echo_server
and the benchmark servers do), then one client writes N bytes (default 1 GiB) as fast as
the server takes them and never reads, while other clients connect one after another and
check an echo of 1 KiB each. The flood ends when all N bytes are sent or when the server
has taken nothing for 2 s (it stopped reading: back-pressure). Prints one line with the
server's peak RSS (sampled every 20 ms from /proc) and the other clients' round trips;
exits 1 if the peak passes M MiB (default 16) or an echo failed. Stops the server by PID.
"""
import argparse
import os
import select
import socket
import statistics
import subprocess
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def echo_once(port, payload):
    """Connects, sends payload, reads it back; returns the round trip in seconds."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError("closed before the echo")
            got += chunk
        if got != payload:
            raise RuntimeError("echo differs")
    return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bytes", type=int, default=1 << 30)
    ap.add_argument("--limit-mib", type=float, default=16)
    ap.add_argument("--label", default="")
    ap.add_argument("command", nargs="+")
    a = ap.parse_args()

    server = subprocess.Popen(a.command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = server.stdout.readline()
        port = int(line.strip().rsplit(":", 1)[1])
        base = rss_kib(server.pid)
        flood = socket.create_connection(("127.0.0.1", port))
        flood.setblocking(False)
        chunk = b"f" * (256 * 1024)
        sent, peak, last_progress = 0, base, time.monotonic()
        rtts, failures, next_echo, next_sample = [], 0, 0.0, 0.0
        payload = os.urandom(1024)
        start = time.monotonic()
        while sent < a.bytes:
            now = time.monotonic()
            if now >= next_sample:
                peak = max(peak, rss_kib(server.pid))
                next_sample = now + 0.02
            if now >= next_echo:  # another client, served meanwhile
                try:
                    rtts.append(echo_once(port, payload))
                except (OSError, RuntimeError):
                    failures += 1
                next_echo = time.monotonic() + 0.1
            if now - last_progress > 2.0 or now - start > 120:
                break
            _, w, _ = select.select([], [flood], [], 0.02)
            if not w:
                continue
            try:
                n = flood.send(chunk[: min(len(chunk), a.bytes - sent)])
            except BlockingIOError:
                continue
            sent += n
            last_progress = time.monotonic()
        peak = max(peak, rss_kib(server.pid))
        flood.close()
        ok = peak / 1024 < a.limit_mib and failures == 0 and rtts
        p50 = statistics.median(rtts) * 1e3 if rtts else float("nan")
        print(f"flood {a.label}: sent {sent / 2**20:.0f} MiB of {a.bytes / 2**20:.0f} MiB "
              f"({'all' if sent >= a.bytes else 'then the server stopped taking it'}); "
              f"server RSS {base / 1024:.1f} MiB before, peak {peak / 1024:.1f} MiB "
              f"(limit {a.limit_mib:g}); other clients: {len(rtts)} echoed, {failures} failed, "
              f"round trip p50 {p50:.2f} ms, max {max(rtts) * 1e3 if rtts else float('nan'):.2f} ms"
              f" -> {'ok' if ok else 'FAILED'}")
        return 0 if ok else 1
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
