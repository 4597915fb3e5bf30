"""The lab's events as one line each (a client that rejects the lab's CA, say), never a traceback."""

from __future__ import annotations

import logging
import ssl
from typing import Any

__all__ = ["describe_failure", "distrusts", "log"]

log = logging.getLogger("smtp_magic.lab")
"""One line per event. Without logging configured, Python prints WARNING lines to stderr (the
terminal of ``smtp-magic serve``, the cell of a notebook), which is where a student looks."""

# OpenSSL alerts a client sends when it does not trust the server's certificate (RFC 8446
# section 6.2): what a client without the lab's CA answers to the handshake.
_DISTRUST = {
    "TLSV1_ALERT_UNKNOWN_CA": "unknown CA",
    "SSLV3_ALERT_BAD_CERTIFICATE": "bad certificate",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "certificate unknown",
    "TLSV1_ALERT_DECRYPT_ERROR": "certificate not trusted",
}


def distrusts(error: BaseException) -> bool:
    """Whether ``error`` is a client's alert saying it does not trust the lab's certificate."""
    return isinstance(error, ssl.SSLError) and str(error.reason or "") in _DISTRUST


def _peer(peer: Any) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = f"[{peer[0]}]" if ":" in str(peer[0]) else str(peer[0])
        return f"{host}:{peer[1]}"
    return str(peer)


def describe_failure(error: BaseException, peer: Any, cafile: str) -> str:
    """One line for an exception that ended a lab session, saying what the client should do."""
    client = f"client {_peer(peer)}"
    cause = error.__cause__ if error.__cause__ is not None else error
    if isinstance(cause, ssl.SSLError):
        reason = str(cause.reason or type(cause).__name__)
        if reason in _DISTRUST:
            return (
                f"{client} rejected the lab's certificate ({_DISTRUST[reason]}): "
                f"give it the lab's CA file, {cafile}"
            )
        return f"{client}: the TLS handshake failed ({reason.lower().replace('_', ' ')})"
    if cause is not error:  # aiosmtpd's TLSSetupException, from something not ssl
        return f"{client}: STARTTLS failed ({type(cause).__name__}: {cause})"
    text = " ".join(str(error).split()) or "no details"
    return f"{client}: the session ended with {type(error).__name__} ({text[:200]})"
