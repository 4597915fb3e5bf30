"""TLS for the client: the verifying ssl.SSLContext (TLS 1.2+, CA file, client certificate) and certificate descriptions."""

from __future__ import annotations

import datetime as dt
import functools
import os
import ssl

from smtp_magic.errors import SettingsError
from smtp_magic.report import CertInfo
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
    """Describe the peer certificate; one that was not verified (``probe``) is parsed from DER."""
    cert = sock.getpeercert()
    if cert:
        not_after = cert.get("notAfter")
        expiry = (
            dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), dt.UTC)
            if isinstance(not_after, str)
            else None
        )
        return CertInfo(
            subject=_rdn_name(cert.get("subject", ())),
            issuer=_rdn_name(cert.get("issuer", ())),
            not_after=expiry,
            names=tuple(str(v) for _k, v in cert.get("subjectAltName", ())),  # type: ignore[str-unpack]
        )
    der = sock.getpeercert(binary_form=True)
    if not der:
        return None
    # Only probe() makes unverified connections; cryptography comes with trustme.
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    parsed = x509.load_der_x509_certificate(der)

    def name(value: x509.Name) -> str:
        for oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME):
            found = value.get_attributes_for_oid(oid)
            if found:
                return str(found[0].value)
        return value.rfc4514_string() or "(empty)"

    try:
        san = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(str(n.value) for n in san)
    except x509.ExtensionNotFound:
        names = ()
    return CertInfo(
        subject=name(parsed.subject),
        issuer=name(parsed.issuer),
        not_after=parsed.not_valid_after_utc,
        names=names,
        verified=False,
        error="not checked",
    )


def _rdn_name(rdns: object) -> str:
    # The common name (or organisation) is what a reader recognises; fall back to all parts.
    parts = {k: v for rdn in rdns for (k, v) in rdn}  # type: ignore[attr-defined]
    for key in ("commonName", "organizationName"):
        if key in parts:
            return str(parts[key])
    return ", ".join(f"{k}={v}" for k, v in parts.items()) or "(empty)"
