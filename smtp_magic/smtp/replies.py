"""Diagnosis rules for what the server answered: refusals by phase and reply code."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from typing import Any

from smtp_magic import errors
from smtp_magic.phrasing import action, other, setting, strip_markers
from smtp_magic.smtp.diagnosis import Context, Rule, nothing_sent, reply_text

__all__ = ["RULES"]


def _not_supported(c: Context) -> errors.SMTPMagicError | None:
    if not isinstance(c.exc, smtplib.SMTPNotSupportedError):
        return None
    text = str(c.exc)
    if c.phase == "starttls":
        return c.make(
            errors.TLSUnavailableError,
            f"{c.where} did not offer STARTTLS. Refusing to continue in plaintext: a server "
            "that should offer it and does not may be under a downgrade attack (RFC 3207 "
            "section 6). If this server really has no TLS and you send no password, use "
            f"{setting('security', 'plain')} explicitly.",
        )
    if c.phase == "auth":
        return c.make(
            errors.AuthenticationError,
            f"{c.where} offers no login (AUTH) even over TLS, but a username is set. Remove "
            "the username if the server needs no login, or check the port (submission is "
            "587 or 465).",
        )
    if "SMTPUTF8" in text:
        return c.make(
            errors.SenderRejectedError,
            f"an address contains non-ASCII characters, but {c.where} does not support "
            "SMTPUTF8 (RFC 6531), so the message was not sent. Use ASCII addresses.",
        )
    return c.make(errors.ProtocolError, f"{c.where}: {text}")


def _every_recipient(c: Context) -> errors.SMTPMagicError | None:
    if not isinstance(c.exc, smtplib.SMTPRecipientsRefused):
        return None
    recipients = {r: (code, reply_text(t)) for r, (code, t) in c.exc.recipients.items()}
    first_code = next(iter(recipients.values()))[0] if recipients else None
    listing = "; ".join(f"{r}: {code} {t}" for r, (code, t) in recipients.items())
    kind = "temporarily " if first_code and 400 <= first_code < 500 else ""
    return c.make(
        errors.RecipientsRejectedError,
        f"{c.where} {kind}refused every recipient ({listing}), so nothing was sent. "
        + (
            "Try again later."
            if kind
            else "Check the addresses, and that this server may send to them."
        ),
        recipients=recipients,
        code=first_code,
        reply=listing,
    )


def _login_refused(c: Context) -> errors.SMTPMagicError | None:
    exc = c.exc
    if not isinstance(exc, smtplib.SMTPAuthenticationError):
        return None
    reply = reply_text(exc.smtp_error)
    hint = "Check the username and password"
    if exc.smtp_code == 534 or "application-specific" in reply.lower():
        hint = "The provider wants an app password (or OAuth) instead of the account password"
    return c.make(
        errors.AuthenticationError,
        f"{c.where} rejected the login for {c.settings.username!r} ({exc.smtp_code} {reply}). "
        f"{hint}; the password comes from {action('password_source')}.",
        code=exc.smtp_code,
        reply=reply,
    )


# -- replies (SMTPResponseException): one small rule per situation, tried in order -------------

Reply = Callable[[Context, int, str], "errors.SMTPMagicError | None"]


def _unclear_after_data(c: Context, code: int, reply: str) -> errors.SMTPMagicError | None:
    if c.phase != "data-end" or 400 <= code < 600:
        return None
    # The server holds the whole message and answered neither yes (250) nor a clear no:
    # reporting "not delivered" could make the user send it twice.
    return c.make(
        errors.DeliveryUnknownError,
        f"{c.where} answered {reply[:80]!r} (code {code}) after the message was sent, which "
        "is neither a confirmation nor a refusal: it may or may not have been delivered. "
        "Check before sending again.",
        code=code,
        reply=reply,
    )


def _not_smtp(c: Context, code: int, reply: str) -> errors.SMTPMagicError | None:
    if code != -1:
        return None
    return c.make(
        errors.ProtocolError,
        f"{c.where} sent something that is not an SMTP reply ({reply[:80]!r}) during "
        f"{c.during}. Check that the port is an SMTP port.",
    )


def _starttls_refused(c: Context, code: int, reply: str) -> errors.SMTPMagicError | None:
    if c.phase != "starttls":
        return None
    return _said(
        c, code, reply, errors.TLSUnavailableError,
        "{where} refused STARTTLS ({said}). Refusing to continue in plaintext; try again later, "
        f"or use {setting('security', 'tls')} on the server's implicit-TLS port (465).",
    )  # fmt: skip


def _closing(c: Context, code: int, reply: str) -> errors.SMTPMagicError | None:
    if code != 421:
        return None
    text = "{where} is closing the connection ({said}): a temporary condition. Try again later."
    return _said(c, code, reply, errors.RejectedError, text + nothing_sent(c.phase))


def _mail_needs(c: Context, code: int, reply: str) -> errors.SMTPMagicError | None:
    if c.phase != "mail" or code != 530:
        return None
    if "starttls" in reply.lower():
        return _said(
            c, code, reply, errors.SecurityMismatchError,
            "{where} requires STARTTLS before mail ({said}). "
            f"Use {setting('security', 'starttls')} (or {other('security', 'auto')}).",
            expected="starttls",
        )  # fmt: skip
    return _said(
        c, code, reply, errors.SenderRejectedError,
        f"{{where}} requires a login before it accepts mail ({{said}}). Set {setting('username')} "
        f"(the password comes from {action('password_source')}).",
    )  # fmt: skip


def _too_large(c: Context, code: int, reply: str) -> errors.SMTPMagicError | None:
    if code != 552 and not (c.phase in ("data", "data-end") and "size" in reply.lower()):
        return None
    return _said(
        c, code, reply, errors.MessageRejectedError,
        "{where} refused the message as too large ({said}). Send smaller attachments, or a link.",
    )  # fmt: skip


def _sender_refused(c: Context, code: int, reply: str) -> errors.SMTPMagicError | None:
    if c.phase != "mail":
        return None
    if 400 <= code < 500:
        text = (
            "{where} temporarily refused the sender ({said}), so nothing was sent. Try again later."
        )
    else:
        text = (
            "{where} refused the sender ({said}). Check the From address: many servers only "
            "accept the address of the account you log in with."
        )
    return _said(c, code, reply, errors.SenderRejectedError, text)


def _message_refused(c: Context, code: int, reply: str) -> errors.SMTPMagicError | None:
    if c.phase not in ("data", "data-end"):
        return None
    temporary = " The refusal is temporary: try again later." if 400 <= code < 500 else ""
    text = "{where} refused the message ({said}); it was not delivered." + temporary
    return _said(c, code, reply, errors.MessageRejectedError, text)


def _greeting_refused(c: Context, code: int, reply: str) -> errors.SMTPMagicError | None:
    if c.phase != "greeting":
        return None
    if 400 <= code < 500:
        fix = "Try again later, or use another server."
    else:
        fix = "It does not accept mail from this client: use another server, or ask its administrator."
    text = "{where} refused the connection in its greeting ({said}). " + fix
    return _said(c, code, reply, errors.RejectedError, text)


def _said(
    c: Context, code: int, reply: str, cls: type[errors.SMTPMagicError], text: str, **extra: Any
) -> errors.SMTPMagicError:
    """``cls`` with ``text`` where {where} and {said} (code and reply) are filled in."""
    message = text.replace("{where}", c.where).replace("{said}", f"{code} {reply}")
    return c.make(cls, message, code=code, reply=reply, **extra)


REPLIES: list[Reply] = [
    _unclear_after_data,
    _not_smtp,
    _starttls_refused,
    _closing,
    _mail_needs,
    _too_large,
    _sender_refused,
    _message_refused,
    _greeting_refused,
]
"""What a reply means, by phase and code; the first that recognises it wins."""


def _reply(c: Context) -> errors.SMTPMagicError | None:
    exc = c.exc
    if not isinstance(exc, smtplib.SMTPResponseException):
        return None
    code, reply = exc.smtp_code, reply_text(exc.smtp_error)
    for rule in REPLIES:
        error = rule(c, code, reply)
        if error is not None:
            return error
    return _said(
        c, code, reply, errors.RejectedError, f"{{where}} answered {{said}} during {c.during}."
    )


def _other_smtp(c: Context) -> errors.SMTPMagicError | None:
    if not isinstance(c.exc, smtplib.SMTPException):
        return None
    text = str(c.exc)
    if c.phase == "auth":
        oauth_only = any(name in text.upper() for name in ("XOAUTH2", "OAUTHBEARER"))
        return c.make(
            errors.AuthenticationError,
            f"{c.where} offers no login mechanism smtp_magic supports ({strip_markers(text)})."
            + (
                " It takes OAuth2 access tokens (XOAUTH2/OAUTHBEARER) instead of a password: "
                "sign in with the provider and log in with the token (README: 'Logging in with "
                "an OAuth2 token')."
                if oauth_only
                else ""
            ),
        )
    return c.make(errors.ProtocolError, f"{c.where}: {text}")


def _os_error(c: Context) -> errors.SMTPMagicError | None:
    exc = c.exc
    if not isinstance(exc, OSError):
        return None
    return c.make(
        errors.ConnectionLostError,
        f"the connection to {c.where} failed during {c.during} ({exc.strerror or exc})."
        + nothing_sent(c.phase),
    )


RULES: list[Rule] = [
    _not_supported,
    _every_recipient,
    _login_refused,
    _reply,
    _other_smtp,
    _os_error,
]
