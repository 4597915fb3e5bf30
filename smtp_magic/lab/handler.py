"""The lab's aiosmtpd pieces: the SMTP protocol class, the controller and each role's handler."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from smtp_magic.lab import events
from smtp_magic.lab.implicit import ImplicitTLS

__all__ = [
    "HOST",
    "LabController",
    "LabHandler",
    "LabSMTP",
    "ReceivedMessage",
    "bind",
    "listening",
]

HOST = "127.0.0.1"  # the lab never listens on anything else


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the lab accepted.

    Attributes:
        message: The message, parsed with ``email.policy.default`` (CRLF read as newline).
        mail_from: The envelope sender (MAIL FROM).
        rcpt_tos: The envelope recipients (RCPT TO).
        tls: Whether the connection was encrypted when the message arrived.
        authenticated: Whether the client had logged in.
        role: The port the listener plays: 25, 465 or 587.
        raw: The bytes received after DATA, as sent (CRLF line endings).
    """

    message: EmailMessage
    mail_from: str
    rcpt_tos: tuple[str, ...]
    tls: bool
    authenticated: bool
    role: int
    raw: bytes


class LabSMTP(SMTP):
    """aiosmtpd's SMTP with readable AUTH LOGIN challenges and a connection counter."""

    # aiosmtpd ends these in NUL, which breaks Go net/smtp and curl (aiosmtpd #566, PR #620).
    AuthLoginUsernameChallenge = "Username:"
    AuthLoginPasswordChallenge = "Password:"

    def __init__(
        self,
        handler: Any,
        *,
        on_connect: Callable[[], None],
        implicit_tls: bool,
        cafile: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self._on_connect = on_connect
        self._cafile = cafile
        if implicit_tls:
            # aiosmtpd only counts STARTTLS as TLS, so it hides AUTH on an implicit-TLS listener
            # (aiosmtpd #274, #281). Safe here: asyncio calls connection_made only after the
            # handshake. Set after construction to skip the UserWarning meant for plaintext
            # listeners, which warnings.catch_warnings could not filter safely from a thread.
            self._auth_require_tls = False

    async def handle_exception(self, error: Exception) -> str:
        # aiosmtpd would log the full traceback (log.exception) for what is usually a student's
        # client refusing the lab's CA: say it in one line, with what to do.
        if hasattr(self.event_handler, "handle_exception"):
            return cast(str, await self.event_handler.handle_exception(error))
        peer = self.session.peer if self.session is not None else "?"
        events.log.warning("%s", events.describe_failure(error, peer, self._cafile))
        return f"500 Error: ({type(error).__name__}) {error}"  # what aiosmtpd answers

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # After STARTTLS aiosmtpd calls this again on the same object: count only the first.
        first = self._original_transport is None
        super().connection_made(transport)
        if first:
            self._on_connect()


class LabController(Controller):
    """A Controller on a socket bound in advance, with a configurable TLS handshake timeout."""

    def __init__(
        self,
        handler: Any,
        *,
        sock: socket.socket,
        handshake_timeout: float,
        on_connect: Callable[[], None],
        cafile: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, hostname=HOST, port=sock.getsockname()[1], **kwargs)
        self._cafile = cafile
        self._sock = sock
        self._handshake_timeout = handshake_timeout
        self._on_connect = on_connect

    def factory(self) -> SMTP:
        implicit = self.ssl_context is not None
        return LabSMTP(
            self.handler,
            on_connect=self._on_connect,
            implicit_tls=implicit,
            cafile=self._cafile,
            **self.SMTP_kwargs,
        )

    def _create_server(self) -> Any:
        # Passing sock= avoids aiosmtpd's port-0 trap. The implicit-TLS role does its own
        # handshake (lab/implicit.py), with a timeout (Controller has no ssl_handshake_timeout,
        # aiosmtpd #269: a plaintext client on the implicit-TLS port would wait 60 s).
        context = self.ssl_context
        if context is None:
            return self.loop.create_server(self._factory_invoker, sock=self._sock)

        def implicit() -> ImplicitTLS:
            return ImplicitTLS(
                self._factory_invoker(), context, self._handshake_timeout, self._cafile
            )

        return self.loop.create_server(implicit, sock=self._sock)


class LabHandler:
    """The aiosmtpd handler of one role: hands each message to the lab."""

    def __init__(self, role: int, record: Callable[[ReceivedMessage], int]) -> None:
        self.role = role
        self.record = record

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, lines: list[str]
    ) -> list[str]:
        session.host_name = hostname  # a 5-argument EHLO hook must do this, or MAIL gets 503
        if self.role == 25:  # aiosmtpd offers AUTH after STARTTLS even with no accounts
            lines = [line for line in lines if not line.startswith("250-AUTH")]
        # aiosmtpd reads commands from a stream, one at a time, so pipelined commands simply
        # wait in its buffer: it can offer RFC 2920 PIPELINING, as Postfix and Exchange do.
        return [*lines[:1], "250-PIPELINING", *lines[1:]]

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = cast(bytes, envelope.original_content or envelope.content or b"")
        transport = server.transport
        # Parse with Python's line endings, so get_content() shows "\n" rather than the wire's CRLF.
        parsed = BytesParser(policy=default_policy).parsebytes(raw.replace(b"\r\n", b"\n"))
        number = self.record(
            ReceivedMessage(
                message=parsed,
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                # session.ssl is only set by STARTTLS; the transport also knows implicit TLS.
                tls=transport is not None and transport.get_extra_info("ssl_object") is not None,
                authenticated=bool(session.authenticated),
                role=self.role,
                raw=raw,
            )
        )
        return f"250 OK: queued as {number}"


def bind(port: int) -> socket.socket:
    """Bind a listening-ready TCP socket on 127.0.0.1:port (0: any free port)."""
    # Name IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only when proto is TCP, and
    # with proto 0 Nagle plus delayed ACKs stall every TLS greeting by about 40 ms.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if os.name == "posix":
            # As asyncio.create_server does: a port in TIME_WAIT is free, one with a listener not.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
    except OSError:
        sock.close()
        raise
    return sock


def listening(port: int) -> socket.socket:
    """A socket bound and listening on 127.0.0.1:port.

    Listening at once closes a race: two labs starting together (a notebook and a test run,
    say) can both bind a default port with SO_REUSEADDR, and only ``listen()`` refuses the
    second (EADDRINUSE), which then takes a free port instead of failing in the controller.
    """
    sock = bind(port)
    try:
        sock.listen(100)  # asyncio's create_server(sock=...) listens again: harmless
    except OSError:
        sock.close()
        raise
    return sock
