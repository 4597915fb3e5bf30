"""The one boundary where ssl, socket and smtplib exceptions become smtp_magic errors that explain themselves."""

from __future__ import annotations

import smtplib
import socket
import ssl
from typing import TYPE_CHECKING, Any

from smtp_magic import errors
from smtp_magic.smtp import markers

if TYPE_CHECKING:
    from smtp_magic.smtp.session import Session

__all__ = ["explain"]

# OpenSSL reasons for "the peer does not speak TLS" (research/tls-lab.md section 3): a plaintext
# greeting reads as "wrong version number" on OpenSSL 3.0 to 4.0, other bytes as the rest.
_NOT_TLS = {
    "WRONG_VERSION_NUMBER",
    "RECORD_LAYER_FAILURE",
    "PACKET_LENGTH_TOO_LONG",
    "HTTP_REQUEST",
}
_OLD_PROTOCOL = {
    "UNSUPPORTED_PROTOCOL",
    "TLSV1_ALERT_PROTOCOL_VERSION",
    "NO_PROTOCOLS_AVAILABLE",
    "WRONG_SSL_VERSION",
    "VERSION_TOO_LOW",
}
_CLIENT_CERT = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    "SSLV3_ALERT_HANDSHAKE_FAILURE",
    "SSLV3_ALERT_BAD_CERTIFICATE",
    "TLSV1_ALERT_UNKNOWN_CA",
}
_VERIFY_REASONS = {
    9: "is not valid yet (check the clock of this machine and of the server)",
    10: "has expired",
    18: "is self-signed",
    19: "is signed by a CA that is not trusted (a self-signed CA in the chain)",
    20: "is signed by a CA that is not trusted",
    21: "is signed by a CA that is not trusted",
}


def _reply_text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())


def explain(exc: BaseException, session: Session) -> errors.SMTPMagicError:
    """The SMTPMagicError that says what ``exc`` means at ``session.phase``, and what to change."""
    settings = session.settings
    where = settings.address
    phase = session.phase
    security = settings.security
    context: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "security": security,
        "phase": phase,
        "transcript": session.transcript,
    }

    def make(cls: type[errors.SMTPMagicError], message: str, **extra: Any) -> errors.SMTPMagicError:
        return cls(message, **context, **extra)

    # --- our own refusals ---------------------------------------------------------------
    if isinstance(exc, markers.PlaintextAfterSTARTTLS):
        return make(
            errors.STARTTLSInjectionError,
            f"{where} sent {exc.count} byte(s) of plaintext right after agreeing to STARTTLS. "
            "Those bytes could have been injected by an attacker on the path (RFC 3207 section 6; "
            "CVE-2011-0411), so the session was refused before any login or mail. "
            "Try security='tls' on port 465 if the server offers it, or report the server.",
        )
    if isinstance(exc, markers.CredentialsWithoutTLS):
        return make(
            errors.CredentialsRefusedError,
            f"refusing to send the password for {settings.username!r} to {where} over a "
            "connection without TLS: anyone on the path could read it. Use security='starttls' "
            "or 'tls'. Nothing was sent.",
        )
    if isinstance(exc, markers.MessageTooLarge):
        return make(
            errors.MessageRejectedError,
            f"the message is {exc.size:,} bytes but {where} accepts at most {exc.limit:,} bytes "
            "(its SIZE extension), so it was not sent. Send smaller attachments, or a link.",
        )

    # --- TLS ------------------------------------------------------------------------------
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code
        if code in (62, 64):
            names = "host name" if code == 62 else "IP address"
            return make(
                errors.CertificateError,
                f"the certificate of {where} is not valid for the {names} {settings.host!r} "
                f"({exc.verify_message}). Connect using a name the certificate lists (the lab's "
                "certificate lists localhost, 127.0.0.1 and ::1).",
                verify_code=code,
            )
        reason = _VERIFY_REASONS.get(code, f"did not verify ({exc.verify_message})")
        fix = (
            "If you trust it, pass its CA as cafile= (for the lab: cafile=lab.cafile). "
            "smtp_magic never turns verification off."
        )
        if code in (9, 10):
            fix = "Ask the server's administrator to renew it; smtp_magic never turns verification off."
        return make(
            errors.CertificateError,
            f"the certificate of {where} {reason}. {fix}",
            verify_code=code,
        )
    if isinstance(exc, ssl.SSLError):
        reason = str(exc.reason or type(exc).__name__)
        if reason in _NOT_TLS:
            return make(
                errors.SecurityMismatchError,
                f"{where} answered in plaintext SMTP, so it expects STARTTLS, not TLS from the "
                "first byte ([SSL: WRONG_VERSION_NUMBER] is OpenSSL reading a plaintext greeting "
                "as a TLS record). Use security='starttls' (or 'auto').",
                expected="starttls",
            )
        if reason in _OLD_PROTOCOL:
            return make(
                errors.TLSHandshakeError,
                f"{where} offers only TLS versions older than 1.2, which smtp_magic refuses "
                "(RFC 8314 section 4.1). Ask the server's administrator to enable TLS 1.2 or 1.3.",
            )
        if reason in _CLIENT_CERT:
            return make(
                errors.TLSHandshakeError,
                f"{where} rejected the TLS handshake ({reason.lower()}): it probably requires a "
                "client certificate it trusts. Set certfile= (and keyfile=) to one it accepts.",
            )
        if isinstance(exc, ssl.SSLEOFError) or "EOF" in reason:
            # Some servers (asyncio's among them) hang up without the TLS alert that would say why.
            return make(
                errors.TLSHandshakeError,
                f"{where} closed the connection during the TLS handshake without saying why. "
                "It may not speak TLS on this port, may offer only TLS versions older than 1.2, "
                "or may require a client certificate (certfile=); run smtp_magic.probe() to see "
                "what it speaks.",
            )
        return make(
            errors.TLSHandshakeError,
            f"the TLS handshake with {where} failed ({reason.lower().replace('_', ' ')}). "
            "Run smtp_magic.probe() to see what the port speaks.",
        )

    # --- connecting -----------------------------------------------------------------------
    if isinstance(exc, socket.gaierror):
        return make(
            errors.ConnectError,
            f"the host name {settings.host!r} was not found ({exc.strerror}). Check the "
            "spelling, or your network's DNS.",
        )
    if isinstance(exc, ConnectionRefusedError) and phase == "connect":
        return make(
            errors.ConnectError,
            f"nothing is listening on {where} (connection refused). Check the host and port; "
            "for the lab, start it first (LabServer().start() or %smtp_lab start).",
        )

    # --- silence and lost connections ------------------------------------------------------
    timed_out = isinstance(exc, TimeoutError)
    lost = isinstance(exc, smtplib.SMTPServerDisconnected | ConnectionError | EOFError)
    if timed_out or lost:
        seconds = settings.timeout
        if phase == "connect":
            return make(
                errors.ConnectError if not timed_out else errors.SMTPTimeoutError,
                f"could not connect to {where} within {seconds:g} s. A firewall may be "
                "dropping the connection, or the host is down. Check the host and port.",
            )
        if phase == "greeting" and session.security is None:
            if session.speaks_tls():
                return make(
                    errors.SecurityMismatchError,
                    f"{where} sent no SMTP greeting "
                    + (f"in {seconds:g} s" if timed_out else "before closing the connection")
                    + " but completes a TLS handshake: it expects implicit TLS (TLS from the "
                    "first byte, like port 465). Use security='tls' (or 'auto').",
                    expected="tls",
                )
            if timed_out:
                return make(
                    errors.SMTPTimeoutError,
                    f"connected to {where}, but it sent no SMTP greeting in {seconds:g} s and "
                    "does not answer a TLS handshake either. It may not be an SMTP server, or "
                    "is overloaded; check the port, or raise timeout=.",
                )
        if lost and phase in ("greeting", "ehlo") and _silent_since_tls(session):
            # TLS 1.3 ends the client's handshake before the server checks the client's
            # certificate, so a refusal arrives as a hang-up (or alert) at the first read.
            fix = (
                "Check that certfile= holds a certificate this server accepts."
                if settings.certfile
                else "Set certfile= (and keyfile=) to a certificate it accepts."
            )
            return make(
                errors.TLSHandshakeError,
                f"{where} closed the connection right after the TLS handshake, before saying "
                "anything: servers do this when they require a client certificate and did not "
                f"get one they trust. {fix} Otherwise run smtp_magic.probe() to see what the "
                "port speaks.",
            )
        if phase == "data-end":
            return make(
                errors.DeliveryUnknownError,
                f"the connection to {where} "
                + ("timed out" if timed_out else "dropped")
                + " after the message was sent and before the server confirmed it: it may or "
                "may not have been delivered. Check before sending again.",
            )
        if phase == "data":
            return make(
                errors.ConnectionLostError,
                f"the connection to {where} was lost while the message data was being sent, "
                "before its end mark, so the server cannot have accepted it: it was not "
                "delivered and is safe to send again.",
            )
        if timed_out:
            return make(
                errors.SMTPTimeoutError,
                f"{where} did not answer within {seconds:g} s during {_PHASES.get(phase, phase)}. "
                "The server may be overloaded or misbehaving; try again, or raise timeout=."
                + _nothing_sent(phase),
            )
        return make(
            errors.ConnectionLostError,
            f"{where} closed the connection during {_PHASES.get(phase, phase)}."
            + _nothing_sent(phase)
            + " Try again later; if it keeps happening, run smtp_magic.probe() to check the "
            "port's security mode.",
        )

    # --- the server said no ----------------------------------------------------------------
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        text = str(exc)
        if phase == "starttls":
            return make(
                errors.TLSUnavailableError,
                f"{where} did not offer STARTTLS. Refusing to continue in plaintext: a server "
                "that should offer it and does not may be under a downgrade attack (RFC 3207 "
                "section 6). If this server really has no TLS and you send no password, use "
                "security='plain' explicitly.",
            )
        if phase == "auth":
            return make(
                errors.AuthenticationError,
                f"{where} offers no login (AUTH) even over TLS, but a username is set. Remove "
                "the username if the server needs no login, or check the port (submission is "
                "587 or 465).",
            )
        if "SMTPUTF8" in text:
            return make(
                errors.SenderRejectedError,
                f"an address contains non-ASCII characters, but {where} does not support "
                "SMTPUTF8 (RFC 6531), so the message was not sent. Use ASCII addresses.",
            )
        return make(errors.ProtocolError, f"{where}: {text}")
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        recipients = {r: (c, _reply_text(t)) for r, (c, t) in exc.recipients.items()}
        first_code = next(iter(recipients.values()))[0] if recipients else None
        listing = "; ".join(f"{r}: {c} {t}" for r, (c, t) in recipients.items())
        kind = "temporarily " if first_code and 400 <= first_code < 500 else ""
        return make(
            errors.RecipientsRejectedError,
            f"{where} {kind}refused every recipient ({listing}), so nothing was sent. "
            + (
                "Try again later."
                if kind
                else "Check the addresses, and that this server may send to them."
            ),
            recipients=recipients,
            code=first_code,
            reply=listing,
        )
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        reply = _reply_text(exc.smtp_error)
        hint = "Check the username and password"
        if exc.smtp_code == 534 or "application-specific" in reply.lower():
            hint = "The provider wants an app password (or OAuth) instead of the account password"
        return make(
            errors.AuthenticationError,
            f"{where} rejected the login for {settings.username!r} ({exc.smtp_code} {reply}). "
            f"{hint}; the password comes from SMTP_PASSWORD, keyring or a prompt.",
            code=exc.smtp_code,
            reply=reply,
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        code, reply = exc.smtp_code, _reply_text(exc.smtp_error)
        extra = {"code": code, "reply": reply}
        said = f"{code} {reply}"
        if phase == "data-end" and not 400 <= code < 600:
            # The server holds the whole message and answered neither yes (250) nor a clear no:
            # reporting "not delivered" could make the user send it twice.
            return make(
                errors.DeliveryUnknownError,
                f"{where} answered {reply[:80]!r} (code {code}) after the message was sent, which "
                "is neither a confirmation nor a refusal: it may or may not have been delivered. "
                "Check before sending again.",
                **extra,
            )
        if code == -1:
            return make(
                errors.ProtocolError,
                f"{where} sent something that is not an SMTP reply ({reply[:80]!r}) during "
                f"{_PHASES.get(phase, phase)}. Check that the port is an SMTP port.",
            )
        if phase == "starttls":
            return make(
                errors.TLSUnavailableError,
                f"{where} refused STARTTLS ({said}). Refusing to continue in plaintext; try "
                "again later, or use security='tls' on the server's implicit-TLS port (465).",
                **extra,
            )
        if code == 421:
            return make(
                errors.RejectedError,
                f"{where} is closing the connection ({said}): a temporary condition. Try again "
                "later." + _nothing_sent(phase),
                **extra,
            )
        if phase == "mail" and code == 530 and "starttls" in reply.lower():
            return make(
                errors.SecurityMismatchError,
                f"{where} requires STARTTLS before mail ({said}). Use security='starttls' (or "
                "'auto').",
                expected="starttls",
                **extra,
            )
        if phase == "mail" and code == 530:
            return make(
                errors.SenderRejectedError,
                f"{where} requires a login before it accepts mail ({said}). Set username= "
                "(the password comes from SMTP_PASSWORD, keyring or a prompt).",
                **extra,
            )
        if code == 552 or (phase in ("data", "data-end") and "size" in reply.lower()):
            return make(
                errors.MessageRejectedError,
                f"{where} refused the message as too large ({said}). Send smaller attachments, "
                "or a link.",
                **extra,
            )
        if phase == "mail" and 400 <= code < 500:
            return make(
                errors.SenderRejectedError,
                f"{where} temporarily refused the sender ({said}), so nothing was sent. "
                "Try again later.",
                **extra,
            )
        if phase == "mail":
            return make(
                errors.SenderRejectedError,
                f"{where} refused the sender ({said}). Check the From address: many servers "
                "only accept the address of the account you log in with.",
                **extra,
            )
        if phase in ("data", "data-end"):
            return make(
                errors.MessageRejectedError,
                f"{where} refused the message ({said}); it was not delivered."
                + (" The refusal is temporary: try again later." if 400 <= code < 500 else ""),
                **extra,
            )
        if phase == "greeting":
            return make(
                errors.RejectedError,
                f"{where} refused the connection in its greeting ({said}). "
                + (
                    "Try again later, or use another server."
                    if 400 <= code < 500
                    else "It does not accept mail from this client: use another server, or "
                    "ask its administrator."
                ),
                **extra,
            )
        return make(
            errors.RejectedError,
            f"{where} answered {said} during {_PHASES.get(phase, phase)}.",
            **extra,
        )
    if isinstance(exc, smtplib.SMTPException):
        text = str(exc)
        if phase == "auth":
            return make(
                errors.AuthenticationError,
                f"{where} offers no login mechanism smtp_magic supports ({text}). smtp_magic "
                "supports CRAM-MD5, PLAIN and LOGIN.",
            )
        return make(errors.ProtocolError, f"{where}: {text}")
    if isinstance(exc, OSError):
        return make(
            errors.ConnectionLostError,
            f"the connection to {where} failed during {_PHASES.get(phase, phase)} "
            f"({exc.strerror or exc}).{_nothing_sent(phase)}",
        )
    return make(
        errors.ProtocolError,
        f"unexpected {type(exc).__name__} talking to {where} during "
        f"{_PHASES.get(phase, phase)}: {exc}",
    )


_PHASES = {
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


def _silent_since_tls(session: Session) -> bool:
    """Whether TLS was set up and the server has not said a word since."""
    if session.tls is None:
        return False
    lines = session.transcript
    marks = [
        i for i, line in enumerate(lines) if line.direction == "*" and "TLS handshake" in line.text
    ]
    return bool(marks) and not any(line.direction == "S" for line in lines[marks[-1] :])


def _nothing_sent(phase: str) -> str:
    if phase in ("data-end",):
        return ""
    return " The message was not sent."
