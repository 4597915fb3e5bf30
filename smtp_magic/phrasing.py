"""One diagnosis, phrased for each front end: Python arguments, CLI options, magic options, form fields.

A diagnosis (an error message) names what to change with markers instead of literal syntax,
so the same text reads right wherever it is shown::

    f"{where} answered in plaintext SMTP. Use {setting('security', 'starttls')}."

reads ``Use security='starttls'.`` from Python, ``Use --security starttls.`` from the
``smtp-magic`` command, ``Use --security starttls.`` in ``%%sendmail`` and ``Use the Security
field: starttls.`` in the form. :func:`render` replaces the markers; ``SMTPMagicError`` keeps
the marked-up text and renders it for the front end that shows it (``str()`` is Python's).

Markers are ``⟦kind:key=value⟧``: ``setting`` names a Settings field (with or without a value),
``action`` names something to do (start the lab, probe the port, where the password comes from).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from typing import Literal, get_args

__all__ = ["FRONT_ENDS", "FrontEnd", "action", "other", "render", "setting", "strip_markers"]

FrontEnd = Literal["python", "cli", "magic", "form"]
FRONT_ENDS: tuple[str, ...] = get_args(FrontEnd)

_OPEN, _CLOSE = "\u27e6", "\u27e7"  # ⟦ ⟧: characters no SMTP reply or setting value contains
_MARKER = re.compile(f"{_OPEN}(setting|other|action):([a-z_]+)(?:=([^{_CLOSE}]*))?{_CLOSE}")


def setting(name: str, value: object = None) -> str:
    """A marker for "set ``name``" (to ``value`` when given), e.g. ``setting("security", "tls")``."""
    return f"{_OPEN}setting:{name}{'' if value is None else '=' + _plain(str(value))}{_CLOSE}"


def other(name: str, value: object) -> str:
    """A marker for another value of a setting just named: the ``'auto'`` of
    "Use security='starttls' (or 'auto')", which the CLI says as ``--security auto``."""
    return f"{_OPEN}other:{name}={_plain(str(value))}{_CLOSE}"


def action(name: str, argument: object = None) -> str:
    """A marker for something to do: ``start_lab``, ``lab_cafile``, ``probe``, ``password``, ``password_source``, ``sign_in``.

    ``probe`` takes ``host:port`` as its argument; ``password`` (where to put a missing
    password) takes the keyring service and user name, ``"smtp_magic/HOST USER"``; ``sign_in``
    takes the login arguments, ``"microsoft --client-id ID --username NAME"``.
    """
    return f"{_OPEN}action:{name}{'' if argument is None else '=' + _plain(str(argument))}{_CLOSE}"


def _plain(text: str) -> str:
    """Markers cannot nest: drop marker brackets from a value (server text, a path)."""
    return text.replace(_OPEN, "").replace(_CLOSE, "")


def strip_markers(text: str) -> str:
    """``text`` with marker brackets removed, for untrusted text (server replies) put in a diagnosis."""
    return _plain(text)


def render(text: str, front_end: str = "python") -> str:
    """``text`` with every marker phrased for ``front_end`` (one of :data:`FRONT_ENDS`)."""
    if _OPEN not in text:
        return text
    table = _PHRASES.get(front_end, _PHRASES["python"])

    def replace(match: re.Match[str]) -> str:
        kind, key, value = match.group(1), match.group(2), match.group(3)
        if kind == "setting":
            return table.setting(key, value)
        if kind == "other":
            return table.other(key, value or "")
        phrase = table.actions.get(key)
        return phrase(value or "") if phrase else key

    return _MARKER.sub(replace, text)


# --- Python ------------------------------------------------------------------------------------

_NUMERIC = {"port", "timeout"}


_FLAGS = ("True", "False")  # a yes/no option: send_on_error=True in Python, --send-on-error


def _python_setting(name: str, value: str | None) -> str:
    if value is None:
        return f"{name}="
    return f"{name}={value}" if name in _NUMERIC or value in _FLAGS else f"{name}={value!r}"


def _python_probe(where: str) -> str:
    host, _, port = where.rpartition(":")
    if not host:
        return "smtp_magic.probe()"
    return f"smtp_magic.probe({host.strip('[]')!r}, ports=[{port}])"


# --- command line ------------------------------------------------------------------------------

_CLI_OPTIONS = {"username": "--user"}
_METAVARS = {
    "host": "HOST",
    "port": "PORT",
    "security": "MODE",
    "username": "NAME",
    "sender": "ADDRESS",
    "cafile": "PATH",
    "certfile": "PATH",
    "keyfile": "PATH",
    "timeout": "SECONDS",
}


def _option(name: str, value: str | None) -> str:
    option = _CLI_OPTIONS.get(name, "--" + name.replace("_", "-"))
    if name == "sender":
        option = "--from"
    if value == "True":
        return option
    return f"{option} {shlex.quote(value) if value is not None else _METAVARS.get(name, 'VALUE')}"


def _cli_probe(where: str) -> str:
    host, _, port = where.rpartition(":")
    if not host:
        return "smtp-magic probe HOST"
    return f"smtp-magic probe {shlex.quote(host.strip('[]'))} --port {port}"


# --- %%sendmail --------------------------------------------------------------------------------

_MAGIC_LINE = {"host", "port", "security", "username", "cafile", "timeout", "sender"}


def _magic_setting(name: str, value: str | None) -> str:
    if name in _MAGIC_LINE:
        return _option(name, value)
    # certfile/keyfile are not magic options (a key on the magic line would be saved in the
    # notebook); the Python API takes them.
    return f"{_python_setting(name, value)} in smtp_magic.Settings (it is not a magic option)"


def _magic_probe(where: str) -> str:
    host, _, port = where.rpartition(":")
    if not host:
        return "%smtp_probe HOST"
    return f"%smtp_probe {shlex.quote(host.strip('[]'))} --port {port}"


# --- the form ----------------------------------------------------------------------------------

_FIELDS = {
    "host": "Host",
    "port": "Port",
    "security": "Security",
    "username": "Username",
    "password": "Password",
    "sender": "From",
}


def _form_setting(name: str, value: str | None) -> str:
    field = _FIELDS.get(name)
    if field is None:
        # The form has no field for it: the settings handed to sendmail_form(settings) do.
        return f"{_python_setting(name, value)} in the Settings given to the form"
    return f"the {field} field" + ("" if value is None else f" set to {value}")


class _Phrases:
    """How one front end says "set this" and "do that"."""

    def __init__(
        self,
        setting: Callable[[str, str | None], str],
        actions: Mapping[str, Callable[[str], str]],
        other: Callable[[str, str], str] | None = None,
    ) -> None:
        self.setting = setting
        self.actions = actions
        self.other = other or setting


_PHRASES: dict[str, _Phrases] = {
    "python": _Phrases(
        _python_setting,
        other=lambda name, value: value if name in _NUMERIC else repr(value),
        actions={
            "start_lab": lambda _: "LabServer().start()",
            "lab_cafile": lambda _: "cafile=lab.cafile",
            "probe": _python_probe,
            "password": lambda key: (
                f"pass password=, set SMTP_PASSWORD, or store it with `keyring set {key}`"
            ),
            "password_source": lambda _: "password=, SMTP_PASSWORD, keyring or the prompt",
            "sign_in": lambda how: f"`smtp-magic login {how}` in a terminal (or .sign_in())",
        },
    ),
    "cli": _Phrases(
        _option,
        {
            "start_lab": lambda _: "smtp-magic serve",
            "lab_cafile": lambda _: "--cafile with the CA file `smtp-magic serve` prints",
            "probe": _cli_probe,
            "password": lambda key: (
                "set SMTP_PASSWORD, or give --password-stdin with the body in --body or "
                f"--body-file, or store it with `keyring set {key}`"
            ),
            "password_source": lambda _: (
                "SMTP_PASSWORD, --password-stdin, keyring or the prompt (when stdin is a terminal)"
            ),
            "sign_in": lambda how: f"`smtp-magic login {how}`",
        },
    ),
    "magic": _Phrases(
        _magic_setting,
        {
            "start_lab": lambda _: "%smtp_lab start",
            "lab_cafile": lambda _: "%smtp_lab start (the magics then trust the lab's CA)",
            "probe": _magic_probe,
            "password": lambda key: (
                f"set SMTP_PASSWORD, or store it with `keyring set {key}`, then run the cell again"
            ),
            "password_source": lambda _: "SMTP_PASSWORD, keyring or the prompt",
            "sign_in": lambda how: f"`%smtp_login {how}`",
        },
    ),
    "form": _Phrases(
        _form_setting,
        other=lambda _name, value: value,
        actions={
            "start_lab": lambda _: "%smtp_lab start in a cell before opening the form",
            "lab_cafile": lambda _: (
                "%smtp_lab start before opening the form (it then trusts the lab's CA)"
            ),
            "probe": lambda _: "the Test connection button",
            "password": lambda _: "type it in the form's Password field",
            "password_source": lambda _: "the form's Password field",
            "sign_in": lambda how: (
                "choose Browser beside the Sign in button (done for you now) and click Sign in again"
                if "--browser" in how
                else "the form's Sign in button"
            ),
        },
    ),
}
