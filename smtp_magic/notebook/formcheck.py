"""The form's field checks: Settings and the message from plain values, problems by field."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from email.message import EmailMessage
from typing import Any

from smtp_magic.auth.credentials import keyring_service, with_password
from smtp_magic.errors import ComposeError, SettingsError
from smtp_magic.message.compose import compose
from smtp_magic.notebook.config import active_settings
from smtp_magic.settings import Settings

__all__ = [
    "Problems",
    "initial_settings",
    "message",
    "send_settings",
    "server_settings",
    "settings_field",
    "uploads",
    "variables",
]

_CHECK_ADDRESS = "check@example.org"  # a valid recipient, to check the other fields with compose()
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Problems:
    """What is wrong with the fields: the first problem of each field, and those of no field.

    Args:
        on_field: Called with (field, text) when a field gets its first problem, so a front end
            can show it at once.
    """

    def __init__(self, on_field: Callable[[str, str], None] | None = None) -> None:
        self.fields: dict[str, str] = {}
        self.general: list[str] = []
        self._on_field = on_field

    def add(self, field: str, text: str) -> None:
        """Record a problem of ``field``; a field keeps its first problem."""
        if field in self.fields:
            return
        self.fields[field] = text
        if self._on_field is not None:
            self._on_field(field, text)

    def __contains__(self, field: object) -> bool:
        return field in self.fields


def initial_settings(settings: Settings | None) -> tuple[Settings, str | None]:
    """The settings to start from: those given, else the magic's current defaults, else SMTP_*.

    Returns:
        The settings, and the text of a SettingsError that made the form fall back to
        ``Settings("localhost")`` (or None).
    """
    if settings is not None:
        return settings, None
    try:
        active = active_settings()
        return (active, None) if active is not None else (Settings.from_env(), None)
    except SettingsError as exc:  # a bad %config value or SMTP_* variable: show it, don't fail
        return Settings("localhost"), str(exc)


def settings_field(message: str) -> str | None:
    """Which form field a SettingsError message is about (its messages start with the name)."""
    if message.startswith(("security", "a password was given without a username")):
        return "security" if message.startswith("security") else "username"
    for name in ("host", "port", "username", "password", "sender"):
        if message.startswith(name):
            return name
    return None


def _replace(settings: Settings, problems: Problems, **changes: Any) -> Settings | None:
    """``dataclasses.replace``, with a SettingsError recorded against the field it is about."""
    try:
        return dataclasses.replace(settings, **changes)
    except SettingsError as exc:
        field = settings_field(exc.message)
        if field is None:  # e.g. a cafile that the settings passed in name but is gone
            problems.general.append(f"SettingsError: {exc.message}")
        else:
            problems.add(field, exc.message)
        return None


def server_settings(
    base: Settings, problems: Problems, *, host: str, port: int, security: str
) -> Settings | None:
    """Settings of host, port and security, without credentials (enough for Test connection)."""
    host = host.strip()
    try:
        Settings(host or " ")
    except SettingsError as exc:
        problems.add("host", exc.message)
    try:
        Settings("localhost", port=port)
    except SettingsError as exc:
        problems.add("port", exc.message)
    if "host" in problems or "port" in problems:
        return None
    fields = {"host": host, "port": port, "security": security}
    return _replace(base, problems, username=None, password=None, token=None, **fields)


def send_settings(
    base: Settings,
    problems: Problems,
    *,
    host: str,
    port: int,
    security: str,
    username: str,
    password: str | None,
    sender: str,
) -> Settings | None:
    """The Settings of a send (password included), or None with the problems recorded."""
    server = server_settings(base, problems, host=host, port=port, security=security)
    if server is None:
        return None
    settings = _replace(
        server,
        problems,
        username=username.strip() or None,
        password=password or None,
        # An OAuth2 token from the settings logs in, unless a password was typed over it.
        token=None if password else base.token,
        sender=sender.strip() or None,
    )
    if settings is None:
        return None
    try:
        # No password typed and none in the settings: try keyring, never a prompt here.
        return with_password(settings, interactive=False)
    except SettingsError:
        problems.add(
            "password",
            f"{settings.username!r} needs a password at {settings.address}: type it here, "
            f"or store it with `keyring set {keyring_service(settings)} {settings.username}`.",
        )
        return None


def _check(problems: Problems, name: str, **fields: Any) -> None:
    """Run compose() on one field, so its rules (and words) decide what is valid."""
    try:
        compose(**{"to": _CHECK_ADDRESS, "subject": "", "body": "", **fields})
    except ComposeError as exc:
        problems.add(name, exc.message)


def uploads(files: Iterable[Mapping[str, Any]]) -> list[tuple[str, object]]:
    """The uploaded files as compose() attachments (ipywidgets 8: content may be a memoryview)."""
    return [(str(upload["name"]), bytes(upload["content"])) for upload in files]


def variables(
    text: str, namespace: Mapping[str, object] | None, problems: Problems
) -> list[tuple[str, object]]:
    """The comma-separated variable names, looked up in the namespace, as compose() attachments."""
    found: list[tuple[str, object]] = []
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if not _NAME.match(name):
            problems.add("variables", f"{name!r} is not a variable name: give names like df, fig.")
        elif namespace is None:
            problems.add(
                "variables",
                "this form has no namespace to look names up in: create it with "
                "SendMailForm(namespace=globals()), or use %sendmail_form.",
            )
        elif name not in namespace:
            problems.add(
                "variables", f"there is no variable {name!r} in the notebook: run its cell first."
            )
        else:
            found.append((name, namespace[name]))
    return found


def message(
    problems: Problems,
    *,
    sender: str,
    to: str,
    cc: str,
    subject: str,
    body: str,
    files: Iterable[Mapping[str, Any]],
    names: str,
    namespace: Mapping[str, object] | None,
) -> EmailMessage | None:
    """Compose the message from the fields, or None with each problem recorded by field.

    Args:
        files: The FileUpload's value; its problems are recorded against "files".
        names: The "Variables" field: names to look up in ``namespace`` and attach.
    """
    sender = sender.strip()
    if not sender:
        problems.add("sender", "From is required: give your address.")
    else:
        _check(problems, "sender", sender=sender)
    if not to.strip():
        problems.add("to", "To is required: give at least one address.")
    else:
        _check(problems, "to", to=to)
    if cc.strip():
        _check(problems, "cc", cc=cc)
    if not subject.strip():
        problems.add("subject", "Subject is required.")
    else:
        _check(problems, "subject", subject=subject)
    uploaded, named = uploads(files), variables(names, namespace, problems)
    attachments = uploaded + named
    if any(n in problems for n in ("sender", "to", "cc", "subject", "variables")):
        return None
    try:
        return compose(
            to=to, cc=cc, subject=subject, body=body, sender=sender, attachments=attachments
        )
    except ComposeError as exc:
        # Find the attachment at fault, so the message stands next to the right field.
        for index, attachment in enumerate(attachments):
            try:
                compose(to=_CHECK_ADDRESS, subject="", body="", attachments=[attachment])
            except ComposeError as one:
                problems.add("files" if index < len(uploaded) else "variables", one.message)
                return None
        problems.add("body", exc.message)
        return None
