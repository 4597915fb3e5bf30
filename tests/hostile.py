"""Misbehaving SMTP servers for the reliability and security tests: raw sockets and aiosmtpd subclasses.

Everything listens on 127.0.0.1 only, on a port chosen by binding a socket to port 0 (aiosmtpd's
``Controller(port=0)`` does not work). Certificates come from session-scoped trustme CAs and are
written to pytest's temporary directory, never to the repository.

Two kinds of server:

- ``ScriptedServer``: a thread per connection runs a plain-Python SMTP dialogue (``smtp_dialog``)
  whose every reply can be replaced, delayed, dropped or followed by injected bytes. It records
  every command line it reads, so a test can assert that no AUTH, MAIL or DATA arrived.
- ``AioServer``: aiosmtpd's ``SMTP`` behind a Controller on a pre-bound socket, recording every
  command in the same way, for the behaviours a real server has (SIZE, refused recipients,
  certificates, client certificates).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import logging
import select
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

HOST = "127.0.0.1"
TIMEOUT = 1.0
"""The client timeout used by every timing test: short, so the suite stays fast."""

SLACK = 1.5
"""Allowed seconds beyond the configured timeout: the promise is about +1 s, plus CI jitter."""

SECRET = "Dist1nct!ve-pa55"
"""A password that cannot occur by accident in any output."""


# -- certificates --------------------------------------------------------------------------------


@dataclass
class Certs:
    """The session's CAs and leaf certificates, and PEM files for the client side."""

    ca: trustme.CA
    cafile: str
    other_ca: trustme.CA  # an unrelated CA: its certificates are "signed by an unknown CA"
    client_ca: trustme.CA  # signs client certificates
    client_certfile: str  # the client's certificate and key in one PEM
    directory: Path

    def server_context(self, leaf: trustme.LeafCert | None = None) -> ssl.SSLContext:
        """A server context presenting ``leaf`` (default: a good localhost certificate)."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        (leaf or self.good_leaf).configure_cert(ctx)
        return ctx

    @property
    def good_leaf(self) -> trustme.LeafCert:
        return self.ca.issue_cert("localhost", "127.0.0.1", common_name="localhost")


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """Three trustme CAs for the session: the trusted one, an unknown one, and a client CA."""
    directory = tmp_path_factory.mktemp("hostile-certs")
    ca = trustme.CA(organization_name="smtp_magic hostile-test CA")
    cafile = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    client_ca = trustme.CA(organization_name="smtp_magic client CA")
    client = client_ca.issue_cert("client@example.org", common_name="test client")
    client_certfile = directory / "client.pem"
    client.private_key_and_cert_chain_pem.write_to_path(str(client_certfile))
    return Certs(
        ca=ca,
        cafile=str(cafile),
        other_ca=trustme.CA(organization_name="Somebody else's CA"),
        client_ca=client_ca,
        client_certfile=str(client_certfile),
        directory=directory,
    )


def self_signed_leaf(hostname: str = "localhost") -> trustme.LeafCert:
    """A certificate that signs itself (no CA at all), valid for ``hostname`` and 127.0.0.1."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(hostname), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return trustme.LeafCert(key_pem, cert.public_bytes(serialization.Encoding.PEM), [])


def old_protocol_context(certs: Certs, version: ssl.TLSVersion) -> ssl.SSLContext:
    """A server context that speaks only ``version`` (TLS 1.0 or 1.1), as a decade-old server would."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    certs.good_leaf.configure_cert(ctx)
    # OpenSSL 3 disables TLS < 1.2 at the default security level; level 0 re-enables them.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        # Python deprecates naming TLS 1.0/1.1; building an obsolete server is the point here.
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = version
        ctx.maximum_version = version
    return ctx


# -- raw scripted servers ------------------------------------------------------------------------


class Peer:
    """One accepted connection, as the server script sees it."""

    def __init__(self, sock: socket.socket, server: ScriptedServer) -> None:
        self.sock: socket.socket = sock
        self.server = server
        self.buffer = b""

    def send(self, data: bytes | str) -> None:
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def reply(self, line: str) -> None:
        self.send(line + "\r\n")

    def drip(self, data: bytes, interval: float) -> None:
        """Send ``data`` one byte at a time, ``interval`` seconds apart."""
        for i in range(len(data)):
            if self.server.stopping.wait(interval):
                return
            self.send(data[i : i + 1])

    def readline(self) -> str | None:
        """The next line from the client (recorded), or None when it closed the connection."""
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        text = line.rstrip(b"\r").decode("utf-8", "replace")
        return text

    def command(self) -> str | None:
        """The next command line, recorded in ``server.commands``."""
        line = self.readline()
        if line is not None:
            self.server.record(line)
        return line

    def read_data(self) -> bytes:
        """The message after DATA/354, up to the end mark (not included)."""
        lines: list[bytes] = []
        while True:
            line = self.readline()
            if line is None or line == ".":
                break
            lines.append(line.encode())
        data = b"\r\n".join(lines)
        self.server.messages.append(data)
        return data

    def start_tls(self, context: ssl.SSLContext) -> None:
        """Wrap the connection in TLS, server side."""
        self.buffer = b""
        self.sock.settimeout(5.0)
        self.sock = context.wrap_socket(self.sock, server_side=True)
        self.sock.settimeout(None)

    def hold(self) -> None:
        """Say nothing until the client leaves or the server stops."""
        self.sock.settimeout(0.1)
        while not self.server.stopping.is_set():
            try:
                if not self.sock.recv(65536):
                    return
            except TimeoutError:
                continue


Script = Callable[[Peer], None]


def drip_tls_handshake(context: ssl.SSLContext, interval: float = 0.2) -> Script:
    """A script that answers a TLS handshake correctly, but one byte every ``interval`` seconds.

    Each byte arrives well within any per-recv timeout, so only a deadline for the whole
    handshake ends it (a blocking ``wrap_socket`` would wait many minutes for the certificate).
    """

    def script(peer: Peer) -> None:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(incoming, outgoing, server_side=True)
        peer.sock.settimeout(0.1)
        while not peer.server.stopping.is_set():
            try:
                chunk = peer.sock.recv(65536)
                if not chunk:
                    return
                incoming.write(chunk)
            except TimeoutError:
                pass
            with contextlib.suppress(ssl.SSLWantReadError):
                tls.do_handshake()
            pending = outgoing.read()
            if pending:
                peer.drip(pending, interval)

    return script


class ScriptedServer:
    """A TCP server on 127.0.0.1 running ``script(peer)`` in a thread for each connection.

    Attributes:
        port: The port it listens on.
        connections: How many connections it accepted.
        commands: Every command line received, in order, over all connections.
        messages: The message data received after DATA.
        errors: Exceptions the script raised (a client hanging up mid-script is normal).
    """

    def __init__(self, script: Script) -> None:
        self.script = script
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind((HOST, 0))
        self.listener.listen(16)
        self.port: int = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.connections = 0
        self.commands: list[str] = []
        self.messages: list[bytes] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def record(self, line: str) -> None:
        with self._lock:
            self.commands.append(line)

    def verbs(self) -> list[str]:
        """The command words received (EHLO, STARTTLS, AUTH, MAIL, ...)."""
        return [c.split(" ", 1)[0].upper() for c in self.commands]

    def _accept(self) -> None:
        while not self.stopping.is_set():
            ready, _, _ = select.select([self.listener], [], [], 0.05)
            if not ready:
                continue
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._socks.append(sock)
            thread = threading.Thread(target=self._run, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, sock: socket.socket) -> None:
        peer = Peer(sock, self)
        try:
            self.script(peer)
        except (OSError, ValueError) as exc:  # the client hung up, or we closed the socket
            self.errors.append(exc)
        finally:
            with contextlib.suppress(OSError):
                peer.sock.close()

    def close(self) -> None:
        self.stopping.set()
        self._acceptor.join(5)
        self.listener.close()
        with self._lock:
            socks = list(self._socks)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(5)

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


Reply = str | Callable[[Peer, str], bool | None] | None
"""What ``smtp_dialog`` answers a command: a reply line, or a function that answers itself
(returning True to end the session), or None for the default."""


@dataclass
class Dialog:
    """A small, correct SMTP server whose replies a test can override per command.

    Attributes:
        greeting: The 220 line; None sends nothing at all.
        extensions: The EHLO keywords (before TLS; after TLS ``tls_extensions``).
        tls: The server context for STARTTLS (or for implicit TLS when ``implicit``).
        implicit: TLS from the first byte (like port 465).
        replies: Command word -> Reply, replacing the default answer.
        after_data: The reply to the end of the message data (a Reply, as for ``replies``).
    """

    greeting: str | None = "220 hostile.test ESMTP ready"
    extensions: tuple[str, ...] = ("PIPELINING", "8BITMIME", "STARTTLS")
    tls_extensions: tuple[str, ...] = ("PIPELINING", "8BITMIME", "AUTH PLAIN LOGIN")
    tls: ssl.SSLContext | None = None
    implicit: bool = False
    replies: dict[str, Reply] = field(default_factory=dict)
    after_data: Reply = "250 2.0.0 OK queued"

    def answer(self, where: str, reply: Reply) -> None:
        """Override the reply at ``where``: "greeting", "end" (after the data), or a command word."""
        if where == "greeting":
            self.greeting = reply  # type: ignore[assignment]
        elif where == "end":
            self.after_data = reply
        else:
            self.replies[where] = reply

    def __call__(self, peer: Peer) -> None:
        encrypted = False
        if self.implicit:
            assert self.tls is not None
            peer.start_tls(self.tls)
            encrypted = True
        if self.greeting is None:
            peer.hold()
            return
        peer.reply(self.greeting)
        while True:
            line = peer.command()
            if line is None:
                return
            verb = line.split(" ", 1)[0].upper()
            override = self.replies.get(verb)
            if callable(override):
                if override(peer, line):
                    return
                continue
            if override is not None:
                peer.reply(override)
                if override.startswith("421"):
                    return
                continue
            if verb in ("EHLO", "HELO"):
                keywords = self.tls_extensions if encrypted else self.extensions
                lines = ["hostile.test greets you", *keywords]
                for i, kw in enumerate(lines):
                    peer.reply(("250 " if i == len(lines) - 1 else "250-") + kw)
            elif verb == "STARTTLS" and self.tls is not None and not encrypted:
                peer.reply("220 2.0.0 Ready to start TLS")
                peer.start_tls(self.tls)
                encrypted = True
            elif verb == "AUTH":
                words = line.split()
                if len(words) == 2 and words[1].upper() == "LOGIN":
                    peer.reply("334 " + base64.b64encode(b"Username:").decode())
                    peer.readline()
                    peer.reply("334 " + base64.b64encode(b"Password:").decode())
                    peer.readline()
                elif len(words) == 2:
                    peer.reply("334 ")
                    peer.readline()
                peer.reply("235 2.7.0 Authentication successful")
            elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                peer.reply("250 2.1.0 OK")
            elif verb == "DATA":
                peer.reply("354 End data with <CR><LF>.<CR><LF>")
                peer.read_data()
                end = self.after_data
                if callable(end):
                    if end(peer, "."):
                        return
                elif end is not None:
                    peer.reply(end)
            elif verb == "QUIT":
                peer.reply("221 2.0.0 Bye")
                return
            else:
                peer.reply("502 5.5.2 Command not implemented")


def stall(peer: Peer, _line: str) -> bool:
    """A Reply that never answers and keeps the connection open."""
    peer.hold()
    return True


def hang_up(peer: Peer, _line: str) -> bool:
    """A Reply that closes the connection without a word."""
    with contextlib.suppress(OSError):
        peer.sock.shutdown(socket.SHUT_RDWR)
    return True


@contextlib.contextmanager
def scripted(script: Script) -> Iterator[ScriptedServer]:
    """Run ``script`` for each connection on a fresh port; stop the server afterwards."""
    server = ScriptedServer(script)
    try:
        yield server
    finally:
        server.close()


# -- aiosmtpd servers ---------------------------------------------------------------------------


class RecordingSMTP(SMTP):
    """aiosmtpd's SMTP that records every command it dispatches, and can refuse STARTTLS."""

    def __init__(self, handler: Any, *, server: AioServer, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._server = server
        for verb, method in list(self._smtp_methods.items()):
            self._smtp_methods[verb] = self._recorded(verb, method)
        if server.starttls_reply is not None:
            self._smtp_methods["STARTTLS"] = self._recorded("STARTTLS", self._refuse_starttls)
        if server.implicit_tls_auth:
            # aiosmtpd counts only STARTTLS as TLS and hides AUTH on implicit TLS (#274, #281).
            self._auth_require_tls = False

    def _recorded(self, verb: str, method: Callable[[Any], Any]) -> Callable[[Any], Any]:
        async def run(arg: Any) -> Any:
            self._server.record(verb if arg is None else f"{verb} {arg}")
            return await method(arg)

        return run

    async def _refuse_starttls(self, arg: Any) -> None:
        assert self._server.starttls_reply is not None
        await self.push(self._server.starttls_reply)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self._original_transport is None  # STARTTLS calls this again
        super().connection_made(transport)
        if first:
            self._server.count()


class Recorder:
    """An aiosmtpd handler that keeps each message and answers RCPT as a test says."""

    def __init__(
        self,
        refuse: dict[str, str] | None = None,
        drop_after_data: bool = False,
    ) -> None:
        self.refuse = refuse or {}
        self.drop_after_data = drop_after_data
        self.envelopes: list[Envelope] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.drop_after_data:
            # The message is complete at the server; the connection dies before the reply.
            assert server.transport is not None
            server.transport.abort()
            return "250 never sent"
        self.envelopes.append(envelope)
        return "250 2.0.0 OK queued"


class _Controller(Controller):
    def __init__(self, handler: Any, *, server: AioServer, sock: socket.socket, **kw: Any) -> None:
        super().__init__(handler, hostname=HOST, port=sock.getsockname()[1], **kw)
        self._server = server
        self._sock = sock

    def factory(self) -> SMTP:
        return RecordingSMTP(self.handler, server=self._server, **self.SMTP_kwargs)

    def _create_server(self) -> Any:
        # A pre-bound socket (Controller(port=0) does not work), and a short TLS handshake
        # timeout (not a Controller option, aiosmtpd #269) so a refused client ends fast.
        return self.loop.create_server(
            self._factory_invoker,
            sock=self._sock,
            ssl=self.ssl_context,
            ssl_handshake_timeout=3.0 if self.ssl_context is not None else None,
        )

    def _trigger_server(self) -> None:
        # Controller.start() proves the listener answers by connecting to it, with TLS when
        # ssl_context is set. A server that demands a client certificate or speaks only TLS 1.0
        # cannot pass that check, so accept a plain TCP connection as proof.
        with socket.create_connection((HOST, self.port), 1.0) as sock:
            if self.ssl_context is None:
                sock.recv(1024)  # the greeting: connection_made has run and been counted


class AioServer:
    """An aiosmtpd server on 127.0.0.1 that records the commands it receives.

    Args:
        handler: The aiosmtpd handler (default: a ``Recorder`` accepting everything).
        tls_context: Offer STARTTLS with this context.
        ssl_context: Speak implicit TLS with this context.
        starttls_reply: Answer STARTTLS with this line instead of upgrading.
        **kwargs: More Controller/SMTP options (``data_size_limit``, ``require_starttls``...).
    """

    def __init__(
        self,
        handler: Any = None,
        *,
        tls_context: ssl.SSLContext | None = None,
        ssl_context: ssl.SSLContext | None = None,
        starttls_reply: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.handler = handler if handler is not None else Recorder()
        self.starttls_reply = starttls_reply
        self.implicit_tls_auth = ssl_context is not None
        self.commands: list[str] = []
        self.connections = 0
        self._lock = threading.Lock()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind((HOST, 0))
        self.port: int = sock.getsockname()[1]
        options: dict[str, Any] = {"server_hostname": "hostile.test", "ident": "hostile"}
        if tls_context is not None:
            options["tls_context"] = tls_context
        if ssl_context is not None:
            options["ssl_context"] = ssl_context
        options.update(kwargs)
        self.controller = _Controller(self.handler, server=self, sock=sock, **options)

    def record(self, line: str) -> None:
        with self._lock:
            self.commands.append(line)

    def count(self) -> None:
        with self._lock:
            self.connections += 1

    def verbs(self) -> list[str]:
        return [c.split(" ", 1)[0].upper() for c in self.commands]

    def start(self) -> AioServer:
        logging.getLogger("mail.log").setLevel(logging.CRITICAL)  # handshake failures are expected
        self.controller.start()
        with self._lock:
            self.commands.clear()
            self.connections = 0
        return self

    def stop(self) -> None:
        self.controller.stop(no_assert=True)

    def __enter__(self) -> AioServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# -- measuring -----------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a call raised and how long it took."""

    error: BaseException | None = None
    result: Any = None
    elapsed: float = 0.0


def timed(call: Callable[[], Any]) -> Outcome:
    """Run ``call`` and measure it with time.monotonic; an exception is returned, not raised."""
    start = time.monotonic()
    outcome = Outcome()
    try:
        outcome.result = call()
    except Exception as exc:
        outcome.error = exc
    outcome.elapsed = time.monotonic() - start
    return outcome


def full_text(error: BaseException) -> str:
    """Everything an error shows a user: str, repr, and its transcript."""
    parts = [str(error), repr(error)]
    parts += [str(line) for line in getattr(error, "transcript", ())]
    return "\n".join(parts)
