"""Misbehaving servers: downgrades, injection, silence, drips, drops and refusals, over real TCP and TLS."""

# The fixtures live in tests/hostile.py (conftest belongs to the suite's lead): importing one makes
# pytest see it, and ruff then reads each `certs` parameter as a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import base64
import dataclasses
import time
from email.message import EmailMessage

import pytest

from smtp_magic import (
    ConnectionLostError,
    CredentialsRefusedError,
    DeliveryUnknownError,
    MessageRejectedError,
    RecipientsRejectedError,
    RejectedError,
    SecurityMismatchError,
    SenderRejectedError,
    Settings,
    SettingsError,
    SMTPMagicError,
    SMTPTimeoutError,
    STARTTLSInjectionError,
    TLSUnavailableError,
    send,
)
from smtp_magic.lab.server import LabServer
from smtp_magic.smtp.session import Session
from tests.hostile import (
    HOST,
    SECRET,
    SLACK,
    TIMEOUT,
    AioServer,
    Certs,
    Dialog,
    Peer,
    Recorder,
    certs,  # noqa: F401  (a fixture)
    drip_tls_handshake,
    full_text,
    hang_up,
    scripted,
    stall,
    timed,
)

BOUND = TIMEOUT + SLACK
"""Every timing test: the call must end within the configured timeout plus SLACK seconds."""

NOTHING_SENT = {"AUTH", "MAIL", "RCPT", "DATA"}


def message(size: int = 0, to: str = "bob@example.org") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "alice@example.org"
    msg["To"] = to
    msg["Subject"] = "hostile test"
    msg.set_content("Hello.\n" + "x" * size + "\n")
    return msg


def settings_for(port: int, certs: Certs, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "port": port,
        "security": "starttls",
        "cafile": certs.cafile,
        "timeout": TIMEOUT,
        "local_hostname": "client.test",
    }
    values.update(overrides)
    return Settings(HOST, **values)  # type: ignore[arg-type]


def names_server(error: BaseException, port: int) -> None:
    assert f"{HOST}:{port}" in str(error), str(error)


# -- STARTTLS: missing, refused, injected --------------------------------------------------------


def test_missing_starttls_is_refused_before_any_credentials(certs: Certs) -> None:
    """A server that offers AUTH in plaintext and no STARTTLS (a stripped EHLO) gets no password."""

    def authenticator(*args: object) -> object:  # never called: the point of the test
        raise AssertionError("the client authenticated without TLS")

    with AioServer(authenticator=authenticator, auth_require_tls=False) as server:
        settings = settings_for(server.port, certs, username="alice", password=SECRET)
        outcome = timed(lambda: send(message(), settings))
    error = outcome.error
    assert type(error) is TLSUnavailableError, repr(error)
    names_server(error, server.port)
    assert "did not offer STARTTLS" in str(error)
    assert "downgrade" in str(error)
    assert "security='plain'" in str(error)  # the explicit, informed way out
    assert server.verbs() == ["EHLO", "QUIT"]
    assert SECRET not in full_text(error)
    assert outcome.elapsed < TIMEOUT


def test_starttls_refused_with_454(certs: Certs) -> None:
    with AioServer(
        tls_context=certs.server_context(),
        starttls_reply="454 4.7.0 TLS not available due to temporary reason",
    ) as server:
        settings = settings_for(server.port, certs, username="alice", password=SECRET)
        error = timed(lambda: send(message(), settings)).error
    assert type(error) is TLSUnavailableError, repr(error)
    assert error.code == 454
    assert error.temporary
    names_server(error, server.port)
    assert "refused STARTTLS (454" in str(error)
    assert "security='tls'" in str(error)
    assert not NOTHING_SENT & set(server.verbs()), server.commands
    assert "STARTTLS" in server.verbs()


@pytest.mark.parametrize(
    "injected",
    [b"250-fake\r\n", b"250 AUTH PLAIN\r\n", b"MAIL FROM:<evil@example.org>\r\n"],
    ids=["fake-250", "fake-auth", "command"],
)
def test_bytes_after_starttls_220_are_refused(certs: Certs, injected: bytes) -> None:
    """RFC 3207 section 6, CVE-2011-0411: plaintext that follows the 220 is an injection."""

    def inject(peer: Peer, _line: str) -> bool:
        peer.send(b"220 Ready\r\n" + injected)  # one write: the client reads it all at once
        peer.start_tls(certs.server_context())
        peer.hold()
        return True

    with scripted(Dialog(replies={"STARTTLS": inject})) as server:
        settings = settings_for(server.port, certs, username="alice", password=SECRET)
        outcome = timed(lambda: send(message(), settings))
    error = outcome.error
    assert type(error) is STARTTLSInjectionError, repr(error)
    names_server(error, server.port)
    assert f"{len(injected)} byte(s) of plaintext" in str(error)
    assert "security='tls'" in str(error)
    assert server.verbs() == ["EHLO", "STARTTLS"]  # no AUTH, no MAIL, not even a second EHLO
    assert outcome.elapsed < BOUND


def test_the_same_dialog_without_injection_delivers(certs: Certs) -> None:
    """The control for the injection test: the scripted server is a working SMTP server."""
    with scripted(Dialog(tls=certs.server_context())) as server:
        settings = settings_for(server.port, certs, username="alice", password=SECRET)
        report = send(message(), settings)
    assert report.delivered and report.security == "starttls"
    verbs = server.verbs()
    assert verbs[:3] == ["EHLO", "STARTTLS", "EHLO"]
    assert verbs.index("AUTH") > verbs.index("STARTTLS")
    assert len(server.messages) == 1


# -- nothing waits forever -----------------------------------------------------------------------


def drip_greeting(peer: Peer) -> None:
    # One byte every 0.3 s: each recv succeeds long before a per-recv timeout of 1 s would fire,
    # so only a deadline for the whole phase ends this (smtplib alone would wait ~9 s).
    peer.drip(b"220 hostile.test ESMTP dripping very slowly\r\n", 0.3)
    peer.hold()


@pytest.mark.parametrize(
    ("name", "script", "security", "phase"),
    [
        ("never greets", Dialog(greeting=None), "starttls", "greeting"),
        ("never greets, implicit TLS", Dialog(greeting=None), "tls", "tls"),
        ("drips its greeting", drip_greeting, "starttls", "greeting"),
        ("drips its TLS handshake", "drip-tls", "tls", "tls"),
        ("stalls in EHLO", Dialog(replies={"EHLO": stall}), "starttls", "ehlo"),
        ("stalls at MAIL", "mail", "starttls", "mail"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_silent_server_times_out_within_bound(
    certs: Certs, name: str, script: object, security: str, phase: str
) -> None:
    if script == "drip-tls":
        script = drip_tls_handshake(certs.server_context())
    if script == "mail":
        script = Dialog(tls=certs.server_context(), replies={"MAIL": stall})
    with scripted(script) as server:  # type: ignore[arg-type]
        settings = settings_for(server.port, certs, security=security)
        outcome = timed(lambda: send(message(), settings))
    error = outcome.error
    assert type(error) is SMTPTimeoutError, f"{name}: {error!r}"
    assert isinstance(error, TimeoutError)
    assert error.temporary
    assert error.phase == phase
    names_server(error, server.port)
    assert "1 s" in str(error)
    assert "timeout=" in str(error)  # the fix: raise it (or check the port)
    assert outcome.elapsed < BOUND, f"{name} took {outcome.elapsed:.2f} s"
    assert "DATA" not in server.verbs()


def test_stall_after_message_data_is_delivery_unknown(certs: Certs) -> None:
    with scripted(Dialog(tls=certs.server_context(), after_data=stall)) as server:
        settings = settings_for(server.port, certs)
        outcome = timed(lambda: send(message(), settings))
    error = outcome.error
    assert type(error) is DeliveryUnknownError, repr(error)
    assert error.phase == "data-end"
    names_server(error, server.port)
    assert "timed out after the message was sent" in str(error)
    assert "may or may not have been delivered" in str(error)
    assert "Check before sending again" in str(error)
    assert len(server.messages) == 1  # the server really holds the whole message
    assert outcome.elapsed < BOUND


def test_drop_after_message_data_is_delivery_unknown(certs: Certs) -> None:
    """aiosmtpd aborts the connection in handle_DATA: the message arrived, the reply never does."""
    with AioServer(Recorder(drop_after_data=True), tls_context=certs.server_context()) as server:
        settings = settings_for(server.port, certs)
        outcome = timed(lambda: send(message(), settings))
    error = outcome.error
    assert type(error) is DeliveryUnknownError, repr(error)
    assert isinstance(error, ConnectionError)
    names_server(error, server.port)
    assert "dropped after the message was sent" in str(error)
    assert "may or may not have been delivered" in str(error)
    assert server.verbs()[-1] == "DATA"
    assert outcome.elapsed < TIMEOUT


def test_hang_up_after_message_data_is_delivery_unknown(certs: Certs) -> None:
    with scripted(Dialog(tls=certs.server_context(), after_data=hang_up)) as server:
        error = timed(lambda: send(message(), settings_for(server.port, certs))).error
    assert type(error) is DeliveryUnknownError, repr(error)
    assert "may or may not have been delivered" in str(error)
    assert len(server.messages) == 1


def test_hang_up_before_data_is_not_delivery_unknown(certs: Certs) -> None:
    """Losing the connection before the data: nothing was delivered, so it is safe to resend."""
    with scripted(Dialog(tls=certs.server_context(), replies={"RCPT": hang_up})) as server:
        error = timed(lambda: send(message(), settings_for(server.port, certs))).error
    assert type(error) is ConnectionLostError, repr(error)
    assert error.temporary
    assert "The message was not sent" in str(error)
    assert "DATA" not in server.verbs()


# -- security mismatches -------------------------------------------------------------------------


def test_plaintext_client_on_implicit_tls_port(certs: Certs) -> None:
    """security='starttls' on a 465-style port: silence, then a TLS check, then the right advice."""
    listener = Dialog(tls=certs.server_context(), implicit=True)
    with scripted(listener) as server:
        outcome = timed(lambda: send(message(), settings_for(server.port, certs)))
    error = outcome.error
    assert type(error) is SecurityMismatchError, repr(error)
    assert error.expected == "tls"
    names_server(error, server.port)
    # Found after greeting_wait (1 s here), not after the whole timeout: a second connection
    # completes a TLS handshake.
    assert "sent no SMTP greeting within 1 s, and a second connection completes a TLS" in str(error)
    assert "security='tls'" in str(error)
    assert outcome.elapsed < TIMEOUT + 3
    assert not NOTHING_SENT & set(server.verbs())


def test_implicit_tls_client_on_plaintext_port(certs: Certs) -> None:
    with scripted(Dialog(tls=certs.server_context())) as server:
        settings = settings_for(server.port, certs, security="tls", username="a", password=SECRET)
        outcome = timed(lambda: send(message(), settings))
    error = outcome.error
    assert type(error) is SecurityMismatchError, repr(error)
    assert error.expected == "starttls"
    names_server(error, server.port)
    assert "answered in plaintext SMTP" in str(error)
    assert "security='starttls'" in str(error)
    assert outcome.elapsed < TIMEOUT / 2  # fast: no waiting for anything
    # All the server read was a TLS ClientHello (record type 0x16): no command, no credentials.
    assert server.commands[0].startswith("\x16\x03"), server.commands
    assert not NOTHING_SENT & set(server.verbs())


# -- temporary and permanent refusals ------------------------------------------------------------


REFUSALS = [
    # (where, code, reply, error type)
    ("greeting", 421, "421 4.3.2 Too busy, come back later", RejectedError),
    ("greeting", 554, "554 5.7.1 No SMTP service here", RejectedError),
    ("MAIL", 421, "421 4.4.5 Shutting down", RejectedError),
    ("MAIL", 451, "451 4.3.0 Local error, try later", SenderRejectedError),
    ("MAIL", 452, "452 4.3.1 Insufficient system storage", SenderRejectedError),
    ("MAIL", 550, "550 5.7.1 Sender not allowed", SenderRejectedError),
    ("MAIL", 552, "552 5.3.4 Message size exceeds fixed limit", MessageRejectedError),
    ("MAIL", 554, "554 5.7.1 Sender blacklisted", SenderRejectedError),
    # 421 closes the session at any command (RFC 5321 section 3.8), RCPT included.
    ("RCPT", 421, "421 4.4.5 Shutting down", RejectedError),
    ("RCPT", 451, "451 4.7.1 Greylisted, try again later", RecipientsRejectedError),
    ("RCPT", 452, "452 4.5.3 Too many recipients", RecipientsRejectedError),
    ("RCPT", 550, "550 5.1.1 No such user", RecipientsRejectedError),
    ("RCPT", 554, "554 5.7.1 Relay access denied", RecipientsRejectedError),
    ("DATA", 451, "451 4.3.0 Try later", MessageRejectedError),
    ("DATA", 554, "554 5.5.1 No valid recipients", MessageRejectedError),
    ("end", 451, "451 4.3.0 Queue write failed", MessageRejectedError),
    ("end", 452, "452 4.3.1 Insufficient system storage", MessageRejectedError),
    ("end", 552, "552 5.3.4 Message too big for system", MessageRejectedError),
    ("end", 554, "554 5.7.1 Message rejected as spam", MessageRejectedError),
]


@pytest.mark.parametrize(("where", "code", "reply", "kind"), REFUSALS)
def test_refusal_is_temporary_or_permanent(
    certs: Certs, where: str, code: int, reply: str, kind: type[RejectedError]
) -> None:
    dialog = Dialog(tls=certs.server_context())
    dialog.answer(where, reply)
    with scripted(dialog) as server:
        outcome = timed(lambda: send(message(), settings_for(server.port, certs)))
    error = outcome.error
    assert type(error) is kind, repr(error)
    assert error.code == code
    assert error.temporary is (400 <= code < 500)
    names_server(error, server.port)
    assert str(code) in str(error)
    text = str(error).lower()
    if error.temporary:
        assert "try again later" in text, str(error)
    else:
        assert "try again later" not in text, str(error)
    if where != "end":
        # The Dialog offers PIPELINING, so DATA went out in MAIL's group (RFC 2920), and this
        # Dialog answers it with 354 anyway: the client then sends a lone end mark, no content.
        assert not any(server.messages)
    assert outcome.elapsed < TIMEOUT


# -- recipients ----------------------------------------------------------------------------------


def test_some_recipients_refused_are_reported(certs: Certs) -> None:
    refuse = {"ghost@example.org": "550 5.1.1 No such user here"}
    handler = Recorder(refuse=refuse)
    with AioServer(handler, tls_context=certs.server_context()) as server:
        to = "bob@example.org, ghost@example.org, carol@example.org"
        report = send(message(to=to), settings_for(server.port, certs))
    assert report.accepted == ("bob@example.org", "carol@example.org")
    assert dict(report.refused) == {"ghost@example.org": (550, "5.1.1 No such user here")}
    assert report.delivered
    assert "ghost@example.org (550 5.1.1 No such user here)" in str(report)
    assert "some recipients were refused" in str(report)
    [envelope] = handler.envelopes
    assert envelope.rcpt_tos == ["bob@example.org", "carol@example.org"]


def test_all_recipients_refused(certs: Certs) -> None:
    refuse = {
        "ghost@example.org": "550 5.1.1 No such user here",
        "full@example.org": "452 4.2.2 Mailbox full",
    }
    with AioServer(Recorder(refuse=refuse), tls_context=certs.server_context()) as server:
        to = "ghost@example.org, full@example.org"
        error = timed(lambda: send(message(to=to), settings_for(server.port, certs))).error
    assert type(error) is RecipientsRejectedError, repr(error)
    assert error.recipients == {
        "ghost@example.org": (550, "5.1.1 No such user here"),
        "full@example.org": (452, "4.2.2 Mailbox full"),
    }
    names_server(error, server.port)
    assert "ghost@example.org: 550" in str(error)
    assert "DATA" not in server.verbs()


# -- size ----------------------------------------------------------------------------------------


def test_message_larger_than_advertised_size_is_not_sent(certs: Certs) -> None:
    with AioServer(tls_context=certs.server_context(), data_size_limit=2000) as server:
        settings = settings_for(server.port, certs)
        small = send(message(size=100), settings)  # the control: a message that fits
        server.commands.clear()
        outcome = timed(lambda: send(message(size=5000), settings))
    assert small.delivered
    error = outcome.error
    assert type(error) is MessageRejectedError, repr(error)
    assert error.temporary is False
    names_server(error, server.port)
    assert "accepts at most 2,000 bytes" in str(error)
    assert "smaller attachments" in str(error)
    assert not {"MAIL", "DATA"} & set(server.verbs()), server.commands


# -- credentials never without TLS --------------------------------------------------------------


def test_plain_with_credentials_is_refused_before_connecting(certs: Certs) -> None:
    with AioServer() as server:
        with pytest.raises(SettingsError) as caught:
            Settings(HOST, port=server.port, security="plain", username="alice", password=SECRET)
        base = Settings(HOST, port=server.port, security="plain")
        with pytest.raises(SettingsError):
            dataclasses.replace(base, username="alice", password=SECRET)
        time.sleep(0.1)
        assert server.connections == 0
    assert "security='plain' never sends credentials" in str(caught.value)
    assert "security='starttls' or 'tls'" in str(caught.value)
    assert SECRET not in full_text(caught.value)


def test_login_over_plaintext_is_refused_even_if_validation_is_bypassed(certs: Certs) -> None:
    """Defence in depth: the session itself refuses to log in without TLS."""
    with scripted(Dialog(extensions=("AUTH PLAIN LOGIN",))) as server:
        settings = Settings(HOST, port=server.port, security="plain", timeout=TIMEOUT)
        object.__setattr__(settings, "username", "alice")  # what validation would refuse
        object.__setattr__(settings, "password", SECRET)
        session = Session(settings)
        error = timed(session.open).error
        session.close()
    assert type(error) is CredentialsRefusedError, repr(error)
    names_server(error, server.port)
    assert "Nothing was sent" in str(error)
    assert "AUTH" not in server.verbs()
    assert SECRET not in full_text(error)


# -- the password never shows ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def secret_lab() -> LabServer:
    with LabServer(ports={25: 0, 465: 0, 587: 0}, password=SECRET) as lab:
        yield lab  # type: ignore[misc]


def secret_forms(username: str) -> list[str]:
    """SECRET and the encodings in which AUTH PLAIN and LOGIN would carry it."""
    return [
        SECRET,
        base64.b64encode(SECRET.encode()).decode(),
        base64.b64encode(f"\0{username}\0{SECRET}".encode()).decode(),
    ]


def assert_hidden(text: str, username: str = "demo") -> None:
    for form in secret_forms(username):
        assert form not in text


@pytest.mark.parametrize("role", [587, 465])
def test_password_absent_from_successful_send(secret_lab: LabServer, role: int) -> None:
    settings = secret_lab.settings(role)
    assert settings.password == SECRET
    report = send(message(), settings)
    assert report.delivered and report.auth_mechanism
    assert_hidden(repr(settings))
    assert_hidden(str(settings))
    assert_hidden(str(report))
    assert_hidden(repr(report))
    assert_hidden(report._repr_html_())
    assert_hidden("\n".join(str(line) for line in report.transcript))
    assert any("AUTH" in line.text for line in report.transcript)  # the login is shown, redacted


def test_password_absent_from_failed_login(secret_lab: LabServer) -> None:
    # The lab's account has another password; our SECRET is refused (535).
    settings = dataclasses.replace(
        secret_lab.settings(587), username="mallory", password=SECRET + "-wrong"
    )
    error = timed(lambda: send(message(), settings)).error
    assert isinstance(error, SMTPMagicError), repr(error)
    assert "535" in str(error)
    text = full_text(error)
    for form in [*secret_forms("mallory"), SECRET + "-wrong"]:
        assert form not in text


def test_password_absent_after_failure_following_login(certs: Certs) -> None:
    """A session that logged in and then stalled: the error's transcript holds the AUTH, redacted."""
    dialog = Dialog(tls=certs.server_context(), after_data=stall)
    with scripted(dialog) as server:
        settings = settings_for(server.port, certs, username="alice", password=SECRET)
        error = timed(lambda: send(message(), settings)).error
    assert type(error) is DeliveryUnknownError, repr(error)
    assert any(line.text.startswith("AUTH") for line in error.transcript)
    for form in secret_forms("alice"):
        assert form not in full_text(error)
    # ... while the server, over TLS, did get the credentials it asked for.
    assert any(c.startswith("AUTH") for c in server.commands)
