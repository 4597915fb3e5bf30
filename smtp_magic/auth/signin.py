"""One way for the front ends to build a token provider from names and options: ``token_provider("microsoft", ...)``."""

from __future__ import annotations

import json
from typing import Any

from smtp_magic.auth.oauth import TokenProvider
from smtp_magic.auth.tokenstore import SecretStore, default_store
from smtp_magic.errors import SettingsError

__all__ = ["PROVIDERS", "client_secret_key", "token_provider"]

PROVIDERS = ("microsoft", "google")


def client_secret_key(client_id: str) -> str:
    """The store key of an app's client secret (client credentials, for unattended sending)."""
    return f"microsoft-client-secret:{client_id}"


def token_provider(
    provider: str,
    *,
    client_id: str | None = None,
    username: str | None = None,
    tenant: str | None = None,
    authority: str | None = None,
    cafile: str | None = None,
    client_credentials: bool = False,
    client_secret_file: str | None = None,
    store: SecretStore | None = None,
) -> TokenProvider:
    """A MicrosoftTokens or GoogleTokens from the options the magic, the form and the CLI share.

    Args:
        provider: "microsoft" or "google".
        client_id: The app registration's (Microsoft) or OAuth client's (Google) id.
        username: The mailbox address.
        tenant: Microsoft only: "organizations" (default), "consumers", or a tenant id.
        authority: Microsoft only: a full authority URL (the lab's, a national cloud).
        cafile: Extra CA file to trust for the authority's HTTPS (the lab's).
        client_credentials: Microsoft only: unattended sending with the app's secret, which is
            read from the store (``smtp-magic login microsoft --client-credentials`` puts it there).
        client_secret_file: Google only: the downloaded ``client_secret.json``.
        store: Where tokens live (default: keyring, else an encrypted file).

    Raises:
        SettingsError: an unknown provider, or a missing or unreadable option.
    """
    store = store if store is not None else default_store()
    if provider == "microsoft":
        from smtp_magic.auth.microsoft import MicrosoftTokens

        secret = None
        if client_credentials:
            secret = store.get(client_secret_key(client_id or ""))
            if not secret:
                raise SettingsError(
                    f"no client secret is stored for app {client_id}: store it once with "
                    f"`smtp-magic login microsoft --client-id {client_id} --client-credentials` "
                    "(it reads the secret from a prompt or stdin, never from the command line)."
                )
        return MicrosoftTokens(
            client_id or "",
            username=username,
            tenant=tenant or "organizations",
            authority=authority,
            cafile=cafile,
            client_secret=secret,
            store=store,
        )
    if provider == "google":
        from smtp_magic.auth.google import GoogleTokens

        config: dict[str, Any] | None = None
        if client_secret_file:
            try:
                with open(client_secret_file, encoding="utf-8") as f:
                    config = json.load(f)
            except (OSError, ValueError) as exc:
                raise SettingsError(
                    f"cannot read the Google client file {client_secret_file!r} ({exc}): "
                    "download it again from the Google Cloud console (Credentials, Desktop app)."
                ) from None
        google = GoogleTokens(
            client_id, username=username, client_config=config, cafile=cafile, store=store
        )
        google.client_secret_file = client_secret_file
        return google
    raise SettingsError(f"unknown OAuth2 provider {provider!r}: use 'microsoft' or 'google'.")
