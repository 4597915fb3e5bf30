"""Opening the TCP connection: one deadline for name resolution and every address tried.

``socket.create_connection(address, timeout)`` gives each address the whole timeout in turn, and
the name lookup before it has no timeout at all: a name with four unresponsive addresses took
four times ``timeout``. Here the lookup runs in a helper thread that is waited for only until
the deadline, and the addresses are tried Happy Eyeballs style (RFC 8305): the next attempt
starts when the previous one fails, or after a short stagger while it is still pending, and the
first connection made wins. Whatever happens, the whole phase ends by the deadline.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

from smtp_magic.smtp.markers import LookupTimeout

__all__ = ["STAGGER", "connect_any", "open_connection", "resolve"]

STAGGER = 0.25
"""Seconds before the next address is tried while one is still pending (RFC 8305 section 5)."""

AddrInfo = tuple[Any, ...]  # (family, type, proto, canonname, sockaddr), as getaddrinfo gives


def open_connection(host: str, port: int, deadline: float) -> socket.socket:
    """A connected, blocking TCP socket to ``host:port``, or an error, by ``deadline``.

    Args:
        host: A host name or an IP address.
        port: The TCP port.
        deadline: A ``time.monotonic()`` time by which the connection is made or given up.

    Raises:
        TimeoutError: the connection attempts did not finish by the deadline (LookupTimeout,
            a TimeoutError too: the name lookup did not).
        socket.gaierror: the name does not resolve.
        OSError: every address refused or failed (the first refusal, else the last error).
    """
    return connect_any(resolve(host, port, deadline), deadline)


def resolve(host: str, port: int, deadline: float) -> list[AddrInfo]:
    """The addresses of ``host``, families interleaved (RFC 8305 section 4), by ``deadline``."""
    try:  # an IP address needs no lookup, and no thread
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        infos = _lookup(host, port, deadline)
    return _interleave(infos)


def _lookup(host: str, port: int, deadline: float) -> list[AddrInfo]:
    # getaddrinfo has no timeout of its own: run it in a daemon thread and stop waiting at the
    # deadline (the thread ends by itself when the resolver gives up).
    found: list[Any] = []
    done = threading.Event()

    def run() -> None:
        try:
            found.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except Exception as exc:  # gaierror, or UnicodeError for a name IDNA cannot encode
            found.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name=f"smtp_magic lookup {host}", daemon=True).start()
    if not done.wait(max(deadline - time.monotonic(), 0.0)):
        raise LookupTimeout(host)
    if isinstance(found[0], Exception):
        raise found[0]
    return list(found[0])


def _interleave(infos: Sequence[AddrInfo]) -> list[AddrInfo]:
    """Alternate address families, keeping the resolver's order within each."""
    families: dict[int, list[AddrInfo]] = {}
    for info in infos:
        families.setdefault(info[0], []).append(info)
    queues = list(families.values())
    ordered: list[AddrInfo] = []
    while any(queues):
        for queue in queues:
            if queue:
                ordered.append(queue.pop(0))
    return ordered


def connect_any(infos: Sequence[AddrInfo], deadline: float) -> socket.socket:
    """Connect to the first of ``infos`` that answers, staggering attempts, all by ``deadline``.

    Raises:
        TimeoutError: no address answered by the deadline.
        OSError: every address failed (the first refusal, else the last error).
    """
    waiting = list(infos)
    pending: dict[socket.socket, AddrInfo] = {}
    failures: list[OSError] = []
    next_start = time.monotonic()
    try:
        while waiting or pending:
            now = time.monotonic()
            if now >= deadline:
                raise TimeoutError(f"no connection within the deadline ({len(infos)} address(es))")
            if waiting and (now >= next_start or not pending):
                info = waiting.pop(0)
                sock = _start(info, failures)
                if sock is not None:
                    pending[sock] = info
                next_start = now + STAGGER if sock is not None else now
                continue
            until = min(deadline, next_start) if waiting else deadline
            _, ready, _ = select.select([], list(pending), [], max(until - now, 0.0))
            for sock in ready:
                del pending[sock]
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code == 0:
                    sock.setblocking(True)
                    return sock
                failures.append(_error(code))
                sock.close()
                next_start = time.monotonic()  # a failure starts the next attempt at once
        refused = [f for f in failures if isinstance(f, ConnectionRefusedError)]
        raise (refused or failures or [OSError(errno.EADDRNOTAVAIL, "no address to connect to")])[0]
    finally:
        for sock in pending:
            sock.close()


def _start(info: AddrInfo, failures: list[OSError]) -> socket.socket | None:
    """Begin a non-blocking connect; None (and the error noted) if it failed at once."""
    family, kind, proto, _name, address = info
    sock = socket.socket(family, kind, proto)
    sock.setblocking(False)
    try:
        code = sock.connect_ex(address)
    except OSError as exc:
        sock.close()
        failures.append(exc)
        return None
    if code in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
        return sock
    sock.close()
    failures.append(_error(code))
    return None


def _error(code: int) -> OSError:
    """The OSError subclass for an errno (ConnectionRefusedError for ECONNREFUSED, ...)."""
    return OSError(code, os.strerror(code))
