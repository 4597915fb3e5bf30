"""TLS for the client: the verifying ssl.SSLContext (TLS 1.2+, CA file, client certificate) and certificate descriptions."""

from __future__ import annotations

import functools
import ipaddress
import os
import ssl
import threading
import warnings
import weakref
from datetime import datetime
from typing import TYPE_CHECKING

from smtp_magic.errors import SettingsError
from smtp_magic.printable import printable
from smtp_magic.tlsinfo import CertInfo, ChainLink

if TYPE_CHECKING:
    from cryptography import x509
from smtp_magic.settings import Settings

__all__ = ["client_context", "describe_certificate", "unverified_context"]


def client_context(settings: Settings) -> ssl.SSLContext:
    """Return a verifying client context for ``settings`` (cached while the files are unchanged).

    The system's trust store is always loaded; ``cafile`` adds to it. Client certificates go
    through ``SSLContext.load_cert_chain``, because Python 3.12 removed smtplib's ``keyfile`` and
    ``certfile`` arguments (gh-94172).

    Raises:
        SettingsError: a CA file, certificate or key cannot be loaded, naming the file.
    """
    return _cached_context(
        settings.cafile,
        _stamp(settings.cafile),
        settings.certfile,
        settings.keyfile,
        _stamp(settings.certfile),
        _stamp(settings.keyfile),
    )


def _stamp(path: str | None) -> tuple[float, int] | None:
    if path is None:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_mtime, stat.st_size)


@functools.lru_cache(maxsize=16)
def _cached_context(
    cafile: str | None,
    _cafile_stamp: object,
    certfile: str | None,
    keyfile: str | None,
    _certfile_stamp: object,
    _keyfile_stamp: object,
) -> ssl.SSLContext:
    # The stamps are part of the cache key only, so that an edited file is loaded again.
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # RFC 8314 section 4.1
    if cafile:
        try:
            context.load_verify_locations(cafile=cafile)
        except (OSError, ssl.SSLError) as exc:
            raise SettingsError(
                f"cafile {cafile!r} could not be loaded ({_reason(exc)}): "
                "it must be a PEM file of CA certificates, like the lab's lab.cafile."
            ) from None
    if certfile:
        try:
            # An empty password callback: an encrypted key fails instead of prompting on stdin.
            context.load_cert_chain(certfile, keyfile, password=lambda: b"")
        except (OSError, ssl.SSLError) as exc:
            which = f"certfile {certfile!r}" + (f" with keyfile {keyfile!r}" if keyfile else "")
            raise SettingsError(
                f"the client certificate {which} could not be loaded ({_reason(exc)}): "
                "give a PEM certificate and its matching private key (unencrypted)."
            ) from None
    return context


def unverified_context() -> ssl.SSLContext:
    """A context that skips verification, used only by ``probe`` to describe a certificate that failed.

    Nothing is ever sent over a connection made with it except EHLO and QUIT.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).replace("_", " ").lower()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__


def describe_certificate(sock: ssl.SSLSocket) -> CertInfo | None:
    """Describe the peer certificate: names, chain, which name matched, the SNI sent.

    A certificate that was not verified (``probe``'s second look) is described all the same,
    marked "not checked".
    """
    der = sock.getpeercert(binary_form=True)
    if not der:
        return None
    subject, issuer, not_after, sans = _leaf_facts(der)
    host = sock.server_hostname
    verified = bool(sock.getpeercert())  # the parsed form exists only for a verified peer
    return CertInfo(
        subject=subject,
        issuer=issuer,
        not_after=not_after,
        names=tuple(value for _kind, value in sans),
        verified=verified,
        error=None if verified else "not checked",
        chain=_chain(sock, der),
        checked_name=host,
        matched_name=_matching_name(host, list(sans)),
        # CPython sends no SNI for an IP address (RFC 6066 section 3 forbids literal addresses).
        sni=None if host is None or _ip(host) else host,
    )


@functools.lru_cache(maxsize=32)
def _leaf_facts(der: bytes) -> tuple[str, str, datetime, tuple[tuple[str, str], ...]]:
    """Subject, issuer, expiry and subjectAltNames of a certificate, parsed once per certificate:
    a mail merge or a loop of send() calls meets the same one on every connection, and parsing
    it costs more than the rest of the handshake's Python side. Only facts of the certificate
    itself are kept; whether it verified, and for which name, is worked out per connection."""
    # cryptography comes with trustme (a dependency); imported on the first TLS connection only.
    from cryptography import x509

    leaf = x509.load_der_x509_certificate(der)
    sans = tuple(_alt_names(leaf))
    return _name(leaf.subject), _name(leaf.issuer), leaf.not_valid_after_utc, sans


def _name(value: x509.Name) -> str:
    # The common name (or organisation) is what a reader recognises; fall back to all parts.
    # The server chose every name in its certificates: printable before anyone shows it.
    from cryptography.x509.oid import NameOID

    for oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME):
        found = value.get_attributes_for_oid(oid)
        if found:
            return printable(str(found[0].value))
    return printable(value.rfc4514_string()) or "(empty)"


def _alt_names(cert: x509.Certificate) -> list[tuple[str, str]]:
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    dns = [("DNS", printable(str(n))) for n in san.get_values_for_type(x509.DNSName)]
    return dns + [("IP Address", str(n)) for n in san.get_values_for_type(x509.IPAddress)]


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _matching_name(host: str | None, sans: list[tuple[str, str]]) -> str | None:
    """The subjectAltName entry that ``host`` matches (RFC 6125 section 6.4: one left-most wildcard)."""
    if not host:
        return None
    address = _ip(host)
    for kind, value in sans:
        if address is not None:
            if kind == "IP Address" and _ip(value) == address:
                return f"{kind} {value}"
            continue
        if kind != "DNS":
            continue
        name, pattern = host.lower().rstrip("."), value.lower().rstrip(".")
        if name == pattern:
            return f"{kind} {value}"
        if pattern.startswith("*.") and "." in name and name.split(".", 1)[1] == pattern[2:]:
            return f"{kind} {value}"
    return None


def _chain(sock: ssl.SSLSocket, der: bytes) -> tuple[ChainLink, ...]:
    """The chain from the server's certificate up to the trust anchor, as far as it can be known.

    Python 3.13 added ``get_verified_chain()``; before it, the issuers are looked up among the
    CA certificates the context loaded (the system store's file, ``cafile``), which finds the
    same chain for a server that sends no intermediates (as the lab's does).
    """
    from cryptography import x509

    verified = getattr(sock, "get_verified_chain", None)
    if verified is not None and sock.getpeercert():
        certs = [x509.load_der_x509_certificate(_der(c)) for c in verified()]
        return tuple(_link(c) for c in certs)
    return _anchored_chain(der, sock.context)


@functools.lru_cache(maxsize=32)
def _anchored_chain(der: bytes, context: ssl.SSLContext) -> tuple[ChainLink, ...]:
    """The chain of ``der`` through the CA certificates ``context`` loaded (the same every time
    for one certificate and one context, so worked out once)."""
    from cryptography import x509

    certs = [x509.load_der_x509_certificate(der)]
    anchors = _anchors(context)
    while len(certs) < 8 and certs[-1].issuer != certs[-1].subject:
        issuer = anchors.get(certs[-1].issuer.public_bytes())
        if issuer is None:
            break
        certs.append(x509.load_der_x509_certificate(issuer))
    return tuple(_link(c) for c in certs)


def _link(cert: x509.Certificate) -> ChainLink:
    return ChainLink(_name(cert.subject), _name(cert.issuer), cert.not_valid_after_utc)


def _der(cert: object) -> bytes:
    # 3.13's get_verified_chain() gives bytes; later versions may give ssl.Certificate objects.
    if isinstance(cert, bytes):
        return cert
    return cert.public_bytes(ssl.ENCODING_DER)  # type: ignore[attr-defined, no-any-return]


_ANCHORS_LOCK = threading.Lock()
_ANCHORS: weakref.WeakKeyDictionary[ssl.SSLContext, dict[bytes, bytes]] = (
    weakref.WeakKeyDictionary()
)


def _anchors(context: ssl.SSLContext) -> dict[bytes, bytes]:
    """The context's loaded CA certificates by subject (DER), computed once per context."""
    with _ANCHORS_LOCK:
        # One thread at a time (probe() runs ports in parallel): catch_warnings is process-wide
        # state, so two threads inside it could restore each other's filters too early.
        return _anchors_locked(context)


def _anchors_locked(context: ssl.SSLContext) -> dict[bytes, bytes]:
    found = _ANCHORS.get(context)
    if found is None:
        from cryptography import x509

        found = {}
        with warnings.catch_warnings():
            # Some system CA certificates have a non-positive serial number: cryptography warns
            # (and may one day refuse); such a certificate is simply not used as a chain link.
            warnings.simplefilter("ignore")
            for der in context.get_ca_certs(binary_form=True):
                try:
                    cert = x509.load_der_x509_certificate(der)
                except ValueError:
                    continue
                found[cert.subject.public_bytes()] = der
        _ANCHORS[context] = found
    return found
