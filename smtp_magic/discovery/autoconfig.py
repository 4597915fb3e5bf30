"""Parse a Thunderbird autoconfig file (config-v1.1.xml) into SMTP endpoints, with a hardened parser.

The format is Thunderbird's (wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat,
now draft-ietf-mailmaint-autoconfig). Only ``<outgoingServer type="smtp">`` matters here.
defusedxml refuses any DTD, so entity-expansion bombs ("billion laughs") and external entities
never expand; the caller bounds the size before parsing.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AutoconfigError", "OutgoingServer", "fill", "parse"]

# socketType values (ISPDB): SSL = implicit TLS, STARTTLS, plain (never used with a password).
_SECURITY = {"ssl": "tls", "tls": "tls", "starttls": "starttls", "plain": "plain"}


class AutoconfigError(ValueError):
    """The file is not a usable autoconfig file; ``str()`` says why in one line."""


@dataclass(frozen=True)
class OutgoingServer:
    """One ``<outgoingServer type="smtp">``: where, how secured, and how to log in."""

    host: str
    port: int
    security: str  # "tls", "starttls" or "plain"
    username: str  # may hold %EMAILADDRESS% / %EMAILLOCALPART% / %EMAILDOMAIN%
    authentication: tuple[str, ...]  # e.g. ("OAuth2", "password-cleartext")


def parse(data: bytes) -> list[OutgoingServer]:
    """The SMTP servers an autoconfig file lists, in its order.

    Raises:
        AutoconfigError: the file is not well-formed XML, contains a DTD or entities, or lists
            no SMTP server.
    """
    try:
        from defusedxml import DefusedXmlException
        from defusedxml.ElementTree import ParseError, fromstring
    except ImportError:
        raise AutoconfigError(
            "reading autoconfig files needs defusedxml: pip install 'smtp-magic[discover]'"
        ) from None
    try:
        root = fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise AutoconfigError(f"refused: it contains {type(exc).__name__}") from None
    except ParseError as exc:
        raise AutoconfigError(f"not well-formed XML ({exc})") from None
    servers = []
    for element in root.iter("outgoingServer"):
        if element.get("type", "smtp").lower() != "smtp":
            continue
        host = (element.findtext("hostname") or "").strip()
        port_text = (element.findtext("port") or "").strip()
        socket_type = (element.findtext("socketType") or "").strip().lower()
        if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            continue
        if any(c.isspace() or c in "/@:%" for c in host):
            continue  # not a host name: ignore rather than connect somewhere odd
        servers.append(
            OutgoingServer(
                host=host.lower(),
                port=int(port_text),
                security=_SECURITY.get(socket_type, "plain"),
                username=(element.findtext("username") or "").strip(),
                authentication=tuple(
                    (a.text or "").strip() for a in element.findall("authentication")
                ),
            )
        )
    if not servers:
        raise AutoconfigError("lists no SMTP server")
    return servers


def fill(template: str, address: str) -> str:
    """Replace the ISPDB placeholders in a username template with parts of ``address``."""
    local, _, domain = address.rpartition("@")
    return (
        template.replace("%EMAILADDRESS%", address)
        .replace("%EMAILLOCALPART%", local)
        .replace("%EMAILDOMAIN%", domain)
    )
