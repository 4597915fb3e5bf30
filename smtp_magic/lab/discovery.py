"""A loopback DNS server (dnslib) and HTTPS server (trustme) to rehearse settings discovery offline.

``DiscoveryLab`` answers MX, SRV, TXT and A records for made-up domains and serves autoconfig
files over HTTPS with a certificate from its own CA, so tutorials and tests run ``discover()``
against a known world without any real network::

    with DiscoveryLab() as world:
        world.dns("example.test", "MX", "10 aspmx.l.google.com.")
        world.autoconfig("example.test", servers=[("smtp.example.test", 465, "SSL")])
        found = world.discover("alice@example.test")

Both servers listen on 127.0.0.1 only, on free ports. Hostile answers can be staged too: a
redirect to another domain, an XML bomb, a huge or slowly dripped file, or a certificate for
another name (``autoconfig(..., certificate_for="other.test")``).
"""

from __future__ import annotations

import http.server
import ssl
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme

__all__ = ["DiscoveryLab", "Page", "autoconfig_xml"]

HOST = "127.0.0.1"


def autoconfig_xml(domain: str, servers: Iterable[tuple[str, int, str]], auth: str = "") -> bytes:
    """An autoconfig file listing SMTP servers as (host, port, socketType) triples."""
    outgoing = "".join(
        f'<outgoingServer type="smtp"><hostname>{host}</hostname><port>{port}</port>'
        f"<socketType>{socket_type}</socketType><username>%EMAILADDRESS%</username>"
        f"<authentication>{auth or 'password-cleartext'}</authentication></outgoingServer>"
        for host, port, socket_type in servers
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<clientConfig version="1.1">'
        f'<emailProvider id="{domain}"><domain>{domain}</domain>{outgoing}</emailProvider>'
        "</clientConfig>\n"
    ).encode()


@dataclass
class Page:
    """What the HTTPS server answers for one host and path."""

    body: bytes = b""
    status: int = 200
    location: str | None = None
    drip: float = 0.0  # seconds between 64-byte chunks; > 0 makes a slow drip


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _HTTPSServer

    def do_GET(self) -> None:
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        page = self.server.pages.get((host, self.path))
        self.server.requests.append(f"{host}{self.path}")
        if page is None:
            self.send_error(404)
            return
        self.send_response(page.status)
        if page.location:
            self.send_header("Location", page.location)
        self.send_header("Content-Type", "application/xml")
        self.end_headers()
        try:
            if page.drip:
                for start in range(0, len(page.body), 64):
                    self.wfile.write(page.body[start : start + 64])
                    self.wfile.flush()
                    time.sleep(page.drip)
            else:
                self.wfile.write(page.body)
        except OSError:
            pass  # the client gave up, as it should

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return


class _HTTPSServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    pages: dict[tuple[str, str], Page]
    requests: list[str]


class DiscoveryLab:
    """A loopback DNS server and HTTPS server playing the domains of a discovery exercise.

    Attributes:
        ca: The trustme CA that signs the HTTPS certificates (its PEM at ``cafile``).
        requests: The HTTPS requests served, as "host/path".
        queries: The DNS questions asked, as "name TYPE".
    """

    def __init__(self) -> None:
        self.ca = trustme.CA(organization_name="smtp_magic discovery lab CA")
        self._records: dict[tuple[str, str], list[str]] = {}
        self._names: set[str] = set()
        self._delay: dict[str, float] = {}
        self._wrong_names: dict[str, str] = {}
        self.queries: list[str] = []
        self._dns: Any = None
        self._https: _HTTPSServer | None = None
        self._dir: Path | None = None
        self.cafile = ""

    # --- staging ----------------------------------------------------------------------------

    def dns(self, name: str, rtype: str, value: str, *, delay: float = 0.0) -> None:
        """Add a record, in zone-file syntax for its value (``"10 mx.example.test."``).

        ``delay`` makes every answer for ``name`` arrive that many seconds late.
        """
        name = name.lower().rstrip(".")
        self._records.setdefault((name, rtype.upper()), []).append(value)
        self._names.add(name)
        if delay:
            self._delay[name] = delay

    def autoconfig(
        self,
        domain: str,
        servers: Iterable[tuple[str, int, str]] = (),
        *,
        where: str = "autoconfig",
        page: Page | None = None,
        certificate_for: str | None = None,
    ) -> str:
        """Serve an autoconfig file for ``domain`` and point its host name at this lab.

        Args:
            domain: The address domain.
            servers: (host, port, socketType) of each SMTP server to list.
            where: "autoconfig" (``autoconfig.<domain>/mail/config-v1.1.xml``) or
                "well-known" (``<domain>/.well-known/autoconfig/mail/config-v1.1.xml``).
            page: A custom answer (hostile ones included) instead of a file built from servers.
            certificate_for: Present a certificate for this other name instead.

        Returns:
            The URL served.
        """
        host = f"autoconfig.{domain}" if where == "autoconfig" else domain
        path = (
            "/mail/config-v1.1.xml"
            if where == "autoconfig"
            else "/.well-known/autoconfig/mail/config-v1.1.xml"
        )
        self._pages[(host, path)] = page or Page(autoconfig_xml(domain, servers))
        if (host, "A") not in self._records:
            self.dns(host, "A", HOST)
        if certificate_for:
            self._wrong_names[host] = certificate_for
        return f"https://{host}{path}"

    @property
    def _pages(self) -> dict[tuple[str, str], Page]:
        if not hasattr(self, "_page_table"):
            self._page_table: dict[tuple[str, str], Page] = {}
        return self._page_table

    # --- running ----------------------------------------------------------------------------

    def start(self) -> DiscoveryLab:
        """Start both servers on free loopback ports."""
        from dnslib.server import DNSServer

        self._dir = Path(tempfile.mkdtemp(prefix="smtp_magic-discovery-"))
        self.cafile = str(self._dir / "discovery-ca.pem")
        self.ca.cert_pem.write_to_path(self.cafile)
        self._dns = DNSServer(_Resolver(self), address=HOST, port=0, logger=_QuietLogger())
        # serve_forever polls for shutdown every 0.5 s by default: stop() would wait that long.
        threading.Thread(
            target=self._dns.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        https = _HTTPSServer((HOST, 0), _Handler)
        https.pages, https.requests = self._pages, []
        https.socket = self._context().wrap_socket(https.socket, server_side=True)
        threading.Thread(
            target=https.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        self._https = https
        return self

    def _context(self) -> ssl.SSLContext:
        """A server context that picks a certificate per requested name (SNI), issued on demand.

        Each staged host gets a certificate for its own name, or for ``certificate_for``.
        """
        cache: dict[str, ssl.SSLContext] = {}

        def for_name(name: str) -> ssl.SSLContext:
            if name not in cache:
                ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                self.ca.issue_cert(name).configure_cert(ctx)
                cache[name] = ctx
            return cache[name]

        def choose(sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
            if name:
                sock.context = for_name(self._wrong_names.get(name, name))

        main = for_name("localhost")
        main.sni_callback = choose
        return main

    def stop(self) -> None:
        """Stop both servers and remove the CA file. Safe to call twice."""
        if self._dns is not None:
            self._dns.server.shutdown()
            self._dns.server.server_close()
            self._dns = None
        if self._https is not None:
            self._https.shutdown()
            self._https.server_close()
            self._https = None
        if self._dir is not None:
            for file in self._dir.iterdir():
                file.unlink()
            self._dir.rmdir()
            self._dir = None

    def __enter__(self) -> DiscoveryLab:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def dns_port(self) -> int:
        """The UDP port of the DNS server."""
        return int(self._dns.server.server_address[1])

    @property
    def https_port(self) -> int:
        """The TCP port of the HTTPS server."""
        assert self._https is not None, "start the lab first"
        return int(self._https.server_address[1])

    @property
    def requests(self) -> list[str]:
        """The HTTPS requests served so far, as "host/path"."""
        return list(self._https.requests) if self._https else []

    def resolver(self, timeout: float = 2.0) -> Any:
        """A ``dns.resolver.Resolver`` that asks only this lab's DNS server."""
        import dns.resolver

        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [HOST]
        resolver.port = self.dns_port
        resolver.timeout = resolver.lifetime = timeout
        return resolver

    def discover(self, address: str, timeout: float = 2.0) -> Any:
        """``smtp_magic.discover(address)`` against this lab's DNS and HTTPS servers."""
        from smtp_magic.discover import discover
        from smtp_magic.discovery import lookups as discoverdns

        saved, discoverdns.HTTPS_PORT = discoverdns.HTTPS_PORT, self.https_port
        try:
            return discover(
                address, resolver=self.resolver(timeout), timeout=timeout, cafile=self.cafile
            )
        finally:
            discoverdns.HTTPS_PORT = saved

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._records)


class _Resolver:
    """dnslib's resolver interface over the lab's records."""

    def __init__(self, lab: DiscoveryLab) -> None:
        self.lab = lab

    def resolve(self, request: Any, handler: Any) -> Any:
        from dnslib import QTYPE, RCODE, RR

        reply = request.reply()
        name = str(request.q.qname).lower().rstrip(".")
        rtype = QTYPE[request.q.qtype]
        self.lab.queries.append(f"{name} {rtype}")
        time.sleep(self.lab._delay.get(name, 0.0))
        if name not in self.lab._names:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for value in self.lab._records.get((name, rtype), []):
            reply.add_answer(*RR.fromZone(f"{name}. 60 IN {rtype} {value}"))
        return reply


class _QuietLogger:
    """dnslib logs every query to stdout by default; the lab keeps its own list instead."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None
