"""%smtp_login / %smtp_logout in a real InteractiveShell, against the lab's loopback OAuth2 authority."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from smtp_magic import SignInError
from smtp_magic.auth.tokenstore import KEYRING_SERVICE
from smtp_magic.lab.authority import DEMO_CLIENT_ID, DEMO_USER, OAuthAuthority
from smtp_magic.notebook.config import SendMail
from tests.oauthhelpers import GOOGLE_CLIENT, MemoryKeyring, lab_authority, memory_keyring


@pytest.fixture(scope="module")
def authority() -> Iterator[OAuthAuthority]:
    with lab_authority() as running:
        yield running


@pytest.fixture
def vault() -> Iterator[MemoryKeyring]:
    yield from memory_keyring()


@pytest.fixture
def ip() -> Iterator[InteractiveShell]:
    created = not InteractiveShell.initialized()
    main = sys.modules["__main__"]
    config = Config()
    config.HistoryAccessor.enabled = False
    shell = InteractiveShell.instance(config=config)
    shell.run_line_magic("load_ext", "smtp_magic")
    try:
        yield shell
    finally:
        shell.run_line_magic("unload_ext", "smtp_magic")
        shell.config.pop("SendMail", None)
        if created:
            InteractiveShell.clear_instance()
            sys.modules["__main__"] = main


def _defaults(ip: InteractiveShell) -> SendMail:
    [found] = [c for c in ip.configurables if isinstance(c, SendMail)]
    return found


def _login_line(authority: OAuthAuthority, extra: str = "") -> str:
    return (
        f"microsoft --client-id {DEMO_CLIENT_ID} --username {DEMO_USER} "
        f"--authority {authority.microsoft_authority} --cafile {authority.cafile} {extra}"
    )


def test_login_then_settings_carry_the_token_then_logout(
    ip: InteractiveShell,
    authority: OAuthAuthority,
    vault: MemoryKeyring,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ip.run_line_magic("smtp_login", _login_line(authority, "--interactive"))
    out = capsys.readouterr().out
    assert f"open the page {authority.url}/device and enter the code" in out
    assert f"Signed in to Microsoft as {DEMO_USER}" in out and "keyring" in out

    settings = _defaults(ip).build_settings(host="smtp.example.org")
    assert settings.password is None and callable(settings.token)
    assert settings.username == DEMO_USER
    token = settings.token()  # type: ignore[misc,operator]
    assert authority.validator(DEMO_USER, token).ok
    assert token not in repr(settings) and token not in out

    ip.run_line_magic("smtp_logout", "")
    assert "Signed out of Microsoft: the stored tokens were removed" in capsys.readouterr().out
    assert not [k for (service, k) in vault.passwords if service == KEYRING_SERVICE]
    assert _defaults(ip).build_settings(host="smtp.example.org").token is None


def test_config_traits_name_provider_and_client(ip: InteractiveShell, vault: MemoryKeyring) -> None:
    ip.run_line_magic("config", "SendMail.oauth_provider = 'google'")
    ip.run_line_magic("config", "SendMail.oauth_client_id = 'abc.apps.googleusercontent.com'")
    ip.run_line_magic("config", "SendMail.username = 'someone@gmail.com'")
    settings = _defaults(ip).build_settings(host="smtp.gmail.com")
    assert settings.token is not None and settings.password is None
    # Nobody signed in: the token callable fails at once with the magic's own command.
    with pytest.raises(SignInError, match="nothing is stored") as caught:
        settings.token()  # type: ignore[misc,operator]
    assert "`%smtp_login google --client-id abc.apps.googleusercontent.com" in caught.value.phrased(
        "magic"
    )


def test_headless_login_refuses_with_the_magic_command(
    ip: InteractiveShell,
    authority: OAuthAuthority,
    vault: MemoryKeyring,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(SignInError) as caught:
        ip.run_line_magic("smtp_login", _login_line(authority))
    shown = caught.value._render_traceback_()[0]
    assert "this is a CI job" in shown
    assert f"`%smtp_login microsoft --client-id {DEMO_CLIENT_ID}" in shown


def test_google_login_with_a_pasted_address(
    ip: InteractiveShell,
    authority: OAuthAuthority,
    vault: MemoryKeyring,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    client_file = tmp_path / "client_secret.json"
    client_file.write_text(json.dumps(authority.google_client_config(GOOGLE_CLIENT)))

    def user_pastes(question: str) -> str:
        # The person reads the link the magic showed, signs in, and pastes the address bar.
        shown = capsys.readouterr().out
        url = re.search(r"Sign in to Google in your browser: (\S+)", shown)
        assert url is not None, shown
        return authority.browse(url.group(1))

    monkeypatch.setattr("builtins.input", user_pastes)
    ip.run_line_magic(
        "smtp_login",
        f"google --client-secret-file {client_file} --username {DEMO_USER} "
        f"--cafile {authority.cafile} --paste --interactive",
    )
    assert f"Signed in to Google as {DEMO_USER}" in capsys.readouterr().out
    token = _defaults(ip).build_settings(host="smtp.gmail.com").token()  # type: ignore[misc,operator]
    assert authority.validator(DEMO_USER, token).ok
    assert [k for (s, k) in vault.passwords if s == KEYRING_SERVICE] == [
        f"google:{GOOGLE_CLIENT}:{DEMO_USER}"
    ]


def test_a_notebook_run_without_a_front_end_never_starts_a_sign_in() -> None:
    """nbclient (as papermill and nbconvert --execute) tells the kernel nobody answers input."""
    import os

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "%load_ext smtp_magic\n"
            f"%smtp_login microsoft --client-id {DEMO_CLIENT_ID} --username {DEMO_USER} "
            "--authority https://127.0.0.1:9/nobody-listens",
            metadata={"tags": ["raises-exception"]},
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "CI"}  # the kernel must find it alone
    NotebookClient(nb, timeout=60, kernel_name="python3").execute(env=env)
    [error] = [o for o in nb.cells[0].outputs if o["output_type"] == "error"]
    assert error["ename"] == "SignInError"
    assert "run without a front end (papermill, nbconvert --execute)" in error["evalue"]
    assert f"`%smtp_login microsoft --client-id {DEMO_CLIENT_ID}" in error["evalue"]
