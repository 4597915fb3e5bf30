"""The lab's OAuth2 authorization server on 127.0.0.1 over TLS: device code, browser sign-in, refresh, client credentials, revocation."""

from __future__ import annotations

import html
import re
import ssl
import threading
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

import trustme
from authlib.integrations.flask_oauth2 import AuthorizationServer
from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from smtp_magic.lab.authoritygrants import install_grants
from smtp_magic.lab.authoritystore import (
    LAB_TENANT,
    AuthorityStore,
    LabClient,
    TokenRecord,
    client_info,
    new_token,
    unsigned_jwt,
)
from smtp_magic.lab.tokens import TokenVerdict

__all__ = ["DEMO_CLIENT_ID", "DEMO_USER", "LAB_TENANT", "SMTP_SCOPES", "OAuthAuthority"]

DEMO_USER = "demo@lab.localhost"
DEMO_CLIENT_ID = "lab-notebook-client"

SMTP_SCOPES = (
    "https://outlook.office.com/SMTP.Send",
    "https://outlook.office365.com/.default",  # client credentials: SMTP.SendAsApp
    "https://mail.google.com/",
)
"""Scopes that let a token log in to SMTP: Microsoft's delegated and app-only ones, Gmail's."""


class _QuietHandler(WSGIRequestHandler):
    # werkzeug logs each request to stderr, which would land in notebook outputs.
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class OAuthAuthority:
    """A loopback OAuth2 authorization server built on authlib, with a trustme certificate.

    It plays both Microsoft's identity platform (an msal ``authority`` URL with a tenant, OpenID
    discovery, ``client_info`` and ID tokens) and Google's (a client config with ``auth_uri`` and
    ``token_uri``), so the real msal and google-auth-oauthlib code runs against it offline.

    Args:
        users: Accounts that can sign in on its pages.
        token_lifetime: Seconds an access token lives (Microsoft's and Google's last about an hour).
        device_interval: Seconds between device-code polls it asks for (RFC 8628 section 3.2).
        device_expires_in: Seconds a device code lives.
        robot: When set, a simulated user who approves each device code as this account after
            ``robot_after`` polls (so a notebook can show ``authorization_pending`` and finish).
        robot_after: Polls answered ``authorization_pending`` before the robot approves.
        slow_down: Polls answered ``slow_down`` first (each adds 5 s to the client's interval).
        ca: A trustme CA to issue the certificate from (a new one by default).

    Example:
        >>> with OAuthAuthority(robot=DEMO_USER) as authority:  # doctest: +SKIP
        ...     authority.microsoft_authority   # 'https://127.0.0.1:PORT/lab-tenant'
    """

    def __init__(
        self,
        *,
        users: Iterable[str] = (DEMO_USER,),
        token_lifetime: int = 3600,
        device_interval: int = 1,
        device_expires_in: int = 600,
        robot: str | None = None,
        robot_after: int = 1,
        slow_down: int = 0,
        ca: trustme.CA | None = None,
    ) -> None:
        self.users = tuple(users)
        self.token_lifetime = token_lifetime
        self.device_interval = device_interval
        self.device_expires_in = device_expires_in
        self.robot = robot
        self.robot_after = robot_after
        self.slow_down_polls = slow_down
        self.block_device_code = False
        self.store = AuthorityStore()
        self.local = threading.local()
        self._ca = ca or trustme.CA()
        self._cafile: str | None = None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.add_client(DEMO_CLIENT_ID)

    # ----- lifecycle -------------------------------------------------------------------------

    def start(self) -> OAuthAuthority:
        """Listen on 127.0.0.1 (a free port) with TLS; return self."""
        import tempfile

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        with tempfile.NamedTemporaryFile("wb", suffix="-authority-ca.pem", delete=False) as f:
            f.write(self._ca.cert_pem.bytes())
            self._cafile = f.name
        self._server = make_server(
            "127.0.0.1",
            0,
            self._build_app(),
            threaded=True,
            request_handler=_QuietHandler,
            ssl_context=context,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="lab-oauth-authority", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening (idempotent)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> OAuthAuthority:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ----- what clients need -----------------------------------------------------------------

    @property
    def url(self) -> str:
        """``https://127.0.0.1:PORT``."""
        if self._server is None:
            raise RuntimeError("the authority is not running: call start() or use `with`.")
        return f"https://127.0.0.1:{self._server.server_port}"

    @property
    def cafile(self) -> str:
        """PEM file of the CA that signed the authority's certificate (give it to msal/requests)."""
        if self._cafile is None:
            raise RuntimeError("the authority is not running: call start() or use `with`.")
        return self._cafile

    @property
    def microsoft_authority(self) -> str:
        """The msal ``authority`` URL (with instance_discovery=False, as it is not Microsoft's)."""
        return f"{self.url}/{LAB_TENANT}"

    def google_client_config(self, client_id: str = DEMO_CLIENT_ID) -> dict[str, Any]:
        """A Google "installed" client config (client_secret.json) pointing at this authority."""
        client = self.store.clients[client_id]
        base = f"{self.url}/{LAB_TENANT}/oauth2/v2.0"
        return {
            "installed": {
                "client_id": client_id,
                "client_secret": client.client_secret or "",
                "auth_uri": f"{base}/authorize",
                "token_uri": f"{base}/token",
                "revoke_uri": f"{self.url}/revoke",
                "redirect_uris": ["http://127.0.0.1"],
            }
        }

    def add_client(
        self,
        client_id: str,
        *,
        secret: str | None = None,
        app_only: bool = False,
        send_as: Iterable[str] = (),
    ) -> LabClient:
        """Register a client: public (no secret), with a secret, or app-only (client credentials)."""
        grants = ("client_credentials",) if app_only else LabClient.grant_types
        client = LabClient(client_id, secret, grants, tuple(send_as))
        self.store.clients[client_id] = client
        return client

    # ----- the user's side -------------------------------------------------------------------

    def approve(self, user_code: str, user: str = DEMO_USER, *, approved: bool = True) -> bool:
        """What the user does on the device page: approve (or deny) ``user_code`` as ``user``."""
        return self.store.grant(user_code, user, approved)

    def user_grant(self, user_code: str) -> tuple[str, bool] | None:
        """The user's answer for a device code (the robot answers after enough polls)."""
        with self.store.lock:
            found = self.store.grants.get(user_code)
            device = next(
                (d for d in self.store.devices.values() if d["user_code"] == user_code), None
            )
        if found is not None or device is None or self.robot is None:
            return found
        if len(self.store.polls.get(device["device_code"], [])) > self.robot_after:
            self.approve(user_code, self.robot)
            return self.store.grants.get(user_code)
        return None

    def should_slow_down(self, device_code: str) -> bool:
        """RFC 8628 section 3.5: ``slow_down`` when polled faster than the interval (or on demand)."""
        now = time.time()
        with self.store.lock:
            polls = self.store.polls.setdefault(device_code, [])
            polls.append(now)
            if len(polls) <= self.slow_down_polls:
                return True
            return len(polls) > 1 and now - polls[-2] < self.device_interval * 0.5

    def expire(self, access_token: str) -> None:
        """Make an issued access token expired from now on (to show the failure and the refresh)."""
        record = self.store.find(access_token)
        if record is not None:
            record.expires_in = int(time.time() - record.issued_at) - 1

    def revoke_user(self, user: str = DEMO_USER) -> int:
        """Revoke every token of ``user``, as an administrator's "revoke sessions" does."""
        return self.store.revoke_user(user)

    def tokens(self, user: str | None = None) -> list[TokenRecord]:
        """Issued access tokens (newest last), for tests and the tutorial."""
        with self.store.lock:
            return [r for r in self.store.access.values() if user is None or r.user == user]

    def validator(self, user: str, token: str) -> TokenVerdict:
        """A TokenValidator for the lab's SMTP roles: only tokens this authority issued log in."""
        record = self.store.find(token)
        if record is None or record.is_revoked() or record.is_expired():
            return TokenVerdict(ok=False, status="401", scope=SMTP_SCOPES[0])
        if not any(scope in record.scope.split() for scope in SMTP_SCOPES):
            return TokenVerdict(ok=False, status="403", scope=SMTP_SCOPES[0], user=user)
        owner = record.user
        if owner is None:  # app-only: the mailbox must be granted to the app
            client = self.store.clients.get(record.client_id)
            allowed = client.send_as if client else ()
            owner = next((m for m in allowed if m.casefold() == user.casefold()), None)
        if owner is None or owner.casefold() != user.casefold():
            return TokenVerdict(ok=False, status="401", scope=SMTP_SCOPES[0])
        return TokenVerdict(ok=True, scope=record.scope, user=owner)

    def browse(self, url: str, user: str = DEMO_USER, *, approve: bool = True) -> str:
        """Play the user's browser on a sign-in page: choose ``user``, allow (or cancel).

        Uses a real HTTP client against the authority's own pages and returns the address the
        browser is redirected to (the loopback redirect with ``code`` or ``error``), without
        visiting it; ``follow(url)`` visits it, as a browser would.
        """
        import urllib.request

        context = ssl.create_default_context(cafile=self.cafile)
        fields = {"user": user, "decision": "approve" if approve else "deny"}

        class _NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context), _NoRedirect()
        )
        with opener.open(url, timeout=10) as page:  # the sign-in page, as a browser loads it
            page.read()
        post = urllib.request.Request(url, data=urlencode(fields).encode(), method="POST")
        try:
            with opener.open(post, timeout=10) as answer:
                page = answer.read().decode()
        except urllib.error.HTTPError as redirect:
            if redirect.code in (301, 302, 303, 307):
                return str(redirect.headers["Location"])
            raise
        # response_mode=form_post: the page is a form the browser submits to the app at once.
        action = re.search(r'action="([^"]+)"', page)
        if action is None:
            raise RuntimeError("the sign-in page neither redirected nor posted a form")
        pairs = re.findall(r'name="([^"]+)" value="([^"]*)"', page)
        body = urlencode([(html.unescape(k), html.unescape(v)) for k, v in pairs])
        target = html.unescape(action.group(1))
        with urllib.request.urlopen(target, data=body.encode(), timeout=10) as posted:
            posted.read()
        return f"{target}?{body}"

    @staticmethod
    def follow(url: str) -> int:
        """Visit the loopback redirect as the browser does; return the HTTP status."""
        import urllib.request

        with urllib.request.urlopen(url, timeout=10) as answer:
            return int(answer.status)

    # ----- the HTTP side ---------------------------------------------------------------------

    def _generate(
        self,
        grant_type: str,
        client: LabClient,
        user: str | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": new_token(),
            "expires_in": expires_in or self.token_lifetime,
            "scope": scope or "",
        }
        if include_refresh_token and user:
            token["refresh_token"] = new_token()
        if user:
            now = int(time.time())
            claims = {
                "iss": f"{self.url}/{LAB_TENANT}/v2.0",
                "sub": user,
                "aud": client.client_id,
                "iat": now,
                "nbf": now,
                "exp": now + self.token_lifetime,
                "preferred_username": user,
                "tid": LAB_TENANT,
                "oid": user,
            }
            nonce = getattr(self.local, "nonce", None)
            if nonce:
                claims["nonce"] = nonce
            token["id_token"] = unsigned_jwt(claims)
            token["client_info"] = client_info(user, LAB_TENANT)
        return token

    def _save(self, token: dict[str, Any], req: Any) -> None:
        self.store.save(
            TokenRecord(
                access_token=token["access_token"],
                client_id=req.client.get_client_id(),
                user=req.user,
                scope=token.get("scope", ""),
                issued_at=time.time(),
                expires_in=int(token["expires_in"]),
                refresh_token=token.get("refresh_token"),
            )
        )

    def _build_app(self) -> Flask:
        from smtp_magic.lab.authoritypages import add_routes

        app = Flask("smtp_magic_lab_authority")
        server = AuthorizationServer(
            app, query_client=self.store.clients.get, save_token=self._save
        )
        server.register_token_generator("default", self._generate)
        install_grants(server, self)
        add_routes(app, server, self)
        return app
