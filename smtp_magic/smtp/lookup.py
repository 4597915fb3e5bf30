"""Network lookups for discovery: DNS (MX, SRV, TXT, A) through dnspython and a bounded HTTPS GET.

This is the only place discovery touches the network. Every lookup has a deadline; failures
become :class:`LookupProblem` with a one-line reason, which discovery turns into a note.
dnspython is imported on first use (the ``discover`` extra).
"""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "MAX_AUTOCONFIG_BYTES",
    "LookupProblem",
    "Srv",
    "addresses",
    "https_get",
    "make_resolver",
    "mx",
    "srv",
    "txt",
]

MAX_AUTOCONFIG_BYTES = 64 * 1024
"""The largest autoconfig file read; real ones are 1 to 5 kB (ISPDB)."""

MAX_REDIRECTS = 2


class LookupProblem(Exception):
    """A lookup failed; ``str()`` says why in one line, for a note."""


@dataclass(frozen=True)
class Srv:
    """One SRV record (RFC 2782): target host, port, priority (lower first) and weight."""

    target: str
    port: int
    priority: int
    weight: int


def make_resolver(resolver: Any | None) -> Any:
    """The given dnspython Resolver, or one configured from the system.

    Raises:
        LookupProblem: dnspython is not installed, or the system has no resolver configuration.
    """
    try:
        import dns.resolver
    except ImportError:
        raise LookupProblem(
            "DNS lookups need dnspython: pip install 'smtp-magic[discover]'"
        ) from None
    if resolver is not None:
        return resolver
    try:
        return dns.resolver.Resolver()
    except Exception as exc:  # NoResolverConfiguration, OSError reading resolv.conf
        raise LookupProblem(f"no DNS resolver is configured ({type(exc).__name__})") from None


def _query(resolver: Any, name: str, rdtype: str, timeout: float) -> list[Any]:
    import dns.exception
    import dns.resolver

    try:
        answer = resolver.resolve(name, rdtype, lifetime=timeout, search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.Timeout:
        raise LookupProblem(
            f"{rdtype} lookup of {name} timed out after {round(timeout, 1):g} s"
        ) from None
    except dns.exception.DNSException as exc:
        raise LookupProblem(f"{rdtype} lookup of {name} failed ({type(exc).__name__})") from None
    return list(answer)


def _name(value: Any) -> str:
    return str(value).rstrip(".").lower()


def mx(resolver: Any, domain: str, timeout: float) -> list[str]:
    """MX hosts of ``domain``, most preferred first."""
    records = sorted(_query(resolver, domain, "MX", timeout), key=lambda r: r.preference)
    return [_name(r.exchange) for r in records]


def srv(resolver: Any, name: str, timeout: float) -> list[Srv]:
    """SRV records of ``name``, in RFC 2782 order (priority, then heavier weight first)."""
    records = [
        Srv(_name(r.target), int(r.port), int(r.priority), int(r.weight))
        for r in _query(resolver, name, "SRV", timeout)
    ]
    return sorted(records, key=lambda r: (r.priority, -r.weight))


def txt(resolver: Any, domain: str, timeout: float) -> list[str]:
    """TXT strings of ``domain`` (each record's strings joined, RFC 7208 section 3.3)."""
    return [
        b"".join(r.strings).decode("utf-8", "replace")
        for r in _query(resolver, domain, "TXT", timeout)
    ]


def addresses(resolver: Any, host: str, timeout: float) -> list[str]:
    """IPv4 then IPv6 addresses of ``host``."""
    found = [r.address for r in _query(resolver, host, "A", timeout)]
    return found + [r.address for r in _query(resolver, host, "AAAA", timeout)]


def _within(host: str, domain: str) -> bool:
    host, domain = host.lower().rstrip("."), domain.lower().rstrip(".")
    return host == domain or host.endswith("." + domain)


def https_get(
    url: str,
    *,
    domain: str,
    resolver: Any,
    timeout: float,
    cafile: str | None = None,
    port: int = 443,
    limit: int = MAX_AUTOCONFIG_BYTES,
) -> bytes:
    """GET ``url`` over verified HTTPS and return the body of a 200 answer.

    Bounded in every way a hostile server could stretch it: ``timeout`` covers the whole fetch
    (a slow drip cannot hold it longer), the body is capped at ``limit`` bytes, and redirects
    are followed only to https URLs inside ``domain`` (at most two). The host is resolved with
    ``resolver``, so lookups and fetches agree on one DNS view.

    Raises:
        LookupProblem: anything else, in one line (certificate, status, size, time, redirect).
    """
    deadline = time.monotonic() + timeout
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme != "https" or not host:
            raise LookupProblem(f"{url} is not an https URL; only verified HTTPS is used")
        status, headers, body = _fetch_once(
            host, parts.path or "/", port, deadline, resolver, cafile, limit
        )
        if status in (301, 302, 303, 307, 308):
            target = headers.get("location", "")
            next_host = urlsplit(target).hostname or ""
            if not target.startswith("https://") or not _within(next_host, domain):
                raise LookupProblem(
                    f"https://{host}{parts.path} redirects to {target[:80]!r}, outside {domain}: "
                    "not followed"
                )
            url = target
            continue
        if status != 200:
            raise LookupProblem(f"https://{host}{parts.path} answered HTTP {status}")
        return body
    raise LookupProblem(f"more than {MAX_REDIRECTS} redirects from {url}")


def _fetch_once(
    host: str,
    path: str,
    port: int,
    deadline: float,
    resolver: Any,
    cafile: str | None,
    limit: int,
) -> tuple[int, dict[str, str], bytes]:
    where = f"https://{host}{path}"
    remaining = deadline - time.monotonic()
    ips = addresses(resolver, host, max(remaining, 0.01))
    if not ips:
        raise LookupProblem(f"{host} has no address")
    context = ssl.create_default_context(cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        raw = socket.create_connection((ips[0], port), timeout=_left(deadline, where))
    except OSError as exc:
        raise LookupProblem(f"cannot connect to {where} ({exc.strerror or exc})") from None
    try:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            tls.settimeout(_left(deadline, where))
            # HTTP/1.0: no chunked encoding, and the server closes after the body.
            request = f"GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: smtp_magic\r\n\r\n"
            tls.sendall(request.encode("ascii"))
            data = bytearray()
            while True:
                tls.settimeout(_left(deadline, where))
                chunk = tls.recv(16384)
                if not chunk:
                    break
                data += chunk
                if len(data) > limit + 8192:  # headers plus the largest body allowed
                    raise LookupProblem(f"{where} sent more than {limit // 1024} kB: ignored")
    except ssl.SSLCertVerificationError as exc:
        raise LookupProblem(
            f"the certificate of {host} did not verify ({exc.verify_message}): ignored"
        ) from None
    except TimeoutError:
        raise LookupProblem(f"{where} took longer than the timeout: ignored") from None
    except (OSError, ssl.SSLError) as exc:
        raise LookupProblem(f"fetching {where} failed ({type(exc).__name__})") from None
    return _parse_response(bytes(data), where, limit)


def _left(deadline: float, where: str) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError(where)
    return remaining


def _parse_response(data: bytes, where: str, limit: int) -> tuple[int, dict[str, str], bytes]:
    head, sep, body = data.partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")
    fields = lines[0].split(" ", 2)
    if not sep or len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
        raise LookupProblem(f"{where} did not answer HTTP")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if len(body) > limit:
        raise LookupProblem(f"{where} sent more than {limit // 1024} kB: ignored")
    return int(fields[1]), headers, body
