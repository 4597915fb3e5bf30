"""Where a password comes from: the settings, keyring, or a prompt; and the error when none does."""

from __future__ import annotations

from collections.abc import Iterator

import keyring
import keyring.backend
import pytest

from smtp_magic import Settings, SettingsError, compose, send
from smtp_magic.auth.credentials import keyring_service, with_password
from smtp_magic.lab.server import LabServer
from tests.oauthhelpers import MemoryKeyring


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def test_settings_password_wins(memory_keyring: MemoryKeyring) -> None:
    settings = Settings("smtp.example.org", username="alice", password="from-settings")
    memory_keyring.set_password(keyring_service(settings), "alice", "from-keyring")
    assert with_password(settings) is settings


def test_keyring_password_sends(clean_lab: LabServer, memory_keyring: MemoryKeyring) -> None:
    settings = clean_lab.settings(587, password=None)
    memory_keyring.set_password(
        keyring_service(settings), settings.username or "", clean_lab.password
    )
    resolved = with_password(settings, interactive=False)
    assert resolved.password == clean_lab.password
    send(compose(to="bob@example.org", subject="via keyring", body="x"), resolved)
    assert clean_lab.wait_for_messages(1)[0].authenticated


def test_prompt_is_the_last_source(
    memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    def fake_getpass(prompt: str) -> str:
        asked.append(prompt)
        return "typed-at-the-prompt"

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    settings = Settings("smtp.example.org", username="alice")
    assert with_password(settings).password == "typed-at-the-prompt"
    assert asked == ["Password for alice at smtp.example.org:587: "]


def test_no_password_anywhere_says_where_to_put_one(memory_keyring: MemoryKeyring) -> None:
    settings = Settings("smtp.example.org", username="alice")
    with pytest.raises(SettingsError) as info:
        with_password(settings, interactive=False)
    message = str(info.value)
    assert "SMTP_PASSWORD" in message
    assert "keyring set smtp_magic/smtp.example.org alice" in message


def test_a_kernel_that_cannot_prompt_gets_our_error(
    memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    from IPython.core.error import StdinNotImplementedError

    def no_stdin(prompt: str) -> str:
        raise StdinNotImplementedError(
            "raw_input was called, but this frontend does not support input"
        )

    monkeypatch.setattr("getpass.getpass", no_stdin)
    with pytest.raises(SettingsError, match="no password for 'alice'"):
        with_password(Settings("smtp.example.org", username="alice"))


def test_no_username_needs_no_password(memory_keyring: MemoryKeyring) -> None:
    settings = Settings("smtp.example.org")
    assert with_password(settings, interactive=False) is settings
