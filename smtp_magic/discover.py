"""discover(): ranked SMTP settings for an email address, from the provider table, MX, SRV and autoconfig.

Where candidates come from, in the order they rank:

1. the built-in table (:mod:`smtp_magic.discovery.providers`), by the address's domain: no network at all;
2. the domain's own autoconfig file over verified HTTPS (``https://autoconfig.<domain>/mail/
   config-v1.1.xml``, then ``https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml``),
   parsed with defusedxml, at most 64 kB, within ``timeout``, never redirected off the domain;
3. SRV records: ``_submissions._tcp`` (implicit TLS, RFC 8314 section 5.1) before
   ``_submission._tcp`` (STARTTLS, RFC 6186 section 3.1);
4. the table again, by the domain's MX hosts (Google Workspace, Microsoft 365, ...) and by the
   ``include:`` terms of its SPF record (SendGrid, Amazon SES, ...).

Never a port scan: no host or port is tried that these sources did not name. DNS and plain
HTTP can be forged, so a host outside the address's own domain that came from SRV or autoconfig
is marked ``confirm=True`` ("confirm before sending a password") and ranks after the rest. A
lookup that fails (offline, a timeout, a hostile file) becomes a note, never an error.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from smtp_magic.discovery import autoconfig, providers
from smtp_magic.discovery.lookups import Found, look_up
from smtp_magic.discovery.providers import Login, Provider
from smtp_magic.errors import SettingsError
from smtp_magic.printable import printable
from smtp_magic.report import ProbeReport
from smtp_magic.settings import Settings
from smtp_magic.smtp import refusals

__all__ = ["Candidate", "Discovery", "discover"]

Source = Literal["table", "autoconfig", "srv", "mx", "spf"]

_LOGIN_WORDS = {
    "password": "password",
    "app-password": "app password",
    "oauth2": "OAuth2",
    "api-key": "API key as password",
}
_SOURCE_WORDS = {
    "table": "built-in table",
    "autoconfig": "the domain's autoconfig file",
    "srv": "DNS SRV record",
    "mx": "MX record",
    "spf": "SPF record",
}


@dataclass(frozen=True)
class Candidate:
    """One way to submit mail for the address.

    Attributes:
        host: The submission server.
        port: Its port.
        security: "tls" (implicit TLS) or "starttls".
        login: "password", "app-password", "oauth2" or "api-key" (an API key as the password).
        username: The login name to use ("" when the provider's console issues one).
        note: One line on what to do before the first send.
        source: Where it came from: "table", "autoconfig", "srv", "mx" or "spf".
        confirm: True when the host came from DNS or HTTP and lies outside the address's
            domain: such an answer may be forged, so confirm it before sending a password.
        provider: The provider's name, when known.
        oauth: The OAuth2 authority ("google", "microsoft") when ``login == "oauth2"``.
    """

    host: str
    port: int
    security: Literal["tls", "starttls"]
    login: Login
    username: str
    note: str
    source: Source
    confirm: bool = False
    provider: str | None = None
    oauth: str | None = None

    def settings(self, sender: str | None = None, **overrides: Any) -> Settings:
        """Settings for this candidate (no password: that comes from SMTP_PASSWORD, keyring or a prompt)."""
        values: dict[str, Any] = {
            "port": self.port,
            "security": self.security,
            "username": self.username or None,
            "sender": sender,
        }
        values.update(overrides)
        return Settings(self.host, **values)

    @property
    def how_to_log_in(self) -> str:
        """The login kind in words, e.g. "OAuth2 (microsoft)"."""
        words = _LOGIN_WORDS[self.login]
        return f"{words} ({self.oauth})" if self.oauth else words


@dataclass(frozen=True)
class Discovery:
    """The ranked candidates for one address, with notes on what was looked up and what failed.

    Attributes:
        address: The address asked about.
        domain: Its domain.
        candidates: Best first.
        notes: One line per lookup that found nothing or failed (offline is not an error).
        provider: The provider recognised from the domain, MX or SPF, if any.
    """

    address: str
    domain: str
    candidates: tuple[Candidate, ...]
    notes: tuple[str, ...] = ()
    provider: Provider | None = field(default=None, repr=False)

    @property
    def best(self) -> Candidate | None:
        """The first candidate, or None when nothing was found."""
        return self.candidates[0] if self.candidates else None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.candidates)

    def __len__(self) -> int:
        return len(self.candidates)

    def __getitem__(self, index: int) -> Candidate:
        return self.candidates[index]

    def probe(
        self, count: int = 2, *, timeout: float = 5.0, cafile: str | None = None
    ) -> tuple[ProbeReport, ...]:
        """Probe the ``count`` best candidates with :func:`smtp_magic.probe`; sends no credentials.

        Only EHLO, STARTTLS and QUIT are sent, to the host and port each candidate names.
        """
        from smtp_magic.probe import probe

        chosen = [c for c in self.candidates if c.host != "127.0.0.1" or c.provider][:count]
        return tuple(probe(c.host, (c.port,), timeout=timeout, cafile=cafile) for c in chosen)

    def rows(self) -> list[tuple[str, ...]]:
        """The table as rows of text: number, host, port, security, login, source, note."""
        # Hosts, user names and notes may come from DNS or an autoconfig file: shown printable.
        return [tuple(printable(value) for value in row) for row in self._raw_rows()]

    def _raw_rows(self) -> list[tuple[str, ...]]:
        return [
            (
                str(number),
                c.host,
                str(c.port),
                c.security,
                c.how_to_log_in,
                _SOURCE_WORDS[c.source] + (" (confirm!)" if c.confirm else ""),
                (f"{c.provider}: " if c.provider else "") + c.note,
            )
            for number, c in enumerate(self.candidates, start=1)
        ]

    def __str__(self) -> str:
        head = ("#", "host", "port", "security", "login", "source", "note")
        rows = [head, *self.rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
            for r in rows
        ]
        title = f"Settings for {printable(self.address)}"
        if not self.candidates:
            lines = ["(nothing found: ask your provider for its SMTP submission host)"]
        return "\n".join([title, *lines, *(f"note: {printable(n)}" for n in self.notes)])

    def _repr_html_(self) -> str:
        head = ("#", "host", "port", "security", "login", "source", "note")
        cells = "".join(f"<th>{h}</th>" for h in head)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>"
            for row in self.rows()
        )
        notes = "".join(f"<li>{html.escape(printable(n))}</li>" for n in self.notes)
        return (
            f"<p><b>Settings for {html.escape(self.address)}</b></p>"
            f"<table><tr>{cells}</tr>{body}</table>" + (f"<ul>{notes}</ul>" if notes else "")
        )


def _split(address: str) -> tuple[str, str]:
    text = address.strip()
    if "<" in text and text.endswith(">"):
        text = text[text.rindex("<") + 1 : -1]
    local, at, domain = text.rpartition("@")
    domain = domain.rstrip(".").lower()
    if not at or not local or not domain or "." not in domain or any(c.isspace() for c in text):
        raise SettingsError(
            f"{address!r} is not an email address: give one like discover('alice@example.org')."
        )
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise SettingsError(f"the domain of {address!r} is not a valid host name.") from None
    return f"{local}@{domain}", domain


def _within(host: str, domain: str) -> bool:
    host = host.lower().rstrip(".")
    return host == domain or host.endswith("." + domain)


def _from_provider(
    provider: Provider, address: str, source: Source, mx: str = ""
) -> list[Candidate]:
    region = providers.ses_region(mx)
    return [
        Candidate(
            host=endpoint.host.format(region=region),
            port=endpoint.port,
            security=endpoint.security,
            login=provider.login,
            username=autoconfig.fill(provider.username, address),
            note=provider.note,
            source=source,
            provider=provider.name,
            oauth=provider.oauth,
        )
        for endpoint in provider.endpoints
    ]


def discover(
    address: str,
    *,
    resolver: Any | None = None,
    timeout: float = 5.0,
    cafile: str | None = None,
) -> Discovery:
    """Find SMTP submission settings for an email address, best first.

    A domain in the built-in table (gmail.com, outlook.com, ...) is answered from the table
    alone, offline. Any other domain is looked up in parallel: its autoconfig file, its SRV
    records, its MX hosts and its SPF record (see the module docstring for the ranking).

    Args:
        address: An email address, e.g. "alice@example.org".
        resolver: A ``dns.resolver.Resolver`` (dnspython) to use for every DNS lookup, and to
            resolve the autoconfig hosts; default: the system's configuration.
        timeout: Seconds each lookup may take (DNS query, or the whole of one HTTPS fetch).
        cafile: Extra CA certificates to trust for the autoconfig HTTPS fetch.

    Returns:
        A :class:`Discovery`; failed lookups are in its ``notes``.

    Raises:
        SettingsError: ``address`` is not an email address, or ``timeout`` is not positive.
    """
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not timeout > 0:
        raise SettingsError(f"timeout={timeout!r} must be a positive number of seconds.")
    address, domain = _split(address)
    provider = providers.by_domain(domain)
    if provider is not None:
        return Discovery(
            address,
            domain,
            tuple(_from_provider(provider, address, "table")),
            notes=(f"{domain} is {provider.name}: settings from the built-in table.",),
            provider=provider,
        )
    found = look_up(address, domain, resolver=resolver, timeout=timeout, cafile=cafile)
    return _rank(address, domain, found)


def _rank(address: str, domain: str, found: Found) -> Discovery:
    candidates: list[Candidate] = []
    provider: Provider | None = None
    for server in found.autoconfig:
        if server.security == "plain":
            found.notes.append(
                f"the autoconfig file lists {server.host}:{server.port} without TLS: skipped "
                "(smtp_magic never sends a password in plaintext)"
            )
            continue
        oauth = "OAuth2" in server.authentication
        known = providers.by_host(server.host)
        candidates.append(
            Candidate(
                host=server.host,
                port=server.port,
                security="tls" if server.security == "tls" else "starttls",
                login="oauth2" if oauth and known and known.oauth else "password",
                username=autoconfig.fill(server.username or "%EMAILADDRESS%", address),
                note="listed in the domain's own autoconfig file",
                source="autoconfig",
                confirm=not _within(server.host, domain),
                provider=known.name if known else None,
                oauth=known.oauth if oauth and known else None,
            )
        )
    for service, record in found.srv:
        implicit = service == "_submissions"
        candidates.append(
            Candidate(
                host=record.target,
                port=record.port,
                security="tls" if implicit else "starttls",
                login="password",
                username=address,
                note=f"{service}._tcp.{domain} SRV record"
                + (" (implicit TLS, RFC 8314)" if implicit else " (STARTTLS, RFC 6186)"),
                source="srv",
                confirm=not _within(record.target, domain),
            )
        )
    matchers: list[tuple[Source, list[str], Callable[[str], Provider | None]]] = [
        ("mx", found.mx, providers.by_mx),
        ("spf", found.spf, providers.by_spf),
    ]
    for source, names, match in matchers:
        for name in names:
            matched = match(name)
            if matched is not None:
                provider = provider or matched
                candidates.extend(_from_provider(matched, address, source, name))
                break
    # Stable sort: confirmed-by-origin first, each group in source order.
    ranked = sorted(candidates, key=lambda c: c.confirm)
    unique: dict[tuple[str, int], Candidate] = {}
    for candidate in ranked:
        unique.setdefault((candidate.host, candidate.port), candidate)
    if not unique:
        found.notes.append(
            f"nothing found for {domain}: ask your provider for its SMTP submission host "
            "(usually port 465 or 587)"
        )
    if provider is not None:
        for candidate in unique.values():
            if providers.by_host(candidate.host) is None:  # a host of the domain's own
                refusals.remember(candidate.host, provider.key)
    return Discovery(address, domain, tuple(unique.values()), tuple(found.notes), provider)
