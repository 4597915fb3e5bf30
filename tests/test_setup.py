"""From an address to settings in each front end: smtp-magic setup, %smtp_setup and the form's Find settings."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from traitlets.config import Config

from smtp_magic.cli import main
from smtp_magic.discovery import lookups as discoverdns
from smtp_magic.lab.discovery import DiscoveryLab
from smtp_magic.notebook.config import SendMail
from smtp_magic.notebook.form import SendMailForm
from smtp_magic.settings import Settings


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[DiscoveryLab]:
    """A loopback DNS + HTTPS world; autoconfig fetches go to its HTTPS port."""
    with DiscoveryLab() as lab:
        monkeypatch.setattr(discoverdns, "HTTPS_PORT", lab.https_port)
        lab.autoconfig("example.test", [("smtp.example.test", 465, "SSL")])
        lab.dns("_submission._tcp.example.test", "SRV", "0 1 587 mail.example.test.")
        lab.dns("forged.test", "MX", "10 mx.forged.test.")
        lab.dns("_submissions._tcp.forged.test", "SRV", "0 1 465 smtp.attacker.test.")
        yield lab


def _dns(world: DiscoveryLab) -> list[str]:
    return ["--dns", f"127.0.0.1:{world.dns_port}", "--cafile", world.cafile, "--timeout", "2"]


# -- smtp-magic setup -------------------------------------------------------------------------


def test_cli_prints_exports_for_a_known_provider() -> None:
    out = io.StringIO()
    assert main(["setup", "alice@gmail.com"], out=out) == 0
    text = out.getvalue()
    assert "export SMTP_HOST=smtp.gmail.com\nexport SMTP_PORT=465\nexport SMTP_SECURITY=tls" in text
    assert "export SMTP_USERNAME=alice@gmail.com" in text
    assert "smtp-magic login google" in text  # how to log in next, in this front end's words
    assert "PASSWORD" not in text.replace("SMTP_PASSWORD", "")  # never a password value


def test_cli_output_is_shell_evaluable(tmp_path: object) -> None:
    script = 'eval "$(smtp-magic setup bob@web.de)" && echo "$SMTP_HOST $SMTP_PORT $SMTP_USERNAME"'
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    done = subprocess.run(
        ["bash", "-c", script.replace("smtp-magic", f"{sys.executable} -m smtp_magic.cli")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.stdout.strip() == "smtp.web.de 465 bob", done.stderr


def test_cli_custom_domain_through_dns_and_autoconfig(world: DiscoveryLab) -> None:
    out = io.StringIO()
    assert main(["setup", "alice@example.test", *_dns(world)], out=out) == 0
    text = out.getvalue()
    assert "export SMTP_HOST=smtp.example.test" in text and "export SMTP_PORT=465" in text
    out = io.StringIO()
    assert main(["setup", "alice@example.test", "--choose", "2", *_dns(world)], out=out) == 0
    assert "export SMTP_HOST=mail.example.test" in out.getvalue()


def test_cli_refuses_a_forged_looking_answer_without_confirm(world: DiscoveryLab) -> None:
    out = io.StringIO()
    assert main(["setup", "alice@forged.test", *_dns(world)], out=out) == 1
    assert "export" not in out.getvalue() and "--confirm" in out.getvalue()
    out = io.StringIO()
    assert main(["setup", "alice@forged.test", "--confirm", *_dns(world)], out=out) == 0
    assert "export SMTP_HOST=smtp.attacker.test" in out.getvalue()
    assert "Confirm smtp.attacker.test with your provider first" in out.getvalue()


def test_cli_bad_choice_is_explained(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["setup", "alice@gmail.com", "--choose", "9"], out=io.StringIO()) == 1
    assert "choose a candidate from 1 to 2, not 9" in capsys.readouterr().err


# -- %smtp_setup ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shell() -> Iterator[InteractiveShell]:
    if InteractiveShell.initialized():
        yield InteractiveShell.instance()
        return
    config = Config()
    config.HistoryAccessor.enabled = False
    main_module = sys.modules["__main__"]
    ip = InteractiveShell.instance(config=config)
    try:
        yield ip
    finally:
        InteractiveShell.clear_instance()
        sys.modules["__main__"] = main_module


@pytest.fixture
def ip(shell: InteractiveShell) -> Iterator[InteractiveShell]:
    shell.run_line_magic("load_ext", "smtp_magic")
    yield shell
    shell.run_line_magic("unload_ext", "smtp_magic")
    shell.config.pop("SendMail", None)


def _defaults(ip: InteractiveShell) -> SendMail:
    [found] = [c for c in ip.configurables if isinstance(c, SendMail)]
    return found


def test_magic_applies_the_best_candidate(ip: InteractiveShell) -> None:
    with capture_output() as captured:
        ip.run_line_magic("smtp_setup", "alice@outlook.com")
    d = _defaults(ip)
    assert (d.host, d.port, d.security) == ("smtp-mail.outlook.com", 587, "starttls")
    assert (d.username, d.sender) == ("alice@outlook.com", "alice@outlook.com")
    assert "smtp-mail.outlook.com" in captured.stdout  # the table was shown
    assert "Next: Sign in with OAuth2 (microsoft): %smtp_login microsoft." in captured.stdout


def test_magic_custom_domain_and_confirmation(ip: InteractiveShell, world: DiscoveryLab) -> None:
    dns = " ".join(_dns(world))
    with capture_output() as captured:
        ip.run_line_magic("smtp_setup", f"alice@forged.test {dns}")
    assert _defaults(ip).host is None  # not applied
    assert "--confirm" in captured.stdout
    with capture_output():
        ip.run_line_magic("smtp_setup", f"alice@example.test --choose 2 {dns}")
    d = _defaults(ip)
    assert (d.host, d.port, d.security) == ("mail.example.test", 587, "starttls")


def test_magic_refuses_a_bad_address(ip: InteractiveShell) -> None:
    from smtp_magic import SettingsError

    with pytest.raises(SettingsError, match="not an email address"):
        ip.run_line_magic("smtp_setup", "not-an-address")


# -- the form's Find settings -----------------------------------------------------------------


def test_form_find_settings_fills_the_server_fields() -> None:
    form = SendMailForm(Settings("localhost"))
    try:
        form.address.value = "carol@fastmail.com"
        form.find_button.click()
        assert form.last is not None
        found = form.last.result(timeout=10)
        values = (form.host.value, form.port.value, form.security.value, form.username.value)
        status = form.status.value
    finally:
        form.close()
    assert found.best.provider == "Fastmail"
    assert values == ("smtp.fastmail.com", 465, "tls", "carol@fastmail.com")
    assert "Find settings" in status and "app password" in status


def test_form_find_settings_needs_an_address() -> None:
    form = SendMailForm(Settings("localhost"))
    try:
        form.address.value = ""
        form.find_button.click()
        status = form.status.value
    finally:
        form.close()
    assert "Type your email address into Address first." in status
