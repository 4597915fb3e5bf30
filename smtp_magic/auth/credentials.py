"""Where a password comes from when it is not in Settings: keyring, then a getpass prompt; never a command line."""

from __future__ import annotations

import dataclasses
import getpass

from smtp_magic.errors import SettingsError
from smtp_magic.phrasing import action
from smtp_magic.settings import Settings

__all__ = ["keyring_service", "with_password"]


def keyring_service(settings: Settings) -> str:
    """The keyring service name smtp_magic reads: ``smtp_magic/<host>`` (the user name is the key).

    Store a password with ``keyring set smtp_magic/smtp.example.org alice``.
    """
    return f"smtp_magic/{settings.host}"


def _from_keyring(settings: Settings) -> str | None:
    try:
        import keyring
    except ImportError:
        return None
    try:
        found = keyring.get_password(keyring_service(settings), settings.username or "")
    except Exception:  # no usable backend, a locked store: the prompt is the next source
        return None
    return found if isinstance(found, str) else None


def with_password(settings: Settings, *, interactive: bool = True) -> Settings:
    """Return ``settings`` with a password when a username needs one.

    Sources, in order: the settings themselves (``SMTP_PASSWORD`` via ``Settings.from_env``),
    keyring (when installed), then a ``getpass`` prompt (which works in Jupyter).

    Raises:
        SettingsError: no password could be found and prompting is not allowed.
    """
    if settings.password or not settings.username or settings.token is not None:
        return settings  # nothing to find; an OAuth2 login needs no password
    password = _from_keyring(settings)
    why = ", and no password prompt can appear here"
    if not password and interactive:
        try:
            password = getpass.getpass(f"Password for {settings.username} at {settings.address}: ")
            why = ""
        except (EOFError, NotImplementedError):
            # No terminal, or a kernel whose front end cannot prompt (IPython's
            # StdinNotImplementedError is a NotImplementedError): the error below says what to do.
            password = None
    if not password:
        # Phrased per front end (phrasing "password"): the CLI offers --password-stdin, the
        # form its Password field; a prompt is offered only where one can appear.
        where = f"{keyring_service(settings)} {settings.username}"
        raise SettingsError(
            f"no password for {settings.username!r} at {settings.address}{why}: "
            f"{action('password', where)}."
        )
    return dataclasses.replace(settings, password=password)
