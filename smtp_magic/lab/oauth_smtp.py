"""The lab's OAuth2 logins: aiosmtpd AUTH handlers for XOAUTH2 and OAUTHBEARER that fail the way Gmail and Microsoft 365 do."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from aiosmtpd.smtp import SMTP, AuthResult, auth_mechanism

from smtp_magic.lab.handler import LabHandler, ReceivedMessage
from smtp_magic.lab.tokens import TokenValidator, TokenVerdict

__all__ = [
    "AUTH_RESPONSE_LIMIT",
    "AuthAttempt",
    "OAuthLabHandler",
    "OAuthLogins",
    "OAuthStyle",
    "parse_oauthbearer",
    "parse_xoauth2",
]

OAuthStyle = Literal["google", "microsoft"]

AUTH_RESPONSE_LIMIT = 12288
"""Octets of one base64 AUTH response line the lab reads (RFC 4954 section 4 names 12288 as enough)."""

# Gmail's refusal after the challenge (seen in PHPMailer/PHPMailer#2328 and nodemailer#114; RFC 7628
# section 4.4 shows the same shape with 5.7.1). "lab" stands where Gmail puts a request id.
GOOGLE_REFUSAL = (
    "535-5.7.8 Username and Password not accepted. Learn more at",
    "535 5.7.8  https://support.google.com/mail/?p=BadCredentials lab - gsmtp",
)
# Microsoft's refusal, from "Authenticate an IMAP, POP or SMTP connection using OAuth"
# (learn.microsoft.com, SMTP Protocol Exchange): no challenge, just the 535.
MICROSOFT_REFUSAL = "535 5.7.3 Authentication unsuccessful [lab.localhost]"


@dataclass(frozen=True)
class AuthAttempt:
    """What the lab saw of one OAuth2 login (never the token itself).

    Attributes:
        mechanism: "XOAUTH2" or "OAUTHBEARER".
        user: The user the client named.
        inline: Whether the client sent its response on the AUTH line (an initial response)
            rather than after the server's empty 334.
        token_length: The length of the token, in characters.
        ok: Whether the login succeeded.
        status: The status the failure challenge carried ("" on success or without a challenge).
        closing: What the client answered to the failure challenge (b"" for XOAUTH2 and b"\\x01"
            for OAUTHBEARER are correct), or None when no challenge was sent.
    """

    mechanism: str
    user: str
    inline: bool
    token_length: int
    ok: bool
    status: str = ""
    closing: bytes | None = None


class _Malformed(ValueError):
    """The client's SASL message does not follow the mechanism's syntax."""


def _pairs(fields: list[bytes]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for field in fields:
        key, sep, value = field.partition(b"=")
        if not sep:
            raise _Malformed(f"a field without '=': {field[:20]!r}")
        pairs[key.decode("ascii", "replace").lower()] = value.decode("utf-8", "replace")
    return pairs


def _bearer(pairs: dict[str, str]) -> str:
    if "auth" not in pairs:
        raise _Malformed("no 'auth=' field")
    if not pairs["auth"]:
        # RFC 7628 section 4.3: an empty auth= asks for the error (and with it the scope needed).
        return ""
    scheme, _, token = pairs["auth"].partition(" ")
    # RFC 7628 section 4: the scheme name is case-insensitive ("Bearer", "bearer", "BeArEr").
    if scheme.lower() != "bearer" or not token:
        raise _Malformed("the auth= field is not 'Bearer <token>'")
    return token


def parse_xoauth2(message: bytes) -> tuple[str, str]:
    """Split a decoded XOAUTH2 response into (user, token).

    The format (Google's XOAUTH2 protocol page): ``user=<user>^Aauth=Bearer <token>^A^A``.

    Raises:
        ValueError: If the message does not have that shape.
    """
    if not message.endswith(b"\x01\x01"):
        raise _Malformed("XOAUTH2 responses end in two ^A")
    pairs = _pairs(message[:-2].split(b"\x01"))
    if "user" not in pairs:
        raise _Malformed("no 'user=' field")
    return pairs["user"], _bearer(pairs)


def parse_oauthbearer(message: bytes) -> tuple[str, str]:
    """Split a decoded OAUTHBEARER response into (user, token).

    The format (RFC 7628 section 3.1): a GS2 header ``n,a=<user>,`` then ``^A``, key=value
    pairs each ended by ``^A`` (``host``, ``port``, ``auth``), and a final ``^A``.

    Raises:
        ValueError: If the message does not have that shape.
    """
    header, sep, rest = message.partition(b"\x01")
    if not sep or not rest.endswith(b"\x01"):
        raise _Malformed("an OAUTHBEARER response is a GS2 header and ^A-ended pairs")
    flag, _, tail = header.partition(b",")
    authzid, comma, _ = tail.partition(b",")
    if flag not in (b"n", b"y") or not comma:
        raise _Malformed("the GS2 header must start 'n,' (no channel binding)")
    user = ""
    if authzid:
        if not authzid.startswith(b"a="):
            raise _Malformed("the GS2 authzid must start 'a='")
        # RFC 5801 section 4: ',' and '=' in a saslname are written =2C and =3D.
        user = authzid[2:].decode("utf-8", "replace").replace("=2C", ",").replace("=3D", "=")
    return user, _bearer(_pairs([field for field in rest[:-1].split(b"\x01") if field]))


_PARSERS = {"XOAUTH2": parse_xoauth2, "OAUTHBEARER": parse_oauthbearer}
# The client's closing message after a failure challenge: an empty line for XOAUTH2 (Google's
# protocol page), a single ^A for OAUTHBEARER (RFC 7628 section 3.2.3).
_CLOSING = {"XOAUTH2": b"", "OAUTHBEARER": b"\x01"}


class OAuthLogins:
    """aiosmtpd AUTH handlers for XOAUTH2 and OAUTHBEARER, to mix into a lab handler.

    aiosmtpd finds ``auth_<NAME>`` methods on the handler and offers them in EHLO. Each handler
    reads the client's response (on the AUTH line, or after an empty ``334`` when it is too long
    for one: RFC 4954 section 4), asks the validator, and on failure answers as the chosen
    provider does:

    - ``style="google"``: a ``334`` challenge carrying base64 JSON ``{"status", "schemes",
      "scope"}``; the client must reply with an empty line (XOAUTH2) or ``^A`` (OAUTHBEARER,
      RFC 7628 section 3.2.3); then ``535-5.7.8 Username and Password not accepted``.
    - ``style="microsoft"``: ``535 5.7.3 Authentication unsuccessful`` at once, as Microsoft's
      documentation shows. Microsoft 365 offers XOAUTH2 only (see ``excluded``).
    """

    def __init__(self, validator: TokenValidator, *, style: OAuthStyle = "google") -> None:
        """Judge tokens with ``validator`` and refuse them in ``style``."""
        if style not in ("google", "microsoft"):
            raise ValueError(f"style={style!r}: use 'google' or 'microsoft'.")
        self.validator = validator
        self.style: OAuthStyle = style
        self._attempts: list[AuthAttempt] = []
        self._lock = threading.Lock()

    @property
    def excluded(self) -> list[str]:
        """Mechanisms to leave out of EHLO (aiosmtpd's ``auth_exclude_mechanism``)."""
        return ["OAUTHBEARER"] if self.style == "microsoft" else []

    @property
    def attempts(self) -> list[AuthAttempt]:
        """The OAuth2 logins seen so far, oldest first."""
        with self._lock:
            return list(self._attempts)

    def clear(self) -> None:
        """Forget the logins seen."""
        with self._lock:
            self._attempts.clear()

    @auth_mechanism("XOAUTH2")
    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """AUTH XOAUTH2 [initial-response]."""
        return await self._login(server, "XOAUTH2", args)

    @auth_mechanism("OAUTHBEARER")
    async def auth_OAUTHBEARER(self, server: SMTP, args: list[str]) -> AuthResult:
        """AUTH OAUTHBEARER [initial-response]."""
        return await self._login(server, "OAUTHBEARER", args)

    async def _login(self, server: SMTP, mechanism: str, args: list[str]) -> AuthResult:
        inline = len(args) > 1
        if inline:
            # RFC 4954 section 4: "=" stands for an empty initial response.
            encoded: bytes | None = b"" if args[1] == "=" else args[1].encode("ascii", "replace")
        else:
            encoded = await _challenge(server, b"")
        if encoded is None:
            return AuthResult(success=False, handled=True)
        try:
            user, token = _PARSERS[mechanism](base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError) as exc:
            await server.push(f"501 5.5.2 Malformed {mechanism} response: {exc}")
            return AuthResult(success=False, handled=True)
        verdict = self.validator(user, token)
        if verdict.ok:
            self._note(AuthAttempt(mechanism, user, inline, len(token), True))
            return AuthResult(success=True, auth_data=verdict.user or user)
        if self.style == "microsoft":
            self._note(AuthAttempt(mechanism, user, inline, len(token), False))
            return AuthResult(success=False, handled=False, message=MICROSOFT_REFUSAL)
        return await self._refuse_like_google(server, mechanism, user, inline, token, verdict)

    async def _refuse_like_google(
        self,
        server: SMTP,
        mechanism: str,
        user: str,
        inline: bool,
        token: str,
        verdict: TokenVerdict,
    ) -> AuthResult:
        # Google's XOAUTH2 page ("Error response"): the challenge carries status, schemes, scope.
        details = {"status": verdict.status, "schemes": "bearer", "scope": verdict.scope}
        answer = await _challenge(server, json.dumps(details, separators=(",", ":")).encode())
        closing = None if answer is None else _decoded(answer)
        self._note(AuthAttempt(mechanism, user, inline, len(token), False, verdict.status, closing))
        if answer is None:
            return AuthResult(success=False, handled=True)
        if closing != _CLOSING[mechanism]:
            expected = "an empty line" if mechanism == "XOAUTH2" else "^A (RFC 7628 section 3.2.3)"
            await server.push(f"501 5.5.2 After the error challenge {mechanism} expects {expected}")
            return AuthResult(success=False, handled=True)
        await server.push(GOOGLE_REFUSAL[0])
        return AuthResult(success=False, handled=False, message=GOOGLE_REFUSAL[1])

    def _note(self, attempt: AuthAttempt) -> None:
        with self._lock:
            self._attempts.append(attempt)
            del self._attempts[:-100]  # what the lab keeps is bounded

    def __repr__(self) -> str:
        return f"<OAuthLogins style={self.style!r} validator={self.validator!r}>"


class OAuthLabHandler(LabHandler):
    """A lab role's handler that also takes XOAUTH2 and OAUTHBEARER logins from ``logins``."""

    def __init__(
        self, role: int, record: Callable[[ReceivedMessage], int], logins: OAuthLogins
    ) -> None:
        super().__init__(role, record)
        self.logins = logins

    # aiosmtpd offers every auth_<NAME> method of the handler (aiosmtpd docs, "AUTH hooks").
    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """AUTH XOAUTH2, judged by the lab's token validator."""
        result: AuthResult = await self.logins.auth_XOAUTH2(server, args)
        return result

    async def auth_OAUTHBEARER(self, server: SMTP, args: list[str]) -> AuthResult:
        """AUTH OAUTHBEARER, judged by the lab's token validator."""
        result: AuthResult = await self.logins.auth_OAUTHBEARER(server, args)
        return result


def _decoded(encoded: bytes) -> bytes | None:
    try:
        return base64.b64decode(encoded, validate=True)
    except binascii.Error:
        return None


async def _challenge(server: SMTP, payload: bytes) -> bytes | None:
    """Send ``334 <base64 payload>`` and return the client's line (still base64), or None.

    aiosmtpd's own ``challenge_auth`` reads with a 1001-byte line limit, so a long token (a
    Microsoft access token runs well over a thousand characters) would fail there; RFC 4954
    section 4 asks servers to take responses of up to 12288 octets.
    """
    await server.push(b"334 " + base64.b64encode(payload))
    line = await _read_line(server._reader)  # aiosmtpd has no public reader
    if line is None:
        await server.push("500 5.5.6 Authentication exchange line is too long")
        return None
    line = line.strip()
    if line == b"*":  # RFC 4954 section 4: the client cancels the exchange
        await server.push("501 5.7.0 Auth aborted")
        return None
    return line


async def _read_line(reader: Any) -> bytes | None:
    """Read one line of up to AUTH_RESPONSE_LIMIT octets; None (after draining it) if longer."""
    parts: list[bytes] = []
    size = 0
    while True:
        try:
            part: bytes = await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError as exc:
            # The reader's limit is shorter than the line: take what it holds and read on.
            part = await reader.read(exc.consumed)
            size += len(part)
            if size <= AUTH_RESPONSE_LIMIT + 2:  # past the limit, drain without keeping
                parts.append(part)
            continue
        size += len(part)
        if size > AUTH_RESPONSE_LIMIT + 2:  # + CRLF
            return None
        parts.append(part)
        return b"".join(parts)
