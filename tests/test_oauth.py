"""OAuth2 logins end to end: send() with a token through the lab's XOAUTH2/OAUTHBEARER roles over real TLS.

Golden strings for what the client puts on the wire:
- Google, "OAuth 2.0 Mechanism" (developers.google.com/workspace/gmail/imap/xoauth2-protocol),
  "Initial Client Response" for someuser@example.com.
- Microsoft, "Authenticate an IMAP, POP or SMTP connection using OAuth" (learn.microsoft.com,
  exchange/client-developer/legacy-protocols), "SASL XOAUTH2" for test@contoso.onmicrosoft.com.
- RFC 7628 section 4.1: the OAUTHBEARER initial response of the IMAP (port 143) and SMTP
  (port 587) examples, with host and port.
"""

from __future__ import annotations

import base64
import socket
import ssl
import traceback
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as Server
from aiosmtpd.smtp import Envelope
from aiosmtpd.smtp import Session as ServerSession

from smtp_magic import AuthenticationError, Settings, send, send_many
from smtp_magic.lab.oauth_smtp import OAuthLogins
from smtp_magic.lab.server import LabServer
from smtp_magic.lab.tokens import StaticTokens
from smtp_magic.report import format_transcript
from smtp_magic.secret import Secret
from smtp_magic.smtp.oauth import OAuthFailure
from smtp_magic.smtp.sasl import OAuthBearerMechanism, XOAuth2Mechanism, oauthbearer_payload

USER = "analyst@lab.localhost"
GOOD = "ya29.Good-Token-5d1e"
OLD = "ya29.Expired-Token-77c2"
NARROW = "ya29.Narrow-Scope-Token-90a1"
LONG = "EwB" + "x" * 1500 + "AA"  # Microsoft's access tokens run to well over a thousand characters


def test_xoauth2_golden_strings() -> None:
    google = XOAuth2Mechanism(
        "someuser@example.com", Secret("ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg")
    )
    assert google.initial().b64().reveal() == (
        b"dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52"
        b"YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
    )
    microsoft = XOAuth2Mechanism(
        "test@contoso.onmicrosoft.com", Secret("EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA")
    )
    assert microsoft.initial().b64().reveal() == (
        b"dXNlcj10ZXN0QGNvbnRvc28ub25taWNyb3NvZnQuY29tAWF1dGg9QmVhcmVy"
        b"IEV3QkFBbDNCQUFVRkZwVUFvN0ozVmUwYmpMQldaV0NjbFJDM0VvQUEBAQ=="
    )


def test_oauthbearer_golden_strings() -> None:
    token = Secret("vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==")
    imap = oauthbearer_payload("user@example.com", token, "server.example.com", 143)
    assert imap.b64().reveal() == (
        b"bixhPXVzZXJAZXhhbXBsZS5jb20sAWhv"
        b"c3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyI"
        b"HZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQ"
        b"EB"
    )
    smtp = oauthbearer_payload("user@example.com", token, "server.example.com", 587)
    assert smtp.b64().reveal() == (
        b"bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2Vy"
        b"dmVyLmV4YW1wbGUuY29tAXBvcnQ9NTg3AWF1dGg9QmVhcmVyIHZGOWRmd"
        b"DRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB"
    )
    # Without host and port (what smtp_magic sends), and with GS2 escaping of "," and "=".
    plain = OAuthBearerMechanism("a,b=c@example.com", Secret("t")).initial().reveal()
    assert plain == b"n,a=a=2Cb=3Dc@example.com,\x01auth=Bearer t\x01\x01"


def test_error_challenges_decode() -> None:
    # Google's "Error response" example and RFC 7628 section 4.4's SMTP challenge.
    google = OAuthFailure.parse(
        b"eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIG1hYyIsInNjb3BlIjoiaHR0cHM6Ly9t"
        b"YWlsLmdvb2dsZS5jb20vIn0K"
    )
    assert google == OAuthFailure("401", "https://mail.google.com/", "bearer mac")
    assert google.expired and "sign in again" in google.meaning()
    rfc = OAuthFailure.parse(
        b"eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NoZW1lcyI6ImJlYXJlciBtYWMiL"
        b"CJzY29wZSI6Imh0dHBzOi8vbWFpbC5leGFtcGxlLmNvbS8ifQ=="
    )
    assert rfc is not None and rfc.status == "invalid_token" and rfc.expired
    scope = OAuthFailure("403", "https://mail.google.com/")
    assert not scope.expired and "https://mail.google.com/" in scope.meaning()
    assert OAuthFailure.parse(b"not json") is None


@pytest.fixture(scope="module")
def tokens() -> StaticTokens:
    return StaticTokens({GOOD: USER, LONG: USER}, expired=[OLD], wrong_scope={NARROW: USER})


@pytest.fixture(scope="module")
def google_lab(tokens: StaticTokens) -> Iterator[LabServer]:
    with LabServer(ports={25: 0, 465: 0, 587: 0}, tokens=tokens) as lab:
        yield lab


@pytest.fixture(scope="module")
def microsoft_lab(tokens: StaticTokens) -> Iterator[LabServer]:
    with LabServer(ports={25: 0, 465: 0, 587: 0}, tokens=tokens, oauth_style="microsoft") as lab:
        yield lab


def _message() -> EmailMessage:
    message = EmailMessage()
    message["From"] = USER
    message["To"] = "reader@example.org"
    message["Subject"] = "OAuth2"
    message.set_content("Signed in with a bearer token.")
    return message


def _settings(lab: LabServer, role: int, token: object) -> Settings:
    return lab.settings(role, username=USER, token=token)


@pytest.mark.parametrize("role", [587, 465])
def test_send_with_oauthbearer_when_both_are_offered(google_lab: LabServer, role: int) -> None:
    google_lab.clear()
    report = send(_message(), _settings(google_lab, role, GOOD))
    assert report.auth_mechanism == "OAUTHBEARER"
    assert google_lab.wait_for_messages(1)[0].authenticated
    assert "OAUTHBEARER" in str(report)


def test_send_with_xoauth2_when_only_it_is_offered(microsoft_lab: LabServer) -> None:
    report = send(_message(), _settings(microsoft_lab, 587, GOOD))
    assert report.auth_mechanism == "XOAUTH2"


def test_long_token_goes_after_the_empty_334(microsoft_lab: LabServer) -> None:
    report = send(_message(), _settings(microsoft_lab, 587, LONG))
    assert report.auth_mechanism == "XOAUTH2"
    attempt = microsoft_lab.oauth.attempts[-1]
    assert attempt.ok and not attempt.inline and attempt.token_length == len(LONG)
    lines = [f"{line.direction}: {line.text}" for line in report.transcript]
    at = lines.index("C: AUTH XOAUTH2")  # the AUTH line alone, as RFC 4954 section 4 requires
    assert lines[at + 1] == "S: 334 " and lines[at + 2] == "C: <redacted>"
    assert LONG not in format_transcript(report.transcript)


def test_expired_token_calls_the_function_again_and_retries(google_lab: LabServer) -> None:
    handed_out: list[str] = []

    def token() -> str:
        handed_out.append(OLD if not handed_out else GOOD)
        return handed_out[-1]

    google_lab.oauth.clear()
    report = send(_message(), _settings(google_lab, 587, token))
    assert handed_out == [OLD, GOOD]  # once for the connection, once after the refusal
    assert report.auth_mechanism == "OAUTHBEARER"
    first, second = google_lab.oauth.attempts
    assert (first.ok, first.status, first.closing) == (False, "401", b"\x01")
    assert second.ok


def test_a_string_token_is_not_retried(google_lab: LabServer) -> None:
    google_lab.oauth.clear()
    with pytest.raises(AuthenticationError) as caught:
        send(_message(), _settings(google_lab, 587, OLD))
    assert len(google_lab.oauth.attempts) == 1
    error = caught.value
    assert "expired or was revoked" in str(error) and "sign in again" in str(error)
    assert error.code == 535 and error.phase == "auth"
    everything = str(error) + repr(error) + format_transcript(error.transcript)
    assert OLD not in everything
    assert base64.b64encode(OLD.encode()).decode() not in everything


def test_refused_even_after_a_fresh_token(google_lab: LabServer) -> None:
    calls = []

    def token() -> str:
        calls.append(1)
        return OLD

    with pytest.raises(AuthenticationError, match="even a fresh token") as caught:
        send(_message(), _settings(google_lab, 465, token))
    assert len(calls) == 2
    assert OLD not in str(caught.value)


def test_wrong_scope_names_the_scope(google_lab: LabServer) -> None:
    with pytest.raises(AuthenticationError, match=r"https://mail\.google\.com/") as caught:
        send(_message(), _settings(google_lab, 587, NARROW))
    assert "scope" in str(caught.value) and NARROW not in str(caught.value)


def test_microsoft_refusal_is_explained_without_a_challenge(microsoft_lab: LabServer) -> None:
    with pytest.raises(AuthenticationError, match=r"SMTP\.Send") as caught:
        send(_message(), _settings(microsoft_lab, 587, OLD))
    assert "5.7.3" in str(caught.value) and OLD not in str(caught.value)


def test_no_oauth_mechanism_offered(clean_lab: LabServer) -> None:
    # The plain lab offers PLAIN and LOGIN only: a token cannot be used there.
    with pytest.raises(AuthenticationError, match="XOAUTH2 or OAUTHBEARER") as caught:
        send(_message(), clean_lab.settings(587, username=USER, token=GOOD))
    assert GOOD not in str(caught.value)


def test_token_function_errors_are_explained(google_lab: LabServer) -> None:
    def broken() -> str:
        raise RuntimeError("refresh token " + GOOD)

    with pytest.raises(AuthenticationError, match="raised RuntimeError") as caught:
        send(_message(), _settings(google_lab, 587, broken))
    assert GOOD not in str(caught.value)
    assert caught.value.port == google_lab.ports[587]
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_a_caching_provider_is_invalidated_before_the_retry(google_lab: LabServer) -> None:
    class Provider:
        """Like smtp_magic.auth's providers: the same token until told it was refused."""

        def __init__(self) -> None:
            self.current = OLD
            self.invalidated = 0

        def invalidate(self) -> None:
            self.invalidated += 1
            self.current = GOOD

        def __call__(self) -> str:
            return self.current

    provider = Provider()
    report = send(_message(), _settings(google_lab, 465, provider))
    assert provider.invalidated == 1 and report.auth_mechanism == "OAUTHBEARER"
    assert any("fresh one" in line.text for line in report.transcript)


def test_send_many_asks_for_a_token_per_connection(google_lab: LabServer) -> None:
    calls: list[int] = []

    def token() -> str:
        calls.append(1)
        return GOOD

    bulk = send_many([_message() for _ in range(3)], _settings(google_lab, 587, token))
    assert len(bulk.accepted) == 3
    assert len(calls) == 1  # one connection, one token


def test_a_providers_refusal_names_the_sign_in_for_each_front_end(google_lab: LabServer) -> None:
    class Provider:
        def __call__(self) -> str:
            return OLD

        def login_args(self) -> str:
            return "google --client-id lab-client"

    with pytest.raises(AuthenticationError) as caught:
        send(_message(), _settings(google_lab, 587, Provider()))
    error = caught.value
    assert "`smtp-magic login google --client-id lab-client`" in error.phrased("cli")
    assert "`%smtp_login google --client-id lab-client`" in error.phrased("magic")
    assert "Sign in button" in error.phrased("form")
    assert OLD not in error.phrased("cli")


def test_a_password_against_a_token_only_server_is_told_about_oauth(tmp_path: Path) -> None:
    # A server that offers XOAUTH2 and OAUTHBEARER only (as an OAuth2-only tenant does).
    class Handler(OAuthLogins):
        async def handle_DATA(self, s: Server, session: ServerSession, e: Envelope) -> str:
            return "250 OK"

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    with socket.socket() as probe:  # aiosmtpd's Controller cannot report a port 0 it was given
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(
        Handler(StaticTokens({GOOD: USER})),
        hostname="127.0.0.1",
        port=port,
        tls_context=server_ctx,
        require_starttls=True,
        auth_required=True,
        auth_exclude_mechanism=["LOGIN", "PLAIN"],
        server_hostname="oauth-only.localhost",
    )
    controller.start()
    try:
        base = {"port": port, "security": "starttls", "username": USER, "cafile": str(cafile)}
        with pytest.raises(AuthenticationError, match="OAuth2 access tokens") as caught:
            send(_message(), Settings("127.0.0.1", password="a-password-4411", **base))
        assert "a-password-4411" not in str(caught.value)
        report = send(_message(), Settings("127.0.0.1", token=GOOD, **base))
        assert report.auth_mechanism == "OAUTHBEARER"
    finally:
        controller.stop()


def test_no_token_in_a_traceback_with_locals(google_lab: LabServer) -> None:
    # What pytest --showlocals or %xmode Verbose would print for a refused token.
    with pytest.raises(AuthenticationError) as caught:
        send(_message(), _settings(google_lab, 587, OLD))
    shown = "".join(
        traceback.TracebackException.from_exception(caught.value, capture_locals=True).format()
    )
    assert "token='********'" in shown  # the Settings in the frames, masked
    assert OLD not in shown

    def returns_a_line_break() -> str:
        return OLD + "\n"

    with pytest.raises(AuthenticationError, match="one line") as caught:
        send(_message(), _settings(google_lab, 587, returns_a_line_break))
    shown = "".join(
        traceback.TracebackException.from_exception(caught.value, capture_locals=True).format()
    )
    assert OLD not in shown
