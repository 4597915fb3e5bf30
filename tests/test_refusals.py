"""The table of known refusals: each provider text finds its rule and its fix, in each front end's words."""

from __future__ import annotations

import pytest

from smtp_magic.lab.personas import PERSONAS
from smtp_magic.phrasing import FRONT_ENDS, render
from smtp_magic.smtp import refusals

# (provider recognised from, code, reply text as smtplib reports it, expected rule)
SAMPLES = [
    # Texts beyond the personas' own, each from the source its rule cites.
    ("smtp.office365.com", 535, "5.7.139 Authentication unsuccessful, basic authentication is disabled. [BM1P287CA0015.INDP287.PROD.OUTLOOK.COM]", "m365-basic-auth-disabled"),
    ("smtp.office365.com", 530, "5.7.57 Client not authenticated to send mail. [US22278CA0034.US7P278.PROD.OUTLOOK.COM]", "m365-not-authenticated"),
    ("smtp-mail.outlook.com", 554, "5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message due to a permanent exception with message Cannot submit message.", "m365-send-as-denied"),
    ("smtp.office365.com", 535, "5.7.3 Authentication unsuccessful [BN3PR03CA0067.namprd03.prod.outlook.com]", "m365-bad-credentials"),
    ("smtp.gmail.com", 530, "5.7.0 Authentication Required. Learn more at\n5.7.0 https://support.google.com/mail/?p=WantAuthError y18 - gsmtp", "gmail-auth-required"),
    ("smtp.gmail.com", 421, "4.7.0 Try again later, closing connection. (EHLO) v6 - gsmtp", "gmail-try-later"),
    ("mail.example.org", 550, "5.7.1 Relaying denied", "relay-denied"),
    ("mail.example.org", 554, "5.7.1 <bob@example.net>: Relay access denied", "relay-denied"),
    ("mail.example.org", 550, "5.1.1 <nobody@example.org>: Recipient address rejected: User unknown", "unknown-user"),
    ("mail.example.org", 451, "4.7.1 Please try again later (rate limited)", "throttled"),
]  # fmt: skip


@pytest.mark.parametrize(("host", "code", "reply", "key"), SAMPLES)
def test_sample_finds_its_rule(host: str, code: int, reply: str, key: str) -> None:
    rule = refusals.match(code, reply, refusals.recognise(host))
    assert rule is not None and rule.key == key


PERSONA_RULES = {
    ("gmail", "app-password"): "gmail-app-password",
    ("gmail", "wrong-password"): "gmail-bad-credentials",
    ("gmail", "throttled"): "gmail-try-later",
    ("gmail", "daily-limit"): "gmail-daily-limit",
    ("gmail", "blocked-content"): "gmail-blocked-content",
    ("microsoft365", "smtp-auth-disabled"): "m365-smtp-auth-disabled",
    ("microsoft365", "wrong-password"): "m365-bad-credentials",
    ("microsoft365", "basic-auth-retired"): "m365-basic-not-supported",
    ("microsoft365", "send-as"): "m365-send-as",
    ("microsoft365", "throttled"): "m365-thread-limit",
    ("microsoft365", "daily-limit"): "m365-daily-quota",
}


def test_every_persona_refusal_has_a_rule() -> None:
    covered = {(p, kind) for p, persona in PERSONAS.items() for kind in persona.refusals}
    assert covered == set(PERSONA_RULES)


@pytest.mark.parametrize(("persona", "kind"), list(PERSONA_RULES))
def test_persona_texts_match_when_recognised_from_the_greeting(persona: str, kind: str) -> None:
    played = PERSONAS[persona]
    refusal = played.refusals[kind]
    greeting = f"220 {played.hostname} {played.ident}"
    provider = refusals.recognise("127.0.0.1", greeting)
    assert provider == persona
    rule = refusals.match(refusal.code, refusal.text, provider)
    assert rule is not None and rule.key == PERSONA_RULES[(persona, kind)]


def test_generic_text_needs_the_provider() -> None:
    # "Try again later" is Gmail's words, but any server may say them: only Gmail gets Gmail's fix.
    text = "4.7.0 Try again later, closing connection."
    assert refusals.match(421, text, "gmail").key == "gmail-try-later"  # type: ignore[union-attr]
    assert refusals.match(421, text, None).key == "throttled"  # type: ignore[union-attr]


def test_unique_text_identifies_the_provider_behind_a_relay() -> None:
    text = (
        "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant."
    )
    rule = refusals.match(535, text, None)
    assert rule is not None and rule.key == "m365-smtp-auth-disabled"


def test_unknown_refusal_is_not_matched() -> None:
    assert refusals.match(554, "5.6.0 Message content rejected", None) is None
    assert refusals.explain(250, "2.0.0 OK", host="smtp.gmail.com") is None


def test_enhanced_status_is_read_from_the_text() -> None:
    assert refusals.enhanced_status("5.7.139 Authentication unsuccessful") == "5.7.139"
    assert refusals.enhanced_status("Try 1.2.3.4 later") is None  # an IP address is not one
    assert refusals.enhanced_status("no code here") is None


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_fix_reads_right_in_every_front_end(front_end: str) -> None:
    text = refusals.explain(
        535,
        "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.",
        host="smtp.office365.com",
    )
    assert text is not None
    shown = render(text, front_end)
    assert "Microsoft 365 has SMTP AUTH turned off" in shown
    assert "Set-CASMailbox" in shown and "\u27e6" not in shown


def test_each_rule_cites_a_source() -> None:
    for rule in refusals.REFUSALS:
        assert rule.source and rule.meaning.endswith(".") and rule.fix.endswith(".")


def test_login_required_only_for_a_client_that_did_not_log_in() -> None:
    text = "5.7.1 <bob@example.org>: Recipient address rejected: Access denied"
    rule = refusals.match(554, text, None, anonymous=True)
    assert rule is not None and rule.key == "login-required"
    assert refusals.match(554, text, None) is None  # logged in (or no AUTH offered): unknown
    # A provider's own rule still wins for an anonymous client.
    gmail = "5.7.0 Authentication Required. Learn more at https://support.google.com/mail/?p=WantAuthError"
    assert refusals.match(530, gmail, "gmail", anonymous=True).key == "gmail-auth-required"  # type: ignore[union-attr]
