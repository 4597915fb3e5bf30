"""Diagnosis rules for our own refusals, TLS and connecting (see ``smtp/diagnose.py``)."""

from __future__ import annotations

import socket
import ssl

from smtp_magic import errors
from smtp_magic.phrasing import action, other, setting
from smtp_magic.smtp import markers
from smtp_magic.smtp.diagnosis import Context, Rule

__all__ = ["RULES"]

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

# --- our own refusals -------------------------------------------------------------------------


def _injection(c: Context) -> errors.SMTPMagicError | None:
    if not isinstance(c.exc, markers.PlaintextAfterSTARTTLS):
        return None
    return c.make(
        errors.STARTTLSInjectionError,
        f"{c.where} sent {c.exc.count} byte(s) of plaintext right after agreeing to STARTTLS. "
        "Those bytes could have been injected by an attacker on the path (RFC 3207 section 6; "
        "CVE-2011-0411), so the session was refused before any login or mail. "
        f"Try {setting('security', 'tls')} on port 465 if the server offers it, or report the "
        "server.",
    )


def _credentials_without_tls(c: Context) -> errors.SMTPMagicError | None:
    if not isinstance(c.exc, markers.CredentialsWithoutTLS):
        return None
    return c.make(
        errors.CredentialsRefusedError,
        f"refusing to send the password for {c.settings.username!r} to {c.where} over a "
        "connection without TLS: anyone on the path could read it. Use "
        f"{setting('security', 'starttls')} or {other('security', 'tls')}. Nothing was sent.",
    )


def _too_large(c: Context) -> errors.SMTPMagicError | None:
    if not isinstance(c.exc, markers.MessageTooLarge):
        return None
    return c.make(
        errors.MessageRejectedError,
        f"the message is {c.exc.size:,} bytes but {c.where} accepts at most {c.exc.limit:,} bytes "
        "(its SIZE extension), so it was not sent. Send smaller attachments, or a link.",
    )


# --- TLS ----------------------------------------------------------------------------------------


def _certificate(c: Context) -> errors.SMTPMagicError | None:
    exc = c.exc
    if not isinstance(exc, ssl.SSLCertVerificationError):
        return None
    code = exc.verify_code
    if code in (62, 64):
        names = "host name" if code == 62 else "IP address"
        return c.make(
            errors.CertificateError,
            f"the certificate of {c.where} is not valid for the {names} {c.settings.host!r} "
            f"({exc.verify_message}). Connect using a name the certificate lists (the lab's "
            "certificate lists localhost, 127.0.0.1 and ::1).",
            verify_code=code,
        )
    reason = _VERIFY_REASONS.get(code, f"did not verify ({exc.verify_message})")
    fix = (
        f"If you trust it, pass its CA as {setting('cafile')} (for the lab: "
        f"{action('lab_cafile')}). smtp_magic never turns verification off."
    )
    if code in (9, 10):
        fix = "Ask the server's administrator to renew it; smtp_magic never turns verification off."
    return c.make(
        errors.CertificateError, f"the certificate of {c.where} {reason}. {fix}", verify_code=code
    )


def _tls_failure(c: Context) -> errors.SMTPMagicError | None:
    exc = c.exc
    if not isinstance(exc, ssl.SSLError):
        return None
    reason = str(exc.reason or type(exc).__name__)
    if reason in _NOT_TLS:
        return c.make(
            errors.SecurityMismatchError,
            f"{c.where} answered in plaintext SMTP, so it expects STARTTLS, not TLS from the "
            "first byte ([SSL: WRONG_VERSION_NUMBER] is OpenSSL reading a plaintext greeting "
            "as a TLS record). "
            f"Use {setting('security', 'starttls')} (or {other('security', 'auto')}).",
            expected="starttls",
        )
    if reason in _OLD_PROTOCOL:
        return c.make(
            errors.TLSHandshakeError,
            f"{c.where} offers only TLS versions older than 1.2, which smtp_magic refuses "
            "(RFC 8314 section 4.1). Ask the server's administrator to enable TLS 1.2 or 1.3.",
        )
    if reason in _CLIENT_CERT:
        return c.make(
            errors.TLSHandshakeError,
            f"{c.where} rejected the TLS handshake ({reason.lower()}): it probably requires a "
            f"client certificate it trusts. Set {setting('certfile')} (and {setting('keyfile')}) "
            "to one it accepts.",
        )
    if isinstance(exc, ssl.SSLEOFError) or "EOF" in reason:
        # Some servers (asyncio's among them) hang up without the TLS alert that would say why.
        return c.make(
            errors.TLSHandshakeError,
            f"{c.where} closed the connection during the TLS handshake without saying why. "
            "It may not speak TLS on this port, may offer only TLS versions older than 1.2, "
            f"or may require a client certificate ({setting('certfile')}); run "
            f"{action('probe', c.where)} to see what it speaks.",
        )
    return c.make(
        errors.TLSHandshakeError,
        f"the TLS handshake with {c.where} failed ({reason.lower().replace('_', ' ')}). "
        f"Run {action('probe', c.where)} to see what the port speaks.",
    )


# --- connecting ---------------------------------------------------------------------------------


def _unknown_host(c: Context) -> errors.SMTPMagicError | None:
    if not isinstance(c.exc, socket.gaierror):
        return None
    return c.make(
        errors.ConnectError,
        f"the host name {c.settings.host!r} was not found ({c.exc.strerror}). Check the "
        "spelling, or your network's DNS.",
    )


def _refused(c: Context) -> errors.SMTPMagicError | None:
    if not (isinstance(c.exc, ConnectionRefusedError) and c.phase == "connect"):
        return None
    return c.make(
        errors.ConnectError,
        f"nothing is listening on {c.where} (connection refused)."
        + _defaults_said(c)
        + f" For the lab, start it first ({action('start_lab')}).",
    )


def _defaults_said(c: Context) -> str:
    """Which of host and port nobody set (they are defaults), and how to set them."""
    settings = c.settings
    unset = [name for name in ("host", "port") if name in settings.defaulted]
    if not unset:
        return f" Check the host and port ({setting('host')}, {setting('port')})."
    what = {
        "host": f"the host {settings.host} is the default (no host was set)",
        "port": f"port {settings.port} is the default for security={settings.security!r} "
        "(no port was set)",
    }
    variables = " and ".join(f"SMTP_{name.upper()}" for name in unset)
    return (
        f" Nothing chose this server: {' and '.join(what[n] for n in unset)}. Set "
        + " and ".join(setting(name) for name in unset)
        + f" (or {variables}) to your server's."
    )


RULES: list[Rule] = [
    _injection,
    _credentials_without_tls,
    _too_large,
    _certificate,
    _tls_failure,
    _unknown_host,
    _refused,
]
