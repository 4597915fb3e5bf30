"""Sign in once, then send through an OAuth2-only lab server: Python, %%sendmail and the CLI, with refresh and revocation."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from smtp_magic import SignInError, compose, send, send_many
from smtp_magic.auth.microsoft import MicrosoftTokens
from smtp_magic.auth.tokenstore import MemoryStore
from smtp_magic.cli import main
from smtp_magic.lab.authority import DEMO_CLIENT_ID, DEMO_USER, OAuthAuthority
from smtp_magic.lab.server import LabServer
from tests.oauthhelpers import MemoryKeyring, lab_authority, memory_keyring, person_signs_in


@pytest.fixture(scope="module")
def authority() -> Iterator[OAuthAuthority]:
    with lab_authority() as running:
        yield running


@pytest.fixture(scope="module")
def lab(authority: OAuthAuthority) -> Iterator[LabServer]:
    # The lab's SMTP roles accept only tokens this authority issued (no password logins).
    with LabServer(tokens=authority.validator) as running:
        yield running


@pytest.fixture
def vault() -> Iterator[MemoryKeyring]:
    yield from memory_keyring()


def _signed_in(authority: OAuthAuthority) -> MicrosoftTokens:
    tokens = MicrosoftTokens(
        DEMO_CLIENT_ID,
        username=DEMO_USER,
        authority=authority.microsoft_authority,
        cafile=authority.cafile,
        store=MemoryStore(),
    )
    tokens.sign_in(lambda prompt: None, interactive=True)
    return tokens


def _message(subject: str) -> object:
    return compose(to="bob@example.org", subject=subject, body="Sent with an OAuth2 token.")


def test_api_send_with_the_token_provider(authority: OAuthAuthority, lab: LabServer) -> None:
    tokens = _signed_in(authority)
    report = send(_message("api"), lab.settings(587, username=DEMO_USER, token=tokens))  # type: ignore[arg-type]
    assert report.auth_mechanism in ("OAUTHBEARER", "XOAUTH2")
    received = [m for m in lab.messages if m.message["Subject"] == "api"]
    assert received and received[0].authenticated


def test_server_side_expiry_is_refreshed_and_retried(
    authority: OAuthAuthority, lab: LabServer
) -> None:
    tokens = _signed_in(authority)
    first = tokens()
    authority.expire(first)  # the server now refuses it, though msal's clock says it is fresh
    send(_message("after expiry"), lab.settings(465, username=DEMO_USER, token=tokens))  # type: ignore[arg-type]
    assert tokens() != first  # invalidate() made the provider refresh with the refresh token
    assert any(m.message["Subject"] == "after expiry" for m in lab.messages)


def test_revoked_sign_in_fails_with_what_to_do(authority: OAuthAuthority, lab: LabServer) -> None:
    tokens = _signed_in(authority)
    tokens()
    authority.revoke_user(DEMO_USER)  # an administrator revoked every session
    with authority.store.lock:
        authority.store.refresh.clear()  # refresh tokens die with the sessions
    with pytest.raises(SignInError, match="Microsoft refused the stored sign-in") as caught:
        send(_message("revoked"), lab.settings(587, username=DEMO_USER, token=tokens))  # type: ignore[arg-type]
    text = str(caught.value)
    assert "`smtp-magic login microsoft --client-id" in text
    assert all(r.access_token not in text for r in authority.tokens())


def test_send_many_with_the_token(authority: OAuthAuthority, lab: LabServer) -> None:
    tokens = _signed_in(authority)
    messages = [_message(f"bulk {i}") for i in range(5)]
    report = send_many(
        messages, lab.settings(587, username=DEMO_USER, token=tokens), progress=False
    )  # type: ignore[arg-type]
    assert len(report.accepted) == 5


def test_sendmail_magic_after_smtp_login(
    authority: OAuthAuthority, lab: LabServer, vault: MemoryKeyring
) -> None:
    created = not InteractiveShell.initialized()
    main_module = sys.modules["__main__"]
    config = Config()
    config.HistoryAccessor.enabled = False
    ip = InteractiveShell.instance(config=config)
    ip.run_line_magic("load_ext", "smtp_magic")
    try:
        for line in (
            "SendMail.host = '127.0.0.1'",
            f"SendMail.port = {lab.ports[587]}",
            "SendMail.security = 'starttls'",
            f"SendMail.cafile = {lab.cafile!r}",
            f"SendMail.sender = {DEMO_USER!r}",
        ):
            ip.run_line_magic("config", line)
        ip.run_line_magic(
            "smtp_login",
            f"microsoft --client-id {DEMO_CLIENT_ID} --username {DEMO_USER} "
            f"--authority {authority.microsoft_authority} --cafile {authority.cafile} --interactive",
        )
        ip.run_cell_magic("sendmail", "--to bob@example.org --subject magic-oauth", "Hello.\n")
        assert any(m.message["Subject"] == "magic-oauth" for m in lab.messages)
    finally:
        ip.run_line_magic("unload_ext", "smtp_magic")
        ip.config.pop("SendMail", None)
        if created:
            InteractiveShell.clear_instance()
            sys.modules["__main__"] = main_module


def test_cli_login_then_send(
    authority: OAuthAuthority, lab: LabServer, vault: MemoryKeyring
) -> None:
    common = ["--client-id", DEMO_CLIENT_ID, "--authority", authority.microsoft_authority]
    assert main(["login", "microsoft", *common, "--username", DEMO_USER,
                 "--cafile", authority.cafile, "--interactive"], out=io.StringIO()) == 0  # fmt: skip
    out = io.StringIO()
    code = main(
        ["send", "--to", "bob@example.org", "--subject", "cli-oauth", "--body", "b",
         "--host", "127.0.0.1", "--port", str(lab.ports[587]), "--security", "starttls",
         "--cafile", lab.cafile, "--user", DEMO_USER, "--from", DEMO_USER,
         "--oauth", "microsoft", *common, "--oauth-cafile", authority.cafile],
        out=out,
    )  # fmt: skip
    assert code == 0, out.getvalue()
    assert any(m.message["Subject"] == "cli-oauth" for m in lab.messages)


def test_form_sign_in_button_then_send(authority: OAuthAuthority, lab: LabServer) -> None:
    import ipywidgets as W

    from smtp_magic.notebook.form import SendMailForm

    tokens = MicrosoftTokens(
        DEMO_CLIENT_ID,
        username=DEMO_USER,
        authority=authority.microsoft_authority,
        cafile=authority.cafile,
        store=MemoryStore(),
    )
    form = SendMailForm(lab.settings(587, username=DEMO_USER, token=tokens))  # type: ignore[arg-type]
    try:
        assert form.signin_button in form.buttons
        seen: list[str] = []
        form.status.observe(lambda change: seen.append(change["new"]), "value")
        form.signin_button.click()
        assert form.last is not None and form.last.result(timeout=30) == DEMO_USER
        # The device code and its link were shown in the form while the sign-in waited.
        assert any("enter the code" in s and f"{authority.url}/device" in s for s in seen)
        assert f"Signed in</b> as {DEMO_USER}" in form.status.value

        form.to.value, form.subject.value, form.body.value = "bob@example.org", "form-oauth", "x"
        form.send_button.click()
        form.last.result(timeout=30)
        assert any(m.message["Subject"] == "form-oauth" for m in lab.messages)
        # No token in any widget's synced state.
        states = repr([w.get_state() for w in dict(W.widget._instances).values()])
        assert all(r.access_token not in states for r in authority.tokens())
    finally:
        form.close()


@pytest.mark.parametrize("browser_reaches_kernel", [True, False], ids=["local", "pasted"])
def test_form_google_sign_in_by_redirect_or_pasted_address(
    authority: OAuthAuthority, lab: LabServer, browser_reaches_kernel: bool
) -> None:
    import threading

    from smtp_magic.auth.google import GoogleTokens
    from smtp_magic.notebook.form import SendMailForm
    from tests.oauthhelpers import GOOGLE_CLIENT

    tokens = GoogleTokens(
        username=DEMO_USER,
        client_config=authority.google_client_config(GOOGLE_CLIENT),
        cafile=authority.cafile,
        store=MemoryStore(),
    )
    form = SendMailForm(lab.settings(587, username=DEMO_USER, token=tokens))  # type: ignore[arg-type]

    person = threading.Thread(
        target=person_signs_in,
        args=(form, authority),
        kwargs={"reaches_kernel": browser_reaches_kernel},
    )
    try:
        form.signin_button.click()
        person.start()
        assert form.last is not None and form.last.result(timeout=30) == DEMO_USER
        assert form.paste_box.value == "" and form.paste_box.layout.display == "none"
        assert authority.validator(DEMO_USER, tokens()).ok
    finally:
        person.join(timeout=30)
        form.close()


def test_scheduled_run_sends_with_the_stored_token(
    authority: OAuthAuthority, lab: LabServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sign in once here; a notebook run later by nbclient (papermill's engine) sends with it."""
    import os

    import keyring
    import nbformat
    from nbclient import NotebookClient

    from tests.oauthhelpers import FileKeyring

    monkeypatch.setenv("SMTP_MAGIC_TEST_KEYRING", str(tmp_path / "keyring.json"))
    previous = keyring.get_keyring()
    keyring.set_keyring(FileKeyring())
    try:
        once = MicrosoftTokens(
            DEMO_CLIENT_ID, username=DEMO_USER,
            authority=authority.microsoft_authority, cafile=authority.cafile,
        )  # fmt: skip
        once.sign_in(lambda prompt: None, interactive=True)  # the one interactive sign-in
    finally:
        keyring.set_keyring(previous)

    nb = nbformat.v4.new_notebook()
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "%load_ext smtp_magic\n"
            "%config SendMail.host = '127.0.0.1'\n"
            f"%config SendMail.port = {lab.ports[587]}\n"
            "%config SendMail.security = 'starttls'\n"
            f"%config SendMail.cafile = {lab.cafile!r}\n"
            f"%config SendMail.username = {DEMO_USER!r}\n"
            f"%config SendMail.sender = {DEMO_USER!r}\n"
            "%config SendMail.oauth_provider = 'microsoft'\n"
            f"%config SendMail.oauth_client_id = {DEMO_CLIENT_ID!r}\n"
            f"%config SendMail.oauth_authority = {authority.microsoft_authority!r}\n"
            f"%config SendMail.oauth_cafile = {authority.cafile!r}"
        )
    )
    nb.cells.append(
        nbformat.v4.new_code_cell(
            '%%sendmail --to bob@example.org --subject "scheduled with a stored token"\nNightly.'
        )
    )
    env = dict(os.environ)
    env["PYTHON_KEYRING_BACKEND"] = "tests.oauthhelpers.FileKeyring"
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
    NotebookClient(nb, timeout=60, kernel_name="python3").execute(env=env)
    assert not [o for c in nb.cells for o in c.outputs if o["output_type"] == "error"]
    assert any(m.message["Subject"] == "scheduled with a stored token" for m in lab.messages)
