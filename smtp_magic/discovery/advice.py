"""What the setup front ends share: a candidate as SMTP_* variables, the next step to log in, a DNS server to ask."""

from __future__ import annotations

import shlex
from typing import Any

from smtp_magic.discover import Candidate
from smtp_magic.errors import SettingsError

__all__ = ["choose", "environment", "export_lines", "next_steps", "resolver_at"]


def choose(candidates: tuple[Candidate, ...], number: int) -> Candidate:
    """Candidate ``number`` (1 is the best).

    Raises:
        SettingsError: there is no such candidate.
    """
    if not candidates:
        raise SettingsError(
            "no settings were found for this address: ask your provider for its SMTP "
            "submission host (usually port 465 or 587)."
        )
    if not 1 <= number <= len(candidates):
        raise SettingsError(f"choose a candidate from 1 to {len(candidates)}, not {number}.")
    return candidates[number - 1]


def environment(candidate: Candidate, address: str) -> dict[str, str]:
    """The SMTP_* variables for ``candidate`` (never a password or token)."""
    values = {
        "SMTP_HOST": candidate.host,
        "SMTP_PORT": str(candidate.port),
        "SMTP_SECURITY": candidate.security,
        "SMTP_FROM": address,
    }
    if candidate.username:
        values["SMTP_USERNAME"] = candidate.username
    return values


def export_lines(candidate: Candidate, address: str) -> list[str]:
    """``export NAME=value`` lines for a POSIX shell, values quoted."""
    return [f"export {k}={shlex.quote(v)}" for k, v in environment(candidate, address).items()]


_PASSWORD_HOW = {
    "cli": "export SMTP_PASSWORD (or `keyring set smtp_magic/{host} {user}`; or --password-stdin)",
    "magic": "set SMTP_PASSWORD, or `keyring set smtp_magic/{host} {user}`, or answer the "
    "prompt at the first %%sendmail",
    "form": "type it into the Password field at the first Send",
    "python": "password=, SMTP_PASSWORD, or `keyring set smtp_magic/{host} {user}`",
}
_OAUTH_HOW = {
    "cli": "smtp-magic login {oauth} --username {user}, then smtp-magic send --oauth {oauth}",
    "magic": "%smtp_login {oauth}",
    "form": "run %smtp_login {oauth} in a cell, then the form's Sign in button",
    "python": "a token provider from smtp_magic.auth as Settings(token=...)",
}


def next_steps(candidate: Candidate, front_end: str = "python") -> list[str]:
    """One line per thing to do before the first send, phrased for ``front_end``."""
    user = candidate.username or "NAME"
    steps: list[str] = []
    if candidate.confirm:
        steps.append(
            f"Confirm {candidate.host} with your provider first: it came from DNS or HTTP and is "
            "outside your address's domain, so the answer may have been forged."
        )
    if candidate.login == "oauth2" and candidate.oauth:
        how = _OAUTH_HOW.get(front_end, _OAUTH_HOW["python"])
        steps.append(
            f"Sign in with OAuth2 ({candidate.oauth}): {how.format(oauth=candidate.oauth, user=user)}."
        )
        steps.append("Or, where the provider still allows it, use an app password as the password.")
    else:
        kind = {"app-password": "an app password", "api-key": "the API key"}.get(
            candidate.login, "the password"
        )
        how = _PASSWORD_HOW.get(front_end, _PASSWORD_HOW["python"])
        steps.append(f"Give {kind}: {how.format(host=candidate.host, user=user)}.")
    if candidate.note:
        steps.append(f"Note: {candidate.note}.")
    return steps


def resolver_at(spec: str, timeout: float = 5.0) -> Any:
    """A dnspython Resolver that asks only the DNS server at ``HOST[:PORT]`` (e.g. a lab's).

    Raises:
        SettingsError: dnspython is missing, or ``spec`` is not HOST or HOST:PORT.
    """
    try:
        import dns.resolver
    except ImportError:
        raise SettingsError(
            "asking a DNS server needs dnspython: pip install 'smtp-magic[discover]'."
        ) from None
    host, _, port = spec.rpartition(":") if spec.count(":") == 1 else (spec, "", "")
    if not host or (port and not port.isdigit()):
        raise SettingsError(f"--dns {spec!r}: give HOST or HOST:PORT, e.g. 127.0.0.1:5353.")
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [host]
    resolver.port = int(port) if port else 53
    resolver.timeout = resolver.lifetime = timeout
    return resolver
