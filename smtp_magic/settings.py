"""Connection settings: one frozen dataclass, validated on creation, read from the environment in one place."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field, fields
from typing import Any, Literal, get_args

from smtp_magic.errors import ComposeError, SettingsError
from smtp_magic.message.addresses import parse_addresses
from smtp_magic.secret import SecretStr

__all__ = [
    "DEFAULT_GREETING_WAIT",
    "DEFAULT_HOST",
    "DEFAULT_PORTS",
    "DEFAULT_TIMEOUT",
    "ENV_VARIABLES",
    "Security",
    "Settings",
]

Security = Literal["auto", "tls", "starttls", "plain"]
SECURITY_MODES: tuple[str, ...] = get_args(Security)

DEFAULT_TIMEOUT = 10.0
"""Seconds each phase (connect, greeting, TLS, each command, the data) may take."""

DEFAULT_GREETING_WAIT = 1.5
"""Seconds ``security="auto"`` waits for a greeting on a non-standard port before trying TLS."""

DEFAULT_HOST = "localhost"
"""The host ``Settings.from_env`` uses when SMTP_HOST and the options name none."""

MAX_SECONDS = 86400.0
"""The longest ``timeout`` or ``greeting_wait`` accepted: a day (sockets cannot wait for ever)."""

DEFAULT_PORTS: Mapping[str, int] = {"tls": 465, "starttls": 587, "plain": 25, "auto": 587}

_SECRET_FIELDS = ("password", "token")

ENV_VARIABLES: Mapping[str, str] = {
    "host": "SMTP_HOST",
    "port": "SMTP_PORT",
    "security": "SMTP_SECURITY",
    "username": "SMTP_USERNAME",
    "password": "SMTP_PASSWORD",
    "token": "SMTP_TOKEN",
    "sender": "SMTP_FROM",
    "cafile": "SMTP_CAFILE",
    "certfile": "SMTP_CERTFILE",
    "keyfile": "SMTP_KEYFILE",
    "timeout": "SMTP_TIMEOUT",
}


@dataclass(frozen=True)
class Settings:
    """Where and how to connect.

    Derive variants with ``dataclasses.replace(settings, port=465)``; every instance is validated.

    Args:
        host: The server's host name or IP address.
        port: The TCP port; ``None`` picks the default of the security mode (465 for "tls",
            25 for "plain", 587 otherwise).
        security: "auto" (default), "tls" (implicit TLS), "starttls" (required) or "plain".
        username: The login name; ``None`` sends no AUTH.
        password: The password; never shown by ``repr``.
        token: An OAuth2 access token for XOAUTH2/OAUTHBEARER, or a zero-argument callable that
            returns a fresh one (called for each new connection, and once more after the server
            refuses an expired token, after its ``invalidate()`` if it has one). With a token no
            password is used. Never shown by ``repr``.
        sender: The default From address.
        cafile: A PEM file of extra certificate authorities to trust, on top of the system's.
        certfile: A client certificate (PEM), for servers that require one.
        keyfile: The client certificate's private key, if not inside ``certfile``.
        timeout: Seconds each phase may take.
        greeting_wait: Seconds "auto" waits for a greeting on a non-standard port.
        local_hostname: The name sent with EHLO (default: the machine's FQDN, as smtplib does).
        defaulted: The names among "host" and "port" that nothing set, so they hold defaults
            (``from_env`` without SMTP_HOST: "localhost"; ``port=None``: the mode's port); an
            error then says so. Filled in automatically; a value changed later is no longer
            counted. Not shown by ``repr``, not compared.
    """

    host: str
    _: KW_ONLY
    port: int | None = None
    security: Security = "auto"
    username: str | None = None
    password: str | None = None
    token: str | Callable[[], str] | None = None
    sender: str | None = None
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    greeting_wait: float = DEFAULT_GREETING_WAIT
    local_hostname: str | None = None
    defaulted: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("cafile", "certfile", "keyfile"):
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                object.__setattr__(self, name, os.fspath(value))
        for name in _SECRET_FIELDS:
            value = getattr(self, name)
            if isinstance(value, str) and not isinstance(value, SecretStr):
                # Masked wherever a traceback, debugger or reporter shows it (issue 11, #5).
                object.__setattr__(self, name, SecretStr(value))
        defaulted = set(self.defaulted) & {"host", "port"}
        if self.port is None and isinstance(self.security, str) and self.security in DEFAULT_PORTS:
            object.__setattr__(self, "port", DEFAULT_PORTS[self.security])
            defaulted.add("port")
        # After dataclasses.replace(host=..., port=...) a value that differs is no longer a default.
        if self.host != DEFAULT_HOST:
            defaulted.discard("host")
        if not isinstance(self.security, str) or self.port != DEFAULT_PORTS.get(self.security):
            defaulted.discard("port")
        object.__setattr__(self, "defaulted", frozenset(defaulted))
        problem = self._problem()
        if problem:
            raise SettingsError(problem)

    def _problem(self) -> str | None:
        """Return a one-sentence reason these settings are invalid, or None."""
        if not isinstance(self.host, str) or not self.host.strip():
            return "host is empty: give the SMTP server's name, e.g. Settings('smtp.example.org')."
        if any(c.isspace() for c in self.host):
            return f"host {self.host!r} contains white space: give just the server's name."
        try:
            # What the resolver does with the name (socket.getaddrinfo encodes it so): a label
            # over 63 characters, an empty one or an invalid international one fails here.
            self.host.encode("idna")
        except UnicodeError as exc:
            return (
                f"host {self.host!r} is not a valid host name ({exc.__cause__ or exc}): "
                "check its spelling."
            )
        if self.security not in SECURITY_MODES:
            return (
                f"security={self.security!r} is not a mode: use one of "
                + ", ".join(repr(m) for m in SECURITY_MODES)
                + "."
            )
        port = self.port
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            return f"port={port!r} is not a TCP port: use a whole number from 1 to 65535."
        for name in ("timeout", "greeting_wait"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value <= 0
                or value > MAX_SECONDS
            ):
                return (
                    f"{name}={value!r} must be a positive number of seconds, "
                    f"at most {MAX_SECONDS:g} (a day)."
                )
        for name in ("username", "password", "sender", "local_hostname"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                return f"{name} must be a string or None, not {type(value).__name__}."
            if value is not None and ("\r" in value or "\n" in value):
                return f"{name} contains a line break, which SMTP cannot carry."
        problem = _sender_problem(self.sender)
        if problem:
            return problem
        if self.password is not None and not self.username:
            return "a password was given without a username: set username as well."
        problem = _token_problem(self)
        if problem:
            return problem
        if self.security == "plain" and (self.username or self.password):
            return (
                "security='plain' never sends credentials, because they would cross the network "
                "unencrypted: use security='starttls' or 'tls', or remove username and password."
            )
        if self.keyfile and not self.certfile:
            return "keyfile was given without certfile: a client certificate needs both."
        for name in ("cafile", "certfile", "keyfile"):
            path = getattr(self, name)
            if path is not None and not isinstance(path, str):
                return f"{name} must be a file path, not {type(path).__name__}."
            if path is not None and not os.path.isfile(path):
                return f"{name}={path!r} does not exist or is not a file: check the path."
        return None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build Settings from the ``SMTP_*`` environment variables, then apply ``overrides``.

        Reads SMTP_HOST (default "localhost"), SMTP_PORT, SMTP_SECURITY, SMTP_USERNAME,
        SMTP_PASSWORD, SMTP_TOKEN, SMTP_FROM, SMTP_CAFILE, SMTP_CERTFILE, SMTP_KEYFILE and
        SMTP_TIMEOUT. Empty variables count as unset; overrides that are ``None`` are ignored.

        SMTP_TOKEN is an OAuth2 access token fetched by an earlier step of a scheduled job (for
        example a CI step that signs in with client credentials). An access token lives about an
        hour and cannot be refreshed from the environment, so it suits short jobs only; a
        notebook or a long run signs in once and lets smtp_magic refresh the token instead.

        Raises:
            SettingsError: a variable holds a value that is not valid, naming the variable.
        """
        # No local holds os.environ or a plain secret: a traceback that shows locals
        # (capture_locals, %xmode Verbose) must not print SMTP_PASSWORD from this frame.
        values: dict[str, Any] = {}
        for name, variable in ENV_VARIABLES.items():
            raw = (os.environ if environ is None else environ).get(variable, "").strip()
            if not raw:
                continue
            if name in ("port", "timeout"):
                try:
                    values[name] = int(raw) if name == "port" else float(raw)
                except ValueError:
                    kind = "a whole number" if name == "port" else "a number of seconds"
                    raise SettingsError(
                        f"{variable}={raw!r} is not {kind}: fix or unset the variable."
                    ) from None
            else:
                values[name] = SecretStr(raw) if name in _SECRET_FIELDS else raw
        raw = ""
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "host" not in values:
            values["host"] = DEFAULT_HOST
            values["defaulted"] = frozenset({"host"})
        known = {f.name for f in fields(cls)} - {"_"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SettingsError(f"unknown setting(s) {', '.join(unknown)}: use {sorted(known)}.")
        try:
            return cls(**values)
        except SettingsError as exc:
            sources = [
                variable
                for name, variable in ENV_VARIABLES.items()
                if name in values and overrides.get(name) is None and exc.message.startswith(name)
            ]
            hint = f" (read from {', '.join(sources)})" if sources else ""
            raise SettingsError(exc.template + hint) from None

    @property
    def address(self) -> str:
        """``host:port``, with IPv6 addresses in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "password":
                parts.append("password=" + ("'********'" if value else "None"))
            elif f.name == "token":
                if value is not None:
                    parts.append("token=" + _masked_token(value))
            elif f.name == "defaulted":
                continue
            elif value != f.default or f.name in ("host", "port", "security"):
                parts.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(parts)})"


def _token_problem(settings: Settings) -> str | None:
    """Why the token settings cannot work, in one sentence, or None."""
    token = settings.token
    if token is None:
        return None
    if not (isinstance(token, str) or callable(token)):
        return f"token must be a string or a function returning one, not {type(token).__name__}."
    if isinstance(token, str) and (not token.strip() or "\r" in token or "\n" in token):
        return "token is empty or contains a line break: give the access token itself."
    if settings.password is not None:
        return "both a password and a token were given: an OAuth2 login uses the token only."
    if not settings.username:
        return (
            "a token was given without a username: XOAUTH2 and OAUTHBEARER name the mailbox, "
            "so set username (e.g. username='alice@example.com')."
        )
    if settings.security == "plain":
        return (
            "security='plain' never sends a token, because anyone on the network could reuse "
            "it: use security='starttls' or 'tls'."
        )
    return None


def _masked_token(token: object) -> str:
    """The token as ``repr`` shows it: never the value, only what kind it is."""
    if isinstance(token, str):
        return "'********'"
    name = getattr(token, "__qualname__", None) or type(token).__name__
    return f"<function {name}>"


def _sender_problem(sender: str | None) -> str | None:
    """Why ``sender`` is not one address, judged exactly as ``compose(sender=...)`` judges it.

    ``prepare()`` writes it as the From header and the envelope sender of any message without
    a From, so it must pass the same checks (no NUL, no line break of any kind, one mailbox).
    """
    if sender is None or not sender.strip():
        return None
    try:
        found = parse_addresses("sender", sender)
    except ComposeError as exc:
        return exc.message
    if len(found) > 1:
        return f"sender {sender!r} names several addresses: give one."
    return None
