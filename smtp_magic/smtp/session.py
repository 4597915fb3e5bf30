"""The only code that talks to an SMTP server: connect, negotiate TLS, authenticate, transfer, keep a transcript."""

from __future__ import annotations

import contextlib
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from smtp_magic import errors
from smtp_magic.errors import SettingsError
from smtp_magic.report import TLSInfo, TranscriptLine
from smtp_magic.settings import Settings
from smtp_magic.smtp import diagnose, tls
from smtp_magic.smtp.markers import CredentialsWithoutTLS, MessageTooLarge, PlaintextAfterSTARTTLS

__all__ = [
    "STANDARD_PORTS",
    "CredentialsWithoutTLS",
    "Delivery",
    "MessageTooLarge",
    "PlaintextAfterSTARTTLS",
    "Session",
    "forget_auto_choices",
    "open_session",
]

STANDARD_PORTS = {465: "tls", 25: "starttls", 587: "starttls", 2525: "starttls"}
"""What ``security="auto"`` uses on well-known ports without waiting for a greeting."""

TLS_CHECK_SECONDS = 1.0
"""At most this long is spent checking whether a silent port speaks TLS (a diagnosis only)."""

_CHUNK = 1 << 20  # bytes of message data per sendall, so a large message is never copied whole
_PIECE = 1 << 16  # bytes per TLS write, between deadline checks
_KEEP_LINES = 100  # transcript lines of earlier messages kept on a long-lived session
_auto_choices: dict[tuple[str, int], str] = {}
_auto_lock = threading.Lock()


def forget_auto_choices() -> None:
    """Forget what ``security="auto"`` learnt about non-standard ports in this process."""
    with _auto_lock:
        _auto_choices.clear()


@dataclass(frozen=True)
class Delivery:
    """What the server said to one message: who it accepted and refused, and its final reply."""

    accepted: tuple[str, ...]
    refused: dict[str, tuple[int, str]]
    reply: str


class _Wire(smtplib.SMTP):
    """smtplib.SMTP with a deadline per phase, a redacted transcript and strict STARTTLS.

    smtplib's own timeout applies to each recv, so a server that drips one byte a second never
    times out; here every phase has one deadline for all of its reads and writes.
    """

    def __init__(self, local_hostname: str | None) -> None:
        super().__init__(local_hostname=local_hostname or "localhost")
        self.transcript: list[TranscriptLine] = []
        self.deadline = float("inf")
        self.buffer = bytearray()
        self.in_auth = False
        self.mechanism: str | None = None

    # -- the transcript -------------------------------------------------------------------
    def note(self, text: str) -> None:
        self.transcript.append(TranscriptLine("*", text, self.encrypted))

    @property
    def encrypted(self) -> bool:
        return isinstance(self.sock, ssl.SSLSocket)

    def _record_client(self, line: str) -> None:
        words = line.split()
        if words and words[0].upper() == "AUTH":
            self.in_auth = True
            line = " ".join(words[:2] + (["<redacted>"] if len(words) > 2 else []))
        elif self.in_auth:
            line = "<redacted>"
        self.transcript.append(TranscriptLine("C", line, self.encrypted))

    # -- deadline-aware I/O ---------------------------------------------------------------
    def _remaining(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the phase deadline passed")
        return remaining

    def fill(self) -> None:
        """Read more bytes from the server before the deadline."""
        assert self.sock is not None
        self.sock.settimeout(min(self._remaining(), 3600.0))
        chunk = self.sock.recv(65536)
        if not chunk:
            self.close()
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        self.buffer += chunk

    def _readline(self) -> bytes:
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0:
                line = bytes(self.buffer[: end + 1])
                del self.buffer[: end + 1]
                return line
            if len(self.buffer) > smtplib._MAXLINE:  # type: ignore[attr-defined]
                raise smtplib.SMTPResponseException(500, b"Line too long.")
            self.fill()

    def getreply(self) -> tuple[int, bytes]:
        lines: list[bytes] = []
        while True:
            line = self._readline()
            text = line[4:].strip(b" \t\r\n")
            try:
                code = int(line[:3])
            except ValueError:
                shown = line.rstrip(b"\r\n").decode("utf-8", "replace")
                self.transcript.append(TranscriptLine("S", shown, self.encrypted))
                raise smtplib.SMTPResponseException(-1, line.rstrip(b"\r\n")) from None
            lines.append(text)
            shown = line.rstrip(b"\r\n").decode("utf-8", "replace")
            self.transcript.append(TranscriptLine("S", shown, self.encrypted))
            if line[3:4] != b"-":
                break
        if self.in_auth and code != 334:
            self.in_auth = False
        return code, b"\n".join(lines)

    def sendall(self, data: bytes | memoryview) -> None:
        if self.sock is None:
            raise smtplib.SMTPServerDisconnected("please run connect() first")
        if not isinstance(self.sock, ssl.SSLSocket):
            # Since Python 3.5 a plain socket's timeout bounds the whole sendall.
            self.sock.settimeout(min(self._remaining(), 3600.0))
            self.sock.sendall(data)
            return
        # SSLSocket.sendall applies the timeout to each write instead, so a server that reads
        # slowly could stretch the phase: write in pieces, checking the deadline before each.
        view = memoryview(data)
        while view:
            self.sock.settimeout(min(self._remaining(), 3600.0))
            sent = self.sock.send(view[:_PIECE])
            view = view[sent:]

    def send(self, s: str | bytes) -> None:  # type: ignore[override]
        data = s.encode(self.command_encoding) if isinstance(s, str) else s
        self._record_client(data.decode("utf-8", "replace").rstrip("\r\n"))
        self.sendall(data)

    def auth(self, mechanism, authobject, *, initial_response_ok=True):  # type: ignore[no-untyped-def]
        self.mechanism = mechanism
        return super().auth(mechanism, authobject, initial_response_ok=initial_response_ok)

    def close(self) -> None:
        self.buffer.clear()
        super().close()


class _Step:
    """The context of one phase (see ``Session.step``).

    A class rather than a generator-based context manager: a message takes four or more phases,
    and two nested generator context managers per phase cost about a tenth of a send's CPU.
    """

    __slots__ = ("clock", "session", "start")

    def __init__(self, session: Session, phase: str, clock: str, seconds: float | None) -> None:
        session.phase = phase
        self.session = session
        self.clock = clock
        self.start = time.monotonic()
        limit = seconds if seconds is not None else session.settings.timeout
        session.wire.deadline = self.start + limit

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, _tb: object) -> Literal[False]:
        session = self.session
        timings = session.timings
        timings[self.clock] = timings.get(self.clock, 0.0) + time.monotonic() - self.start
        session.wire.deadline = float("inf")
        if exc is None or not isinstance(exc, Exception):
            return False  # success, or KeyboardInterrupt and friends: let them through
        error = exc if isinstance(exc, errors.SMTPMagicError) else diagnose.explain(exc, session)
        # A server that let a deadline pass will not answer QUIT promptly either: close() must
        # not spend another wait on it, or "timeout + 1 s" becomes "2 x timeout".
        if isinstance(error, errors.SMTPTimeoutError) or isinstance(
            error.__cause__ if error is exc else exc, TimeoutError
        ):
            session.stalled = True
        if error is exc:
            return False
        raise error from exc


class Session:
    """One SMTP connection, negotiated and authenticated as ``settings`` say.

    Use ``open_session(settings)`` rather than the steps below, which exist for ``probe``.
    Every step raises only ``SMTPMagicError`` subclasses.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.host = settings.host
        self.port: int = settings.port  # type: ignore[assignment]
        self.wire = _Wire(settings.local_hostname)
        self.security: str | None = None
        self.phase = "connect"
        self.greeting = ""
        self.tls: TLSInfo | None = None
        self.timings: dict[str, float] = {}
        self.delivered_data = False
        self.stalled = False
        self.opening = 0  # transcript lines of the negotiation, kept for the whole session

    # -- bookkeeping ----------------------------------------------------------------------
    @property
    def transcript(self) -> tuple[TranscriptLine, ...]:
        return tuple(self.wire.transcript)

    @property
    def extensions(self) -> dict[str, str]:
        return dict(self.wire.esmtp_features)

    @property
    def auth_mechanism(self) -> str | None:
        return self.wire.mechanism

    def step(self, phase: str, clock: str, seconds: float | None = None) -> _Step:
        """Run one phase: its own deadline, its time added to ``timings[clock]``, errors explained."""
        return _Step(self, phase, clock, seconds)

    # -- the steps ------------------------------------------------------------------------
    def connect(self) -> None:
        """Open the TCP connection."""
        with self.step("connect", "connect"):
            sock = socket.create_connection((self.host, self.port), self.settings.timeout)
            # SMTP is a dialogue of short lines: without TCP_NODELAY, Nagle's algorithm and the
            # peer's delayed ACK stall a small write that follows another by ~40 ms.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.wire.sock = sock
            if self.settings.local_hostname is None:
                self.wire.local_hostname = _ehlo_name(sock)
            self.wire.note(f"connected to {self.settings.address}")

    def wait_for_bytes(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for the server to say anything; False if it stayed silent."""
        with self.step("greeting", "connect", seconds):
            try:
                self.wire.fill()
            except TimeoutError:
                self.wire.note(f"no greeting within {seconds:g} s")
                return False
        return True

    def handshake(self, context: ssl.SSLContext | None = None) -> None:
        """Wrap the connection in TLS, verifying the certificate (unless ``context`` says otherwise)."""
        context = context or tls.client_context(self.settings)
        with self.step("tls", "tls"):
            sock = self.wire.sock
            assert sock is not None, "connect() comes first"
            sock.settimeout(self.wire._remaining())
            wrapped = context.wrap_socket(sock, server_hostname=self.host)
            self.wire.sock = wrapped
            self.wire.file = None
            self.tls = TLSInfo(
                version=wrapped.version() or "?",
                cipher=(wrapped.cipher() or ("?",))[0],
                certificate=tls.describe_certificate(wrapped),
            )
            cert = self.tls.certificate
            self.wire.note(
                f"TLS handshake done: {self.tls}"
                + (f"; certificate {cert}" if cert else "; certificate not checked")
            )

    def read_greeting(self) -> None:
        """Read the server's 220 greeting."""
        with self.step("greeting", "connect"):
            code, text = self.wire.getreply()
            if code != 220:
                raise smtplib.SMTPConnectError(code, text)
            self.greeting = text.decode("utf-8", "replace")

    def ehlo(self) -> None:
        """Send EHLO (HELO if the server is not ESMTP) and learn its extensions."""
        with self.step("ehlo", "connect" if self.security is None else "tls"):
            code, text = self.wire.ehlo()
            if code != 250:
                code, text = self.wire.helo()
                if code != 250:
                    raise smtplib.SMTPHeloError(code, text)

    def starttls(self, context: ssl.SSLContext | None = None) -> None:
        """Upgrade with STARTTLS; never continue in plaintext."""
        with self.step("starttls", "tls"):
            if not self.wire.has_extn("starttls"):
                raise smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server.")
            code, text = self.wire.docmd("STARTTLS")
            if code != 220:
                raise smtplib.SMTPResponseException(code, text)
            pending = len(self.wire.buffer) + _pending_bytes(self.wire.sock)
            if pending:
                # RFC 3207 section 6 and CVE-2011-0411: whatever arrived with the 220 was sent
                # before TLS and could have been injected; refuse the session.
                raise PlaintextAfterSTARTTLS(pending)
        self.handshake(context)
        # RFC 3207 section 4.2: discard all knowledge obtained from the server before TLS.
        wire = self.wire
        wire.helo_resp = wire.ehlo_resp = None
        wire.esmtp_features = {}
        wire.does_esmtp = False
        self.security = "starttls"
        self.ehlo()

    def login(self) -> None:
        """Authenticate with the settings' username and password, only over TLS."""
        settings = self.settings
        with self.step("auth", "auth"):
            if not self.wire.encrypted:
                raise CredentialsWithoutTLS()
            if not self.wire.has_extn("auth"):
                raise smtplib.SMTPNotSupportedError("SMTP AUTH extension not supported by server.")
            self.wire.login(settings.username or "", settings.password or "")

    def open(self) -> None:
        """Connect, negotiate the security mode, and log in when a username is set."""
        settings = self.settings
        mode: str = settings.security
        key = (self.host, self.port)
        if mode == "auto":
            with _auto_lock:
                mode = _auto_choices.get(key) or STANDARD_PORTS.get(self.port, "auto")
        self.connect()
        if mode == "auto":
            # A port we do not know: a greeting means STARTTLS; silence means TLS first.
            mode = "starttls" if self.wait_for_bytes(settings.greeting_wait) else "tls"
            self.wire.note(f"security='auto' chose {mode!r} for port {self.port}")
        if mode == "tls":
            self.handshake()
            self.security = "tls"
        self.read_greeting()
        if settings.security == "auto":
            with _auto_lock:
                _auto_choices[key] = mode
        self.ehlo()
        if mode == "starttls":
            self.starttls()
        elif mode == "plain":
            self.security = "plain"
        if settings.username:
            self.login()
        self.opening = len(self.wire.transcript)

    def deliver(
        self,
        sender: str,
        recipients: Sequence[str],
        data: bytes | Sequence[bytes],
        *,
        smtputf8: bool = False,
    ) -> Delivery:
        """Run one mail transaction (MAIL, RCPT for each recipient, DATA) on the open session.

        Raises:
            RejectedError: the sender, every recipient, or the message was refused.
            DeliveryUnknownError: the connection was lost after the data was sent.
        """
        wire = self.wire
        chunks = (data,) if isinstance(data, bytes | bytearray) else tuple(data)
        size = sum(len(chunk) for chunk in chunks)
        self.delivered_data = False
        # Keep the negotiation and this message's lines, not every earlier message's: a long
        # send_many would otherwise hold thousands of lines (and the garbage collector's time).
        if len(wire.transcript) > self.opening + _KEEP_LINES:
            dropped = len(wire.transcript) - self.opening
            del wire.transcript[self.opening :]
            wire.note(f"({dropped} lines of earlier messages omitted)")
        options: list[str] = []
        with self.step("mail", "send"):
            if wire.has_extn("size"):
                limit = int(wire.esmtp_features.get("size") or 0)
                if limit and size > limit:
                    raise MessageTooLarge(size, limit)
                options.append(f"SIZE={size}")
            if smtputf8:
                if not wire.has_extn("smtputf8"):
                    raise smtplib.SMTPNotSupportedError(
                        "One or more source or delivery addresses require internationalized "
                        "email support, but the server does not advertise the required SMTPUTF8 "
                        "capability"
                    )
                options += ["SMTPUTF8", "BODY=8BITMIME"]
            elif wire.has_extn("8bitmime") and not all(c.isascii() for c in chunks):
                options.append("BODY=8BITMIME")
            code, text = wire.mail(sender, options)
            if code != 250:
                self._reset_quietly()
                raise smtplib.SMTPSenderRefused(code, text, sender)
        refused: dict[str, tuple[int, str]] = {}
        accepted: list[str] = []
        for rcpt in recipients:
            with self.step("rcpt", "send"):
                code, text = wire.rcpt(rcpt)
            if code in (250, 251):
                accepted.append(rcpt)
            else:
                refused[rcpt] = (code, text.decode("utf-8", "replace"))
        if not accepted:
            self._reset_quietly()
            with self.step("rcpt", "send"):
                raise smtplib.SMTPRecipientsRefused(
                    {r: (c, t.encode()) for r, (c, t) in refused.items()}
                )
        with self.step("data", "send"):
            code, text = wire.docmd("DATA")
            if code != 354:
                self._reset_quietly()
                raise smtplib.SMTPDataError(code, text)
            wire.transcript.append(
                TranscriptLine("C", f"<message data, {size} bytes>", wire.encrypted)
            )
            tail = _send_body(wire, chunks)
        # The last piece carries the end mark: from its first byte on, the server may hold the
        # whole message, so losing the connection (or a Ctrl-C) now means "delivery unknown".
        self.delivered_data = True
        with self.step("data-end", "send"):
            wire.sendall(tail)
            code, text = wire.getreply()
            self.delivered_data = False
            if code != 250:
                raise smtplib.SMTPDataError(code, text)
        return Delivery(tuple(accepted), refused, f"{code} {text.decode('utf-8', 'replace')}")

    def reset(self) -> None:
        """RSET: abandon any transaction in progress."""
        with self.step("rset", "send"):
            self.wire.rset()

    def _reset_quietly(self) -> None:
        with contextlib.suppress(Exception):
            self.wire.rset()

    def close(self) -> None:
        """Say QUIT (briefly) and close the connection; never raises."""
        wire = self.wire
        if wire.sock is not None and not self.stalled:
            wire.deadline = time.monotonic() + min(self.settings.timeout, 2.0)
            with contextlib.suppress(Exception):
                wire.docmd("QUIT")
        with contextlib.suppress(Exception):
            wire.close()

    def abort(self) -> None:
        """Close the connection at once, without QUIT (mid-transaction, QUIT would read as data)."""
        with contextlib.suppress(Exception):
            self.wire.close()

    def speaks_tls(self) -> bool:
        """Whether the port completes a TLS handshake on a fresh connection (used to diagnose silence).

        Verification is off because only the handshake is tested; nothing else is sent.
        """
        # One deadline for connect and handshake, at most TLS_CHECK_SECONDS: this check runs after
        # a whole timeout of silence, and the error must still come within about timeout + 1 s.
        deadline = time.monotonic() + min(self.settings.timeout, TLS_CHECK_SECONDS)
        try:
            address = (self.host, self.port)
            with socket.create_connection(address, deadline - time.monotonic()) as raw:
                # Since Python 3.5 the timeout bounds the whole handshake, not each recv.
                raw.settimeout(max(deadline - time.monotonic(), 0.01))
                with tls.unverified_context().wrap_socket(raw, server_hostname=self.host):
                    return True
        except (OSError, ssl.SSLError):
            return False

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _send_body(wire: _Wire, chunks: Sequence[bytes]) -> bytes:
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
        pieces += [view[start : start + _CHUNK] for start in range(0, len(view), _CHUNK)]
    for piece in pieces[:-1]:
        wire.sendall(piece)
    end = b".\r\n" if line_start and pieces else b"\r\n.\r\n"
    return (bytes(pieces[-1]) if pieces else b"") + end


def _pending_bytes(sock: socket.socket | None) -> int:
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


def _ehlo_name(sock: socket.socket) -> str:
    """A name for EHLO without a DNS lookup: the host name if it is dotted, else an address literal."""
    name = socket.gethostname()
    if "." in name and name.isascii():
        return name
    address = sock.getsockname()[0]
    return f"[IPv6:{address}]" if ":" in address else f"[{address}]"


def open_session(settings: Settings) -> Session:
    """Connect, negotiate TLS and log in as ``settings`` say; the caller closes the session.

    Raises:
        SMTPMagicError: any failure, explained (see ``smtp_magic.errors``).
    """
    if settings.username and not settings.password:
        raise SettingsError(
            f"username {settings.username!r} has no password, so the login would fail: set "
            "SMTP_PASSWORD, store it with keyring, or call "
            "smtp_magic.credentials.with_password(settings) to be asked for it."
        )
    session = Session(settings)
    try:
        session.open()
    except BaseException:
        session.close()
        raise
    return session
