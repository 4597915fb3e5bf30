"""Microsoft 365 tokens for SMTP through msal: device code, browser with a loopback redirect, client credentials."""

from __future__ import annotations

import warnings
import webbrowser
from collections.abc import Callable
from typing import Any

from smtp_magic.auth.loopback import LoopbackReceiver, parse_redirect
from smtp_magic.auth.oauth import Prompt, Show, TokenProvider, http_session, require
from smtp_magic.auth.tokenstore import SecretStore
from smtp_magic.errors import SignInError
from smtp_magic.phrasing import action

__all__ = ["APP_SCOPE", "SMTP_SCOPE", "MicrosoftTokens"]

SMTP_SCOPE = "https://outlook.office.com/SMTP.Send"
"""The delegated scope for SMTP AUTH; msal adds offline_access (and openid, profile) itself."""

APP_SCOPE = "https://outlook.office365.com/.default"
"""Client credentials: the app's granted permissions, here SMTP.SendAsApp."""

PUBLIC_AUTHORITY = "https://login.microsoftonline.com"

# Entra's codes for a sign-in that Conditional Access blocked: 53003 (policy blocks token
# issuance, what a policy on the device code flow answers), 530033 and 50097 (the policy needs a
# managed device, which a device-code sign-in cannot prove).
_BLOCKED = ("AADSTS53003", "AADSTS530033", "AADSTS50097")


class MicrosoftTokens(TokenProvider):
    """Access tokens for Microsoft 365 SMTP AUTH (XOAUTH2), kept fresh by msal.

    Args:
        client_id: The Entra app registration's Application (client) ID.
        username: The mailbox (``alice@contoso.com``); picks the account in the cache.
        tenant: "organizations" (work accounts), "consumers", "common", or a tenant id/domain.
        authority: A full authority URL instead of login.microsoftonline.com/<tenant> (a national
            cloud, or the lab's loopback authority); instance discovery is skipped for it.
        cafile: Extra CA file to trust for the authority (the lab's).
        client_secret: For unattended sending with client credentials (SMTP.SendAsApp); then no
            user signs in.
        store: Where msal's cache is kept (default: keyring, else an encrypted file).
        open_browser: Opens the sign-in page in the browser flow (default: webbrowser.open).
    """

    provider = "microsoft"

    def __init__(
        self,
        client_id: str,
        *,
        username: str | None = None,
        tenant: str = "organizations",
        authority: str | None = None,
        cafile: str | None = None,
        client_secret: str | None = None,
        store: SecretStore | None = None,
        open_browser: Callable[[str], object] | None = None,
    ) -> None:
        super().__init__(client_id=client_id, username=username, store=store)
        self.authority = (authority or f"{PUBLIC_AUTHORITY}/{tenant}").rstrip("/")
        self.cafile = cafile
        self._client_secret = client_secret
        self._open = open_browser or webbrowser.open
        self._app: Any = None
        self._cache: Any = None

    @property
    def key(self) -> str:
        """The store key of msal's cache for this app and authority."""
        return f"microsoft:{self.client_id}:{self.authority}"

    @property
    def app_only(self) -> bool:
        """True for client credentials (no user; the app sends as a granted mailbox)."""
        return self._client_secret is not None

    def _login_extra(self) -> list[str]:
        extra = []
        if self.authority != f"{PUBLIC_AUTHORITY}/organizations":
            extra += ["--authority", self.authority]
        if self.cafile:
            extra += ["--cafile", self.cafile]
        if self.app_only:
            extra.append("--client-credentials")
        return extra

    def _msal(self) -> Any:
        if self._app is not None:
            return self._app
        msal = require("msal")
        self._cache = msal.SerializableTokenCache()
        stored = self.store.get(self.key)
        if stored:
            self._cache.deserialize(stored)
        options: dict[str, Any] = {
            "authority": self.authority,
            "token_cache": self._cache,
            "http_client": http_session(self.cafile),
        }
        if not self.authority.startswith(PUBLIC_AUTHORITY + "/"):
            # msal asks login.microsoftonline.com whether an unknown authority is genuine;
            # the lab (or a sovereign cloud given by URL) is known to the caller.
            options["instance_discovery"] = False
        try:
            if self.app_only:
                self._app = msal.ConfidentialClientApplication(
                    self.client_id, client_credential=self._client_secret, **options
                )
            else:
                self._app = msal.PublicClientApplication(self.client_id, **options)
        except (ValueError, OSError) as exc:
            raise SignInError(
                f"cannot reach the Microsoft authority {self.authority}: {_describe(exc)}. "
                "Check the tenant or authority URL and the network."
            ) from None
        return self._app

    def _save(self) -> None:
        if self._cache is not None and self._cache.has_state_changed:
            self.store.put(self.key, self._cache.serialize())
            self._cache.has_state_changed = False

    def _silent(self, *, force: bool) -> tuple[str, float]:
        if self._app is None and not self.app_only and not self.store.get(self.key):
            # Nothing stored: say so at once, without asking the authority anything (a cron job
            # must fail in well under a second, even offline).
            raise self.missing(f"nothing is stored in {self.store.where}")
        app = self._msal()
        if self.app_only:
            result = app.acquire_token_for_client([APP_SCOPE])
        else:
            accounts = app.get_accounts(username=self.username) if self.username else []
            accounts = accounts or ([] if self.username else app.get_accounts())
            if not accounts:
                raise self.missing(f"nothing is stored in {self.store.where}")
            # msal returns the cached token until 5 minutes before expiry, then refreshes.
            result = app.acquire_token_silent_with_error(
                [SMTP_SCOPE], account=accounts[0], force_refresh=force
            )
            if result is None:
                raise self.missing("the stored sign-in has no token for SMTP")
        self._save()
        return self._token_of(result, refresh=True)

    def _token_of(self, result: dict[str, Any], *, refresh: bool = False) -> tuple[str, float]:
        if "access_token" in result:
            return str(result["access_token"]), float(result.get("expires_in", 3600))
        error = str(result.get("error", "unknown_error"))
        description = str(result.get("error_description", "")).split("\r\n")[0].split("\n")[0]
        if refresh and error in ("invalid_grant", "interaction_required"):
            detail = f"{error}: {description}" if description else error
            raise self.missing(f"Microsoft refused the stored sign-in ({detail})")
        raise SignInError(f"Microsoft refused the sign-in ({error}): {description}")

    def _sign_in(self, show: Show, **how: Any) -> str:
        method = how.get("method", "client_credentials" if self.app_only else "device")
        app = self._msal()
        if method == "client_credentials" or self.app_only:
            self._token_of(app.acquire_token_for_client([APP_SCOPE]))
            self._save()
            return self.username or f"app {self.client_id}"
        if method == "browser":
            result = self._browser(app, show, how.get("paste"), float(how.get("timeout", 300)))
        elif method == "device":
            result = self._device(app, show)
        else:
            raise SignInError(
                f"unknown sign-in method {method!r}: use device, browser or client_credentials."
            )
        self._token_of(result)
        self._save()
        claims = result.get("id_token_claims") or {}
        return str(claims.get("preferred_username") or self.username or "")

    def _device(self, app: Any, show: Show) -> dict[str, Any]:
        flow = app.initiate_device_flow(scopes=[SMTP_SCOPE])
        if "user_code" not in flow:
            self._raise_flow_error(flow)
        show(Prompt("device", flow["verification_uri"], flow["user_code"], flow.get("message", "")))
        result: dict[str, Any] = app.acquire_token_by_device_flow(flow)
        if "access_token" not in result:
            self._raise_flow_error(result)
        return result

    def _raise_flow_error(self, result: dict[str, Any]) -> None:
        error = str(result.get("error", ""))
        description = str(result.get("error_description", ""))
        if any(code in description for code in _BLOCKED):
            raise SignInError(
                "your organisation's Conditional Access blocks the device code sign-in "
                f"({description.split(':')[0]}); Microsoft advises tenants to block it. Use the "
                f"browser sign-in instead: {action('sign_in', self.login_args() + ' --browser')}."
            )
        if error in ("expired_token", "authorization_pending", "slow_down"):
            # msal stops polling at the code's expiry and hands back the last answer.
            raise SignInError(
                "the device code expired before the sign-in was finished (codes last about "
                "15 minutes): sign in again and enter the new code promptly."
            )
        if error in ("authorization_declined", "access_denied"):
            raise SignInError(
                "the sign-in was declined on the device page: sign in again and accept."
            )
        raise SignInError(
            f"Microsoft refused the sign-in ({error}): {description.splitlines()[0] if description else 'no reason given'}"
        )

    def _browser(
        self, app: Any, show: Show, paste: Callable[[Prompt], str] | None, timeout: float
    ) -> dict[str, Any]:
        with LoopbackReceiver("localhost") as receiver:
            with warnings.catch_warnings():
                # A pasted address can only carry the result in its query, so form_post (which
                # msal recommends) is used only when the browser can reach the listener; PKCE
                # and state protect the code either way.
                warnings.simplefilter("ignore", UserWarning)
                flow = app.initiate_auth_code_flow(
                    [SMTP_SCOPE],
                    redirect_uri=receiver.redirect_uri,
                    login_hint=self.username,
                    response_mode="query" if paste is not None else "form_post",
                )
            prompt = Prompt(
                "browser",
                flow["auth_uri"],
                message=f"Sign in to Microsoft in your browser: {flow['auth_uri']}",
                paste_back=paste is not None,
                received=receiver.wait if paste is not None else None,
            )
            if paste is not None:
                url: str | None = paste(prompt)
            else:
                show(prompt)
                self._open(flow["auth_uri"])
                url = receiver.wait(timeout)
            if not url:
                raise SignInError(
                    f"the browser did not come back within {timeout:.0f} s. If this kernel runs "
                    "on another machine (JupyterHub, Binder, a server), the browser cannot reach "
                    "it: sign in with --paste and paste the address the browser ends on."
                )
        params = parse_redirect(url, state=flow.get("state"), provider="Microsoft")
        result: dict[str, Any] = app.acquire_token_by_auth_code_flow(flow, params)
        if "access_token" not in result:
            self._raise_flow_error(result)
        return result

    def _forget(self) -> bool:
        removed = self.store.delete(self.key)
        self._app = self._cache = None
        return removed


def _describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
