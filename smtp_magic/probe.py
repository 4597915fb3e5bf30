"""probe(): find out what each port of a host speaks, without sending credentials or mail."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from smtp_magic.errors import CertificateError, ConnectError, SettingsError, SMTPMagicError
from smtp_magic.phrasing import render, setting
from smtp_magic.report import PortProbe, ProbeReport, TLSInfo
from smtp_magic.settings import DEFAULT_GREETING_WAIT, Settings
from smtp_magic.smtp import tls
from smtp_magic.smtp.session import Session

__all__ = ["probe"]

DEFAULT_PROBE_PORTS = (25, 465, 587)


def probe(
    host: str,
    ports: Iterable[int] | int | None = DEFAULT_PROBE_PORTS,
    *,
    timeout: float = 5.0,
    cafile: str | None = None,
    greeting_wait: float = DEFAULT_GREETING_WAIT,
) -> ProbeReport:
    """Describe what each port of ``host`` speaks, as Thunderbird's account set-up does.

    For each port: whether it is reachable, whether it greets in plaintext or expects TLS
    first, the greeting, whether STARTTLS is offered, the AUTH mechanisms before and after TLS,
    the TLS version, the certificate (subject, issuer, expiry, whether it verifies) and the
    ``security`` value to use. Only EHLO, STARTTLS and QUIT are sent: never credentials or mail.
    Ports are probed in parallel.

    Args:
        host: The server to examine.
        ports: The ports to examine, or one port; None means the default (25, 465, 587).
        timeout: Seconds each phase may take.
        cafile: Extra CA certificates to trust (for the lab: ``lab.cafile``).
        greeting_wait: Seconds to wait for a plaintext greeting before trying TLS.

    Raises:
        SettingsError: an argument is invalid (a port outside 1-65535, a missing cafile, a
            timeout that is not a positive number of seconds).
    """
    port_list = _port_list(ports)
    if not port_list:
        raise SettingsError("probe() needs at least one port, e.g. ports=(25, 465, 587).")
    # Settings validates host, timeout, greeting_wait and cafile, with the usual reasons.
    checked = Settings(host, cafile=cafile, timeout=timeout, greeting_wait=greeting_wait)
    wait = min(checked.greeting_wait, checked.timeout)
    base = [dataclasses.replace(checked, port=p, greeting_wait=wait) for p in port_list]
    with ThreadPoolExecutor(max_workers=min(len(base), 8)) as pool:
        results = tuple(pool.map(_probe_port, base))
    return ProbeReport(host=host, ports=results)


def _port_list(ports: object) -> list[int]:
    """The distinct ports asked for, in order; anything but port numbers is a SettingsError."""
    if ports is None:
        return list(DEFAULT_PROBE_PORTS)
    if isinstance(ports, int):
        ports = (ports,)
    if isinstance(ports, str | bytes) or not isinstance(ports, Iterable):
        raise SettingsError(
            f"ports={ports!r} is not a list of port numbers: use e.g. ports=(25, 465, 587)."
        )
    found: list[int] = []
    for port in ports:
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise SettingsError(
                f"port={port!r} is not a TCP port: use whole numbers from 1 to 65535."
            )
        if port not in found:
            found.append(port)
    return found


def _mechanisms(session: Session) -> tuple[str, ...]:
    return tuple(session.extensions.get("auth", "").upper().split())


def _probe_port(settings: Settings) -> PortProbe:
    found: dict[str, object] = {"host": settings.host, "port": settings.port}
    session = Session(settings)
    try:
        session.connect()
    except SMTPMagicError as exc:
        if isinstance(exc, ConnectError):
            return PortProbe(reachable=False, note="nothing listening", **found)  # type: ignore[arg-type]
        return PortProbe(
            reachable=False,
            note=exc.message,
            note_template=exc.template,
            **found,  # type: ignore[arg-type]
        )
    found["reachable"] = True
    try:
        if session.wait_for_bytes(settings.greeting_wait):
            found["speaks"] = "plaintext"
            session.read_greeting()
            session.ehlo()
            found["auth_before_tls"] = _mechanisms(session)
            found["starttls"] = session.wire.has_extn("starttls")
            if found["starttls"]:
                found["recommended"] = "starttls"
                _secure(session, found, lambda s, ctx=None: s.starttls(ctx))
            else:
                found["recommended"] = "plain"
                found["note_template"] = (
                    f"no TLS offered: use {setting('security', 'plain')} only without a password"
                    if not found["auth_before_tls"]
                    else "offers AUTH without TLS: smtp_magic will not send a password here"
                )
                found["note"] = render(str(found["note_template"]))
        else:
            found["speaks"] = "tls"
            found["recommended"] = "tls"
            _secure(session, found, lambda s, ctx=None: _implicit(s, ctx))
    except SMTPMagicError as exc:
        if "note" not in found:
            found["note"], found["note_template"] = exc.message, exc.template
    finally:
        found["greeting"] = session.greeting
        found["transcript"] = session.transcript
        session.close()
    return PortProbe(**found)  # type: ignore[arg-type]


def _implicit(session: Session, context: object = None) -> None:
    session.handshake(context)  # type: ignore[arg-type]
    session.read_greeting()
    session.ehlo()


def _secure(session: Session, found: dict[str, object], upgrade) -> None:  # type: ignore[no-untyped-def]
    """Establish TLS with verification; if the certificate fails, describe it from a second, unverified try."""
    try:
        upgrade(session)
    except CertificateError as exc:
        found["note"] = f"certificate problem: {exc.message}"
        found["note_template"] = f"certificate problem: {exc.template}"
        retry = Session(dataclasses.replace(session.settings))
        try:
            retry.connect()
            if found["speaks"] == "plaintext":
                retry.read_greeting()
                retry.ehlo()
            upgrade(retry, tls.unverified_context())
            _record_tls(retry, found, error=str(exc))
        finally:
            retry.close()
        return
    _record_tls(session, found)


def _record_tls(session: Session, found: dict[str, object], error: str | None = None) -> None:
    found["auth_after_tls"] = _mechanisms(session)
    info = session.tls
    if info and info.certificate and error:
        short = error.split(". ")[0]
        cert = dataclasses.replace(info.certificate, verified=False, error=short)
        info = TLSInfo(info.version, info.cipher, cert)
    found["tls"] = info
