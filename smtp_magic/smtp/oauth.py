"""OAuth2 logins over SMTP: fetching the token, reading the server's JSON refusal, and saying what it means."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from smtp_magic.errors import AuthenticationError, SMTPMagicError
from smtp_magic.phrasing import action, strip_markers
from smtp_magic.secret import Secret, SecretStr
from smtp_magic.smtp import sasl

if TYPE_CHECKING:
    from smtp_magic.smtp.session import Session

__all__ = ["OAuthFailure", "fetch_token", "login", "refusal_message"]

# Status values a server puts in its error challenge. Google's XOAUTH2 page uses HTTP codes
# ("401"); RFC 7628 section 3.2.2 uses the OAuth error registry ("invalid_token").
_EXPIRED = {"401", "invalid_token"}
_SCOPE = {"403", "insufficient_scope"}
_MALFORMED = {"400", "invalid_request"}

# Microsoft 365 sends no challenge (learn.microsoft.com, "Authenticate an IMAP, POP or SMTP
# connection using OAuth"): its 535 alone must be read. 5.7.139 and 5.7.30 are its replies when
# SMTP AUTH is switched off (simonrob/email-oauth2-proxy#193; OpenCTI-Platform/opencti#12069).
_MICROSOFT_HINTS = (
    (
        "5.7.139",
        "SMTP AUTH is disabled for this tenant or mailbox: an administrator must enable "
        "'Authenticated SMTP' for the mailbox (Set-CASMailbox -SmtpClientAuthenticationDisabled "
        "$false) or for the organisation",
    ),
    (
        "5.7.3",
        "Microsoft 365 gives no reason; usually the token has expired, was issued without the "
        "scope https://outlook.office.com/SMTP.Send, belongs to another mailbox than the "
        "username, or SMTP AUTH is disabled for the mailbox",
    ),
)


@dataclass(frozen=True)
class OAuthFailure:
    """The JSON a server sends in its ``334`` error challenge, and what it means.

    Attributes:
        status: "401" or "invalid_token" (expired, revoked or unknown token), "403" or
            "insufficient_scope" (the token lacks the scope), "400" or "invalid_request".
        scope: The scope the server needs, when it says.
        schemes: The token schemes it takes ("bearer").
    """

    status: str
    scope: str = ""
    schemes: str = ""

    @classmethod
    def parse(cls, challenge: bytes) -> OAuthFailure | None:
        """Read a challenge (base64 JSON, or already decoded); None if it is not such JSON."""
        text = challenge.strip()
        with contextlib.suppress(binascii.Error, ValueError):  # else it is already decoded
            text = base64.b64decode(text, validate=True)
        try:
            data = json.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None
        if not isinstance(data, dict) or "status" not in data:
            return None
        return cls(
            status=str(data["status"]),
            scope=str(data.get("scope") or ""),
            schemes=str(data.get("schemes") or ""),
        )

    @property
    def expired(self) -> bool:
        """Whether a fresh token could succeed (the token is expired, revoked or unknown)."""
        return self.status in _EXPIRED

    def meaning(self, sign_in: str = "sign in again") -> str:
        """One clause saying what the status means and what to do (``sign_in``: how to)."""
        if self.status in _EXPIRED:
            return (
                f"the access token has expired or was revoked (status {self.status}): "
                f"{sign_in} to get a fresh token"
            )
        if self.status in _SCOPE:
            needed = f" {strip_markers(self.scope)}" if self.scope else ""
            return (
                f"the access token was not granted the scope the server needs (status "
                f"{self.status}): {sign_in} asking for the scope{needed}"
            )
        if self.status in _MALFORMED:
            return (
                f"the server could not read the login (status {self.status}): check that the "
                "username is the mailbox's address"
            )
        return f"the server refused the token (status {self.status})"


class _Got:
    """What a token function returned, behind a masked repr (a traceback's locals show it)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: object = None

    def __repr__(self) -> str:
        return "<token function's result>"


def fetch_token(token: str | Callable[[], str]) -> Secret:
    """The access token as a Secret: the string itself, or what the callable returns now.

    Raises:
        SMTPMagicError: what the callable raised, if it is one (a sign-in error, say).
        AuthenticationError: the callable failed otherwise or returned something unusable.
    """
    if not callable(token):
        return Secret(token)
    failed = ""
    got = _Got()  # the token goes straight into it: never a local variable of this frame
    try:
        got.value = token()
    except SMTPMagicError:
        raise
    except Exception as exc:
        failed = type(exc).__name__
    if failed:
        # Raised outside the except block, so the new error carries no __context__: the
        # function's traceback and its locals could hold a refresh token.
        name = getattr(token, "__qualname__", type(token).__name__)
        raise AuthenticationError(
            f"The token function {name}() raised {failed}, so there is no access token to log "
            "in with. Check that it can sign in (run it on its own to see), or pass the token "
            "as a string.",
            phase="auth",
        )
    if (
        isinstance(got.value, str)
        and got.value.strip()
        and "\r" not in got.value
        and "\n" not in got.value
    ):
        return Secret(SecretStr(got.value))  # SecretStr: a masked repr in Secret.__init__ too
    kind = "without a usable token" if isinstance(got.value, str) else "instead of a string"
    kind = f"{type(got.value).__name__} {kind}"
    raise AuthenticationError(
        f"The token function returned {kind}: it must return the access token as a non-empty "
        "string of one line.",
        phase="auth",
    )


def refusal_message(
    where: str,
    username: str,
    mechanism: str,
    code: int,
    reply: str,
    failure: OAuthFailure | None,
    *,
    retried: bool,
    login_args: str | None = None,
) -> str:
    """What to tell the user when the server refused the token (never the token itself).

    ``login_args`` (a token provider's ``login_args()``) turns "sign in again" into the sign-in
    command of the front end that shows the error.
    """
    head = f"{where} refused the OAuth2 login ({mechanism}) for {username!r}"
    sign_in = "sign in again"
    if login_args:
        sign_in += f" with {action('sign_in', login_args)}"
    reply = strip_markers(reply)  # server text: no phrasing markers from it
    if failure is not None:
        why = failure.meaning(sign_in)
        if failure.expired and retried:
            why = (
                f"even a fresh token from the token function was refused as expired or revoked "
                f"(status {failure.status}): {sign_in}, and check that the token is for "
                "this mailbox"
            )
    else:
        why = next((hint for mark, hint in _MICROSOFT_HINTS if mark in reply), "")
        why = why or "it gave no reason: check that the token is current and for this mailbox"
    return f"{head}: {why}. The server said: {code} {reply}"


def login(session: Session) -> None:
    """Log in with the settings' token: OAUTHBEARER if offered, else XOAUTH2.

    A token function is called now (each connection gets a fresh token) and, when the server
    refuses the token as expired or revoked, once more before one more AUTH on the same
    connection (RFC 4954 allows another AUTH after a failed one). If the function has an
    ``invalidate()`` method (a caching token provider), that is called first.

    Raises:
        AuthenticationError: no OAuth2 mechanism is offered, or the token was refused.
    """
    settings = session.settings
    wire = session.wire
    # No local variable holds a token string: a traceback's locals (pytest --showlocals,
    # %xmode Verbose) would print it. settings.token is read where it is used.
    assert settings.token is not None, "login() is for settings with a token"
    offered = wire.esmtp_features.get("auth", "")
    try:
        kind = sasl.choose(offered, sasl.OAUTH_MECHANISMS)
    except smtplib.SMTPException:
        raise _error(
            session,
            f"{settings.address} offers no OAuth2 login "
            f"(AUTH {strip_markers(offered.strip()) or 'none'}); a "
            "token needs XOAUTH2 or OAUTHBEARER. Use this server's password or app password "
            "instead of the token, or a server that takes OAuth2.",
        ) from None
    retried = False
    while True:
        problem = ""
        try:
            secret = fetch_token(settings.token)
        except AuthenticationError as exc:
            problem = exc.template
        if problem:  # raised outside the except block: no __context__ to carry along
            raise _error(session, f"Cannot log in to {settings.address}: {problem}")
        mechanism = kind(settings.username or "", secret)
        try:
            sasl.authenticate(wire, mechanism)
            return
        except smtplib.SMTPAuthenticationError as exc:
            code, reply = exc.smtp_code, _text(exc.smtp_error)
        challenge = getattr(mechanism, "challenge", None)
        failure = OAuthFailure.parse(challenge) if challenge else None
        # Microsoft 365 refuses an expired token with a bare 535 5.7.3: a fresh token may help,
        # unless the reply says SMTP AUTH is switched off (5.7.139).
        if failure is not None:
            fresh_may_help = failure.expired
        else:
            fresh_may_help = code == 535 and "5.7.139" not in reply
        if callable(settings.token) and fresh_may_help and not retried:
            retried = True
            # A token provider that caches (smtp_magic.auth's providers do) must be told the
            # token was refused, or it would hand out the same one again.
            invalidate = getattr(settings.token, "invalidate", None)
            if callable(invalidate):
                invalidate()
            wire.note("the token was refused; asking the token function for a fresh one")
            continue
        message = refusal_message(
            settings.address,
            settings.username or "",
            kind.name,
            code,
            reply,
            failure,
            retried=retried,
            login_args=_login_args(settings.token),
        )
        raise _error(session, message, code=code, reply=reply)


def _login_args(token: object) -> str | None:
    """The sign-in arguments of a token provider from smtp_magic.auth, if ``token`` is one."""
    method = getattr(token, "login_args", None)
    if not callable(method):
        return None
    try:
        args = method()
    except Exception:  # a provider that cannot say: fall back to plain words
        return None
    return args if isinstance(args, str) and args else None


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())


def _error(session: Session, message: str, **fields: object) -> AuthenticationError:
    settings = session.settings
    return AuthenticationError(
        message,
        host=settings.host,
        port=settings.port,
        security=settings.security,
        phase="auth",
        transcript=session.transcript,
        **fields,  # type: ignore[arg-type]
    )
