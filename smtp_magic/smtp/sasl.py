"""SASL for SMTP AUTH (RFC 4954): the mechanisms as small classes, and the exchange that drives them."""

from __future__ import annotations

import base64
import binascii
import smtplib
from typing import TYPE_CHECKING, ClassVar

from smtp_magic.secret import Secret

if TYPE_CHECKING:
    from smtp_magic.smtp.wire import Wire

__all__ = [
    "MECHANISMS",
    "OAUTH_MECHANISMS",
    "LoginMechanism",
    "Mechanism",
    "OAuthBearerMechanism",
    "PlainMechanism",
    "XOAuth2Mechanism",
    "authenticate",
    "choose",
    "oauthbearer_payload",
]

MAX_COMMAND_LINE = 512
"""RFC 5321 section 4.5.3.1.4: a command line is at most 512 octets, CRLF included."""


class Mechanism:
    """One SASL mechanism: what it sends first, and how it answers each server challenge."""

    name: ClassVar[str] = ""

    def __init__(self, username: str, secret: Secret) -> None:
        self.username = username
        self.secret = secret
        self.challenges = 0

    def initial(self) -> Secret | None:
        """The initial response (RFC 4954 section 4), or None if the mechanism has none."""
        return None

    def respond(self, challenge: bytes) -> Secret:
        """The answer to a 334 challenge (already base64-decoded)."""
        raise smtplib.SMTPAuthenticationError(
            535, b"unexpected challenge for " + self.name.encode()
        )


class PlainMechanism(Mechanism):
    """PLAIN (RFC 4616): authzid NUL authcid NUL password, all UTF-8."""

    name = "PLAIN"

    def initial(self) -> Secret:
        return b"\0" + self.username.encode("utf-8") + b"\0" + self.secret


class LoginMechanism(Mechanism):
    """LOGIN (draft-murchison-sasl-login): the user name, then the password, each on request."""

    name = "LOGIN"

    def initial(self) -> Secret:
        return Secret(self.username.encode("utf-8"))

    def respond(self, challenge: bytes) -> Secret:
        # Servers ask "Username:" then "Password:"; the user name already went as the initial
        # response, so any further challenge asks for the password (as smtplib does).
        self.challenges += 1
        if self.challenges > 1:
            return super().respond(challenge)
        return self.secret


MECHANISMS: dict[str, type[Mechanism]] = {"PLAIN": PlainMechanism, "LOGIN": LoginMechanism}
"""Password mechanisms in order of preference (PLAIN needs one round trip, LOGIN two)."""


class XOAuth2Mechanism(Mechanism):
    """XOAUTH2, as Google and Microsoft document it: ``user=<user>^Aauth=Bearer <token>^A^A``.

    The secret is the access token. A server that refuses it may first send a ``334`` challenge
    carrying base64 JSON (status, schemes, scope); the client answers with ``closing`` and the
    server then sends its 535. The decoded challenge is kept in ``challenge`` for the error.
    """

    name = "XOAUTH2"
    closing: ClassVar[bytes] = b""  # Google's XOAUTH2 page: an empty response

    def __init__(self, username: str, secret: Secret) -> None:
        super().__init__(username, secret)
        self.challenge: bytes | None = None

    def initial(self) -> Secret:
        user = self.username.encode("utf-8")
        return b"user=" + user + b"\x01auth=Bearer " + self.secret + b"\x01\x01"

    def respond(self, challenge: bytes) -> Secret:
        self.challenges += 1
        if self.challenges > 1:  # only the one error challenge is part of the mechanism
            return super().respond(challenge)
        self.challenge = challenge
        return Secret(self.closing)


class OAuthBearerMechanism(XOAuth2Mechanism):
    """OAUTHBEARER (RFC 7628): GS2 header ``n,a=<user>,``, then ``^Aauth=Bearer <token>^A^A``.

    Host and port are optional (section 3.1) and left out: a server must check them against
    the connection, so a name the client cannot know for sure would only cost a login. After an
    error challenge the client sends a single ``^A`` (section 3.2.3).
    """

    name = "OAUTHBEARER"
    closing = b"\x01"

    def initial(self) -> Secret:
        return oauthbearer_payload(self.username, self.secret)


def oauthbearer_payload(
    username: str, token: Secret, host: str | None = None, port: int | None = None
) -> Secret:
    """The OAUTHBEARER initial client response (RFC 7628 section 3.1), before base64."""
    # RFC 5801 section 4: "=" and "," in the authzid are written "=3D" and "=2C".
    authzid = username.replace("=", "=3D").replace(",", "=2C")
    pairs = (f"host={host}\x01" if host else "") + (f"port={port}\x01" if port else "")
    return f"n,a={authzid},\x01{pairs}auth=Bearer ".encode() + token + b"\x01\x01"


OAUTH_MECHANISMS: dict[str, type[Mechanism]] = {
    "OAUTHBEARER": OAuthBearerMechanism,
    "XOAUTH2": XOAuth2Mechanism,
}
"""Token mechanisms in order of preference: OAUTHBEARER is the standard (RFC 7628)."""


def choose(offered: str, preferences: dict[str, type[Mechanism]] = MECHANISMS) -> type[Mechanism]:
    """The first mechanism of ``preferences`` that the server's ``AUTH`` extension offers.

    Raises:
        smtplib.SMTPException: none of them is offered.
    """
    names = {word.upper() for word in offered.split()}
    for name, mechanism in preferences.items():
        if name in names:
            return mechanism
    raise smtplib.SMTPException(
        f"No suitable authentication method found (the server offers {offered or 'none'}; "
        f"supported: {', '.join(preferences)})."
    )


def authenticate(wire: Wire, mechanism: Mechanism) -> None:
    """Run one AUTH exchange on ``wire``; return on 235, raise SMTPAuthenticationError otherwise.

    The secret is encoded as UTF-8 and never handled as plain text in a local variable, and the
    server's replies are scrubbed of anything that was sent (a server that echoes the payload in
    its 535 must not put the password into the error).
    """
    wire.remember_secret(mechanism.secret)
    wire.mechanism = mechanism.name
    initial = mechanism.initial()
    command = f"AUTH {mechanism.name}"
    # RFC 4954 section 4: an initial response that would make the command line longer than
    # 512 octets MUST NOT be sent on it; send it after the server's empty 334 instead.
    fits = initial is not None and len(command) + 1 + _b64_length(initial) + 2 <= MAX_COMMAND_LINE
    if initial is not None and fits:
        wire.send_secret(command, initial.b64())
        code, reply = wire.getreply()
    else:
        code, reply = wire.docmd(command)
        if initial is not None and code == 334:
            wire.send_secret("", initial.b64())
            code, reply = wire.getreply()
    while code == 334:
        wire.send_secret("", mechanism.respond(_unbase64(reply)).b64())
        code, reply = wire.getreply()
    if code not in (235, 503):  # 503: already authenticated (smtplib accepts it too)
        raise smtplib.SMTPAuthenticationError(code, reply)


def _b64_length(payload: Secret) -> int:
    return 4 * ((len(payload) + 2) // 3)


def _unbase64(reply: bytes) -> bytes:
    try:
        return base64.b64decode(reply.strip(), validate=True)
    except (binascii.Error, ValueError):
        return reply
