"""Lab personas over real TLS: Gmail's and Microsoft 365's greetings, EHLO lines, refusals and OAuth2."""

from __future__ import annotations

import base64
import dataclasses
import smtplib
import ssl
from collections.abc import Iterator

import pytest

from smtp_magic import SMTPMagicError, compose, send
from smtp_magic.lab.personarole import play
from smtp_magic.lab.personas import PERSONAS, PersonaBehaviour
from smtp_magic.lab.server import LabServer
from smtp_magic.lab.tokens import StaticTokens


@pytest.fixture(scope="module")
def persona_lab() -> Iterator[LabServer]:
    with LabServer(ports={25: 0, 465: 0, 587: 0}) as lab:
        yield lab


@pytest.fixture(params=list(PERSONAS))
def playing(request: pytest.FixtureRequest, persona_lab: LabServer) -> Iterator[PersonaBehaviour]:
    tokens = StaticTokens({"good-token": "demo"})
    behaviour = play(persona_lab, request.param, tokens)
    yield behaviour
    behaviour.refuse(None)


def _message() -> object:
    return compose(
        to="student@example.org", subject="Persona", body="Hello.", sender="demo@lab.localhost"
    )


def test_greets_and_answers_ehlo_like_the_service(
    playing: PersonaBehaviour, persona_lab: LabServer
) -> None:
    persona = playing.persona
    context = ssl.create_default_context(cafile=persona_lab.cafile)
    with smtplib.SMTP_SSL(
        "127.0.0.1", persona_lab.ports[465], context=context, local_hostname="client.test"
    ) as smtp:
        code, greeting = smtp.ehlo()
        banner = smtp.sock is not None
    assert banner and code == 250
    lines = greeting.decode().splitlines()
    assert lines[0] == persona.hello.format(client="127.0.0.1")
    assert lines[1] == f"SIZE {persona.size}"
    assert lines[-1] == "AUTH " + " ".join(persona.mechanisms)
    for extension in persona.extensions:
        assert extension in lines


def test_starttls_role_offers_auth_only_after_tls(
    playing: PersonaBehaviour, persona_lab: LabServer
) -> None:
    context = ssl.create_default_context(cafile=persona_lab.cafile)
    with smtplib.SMTP("127.0.0.1", persona_lab.ports[587], local_hostname="client.test") as smtp:
        welcome = smtp.docmd("NOOP")  # the greeting was read on connect
        smtp.ehlo()
        before = dict(smtp.esmtp_features)
        smtp.starttls(context=context)
        smtp.ehlo()
        after = dict(smtp.esmtp_features)
    assert welcome[0] == 250
    assert "starttls" in before and "auth" not in before
    assert after["auth"].split() == list(playing.persona.mechanisms)


def test_the_greeting_names_the_service(playing: PersonaBehaviour, persona_lab: LabServer) -> None:
    report = send(_message(), persona_lab.settings(465))  # type: ignore[arg-type]
    greeting = next(line.text for line in report.transcript if line.direction == "S")
    assert greeting == f"220 {playing.persona.hostname} {playing.persona.ident}"


REFUSALS = [(p, kind) for p, persona in PERSONAS.items() for kind in persona.refusals]


@pytest.mark.parametrize(("persona", "kind"), REFUSALS)
def test_each_refusal_is_reproduced(persona_lab: LabServer, persona: str, kind: str) -> None:
    behaviour = play(persona_lab, persona)
    refusal = behaviour.persona.refusals[kind]
    persona_lab.clear()
    behaviour.refuse(kind)
    try:
        with pytest.raises(SMTPMagicError) as caught:
            send(_message(), dataclasses.replace(persona_lab.settings(465), timeout=3.0))  # type: ignore[arg-type]
    finally:
        behaviour.refuse(None)
    error = caught.value
    server_said = [line.text for line in error.transcript if line.direction == "S"]
    assert refusal.lines[-1] in server_said, server_said
    if refusal.phase != "ehlo":  # a 421 ends the session: smtplib reports a lost connection
        assert error.code == refusal.code
    assert persona_lab.messages == []  # refused: nothing was delivered


def test_refusals_stop_when_told(persona_lab: LabServer) -> None:
    behaviour = play(persona_lab, "gmail")
    behaviour.refuse("daily-limit")
    behaviour.refuse(None)
    persona_lab.clear()
    send(_message(), persona_lab.settings(587))  # type: ignore[arg-type]
    assert [m.message["Subject"] for m in persona_lab.messages] == ["Persona"]


def test_unknown_refusal_is_a_clear_error(persona_lab: LabServer) -> None:
    behaviour = play(persona_lab, "microsoft365")
    with pytest.raises(ValueError, match="has no refusal 'app-password'"):
        behaviour.refuse("app-password")


def test_a_wrong_password_gets_the_services_words(persona_lab: LabServer) -> None:
    play(persona_lab, "microsoft365")
    wrong = dataclasses.replace(persona_lab.settings(465), password="not-the-password")
    with pytest.raises(SMTPMagicError) as caught:
        send(_message(), wrong)  # type: ignore[arg-type]
    assert caught.value.code == 535
    assert "5.7.139 Authentication unsuccessful, the user credentials were incorrect" in str(
        caught.value.reply
    )


def _xoauth2(user: str, token: str) -> str:
    return base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode()).decode()


@pytest.mark.parametrize(
    ("persona", "refusal"), [("gmail", "535 5.7.8"), ("microsoft365", "535 5.7.3")]
)
def test_xoauth2_logs_in_with_a_good_token_and_fails_like_the_service(
    persona_lab: LabServer, persona: str, refusal: str
) -> None:
    play(persona_lab, persona, StaticTokens({"good-token": "demo"}))
    context = ssl.create_default_context(cafile=persona_lab.cafile)
    with smtplib.SMTP_SSL("127.0.0.1", persona_lab.ports[465], context=context) as smtp:
        smtp.ehlo()
        good = smtp.docmd("AUTH", "XOAUTH2 " + _xoauth2("demo", "good-token"))
    with smtplib.SMTP_SSL("127.0.0.1", persona_lab.ports[465], context=context) as smtp:
        smtp.ehlo()
        code, text = smtp.docmd("AUTH", "XOAUTH2 " + _xoauth2("demo", "expired-token"))
        if persona == "gmail":
            # Google first sends a 334 challenge with JSON details; the client answers empty.
            assert code == 334 and b'"status":"401"' in base64.b64decode(text)
            code, text = smtp.docmd("")
    assert good[0] == 235
    assert f"{code} {text.decode()}".startswith(refusal)


def test_microsoft365_offers_no_oauthbearer_and_no_plain(persona_lab: LabServer) -> None:
    play(persona_lab, "microsoft365")
    context = ssl.create_default_context(cafile=persona_lab.cafile)
    with smtplib.SMTP_SSL("127.0.0.1", persona_lab.ports[465], context=context) as smtp:
        smtp.ehlo()
        assert smtp.esmtp_features["auth"].split() == ["LOGIN", "XOAUTH2"]
        code, _ = smtp.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0demo\0x").decode())
    assert code == 504  # not offered, so not accepted either


def test_labserver_persona_argument() -> None:
    with LabServer(ports={25: 0, 465: 0, 587: 0}, persona="microsoft365") as lab:
        assert "persona='microsoft365'" in repr(lab)
        lab.refuse("send-as")
        with pytest.raises(SMTPMagicError) as caught:
            send(_message(), lab.settings(587))  # type: ignore[arg-type]
        lab.refuse(None)
        report = send(_message(), lab.settings(587))  # type: ignore[arg-type]
    assert caught.value.code == 550
    greeting = next(line.text for line in report.transcript if line.direction == "S")
    assert greeting.startswith("220 LAB0101CA0001.outlook.office365.com")


def test_plain_lab_has_no_refusals_and_unknown_persona_is_refused(lab: LabServer) -> None:
    with pytest.raises(ValueError, match="needs a persona"):
        lab.refuse("app-password")
    with pytest.raises(ValueError, match="Unknown persona 'yahoo'"):
        LabServer(persona="yahoo")


def test_cli_serve_with_a_persona(capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from smtp_magic.cli import main

    out = io.StringIO()
    code = main(
        ["serve", "--persona", "gmail", "--refuse", "app-password", "--seconds", "0.2"], out=out
    )
    assert code == 0
    assert "persona:        gmail, refusing with 'app-password'" in out.getvalue()
    code = main(["serve", "--persona", "gmail", "--refuse", "send-as", "--seconds", "0.2"])
    assert code == 2
    assert "Gmail has no refusal 'send-as'" in capsys.readouterr().err
