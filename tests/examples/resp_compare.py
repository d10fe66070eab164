#!/usr/bin/env python3
"""Sends the same raw RESP requests to two servers (host:port each) and compares the
replies byte for byte: inline and multibulk requests, pipelines, requests cut at odd
places, and malformed input that ends in redis-server's "Protocol error" and a close.
Each case is sent on its own connection, whose write side is then shut; the reply is
everything read until the server closes. Prints one line per mismatch and the count."""
import socket
import sys

CASES = [
    b"*1\r\n$4\r\nPING\r\n",
    b"PING\r\n",
    b"PING\n",
    b"\r\nPING\r\n\r\n",
    b"*-1\r\nPING\r\n",
    b"*0\r\nPING\r\n",
    b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n",
    b"*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n",  # redis skips 2 bytes after a bulk unchecked
    b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhe\r\nl\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
    b"SET a \"b c\"\r\nGET a\r\nSET q 'x y'\r\nGET q\r\n",
    b"ECHO \"a\\x41\\n\\t\\q\"\r\nECHO \"\\xZZ\"\r\nECHO 'it\\'s'\r\n",
    b"ECHO  a   b\r\n",
    b"SET a \"b\r\n",
    b"SET a 'b'c\r\n",
    b"ECHO \"a\"b\r\n",
    b"*x\r\n",
    b"*+1\r\n$4\r\nPING\r\n",
    b"*01\r\n$4\r\nPING\r\n",
    b"*3000000000\r\n",
    b"*1\r\nPING\r\n",
    b"*1\r\n$-3\r\n",
    b"*1\r\n$abc\r\n",
    b"*1\r\n$+4\r\nPING\r\n",
    b"*1\r\n$ 4\r\nPING\r\n",
    b"*1\r\n$600000000\r\n",
    b"PING\r\n*1\r\n$4\r\nECHO\r\n",
    b"MGET a q nothing\r\nDEL a q nothing\r\nEXISTS a q\r\n",
    b"x" * 70000,  # an inline request without a newline, over 64 KiB
    b"*" + b"1" * 70000,  # a multibulk count line over 64 KiB
    b"*1\r\n$" + b"1" * 70000,  # a bulk count line over 64 KiB
    b"*2\r\n$4\r\nECHO\r\n$100000\r\n" + b"v" * 100000 + b"\r\n",
    b"".join(b"*3\r\n$3\r\nSET\r\n$2\r\nk%d\r\n$3\r\n%03d\r\n" % (i % 10, i) for i in range(500))
    + b"MGET k0 k1 k2 k3 k4 k5 k6 k7 k8 k9\r\n",
]


def exchange(port, request):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        reply = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return reply
            reply += chunk


def main():
    a, b = int(sys.argv[1]), int(sys.argv[2])
    bad = 0
    for i, case in enumerate(CASES):
        ra, rb = exchange(a, case), exchange(b, case)
        if ra != rb:
            bad += 1
            print(f"case {i} {case[:60]!r}: {ra[:200]!r} != {rb[:200]!r}")
    print(f"{len(CASES) - bad} of {len(CASES)} raw requests answered the same")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
