"""The one boundary where ssl, socket and smtplib exceptions become smtp_magic errors that explain themselves.

``explain`` walks a table of small rules in order; the first rule that recognises the exception
(at the session's phase) builds the error. The rules live beside this module: ``tlsrules``
(our own refusals, TLS, connecting), ``providerrules`` (refusals a provider is known for,
explained in its own terms), ``silence`` (timeouts and lost connections) and ``replies`` (what
the server answered).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from smtp_magic import errors
from smtp_magic.smtp import providerrules, replies, silence, tlsrules
from smtp_magic.smtp.diagnosis import Context, Rule

if TYPE_CHECKING:
    from smtp_magic.smtp.session import Session

__all__ = ["RULES", "explain"]

# Known provider refusals go before silence: Gmail's "421 4.7.0" is followed by a hang-up.
RULES: list[Rule] = [*tlsrules.RULES, *providerrules.RULES, *silence.RULES, *replies.RULES]
"""Every rule, in the order tried: specific ones before general ones."""


def explain(exc: BaseException, session: Session) -> errors.SMTPMagicError:
    """The SMTPMagicError that says what ``exc`` means at ``session.phase``, and what to change."""
    context = Context(exc, session)
    for rule in RULES:
        error = rule(context)
        if error is not None:
            return error
    return context.make(
        errors.ProtocolError,
        f"unexpected {type(exc).__name__} talking to {context.where} during {context.during}: {exc}",
    )
