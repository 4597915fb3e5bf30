"""send_many() against real servers: one connection, results per message, reconnection, resume."""

from __future__ import annotations

import asyncio
import collections
import signal
import socket
import threading
from collections.abc import Iterator, Sequence
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from smtp_magic import bulk, compose
from smtp_magic.bulk import BulkReport, send_many
from smtp_magic.errors import ComposeError, ConnectError, ConnectionLostError, RejectedError
from smtp_magic.lab.server import LabServer
from smtp_magic.settings import Settings

HOST = "127.0.0.1"


def _messages(n: int, to: str = "bob@example.org") -> list[EmailMessage]:
    return [compose(to=to, subject=f"bulk {i}", body=f"Message {i}.") for i in range(n)]


# -- a scriptable test server ---------------------------------------------------------------


class Script:
    """What the test server does, per message number (1-based, across all connections)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[bytes] = []  # the raw data of every message the server took
        self.connections = 0  # sessions that said EHLO
        self.drop_after: set[int] = set()  # close right after the 250 for these messages
        self.vanish_after: set[int] = set()  # close after the data, before any reply
        self.closing_421_after: set[int] = set()  # answer the next MAIL with 421 and close
        self.refuse_connections = False  # greet with 421 and close
        self.go_down_after: set[int] = set()  # refuse new connections after these messages
        self.drop_mail_from: int | None = None  # close on MAIL once this many were received
        self.refuse_rcpt: set[str] = set()
        self.interrupt_in: tuple[str, int] | None = None  # ("mail" | "data", message number)
        self.main_thread = threading.main_thread().ident
        self.pending_421 = False

    def message_ids(self) -> collections.Counter[str]:
        ids = collections.Counter[str]()
        for raw in self.received:
            for line in raw.split(b"\r\n"):
                if line.lower().startswith(b"message-id:"):
                    ids[line.split(b":", 1)[1].strip().decode()] += 1
        return ids

    def subjects(self) -> list[str]:
        found = []
        for raw in self.received:
            for line in raw.split(b"\r\n"):
                if line.startswith(b"Subject: "):
                    found.append(line[9:].decode())
        return found

    def interrupt_main(self) -> None:
        # A real SIGINT to the main thread interrupts its blocking recv(), as Ctrl-C would.
        assert self.main_thread is not None
        signal.pthread_kill(self.main_thread, signal.SIGINT)


class _ScriptedSMTP(SMTP):
    def __init__(self, handler: Any, script: Script, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.script = script

    async def _handle_client(self) -> None:
        with self.script.lock:
            refuse = self.script.refuse_connections
        if refuse:
            await self.push("421 4.3.2 test server is shutting down")
            assert self.transport is not None
            self.transport.close()
            return
        await super()._handle_client()

    async def smtp_EHLO(self, hostname: str) -> None:
        # Counted here, not on connect: Controller's own readiness check connects too.
        if self.session is not None and self.session.host_name is None:
            with self.script.lock:
                self.script.connections += 1
        await super().smtp_EHLO(hostname)

    async def smtp_MAIL(self, arg: str | None) -> None:
        script = self.script
        with script.lock:
            closing, script.pending_421 = script.pending_421, False
            number = len(script.received) + 1
        if closing:
            await self.push("421 4.4.2 test server closing an idle connection")
            assert self.transport is not None
            self.transport.close()
            return
        if script.drop_mail_from is not None and number > script.drop_mail_from:
            assert self.transport is not None
            self.transport.close()  # no reply at all
            return
        if script.interrupt_in == ("mail", number):
            script.interrupt_main()
            await asyncio.sleep(2)
        await super().smtp_MAIL(arg)

    async def smtp_DATA(self, arg: str) -> None:
        await super().smtp_DATA(arg)
        script = self.script
        number = len(script.received)
        if number in script.drop_after and self.transport is not None:
            script.drop_after.discard(number)
            self.transport.close()  # the 250 was written first: the drop is between messages
        if number in script.closing_421_after:
            script.closing_421_after.discard(number)
            script.pending_421 = True


class _Handler:
    def __init__(self, script: Script) -> None:
        self.script = script

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.script.refuse_rcpt:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        script = self.script
        with script.lock:
            script.received.append(bytes(envelope.original_content or b""))
            number = len(script.received)
            if number in script.go_down_after:
                script.refuse_connections = True
        if number in script.vanish_after:
            script.vanish_after.discard(number)
            assert server.transport is not None
            server.transport.abort()  # the data arrived; the client never hears back
            return "250 never seen"
        if script.interrupt_in == ("data", number):
            script.interrupt_main()
            await asyncio.sleep(2)
        return f"250 OK queued as {number}"


class _Controller(Controller):
    """A Controller on a socket bound to port 0 first (Controller(port=0) cannot report it)."""

    def __init__(self, script: Script, sock: socket.socket) -> None:
        super().__init__(
            _Handler(script),
            hostname=HOST,
            port=sock.getsockname()[1],
            server_hostname="test.localhost",  # skips a getfqdn() lookup
        )
        self.script = script
        self.sock = sock

    def factory(self) -> SMTP:
        return _ScriptedSMTP(self.handler, self.script, **self.SMTP_kwargs)

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self.sock)


@pytest.fixture
def server() -> Iterator[tuple[Script, Settings]]:
    """A plaintext test server (no TLS, no AUTH) scripted per test, and Settings to reach it."""
    script = Script()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind((HOST, 0))
    controller = _Controller(script, sock)
    controller.start()
    settings = Settings(
        HOST,
        port=sock.getsockname()[1],
        security="plain",
        sender="alice@example.org",
        local_hostname="client.localhost",
        timeout=5.0,
    )
    try:
        yield script, settings
    finally:
        controller.stop(no_assert=True)


# -- the lab: one connection, STARTTLS and AUTH -------------------------------------------


def test_many_messages_share_one_connection(clean_lab: LabServer) -> None:
    messages = _messages(12)
    report = send_many(messages, clean_lab.settings(587), progress=False)
    assert isinstance(report, BulkReport)
    assert clean_lab.connections[587] == 1
    received = clean_lab.wait_for_messages(12)
    assert [m.message["Subject"] for m in received] == [f"bulk {i}" for i in range(12)]
    assert all(m.tls and m.authenticated for m in received)
    assert report.complete and report.error is None and report.connections == 1
    assert [r.status for r in report] == ["accepted"] * 12
    assert [r.message_id for r in report] == [m["Message-ID"] for m in messages]
    # Plain strings: a header object would keep its parse tree (~10 KB) per result.
    assert {type(r.message_id) for r in report} == {str}
    assert report[3].reply.startswith("250")
    assert report.security == "starttls"
    assert bulk.last_report is report
    assert "done, 12 message(s): 12 accepted" in str(report)


class _Built(Sequence[object]):
    """A lazy sequence (as the mail merge's) that records which message is built when."""

    def __init__(self, messages: list[object]) -> None:
        self.messages = messages
        self.built: list[int] = []

    def __len__(self) -> int:
        return len(self.messages)

    def __getitem__(self, index: int) -> object:  # type: ignore[override]
        self.built.append(index)
        return self.messages[index]


def test_messages_built_ahead_are_built_once_and_invalid_ones_judged_once(
    clean_lab: LabServer,
) -> None:
    # While the server answers one message, the next is built (pipelining): each message is
    # still built exactly once, and one found invalid then is reported once and skipped.
    broken = EmailMessage()
    broken["Subject"] = "no recipient"
    broken.set_content("x")
    good = _messages(4)
    source = _Built([good[0], broken, good[1], "not a message", good[2], good[3]])
    report = send_many(source, clean_lab.settings(587), progress=False)
    assert source.built == list(range(6))
    statuses = ["accepted", "invalid", "accepted", "invalid", "accepted", "accepted"]
    assert [r.status for r in report] == statuses
    assert [m.message["Subject"] for m in clean_lab.wait_for_messages(4)] == [
        f"bulk {i}" for i in range(4)
    ]
    assert "4 accepted, 2 invalid" in str(report)


def test_a_generator_is_read_once_and_kept_for_resume(clean_lab: LabServer) -> None:
    report = send_many((m for m in _messages(3)), clean_lab.settings(465), progress=False)
    assert len(report.messages) == 3
    assert len(report.accepted) == 3
    assert clean_lab.connections[465] == 1


def test_first_connection_failure_raises_like_send(clean_lab: LabServer) -> None:
    settings = clean_lab.settings(587, password="wrong")
    with pytest.raises(Exception) as info:
        send_many(_messages(2), settings, progress=False)
    assert type(info.value).__name__ == "AuthenticationError"
    assert clean_lab.messages == []


def test_nothing_listening_raises_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]  # bound but not listening: connection refused
        settings = Settings(HOST, port=port, security="plain", sender="a@example.org")
        with pytest.raises(ConnectError):
            send_many(_messages(1), settings, progress=False)


# -- refusals do not stop the others ---------------------------------------------------------


def test_refused_recipient_does_not_stop_the_others(server: tuple[Script, Settings]) -> None:
    script, settings = server
    script.refuse_rcpt = {"nobody@example.org"}
    messages = _messages(4)
    messages[1] = compose(to="nobody@example.org", subject="bulk 1", body="refused")
    messages[2] = compose(to="bob@example.org, nobody@example.org", subject="bulk 2", body="half")
    report = send_many(messages, settings, progress=False)
    assert [r.status for r in report] == ["accepted", "refused", "accepted", "accepted"]
    assert report[1].refused == {"nobody@example.org": (550, "5.1.1 no such user here")}
    assert isinstance(report[1].error, RejectedError) and report[1].error.code == 550
    assert report[2].accepted == ("bob@example.org",)
    assert report[2].refused["nobody@example.org"][0] == 550
    assert script.connections == 1 and report.connections == 1
    assert script.subjects() == ["bulk 0", "bulk 2", "bulk 3"]
    assert report.complete
    assert "refused: #1 refused" in str(report)


def test_invalid_message_is_reported_and_skipped(server: tuple[Script, Settings]) -> None:
    script, settings = server
    broken = EmailMessage()
    broken["Subject"] = "no recipient"
    broken.set_content("x")
    messages: list[Any] = [*_messages(2), broken, "not a message"]
    report = send_many(messages, settings, progress=False)
    assert [r.status for r in report] == ["accepted", "accepted", "invalid", "invalid"]
    assert isinstance(report[2].error, ComposeError)
    assert report[2].message_id is not None  # given one so it can be traced
    assert broken["Message-ID"] is None  # ... on a copy: the caller's message is unchanged
    assert len(script.received) == 2
    assert report.complete


# -- lost connections ------------------------------------------------------------------------


def test_reconnects_once_when_the_server_closes_between_messages(
    server: tuple[Script, Settings],
) -> None:
    script, settings = server
    script.drop_after = {3}
    report = send_many(_messages(6), settings, progress=False, backoff=0.01)
    assert [r.status for r in report] == ["accepted"] * 6
    assert script.connections == 2 and report.connections == 2
    assert script.subjects() == [f"bulk {i}" for i in range(6)]
    assert set(script.message_ids().values()) == {1}
    assert "connections: 2" in str(report)


def test_reconnects_after_a_421_between_messages(server: tuple[Script, Settings]) -> None:
    script, settings = server
    script.closing_421_after = {2, 4}
    report = send_many(_messages(6), settings, progress=False, backoff=0.01)
    assert [r.status for r in report] == ["accepted"] * 6
    assert script.connections == 3
    assert script.subjects() == [f"bulk {i}" for i in range(6)]


def test_stops_when_reconnecting_fails_and_resume_sends_the_rest(
    server: tuple[Script, Settings],
) -> None:
    script, settings = server
    # The server drops the connection after message 3, then refuses new ones with 421.
    script.drop_after = {3}
    script.go_down_after = {3}
    messages = _messages(7)
    report = send_many(messages, settings, progress=False, backoff=0.01)
    assert [r.status for r in report] == ["accepted"] * 3 + ["unsent"] * 4
    assert [r.index for r in report.unsent] == [3, 4, 5, 6]
    assert not report.complete
    assert isinstance(report.error, RejectedError) and report.error.code == 421
    assert "unsent: #3-6: not sent; report.resume() sends exactly these" in str(report)
    assert "stopped by: RejectedError" in str(report)
    assert len(script.received) == 3

    script.refuse_connections = False
    resumed = report.resume(progress=False)
    assert [r.status for r in resumed] == ["accepted"] * 7
    assert resumed.complete and resumed.error is None
    assert report.unsent  # the first report is unchanged
    assert script.subjects() == [f"bulk {i}" for i in range(7)]
    assert set(script.message_ids().values()) == {1}
    assert len(script.message_ids()) == 7
    assert resumed.resume() is resumed  # nothing left: no connection
    assert report.resume(progress=False) is resumed  # the old report does not send twice
    assert len(script.received) == 7
    assert bulk.last_report is resumed


def test_lost_after_data_is_unknown_and_never_resent(server: tuple[Script, Settings]) -> None:
    script, settings = server
    script.vanish_after = {2}
    messages = _messages(5)
    report = send_many(messages, settings, progress=False, backoff=0.01)
    # Message 2 (index 1) reached the server, which closed before confirming it.
    assert [r.status for r in report] == ["accepted", "unknown", "accepted", "accepted", "accepted"]
    assert report.unknown[0].message_id == messages[1]["Message-ID"]
    assert report.connections == 2  # reconnected for the next message
    assert not report.complete and report.error is None
    text = str(report)
    assert "unknown: #1 " + messages[1]["Message-ID"] in text
    assert "resume() never sends them" in text
    assert report.resume(progress=False) is report  # nothing unsent: nothing to do
    assert script.message_ids() == collections.Counter(m["Message-ID"] for m in messages)


def test_unknown_then_stop_then_resume(server: tuple[Script, Settings]) -> None:
    script, settings = server
    script.vanish_after = {3}
    script.go_down_after = {3}
    messages = _messages(6)
    report = send_many(messages, settings, progress=False, backoff=0.01)
    assert [r.status for r in report] == ["accepted"] * 2 + ["unknown"] + ["unsent"] * 3
    assert report.error is not None
    script.refuse_connections = False
    resumed = report.resume(progress=False)
    assert [r.status for r in resumed] == ["accepted"] * 2 + ["unknown"] + ["accepted"] * 3
    assert script.message_ids() == collections.Counter(m["Message-ID"] for m in messages)
    assert "unknown: #2" in str(resumed)


# -- Ctrl-C ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("where", "status"), [("mail", "unsent"), ("data", "unknown")])
def test_interrupt_keeps_the_report(
    server: tuple[Script, Settings], where: str, status: str
) -> None:
    script, settings = server
    script.interrupt_in = (where, 3)  # during message 3 (index 2)
    messages = _messages(5)
    with pytest.raises(KeyboardInterrupt) as info:
        send_many(messages, settings, progress=False)
    report = info.value.report  # type: ignore[attr-defined]
    assert report is bulk.last_report
    assert [r.status for r in report] == ["accepted", "accepted", status, "unsent", "unsent"]
    assert report.interrupted
    assert any("last_report" in note for note in info.value.__notes__)
    script.interrupt_in = None
    resumed = report.resume(progress=False)
    expected = {"unsent": "accepted", "unknown": "unknown"}[status]
    assert [r.status for r in resumed][2:] == [expected, "accepted", "accepted"]
    assert set(script.message_ids().values()) == {1}
    assert len(script.message_ids()) == 5


# -- progress and display --------------------------------------------------------------------


def test_no_progress_prints_nothing(
    server: tuple[Script, Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    _script, settings = server
    send_many(_messages(3), settings, progress=False)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_progress_is_a_text_bar_on_stderr_outside_jupyter(
    server: tuple[Script, Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    _script, settings = server
    send_many(_messages(3), settings, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "send_many" in captured.err and "3/3" in captured.err and "msg" in captured.err


def test_html_report_names_every_message(server: tuple[Script, Settings]) -> None:
    script, settings = server
    script.refuse_rcpt = {"nobody@example.org"}
    messages = [*_messages(2), compose(to="nobody@example.org", subject="x <b>", body="y")]
    report = send_many(messages, settings, progress=False)
    page = report._repr_html_()
    assert page.count("<tr><td>") == 3
    assert "no such user" in page and "<b>" not in page
    assert repr(report).startswith("<BulkReport 127.0.0.1:")


def test_connection_lost_is_retried_up_to_the_limit(server: tuple[Script, Settings]) -> None:
    """A server that drops every connection right after its first message stops the run."""
    script, settings = server
    script.drop_after = {1}
    script.drop_mail_from = 2
    report = send_many(_messages(4), settings, progress=False, retries=2, backoff=0.01)
    # #0 accepted, drop; #1 finds the connection closed, reconnect, accepted; #2 lost at MAIL,
    # then twice more on new connections (3 and 4): its retries are used up, so the run stops.
    assert [r.status for r in report] == ["accepted", "accepted", "unsent", "unsent"]
    assert [r.attempts for r in report] == [1, 2, 3, 0]
    assert isinstance(report.error, ConnectionLostError)
    assert script.connections == 4 and report.connections == 4
    assert set(script.message_ids().values()) == {1}
