"""The vocabulary of diagnosis rules: the Context a rule looks at, and shared phrases."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from smtp_magic import errors
from smtp_magic.phrasing import strip_markers

if TYPE_CHECKING:
    from smtp_magic.settings import Settings
    from smtp_magic.smtp.session import Session

__all__ = ["PHASES", "Context", "Rule", "nothing_sent", "reply_text"]

PHASES = {
    "connect": "the connection",
    "greeting": "the greeting",
    "tls": "the TLS handshake",
    "ehlo": "EHLO",
    "starttls": "STARTTLS",
    "auth": "the login",
    "mail": "MAIL FROM",
    "rcpt": "RCPT TO",
    "data": "DATA",
    "data-end": "the wait for the server's confirmation",
    "rset": "RSET",
}


@dataclass(frozen=True)
class Context:
    """What a rule may look at: the exception, and the session it happened in."""

    exc: BaseException
    session: Session

    @property
    def settings(self) -> Settings:
        return self.session.settings

    @property
    def where(self) -> str:
        return self.session.settings.address

    @property
    def phase(self) -> str:
        return self.session.phase

    @property
    def during(self) -> str:
        """The phase in words ("MAIL FROM", "the login", ...)."""
        return PHASES.get(self.phase, self.phase)

    def make(
        self, cls: type[errors.SMTPMagicError], message: str, **extra: Any
    ) -> errors.SMTPMagicError:
        """The error ``cls`` with ``message`` and the session's host, port, phase and transcript."""
        settings = self.session.settings
        return cls(
            message,
            host=settings.host,
            port=settings.port,
            security=settings.security,
            phase=self.phase,
            transcript=self.session.transcript,
            **extra,
        )


Rule = Callable[[Context], "errors.SMTPMagicError | None"]
"""A rule returns the error it recognises, or None to let the next rule look."""


def reply_text(reply: bytes | str) -> str:
    """A server reply as one line of text."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    # Server text goes into diagnoses: it must not carry phrasing markers of its own.
    return " ".join(strip_markers(text).split())


def nothing_sent(phase: str) -> str:
    """The sentence that says the message was not sent (after the data it may have been)."""
    return "" if phase == "data-end" else " The message was not sent."
