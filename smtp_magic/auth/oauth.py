"""What every OAuth2 token provider shares: the prompt shown to the user, headless detection, extras, the base class."""

from __future__ import annotations

import os
import shlex
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from smtp_magic.auth.tokenstore import SecretStore, default_store
from smtp_magic.errors import SettingsError, SignInError
from smtp_magic.phrasing import action

__all__ = [
    "EXTRAS",
    "Prompt",
    "Show",
    "TokenProvider",
    "headless_reason",
    "http_session",
    "print_prompt",
    "require",
]

EXTRAS = {
    "msal": ("microsoft", "msal"),
    "msal_extensions": ("microsoft", "msal-extensions"),
    "google_auth_oauthlib": ("google", "google-auth-oauthlib"),
    "google": ("google", "google-auth"),
    "requests": ("google", "requests"),
}
"""Top-level import name -> (the ``smtp-magic[...]`` extra that brings it, its PyPI name)."""

REFRESH_MARGIN = 300.0
"""Seconds before expiry at which an access token counts as stale (msal uses the same 5 minutes)."""


@dataclass(frozen=True)
class Prompt:
    """What the user must do to sign in: open ``url`` (and type ``code`` for the device flow).

    Attributes:
        kind: "device" (type a code on a page) or "browser" (sign in on a page that redirects back).
        url: The page to open.
        code: The code to type (device flow only).
        message: One sentence saying both, ready to print.
        paste_back: True when the browser's final address must be pasted back (remote kernel).
        received: With paste_back, waits up to N seconds for the loopback listener to get the
            redirect itself (a local browser), so a front end can take whichever comes first.
    """

    kind: str
    url: str
    code: str = ""
    message: str = ""
    paste_back: bool = False
    received: Callable[[float], str | None] | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return self.message or self.url


Show = Callable[[Prompt], None]
"""How a front end shows a Prompt: printed in a terminal, HTML in a notebook, a label in the form."""


def print_prompt(prompt: Prompt) -> None:
    """The default Show: one line on stdout (a terminal, or a notebook cell's output)."""
    print(prompt.message, flush=True)


def require(module: str) -> Any:
    """Import an optional library, or explain the exact pip command that installs it.

    Raises:
        SettingsError: the library is not installed.
    """
    try:
        return import_module(module)
    except ImportError:
        extra, package = EXTRAS.get(module.split(".")[0], ("microsoft", module))
        raise SettingsError(
            f"signing in with {extra.capitalize()} needs the optional package {package!r}, "
            f"which is not installed: run  pip install 'smtp-magic[{extra}]'  and restart "
            "the kernel (or the command)."
        ) from None


def headless_reason() -> str | None:
    """Why no person can answer a sign-in here, or None when someone can.

    Headless: a notebook executed by papermill or ``jupyter nbconvert --execute`` (the kernel was
    told no front end can answer input), a CI job (``CI`` is set, as GitHub Actions, GitLab and
    others do), or a process without a terminal (cron, a pipe).
    """
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false"):
        return "this is a CI job (CI is set)"
    shell = None
    if "IPython" in sys.modules:
        from IPython import get_ipython

        shell = get_ipython()
    kernel = getattr(shell, "kernel", None)
    if kernel is not None:
        # ipykernel records each execute_request's allow_stdin; nbclient (papermill, nbconvert
        # --execute) sends False, JupyterLab and Notebook send True.
        if getattr(kernel, "_allow_stdin", True) is False:
            return "this notebook is being run without a front end (papermill, nbconvert --execute)"
        return None
    if shell is not None:
        return None
    stdin = sys.stdin
    if stdin is None or not stdin.isatty():
        return "there is no terminal (cron, a pipe, a service)"
    return None


def http_session(cafile: str | None) -> Any:
    """A requests Session that trusts ``cafile`` instead of the system store (the lab authority).

    requests lets ``REQUESTS_CA_BUNDLE`` override ``Session.verify`` (psf/requests#3829), so the
    CA file is also bound to every request.
    """
    requests = import_module("requests")
    session = requests.Session()
    if cafile:
        import functools

        session.verify = cafile
        session.request = functools.partial(session.request, verify=cafile)
    return session


class TokenProvider:
    """A zero-argument callable returning a fresh access token, for ``Settings(token=...)``.

    Calling it never starts an interactive sign-in: it returns a cached token, refreshes it (with
    the stored refresh token, or client credentials), or raises ``SignInError`` naming the command
    that signs in once. ``sign_in()`` is the interactive part; ``sign_out()`` forgets the tokens.

    Subclasses implement ``_silent()``, ``_sign_in()`` and ``_forget()``.
    """

    provider = ""

    def __init__(self, *, client_id: str, username: str | None, store: SecretStore | None) -> None:
        if not client_id or not client_id.strip():
            raise SettingsError(
                f"no OAuth2 client id for {self.provider or 'the provider'}: register an app "
                "(see the README's OAuth2 checklist) and pass its client id."
            )
        self.client_id = client_id.strip()
        self.username = username
        self.store = store if store is not None else default_store()
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._stale = False

    def __call__(self) -> str:
        """A valid access token, refreshed when it expires within five minutes."""
        with self._lock:
            if self._token and not self._stale and time.time() < self._expires_at - REFRESH_MARGIN:
                return self._token
            token, expires_in = self._silent(force=self._stale)
            self._token, self._expires_at, self._stale = token, time.time() + expires_in, False
            return token

    def invalidate(self) -> None:
        """The server refused the last token (expired or revoked): the next call refreshes."""
        self._stale = True

    def sign_in(
        self, show: Show | None = None, *, interactive: bool | None = None, **how: Any
    ) -> str:
        """Sign in interactively; return the account name. ``how`` picks the flow.

        Args:
            show: Shows the code or link to the user (default: print it).
            interactive: None detects whether a person can answer (see ``headless_reason``);
                True asserts one can (or the lab's simulated user does).

        Raises:
            SignInError: headless (within a second, with the command to run once by hand), or
                the provider refused.
        """
        if interactive is None:
            reason = headless_reason()
            if reason is not None:
                raise SignInError(
                    f"cannot sign in to {self.provider.capitalize()} here: {reason}, so nobody "
                    "could open the sign-in page. Sign in once where you can, with "
                    f"{action('sign_in', self.login_args())}; later runs use the stored token.",
                    command=self.command(),
                )
        account = self._sign_in(show or print_prompt, **how)
        self.username = self.username or account
        with self._lock:
            self._token, self._expires_at = None, 0.0
        return account

    def sign_out(self) -> bool:
        """Forget this account's tokens (store and memory); True when something was removed."""
        with self._lock:
            self._token, self._expires_at = None, 0.0
        return self._forget()

    def login_args(self) -> str:
        """The arguments of ``smtp-magic login`` / ``%smtp_login`` that sign this account in."""
        parts = [self.provider, "--client-id", self.client_id]
        if self.username:
            parts += ["--username", self.username]
        return " ".join(shlex.quote(p) for p in [*parts, *self._login_extra()])

    def command(self) -> str:
        """The shell command that signs in once (``smtp-magic login ...``)."""
        return f"smtp-magic login {self.login_args()}"

    def missing(self, why: str) -> SignInError:
        """The error for "no usable token": what happened, and how to sign in once."""
        return SignInError(
            f"no OAuth2 token for {self.username or 'this account'} at "
            f"{self.provider.capitalize()} (client id {self.client_id}): {why}. Sign in once "
            f"with {action('sign_in', self.login_args())}; later runs use the stored token.",
            command=self.command(),
        )

    def _login_extra(self) -> list[str]:
        return []

    def _silent(self, *, force: bool) -> tuple[str, float]:
        raise NotImplementedError

    def _sign_in(self, show: Show, **how: Any) -> str:
        raise NotImplementedError

    def _forget(self) -> bool:
        raise NotImplementedError

    def __repr__(self) -> str:
        # Never a token: only who, where, and whether one is held.
        held = "held" if self._token else "none"
        return (
            f"<{type(self).__name__} {self.username or '?'} client_id={self.client_id!r} "
            f"access_token={held}>"
        )
