"""What TLS a connection used (TLSInfo, CertInfo) and the certificate-and-TLS card that shows it."""

from __future__ import annotations

import datetime as dt
import html
import re
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "CertInfo",
    "ChainLink",
    "TLSInfo",
    "auth_offered_before_tls",
    "card_html",
    "card_rows",
    "card_text",
]


@dataclass(frozen=True)
class ChainLink:
    """One certificate of the chain: whom it names, who signed it, and when it expires."""

    subject: str
    issuer: str
    not_after: dt.datetime | None

    def days_left(self, now: dt.datetime | None = None) -> int | None:
        """Whole days until expiry (negative once expired), or None when unknown."""
        if self.not_after is None:
            return None
        return (self.not_after - (now or dt.datetime.now(dt.UTC))).days

    def describe(self, now: dt.datetime | None = None) -> str:
        """ "localhost, issued by Lab CA, expires 3000-01-01 (in 1000 days)"."""
        days = self.days_left(now)
        if self.not_after is None or days is None:
            return f"{self.subject}, issued by {self.issuer}"
        when = f"in {days} days" if days >= 0 else f"EXPIRED {-days} days ago"
        return (
            f"{self.subject}, issued by {self.issuer}, expires {self.not_after:%Y-%m-%d} ({when})"
        )


@dataclass(frozen=True)
class CertInfo:
    """The server certificate: who it names, who signed it, when it expires, and whether it verified.

    ``chain`` runs from the server's certificate up to the trust anchor, as far as it is known;
    ``checked_name`` is the host name checked against it, ``matched_name`` the subjectAltName
    entry that matched ("DNS localhost", "IP Address 127.0.0.1"); ``sni`` the name sent in the
    TLS ClientHello, None when the host is an IP address (RFC 6066 section 3 forbids those).
    """

    subject: str
    issuer: str
    not_after: dt.datetime | None
    names: tuple[str, ...] = ()
    verified: bool = True
    error: str | None = None
    chain: tuple[ChainLink, ...] = ()
    checked_name: str | None = None
    matched_name: str | None = None
    sni: str | None = None

    def __str__(self) -> str:
        expiry = f", expires {self.not_after:%Y-%m-%d}" if self.not_after else ""
        state = "verified" if self.verified else f"NOT verified ({self.error})"
        return f"{self.subject} issued by {self.issuer}{expiry}, {state}"


@dataclass(frozen=True)
class TLSInfo:
    """The negotiated TLS version, cipher and certificate."""

    version: str
    cipher: str
    certificate: CertInfo | None = None

    def __str__(self) -> str:
        return f"{self.version} {self.cipher}"


class _Line(Protocol):
    @property
    def direction(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def encrypted(self) -> bool: ...


def auth_offered_before_tls(transcript: Iterable[_Line]) -> tuple[str, ...]:
    """The AUTH mechanisms a server advertised in plaintext (an EHLO reply outside TLS)."""
    for line in transcript:
        words = line.text[4:].upper().split() if line.direction == "S" else []
        if not line.encrypted and line.text[:3] == "250" and words[:1] == ["AUTH"]:
            return tuple(words[1:])
    return ()


def card_rows(
    tls: TLSInfo | None,
    *,
    auth_before_tls: Sequence[str] = (),
    now: dt.datetime | None = None,
) -> list[tuple[str, str]]:
    """The card as (label, value) rows: TLS, SNI, the name check, the chain, warnings."""
    rows: list[tuple[str, str]] = []
    if auth_before_tls:
        rows.append(
            (
                "Warning",
                f"the server offered AUTH ({' '.join(auth_before_tls)}) before TLS: a client that "
                "logs in there sends the password readable on the path. smtp_magic never does "
                "(RFC 4954 section 4, RFC 8314 section 3).",
            )
        )
    if tls is None:
        rows.append(("TLS", "none: the conversation was not encrypted"))
        return rows
    rows.append(("TLS", f"{tls.version}, cipher {tls.cipher}"))
    cert = tls.certificate
    if cert is None:
        return rows
    rows.append(
        (
            "SNI sent",
            cert.sni or "none (the host is an IP address, never sent as SNI: RFC 6066 section 3)",
        )
    )
    if cert.checked_name:
        if cert.matched_name:
            state = f"{cert.checked_name} matched {cert.matched_name}"
        else:
            state = f"{cert.checked_name} matched no name in the certificate ({', '.join(cert.names) or 'none'})"
        rows.append(("Name", state))
    state = "verified" if cert.verified else f"NOT verified ({cert.error})"
    rows.append(("Certificate", state))
    chain = cert.chain or (ChainLink(cert.subject, cert.issuer, cert.not_after),)
    for depth, link in enumerate(chain):
        label = "Chain" if depth == 0 else ""
        rows.append((label, f"{depth}. {link.describe(now)}"))
    return rows


def card_html(
    tls: TLSInfo | None,
    *,
    auth_before_tls: Sequence[str] = (),
    title: str = "Certificate and TLS",
) -> str:
    """The card as a small HTML table (no script, no style sheet), the warning in red."""
    cells = []
    for label, value in card_rows(tls, auth_before_tls=auth_before_tls):
        color = " style='color:#cf222e'" if label == "Warning" else ""
        cells.append(
            f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(label)}</th>"
            f"<td style='text-align:left'{color}>{html.escape(value)}</td></tr>"
        )
    return f"<table><caption style='text-align:left'><strong>{html.escape(title)}</strong></caption>{''.join(cells)}</table>"


_DAYS = re.compile(r"\((in|EXPIRED) \d+ days?( ago)?\)")
"""An expiry count in a chain link's description, kept on one line when the card is wrapped."""


def card_text(
    tls: TLSInfo | None, *, auth_before_tls: Sequence[str] = (), width: int = 100
) -> list[str]:
    """The card as text lines: a row each, its value wrapped to ``width`` columns."""
    rows = card_rows(tls, auth_before_tls=auth_before_tls)
    label_width = max(len(label) for label, _ in rows) + 2
    lines: list[str] = []
    for label, value in rows:
        # "(in 12 days)" stays on one line (textwrap breaks only at ASCII whitespace).
        kept = _DAYS.sub(lambda found: found.group().replace(" ", "\xa0"), value)
        wrapped = textwrap.wrap(
            kept,
            width,
            initial_indent=label.ljust(label_width),
            subsequent_indent=" " * label_width,
            break_long_words=False,
            break_on_hyphens=False,
        )
        lines += [line.replace("\xa0", " ") for line in wrapped]
    return lines
