"""PIPELINING (RFC 2920) and the reply stream: hostile servers, counting what each accepted per Message-ID.

Every server here is real TCP on 127.0.0.1 (tests/hostile.py's ScriptedServer), reads what the
client sends line by line (so pipelined commands wait in its buffer, as in any server), and
counts per Message-ID what it received and what it confirmed with 250. Each test proves that
nothing was lost (every message accepted once, or reported as not accepted) and nothing was
sent twice (no Message-ID confirmed twice).
"""

from __future__ import annotations

import collections
import contextlib
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from types import FrameType
from typing import Any

import pytest

from smtp_magic import bulk, compose, send
from smtp_magic.bulk import send_many
from smtp_magic.errors import DeliveryUnknownError, MessageRejectedError, SettingsError
from smtp_magic.pacing import PROVIDER_RATES, parse_rate
from smtp_magic.settings import Settings
from tests.hostile import (
    Certs,
    Dialog,
    Peer,
    ScriptedServer,
    certs,  # noqa: F401  (a fixture)
    scripted,
)

HOST = "127.0.0.1"
DROP = "<drop>"  # a hook's answer: close the connection without a word


def _messages(n: int, to: str = "bob@example.org") -> list[EmailMessage]:
    return [compose(to=to, subject=f"pipelined {i}", body=f"Message {i}.\n.\n") for i in range(n)]


class Counter:
    """A small SMTP server script that advertises PIPELINING (unless told not to).

    ``hooks[(where, n)]`` replaces the answer at "mail", "rcpt", "data" or "end" for message
    number n (1-based, over all connections: n-1 messages had their data read before).
    """

    def __init__(self, *, pipelining: bool = True, split: bool = False) -> None:
        self.pipelining = pipelining
        self.split = split  # send every reply in two packets, cut in the middle
        self.hooks: dict[tuple[str, int], str | Callable[[Peer], str]] = {}
        self.refuse: set[str] = set()
        self.busy: collections.Counter[str] = collections.Counter()  # 450 this many times
        self.deliveries: collections.Counter[tuple[str, str]] = collections.Counter()
        self.rcpts: list[str] = []  # accepted in the current transaction
        self.received: collections.Counter[str] = collections.Counter()
        self.accepted: collections.Counter[str] = collections.Counter()
        self.ahead: list[bool] = []  # per message: the next MAIL was already waiting
        self.number = 0  # messages whose data was read
        self.lock = threading.Lock()

    def reply(self, peer: Peer, text: str) -> None:
        data = (text + "\r\n").encode()
        if not self.split:
            peer.send(data)
            return
        middle = max(1, len(data) // 2)
        peer.send(data[:middle])
        time.sleep(0.005)  # a separate packet: the client must wait for the rest
        peer.send(data[middle:])

    def hook(self, peer: Peer, where: str, default: str) -> str:
        with self.lock:
            found = self.hooks.pop((where, self.number + 1), None)
        if found is None:
            return default
        return found(peer) if callable(found) else found

    def __call__(self, peer: Peer) -> None:
        self.reply(peer, "220 counter.test ESMTP")
        accepted_rcpts = 0
        while True:
            line = peer.command()
            if line is None:
                return
            verb = line.split(" ", 1)[0].upper()
            if verb == "EHLO":
                words = ["counter.test", "8BITMIME", "SIZE 1000000"]
                words += ["PIPELINING"] if self.pipelining else []
                for i, word in enumerate(words):
                    self.reply(peer, ("250 " if i == len(words) - 1 else "250-") + word)
                continue
            if verb == "QUIT":
                self.reply(peer, "221 bye")
                return
            if verb == "RSET":
                accepted_rcpts = 0
                answer = "250 2.0.0 reset"
            elif verb == "MAIL":
                accepted_rcpts, self.rcpts = 0, []
                answer = self.hook(peer, "mail", "250 2.1.0 sender ok")
            elif verb == "RCPT":
                address = line.partition("<")[2].partition(">")[0]
                refused = address in self.refuse
                default = "550 5.1.1 no such user" if refused else "250 ok"
                with self.lock:
                    if self.busy[address] > 0:
                        self.busy[address] -= 1
                        default = "450 4.2.1 mailbox busy, try again later"
                answer = self.hook(peer, "rcpt", default)
                if answer.startswith("250"):
                    accepted_rcpts += 1
                    self.rcpts.append(address)
            elif verb == "DATA":
                default = "354 go ahead" if accepted_rcpts else "554 5.5.1 no valid recipients"
                answer = self.hook(peer, "data", default)
                if answer.startswith("354"):
                    self.reply(peer, answer)
                    answer = self._data(peer)
            else:
                answer = "502 5.5.2 what?"
            if answer == DROP:
                with contextlib.suppress(OSError):
                    peer.sock.shutdown(socket.SHUT_RDWR)
                return
            self.reply(peer, answer)
            if answer.startswith("421"):
                return

    def _data(self, peer: Peer) -> str:
        data = peer.read_data()
        ids = [
            line.split(b":", 1)[1].strip().decode()
            for line in data.split(b"\r\n")
            if line.lower().startswith(b"message-id:")
        ]
        with self.lock:
            self.ahead.append(b"MAIL FROM" in peer.buffer)
            for message_id in ids:
                self.received[message_id] += 1
        answer = self.hook(peer, "end", f"250 2.0.0 queued as {self.number + 1}")
        with self.lock:
            self.number += 1
            if answer.startswith("250"):
                for message_id in ids:
                    self.accepted[message_id] += 1
                    for address in self.rcpts:
                        self.deliveries[(message_id, address)] += 1
        return answer


@pytest.fixture
def counter() -> Iterator[tuple[Counter, ScriptedServer, Settings]]:
    script = Counter()
    with contextlib.closing(ScriptedServer(script)) as server:
        settings = Settings(
            HOST,
            port=server.port,
            security="plain",
            sender="alice@example.org",
            local_hostname="client.localhost",
            timeout=5.0,
        )
        yield script, server, settings


Fixture = tuple[Counter, ScriptedServer, Settings]


def _ids(messages: list[EmailMessage]) -> list[str]:
    return [m["Message-ID"] for m in messages]


def _once(counts: collections.Counter[str], ids: list[str]) -> None:
    assert {i: counts[i] for i in ids} == dict.fromkeys(ids, 1)


# -- the good path ------------------------------------------------------------------------------


def test_pipelined_one_round_trip_a_message(counter: Fixture) -> None:
    script, server, settings = counter
    messages = _messages(8)
    report = send_many(messages, settings, progress=False)
    assert [r.status for r in report] == ["accepted"] * 8
    assert report.connections == 1 == server.connections
    _once(script.accepted, _ids(messages))
    # Each message's data reached the server together with the next message's MAIL (and the
    # server answered one command at a time): the groups went out as RFC 2920 allows.
    assert script.ahead == [True] * 7 + [False]
    assert [r.attempts for r in report] == [1] * 8


def test_without_pipelining_each_command_waits(counter: Fixture) -> None:
    script, _server, settings = counter
    script.pipelining = False
    messages = _messages(4)
    report = send_many(messages, settings, progress=False)
    assert [r.status for r in report] == ["accepted"] * 4
    assert script.ahead == [False] * 4
    _once(script.accepted, _ids(messages))


def test_replies_split_across_packets(counter: Fixture) -> None:
    script, _server, settings = counter
    script.split = True
    messages = _messages(5)
    report = send_many(messages, settings, progress=False)
    assert [r.status for r in report] == ["accepted"] * 5
    assert report[4].reply == "250 2.0.0 queued as 5"
    _once(script.accepted, _ids(messages))


# -- dropped connections and 421 in the middle of a group ---------------------------------------


def test_drop_after_the_data_before_the_reply(counter: Fixture) -> None:
    script, server, settings = counter
    script.hooks[("end", 3)] = DROP  # message 3 and message 4's MAIL arrived; no answer
    messages = _messages(6)
    report = send_many(messages, settings, progress=False, backoff=0.01)
    assert [r.status for r in report] == ["accepted"] * 2 + ["unknown"] + ["accepted"] * 3
    assert report[3].attempts == 2  # its MAIL went out with message 3's data, then again
    assert server.connections == 2
    assert script.received == collections.Counter(_ids(messages))  # each arrived once
    _once(script.accepted, _ids(messages)[:2] + _ids(messages)[3:])
    assert report.resume(progress=False) is report  # "unknown" is never sent again


def test_drop_in_the_middle_of_a_group(counter: Fixture) -> None:
    script, server, settings = counter
    script.hooks[("rcpt", 4)] = DROP  # message 3 confirmed, then the group of 4 is cut
    messages = _messages(6)
    report = send_many(messages, settings, progress=False, backoff=0.01)
    assert [r.status for r in report] == ["accepted"] * 6
    assert report[3].attempts == 2 and server.connections == 2
    _once(script.received, _ids(messages))
    _once(script.accepted, _ids(messages))


def test_421_in_the_middle_of_a_group(counter: Fixture) -> None:
    script, server, settings = counter
    script.hooks[("mail", 3)] = "421 4.7.0 Try again later, closing connection"
    messages = _messages(5)
    report = send_many(messages, settings, progress=False, backoff=0.01)
    assert [r.status for r in report] == ["accepted"] * 5
    assert [r.attempts for r in report] == [1, 1, 2, 1, 1]
    assert server.connections == 2
    _once(script.accepted, _ids(messages))
    _once(script.received, _ids(messages))


def test_421_to_the_data_is_retried(counter: Fixture) -> None:
    script, _server, settings = counter
    script.hooks[("end", 2)] = "421 4.7.0 Try again later, closing connection"
    messages = _messages(4)
    report = send_many(messages, settings, progress=False, backoff=0.01)
    assert [r.status for r in report] == ["accepted"] * 4
    assert report[1].attempts == 2
    _once(script.accepted, _ids(messages))  # received twice, confirmed once


def test_temporary_refusals_back_off_then_give_up(counter: Fixture) -> None:
    script, _server, settings = counter
    script.hooks[("mail", 2)] = "451 4.7.1 slow down"
    report = send_many(_messages(3), settings, progress=False, retries=0, backoff=0.01)
    assert [r.status for r in report] == ["accepted", "refused", "accepted"]
    assert report[1].error is not None and report[1].error.temporary
    assert report[1].attempts == 1
    script.hooks[("mail", 4)] = "451 4.7.1 slow down"  # once: the retry gets through
    again = send_many(_messages(2), settings, progress=False, backoff=0.01)
    assert [r.status for r in again] == ["accepted", "accepted"]
    assert [r.attempts for r in again] == [2, 1]


def test_recipients_refused_for_now_are_retried_alone(counter: Fixture) -> None:
    script, _server, settings = counter
    script.busy["carol@example.org"] = 2  # 450 twice, then accepted
    script.busy["dan@example.org"] = 9  # 450 every time
    messages = _messages(3)
    messages[1] = compose(to="bob@example.org, carol@example.org", subject="two", body="x")
    messages[2] = compose(to="bob@example.org, dan@example.org", subject="busy", body="x")
    report = send_many(messages, settings, progress=False, retries=2, backoff=0.01)
    assert [r.status for r in report] == ["accepted"] * 3
    assert report[1].accepted == ("bob@example.org", "carol@example.org")
    assert report[1].refused == {} and report[1].attempts == 3
    assert report[2].accepted == ("bob@example.org",)
    assert report[2].refused["dan@example.org"][0] == 450 and report[2].attempts == 3
    # Every recipient got each message at most once: a retry goes only to those refused.
    ids = _ids(messages)
    assert script.deliveries == collections.Counter(
        {
            (ids[0], "bob@example.org"): 1,
            (ids[1], "bob@example.org"): 1,
            (ids[1], "carol@example.org"): 1,
            (ids[2], "bob@example.org"): 1,
        }
    )


# -- refusals inside a group -------------------------------------------------------------------


def test_some_recipients_refused_then_the_data(counter: Fixture) -> None:
    script, _server, settings = counter
    script.refuse = {"nobody@example.org"}
    messages = _messages(4)
    messages[1] = compose(to="bob@example.org, nobody@example.org", subject="half", body="x")
    messages[2] = compose(to="bob@example.org, nobody@example.org", subject="no", body="x")
    script.hooks[("data", 3)] = "554 5.7.1 message refused by policy"
    report = send_many(messages, settings, progress=False)
    assert [r.status for r in report] == ["accepted", "accepted", "refused", "accepted"]
    assert report[1].accepted == ("bob@example.org",)
    assert report[1].refused == {"nobody@example.org": (550, "5.1.1 no such user")}
    assert isinstance(report[2].error, MessageRejectedError) and report[2].error.code == 554
    ids = _ids(messages)
    _once(script.accepted, [ids[0], ids[1], ids[3]])
    assert script.received[ids[2]] == 0


def test_every_recipient_refused_but_data_accepted(counter: Fixture) -> None:
    """RFC 2920 section 3.1: a 354 after every RCPT failed gets a lone end mark, no content."""
    script, _server, settings = counter
    script.refuse = {"nobody@example.org"}
    script.hooks[("data", 2)] = "354 go ahead anyway"
    messages = _messages(3)
    messages[1] = compose(to="nobody@example.org", subject="nobody", body="secret body")
    report = send_many(messages, settings, progress=False)
    assert [r.status for r in report] == ["accepted", "refused", "accepted"]
    assert report[1].refused["nobody@example.org"][0] == 550
    assert script.received[messages[1]["Message-ID"]] == 0  # no content was sent
    _once(script.accepted, [messages[0]["Message-ID"], messages[2]["Message-ID"]])


# -- a reply stream out of step (issue 11, findings 2 and 8) ------------------------------------


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_duplicate_reply_ends_the_session(counter: Fixture, pipelining: bool) -> None:
    script, server, settings = counter
    script.pipelining = pipelining
    script.hooks[("end", 2)] = "250 2.0.0 queued as 2\r\n250 2.0.0 queued again"
    messages = _messages(5)
    report = send_many(messages, settings, progress=False, backoff=0.01)
    # The stray 250 is never taken for message 3's answer: that session ends, and message 3
    # goes out again on a fresh connection.
    assert [r.status for r in report] == ["accepted"] * 5
    assert server.connections == 2
    _once(script.accepted, _ids(messages))
    assert report.complete and report.resume(progress=False) is report


@pytest.mark.parametrize(
    "answer",
    [
        "250 " + "x" * 9000,  # longer than smtplib's 8 KiB line limit
        "250-queued as 2\r\n550 5.0.0 but refused",  # one reply, two codes
        "hello, this is not SMTP",
    ],
    ids=["long-line", "mixed-codes", "garbage"],
)
def test_an_unclear_reply_after_the_data_is_unknown(counter: Fixture, answer: str) -> None:
    script, server, settings = counter
    script.hooks[("end", 2)] = answer
    messages = _messages(4)
    report = send_many(messages, settings, progress=False, backoff=0.01)
    assert [r.status for r in report] == ["accepted", "unknown", "accepted", "accepted"]
    assert type(report[1].error).__name__ == "DeliveryUnknownError"
    assert server.connections == 2  # the corrupt stream was not reused
    ids = _ids(messages)
    _once(script.received, ids)
    assert report.resume(progress=False) is report


def _plaintext_under_tls(peer: Peer, _line: str) -> bool:
    """After the data: bytes written to the TCP stream under TLS, as an injector would."""
    socket.socket.sendall(peer.sock, b"250 2.0.0 OK (not from the TLS session)\r\n")
    peer.hold()
    return True


def test_a_tls_error_after_the_data_is_delivery_unknown(certs: Certs) -> None:  # noqa: F811
    """Issue 11, finding 3: the phase decides first; a TLS error at data-end is not "not sent"."""
    dialog = Dialog(tls=certs.server_context(), after_data=_plaintext_under_tls)
    with scripted(dialog) as server:
        settings = Settings(
            HOST,
            port=server.port,
            security="starttls",
            cafile=certs.cafile,
            sender="alice@example.org",
            local_hostname="client.test",
            timeout=2.0,
        )
        with pytest.raises(DeliveryUnknownError) as info:
            send(compose(to="bob@example.org", subject="tls", body="x"), settings)
        assert "may or may not have been delivered" in str(info.value)
        report = send_many(_messages(2), settings, progress=False, backoff=0.01)
    # Message 2's envelope went out with message 1's data; it goes again on a new connection
    # (never handed over), where the same happens to it.
    assert [r.status for r in report] == ["unknown", "unknown"]
    assert isinstance(report[0].error, DeliveryUnknownError)
    assert len(server.messages) == 3  # one each: an unknown one is never sent again


# -- Ctrl-C between the reply and the record (issue 11, finding 9) ------------------------------


def test_interrupt_after_the_confirmation_never_resends(counter: Fixture) -> None:
    """A KeyboardInterrupt at every line run after the 250 was read, until it is recorded."""
    script, _server, settings = counter
    step = 0
    while True:
        step += 1
        assert step < 500
        messages = _messages(3)
        hit = _interrupt_after_reading(b"queued as", nth_line=step)
        with contextlib.suppress(KeyboardInterrupt), hit:
            send_many(messages, settings, progress=False)
        assert hit.fired
        report = bulk.last_report
        assert report is not None and report[0].message_id == messages[0]["Message-ID"]
        status = report[0].status
        assert status in ("accepted", "unknown"), f"interrupted at line {step}: {status}"
        report.resume(progress=False)
        assert script.accepted[messages[0]["Message-ID"]] == 1  # never sent twice
        if status == "accepted":
            break  # the result was recorded before the interrupt: the window is closed
    assert step > 3  # the window was probed at several points


class _interrupt_after_reading:
    """Raise KeyboardInterrupt at the n-th line executed in smtp_magic after a reply holding
    ``marker`` was read from the socket (sys.settrace: an interrupt at an exact point)."""

    def __init__(self, marker: bytes, nth_line: int) -> None:
        self.marker, self.nth, self.seen = marker, nth_line, 0
        self.armed, self.fired, self.after = True, False, False

    def _trace(self, frame: FrameType, event: str, arg: Any) -> Any:
        if not frame.f_code.co_filename.replace("\\", "/").count("/smtp_magic/"):
            return None
        return self._local

    def _local(self, frame: FrameType, event: str, arg: Any) -> Any:
        if self.fired:
            return None
        if event == "return" and frame.f_code.co_name == "_readline" and isinstance(arg, bytes):
            self.after = self.after or self.marker in arg
        elif event == "line" and self.after:
            self.seen += 1
            if self.seen == self.nth:
                self.fired = True
                raise KeyboardInterrupt
        return self._local

    def __enter__(self) -> _interrupt_after_reading:
        sys.settrace(self._trace)
        return self

    def __exit__(self, *exc_info: object) -> None:
        sys.settrace(None)


# -- pacing ------------------------------------------------------------------------------------


def test_rate_spaces_the_messages(counter: Fixture) -> None:
    script, _server, settings = counter
    starts: list[float] = []

    def mail(peer: Peer) -> str:
        starts.append(time.monotonic())
        return "250 2.1.0 ok"

    for n in range(1, 6):
        script.hooks[("mail", n)] = mail
    report = send_many(_messages(5), settings, progress=False, rate="1200/min")
    assert len(report.accepted) == 5
    # A lower bound only: pacing never starts a message early, so four intervals of 50 ms
    # separate the first MAIL from the last (less a margin for when the server reads them;
    # the rate's accuracy is measured in benchmarks/, not asserted in a test).
    assert starts[-1] - starts[0] >= 0.17


def test_parse_rate() -> None:
    assert parse_rate("30/min") == 2.0
    assert parse_rate("2/s") == 0.5
    assert parse_rate("500/hour") == pytest.approx(7.2)
    assert parse_rate(4) == 0.25
    assert parse_rate("unlimited") is None
    assert parse_rate(None, "smtp.example.org") is None
    assert parse_rate(None, "SMTP.Office365.com") == 2.0
    assert PROVIDER_RATES["smtp.office365.com"] == "30/min"
    for bad in ("fast", "30/fortnight", "0/min", -1):
        with pytest.raises(SettingsError, match="rate="):
            parse_rate(bad)


def test_a_bad_rate_is_refused_before_connecting(counter: Fixture) -> None:
    _script, server, settings = counter
    with pytest.raises(SettingsError):
        send_many(_messages(1), settings, rate="lots")
    assert server.connections == 0


def test_progress_shows_rate_and_time_left(
    counter: Fixture, capsys: pytest.CaptureFixture[str]
) -> None:
    _script, _server, settings = counter
    send_many(_messages(3), settings, progress=True)
    err = capsys.readouterr().err
    assert "3/3" in err and "msg/s" in err and "<00:00" in err


# -- building lazily (issue 11, finding 12) -----------------------------------------------------


class _Lazy(collections.abc.Sequence[EmailMessage]):
    """Builds message i when indexed, and remembers when."""

    def __init__(self, n: int, script: Counter) -> None:
        self.n, self.script, self.built = n, script, []  # type: list[tuple[int, int]]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> EmailMessage:  # type: ignore[override]
        if not 0 <= i < self.n:
            raise IndexError(i)
        self.built.append((i, self.script.number))
        return compose(to="bob@example.org", subject=f"lazy {i}", body=f"row {i}")


def test_a_lazy_sequence_is_built_one_message_at_a_time(counter: Fixture) -> None:
    script, _server, settings = counter
    lazy = _Lazy(6, script)
    report = send_many(lazy, settings, progress=False)
    assert [r.status for r in report] == ["accepted"] * 6
    assert [i for i, _ in lazy.built] == list(range(6))  # each built once, in order
    # Built just in time: message i was built once the server had most of those before it.
    assert all(done >= i - 2 for i, done in lazy.built)
    assert report.messages is lazy
    assert len(set(script.accepted.values())) == 1 and len(script.accepted) == 6
