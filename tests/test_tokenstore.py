"""Where tokens are kept: keyring when it works, else an encrypted file, else this process's memory; never a plaintext file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest

from smtp_magic.auth.tokenstore import KEYRING_SERVICE, KeyringStore, MemoryStore, default_store
from tests.oauthhelpers import MemoryKeyring, memory_keyring


@pytest.fixture
def vault() -> Iterator[MemoryKeyring]:
    yield from memory_keyring()


def test_keyring_is_preferred_and_round_trips(vault: MemoryKeyring) -> None:
    store = default_store()
    assert isinstance(store, KeyringStore)
    assert "keyring (MemoryKeyring)" in store.where and KEYRING_SERVICE in store.where
    store.put("microsoft:app:https://authority", '{"RefreshToken": {}}')
    assert vault.passwords[(KEYRING_SERVICE, "microsoft:app:https://authority")]
    assert store.get("microsoft:app:https://authority") == '{"RefreshToken": {}}'
    assert store.delete("microsoft:app:https://authority") is True
    assert store.delete("microsoft:app:https://authority") is False
    assert store.get("microsoft:app:https://authority") is None


def test_without_a_keyring_nothing_is_written_in_plaintext(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    monkeypatch.setenv("HOME", str(tmp_path))
    try:
        store = default_store()
        store.put("google:client:someone@gmail.com", '{"refresh_token": "1//rt-visible?"}')
        assert store.get("google:client:someone@gmail.com")
    finally:
        keyring.set_keyring(previous)
    # This machine has no libsecret for msal-extensions either, so the token lives in memory
    # and the message says so; had encryption been available, the file would be encrypted.
    if isinstance(store, MemoryStore):
        assert "gone when it ends" in store.where
    written = [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]
    assert not any(b"1//rt-visible?" in data for data in written)
    assert "rt-visible" not in repr(store)


def test_memory_store_is_per_process_and_thread_safe() -> None:
    store = MemoryStore()
    store.put("k", "v")
    assert store.get("k") == "v" and repr(store) == "<MemoryStore keys=1>"
    assert store.delete("k") and store.get("k") is None
