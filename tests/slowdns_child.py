"""Child of tests/test_slow_dns.py, run inside ``unshare --mount --net`` (a private network and mounts).

It brings up the namespace's own loopback, points /etc/resolv.conf (a bind mount visible to
this process only) at a DNS server on 127.0.0.1:53 that answers every query ``DELAY`` seconds
late (A: 127.0.0.1), then sends through ``mail.slow-dns.test`` with ``timeout=TIMEOUT`` and
prints one JSON line: the error, how long it took, and the queries the server received.

Usage: python tests/slowdns_child.py DELAY TIMEOUT
"""

from __future__ import annotations

import fcntl
import json
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def loopback_up() -> None:
    """A new network namespace's loopback starts down."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP))


def use_loopback_resolver() -> None:
    work = Path(tempfile.mkdtemp(prefix="smtp-magic-slowdns-"))
    # glibc waits up to 10 s for an answer, once: longer than any timeout the test gives.
    (work / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:10 attempts:1\n")
    (work / "nsswitch.conf").write_text("hosts: files dns\n")
    for name in ("resolv.conf", "nsswitch.conf"):
        subprocess.run(["mount", "--bind", str(work / name), f"/etc/{name}"], check=True)


def slow_dns(delay: float, queries: list[list[str]]) -> None:
    from dnslib import QTYPE, RR, A, DNSRecord

    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 53))

    def answer(request: DNSRecord, peer: tuple[str, int]) -> None:
        time.sleep(delay)
        reply = request.reply()
        if request.q.qtype == QTYPE.A:
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A("127.0.0.1"), ttl=60))
        server.sendto(reply.pack(), peer)

    def serve() -> None:
        while True:
            data, peer = server.recvfrom(4096)
            request = DNSRecord.parse(data)
            queries.append([str(request.q.qname), QTYPE[request.q.qtype]])
            threading.Thread(target=answer, args=(request, peer), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()


def main() -> None:
    delay, timeout = float(sys.argv[1]), float(sys.argv[2])
    loopback_up()
    use_loopback_resolver()
    queries: list[list[str]] = []
    slow_dns(delay, queries)

    from smtp_magic import Settings, SMTPMagicError, compose, send

    settings = Settings(
        "mail.slow-dns.test",
        port=2525,
        security="starttls",
        sender="a@example.org",
        timeout=timeout,
    )
    outcome: dict[str, object] = {"type": None, "message": "sent"}
    start = time.monotonic()
    try:
        send(compose(to="b@example.org", subject="x", body="x"), settings)
    except SMTPMagicError as exc:
        outcome = {"type": type(exc).__name__, "message": str(exc), "phase": exc.phase}
    outcome["elapsed"] = time.monotonic() - start
    outcome["queries"] = queries
    print(json.dumps(outcome), flush=True)


if __name__ == "__main__":
    main()
