"""``smtp-magic login`` / ``logout``, and the OAuth2 options of ``smtp-magic send``: thin front ends over smtp_magic.auth."""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import sys
from typing import Any

from smtp_magic.auth.oauth import Prompt, TokenProvider
from smtp_magic.auth.signin import PROVIDERS, client_secret_key, token_provider
from smtp_magic.auth.tokenstore import default_store
from smtp_magic.errors import SettingsError
from smtp_magic.settings import Settings

__all__ = ["add_parsers", "add_token_options", "with_token"]

LOGIN_DESCRIPTION = """\
Sign in once to Microsoft 365 or Gmail with OAuth2, so that `smtp-magic send --oauth ...`,
%%sendmail, the form and scheduled runs (cron, papermill, CI) can send without a password.
The refresh token is stored in keyring (else an encrypted file), never in a file you can read.

Microsoft: the device code flow by default (open the link it prints, type the code); --browser
signs in through the browser and a redirect to 127.0.0.1 (use it when your organisation blocks
the device code); --client-credentials stores an app's client secret for unattended sending
(SMTP.SendAsApp), read from a prompt or --client-secret-stdin, never from the command line.
Google: the browser flow (Google offers no device code for Gmail); --paste when the browser
cannot reach this machine (SSH, a server): paste the address the browser ends on."""


def _options(parser: argparse.ArgumentParser, *, login: bool) -> None:
    parser.add_argument("provider", choices=PROVIDERS)
    parser.add_argument("--client-id", help="the app registration's / OAuth client's id")
    parser.add_argument("--username", help="the mailbox address")
    parser.add_argument("--tenant", help="Microsoft: organizations (default), consumers, or an id")
    parser.add_argument("--authority", help="Microsoft: a full authority URL (lab, national cloud)")
    parser.add_argument("--cafile", help="extra CA file to trust for the authority's HTTPS")
    parser.add_argument("--client-secret-file", help="Google: the downloaded client_secret.json")
    parser.add_argument(
        "--client-credentials",
        action="store_true",
        help="Microsoft: unattended sending with the app's client secret (SMTP.SendAsApp)",
    )
    if not login:
        return
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--browser", action="store_true", help="sign in in the browser")
    how.add_argument("--paste", action="store_true", help="browser, then paste the final address")
    parser.add_argument(
        "--client-secret-stdin", action="store_true", help="read the client secret from stdin"
    )
    parser.add_argument(
        "--interactive",
        action="store_true",
        help="sign in even where no terminal is detected (someone reads this output)",
    )


def _provider(args: argparse.Namespace) -> TokenProvider:
    return token_provider(
        args.provider,
        client_id=args.client_id,
        username=args.username,
        tenant=args.tenant,
        authority=args.authority,
        cafile=args.cafile,
        client_credentials=args.client_credentials,
        client_secret_file=args.client_secret_file,
    )


def _store_client_secret(args: argparse.Namespace) -> str:
    if args.provider != "microsoft" or not args.client_id:
        raise SettingsError("--client-credentials is for Microsoft and needs --client-id.")
    if args.client_secret_stdin:
        secret = sys.stdin.readline().strip()
    else:
        secret = getpass.getpass(f"Client secret of app {args.client_id}: ").strip()
    if not secret:
        raise SettingsError("no client secret was given (an empty line).")
    store = default_store()
    store.put(client_secret_key(args.client_id), secret)
    return store.where


def _login(args: argparse.Namespace) -> int:
    out = args.out
    if args.client_credentials:
        where = _store_client_secret(args)
        tokens = _provider(args)
        tokens()  # proves the secret works now, not at 3 a.m. under cron
        print(
            f"App {args.client_id} got a token with its client secret, stored in {where}.", file=out
        )
        return 0
    tokens = _provider(args)

    def show(prompt: Prompt) -> None:
        print(prompt.message, file=out, flush=True)

    def paste(prompt: Prompt) -> str:
        print(
            f"{prompt.message}\nAfter signing in, copy the address the browser ends on "
            "(it starts with http://127.0.0.1 or http://localhost) and paste it here:",
            file=out,
            flush=True,
        )
        return sys.stdin.readline().strip()

    how: dict[str, Any] = {}
    if args.browser or args.paste:
        how["method"] = "browser"
    if args.paste:
        how["paste"] = paste
    account = tokens.sign_in(show, interactive=True if args.interactive else None, **how)
    print(f"Signed in as {account}; the token is stored in {tokens.store.where}.", file=out)
    return 0


def _logout(args: argparse.Namespace) -> int:
    args.client_credentials = False  # signing out needs no secret; it removes a stored one
    tokens = _provider(args)
    found = tokens.sign_out()
    if args.provider == "microsoft" and args.client_id:
        found = tokens.store.delete(client_secret_key(args.client_id)) or found
    print(
        ("Signed out: the stored tokens were removed from " if found else "Nothing was stored in ")
        + tokens.store.where
        + ".",
        file=args.out,
    )
    return 0


def add_parsers(commands: Any) -> None:
    """Add ``login`` and ``logout`` to the subcommands of ``smtp-magic``."""
    login = commands.add_parser(
        "login",
        help="sign in once with OAuth2 (Microsoft 365, Gmail)",
        description=LOGIN_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _options(login, login=True)
    login.set_defaults(run=_login)
    logout = commands.add_parser(
        "logout",
        help="forget the stored OAuth2 tokens (and revoke them where the provider allows)",
        description="Remove the stored refresh token (Google: also revoke it) or msal's cache, "
        "and a stored client secret.",
    )
    _options(logout, login=False)
    logout.set_defaults(run=_logout)


def add_token_options(parser: argparse.ArgumentParser) -> None:
    """``--oauth microsoft|google`` and its companions, for ``smtp-magic send``."""
    group = parser.add_argument_group("OAuth2 (instead of a password; sign in first with login)")
    group.add_argument("--oauth", choices=PROVIDERS, help="log in with a token from this provider")
    group.add_argument("--client-id", help="the app's client id (as given to login)")
    group.add_argument("--tenant", help="Microsoft: the tenant (as given to login)")
    group.add_argument("--authority", help="Microsoft: the authority URL (as given to login)")
    group.add_argument("--oauth-cafile", help="extra CA file for the authority (the lab's)")
    group.add_argument(
        "--client-credentials",
        action="store_true",
        help="Microsoft: use the stored app secret (unattended)",
    )


def with_token(args: argparse.Namespace, settings: Settings) -> Settings:
    """``settings`` with a token provider when ``--oauth`` was given; it never prompts."""
    if not getattr(args, "oauth", None):
        return settings
    if not settings.username:
        raise SettingsError("--oauth needs the mailbox: give --user ADDRESS (or SMTP_USERNAME).")
    tokens = token_provider(
        args.oauth,
        client_id=args.client_id,
        username=settings.username,
        tenant=args.tenant,
        authority=args.authority,
        cafile=args.oauth_cafile,
        client_credentials=args.client_credentials,
    )
    tokens()  # fails before connecting, fast, with the login command, when none is stored
    return dataclasses.replace(settings, password=None, token=tokens)
