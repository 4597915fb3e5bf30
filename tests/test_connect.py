"""One deadline for the whole connect phase, over real TCP on loopback (issue 11, finding 11).

An "unresponsive address" here is a real listener on 127.0.0.x whose accept queue is full: the
kernel drops further SYNs, so a connection attempt hangs exactly as it does to a host that a
firewall silences.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import pytest

from smtp_magic import Settings, SMTPTimeoutError, send
from smtp_magic.lab.server import LabServer
from smtp_magic.smtp.connect import STAGGER, connect_any, open_connection, resolve
from tests.hostile import SLACK

TIMEOUT = 1.0


@contextlib.contextmanager
def unresponsive(host: str) -> Iterator[int]:
    """A port on ``host`` where connection attempts hang (a listener with a full queue)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        listener.bind((host, 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(3):  # fill the accept queue; later SYNs are dropped
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect((host, port))
            fillers.append(filler)
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.settimeout(0.3)
        try:
            probe.connect((host, port))
            pytest.skip("this kernel completes connections beyond a full accept queue")
        except TimeoutError:
            pass
        finally:
            probe.close()
        yield port
    finally:
        for each in fillers:
            each.close()
        listener.close()


def infos(*addresses: tuple[str, int]) -> list[tuple[object, ...]]:
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", address) for address in addresses]


@pytest.fixture
def four_silent() -> Iterator[list[tuple[str, int]]]:
    """Four unresponsive addresses, as a name with four dead A records would resolve to."""
    with contextlib.ExitStack() as stack:
        hosts = [f"127.0.0.{i}" for i in range(2, 6)]
        yield [(host, stack.enter_context(unresponsive(host))) for host in hosts]


def test_four_unresponsive_addresses_share_one_deadline(four_silent: list) -> None:
    """Before: socket.create_connection gave each address the whole timeout (4 x 1 s)."""
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        connect_any(infos(*four_silent), start + TIMEOUT)
    assert time.monotonic() - start < TIMEOUT + SLACK


def test_a_live_address_behind_silent_ones_is_reached_by_staggering(
    four_silent: list, lab: LabServer
) -> None:
    """Happy Eyeballs: attempts overlap, so the fifth address is reached long before 4 timeouts."""
    start = time.monotonic()
    live = ("127.0.0.1", lab.ports[25])
    with connect_any(infos(*four_silent, live), start + 10.0) as sock:
        assert sock.getpeername() == live
        assert sock.recv(3) == b"220"  # a blocking socket, talking to the lab
    assert time.monotonic() - start < 4 * STAGGER + SLACK


def test_refused_addresses_fall_through_at_once(lab: LabServer) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead = closed.getsockname()  # bound, not listening: refused
    try:
        start = time.monotonic()
        with connect_any(infos(dead, dead, ("127.0.0.1", lab.ports[25])), start + 5) as sock:
            assert sock.getpeername()[1] == lab.ports[25]
        with pytest.raises(ConnectionRefusedError):
            connect_any(infos(dead, dead), time.monotonic() + 5)
    finally:
        closed.close()


def test_a_send_to_an_unresponsive_host_ends_within_its_timeout() -> None:
    with unresponsive("127.0.0.2") as port:
        settings = Settings("127.0.0.2", port=port, security="tls", timeout=TIMEOUT)
        start = time.monotonic()
        with pytest.raises(SMTPTimeoutError, match=f"within {TIMEOUT:g} s"):
            send_nothing(settings)
        assert time.monotonic() - start < TIMEOUT + SLACK


def send_nothing(settings: Settings) -> None:
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.org", "b@example.org", "x"
    message.set_content("x")
    send(message, settings)


def test_names_resolve_within_the_deadline_and_numeric_hosts_need_no_lookup() -> None:
    assert resolve("127.0.0.1", 25, time.monotonic() + 1)[0][4] == ("127.0.0.1", 25)
    assert resolve("localhost", 25, time.monotonic() + 5)[0][4][1] == 25
    # Not found, or (no DNS server answering here) given up at the deadline: never longer.
    start = time.monotonic()
    with pytest.raises((socket.gaierror, TimeoutError)):
        open_connection("no-such-host.invalid", 25, start + TIMEOUT)
    assert time.monotonic() - start < TIMEOUT + SLACK
