"""The SendMail Configurable: the magics' defaults, their precedence, and the lab's place in it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from traitlets import Enum, Float, Int, Unicode, observe
from traitlets.config import Configurable

from smtp_magic.settings import SECURITY_MODES, Settings

if TYPE_CHECKING:
    from smtp_magic.auth.oauth import TokenProvider
    from smtp_magic.lab.server import LabServer

__all__ = ["SendMail", "active_lab", "active_settings"]

_TRAITS = ("host", "port", "security", "username", "sender", "cafile", "timeout")


class SendMail(Configurable):
    """Defaults of %%sendmail, %smtp_probe and %sendmail_form; ``None`` means "not set here"."""

    host = Unicode(None, allow_none=True, help="SMTP server host name.").tag(config=True)
    port = Int(
        None, allow_none=True, help="TCP port; unset: the security mode's default (587)."
    ).tag(config=True)
    security = Enum(
        SECURITY_MODES,
        default_value=None,
        allow_none=True,
        help="'auto' (default), 'tls' (implicit TLS, 465), 'starttls' (587) or 'plain'.",
    ).tag(config=True)
    username = Unicode(
        None,
        allow_none=True,
        help="Login name. The password comes from SMTP_PASSWORD, keyring or a prompt.",
    ).tag(config=True)
    sender = Unicode(None, allow_none=True, help="Default From address.").tag(config=True)
    cafile = Unicode(
        None, allow_none=True, help="PEM file of extra certificate authorities to trust."
    ).tag(config=True)
    timeout = Float(None, allow_none=True, help="Seconds each phase may take.").tag(config=True)
    oauth_provider = Enum(
        ("microsoft", "google"),
        default_value=None,
        allow_none=True,
        help="Log in with an OAuth2 token from this provider instead of a password "
        "(%smtp_login sets it and signs in).",
    ).tag(config=True)
    oauth_client_id = Unicode(
        None, allow_none=True, help="The OAuth2 app's client id (Entra app or Google client)."
    ).tag(config=True)
    oauth_tenant = Unicode(
        None, allow_none=True, help="Microsoft tenant: organizations (default), consumers, an id."
    ).tag(config=True)
    oauth_authority = Unicode(
        None,
        allow_none=True,
        help="Microsoft authority URL override (the lab's, a national cloud).",
    ).tag(config=True)
    oauth_cafile = Unicode(
        None, allow_none=True, help="Extra CA file to trust for the OAuth2 authority (the lab's)."
    ).tag(config=True)
    oauth_client_secret_file = Unicode(
        None, allow_none=True, help="Google: the OAuth client's downloaded client_secret.json."
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        # Set before Configurable.__init__, which loads the config and so fires the observer.
        self.lab: LabServer | None = None
        self._lab_settings: Settings | None = None
        self._before_lab: dict[str, Any] = {}
        self._set_during_lab: set[str] = set()
        self._tokens: tuple[tuple[Any, ...], TokenProvider] | None = None
        super().__init__(**kwargs)

    @observe(*_TRAITS)
    def _remember_lab_override(self, change: Mapping[str, Any]) -> None:
        # A %config made while the lab runs is meant to beat the lab (see the module docstring).
        if self._lab_settings is not None:
            self._set_during_lab.add(change["name"])

    def configured(self) -> dict[str, Any]:
        """The values set with %config or ipython_config.py (unset ones left out)."""
        return {name: getattr(self, name) for name in _TRAITS if getattr(self, name) is not None}

    def build_settings(self, **overrides: Any) -> Settings:
        """Settings from magic options, then %config, then the lab or SMTP_* variables, then defaults.

        Args:
            **overrides: Settings fields given on the magic line; ``None`` means not given.

        Returns:
            Validated Settings. The password is the lab's (while it runs and is the target) or
            SMTP_PASSWORD's; keyring and the prompt are the caller's business (``with_password``).

        Raises:
            SettingsError: a value (or an SMTP_* variable) is invalid, naming it.
        """
        options = {k: v for k, v in overrides.items() if v is not None}
        configured = self.configured()
        lab = self._lab_settings
        if lab is not None:
            later = {k: v for k, v in configured.items() if k in self._set_during_lab}
            merged = {**later, **options}
            if merged.get("host", lab.host) == lab.host:
                if merged.get("username", lab.username) != lab.username:
                    merged["password"] = None  # the demo password belongs to the demo account
                return self._with_token(dataclasses.replace(lab, **merged))
        return self._with_token(Settings.from_env(**{**configured, **options}))

    def token_provider(self, username: str | None) -> TokenProvider:
        """The token provider of the %config SendMail.oauth_* traits (one per configuration).

        The same instance is reused while the configuration stays the same, so its access token
        is kept in memory between cells and refreshed only when it is about to expire.
        """
        from smtp_magic.auth.signin import token_provider

        key = (
            self.oauth_provider,
            self.oauth_client_id,
            username,
            self.oauth_tenant,
            self.oauth_authority,
            self.oauth_cafile,
            self.oauth_client_secret_file,
        )
        if self._tokens is None or self._tokens[0] != key:
            tokens = token_provider(
                self.oauth_provider or "",
                client_id=self.oauth_client_id,
                username=username,
                tenant=self.oauth_tenant,
                authority=self.oauth_authority,
                cafile=self.oauth_cafile,
                client_secret_file=self.oauth_client_secret_file,
            )
            self._tokens = (key, tokens)
        return self._tokens[1]

    def _with_token(self, settings: Settings) -> Settings:
        # With an OAuth2 provider configured, the token replaces the password (never both).
        if not self.oauth_provider or settings.token is not None:
            return settings
        tokens = self.token_provider(settings.username)
        return dataclasses.replace(settings, password=None, token=tokens)

    def start_lab(self) -> LabServer:
        """Start a LabServer and make its 587 role the default."""
        from smtp_magic.lab.server import LabServer

        lab = LabServer().start()
        self._before_lab = {name: getattr(self, name) for name in _TRAITS}
        self._set_during_lab = set()
        self.lab, self._lab_settings = lab, lab.settings(587)
        return lab

    def stop_lab(self) -> None:
        """Stop the lab and restore the defaults as they were before it started."""
        lab, self.lab, self._lab_settings = self.lab, None, None
        if lab is None:
            return
        try:
            lab.stop()
        finally:
            for name in self._set_during_lab:
                setattr(self, name, self._before_lab.get(name))
            self._set_during_lab = set()


def _find_defaults(shell: Any) -> SendMail | None:
    for configurable in getattr(shell, "configurables", ()):
        if isinstance(configurable, SendMail):
            return configurable
    return None


def active_settings() -> Settings | None:
    """The defaults of the loaded extension in the running IPython, or None.

    Includes the lab's settings (and demo password) while ``%smtp_lab`` runs, otherwise
    ``%config SendMail`` over the SMTP_* variables; no keyring lookup or prompt.

    Raises:
        SettingsError: a configured value or an SMTP_* variable is invalid.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return None
    shell = get_ipython()
    defaults = _find_defaults(shell) if shell is not None else None
    return defaults.build_settings() if defaults is not None else None


def active_lab() -> LabServer | None:
    """The LabServer that ``%smtp_lab start`` runs in this IPython, or None.

    Example: after ``%smtp_lab start``, ``active_lab().messages`` lists what it received.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return None
    shell = get_ipython()
    defaults = _find_defaults(shell) if shell is not None else None
    return defaults.lab if defaults is not None else None
