"""The lab's XOAUTH2/OAUTHBEARER handlers, driven byte by byte over real TLS with smtplib.

Golden strings come from the providers' documentation and the RFC:
- Google, "OAuth 2.0 Mechanism" (developers.google.com/workspace/gmail/imap/xoauth2-protocol):
  the initial client response and the error challenge.
- Microsoft, "Authenticate an IMAP, POP or SMTP connection using OAuth" (learn.microsoft.com,
  exchange/client-developer/legacy-protocols): the XOAUTH2 string and the 535 5.7.3 refusal.
- RFC 7628 sections 4.1, 4.3 and 4.4: OAUTHBEARER responses and the SMTP error challenge.
"""

from __future__ import annotations

import base64
import json
import smtplib
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from smtp_magic.lab.oauth_smtp import (
    OAuthLogins,
    OAuthStyle,
    parse_oauthbearer,
    parse_xoauth2,
)
from smtp_magic.lab.tokens import StaticTokens

GOOGLE_XOAUTH2 = (
    "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52"
    "YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
)
GOOGLE_TOKEN = "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
GOOGLE_ERROR = (
    "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIG1hYyIsInNjb3BlIjoiaHR0cHM6Ly9t"
    "YWlsLmdvb2dsZS5jb20vIn0K"
)
MICROSOFT_XOAUTH2 = (
    "dXNlcj10ZXN0QGNvbnRvc28ub25taWNyb3NvZnQuY29tAWF1dGg9QmVhcmVy"
    "IEV3QkFBbDNCQUFVRkZwVUFvN0ozVmUwYmpMQldaV0NjbFJDM0VvQUEBAQ=="
)
MICROSOFT_TOKEN = "EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA"
RFC7628_SMTP = (  # section 4.1, the SMTP exchange (port 587)
    "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2Vy"
    "dmVyLmV4YW1wbGUuY29tAXBvcnQ9NTg3AWF1dGg9QmVhcmVyIHZGOWRmd"
    "DRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB"
)
RFC7628_TOKEN = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="
RFC7628_QUERY = (  # section 4.3: an empty auth= asks for the error and the scope
    "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9AQE="
)
RFC7628_ERROR = (  # section 4.4, the SMTP error challenge
    "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NoZW1lcyI6ImJlYXJlciBtYWMiL"
    "CJzY29wZSI6Imh0dHBzOi8vbWFpbC5leGFtcGxlLmNvbS8ifQ=="
)


def test_golden_strings_parse() -> None:
    assert parse_xoauth2(base64.b64decode(GOOGLE_XOAUTH2)) == ("someuser@example.com", GOOGLE_TOKEN)
    assert parse_xoauth2(base64.b64decode(MICROSOFT_XOAUTH2)) == (
        "test@contoso.onmicrosoft.com",
        MICROSOFT_TOKEN,
    )
    assert parse_oauthbearer(base64.b64decode(RFC7628_SMTP)) == ("user@example.com", RFC7628_TOKEN)
    assert parse_oauthbearer(base64.b64decode(RFC7628_QUERY)) == ("user@example.com", "")
    # The documented challenges decode to the JSON the lab sends.
    assert json.loads(base64.b64decode(GOOGLE_ERROR))["status"] == "401"
    assert json.loads(base64.b64decode(RFC7628_ERROR)) == {
        "status": "invalid_token",
        "schemes": "bearer mac",
        "scope": "https://mail.example.com/",
    }


@pytest.mark.parametrize(
    "message",
    [
        b"user=a\x01auth=Bearer t\x01",  # one ^A short
        b"auth=Bearer t\x01\x01",  # no user
        b"user=a\x01auth=Basic t\x01\x01",  # not a bearer token
    ],
)
def test_malformed_xoauth2(message: bytes) -> None:
    with pytest.raises(ValueError):
        parse_xoauth2(message)


def test_malformed_oauthbearer() -> None:
    # RFC 7628's own section 4.4 example writes "n,user=...", which is not a GS2 authzid ("a=");
    # the lab refuses it rather than guess.
    with pytest.raises(ValueError):
        parse_oauthbearer(b"n,user=someuser@example.com,\x01auth=Bearer t\x01\x01")
    with pytest.raises(ValueError):
        parse_oauthbearer(b"p=tls-unique,a=u,\x01auth=Bearer t\x01\x01")
    assert parse_oauthbearer(b"n,a=a=2Cb=3Dc,\x01auth=bearer t\x01\x01") == ("a,b=c", "t")


class _Handler(OAuthLogins):
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "250 OK"


USERS = {"ok-token": "someuser@example.com", MICROSOFT_TOKEN: "test@contoso.onmicrosoft.com"}
LONG = "L" * 1500


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _serve(ca: trustme.CA, style: OAuthStyle) -> Iterator[tuple[int, OAuthLogins, Any]]:
    tokens = StaticTokens({**USERS, LONG: "someuser@example.com"}, expired=["old-token"])
    handler = _Handler(tokens, style=style)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    with socket.socket() as probe:  # aiosmtpd's Controller cannot report a port 0 it was given
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_ctx,
        require_starttls=True,
        auth_required=True,
        auth_exclude_mechanism=["LOGIN", "PLAIN", *handler.excluded],
        server_hostname="lab.localhost",
    )
    controller.start()
    try:
        client_ctx = ssl.create_default_context()
        ca.configure_trust(client_ctx)
        yield controller.port, handler, client_ctx
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def google(ca: trustme.CA) -> Iterator[tuple[int, OAuthLogins, Any]]:
    yield from _serve(ca, "google")


@pytest.fixture(scope="module")
def microsoft(ca: trustme.CA) -> Iterator[tuple[int, OAuthLogins, Any]]:
    yield from _serve(ca, "microsoft")


def _client(port: int, ctx: ssl.SSLContext) -> smtplib.SMTP:
    smtp = smtplib.SMTP("127.0.0.1", port, local_hostname="client.localhost", timeout=5)
    smtp.starttls(context=ctx)
    smtp.ehlo()
    return smtp


def _xoauth2(user: str, token: str) -> str:
    return base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode()).decode()


def test_google_style_offers_both_and_accepts_a_good_token(google: Any) -> None:
    port, handler, ctx = google
    handler.clear()
    with _client(port, ctx) as smtp:
        assert set(smtp.esmtp_features["auth"].split()) == {"OAUTHBEARER", "XOAUTH2"}
        code, _ = smtp.docmd("AUTH", "XOAUTH2 " + _xoauth2("someuser@example.com", "ok-token"))
        assert code == 235
    assert handler.attempts[-1].ok and handler.attempts[-1].inline


def test_google_style_failure_is_challenge_then_535(google: Any) -> None:
    port, handler, ctx = google
    handler.clear()
    with _client(port, ctx) as smtp:
        code, text = smtp.docmd("AUTH", "XOAUTH2 " + _xoauth2("someuser@example.com", "old-token"))
        assert code == 334
        details = json.loads(base64.b64decode(text))
        assert details == {
            "status": "401",
            "schemes": "bearer",
            "scope": "https://mail.google.com/",
        }
        code, text = smtp.docmd("")  # Google's protocol page: the client sends an empty line
        assert code == 535
        assert b"5.7.8 Username and Password not accepted" in text
    assert handler.attempts[-1].closing == b""
    assert handler.attempts[-1].status == "401"


def test_oauthbearer_failure_needs_the_control_a(google: Any) -> None:
    port, _, ctx = google
    bearer = base64.b64encode(b"n,a=someuser@example.com,\x01auth=Bearer old-token\x01\x01")
    with _client(port, ctx) as smtp:
        assert smtp.docmd("AUTH", "OAUTHBEARER " + bearer.decode())[0] == 334
        assert smtp.docmd("AQ==")[0] == 535  # RFC 7628 section 3.2.3: a single ^A
    with _client(port, ctx) as smtp:
        assert smtp.docmd("AUTH", "OAUTHBEARER " + bearer.decode())[0] == 334
        code, text = smtp.docmd("")  # XOAUTH2's closing is wrong here: the lab says so
        assert code == 501
        assert b"RFC 7628" in text


def test_long_token_after_empty_334(google: Any) -> None:
    port, handler, ctx = google
    handler.clear()
    with _client(port, ctx) as smtp:
        # On the AUTH line it would exceed 512 octets (RFC 4954 section 4): aiosmtpd refuses it.
        assert smtp.docmd("AUTH", "XOAUTH2 " + _xoauth2("someuser@example.com", LONG))[0] == 500
        code, text = smtp.docmd("AUTH", "XOAUTH2")
        assert (code, text) == (334, b"")
        assert smtp.docmd(_xoauth2("someuser@example.com", LONG))[0] == 235
    attempt = handler.attempts[-1]
    assert attempt.ok and not attempt.inline and attempt.token_length == 1500


def test_microsoft_style_offers_xoauth2_only_and_refuses_at_once(microsoft: Any) -> None:
    port, _, ctx = microsoft
    with _client(port, ctx) as smtp:
        assert smtp.esmtp_features["auth"].split() == ["XOAUTH2"]
        code, text = smtp.docmd("AUTH", "XOAUTH2 " + _xoauth2("a@contoso.com", "old-token"))
        assert code == 535
        assert text.startswith(b"5.7.3 Authentication unsuccessful")
    with _client(port, ctx) as smtp:
        assert smtp.docmd("AUTH", "XOAUTH2 " + MICROSOFT_XOAUTH2)[0] == 235


def test_malformed_response_is_501(google: Any) -> None:
    port, _, ctx = google
    with _client(port, ctx) as smtp:
        code, _ = smtp.docmd("AUTH", "XOAUTH2 " + base64.b64encode(b"user=a").decode())
        assert code == 501


def test_repr_hides_tokens() -> None:
    tokens = StaticTokens({"secret-token-1": "a"}, expired=["secret-token-2"])
    assert "secret" not in repr(tokens)
    assert "secret" not in repr(OAuthLogins(tokens))
    assert tokens("a", "secret-token-1").ok
    assert not tokens("b", "secret-token-1").ok  # another user's token
    tokens.expire("secret-token-1")
    assert tokens("a", "secret-token-1").status == "401"
