"""Replies read strictly, and a reply stream kept in step: what a mail transaction trusts the server to say.

A reply that is not well formed is reported with code -1, never with a code the server did not
send (smtplib invents "500 Line too long."). Bytes the server sends before it was asked anything
mean the stream is out of step, and so does a reply that does not fit its command: the session
then ends, so that no reply is ever attributed to the wrong command or message.
"""

from __future__ import annotations

import contextlib
import select
import smtplib
import socket
import ssl
from collections.abc import Iterator

from smtp_magic.report import TranscriptLine
from smtp_magic.smtp.wire import Wire

__all__ = ["check_in_step", "misfit", "read_reply", "unknown_on_failure"]

MAX_LINE = 4096  # RFC 5321 section 4.5.3.1.5: a reply line is at most 512 octets; a margin
MAX_LINES = 100  # a reply to MAIL, RCPT, DATA or the data has one line; allow some more


def read_reply(wire: Wire) -> tuple[int, bytes]:
    """The next reply, read strictly: every line "NNN-text" or "NNN text", all with one code.

    Anything else (a line that is not a reply, a multi-line reply whose lines carry different
    codes, an over-long line or an endless reply) raises SMTPResponseException with code -1.
    """
    lines: list[bytes] = []
    code = -1
    while True:
        try:
            line = wire._readline()
        except smtplib.SMTPResponseException:  # smtplib's "500 Line too long." is not the server's
            raise smtplib.SMTPResponseException(
                -1, b"a reply line longer than RFC 5321 allows"
            ) from None
        wire.transcript.append(
            TranscriptLine("S", line.rstrip(b"\r\n").decode("utf-8", "replace"), wire.encrypted)
        )
        head, mark = line[:3], line[3:4]
        if len(line) > MAX_LINE:
            raise smtplib.SMTPResponseException(-1, b"a reply line longer than RFC 5321 allows")
        if not (head.isdigit() and mark in (b" ", b"-", b"\r", b"\n")):
            raise smtplib.SMTPResponseException(-1, line.rstrip(b"\r\n")[:200])
        if lines and int(head) != code:
            raise smtplib.SMTPResponseException(
                -1, f"a reply whose lines carry different codes ({code}, {head.decode()})".encode()
            )
        code = int(head)
        lines.append(line[4:].strip(b" \t\r\n"))
        if mark != b"-":
            return code, b"\n".join(lines)
        if len(lines) >= MAX_LINES:
            raise smtplib.SMTPResponseException(-1, b"a reply of too many lines")


def check_in_step(wire: Wire) -> None:
    """Before a new command: raise if the server sent anything unasked, or closed the connection.

    Issue 11, finding 8: a server that answers one command twice makes every later reply
    belong to the command before; reading on would report a message as refused that was never
    handed over. One ``select`` call when all is well.

    Raises:
        smtplib.SMTPServerDisconnected: the server closed the connection (between messages).
        smtplib.SMTPResponseException: bytes were waiting (code -1): the stream is out of step.
    """
    sock = wire.sock
    stray: bytes | None = bytes(wire.buffer)
    if not stray and sock is not None:
        pending = sock.pending() if isinstance(sock, ssl.SSLSocket) else 0
        if pending or select.select([sock], [], [], 0)[0]:
            stray = _peek(sock)
    if stray is None:
        raise smtplib.SMTPServerDisconnected("the server closed the connection")
    if stray:
        wire.transcript.append(
            TranscriptLine("S", stray[:200].decode("utf-8", "replace"), wire.encrypted)
        )
        raise misfit("(no command)", -1, stray[:200])


def _peek(sock: socket.socket) -> bytes | None:
    """Read what is waiting without blocking: b"" if nothing (TLS records only), None at EOF."""
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        data = sock.recv(65536)
    except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
        return b""  # for TLS: a record that held no data (a session ticket, say)
    except OSError:
        return None
    finally:
        sock.settimeout(timeout)
    return data if data else None


def misfit(command: str, code: int, text: bytes) -> smtplib.SMTPResponseException:
    """The error for a reply that does not belong to ``command``: the stream is out of step."""
    said = text.decode("utf-8", "replace")[:120]
    verb = command if command.startswith("the ") else command.split(" ", 1)[0]
    return smtplib.SMTPResponseException(
        -1, f"reply {code} {said!r} does not fit {verb}: out of step".encode()
    )


@contextlib.contextmanager
def unknown_on_failure() -> Iterator[None]:
    """After the end mark, the phase decides first: any failure means "delivery unknown".

    Issue 11, findings 2 and 3: a TLS error (a corrupted record, plaintext injected into the
    stream) or a reply that cannot be read says nothing about whether the server kept the
    message; reporting it as "not sent" would make the user send it twice. A timeout or a lost
    connection already reads as "unknown" at this phase; the rest becomes an unreadable reply
    (code -1), which diagnose also reports as DeliveryUnknownError.
    """
    try:
        yield
    except (TimeoutError, ConnectionError, smtplib.SMTPServerDisconnected):
        raise
    except (OSError, ValueError, smtplib.SMTPResponseException) as exc:
        said = exc.smtp_error if isinstance(exc, smtplib.SMTPResponseException) else str(exc)
        text = said if isinstance(said, bytes) else str(said).encode()
        raise smtplib.SMTPResponseException(-1, f"{type(exc).__name__}: ".encode() + text) from exc
