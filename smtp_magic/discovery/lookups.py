"""The network half of discover(): MX, SPF, SRV and autoconfig lookups, run in parallel, failures as notes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from smtp_magic.discovery import autoconfig
from smtp_magic.smtp import lookup

__all__ = ["AUTOCONFIG_URLS", "HTTPS_PORT", "SRV_SERVICES", "Found", "look_up"]

HTTPS_PORT = 443
"""The port autoconfig files are fetched from (tests point it at a loopback server)."""

# Thunderbird's order (research/providers-oauth-2026.md section 2); plain http is never used.
AUTOCONFIG_URLS = (
    "https://autoconfig.{domain}/mail/config-v1.1.xml",
    "https://{domain}/.well-known/autoconfig/mail/config-v1.1.xml",
)
# RFC 8314 section 5.1: _submissions (implicit TLS) is preferred over RFC 6186's _submission.
SRV_SERVICES = ("_submissions", "_submission")


@dataclass
class Found:
    """What the lookups returned, before ranking ."""

    autoconfig: list[autoconfig.OutgoingServer] = field(default_factory=list)
    srv: list[tuple[str, Any]] = field(default_factory=list)  # (service, lookup.Srv)
    mx: list[str] = field(default_factory=list)
    spf: list[str] = field(default_factory=list)  # include: domains
    notes: list[str] = field(default_factory=list)


def _spf_includes(records: list[str]) -> list[str]:
    """The include: and redirect= domains of the domain's SPF record (RFC 7208 sections 5.2, 6.1)."""
    names: list[str] = []
    for record in records:
        terms = record.split()
        if not terms or terms[0].lower() != "v=spf1":
            continue
        for term in terms[1:]:
            term = term.lstrip("+?~-").lower()
            for prefix in ("include:", "redirect="):
                if term.startswith(prefix):
                    names.append(term[len(prefix) :])
    return names


def look_up(
    address: str, domain: str, *, resolver: Any | None, timeout: float, cafile: str | None
) -> Found:
    """Run every lookup for ``domain`` at once; each is bounded by ``timeout``."""
    found = Found()
    try:
        dns = lookup.make_resolver(resolver)
    except lookup.LookupProblem as exc:
        found.notes.append(f"{exc}; only the built-in table was used")
        return found
    port = HTTPS_PORT

    def fetch(url: str) -> list[autoconfig.OutgoingServer]:
        data = lookup.https_get(
            url, domain=domain, resolver=dns, timeout=timeout, cafile=cafile, port=port
        )
        try:
            return autoconfig.parse(data)
        except autoconfig.AutoconfigError as exc:
            raise lookup.LookupProblem(f"{url}: {exc}") from None

    with ThreadPoolExecutor(max_workers=6) as pool:
        configs = [pool.submit(fetch, url.format(domain=domain)) for url in AUTOCONFIG_URLS]
        srvs = [
            pool.submit(lookup.srv, dns, f"{service}._tcp.{domain}", timeout)
            for service in SRV_SERVICES
        ]
        mx = pool.submit(lookup.mx, dns, domain, timeout)
        spf = pool.submit(lookup.txt, dns, domain, timeout)
        for config in configs:  # the first file that answers wins, as in Thunderbird
            try:
                found.autoconfig = config.result()
                break
            except lookup.LookupProblem as exc:
                found.notes.append(f"autoconfig: {exc}")
        for service, records in zip(SRV_SERVICES, srvs, strict=True):
            try:
                for record in records.result():
                    if record.target in ("", "."):  # RFC 6186 section 3.4: not offered
                        found.notes.append(f"{service}._tcp.{domain} says: not offered")
                        continue
                    found.srv.append((service, record))
            except lookup.LookupProblem as exc:
                found.notes.append(f"SRV: {exc}")
        try:
            found.mx = mx.result()
        except lookup.LookupProblem as exc:
            found.notes.append(f"MX: {exc}")
        try:
            found.spf = _spf_includes(spf.result())
        except lookup.LookupProblem as exc:
            found.notes.append(f"SPF: {exc}")
    return found
