"""The wire against servers that never stop talking, or say what SMTP does not allow (issue 11)."""

# ruff: noqa: F811  (the certs fixture, imported from tests/hostile.py)

from __future__ import annotations

import dataclasses
import tracemalloc
from email.message import EmailMessage

import pytest

from smtp_magic import ProtocolError, Settings, SMTPMagicError, send
from tests.hostile import HOST, Certs, Dialog, Peer, certs, scripted  # noqa: F401


def message() -> EmailMessage:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "a@example.org", "b@example.org", "wire"
    m.set_content("Hello.")
    return m


def plain(port: int, **overrides: object) -> Settings:
    values: dict[str, object] = {"port": port, "security": "plain", "timeout": 3.0}
    values.update(overrides)
    return Settings(HOST, **values)  # type: ignore[arg-type]


def endless(line: bytes, megabytes: int = 400) -> object:
    """A Reply that sends ``line`` over and over (up to ``megabytes``), never a last line."""

    def reply(peer: Peer, _line: str) -> bool:
        block = line * (65536 // len(line))
        for _ in range(megabytes * 1024 * 1024 // len(block)):
            if peer.server.stopping.is_set():
                break
            peer.send(block)
        peer.hold()
        return True

    return reply


# -- finding 4: an endless multi-line reply ------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "line"),
    [("EHLO", b"250-x\r\n"), ("EHLO", b"250-" + b"y" * 400 + b"\r\n"), ("MAIL", b"250-ok\r\n")],
    ids=["ehlo-short-lines", "ehlo-long-lines", "mail"],
)
def test_an_endless_reply_is_cut_off_with_bounded_memory(where: str, line: bytes) -> None:
    with scripted(Dialog(replies={where: endless(line)})) as server:
        tracemalloc.start()
        try:
            with pytest.raises(ProtocolError) as caught:
                send(message(), plain(server.port))
            _size, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    error = caught.value
    assert f"{HOST}:{server.port}" in str(error)
    assert "not an SMTP reply" in str(error), str(error)
    # Before: lines were kept until the deadline (830 MiB in 10 s; 5 million transcript lines).
    assert peak < 16 * 1024 * 1024, peak
    assert len(error.transcript) < 200, len(error.transcript)
    if where == "EHLO":  # (transaction replies are read by stream.read_reply: 100 lines at most)
        assert any("not shown" in line.text for line in error.transcript)


def test_the_limits_leave_room_for_any_real_server() -> None:
    from smtp_magic.smtp.wire import MAX_REPLY_BYTES, MAX_REPLY_LINES, TRANSCRIPT_LINES_PER_REPLY

    # RFC 5321 section 4.5.3.1.5: a reply line is at most 512 octets; EHLO replies of real
    # servers have a few dozen lines. The limits are far above both.
    assert MAX_REPLY_LINES >= 200 and MAX_REPLY_BYTES >= MAX_REPLY_LINES * 512 // 2
    assert TRANSCRIPT_LINES_PER_REPLY >= 40


def test_a_long_but_finite_ehlo_still_works() -> None:
    keywords = ("PIPELINING", *(f"X-EXTENSION-{i} {'v' * 100}" for i in range(150)), "8BITMIME")
    with scripted(Dialog(extensions=keywords)) as server:
        report = send(message(), plain(server.port))
    assert report.delivered and "x-extension-149" in report.extensions
    shown = [line.text for line in report.transcript]
    assert any("more lines of this reply not shown" in text for text in shown)
    assert "250 8BITMIME" in shown  # the last line of the reply is always shown


@pytest.mark.parametrize("where", ["greeting", "EHLO"])
def test_an_over_long_line_is_not_given_a_code_the_server_never_sent(where: str) -> None:
    """Finding 2: smtplib's invented "500 Line too long." would read as the server's refusal."""
    huge = "250 " + "z" * 20_000 if where == "EHLO" else "220 " + "z" * 20_000
    dialog = Dialog()
    dialog.answer(where, huge)
    with scripted(dialog) as server, pytest.raises(ProtocolError) as caught:
        send(message(), plain(server.port))
    error = caught.value
    assert error.code is None and "Line too long" not in str(error), str(error)
    assert "not an SMTP reply" in str(error) and f"{HOST}:{server.port}" in str(error)


# -- finding 17: a malformed SIZE ----------------------------------------------------------------


@pytest.mark.parametrize("size", ["SIZE abc", "SIZE -5", "SIZE 1e9", "SIZE 12 34"])
def test_a_malformed_size_extension_is_ignored(size: str) -> None:
    with scripted(Dialog(extensions=("PIPELINING", size))) as server:
        report = send(message(), plain(server.port))
        assert report.delivered and len(server.messages) == 1
    assert any("ignoring" in line.text and "SIZE" in line.text for line in report.transcript)


def test_a_well_formed_size_still_refuses_a_large_message() -> None:
    with scripted(Dialog(extensions=("PIPELINING", "SIZE 100"))) as server:
        with pytest.raises(SMTPMagicError, match="at most 100 bytes"):
            send(message(), plain(server.port))
        assert server.messages == []


# -- finding 10: security="auto" remembers only a mode that completed TLS -------------------------


def test_auto_does_not_remember_a_plaintext_answer_that_never_reached_tls(certs: Certs) -> None:
    """One plaintext greeting on an implicit-TLS port must not pin 'starttls' for the process."""
    implicit = Dialog(tls=certs.server_context(), implicit=True)
    impostor = Dialog(extensions=("PIPELINING",))  # greets in plaintext, offers no STARTTLS
    connections: list[int] = []

    def script(peer: Peer) -> None:
        connections.append(1)
        (impostor if len(connections) == 1 else implicit)(peer)

    with scripted(script) as server:
        auto = Settings(
            HOST,
            port=server.port,
            security="auto",
            cafile=certs.cafile,
            timeout=3.0,
            greeting_wait=0.5,
        )
        with pytest.raises(SMTPMagicError):
            send(message(), auto)  # the impostor: no STARTTLS, and auto never goes plaintext
        report = send(message(), auto)  # waits for a greeting again, hears none, uses TLS
    assert report.security == "tls" and report.delivered
    again = send  # and now that TLS completed, the choice is remembered: no wait next time
    with scripted(implicit) as server2:
        second = dataclasses.replace(auto, port=server2.port)
        assert again(message(), second).security == "tls"
        third = again(message(), second)
    assert not any("chose" in line.text for line in third.transcript)
