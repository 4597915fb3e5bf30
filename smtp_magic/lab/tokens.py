"""How the lab decides whether an OAuth2 bearer token may log in: a verdict, a validator protocol, a static table."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "DEFAULT_SCOPE",
    "StaticTokens",
    "TokenValidator",
    "TokenVerdict",
]

DEFAULT_SCOPE = "https://mail.google.com/"
"""The scope the lab names in its failure challenge unless told otherwise (Gmail's SMTP scope)."""


@dataclass(frozen=True)
class TokenVerdict:
    """What a validator says about one bearer token presented at AUTH.

    Attributes:
        ok: Whether the login succeeds.
        status: The HTTP-style status the failure challenge reports: "401" (invalid, expired or
            revoked token), "400" (malformed request) or "403" (the token lacks the scope).
            Google's XOAUTH2 doc and RFC 7628 section 3.2.2 put it in the server's JSON.
        scope: The scope the server needs (sent in the challenge so the client can ask for it).
        user: The account the token belongs to, when known (for the lab's records).
    """

    ok: bool
    status: str = "200"
    scope: str = ""
    user: str = ""


class TokenValidator(Protocol):
    """Anything that judges a (user, token) pair: ``StaticTokens``, or the lab's OAuth2 authority."""

    def __call__(self, user: str, token: str) -> TokenVerdict:
        """Judge one login attempt.

        Args:
            user: The user named in the SASL message (``user=`` or the GS2 ``a=``).
            token: The bearer token, exactly as the client sent it.

        Returns:
            The verdict; never raises for a bad token.
        """
        ...


class StaticTokens:
    """A fixed table of tokens, for tests and tutorials: valid, expired and revoked ones.

    Expired and revoked tokens both fail with status 401, as Google's server does: the server
    cannot tell the client which, and the fix (get a fresh token) is the same. A valid token
    presented for another user fails with 401 too.

    Example:
        >>> tokens = StaticTokens({"good-token": "alice@lab.localhost"}, expired=["old-token"])
        >>> tokens("alice@lab.localhost", "good-token").ok
        True
        >>> tokens("alice@lab.localhost", "old-token").status
        '401'
    """

    def __init__(
        self,
        valid: Mapping[str, str] | None = None,
        *,
        expired: Iterable[str] = (),
        revoked: Iterable[str] = (),
        wrong_scope: Mapping[str, str] | None = None,
        scope: str = DEFAULT_SCOPE,
    ) -> None:
        """Build the table.

        Args:
            valid: Token -> the user it logs in (compared case-insensitively, as mail addresses
                are in practice).
            expired: Tokens that were valid once and have expired.
            revoked: Tokens the user or an administrator revoked.
            wrong_scope: Token -> user, for tokens that are valid but were granted without
                ``scope`` (the server answers 403 and names the scope).
            scope: The scope the server needs, named in every failure challenge.
        """
        self._valid = dict(valid or {})
        self._expired = frozenset(expired)
        self._revoked = frozenset(revoked)
        self._wrong_scope = dict(wrong_scope or {})
        self.scope = scope

    def expire(self, token: str) -> None:
        """Mark a valid token as expired from now on (to show a refresh in a tutorial)."""
        self._valid.pop(token, None)
        self._expired = self._expired | {token}

    def revoke(self, token: str) -> None:
        """Mark a token as revoked from now on."""
        self._valid.pop(token, None)
        self._revoked = self._revoked | {token}

    def add(self, token: str, user: str) -> None:
        """Accept ``token`` for ``user`` from now on."""
        self._valid[token] = user

    def __call__(self, user: str, token: str) -> TokenVerdict:
        for known, owner in self._valid.items():
            # Constant-time comparison: timing must not reveal how much of a token matched.
            if hmac.compare_digest(known.encode(), token.encode()):
                if owner.casefold() == user.casefold():
                    return TokenVerdict(ok=True, scope=self.scope, user=owner)
                break
        for known, owner in self._wrong_scope.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return TokenVerdict(ok=False, status="403", scope=self.scope, user=owner)
        return TokenVerdict(ok=False, status="401", scope=self.scope)

    def __repr__(self) -> str:
        # Never show the tokens themselves, only how many of each kind there are.
        return (
            f"<StaticTokens valid={len(self._valid)} expired={len(self._expired)} "
            f"revoked={len(self._revoked)} wrong_scope={len(self._wrong_scope)}>"
        )
