"""Plays a persona on a running LabServer: its handler hooks, its AUTH refusals and OAuth2 logins."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from smtp_magic.lab.oauth_smtp import OAuthLogins
from smtp_magic.lab.personas import PERSONAS, PersonaBehaviour
from smtp_magic.lab.tokens import StaticTokens, TokenValidator

if TYPE_CHECKING:
    from smtp_magic.lab.server import LabServer

__all__ = ["BUILTIN_MECHANISMS", "PersonaHandler", "play"]

BUILTIN_MECHANISMS = ("LOGIN", "PLAIN", "XOAUTH2", "OAUTHBEARER")
"""What a lab role can offer: aiosmtpd's LOGIN and PLAIN, and the lab's OAuth2 handlers."""


class PersonaHandler:
    """A lab role's aiosmtpd handler, speaking as a persona: EHLO lines, refusals, OAuth2.

    It wraps the role's own handler (which records messages) and adds the persona's hooks.
    """

    def __init__(self, inner: Any, behaviour: PersonaBehaviour, oauth: OAuthLogins) -> None:
        self.inner = inner
        self.behaviour = behaviour
        self.oauth = oauth
        # aiosmtpd finds auth_<NAME> members on the handler and offers them in EHLO.
        self.auth_XOAUTH2 = oauth.auth_XOAUTH2
        self.auth_OAUTHBEARER = oauth.auth_OAUTHBEARER

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, lines: list[str]
    ) -> list[str]:
        lines = await self.inner.handle_EHLO(server, session, envelope, hostname, lines)
        refusal = self.behaviour.active("ehlo")
        if refusal is not None:
            await self.behaviour.push(server, refusal)
            return []
        return self.behaviour.ehlo(server, lines)

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        refused = self.behaviour.reply("mail")
        if refused is not None:
            return refused
        # A MAIL hook must record the sender itself (aiosmtpd does so only without a hook).
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Sender OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        refused = self.behaviour.reply("data")
        if refused is not None:
            return refused
        return str(await self.inner.handle_DATA(server, session, envelope))


def play(lab: LabServer, persona: str, tokens: TokenValidator | None = None) -> PersonaBehaviour:
    """Make every role of a running ``lab`` speak as ``persona`` from the next connection on.

    Args:
        lab: A started LabServer.
        persona: "gmail" or "microsoft365".
        tokens: Who may log in with XOAUTH2/OAUTHBEARER (default: nobody, so any token fails
            the way the service fails it).

    Returns:
        The behaviour, whose ``refuse(kind)`` makes the lab refuse like the service.

    Raises:
        ValueError: ``persona`` is unknown.
    """
    if persona not in PERSONAS:
        raise ValueError(f"unknown persona {persona!r}: use one of {', '.join(PERSONAS)}.")
    behaviour = PersonaBehaviour(PERSONAS[persona])
    style = behaviour.persona.oauth_style
    oauth = lab.oauth if lab.oauth is not None and tokens is None else None
    if oauth is None or oauth.style != style:
        validator = tokens or (oauth.validator if oauth is not None else StaticTokens())
        oauth = OAuthLogins(validator, style=style)
    for controller in lab._controllers.values():
        inner = (
            controller.handler.inner
            if isinstance(controller.handler, PersonaHandler)
            else controller.handler
        )
        controller.handler = PersonaHandler(inner, behaviour, oauth)
        kwargs = controller.SMTP_kwargs
        kwargs.update(behaviour.smtp_kwargs())
        kwargs["auth_exclude_mechanism"] = behaviour.excluded(list(BUILTIN_MECHANISMS))
        if kwargs.get("authenticator") is not None:
            kwargs["authenticator"] = _refusing(kwargs["authenticator"], behaviour)
    return behaviour


def _refusing(authenticator: Any, behaviour: PersonaBehaviour) -> Any:
    """An aiosmtpd authenticator that gives the persona's AUTH refusal before checking the password."""
    original = getattr(authenticator, "__wrapped__", authenticator)

    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        refused = behaviour.auth_refusal()
        if refused is not None:
            return refused
        result: AuthResult = original(server, session, envelope, mechanism, data)
        if not result.success and not result.handled:
            # A wrong password gets the service's own words, as on the real thing.
            wrong = behaviour.persona.refusals.get("wrong-password")
            if wrong is not None:
                return AuthResult(success=False, handled=False, message="\r\n".join(wrong.lines))
        return result

    authenticate.__wrapped__ = original  # type: ignore[attr-defined]
    return authenticate
