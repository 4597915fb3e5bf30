"""Gmail tokens for SMTP through google-auth-oauthlib: the installed-app flow with a loopback redirect or a pasted address."""

from __future__ import annotations

import datetime
import json
import time
import webbrowser
from collections.abc import Callable, Mapping
from typing import Any

from smtp_magic.auth.loopback import LoopbackReceiver, parse_redirect
from smtp_magic.auth.oauth import Prompt, Show, TokenProvider, http_session, require
from smtp_magic.auth.tokenstore import SecretStore
from smtp_magic.errors import SettingsError, SignInError

__all__ = ["GMAIL_SCOPE", "GoogleTokens"]

GMAIL_SCOPE = "https://mail.google.com/"
"""The only scope Gmail accepts for SMTP (a "restricted" scope in Google's terms)."""

GOOGLE_AUTH_URI = "https://accounts.google.com/o/oauth2/auth"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
GOOGLE_REVOKE_URI = "https://oauth2.googleapis.com/revoke"

# No device flow for Google: its "TV and limited input" flow accepts only a short list of scopes
# and answers invalid_scope for https://mail.google.com/; and the copy-paste "oob" redirect was
# shut down in 2023. The loopback redirect (or pasting the address it ends on) is what remains.


class GoogleTokens(TokenProvider):
    """Access tokens for Gmail SMTP AUTH (XOAUTH2/OAUTHBEARER) from a Google OAuth client.

    Args:
        client_id: The OAuth client's id (type "Desktop app").
        username: The Gmail or Workspace address (required: the store is keyed by it).
        client_secret: The Desktop client's secret (Google says it is not confidential for
            installed apps, but its token endpoint still wants it).
        client_config: A downloaded ``client_secret.json`` as a dict, instead of the two above
            (also how the lab passes its loopback ``auth_uri``/``token_uri``).
        cafile: Extra CA file to trust for the endpoints (the lab's).
        store: Where the refresh token is kept (default: keyring, else an encrypted file).
        open_browser: Opens the sign-in page (default: webbrowser.open).
    """

    provider = "google"

    def __init__(
        self,
        client_id: str | None = None,
        *,
        username: str | None = None,
        client_secret: str | None = None,
        client_config: Mapping[str, Any] | None = None,
        cafile: str | None = None,
        store: SecretStore | None = None,
        open_browser: Callable[[str], object] | None = None,
    ) -> None:
        config = dict(
            (client_config or {}).get("installed") or (client_config or {}).get("web") or {}
        )
        client_id = client_id or config.get("client_id") or ""
        super().__init__(client_id=client_id, username=username, store=store)
        if not username:
            raise SettingsError(
                "Google sign-in needs the Gmail address: pass username='you@gmail.com' "
                "(XOAUTH2 names the mailbox, and the stored token is kept under it)."
            )
        self.config = {
            "client_id": self.client_id,
            "client_secret": client_secret or config.get("client_secret", ""),
            "auth_uri": config.get("auth_uri", GOOGLE_AUTH_URI),
            "token_uri": config.get("token_uri", GOOGLE_TOKEN_URI),
            "revoke_uri": config.get("revoke_uri", GOOGLE_REVOKE_URI),
        }
        self.cafile = cafile
        self.client_secret_file: str | None = None  # where the config came from, for messages
        self._open = open_browser or webbrowser.open

    @property
    def key(self) -> str:
        """The store key of this account's refresh token."""
        return f"google:{self.client_id}:{self.username}"

    def _login_extra(self) -> list[str]:
        extra = ["--client-secret-file", self.client_secret_file] if self.client_secret_file else []
        return extra + (["--cafile", self.cafile] if self.cafile else [])

    def _stored(self) -> dict[str, Any]:
        raw = self.store.get(self.key)
        if not raw:
            raise self.missing(f"nothing is stored in {self.store.where}")
        data: dict[str, Any] = json.loads(raw)
        return data

    def _silent(self, *, force: bool) -> tuple[str, float]:
        stored = self._stored()
        credentials_module = require("google.oauth2.credentials")
        transport = require("google.auth.transport.requests")
        exceptions = require("google.auth.exceptions")
        credentials = credentials_module.Credentials(
            token=None,
            refresh_token=stored["refresh_token"],
            token_uri=stored.get("token_uri", self.config["token_uri"]),
            client_id=self.client_id,
            client_secret=stored.get("client_secret", self.config["client_secret"]),
            scopes=[GMAIL_SCOPE],
        )
        try:
            credentials.refresh(transport.Request(session=http_session(self.cafile)))
        except exceptions.RefreshError as exc:
            reason = str(exc.args[0]) if exc.args else "refused"
            raise self.missing(
                f"Google refused the stored refresh token ({reason.split(':')[0]}); it was "
                "revoked, or the OAuth client is in Testing status, whose refresh tokens die "
                "after 7 days"
            ) from None
        except exceptions.TransportError as exc:
            raise SignInError(
                f"cannot reach Google's token endpoint {self.config['token_uri']}: "
                f"{str(exc).splitlines()[0][:200]}"
            ) from None
        if credentials.refresh_token and credentials.refresh_token != stored["refresh_token"]:
            self._keep(credentials.refresh_token)
        expires_in = 3600.0
        if credentials.expiry is not None:
            # google-auth keeps expiry as a naive UTC datetime.
            expiry = credentials.expiry.replace(tzinfo=datetime.UTC)
            expires_in = expiry.timestamp() - time.time()
        return str(credentials.token), max(expires_in, 60.0)

    def _keep(self, refresh_token: str) -> None:
        self.store.put(
            self.key,
            json.dumps(
                {
                    "refresh_token": refresh_token,
                    "token_uri": self.config["token_uri"],
                    "client_secret": self.config["client_secret"],
                }
            ),
        )

    def _sign_in(self, show: Show, **how: Any) -> str:
        method = how.get("method", "browser")
        if method == "device":
            raise SignInError(
                "Google has no device code sign-in for Gmail: its device flow rejects the "
                "https://mail.google.com/ scope (invalid_scope). Use the browser sign-in; on a "
                "remote kernel, paste the address the browser ends on (--paste)."
            )
        if method != "browser":
            raise SignInError(f"unknown sign-in method {method!r} for Google: use browser.")
        flow_module = require("google_auth_oauthlib.flow")
        paste: Callable[[Prompt], str] | None = how.get("paste")
        timeout = float(how.get("timeout", 300))
        with LoopbackReceiver("127.0.0.1") as receiver:
            flow = flow_module.Flow.from_client_config(
                {"installed": dict(self.config, redirect_uris=[receiver.redirect_uri])},
                scopes=[GMAIL_SCOPE],
                redirect_uri=receiver.redirect_uri,
            )
            # access_type=offline asks for a refresh token; prompt=consent makes Google send one
            # again when the user had consented before.
            url, state = flow.authorization_url(
                access_type="offline", prompt="consent", login_hint=self.username
            )
            prompt = Prompt(
                "browser",
                url,
                message=f"Sign in to Google in your browser: {url}",
                paste_back=paste is not None,
                received=receiver.wait if paste is not None else None,
            )
            if paste is not None:
                answer: str | None = paste(prompt)
            else:
                show(prompt)
                self._open(url)
                answer = receiver.wait(timeout)
        if not answer:
            raise SignInError(
                f"the browser did not come back within {timeout:.0f} s. If this kernel runs on "
                "another machine (JupyterHub, Binder, a server), the browser cannot reach it: "
                "sign in with --paste and paste the address the browser ends on."
            )
        params = parse_redirect(answer, state=state, provider="Google")
        try:
            token = flow.fetch_token(code=params["code"], verify=self.cafile or True)
        except Exception as exc:  # oauthlib's OAuth2Error, requests' errors: one message
            raise SignInError(
                f"Google did not exchange the sign-in for a token: {str(exc).splitlines()[0][:200]}"
            ) from None
        if not token.get("refresh_token"):
            raise SignInError(
                "Google returned no refresh token, so the sign-in would not last: remove the "
                "app's access at https://myaccount.google.com/permissions and sign in again."
            )
        self._keep(token["refresh_token"])
        return str(self.username)

    def _forget(self) -> bool:
        raw = self.store.get(self.key)
        if raw:
            # Revoke at Google too (best effort), so the token is dead, not just forgotten.
            try:
                session = http_session(self.cafile)
                session.post(
                    self.config["revoke_uri"],
                    data={"token": json.loads(raw)["refresh_token"], "client_id": self.client_id},
                    timeout=5,
                )
            except Exception:  # offline, or already revoked: forgetting locally still matters
                pass
        return self.store.delete(self.key)
