"""Where OAuth2 refresh tokens and msal's cache live: keyring, else an msal-extensions encrypted file, else memory."""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Protocol

__all__ = ["KEYRING_SERVICE", "MemoryStore", "SecretStore", "default_store"]

KEYRING_SERVICE = "smtp_magic/oauth2"
"""The keyring service name of every token smtp_magic keeps (``keyring`` shows them under it)."""


class SecretStore(Protocol):
    """A place for secret strings by key; ``where`` says where, for messages (never the value)."""

    where: str

    def get(self, key: str) -> str | None:
        """The stored value, or None."""
        ...

    def put(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``, replacing what was there."""
        ...

    def delete(self, key: str) -> bool:
        """Remove ``key``; True when something was removed."""
        ...


class MemoryStore:
    """Tokens for this process only: used where no keyring or encrypted file is available."""

    where = "this process's memory (gone when it ends; install a keyring backend to keep it)"

    def __init__(self) -> None:
        self._values: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._values.get(key)

    def put(self, key: str, value: str) -> None:
        with self._lock:
            self._values[key] = value

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._values.pop(key, None) is not None

    def __repr__(self) -> str:
        return f"<MemoryStore keys={len(self._values)}>"


class KeyringStore:
    """The operating system's credential store through keyring (Keychain, Secret Service, Windows)."""

    def __init__(self) -> None:
        import keyring

        self._keyring = keyring
        self.where = (
            f"keyring ({type(keyring.get_keyring()).__name__}), service {KEYRING_SERVICE!r}"
        )

    def get(self, key: str) -> str | None:
        value = self._keyring.get_password(KEYRING_SERVICE, key)
        return value if isinstance(value, str) else None

    def put(self, key: str, value: str) -> None:
        self._keyring.set_password(KEYRING_SERVICE, key, value)

    def delete(self, key: str) -> bool:
        import keyring.errors

        try:
            self._keyring.delete_password(KEYRING_SERVICE, key)
        except keyring.errors.PasswordDeleteError:
            return False
        return True

    def __repr__(self) -> str:
        return "<KeyringStore>"


class EncryptedFileStore:
    """One msal-extensions encrypted file per key (DPAPI, Keychain or libsecret encrypt it)."""

    def __init__(self, folder: str) -> None:
        from msal_extensions import build_encrypted_persistence

        self._build = build_encrypted_persistence
        self._folder = folder
        self.where = f"encrypted files in {folder}"
        # Fail now, not at the first save, when the platform cannot encrypt (no libsecret).
        build_encrypted_persistence(os.path.join(folder, "probe.bin"))

    def _persistence(self, key: str) -> object:
        name = hashlib.sha256(key.encode()).hexdigest()[:32] + ".bin"
        return self._build(os.path.join(self._folder, name))

    def get(self, key: str) -> str | None:
        from msal_extensions.persistence import PersistenceNotFound

        try:
            value = self._persistence(key).load()  # type: ignore[attr-defined]
        except PersistenceNotFound:
            return None
        return value if isinstance(value, str) and value else None

    def put(self, key: str, value: str) -> None:
        os.makedirs(self._folder, mode=0o700, exist_ok=True)
        self._persistence(key).save(value)  # type: ignore[attr-defined]

    def delete(self, key: str) -> bool:
        name = hashlib.sha256(key.encode()).hexdigest()[:32] + ".bin"
        try:
            os.remove(os.path.join(self._folder, name))
        except FileNotFoundError:
            return False
        return True

    def __repr__(self) -> str:
        return f"<EncryptedFileStore {self._folder!r}>"


def _keyring_usable() -> bool:
    try:
        import keyring
        import keyring.errors
    except ImportError:
        return False
    try:
        # keyring's "fail" backend (priority 0) raises NoKeyringError on every call.
        keyring.get_password(KEYRING_SERVICE, "smtp_magic-probe")
    except keyring.errors.KeyringError:
        return False
    except Exception:  # a locked or broken store behaves like none
        return False
    return True


_MEMORY = MemoryStore()


def default_store() -> SecretStore:
    """The best store this machine offers: keyring, else an encrypted file, else memory.

    Never a plaintext file: a refresh token is as good as a password for sending mail.
    """
    if _keyring_usable():
        return KeyringStore()
    folder = os.path.join(os.path.expanduser("~"), ".cache", "smtp_magic", "tokens")
    try:
        return EncryptedFileStore(folder)
    except Exception:  # msal-extensions missing, or no libsecret/DPAPI/Keychain here
        return _MEMORY
