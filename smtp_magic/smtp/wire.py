"""The wire: smtplib.SMTP with one deadline per phase, a redacted transcript and canonical commands."""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
import time
from collections.abc import Sequence
from typing import Literal

from smtp_magic.printable import printable
from smtp_magic.report import TranscriptLine
from smtp_magic.secret import Secret

__all__ = ["Wire", "ehlo_name", "pending_bytes", "send_body"]

CHUNK = 1 << 20  # bytes of message data per sendall, so a large message is never copied whole
_PIECE = 1 << 16  # bytes per TLS write, between deadline checks
_REDACTED = b"<redacted>"

MAX_REPLY_LINES = 1000
"""Lines one reply may have. RFC 5321 sets none; real EHLO replies have a few dozen."""

MAX_REPLY_BYTES = 1000 * 512
"""Bytes one reply may have: MAX_REPLY_LINES lines of RFC 5321's 512 octets (section 4.5.3.1.5)."""

TRANSCRIPT_LINES_PER_REPLY = 50
"""Lines of one reply the transcript keeps: the first ones and the last; a note counts the rest."""
_NOT_PRINTABLE_ASCII = re.compile(rb"[^\x20-\x7e]")


class Wire(smtplib.SMTP):
    """smtplib.SMTP with a deadline per phase, a redacted transcript and strict STARTTLS.

    smtplib's own timeout applies to each recv, so a server that drips one byte a second never
    times out; here every phase has one deadline for all of its reads and writes. Commands go
    out in their canonical upper-case form (``MAIL FROM:<a@b>``), whatever the Python version:
    Python 3.13 changed smtplib to send ``mail from:`` (gh-65495), and a transcript that
    teaches must read the same everywhere.
    """

    def __init__(self, local_hostname: str | None) -> None:
        super().__init__(local_hostname=local_hostname or "localhost")
        self.transcript: list[TranscriptLine] = []
        self.deadline = float("inf")
        self.buffer = bytearray()
        self.mechanism: str | None = None
        self._sent_secrets: list[Secret] = []  # every encoding of a secret sent: redact echoes

    # -- the transcript -------------------------------------------------------------------
    def note(self, text: str) -> None:
        self.transcript.append(TranscriptLine("*", text, self.encrypted))

    @property
    def encrypted(self) -> bool:
        return isinstance(self.sock, ssl.SSLSocket)

    def _record(self, direction: Literal["C", "S"], line: bytes) -> None:
        text = line.rstrip(b"\r\n").decode("utf-8", "replace")
        self.transcript.append(TranscriptLine(direction, text, self.encrypted))

    def _redact(self, line: bytes) -> bytes:
        for secret in self._sent_secrets:
            if secret.reveal() in line:
                line = line.replace(secret.reveal(), _REDACTED)
        return line

    # -- deadline-aware I/O ---------------------------------------------------------------
    def remaining(self) -> float:
        """Seconds left before the phase deadline; TimeoutError once it has passed."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the phase deadline passed")
        return remaining

    def fill(self) -> None:
        """Read more bytes from the server before the deadline."""
        assert self.sock is not None
        self.sock.settimeout(min(self.remaining(), 3600.0))
        chunk = self.sock.recv(65536)
        if not chunk:
            self.close()
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        self.buffer += chunk

    def _readline(self) -> bytes:
        limit = smtplib._MAXLINE  # type: ignore[attr-defined]
        while True:
            end = self.buffer.find(b"\n")
            if end > limit or (end < 0 and len(self.buffer) > limit):
                # smtplib invents "500 Line too long." here: a code the server never sent, which
                # reads as a refusal. Code -1, as for any reply that is not well formed, however
                # the line arrived (whole, or in pieces).
                raise smtplib.SMTPResponseException(
                    -1, f"a reply line longer than {limit:,} bytes".encode()
                )
            if end >= 0:
                line = bytes(self.buffer[: end + 1])
                del self.buffer[: end + 1]
                # Redacted while still raw bytes, then made printable: whoever reads a reply
                # (getreply, stream.read_reply) gets it without secrets or escape sequences.
                return _printable_line(self._redact(line) if self._sent_secrets else line)
            self.fill()

    def getreply(self) -> tuple[int, bytes]:
        lines: list[bytes] = []
        size = 0
        while True:
            line = self._readline()
            last = line[3:4] != b"-"
            if len(lines) < TRANSCRIPT_LINES_PER_REPLY - 1:
                self._record("S", line)
            elif last:
                self._omitted(len(lines) - TRANSCRIPT_LINES_PER_REPLY + 1)
                self._record("S", line)
            try:
                code = int(line[:3])
            except ValueError:
                raise smtplib.SMTPResponseException(-1, line.rstrip(b"\r\n")) from None
            lines.append(line[4:].strip(b" \t\r\n"))
            size += len(line)
            if last:
                break
            if len(lines) >= MAX_REPLY_LINES or size > MAX_REPLY_BYTES:
                # A server that never ends its reply would otherwise fill memory (and the
                # transcript an error keeps) until the deadline. Code -1, as for any reply
                # that is not well formed (see stream.read_reply): never a code it did not send.
                self._omitted(len(lines) - TRANSCRIPT_LINES_PER_REPLY + 1)
                raise smtplib.SMTPResponseException(
                    -1, f"a reply that went on for {len(lines):,} lines without ending".encode()
                )
        return code, b"\n".join(lines)

    def _omitted(self, count: int) -> None:
        if count > 0:
            self.note(f"({count} more lines of this reply not shown)")

    def sendall(self, data: bytes | memoryview) -> None:
        if self.sock is None:
            raise smtplib.SMTPServerDisconnected("please run connect() first")
        if not isinstance(self.sock, ssl.SSLSocket):
            # Since Python 3.5 a plain socket's timeout bounds the whole sendall.
            self.sock.settimeout(min(self.remaining(), 3600.0))
            self.sock.sendall(data)
            return
        # SSLSocket.sendall applies the timeout to each write instead, so a server that reads
        # slowly could stretch the phase: write in pieces, checking the deadline before each.
        view = memoryview(data)
        while view:
            self.sock.settimeout(min(self.remaining(), 3600.0))
            sent = self.sock.send(view[:_PIECE])
            view = view[sent:]

    def send(self, s: str | bytes) -> None:  # type: ignore[override]
        data = s.encode(self.command_encoding) if isinstance(s, str) else s
        self._record("C", data)
        self.sendall(data)

    def send_secret(self, prefix: str, payload: Secret) -> None:
        """Send ``prefix`` and a secret AUTH payload on one line; the transcript shows neither.

        The payload is written through a memoryview, whose repr shows no bytes, so no frame on
        the way to the socket holds the secret where a traceback's locals would print it.
        """
        self._sent_secrets.append(payload)
        shown = f"{prefix} <redacted>" if prefix else "<redacted>"
        self.transcript.append(TranscriptLine("C", shown, self.encrypted))
        self.sendall(
            memoryview(
                (prefix.encode("ascii") + b" " if prefix else b"") + payload.reveal() + b"\r\n"
            )
        )

    def remember_secret(self, secret: Secret) -> None:
        """Redact ``secret`` (and its base64 form) from everything the server says from now on."""
        if secret:
            self._sent_secrets += [secret, secret.b64()]

    # -- canonical commands ---------------------------------------------------------------
    def putcmd(self, cmd: str, args: str = "") -> None:
        super().putcmd(cmd.upper(), args)

    def mail(self, sender: str, options: Sequence[str] = ()) -> tuple[int, bytes]:
        # RFC 5321 section 4.1.1.2 spells it MAIL FROM:<reverse-path>; smtplib's spelling
        # changed in 3.13, ours does not.
        if any(option.upper() == "SMTPUTF8" for option in options):
            self.command_encoding = "utf-8"  # RFC 6531 section 3.4: UTF-8 commands from now on
        self.putcmd("MAIL", f"FROM:{smtplib.quoteaddr(sender)}{''.join(' ' + o for o in options)}")
        return self.getreply()

    def rcpt(self, recip: str, options: Sequence[str] = ()) -> tuple[int, bytes]:
        self.putcmd("RCPT", f"TO:{smtplib.quoteaddr(recip)}{''.join(' ' + o for o in options)}")
        return self.getreply()

    def close(self) -> None:
        self.buffer.clear()
        super().close()


def _printable_line(line: bytes) -> bytes:
    """A server line as UTF-8 with no escape sequence or other control character in it.

    Everything the server says (greeting, EHLO keywords, reply texts) reaches the transcript,
    reports, errors and terminals from here, so this is the one place that makes it printable.
    """
    body = line.rstrip(b"\r\n")
    if not _NOT_PRINTABLE_ASCII.search(body):
        return line  # the usual case: printable ASCII
    return printable(body.decode("utf-8", "replace")).encode("utf-8") + line[len(body) :]


def send_body(wire: Wire, chunks: Sequence[bytes]) -> bytes:
    """Send all but the last piece of the message data; return that piece with the end mark.

    Dot-stuffing as RFC 5321 section 4.5.2 says, also across chunk boundaries. Pieces are views,
    so a large message is not copied; the end mark travels with the last piece (one write fewer
    per message).
    """
    pieces: list[memoryview] = []
    line_start = True  # the next byte begins a line
    for chunk in chunks:
        if not chunk:
            continue
        if b"\n." in chunk:
            chunk = chunk.replace(b"\n.", b"\n..")
        if line_start and chunk.startswith(b"."):
            chunk = b"." + chunk
        line_start = chunk.endswith(b"\n")
        view = memoryview(chunk)
        pieces += [view[start : start + CHUNK] for start in range(0, len(view), CHUNK)]
    for piece in pieces[:-1]:
        wire.sendall(piece)
    end = b".\r\n" if line_start and pieces else b"\r\n.\r\n"
    return (bytes(pieces[-1]) if pieces else b"") + end


def pending_bytes(sock: socket.socket | None) -> int:
    """How many bytes are already waiting on the socket, without blocking."""
    if sock is None:
        return 0
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        return len(sock.recv(4096, socket.MSG_PEEK))
    except (BlockingIOError, InterruptedError):
        return 0
    finally:
        sock.settimeout(timeout)


def ehlo_name(sock: socket.socket) -> str:
    """A name for EHLO without a DNS lookup: the host name if it is dotted, else an address literal."""
    name = socket.gethostname()
    if "." in name and name.isascii():
        return name
    address = sock.getsockname()[0]
    return f"[IPv6:{address}]" if ":" in address else f"[{address}]"
