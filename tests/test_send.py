"""send() against the lab: every security mode against every role, and what the report says."""

from __future__ import annotations

import dataclasses
import time
from email.message import EmailMessage

import pytest

from smtp_magic import (
    SecurityMismatchError,
    SendReport,
    Settings,
    SettingsError,
    compose,
    send,
)
from smtp_magic.lab.server import LabServer
from smtp_magic.report import format_transcript
from smtp_magic.send import prepare
from smtp_magic.smtp.session import STANDARD_PORTS, open_session


def _message(subject: str = "Lab test", **kwargs: object):  # type: ignore[no-untyped-def]
    return compose(to="bob@example.org", subject=subject, body="Hello **lab**.", **kwargs)


# (role, security) -> the mode that is used, or the error with the mode the port expects.
OUTCOMES = {
    (25, "auto"): "starttls",
    (25, "starttls"): "starttls",
    (25, "plain"): "plain",
    (25, "tls"): ("mismatch", "starttls"),
    (465, "auto"): "tls",
    (465, "tls"): "tls",
    (465, "starttls"): ("mismatch", "tls"),
    (587, "auto"): "starttls",
    (587, "starttls"): "starttls",
    (587, "tls"): ("mismatch", "starttls"),
    (587, "plain"): ("mismatch", "starttls"),
}


@pytest.mark.parametrize(("role", "security"), sorted(OUTCOMES))
def test_every_mode_against_every_role(clean_lab: LabServer, role: int, security: str) -> None:
    expected = OUTCOMES[(role, security)]
    extra = {"username": None, "password": None} if security == "plain" else {}
    settings = clean_lab.settings(role, security=security, timeout=1.5, **extra)
    subject = f"role {role} with {security}"
    if isinstance(expected, tuple):
        with pytest.raises(SecurityMismatchError) as info:
            send(_message(subject), settings)
        error = info.value
        assert error.expected == expected[1]
        assert settings.address in str(error)
        assert f"security='{expected[1]}'" in str(error)
        assert clean_lab.messages == []
        return
    report = send(_message(subject), settings)
    assert isinstance(report, SendReport)
    assert report.security == expected
    assert report.accepted == ("bob@example.org",)
    received = clean_lab.wait_for_messages(1)[0]
    assert received.message["Subject"] == subject
    assert received.tls is (expected != "plain")
    assert received.authenticated is (role != 25)
    assert received.mail_from == settings.sender
    if expected == "plain":
        assert report.tls is None
    else:
        assert report.tls is not None
        assert report.tls.version in ("TLSv1.2", "TLSv1.3")
        assert report.tls.certificate is not None
        assert report.tls.certificate.verified
        assert "localhost" in report.tls.certificate.names


def test_plain_with_credentials_is_refused_before_connecting(clean_lab: LabServer) -> None:
    with pytest.raises(SettingsError, match="never sends credentials"):
        dataclasses.replace(clean_lab.settings(465), security="plain")
    assert sum(clean_lab.connections.values()) == 0


def test_report_describes_the_session(clean_lab: LabServer) -> None:
    message = _message("report")
    report = send(message, clean_lab.settings(587, security="auto"))
    assert report.requested_security == "auto"
    assert report.auth_mechanism in ("PLAIN", "LOGIN", "CRAM-MD5")
    assert report.message_id == message["Message-ID"]
    assert report.greeting.startswith("lab.localhost")
    assert "auth" in report.extensions  # the EHLO after TLS, not the one before
    assert "starttls" not in report.extensions
    assert set(report.timings) == {"connect", "tls", "auth", "send"}
    assert report.reply.startswith("250")
    text = format_transcript(report.transcript)
    # Plaintext before STARTTLS, encrypted after: the transcript shows which is which.
    assert "-> STARTTLS" in text
    assert "~> AUTH PLAIN <redacted>" in text or "~> AUTH LOGIN" in text
    assert "~> DATA" in text
    assert "Security" in str(report) and "starttls" in str(report)
    assert "<table>" in report._repr_html_()


def test_auto_waits_once_on_a_non_standard_port(clean_lab: LabServer) -> None:
    port = clean_lab.ports[465]
    assert port not in STANDARD_PORTS
    settings = clean_lab.settings(465, security="auto", greeting_wait=0.5)
    first = send(_message("first"), settings)
    second = send(_message("second"), settings)
    assert first.security == second.security == "tls"
    assert first.timings["connect"] >= 0.5
    assert second.timings["connect"] < 0.5
    assert "chose 'tls'" in format_transcript(first.transcript)
    assert "chose" not in format_transcript(second.transcript)


def test_bcc_receives_but_is_not_shown(clean_lab: LabServer) -> None:
    message = compose(
        to="a@example.org", cc="b@example.org", bcc="secret@example.org", subject="bcc", body="x"
    )
    report = send(message, clean_lab.settings(587))
    assert set(report.accepted) == {"a@example.org", "b@example.org", "secret@example.org"}
    received = clean_lab.wait_for_messages(1)[0]
    assert "secret@example.org" in received.rcpt_tos
    assert received.message["Bcc"] is None
    assert b"secret@example.org" not in received.raw


def test_non_ascii_addresses_use_smtputf8(clean_lab: LabServer) -> None:
    message = compose(to="Jürgen <jürgen@bücher.example>", subject="Grüße", body="ä")
    outgoing = prepare(message, clean_lab.settings(587))
    assert outgoing.smtputf8
    send(message, clean_lab.settings(587))
    received = clean_lab.wait_for_messages(1)[0]
    assert received.message["Subject"] == "Grüße"
    # compose() writes the domain in its ASCII (IDNA) form; the local part needs SMTPUTF8.
    assert received.rcpt_tos == ("jürgen@xn--bcher-kva.example",)


def test_message_with_leading_dots_is_transparent(clean_lab: LabServer) -> None:
    body = ".\n..\n.hidden line\nend"
    send(
        compose(to="bob@example.org", subject="dots", body=body, format="text"),
        clean_lab.settings(25),
    )
    received = clean_lab.wait_for_messages(1)[0]
    assert received.message.get_content().replace("\r\n", "\n").rstrip("\n") == body


def test_from_defaults_to_settings_sender(clean_lab: LabServer) -> None:
    settings = clean_lab.settings(587)
    send(_message("from"), settings)
    received = clean_lab.wait_for_messages(1)[0]
    assert received.message["From"] == settings.sender


def test_session_sends_several_messages_on_one_connection(clean_lab: LabServer) -> None:
    settings = clean_lab.settings(587)
    before = clean_lab.connections[587]
    with open_session(settings) as session:
        for n in range(3):
            outgoing = prepare(_message(f"n{n}"), settings)
            session.deliver(outgoing.sender, outgoing.recipients, outgoing.data)
    assert clean_lab.connections[587] == before + 1
    assert [m.message["Subject"] for m in clean_lab.wait_for_messages(3)] == ["n0", "n1", "n2"]


def test_large_message_streams(clean_lab: LabServer) -> None:
    payload = bytes(range(256)) * 8192  # 2 MiB of binary data, base64 on the wire
    message = compose(
        to="bob@example.org", subject="big", body="x", attachments=[("blob.bin", payload)]
    )
    start = time.monotonic()
    send(message, clean_lab.settings(587))
    assert time.monotonic() - start < 30
    received = clean_lab.wait_for_messages(1)[0]
    [attachment] = list(received.message.iter_attachments())
    assert attachment.get_content() == payload


def test_settings_without_host_from_env_go_to_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env().host == "localhost"


def test_username_without_password_fails_before_connecting(clean_lab: LabServer) -> None:
    settings = clean_lab.settings(587, password=None)
    with pytest.raises(SettingsError, match="has no password") as info:
        send(_message("no password"), settings)
    assert "SMTP_PASSWORD" in str(info.value)
    assert sum(clean_lab.connections.values()) == 0


# -- issue 11: user-built messages that cannot be written as bytes ------------------------------


def test_user_built_message_with_non_ascii_text_and_no_charset(clean_lab: LabServer) -> None:
    """``set_payload("héllo")`` has no charset: the stdlib cannot flatten it (a raw UnicodeEncodeError)."""
    from email.message import EmailMessage

    from smtp_magic import ComposeError

    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.org", "b@example.org", "x"
    message.set_payload("h\u00e9llo")
    with pytest.raises(ComposeError, match="set_content"):
        send(message, clean_lab.settings(25))
    assert sum(clean_lab.connections.values()) == 0 and clean_lab.messages == []


# -- issue 11 finding 1: header injection through encoded-words ----------------------------------

INJECTED_NAMES = [
    # quoted-printable CRLF in an encoded-word: the email package decodes it and writes it raw
    "=?utf-8?q?report.pdf=0D=0AContent-Type:_text=2Fhtml=0D=0AX-Injected:_yes?=",
    "=?utf-8?b?cmVwb3J0LnBkZg0KWC1JbmplY3RlZDogeWVz?=",  # base64 of "report.pdf\r\nX-Injected: yes"
    "=?iso-8859-1?q?report.pdf=0AX-Injected:_yes?=",  # a bare LF
    "=?utf-8?q?report.pdf=E2=80=A8X-Injected:_yes?=",  # U+2028, a line break to str.splitlines
]


@pytest.mark.parametrize("name", INJECTED_NAMES)
def test_an_attachment_name_that_decodes_to_a_line_break_is_refused(
    clean_lab: LabServer, name: str
) -> None:
    """A file someone else named (a form upload, a shared folder) adds no header line."""
    from smtp_magic import ComposeError

    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.org", "b@example.org", "x"
    message.set_content("See the attachment.")
    message.add_attachment(b"%PDF-1.4", "application", "pdf", filename=name)
    with pytest.raises(ComposeError, match="filename parameter of Content-Disposition"):
        send(message, clean_lab.settings(25))
    assert sum(clean_lab.connections.values()) == 0 and clean_lab.messages == []


@pytest.mark.parametrize("header", ["Subject", "X-Report", "Comments"])
def test_a_header_that_decodes_to_a_line_break_is_refused(
    clean_lab: LabServer, header: str
) -> None:
    from smtp_magic import ComposeError

    message = EmailMessage()
    message["From"], message["To"] = "a@example.org", "b@example.org"
    message[header] = "=?utf-8?q?weekly=0D=0ABcc:_spy@example.org?="
    message.set_content("Hello.")
    with pytest.raises(ComposeError, match=f"{header}, decoded"):
        send(message, clean_lab.settings(25))
    assert clean_lab.messages == []


def test_an_encoded_word_without_a_line_break_still_goes_out(clean_lab: LabServer) -> None:
    message = EmailMessage()
    message["From"], message["To"] = "a@example.org", "b@example.org"
    message["Subject"] = "=?utf-8?q?r=C3=A9sum=C3=A9?="
    message.set_content("Hello.")
    message.add_attachment(b"x", "text", "plain", filename="=?utf-8?q?r=C3=A9sum=C3=A9.txt?=")
    send(message, clean_lab.settings(25))
    received = clean_lab.wait_for_messages(1)[0].message
    assert received["Subject"] == "résumé"
    assert [p.get_filename() for p in received.iter_attachments()] == ["résumé.txt"]


def test_a_folded_compat32_header_is_not_a_line_break(clean_lab: LabServer) -> None:
    """A message parsed with the compat32 policy keeps folded headers as they were: allowed."""
    import email

    raw = (
        b"From: a@example.org\r\nTo: b@example.org\r\nSubject: a long subject\r\n folded once\r\n"
        b"\r\nHello.\r\n"
    )
    message = email.message_from_bytes(raw, _class=EmailMessage)
    send(message, clean_lab.settings(25))
    received = clean_lab.wait_for_messages(1)[0].message
    assert " ".join(received["Subject"].split()) == "a long subject folded once"
