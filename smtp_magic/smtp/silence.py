"""Diagnosis rules for silence and lost connections: timeouts, hang-ups, and where they happened."""

from __future__ import annotations

import smtplib

from smtp_magic import errors
from smtp_magic.phrasing import action, other, setting
from smtp_magic.smtp import markers
from smtp_magic.smtp.diagnosis import Context, Rule, nothing_sent

__all__ = ["RULES"]


def _quiet(c: Context) -> tuple[bool, bool]:
    """(timed out, connection lost) for the context's exception."""
    exc = c.exc
    return isinstance(exc, TimeoutError), isinstance(
        exc, smtplib.SMTPServerDisconnected | ConnectionError | EOFError
    )


def _while_connecting(c: Context) -> errors.SMTPMagicError | None:
    timed_out, lost = _quiet(c)
    if not (timed_out or lost) or c.phase != "connect":
        return None
    if isinstance(c.exc, markers.LookupTimeout):
        return c.make(
            errors.SMTPTimeoutError,
            f"looking up the name {c.settings.host} did not finish within "
            f"{c.settings.timeout:g} s, so no connection to {c.where} was tried: the DNS "
            "resolver this machine uses is slow or does not answer. Check the host name and "
            f"this machine's DNS, give the server's IP address as {setting('host')}, or allow "
            f"a longer {setting('timeout')}.",
        )
    return c.make(
        errors.ConnectError if not timed_out else errors.SMTPTimeoutError,
        f"could not connect to {c.where} within {c.settings.timeout:g} s. A firewall may be "
        "dropping the connection, or the host is down. Check the host and port.",
    )


def _tls_first(c: Context) -> errors.SMTPMagicError | None:
    if not isinstance(c.exc, markers.TLSFirst):
        return None
    return c.make(
        errors.SecurityMismatchError,
        f"{c.where} sent no SMTP greeting within {c.exc.seconds:g} s, and a second connection "
        "completes a TLS handshake: it expects implicit TLS (TLS from the first byte, like port "
        f"465). Use {setting('security', 'tls')} (or {other('security', 'auto')}).",
        expected="tls",
    )


def _no_greeting(c: Context) -> errors.SMTPMagicError | None:
    timed_out, lost = _quiet(c)
    if not (timed_out or lost) or c.phase != "greeting" or c.session.security is not None:
        return None
    seconds = c.settings.timeout
    if c.session.speaks_tls():
        return c.make(
            errors.SecurityMismatchError,
            f"{c.where} sent no SMTP greeting "
            + (f"in {seconds:g} s" if timed_out else "before closing the connection")
            + " but completes a TLS handshake: it expects implicit TLS (TLS from the "
            "first byte, like port 465). "
            f"Use {setting('security', 'tls')} (or {other('security', 'auto')}).",
            expected="tls",
        )
    if not timed_out:
        return None
    return c.make(
        errors.SMTPTimeoutError,
        f"connected to {c.where}, but it sent no SMTP greeting in {seconds:g} s and "
        "does not answer a TLS handshake either. It may not be an SMTP server, or "
        f"is overloaded; check the port, or raise {setting('timeout')}.",
    )


def _hung_up_after_tls(c: Context) -> errors.SMTPMagicError | None:
    _, lost = _quiet(c)
    if not lost or c.phase not in ("greeting", "ehlo") or not _silent_since_tls(c):
        return None
    # TLS 1.3 ends the client's handshake before the server checks the client's certificate,
    # so a refusal arrives as a hang-up (or alert) at the first read.
    fix = (
        f"Check that {setting('certfile')} holds a certificate this server accepts."
        if c.settings.certfile
        else f"Set {setting('certfile')} (and {setting('keyfile')}) to a certificate it accepts."
    )
    return c.make(
        errors.TLSHandshakeError,
        f"{c.where} closed the connection right after the TLS handshake, before saying "
        "anything: servers do this when they require a client certificate and did not "
        f"get one they trust. {fix} Otherwise run {action('probe', c.where)} to see what "
        "the port speaks.",
    )


def _after_the_data(c: Context) -> errors.SMTPMagicError | None:
    timed_out, lost = _quiet(c)
    if not (timed_out or lost) or c.phase != "data-end":
        return None
    return c.make(
        errors.DeliveryUnknownError,
        f"the connection to {c.where} "
        + ("timed out" if timed_out else "dropped")
        + " after the message was sent and before the server confirmed it: it may or "
        "may not have been delivered. Check before sending again.",
    )


def _during_the_data(c: Context) -> errors.SMTPMagicError | None:
    timed_out, lost = _quiet(c)
    if not (timed_out or lost) or c.phase != "data":
        return None
    return c.make(
        errors.ConnectionLostError,
        f"the connection to {c.where} was lost while the message data was being sent, "
        "before its end mark, so the server cannot have accepted it: it was not "
        "delivered and is safe to send again.",
    )


def _elsewhere(c: Context) -> errors.SMTPMagicError | None:
    timed_out, lost = _quiet(c)
    if timed_out:
        return c.make(
            errors.SMTPTimeoutError,
            f"{c.where} did not answer within {c.settings.timeout:g} s during {c.during}. "
            f"The server may be overloaded or misbehaving; try again, or raise {setting('timeout')}."
            + nothing_sent(c.phase),
        )
    if not lost:
        return None
    return c.make(
        errors.ConnectionLostError,
        f"{c.where} closed the connection during {c.during}."
        + nothing_sent(c.phase)
        + f" Try again later; if it keeps happening, run {action('probe', c.where)} to check "
        "the port's security mode.",
    )


def _silent_since_tls(c: Context) -> bool:
    """Whether TLS was set up and the server has not said a word since."""
    if c.session.tls is None:
        return False
    lines = c.session.transcript
    marks = [
        i for i, line in enumerate(lines) if line.direction == "*" and "TLS handshake" in line.text
    ]
    return bool(marks) and not any(line.direction == "S" for line in lines[marks[-1] :])


RULES: list[Rule] = [
    _tls_first,
    _while_connecting,
    _no_greeting,
    _hung_up_after_tls,
    _after_the_data,
    _during_the_data,
    _elsewhere,
]
