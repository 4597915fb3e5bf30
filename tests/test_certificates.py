"""Certificates and TLS versions: each bad certificate fails with the fix named, the right trust succeeds."""

# The fixtures live in tests/hostile.py (conftest belongs to the suite's lead): importing one makes
# pytest see it, and ruff then reads each `certs` parameter as a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import datetime as dt
import socket
import ssl
import warnings
from email.message import EmailMessage
from typing import Any

import pytest
import trustme

from smtp_magic import CertificateError, Settings, TLSHandshakeError, send
from tests.hostile import (
    HOST,
    AioServer,
    Certs,
    Dialog,
    certs,  # noqa: F401  (a fixture)
    old_protocol_context,
    scripted,
    self_signed_leaf,
    timed,
)

TIMEOUT = 2.0  # TLS failures are immediate; this only bounds a broken test


def message() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "alice@example.org"
    msg["To"] = "bob@example.org"
    msg["Subject"] = "certificate test"
    msg.set_content("Hello.\n")
    return msg


def attempt(port: int, *, host: str = HOST, security: str = "tls", **overrides: object):  # type: ignore[no-untyped-def]
    settings = Settings(
        host,
        port=port,
        security=security,  # type: ignore[arg-type]
        timeout=TIMEOUT,
        local_hostname="client.test",
        **overrides,  # type: ignore[arg-type]
    )
    return timed(lambda: send(message(), settings))


def implicit(leaf: trustme.LeafCert | None, certs: Certs) -> AioServer:
    return AioServer(ssl_context=certs.server_context(leaf))


def write_pem(certs: Certs, name: str, data: bytes) -> str:
    path = certs.directory / name
    path.write_bytes(data)
    return str(path)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def assert_refused(outcome, port: int, verify_code: int, *phrases: str) -> CertificateError:  # type: ignore[no-untyped-def]
    error = outcome.error
    assert type(error) is CertificateError, repr(error)
    assert error.verify_code == verify_code
    assert f":{port}" in str(error)
    for phrase in phrases:
        assert phrase in str(error), str(error)
    assert "never turns verification off" in str(error) or verify_code in (62, 64)
    assert outcome.elapsed < TIMEOUT
    return error


# -- untrusted -----------------------------------------------------------------------------------


def test_self_signed_fails_then_trusting_it_succeeds(certs: Certs) -> None:
    leaf = self_signed_leaf("localhost")
    with implicit(leaf, certs) as server:
        refused = attempt(server.port, cafile=certs.cafile)
        trusted = attempt(
            server.port, cafile=write_pem(certs, "self.pem", leaf.cert_chain_pems[0].bytes())
        )
    assert_refused(refused, server.port, 18, "is self-signed", "cafile=")
    assert refused.error.phase == "tls"
    assert trusted.error is None, trusted.error
    assert trusted.result.delivered
    assert server.verbs().count("MAIL") == 1  # only the trusted attempt got as far as MAIL


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_unknown_ca_fails_then_its_cafile_succeeds(certs: Certs, security: str) -> None:
    leaf = certs.other_ca.issue_cert("localhost", "127.0.0.1")
    context = certs.server_context(leaf)
    tls_option = {"ssl_context": context} if security == "tls" else {"tls_context": context}
    with AioServer(**tls_option) as server:
        refused = attempt(server.port, security=security, cafile=certs.cafile)
        commands_when_refused = list(server.commands)
        other = write_pem(certs, "other-ca.pem", certs.other_ca.cert_pem.bytes())
        trusted = attempt(server.port, security=security, cafile=other)
    assert_refused(refused, server.port, 20, "not trusted", "cafile=")
    assert not {"AUTH", "MAIL", "RCPT", "DATA"} & {c.split()[0] for c in commands_when_refused}
    assert trusted.error is None, trusted.error
    assert trusted.result.tls.certificate.issuer == "Somebody else's CA"


# -- validity period -----------------------------------------------------------------------------


def test_expired(certs: Certs) -> None:
    leaf = certs.ca.issue_cert(
        "localhost",
        "127.0.0.1",
        not_before=now() - dt.timedelta(days=30),
        not_after=now() - dt.timedelta(days=1),
    )
    with implicit(leaf, certs) as server:
        outcome = attempt(server.port, cafile=certs.cafile)
    assert_refused(outcome, server.port, 10, "has expired", "renew")
    assert server.commands == []


def test_not_yet_valid(certs: Certs) -> None:
    leaf = certs.ca.issue_cert(
        "localhost",
        "127.0.0.1",
        not_before=now() + dt.timedelta(days=1),
        not_after=now() + dt.timedelta(days=30),
    )
    with implicit(leaf, certs) as server:
        outcome = attempt(server.port, cafile=certs.cafile)
    assert_refused(outcome, server.port, 9, "not valid yet", "clock")
    assert server.commands == []


# -- names ---------------------------------------------------------------------------------------


def test_wrong_ip_address_fails_then_a_listed_name_succeeds(certs: Certs) -> None:
    leaf = certs.ca.issue_cert("localhost")  # no IP address in it
    with implicit(leaf, certs) as server:
        by_ip = attempt(server.port, cafile=certs.cafile)
        by_name = attempt(server.port, host="localhost", cafile=certs.cafile)
    error = assert_refused(by_ip, server.port, 64, "not valid for the IP address '127.0.0.1'")
    assert "Connect using a name the certificate lists" in str(error)
    assert by_name.error is None, by_name.error
    assert by_name.result.delivered


def test_wrong_host_name(certs: Certs) -> None:
    leaf = certs.ca.issue_cert("mail.example.org")
    with implicit(leaf, certs) as server:
        outcome = attempt(server.port, host="localhost", cafile=certs.cafile)
    error = assert_refused(outcome, server.port, 62, "not valid for the host name 'localhost'")
    assert "Connect using a name the certificate lists" in str(error)
    assert "localhost:" in str(error)


# -- old protocols -------------------------------------------------------------------------------


def handshake_version(port: int, certs: Certs, version: ssl.TLSVersion) -> str | None:
    """What a client that still allows ``version`` negotiates: proof of what the server offers."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(certs.cafile)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # naming TLS 1.0/1.1 is deprecated
        ctx.minimum_version = version
    with (
        socket.create_connection((HOST, port), TIMEOUT) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return tls.version()


@pytest.mark.parametrize(
    ("version", "name"),
    [(ssl.TLSVersion.TLSv1, "TLSv1"), (ssl.TLSVersion.TLSv1_1, "TLSv1.1")],
    ids=["TLS1.0", "TLS1.1"],
)
@pytest.mark.parametrize("kind", ["openssl-alert", "asyncio-hangup"])
def test_server_offering_only_old_tls_is_refused(
    certs: Certs, version: ssl.TLSVersion, name: str, kind: str
) -> None:
    """A blocking OpenSSL server sends the protocol_version alert (as Postfix does); an asyncio
    server (aiosmtpd) hangs up without it, so only the alert case can name the cause for sure."""
    context = old_protocol_context(certs, version)
    if kind == "openssl-alert":
        server: Any = scripted(Dialog(tls=context, implicit=True))
    else:
        server = AioServer(ssl_context=context)
    with server as running:
        # The control: this local OpenSSL can still speak the old version, and the server does.
        assert handshake_version(running.port, certs, version) == name
        outcome = attempt(running.port, cafile=certs.cafile)
    error = outcome.error
    assert type(error) is TLSHandshakeError, repr(error)
    assert f"{HOST}:{running.port}" in str(error)
    assert "older than 1.2" in str(error)
    if kind == "openssl-alert":
        assert "enable TLS 1.2 or 1.3" in str(error)
    assert not {"MAIL", "DATA"} & set(running.verbs())
    assert outcome.elapsed < TIMEOUT


# -- client certificates -------------------------------------------------------------------------


@pytest.fixture
def demanding_context(certs: Certs) -> ssl.SSLContext:
    """A server context that requires a client certificate signed by the client CA."""
    context = certs.server_context()
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=certs.client_ca.cert_pem.bytes().decode())
    return context


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_client_certificate_accepted(
    certs: Certs, demanding_context: ssl.SSLContext, security: str
) -> None:
    option = "ssl_context" if security == "tls" else "tls_context"
    with AioServer(**{option: demanding_context}) as server:
        outcome = attempt(
            server.port, security=security, cafile=certs.cafile, certfile=certs.client_certfile
        )
    assert outcome.error is None, outcome.error
    assert outcome.result.delivered
    assert server.verbs().count("DATA") == 1


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_missing_client_certificate_names_certfile(
    certs: Certs, demanding_context: ssl.SSLContext, security: str
) -> None:
    option = "ssl_context" if security == "tls" else "tls_context"
    with AioServer(**{option: demanding_context}) as server:
        outcome = attempt(server.port, security=security, cafile=certs.cafile)
    error = outcome.error
    assert type(error) is TLSHandshakeError, repr(error)
    assert f"{HOST}:{server.port}" in str(error)
    assert "client certificate" in str(error)
    assert "certfile=" in str(error)
    assert not {"AUTH", "MAIL", "DATA"} & set(server.verbs())
    assert outcome.elapsed < TIMEOUT
