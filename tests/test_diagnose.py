"""Each diagnosis, reached over real TCP: the error type, host:port, and the fix the message names."""

# The fixtures live in tests/hostile.py (conftest belongs to the suite's lead): importing one makes
# pytest see it, and ruff then reads each `certs` parameter as a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import os
import socket
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest

from smtp_magic import (
    AuthenticationError,
    ConnectError,
    ProtocolError,
    SecurityMismatchError,
    SenderRejectedError,
    Settings,
    SMTPMagicError,
    TLSUnavailableError,
    errors,
    send,
)
from smtp_magic.lab.server import LabServer
from tests.hostile import (
    HOST,
    SECRET,
    AioServer,
    Certs,
    Dialog,
    certs,  # noqa: F401  (a fixture)
    full_text,
    scripted,
    timed,
)

TIMEOUT = 1.0


def message(to: str = "bob@example.org") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "alice@example.org"
    msg["To"] = to
    msg["Subject"] = "diagnosis"
    msg.set_content("Hello.\n")
    return msg


def fail(settings: Settings, msg: EmailMessage | None = None) -> SMTPMagicError:
    outcome = timed(lambda: send(msg or message(), settings))
    assert isinstance(outcome.error, SMTPMagicError), repr(outcome.error)
    assert outcome.elapsed < settings.timeout + 1.5
    assert f"{settings.host}:{settings.port}" in str(outcome.error) or "[" in str(outcome.error)
    return outcome.error


def free_port() -> int:
    """A port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


# -- connecting ----------------------------------------------------------------------------------


def test_connection_refused() -> None:
    settings = Settings(HOST, port=free_port(), security="starttls", timeout=TIMEOUT)
    error = fail(settings)
    assert type(error) is ConnectError
    assert isinstance(error, ConnectionError)
    assert "nothing is listening on 127.0.0.1:" in str(error)
    assert "Check the host and port" in str(error)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((HOST, port)) == 0


def test_refused_on_a_default_port_says_it_was_a_default() -> None:
    # A default port only counts while it is the mode's default, so find a mode whose default
    # port has nothing listening here (a local MTA may hold 25 or 587).
    free = [
        (security, port)
        for security, port in (("tls", 465), ("starttls", 587), ("plain", 25))
        if not _listening(port)
    ]
    if not free:
        pytest.fail("ports 465, 587 and 25 of 127.0.0.1 are all in use: free one to run this")
    security, port = free[0]
    settings = Settings(HOST, security=security, timeout=TIMEOUT)  # type: ignore[arg-type]
    assert settings.defaulted == {"port"}
    error = fail(settings)
    assert f"port {port} is the default for security='{security}' (no port was set)" in str(error)
    assert "Set port= (or SMTP_PORT)" in str(error)
    assert "Set --port PORT (or SMTP_PORT)" in error.phrased("cli")


def test_refused_on_the_default_host_says_so_in_cli_terms() -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMTP_")}
    env["SMTP_PORT"] = str(port)  # the host is left to its default, localhost
    argv = ["send", "--to", "a@example.org", "--subject", "s", "--body", "b"]
    argv += ["--from", "me@example.org", "--security", "starttls"]
    result = subprocess.run(
        [str(Path(sys.executable).with_name("smtp-magic")), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 1
    err = result.stderr
    assert f"nothing is listening on localhost:{port}" in err
    assert "the host localhost is the default (no host was set)" in err
    assert "Set --host HOST (or SMTP_HOST)" in err and "smtp-magic serve" in err
    assert "Traceback" not in err


def test_host_not_found() -> None:
    settings = Settings("no-such-host.invalid", port=587, security="starttls", timeout=TIMEOUT)
    outcome = timed(lambda: send(message(), settings))
    error = outcome.error
    assert type(error) is ConnectError, repr(error)
    assert "'no-such-host.invalid' was not found" in str(error)
    assert "spelling" in str(error)


def test_not_an_smtp_server() -> None:
    with scripted(Dialog(greeting="HTTP/1.1 400 Bad Request")) as server:
        settings = Settings(HOST, port=server.port, security="starttls", timeout=TIMEOUT)
        error = fail(settings)
    assert type(error) is ProtocolError
    assert "not an SMTP reply" in str(error)
    assert "HTTP/1.1 400" in str(error)
    assert "Check that the port is an SMTP port" in str(error)


# -- what the lab's roles say ---------------------------------------------------------------------


def test_mail_before_starttls_is_a_mismatch(lab: LabServer) -> None:
    """security='plain' against the 587 role, which requires STARTTLS before MAIL."""
    settings = lab.settings(587, security="plain", username=None, password=None)
    error = fail(settings)
    assert type(error) is SecurityMismatchError
    assert error.expected == "starttls"
    assert error.code == 530
    assert "security='starttls'" in str(error)


def test_login_required(lab: LabServer) -> None:
    error = fail(lab.settings(465, username=None, password=None))
    assert type(error) is SenderRejectedError
    assert error.code == 530
    assert "requires a login" in str(error)
    assert "Set username=" in str(error)


def test_wrong_password(lab: LabServer) -> None:
    error = fail(lab.settings(587, password=SECRET))
    assert type(error) is AuthenticationError
    assert error.code == 535
    assert "Check the username and password" in str(error)
    assert SECRET not in full_text(error)


def test_no_auth_offered_but_username_set(lab: LabServer) -> None:
    error = fail(lab.settings(25, username="alice", password=SECRET))
    assert type(error) is AuthenticationError
    assert "offers no login (AUTH) even over TLS" in str(error)
    assert "Remove the username" in str(error)
    assert SECRET not in full_text(error)


def test_non_ascii_address_without_smtputf8(certs: Certs) -> None:
    with scripted(Dialog(tls=certs.server_context())) as server:  # no SMTPUTF8 advertised
        settings = Settings(
            HOST, port=server.port, security="starttls", cafile=certs.cafile, timeout=TIMEOUT
        )
        error = fail(settings, message(to="jörg@example.org"))
    assert type(error) is SenderRejectedError
    assert "SMTPUTF8" in str(error)
    assert "Use ASCII addresses" in str(error)
    assert "MAIL" not in server.verbs()


# -- security='auto' never ends in plaintext -----------------------------------------------------


def auto(port: int, certs: Certs, **overrides: object) -> Settings:
    return Settings(
        HOST,
        port=port,
        security="auto",
        cafile=certs.cafile,
        timeout=TIMEOUT,
        greeting_wait=0.3,
        **overrides,  # type: ignore[arg-type]
    )


def test_auto_on_unknown_port_chooses_starttls_after_a_greeting(certs: Certs) -> None:
    with scripted(Dialog(tls=certs.server_context())) as server:
        report = send(message(), auto(server.port, certs, username="a", password=SECRET))
    assert report.security == "starttls"
    assert server.verbs().index("STARTTLS") < server.verbs().index("AUTH")


def test_auto_on_unknown_port_chooses_tls_after_silence(certs: Certs) -> None:
    with scripted(Dialog(tls=certs.server_context(), implicit=True)) as server:
        report = send(message(), auto(server.port, certs))
    assert report.security == "tls"


def test_auto_never_falls_back_to_plaintext(certs: Certs) -> None:
    with scripted(Dialog(extensions=("AUTH PLAIN",))) as server:  # greets, offers no STARTTLS
        error = fail(auto(server.port, certs, username="a", password=SECRET))
    assert type(error) is TLSUnavailableError
    assert "Refusing to continue in plaintext" in str(error)
    assert server.verbs() == ["EHLO", "QUIT"]


# -- every error teaches -------------------------------------------------------------------------


@pytest.mark.parametrize("name", errors.__all__)
def test_every_error_renders_without_traceback(name: str) -> None:
    cls = getattr(errors, name)
    extra = {
        "SecurityMismatchError": {"expected": "tls"},
        "RecipientsRejectedError": {"recipients": {"a@example.org": (550, "no")}},
    }.get(name, {})
    error = cls("what happened, why, and what to change.", host="h", port=25, **extra)
    assert isinstance(error, SMTPMagicError)
    assert str(error) == "what happened, why, and what to change."
    assert error._render_traceback_() == [f"{name}: what happened, why, and what to change."]
    assert error.where == "h:25"


def test_builtin_bases() -> None:
    assert issubclass(errors.SMTPTimeoutError, TimeoutError)
    assert issubclass(errors.ConnectError, ConnectionError)
    assert issubclass(errors.DeliveryUnknownError, ConnectionError)
    assert issubclass(errors.SettingsError, ValueError)
    assert issubclass(errors.ComposeError, ValueError)


def test_server_counts_nothing_for_an_aio_server_never_contacted() -> None:
    """The counting server used elsewhere counts real connections (a control for those tests)."""
    with AioServer() as server:
        assert server.connections == 0
        with socket.create_connection((HOST, server.port), 1.0) as sock:
            sock.recv(1024)
        assert server.connections == 1
