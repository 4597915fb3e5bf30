"""The only code that talks to an SMTP server: connect, negotiate TLS, authenticate, transfer, keep a transcript."""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from typing import Literal

from smtp_magic import errors
from smtp_magic.errors import SettingsError
from smtp_magic.report import TLSInfo, TranscriptLine
from smtp_magic.secret import Secret
from smtp_magic.settings import Settings
from smtp_magic.smtp import diagnose, oauth, sasl, tls, transaction
from smtp_magic.smtp.connect import open_connection
from smtp_magic.smtp.markers import (
    CredentialsWithoutTLS,
    MessageTooLarge,
    PlaintextAfterSTARTTLS,
    TLSFirst,
)
from smtp_magic.smtp.transaction import Delivery
from smtp_magic.smtp.wire import Wire, ehlo_name, pending_bytes

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

IMPLICIT_TLS_PORTS = frozenset({465})
"""Ports where TLS comes first (RFC 8314 section 7.3): a plaintext mode checks them sooner."""

IMPLICIT_TLS_WAIT = 0.5
"""Seconds a plaintext mode waits for a greeting on an implicit-TLS port before checking for TLS."""

TLS_CHECK_SECONDS = 1.0
"""At most this long is spent checking whether a silent port speaks TLS (a diagnosis only)."""

_DIGITS = re.compile("[0-9]+")
_auto_choices: dict[tuple[str, int], str] = {}
_auto_lock = threading.Lock()


def forget_auto_choices() -> None:
    """Forget what ``security="auto"`` learnt about non-standard ports in this process."""
    with _auto_lock:
        _auto_choices.clear()


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
        self.wire = Wire(settings.local_hostname)
        self.security: str | None = None
        self.phase = "connect"
        self.greeting = ""
        self._speaks_tls: bool | None = None
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
            # One deadline for the name lookup and every address (socket.create_connection
            # gives each address the whole timeout, and the lookup none).
            sock = open_connection(self.host, self.port, self.wire.deadline)
            # SMTP is a dialogue of short lines: without TCP_NODELAY, Nagle's algorithm and the
            # peer's delayed ACK stall a small write that follows another by ~40 ms.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.wire.sock = sock
            if self.settings.local_hostname is None:
                self.wire.local_hostname = ehlo_name(sock)
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

    def expect_plaintext_greeting(self) -> float | None:
        """Fail fast when a port that should greet in plaintext speaks TLS first.

        A server that expects implicit TLS stays silent until the client's handshake, so a
        STARTTLS client would wait the whole timeout (the lab gives up after about 5 s). After
        ``greeting_wait`` of silence (``IMPLICIT_TLS_WAIT`` on port 465) a second connection
        tries a TLS handshake: if it completes, the port speaks TLS first and the error comes
        now; if not, the wait for a slow greeting (a greet-pause, say) goes on.

        Returns:
            The seconds left of the greeting's timeout, or None when the greeting has arrived.
        """
        start = time.monotonic()
        wait = min(self.settings.greeting_wait, self.settings.timeout)
        if self.port in IMPLICIT_TLS_PORTS:
            wait = min(wait, IMPLICIT_TLS_WAIT)
        if self.wait_for_bytes(wait):
            return None
        if self.speaks_tls():
            with self.step("greeting", "connect"):
                raise TLSFirst(wait)
        # The whole greeting, checks included, still takes at most one timeout.
        return max(self.settings.timeout - (time.monotonic() - start), 0.01)

    def handshake(self, context: ssl.SSLContext | None = None) -> None:
        """Wrap the connection in TLS, verifying the certificate (unless ``context`` says otherwise)."""
        context = context or tls.client_context(self.settings)
        with self.step("tls", "tls"):
            sock = self.wire.sock
            assert sock is not None, "connect() comes first"
            sock.settimeout(self.wire.remaining())
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

    def read_greeting(self, seconds: float | None = None) -> None:
        """Read the server's 220 greeting (within ``seconds``, by default the timeout)."""
        with self.step("greeting", "connect", seconds):
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
            self._ignore_malformed_extensions()

    def _ignore_malformed_extensions(self) -> None:
        """Drop an extension whose parameter makes no sense, so nothing later trips on it."""
        features = self.wire.esmtp_features
        size = features.get("size")
        # RFC 1870 section 4: SIZE [number of octets]; absent or 0 means no fixed limit.
        if size is not None and size != "" and not _DIGITS.fullmatch(size):
            del features["size"]
            self.wire.note(f"ignoring the malformed SIZE extension {size!r} (not a number)")

    def starttls(self, context: ssl.SSLContext | None = None) -> None:
        """Upgrade with STARTTLS; never continue in plaintext."""
        with self.step("starttls", "tls"):
            if not self.wire.has_extn("starttls"):
                raise smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server.")
            code, text = self.wire.docmd("STARTTLS")
            if code != 220:
                raise smtplib.SMTPResponseException(code, text)
            pending = len(self.wire.buffer) + pending_bytes(self.wire.sock)
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
        """Authenticate with the settings' password or OAuth2 token, only over TLS."""
        settings = self.settings
        with self.step("auth", "auth"):
            if not self.wire.encrypted:
                raise CredentialsWithoutTLS()
            if not self.wire.has_extn("auth"):
                raise smtplib.SMTPNotSupportedError("SMTP AUTH extension not supported by server.")
            self.wire.ehlo_or_helo_if_needed()
            if settings.token is not None:
                oauth.login(self)
                return
            mechanism = sasl.choose(self.wire.esmtp_features.get("auth", ""))
            sasl.authenticate(
                self.wire, mechanism(settings.username or "", Secret(settings.password or ""))
            )

    def open(self) -> None:
        """Connect, negotiate the security mode, and log in when a username is set."""
        settings = self.settings
        mode: str = settings.security
        key = (self.host, self.port)
        if mode == "auto":
            with _auto_lock:
                mode = _auto_choices.get(key) or STANDARD_PORTS.get(self.port, "auto")
        self.connect()
        wait: float | None = None  # what is left of the greeting's timeout
        if mode == "auto":
            # A port we do not know: a greeting means STARTTLS; silence means TLS first.
            mode = "starttls" if self.wait_for_bytes(settings.greeting_wait) else "tls"
            self.wire.note(f"security='auto' chose {mode!r} for port {self.port}")
        elif mode != "tls":
            wait = self.expect_plaintext_greeting()
        if mode == "tls":
            self.handshake()
            self.security = "tls"
        self.read_greeting(wait)
        self.ehlo()
        if mode == "starttls":
            self.starttls()
        elif mode == "plain":
            self.security = "plain"
        if settings.security == "auto" and self.tls is not None:
            # Remembered only now that TLS completed with a verified certificate: one plaintext
            # answer (a stray server, an attacker) must not pin "starttls" on an implicit-TLS
            # port for the rest of the process.
            with _auto_lock:
                _auto_choices[key] = mode
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
        """Run one mail transaction on the open session (see ``transaction.deliver``)."""
        return transaction.deliver(self, sender, recipients, data, smtputf8=smtputf8)

    def reset(self) -> None:
        """RSET: abandon any transaction in progress."""
        with self.step("rset", "send"):
            self.wire.rset()

    def reset_quietly(self) -> None:
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
        if self._speaks_tls is not None:  # checked already (expect_plaintext_greeting)
            return self._speaks_tls
        self._speaks_tls = self._tls_check()
        return self._speaks_tls

    def _tls_check(self) -> bool:
        # One deadline for connect and handshake, at most TLS_CHECK_SECONDS: this check runs after
        # a whole timeout of silence, and the error must still come within about timeout + 1 s.
        deadline = time.monotonic() + min(self.settings.timeout, TLS_CHECK_SECONDS)
        try:
            with open_connection(self.host, self.port, deadline) as raw:
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


def open_session(settings: Settings) -> Session:
    """Connect, negotiate TLS and log in as ``settings`` say; the caller closes the session.

    Raises:
        SMTPMagicError: any failure, explained (see ``smtp_magic.errors``).
    """
    if settings.username and not settings.password and settings.token is None:
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
