"""Lab personas: the lab greets, answers EHLO and refuses like Gmail or Microsoft 365.

A persona changes what a lab role says, not how it works underneath (aiosmtpd, the trustme
certificates, the demo account). It has a greeting and EHLO lines copied from the real service,
the AUTH mechanisms it offers (XOAUTH2, and OAUTHBEARER for Gmail, through
:class:`~smtp_magic.lab.oauth_smtp.OAuthLogins`), and a table of refusals with the service's own
texts, each taken from a public log cited beside it. Tell the lab to refuse, and every later
attempt gets that refusal at the step where the real service gives it::

    lab.refuse("app-password")    # Gmail: 534-5.7.9 Application-specific password required
    lab.refuse(None)              # back to normal
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiosmtpd.smtp import SMTP, AuthResult

__all__ = ["PERSONAS", "Persona", "PersonaBehaviour", "Refusal"]

Phase = Literal["ehlo", "auth", "mail", "data"]


@dataclass(frozen=True)
class Refusal:
    """A refusal the persona can give: where (phase) and the exact reply lines.

    Attributes:
        phase: "ehlo" (and the connection closes), "auth", "mail" (MAIL FROM) or "data" (after
            the message, as a 5xx/4xx to the final dot).
        lines: The reply, one string per line, each with its code ("535-5.7.8 ...").
        what: A few words for tables and notebooks.
    """

    phase: Phase
    lines: tuple[str, ...]
    what: str

    @property
    def code(self) -> int:
        """The reply code."""
        return int(self.lines[-1][:3])

    @property
    def text(self) -> str:
        """The reply text without codes, lines joined by newlines (as smtplib reports it)."""
        return "\n".join(line[4:] for line in self.lines)


@dataclass(frozen=True)
class Persona:
    """How one service greets, answers EHLO, offers AUTH and refuses.

    Attributes:
        key: "gmail" or "microsoft365" (also the provider key of :mod:`smtp_magic.discovery.providers`).
        name: The service's name.
        hostname: The name in its greeting and EHLO reply.
        ident: The rest of its greeting after the host name.
        hello: The text of its first EHLO line (``{client}`` is the client's address).
        extensions: Its EHLO extensions other than SIZE, STARTTLS and AUTH, in its order.
        size: Its SIZE limit, in bytes.
        mechanisms: The AUTH mechanisms it offers (after TLS).
        oauth_style: How its XOAUTH2 refuses a token ("google" or "microsoft").
        refusals: Name -> the refusal, with the service's text.
        common: The refusal users meet most (for tutorials).
    """

    key: str
    name: str
    hostname: str
    ident: str
    hello: str
    extensions: tuple[str, ...]
    size: int
    mechanisms: tuple[str, ...]
    oauth_style: Literal["google", "microsoft"]
    refusals: Mapping[str, Refusal] = field(repr=False)
    common: str = ""


_GSMTP = "lab - gsmtp"  # where Gmail puts a request id

GMAIL = Persona(
    key="gmail",
    name="Gmail",
    hostname="smtp.gmail.com",
    # Greeting and EHLO from a real session (PHPMailer/PHPMailer#1384, WWBN/AVideo#3212).
    # CHUNKING, PLAIN-CLIENTTOKEN and XOAUTH are left out: the lab does not implement them.
    ident=f"ESMTP {_GSMTP}",
    hello="smtp.gmail.com at your service, [{client}]",
    extensions=("8BITMIME", "ENHANCEDSTATUSCODES", "PIPELINING", "SMTPUTF8"),
    size=35882577,
    mechanisms=("LOGIN", "PLAIN", "XOAUTH2", "OAUTHBEARER"),
    oauth_style="google",
    common="app-password",
    refusals={
        # PHPMailer#1708, nodemailer#1116
        "app-password": Refusal(
            "auth",
            (
                "534-5.7.9 Application-specific password required. Learn more at",
                f"534 5.7.9  https://support.google.com/mail/?p=InvalidSecondFactor {_GSMTP}",
            ),
            "app password required",
        ),
        # jef/streetmerchant#1190, swiftmailer#1083
        "wrong-password": Refusal(
            "auth",
            (
                "535-5.7.8 Username and Password not accepted. Learn more at",
                f"535 5.7.8  https://support.google.com/mail/?p=BadCredentials {_GSMTP}",
            ),
            "wrong password",
        ),
        # dawidd6/action-send-mail#196 (421-4.7.0 ... (EHLO)), calcom/cal.diy#5254
        "throttled": Refusal(
            "ehlo",
            (f"421 4.7.0 Try again later, closing connection. (EHLO) {_GSMTP}",),
            "throttled (421)",
        ),
        # woowacourse-teams/2025-ah-madda#635, onepub-dev/onepub#543
        "daily-limit": Refusal(
            "mail",
            (
                "550-5.4.5 Daily user sending limit exceeded. For more information on Gmail",
                "550-5.4.5 sending limits go to",
                f"550 5.4.5  https://support.google.com/a/answer/166852 {_GSMTP}",
            ),
            "daily sending limit",
        ),
        # nylas/nylas-mail#1296
        "blocked-content": Refusal(
            "data",
            (
                "552-5.7.0 This message was blocked because its content presents a potential",
                "552-5.7.0 security issue. Please visit",
                f"552 5.7.0  https://support.google.com/mail/answer/6590 {_GSMTP}",
            ),
            "blocked attachment",
        ),
    },
)

_MS = "[LAB0101CA0001.namprd00.prod.outlook.com]"  # where Microsoft names the front-end server

MICROSOFT365 = Persona(
    key="microsoft365",
    name="Microsoft 365",
    hostname="LAB0101CA0001.outlook.office365.com",
    # Greeting and EHLO from simonrob/email-oauth2-proxy#95 (the date left out, so notebook output
    # is stable); AUTH LOGIN XOAUTH2 after STARTTLS. BINARYMIME and CHUNKING are left out: the
    # lab does not implement BDAT.
    ident="Microsoft ESMTP MAIL Service ready",
    hello="LAB0101CA0001.outlook.office365.com Hello [{client}]",
    extensions=("PIPELINING", "DSN", "ENHANCEDSTATUSCODES", "8BITMIME", "SMTPUTF8"),
    size=157286400,
    mechanisms=("LOGIN", "XOAUTH2"),
    oauth_style="microsoft",
    common="smtp-auth-disabled",
    refusals={
        # simonrob/email-oauth2-proxy#193
        "smtp-auth-disabled": Refusal(
            "auth",
            (
                "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled "
                f"for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. {_MS}",
            ),
            "SMTP AUTH disabled",
        ),
        # MicrosoftDocs/OfficeDocs-Exchange PR#2648
        "wrong-password": Refusal(
            "auth",
            (
                "535 5.7.139 Authentication unsuccessful, the user credentials were incorrect. "
                + _MS,
            ),
            "wrong password",
        ),
        # OpenCTI-Platform/opencti#12069
        "basic-auth-retired": Refusal(
            "auth",
            (f"550 5.7.30 Basic authentication is not supported for Client Submission. {_MS}",),
            "basic auth retired",
        ),
        # gophish/gophish#1600, swiftmailer#1030
        "send-as": Refusal(
            "data",
            (f"550 5.7.60 SMTP; Client does not have permissions to send as this sender {_MS}",),
            "send-as denied",
        ),
        # timeoff-management#308
        "throttled": Refusal(
            "data",
            ("432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded " + _MS,),
            "throttled (432)",
        ),
        # MicrosoftDocs/OfficeDocs-Support#1150
        "daily-limit": Refusal(
            "data",
            (
                "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed "
                "to process message due to a permanent exception with message Cannot submit "
                "message. " + _MS,
            ),
            "daily recipient limit",
        ),
    },
)

PERSONAS: Mapping[str, Persona] = {"gmail": GMAIL, "microsoft365": MICROSOFT365}


class PersonaBehaviour:
    """What a lab role does differently while it plays a persona; shared by the roles of one lab.

    Thread-safe: the lab's event loop reads it while the user's thread calls :meth:`refuse`.
    """

    def __init__(self, persona: Persona) -> None:
        self.persona = persona
        self._lock = threading.Lock()
        self._refusal: str | None = None

    def refuse(self, kind: str | None) -> None:
        """Give refusal ``kind`` from now on (None: stop refusing).

        Raises:
            ValueError: ``kind`` is not one of this persona's refusals.
        """
        if kind is not None and kind not in self.persona.refusals:
            known = ", ".join(sorted(self.persona.refusals))
            raise ValueError(f"{self.persona.name} has no refusal {kind!r}: use one of {known}.")
        with self._lock:
            self._refusal = kind

    @property
    def refusing(self) -> str | None:
        """The refusal in force, or None."""
        with self._lock:
            return self._refusal

    def active(self, phase: Phase) -> Refusal | None:
        """The refusal to give at ``phase``, if one is in force there."""
        kind = self.refusing
        refusal = self.persona.refusals.get(kind) if kind else None
        return refusal if refusal is not None and refusal.phase == phase else None

    def smtp_kwargs(self) -> dict[str, Any]:
        """aiosmtpd SMTP arguments: the persona's host name and greeting."""
        return {"hostname": self.persona.hostname, "ident": self.persona.ident}

    def excluded(self, offered: list[str]) -> list[str]:
        """AUTH mechanisms aiosmtpd would offer that the persona does not."""
        return [m for m in offered if m not in self.persona.mechanisms]

    def ehlo(self, server: SMTP, lines: list[str]) -> list[str]:
        """The persona's EHLO reply, keeping aiosmtpd's STARTTLS and AUTH state."""
        peer = server.transport.get_extra_info("peername") if server.transport else None
        client = peer[0] if peer else "127.0.0.1"
        keep = [line[4:] for line in lines if line[4:].startswith("STARTTLS")]
        offered = {m for line in lines if line[4:].startswith("AUTH ") for m in line[9:].split()}
        if offered:  # in the service's order, not aiosmtpd's alphabetical one
            keep.append("AUTH " + " ".join(m for m in self.persona.mechanisms if m in offered))
        body = [self.persona.hello.format(client=client), f"SIZE {self.persona.size}"]
        body += [*self.persona.extensions, *keep]
        return [f"250-{item}" for item in body[:-1]] + [f"250 {body[-1]}"]

    async def push(self, server: SMTP, refusal: Refusal) -> None:
        """Send a refusal's lines; for a 421, close the connection as RFC 5321 section 3.8 says."""
        for line in refusal.lines:
            await server.push(line)
        if refusal.code == 421 and server.transport is not None:
            server.transport.close()

    def reply(self, phase: Phase) -> str | None:
        """The refusal's reply for ``phase`` as one string (lines joined by CRLF), or None.

        aiosmtpd pushes a handler's or authenticator's reply as it is, so embedded CRLFs make
        the multi-line reply real services send.
        """
        refusal = self.active(phase)
        return "\r\n".join(refusal.lines) if refusal else None

    def auth_refusal(self) -> AuthResult | None:
        """An AuthResult that fails with the persona's text, when an AUTH refusal is in force."""
        message = self.reply("auth")
        return (
            None if message is None else AuthResult(success=False, handled=False, message=message)
        )
