"""What the lab's OAuth2 authority remembers: clients, codes, device grants and tokens (in memory, bounded)."""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LAB_TENANT", "AuthorityStore", "LabClient", "TokenRecord", "unsigned_jwt"]

LAB_TENANT = "lab-tenant"
"""The tenant in the lab authority's URLs, as Microsoft's have a tenant (or "organizations")."""

MAX_RECORDS = 2000
"""How many codes or tokens of each kind the lab keeps; the oldest go first (a lab never grows)."""


@dataclass
class LabClient:
    """One registered OAuth2 client (an "app registration" or a Google "OAuth client").

    Attributes:
        client_id: The public identifier.
        client_secret: None for a public client (a notebook, a CLI), a string for a confidential
            one (client credentials).
        grant_types: What the client may use.
        send_as: Mailboxes an app-only token may send as (Microsoft's SMTP.SendAsApp needs an
            Exchange permission per mailbox; the lab models it as this list).
    """

    client_id: str
    client_secret: str | None = None
    grant_types: tuple[str, ...] = (
        "authorization_code",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:device_code",
    )
    send_as: tuple[str, ...] = ()

    # authlib's ClientMixin protocol, duck-typed (authlib ships no type hints).
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return "http://127.0.0.1/"

    def get_allowed_scope(self, scope: str | None) -> str:
        return scope or ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # RFC 8252 section 7.3: a native app's loopback redirect may use any port, so only the
        # scheme and host are fixed (http, 127.0.0.1 or localhost).
        return redirect_uri.startswith(("http://127.0.0.1:", "http://localhost:"))

    def check_client_secret(self, client_secret: str) -> bool:
        if self.client_secret is None:
            return False
        return hmac.compare_digest(self.client_secret.encode(), client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.client_secret is None:
            return method == "none"
        # Google's installed apps carry a "secret" that is not secret, and still send it.
        return method in ("client_secret_post", "client_secret_basic")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


@dataclass
class TokenRecord:
    """An issued access token (and the refresh token that came with it, if any)."""

    access_token: str
    client_id: str
    user: str | None
    scope: str
    issued_at: float
    expires_in: int
    refresh_token: str | None = None
    revoked: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    # authlib's TokenMixin protocol.
    def check_client(self, client: LabClient) -> bool:
        return client.client_id == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return time.time() >= self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return self.revoked

    def get_user(self) -> str | None:
        return self.user


def _bounded_put(table: OrderedDict[str, Any], key: str, value: Any) -> None:
    table[key] = value
    while len(table) > MAX_RECORDS:
        table.popitem(last=False)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unsigned_jwt(claims: dict[str, Any]) -> str:
    """An ID token with ``alg: none`` (RFC 7519 section 6): msal only decodes the claims.

    A lab token is never trusted by anything but the lab, so a signature would add nothing.
    """
    header = _b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64url(json.dumps(claims).encode())}."


def client_info(user: str, tenant: str) -> str:
    """Microsoft's ``client_info``: base64url JSON with uid and utid; msal keys accounts by it."""
    uid = _b64url(user.encode())
    return _b64url(json.dumps({"uid": uid, "utid": tenant}).encode())


class AuthorityStore:
    """Thread-safe tables behind the authority (the HTTP server runs a thread per request)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.clients: dict[str, LabClient] = {}
        self.codes: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.devices: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.grants: OrderedDict[str, tuple[str, bool]] = OrderedDict()
        self.polls: dict[str, list[float]] = {}
        self.access: OrderedDict[str, TokenRecord] = OrderedDict()
        self.refresh: OrderedDict[str, TokenRecord] = OrderedDict()

    def put_code(self, code: str, data: dict[str, Any]) -> None:
        with self.lock:
            _bounded_put(self.codes, code, data)

    def put_device(self, device_code: str, data: dict[str, Any]) -> None:
        with self.lock:
            _bounded_put(self.devices, device_code, data)

    def grant(self, user_code: str, user: str, approved: bool) -> bool:
        """Record the user's answer for a device code; False when the code is unknown."""
        with self.lock:
            known = any(d["user_code"] == user_code for d in self.devices.values())
            if known:
                _bounded_put(self.grants, user_code, (user, approved))
            return known

    def save(self, record: TokenRecord) -> None:
        with self.lock:
            _bounded_put(self.access, record.access_token, record)
            if record.refresh_token:
                _bounded_put(self.refresh, record.refresh_token, record)

    def find(self, token: str) -> TokenRecord | None:
        """The record of an access token, compared in constant time per candidate."""
        with self.lock:
            record = self.access.get(token)
        if record is not None and hmac.compare_digest(record.access_token, token):
            return record
        return None

    def revoke_user(self, user: str) -> int:
        """Revoke every token of ``user`` (an administrator's "revoke sessions"); return how many."""
        with self.lock:
            records = [r for r in self.access.values() if r.user == user and not r.revoked]
            for record in records:
                record.revoked = True
            return len(records)


def new_token(length: int = 48) -> str:
    """A random opaque token (URL-safe)."""
    return secrets.token_urlsafe(length)
