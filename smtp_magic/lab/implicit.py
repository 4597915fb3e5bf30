"""The implicit-TLS role's handshake, done by the lab itself so that a distrusting client is one log line."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from smtp_magic.lab import events

__all__ = ["ImplicitTLS"]


class ImplicitTLS(asyncio.Protocol):
    """Accept a TCP connection, do the server's TLS handshake, then hand the SMTP protocol over.

    asyncio's ``create_server(ssl=...)`` reports a failed server-side handshake only in debug
    mode, so a student whose client does not trust the lab's CA saw nothing on the 465 role.
    Here the handshake is awaited with ``loop.start_tls``: a client that rejects the lab's
    certificate is one line saying what to do (``events.describe_failure``); other failures
    (a plaintext client, a dropped connection) stay silent, as before.
    """

    def __init__(self, smtp: Any, context: ssl.SSLContext, timeout: float, cafile: str) -> None:
        self.smtp = smtp
        self.context = context
        self.timeout = timeout
        self.cafile = cafile

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Nothing may be read before start_tls takes over: the ClientHello belongs to TLS.
        transport.pause_reading()  # type: ignore[attr-defined]
        asyncio.get_running_loop().create_task(self._handshake(transport))

    async def _handshake(self, transport: asyncio.BaseTransport) -> None:
        loop = asyncio.get_running_loop()
        peer = transport.get_extra_info("peername")
        # The SMTP protocol joins only once the handshake succeeded: asyncio tells the protocol
        # given to start_tls about a failed handshake (connection_lost), which aiosmtpd, never
        # told of the connection, cannot take.
        waiting = _Waiting()
        try:
            secured = await loop.start_tls(
                transport,  # type: ignore[arg-type]
                waiting,
                self.context,
                server_side=True,
                ssl_handshake_timeout=self.timeout,
            )
        except ssl.SSLError as exc:
            if events.distrusts(exc):
                events.log.warning("%s", events.describe_failure(exc, peer, self.cafile))
            transport.close()
            return
        except (OSError, TimeoutError):
            transport.close()
            return
        if secured is None:  # the connection went away during the handshake
            transport.close()
            return
        secured.set_protocol(self.smtp)
        self.smtp.connection_made(secured)
        if waiting.early:  # bytes that came with the handshake's end, before the hand-over
            self.smtp.data_received(bytes(waiting.early))


class _Waiting(asyncio.Protocol):
    """Stands in for the SMTP protocol during the handshake; keeps any early bytes."""

    def __init__(self) -> None:
        self.early = bytearray()

    def data_received(self, data: bytes) -> None:
        self.early += data
