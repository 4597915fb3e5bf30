"""Every known refusal, replayed by a real server over TCP/TLS, explained with the provider's fix.

The personas (Gmail, Microsoft 365) replay their own refusals; a scripted server whose greeting
names the provider replays the rest (and the generic ones). Each goes through the API,
``%%sendmail``, the form and the CLI.
"""

from __future__ import annotations

import dataclasses
import html
import io
from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from traitlets.config import Config

from smtp_magic import SMTPMagicError, compose, send
from smtp_magic.cli import main
from smtp_magic.lab.server import LabServer
from smtp_magic.notebook.form import SendMailForm
from smtp_magic.phrasing import FRONT_ENDS, render
from smtp_magic.settings import Settings
from smtp_magic.smtp import refusals
from tests.hostile import HOST, Certs, Dialog, certs, scripted  # noqa: F401  (certs: a fixture)
from tests.test_refusals import PERSONA_RULES

CASES = sorted(PERSONA_RULES)


@pytest.fixture(scope="module")
def labs() -> Iterator[dict[str, LabServer]]:
    with (
        LabServer(ports={25: 0, 465: 0, 587: 0}, persona="gmail") as gmail,
        LabServer(ports={25: 0, 465: 0, 587: 0}, persona="microsoft365") as microsoft,
    ):
        yield {"gmail": gmail, "microsoft365": microsoft}


@pytest.fixture
def refusing(labs: dict[str, LabServer], request: pytest.FixtureRequest) -> Iterator[Any]:
    persona, kind = request.param
    lab = labs[persona]
    lab.refuse(kind)
    lab.clear()
    yield lab, refusals_rule(persona, kind)
    lab.refuse(None)


def refusals_rule(persona: str, kind: str) -> refusals.Refusal:
    [rule] = [r for r in refusals.REFUSALS if r.key == PERSONA_RULES[(persona, kind)]]
    return rule


def _message() -> Any:
    return compose(to="bob@example.org", subject="Refusal", body="Hi.", sender="demo@lab.localhost")


def _shown_fix(rule: refusals.Refusal, text: str) -> bool:
    # The fix may be phrased for any front end (markers rendered); never left as markers.
    return "\u27e6" not in text and any(render(rule.fix, fe) in text for fe in FRONT_ENDS)


@pytest.mark.parametrize("refusing", CASES, indirect=True, ids=[f"{p}-{k}" for p, k in CASES])
def test_api(refusing: Any) -> None:
    lab, rule = refusing
    with pytest.raises(SMTPMagicError) as caught:
        send(_message(), dataclasses.replace(lab.settings(465), timeout=3.0))
    error = caught.value
    assert error.refusal == rule.key
    assert rule.meaning in str(error) and render(rule.fix, "python") in str(error)
    assert lab.messages == []


@pytest.mark.parametrize("refusing", CASES, indirect=True, ids=[f"{p}-{k}" for p, k in CASES])
def test_cli(
    refusing: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lab, rule = refusing
    settings = lab.settings(587)
    monkeypatch.setenv("SMTP_PASSWORD", settings.password)
    argv = ["send", "--to", "bob@example.org", "--subject", "Refusal", "--body", "Hi."]
    argv += ["--from", "demo@lab.localhost", "--host", HOST, "--port", str(settings.port)]
    argv += ["--security", "starttls", "--user", settings.username, "--cafile", lab.cafile]
    code = main([*argv, "--timeout", "3"], out=io.StringIO())
    err = capsys.readouterr().err
    assert code == 1
    assert rule.meaning in err and render(rule.fix, "cli") in err
    assert "Traceback" not in err and settings.password not in err


@pytest.fixture(scope="module")
def shell() -> Iterator[InteractiveShell]:
    if InteractiveShell.initialized():
        yield InteractiveShell.instance()
        return
    config = Config()
    config.HistoryAccessor.enabled = False
    import sys

    main_module = sys.modules["__main__"]
    ip = InteractiveShell.instance(config=config)
    try:
        yield ip
    finally:
        InteractiveShell.clear_instance()
        sys.modules["__main__"] = main_module


@pytest.mark.parametrize("refusing", CASES, indirect=True, ids=[f"{p}-{k}" for p, k in CASES])
def test_sendmail_magic(
    refusing: Any, shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab, rule = refusing
    settings = lab.settings(587)
    monkeypatch.setenv("SMTP_PASSWORD", settings.password)
    shell.run_line_magic("load_ext", "smtp_magic")
    try:
        line = (
            f"--to bob@example.org --subject Refusal --from demo@lab.localhost --host {HOST} "
            f"--port {settings.port} --security starttls --user {settings.username} "
            f"--cafile {lab.cafile} --timeout 3"
        )
        with capture_output() as captured:
            result = shell.run_cell(f"%%sendmail {line}\nHi.")
    finally:
        shell.run_line_magic("unload_ext", "smtp_magic")
        shell.config.pop("SendMail", None)
    assert isinstance(result.error_in_exec, SMTPMagicError)
    assert result.error_in_exec.refusal == rule.key
    out = captured.stdout
    assert rule.meaning in out and _shown_fix(rule, out)
    assert "Traceback" not in out + captured.stderr


@pytest.mark.parametrize("refusing", CASES, indirect=True, ids=[f"{p}-{k}" for p, k in CASES])
def test_form(refusing: Any) -> None:
    lab, rule = refusing
    form = SendMailForm(lab.settings(587, timeout=3.0))
    try:
        form.to.value, form.subject.value, form.body.value = "bob@example.org", "Refusal", "Hi."
        form.send_button.click()
        assert form.last is not None
        with pytest.raises(SMTPMagicError) as caught:
            form.last.result(timeout=10)
        status = html.unescape(form.status.value)
    finally:
        form.close()
    assert caught.value.refusal == rule.key
    assert rule.meaning in status and _shown_fix(rule, status)
    assert lab.messages == []


# -- refusals no persona gives: a scripted server whose greeting names the provider -------------

SCRIPTED = [
    # (greeting host, where the refusal comes, the reply, rule)
    ("smtp.office365.com", "AUTH", "535 5.7.139 Authentication unsuccessful, basic authentication is disabled. [BM1P287CA0015.INDP287.PROD.OUTLOOK.COM]", "m365-basic-auth-disabled"),
    ("smtp.office365.com", "MAIL", "530 5.7.57 Client not authenticated to send mail. [US22278CA0034.US7P278.PROD.OUTLOOK.COM]", "m365-not-authenticated"),
    ("smtp-mail.outlook.com", "end", "554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message due to a permanent exception with message Cannot submit message.", "m365-send-as-denied"),
    ("smtp.gmail.com", "MAIL", "530 5.7.0 Authentication Required. Learn more at https://support.google.com/mail/?p=WantAuthError lab - gsmtp", "gmail-auth-required"),
    ("mail.example.org", "RCPT", "554 5.7.1 <bob@example.org>: Relay access denied", "relay-denied"),
    ("mail.example.org", "RCPT", "550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown", "unknown-user"),
    ("mail.example.org", "MAIL", "451 4.7.1 Please try again later: sending rate limit exceeded", "throttled"),
]  # fmt: skip


@pytest.mark.parametrize(("host", "where", "reply", "key"), SCRIPTED, ids=[s[3] for s in SCRIPTED])
def test_scripted_refusals_through_the_api(
    certs: Certs,  # noqa: F811
    host: str,
    where: str,
    reply: str,
    key: str,
) -> None:
    dialog = Dialog(greeting=f"220 {host} ESMTP ready", tls=certs.server_context(), implicit=True)
    dialog.answer(where, reply)
    with scripted(dialog) as server:
        settings = Settings(
            HOST,
            port=server.port,
            security="tls",
            username="alice@example.org",
            password="not-used-here",
            sender="alice@example.org",
            cafile=certs.cafile,
            timeout=3.0,
        )
        with pytest.raises(SMTPMagicError) as caught:
            send(_message(), settings)
    error = caught.value
    [rule] = [r for r in refusals.REFUSALS if r.key == key]
    assert error.refusal == key
    assert rule.meaning in str(error) and render(rule.fix, "python") in str(error)
    assert error.code == int(reply[:3])


def test_unknown_refusal_keeps_the_generic_explanation(certs: Certs) -> None:  # noqa: F811
    dialog = Dialog(
        greeting="220 smtp.gmail.com ESMTP ready", tls=certs.server_context(), implicit=True
    )
    dialog.answer("end", "554 5.6.0 Message content rejected")
    with scripted(dialog) as server:
        settings = Settings(
            HOST, port=server.port, security="tls", cafile=certs.cafile, timeout=3.0
        )
        with pytest.raises(SMTPMagicError) as caught:
            send(_message(), settings)
    assert caught.value.refusal is None
    assert "refused the message (554 5.6.0 Message content rejected)" in str(caught.value)


def _scripted_settings(port: int, certs: Certs) -> Settings:  # noqa: F811
    return Settings(
        HOST,
        port=port,
        security="tls",
        username="alice@example.org",
        password="not-used-here",
        sender="alice@example.org",
        cafile=certs.cafile,
        timeout=3.0,
    )


@pytest.mark.parametrize(("host", "where", "reply", "key"), SCRIPTED, ids=[s[3] for s in SCRIPTED])
def test_scripted_refusals_through_the_cli_and_the_form(
    certs: Certs,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    host: str,
    where: str,
    reply: str,
    key: str,
) -> None:
    [rule] = [r for r in refusals.REFUSALS if r.key == key]
    dialog = Dialog(greeting=f"220 {host} ESMTP ready", tls=certs.server_context(), implicit=True)
    dialog.answer(where, reply)
    with scripted(dialog) as server:
        monkeypatch.setenv("SMTP_PASSWORD", "not-used-here")
        argv = ["send", "--to", "bob@example.org", "--subject", "x", "--body", "Hi."]
        argv += ["--from", "alice@example.org", "--host", HOST, "--port", str(server.port)]
        argv += ["--security", "tls", "--user", "alice@example.org", "--cafile", certs.cafile]
        code = main([*argv, "--timeout", "3"], out=io.StringIO())
        err = capsys.readouterr().err
        form = SendMailForm(_scripted_settings(server.port, certs))
        try:
            form.to.value, form.subject.value, form.body.value = "bob@example.org", "x", "Hi."
            form.send_button.click()
            assert form.last is not None
            with pytest.raises(SMTPMagicError) as caught:
                form.last.result(timeout=10)
            status = html.unescape(form.status.value)
        finally:
            form.close()
    assert code == 1
    assert rule.meaning in err and render(rule.fix, "cli") in err
    assert caught.value.refusal == key
    assert rule.meaning in status and _shown_fix(rule, status)


@pytest.mark.parametrize(("host", "where", "reply", "key"), SCRIPTED, ids=[s[3] for s in SCRIPTED])
def test_scripted_refusals_through_the_magic(
    certs: Certs,  # noqa: F811
    shell: InteractiveShell,
    monkeypatch: pytest.MonkeyPatch,
    host: str,
    where: str,
    reply: str,
    key: str,
) -> None:
    [rule] = [r for r in refusals.REFUSALS if r.key == key]
    dialog = Dialog(greeting=f"220 {host} ESMTP ready", tls=certs.server_context(), implicit=True)
    dialog.answer(where, reply)
    monkeypatch.setenv("SMTP_PASSWORD", "not-used-here")
    shell.run_line_magic("load_ext", "smtp_magic")
    try:
        with scripted(dialog) as server:
            line = (
                f"--to bob@example.org --subject x --from alice@example.org --host {HOST} "
                f"--port {server.port} --security tls --user alice@example.org "
                f"--cafile {certs.cafile} --timeout 3"
            )
            with capture_output() as captured:
                result = shell.run_cell(f"%%sendmail {line}\nHi.")
    finally:
        shell.run_line_magic("unload_ext", "smtp_magic")
        shell.config.pop("SendMail", None)
    assert isinstance(result.error_in_exec, SMTPMagicError)
    assert result.error_in_exec.refusal == key
    assert rule.meaning in captured.stdout and _shown_fix(rule, captured.stdout)


@pytest.mark.parametrize("logged_in", [False, True])
def test_access_denied_to_a_client_that_did_not_log_in_says_log_in(
    certs: Certs,  # noqa: F811
    logged_in: bool,
) -> None:
    """Postfix's words for a submission service's anonymous client; AUTH is offered after TLS."""
    dialog = Dialog(
        greeting="220 mail.example.org ESMTP", tls=certs.server_context(), implicit=True
    )
    dialog.answer("RCPT", "554 5.7.1 <bob@example.org>: Recipient address rejected: Access denied")
    with scripted(dialog) as server:
        settings = _scripted_settings(server.port, certs)
        if not logged_in:
            settings = dataclasses.replace(settings, username=None, password=None)
        with pytest.raises(SMTPMagicError) as caught:
            send(_message(), settings)
    error = caught.value
    if logged_in:  # a logged-in client refused: not a missing login; the generic explanation
        assert error.refusal is None
        assert "log in" not in str(error).lower()
    else:
        assert error.refusal == "login-required"
        assert "did not log in" in str(error) and "Set username=" in str(error)
        assert "--user NAME" in render(error.template, "cli")
        assert "SMTP_PASSWORD" in render(error.template, "cli")
