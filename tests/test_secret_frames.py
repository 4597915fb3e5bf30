"""No Python frame ever holds a password or a token where a traceback's locals would show it.

A locals-capturing traceback (``%xmode Verbose``, pytest ``--showlocals``, Sentry) prints the
``repr`` of every local variable of every frame. A Ctrl-C can land at any line, so the property
is checked at every line of every frame that runs during a real send over TLS: ``sys.settrace``
watches the sending thread (the lab server runs in its own threads, unwatched: a server must
see the password). Tested for AUTH PLAIN and LOGIN with a password, and XOAUTH2 and
OAUTHBEARER with a token returned by a callable, as a token provider does.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from types import FrameType
from typing import Any

import pytest

from smtp_magic import send
from smtp_magic.lab.server import LabServer
from smtp_magic.lab.tokens import StaticTokens

PASSWORD = "Fr4me#Pa55-w\u00f6rd"  # distinctive; non-ASCII to take the UTF-8 path
TOKEN = "ya29.Fr4me-T0ken-" + "x" * 40
TOKEN_USER = "analyst@lab.localhost"


def _forms(secret: str, user: str) -> list[str]:
    """The secret as a local variable could hold it: text, bytes, and each AUTH encoding."""
    raw = secret.encode("utf-8")
    payloads = [
        raw,
        b"\0" + user.encode() + b"\0" + raw,
        b"user=" + user.encode() + b"\x01auth=Bearer " + raw + b"\x01\x01",
    ]
    shown = [secret, repr(raw)[2:-1]]
    shown += [base64.b64encode(p).decode() for p in payloads]
    return shown


class Watch:
    """A tracer that reprs every local of every frame at every line, and notes any secret."""

    def __init__(self, forms: list[str]) -> None:
        self.forms = forms
        self.found: list[str] = []
        self.frames = 0

    def _look(self, frame: FrameType) -> None:
        self.frames += 1
        for name, value in frame.f_locals.items():
            if isinstance(value, str | bytes | bytearray | tuple | list):
                shown = repr(value)
            elif type(value).__repr__ is object.__repr__:
                continue  # "<... object at 0x...>": nothing of the value shows
            else:
                try:
                    shown = repr(value)
                except Exception:
                    continue
            for form in self.forms:
                if form in shown:
                    where = f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}"
                    self.found.append(f"{where}: {name} = {shown[:120]}")

    def __call__(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any]:
        self._look(frame)
        return self._local

    def _local(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any]:
        self._look(frame)
        return self._local


def _watched(action: Callable[[], Any], forms: list[str]) -> Watch:
    watch = Watch(forms)
    sys.settrace(watch)
    try:
        action()
    finally:
        sys.settrace(None)
    return watch


def _message() -> EmailMessage:
    message = EmailMessage()
    message["To"] = "reader@example.org"
    message["Subject"] = "frames"
    message.set_content("Nothing secret here.")
    return message


@pytest.fixture(scope="module")
def labs() -> Iterator[dict[str, LabServer]]:
    tokens = StaticTokens({TOKEN: TOKEN_USER})
    with (
        LabServer(ports={25: 0, 465: 0, 587: 0}, password=PASSWORD) as password_lab,
        LabServer(ports={25: 0, 465: 0, 587: 0}, tokens=tokens) as google,
        LabServer(ports={25: 0, 465: 0, 587: 0}, tokens=tokens, oauth_style="microsoft") as ms,
    ):
        yield {"password": password_lab, "google": google, "microsoft": ms}


@pytest.mark.parametrize("role", [587, 465])
def test_no_frame_holds_the_password(labs: dict[str, LabServer], role: int) -> None:
    lab = labs["password"]
    settings = lab.settings(role)
    assert settings.username is not None
    send(_message(), settings)  # warm up: imports and caches outside the watch
    watch = _watched(lambda: send(_message(), settings), _forms(PASSWORD, settings.username))
    assert watch.frames > 1000  # the whole send was watched, line by line
    assert watch.found == []


@pytest.mark.parametrize("style", ["google", "microsoft"])
def test_no_frame_holds_a_token_from_a_callable(labs: dict[str, LabServer], style: str) -> None:
    lab = labs[style]

    def provider() -> str:
        return "ya29.Fr4me-T0ken-" + "x" * 40  # built here, as a token cache returns it

    settings = lab.settings(587, username=TOKEN_USER, token=provider)
    send(_message(), settings)
    watch = _watched(lambda: send(_message(), settings), _forms(TOKEN, TOKEN_USER))
    assert watch.frames > 1000
    assert watch.found == []
