"""Shared by the OAuth2 tests: a real in-memory keyring backend and the lab's authority with its clients."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from typing import Any

import keyring
import keyring.backend

from smtp_magic.lab.authority import DEMO_USER, OAuthAuthority

GOOGLE_CLIENT = "lab-google-desktop"
GOOGLE_SECRET = "lab-google-not-so-secret"
APP_CLIENT = "lab-unattended-app"
APP_SECRET = "lab-app-secret-5521"


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A real keyring backend keeping secrets in a dict, as keyring's docs suggest for tests."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if (service, username) not in self.passwords:
            raise keyring.errors.PasswordDeleteError("not found")
        del self.passwords[(service, username)]


def memory_keyring() -> Iterator[MemoryKeyring]:
    """Install a MemoryKeyring for the duration of a test (use as a fixture body)."""
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


def person_signs_in(form: Any, authority: OAuthAuthority, *, reaches_kernel: bool) -> None:
    """The person at a form's browser sign-in: waits for the link the form shows, signs in on
    the authority's page, then the browser reaches this machine's listener, or they paste the
    address it ended on into the form's Paste field. Run it in a thread beside the click."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and form.paste_box.layout.display != "":
        time.sleep(0.05)
    link = re.search(r'href="([^"]+)"', form.status.value)
    assert link is not None, form.status.value
    redirect = authority.browse(link.group(1).replace("&amp;", "&"))
    if reaches_kernel:
        authority.follow(redirect)
    else:
        form.paste_box.value = redirect


def lab_authority(**kwargs: object) -> OAuthAuthority:
    """An authority whose robot approves device codes, with a Google client and an app-only one."""
    options: dict[str, object] = {"robot": DEMO_USER, "robot_after": 1, **kwargs}
    authority = OAuthAuthority(**options)  # type: ignore[arg-type]
    authority.add_client(GOOGLE_CLIENT, secret=GOOGLE_SECRET)
    authority.add_client(APP_CLIENT, secret=APP_SECRET, app_only=True, send_as=[DEMO_USER])
    return authority


class FileKeyring(keyring.backend.KeyringBackend):
    """A real keyring backend in a JSON file named by SMTP_MAGIC_TEST_KEYRING, for tests only.

    It lets a test process and a kernel it starts share one keyring, as the system keyring of a
    real machine does between a sign-in and a later scheduled run.
    """

    priority = 1  # type: ignore[assignment]

    def _path(self) -> str:
        return os.environ["SMTP_MAGIC_TEST_KEYRING"]

    def _load(self) -> dict[str, str]:
        try:
            with open(self._path(), encoding="utf-8") as f:
                loaded: dict[str, str] = json.load(f)
                return loaded
        except FileNotFoundError:
            return {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}\x00{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        values = self._load()
        values[f"{service}\x00{username}"] = password
        with open(self._path(), "w", encoding="utf-8") as f:
            json.dump(values, f)

    def delete_password(self, service: str, username: str) -> None:
        values = self._load()
        if values.pop(f"{service}\x00{username}", None) is None:
            raise keyring.errors.PasswordDeleteError("not found")
        with open(self._path(), "w", encoding="utf-8") as f:
            json.dump(values, f)
