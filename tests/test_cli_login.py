"""`smtp-magic login` / `logout`: device code, client credentials and the headless refusal, against the lab's authority."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from smtp_magic.auth.tokenstore import KEYRING_SERVICE
from smtp_magic.cli import main
from smtp_magic.lab.authority import DEMO_CLIENT_ID, DEMO_USER, OAuthAuthority
from tests.oauthhelpers import APP_CLIENT, APP_SECRET, MemoryKeyring, lab_authority, memory_keyring


@pytest.fixture(scope="module")
def authority() -> Iterator[OAuthAuthority]:
    with lab_authority() as running:
        yield running


@pytest.fixture
def vault() -> Iterator[MemoryKeyring]:
    yield from memory_keyring()


def _lab_args(authority: OAuthAuthority) -> list[str]:
    return [
        "--client-id", DEMO_CLIENT_ID, "--username", DEMO_USER,
        "--authority", authority.microsoft_authority, "--cafile", authority.cafile,
    ]  # fmt: skip


def test_login_device_code_then_logout(authority: OAuthAuthority, vault: MemoryKeyring) -> None:
    out = io.StringIO()
    code = main(["login", "microsoft", *_lab_args(authority), "--interactive"], out=out)
    text = out.getvalue()
    assert code == 0, text
    assert f"open the page {authority.url}/device and enter the code" in text
    assert f"Signed in as {DEMO_USER}; the token is stored in keyring" in text
    keys = [k for (service, k) in vault.passwords if service == KEYRING_SERVICE]
    assert keys == [f"microsoft:{DEMO_CLIENT_ID}:{authority.microsoft_authority}"]
    # No token is printed: the access token the lab issued is not in the output.
    assert all(record.access_token not in text for record in authority.tokens())

    out = io.StringIO()
    assert main(["logout", "microsoft", *_lab_args(authority)], out=out) == 0
    assert "Signed out" in out.getvalue()
    assert not [k for (service, k) in vault.passwords if service == KEYRING_SERVICE]


def test_login_headless_fails_fast_with_the_command(
    authority: OAuthAuthority, vault: MemoryKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    # Under pytest stdin is not a terminal: like cron, nobody could answer. The authority is one
    # nobody listens on, so a refusal naming the headless reason came before any network step.
    unreachable = ["--client-id", DEMO_CLIENT_ID, "--authority", "https://127.0.0.1:9/t"]
    assert main(["login", "microsoft", *unreachable], out=io.StringIO()) == 1
    err = capsys.readouterr().err
    assert "SignInError" in err
    assert "there is no terminal" in err or "CI job" in err  # CI sets CI=true
    assert f"`smtp-magic login microsoft --client-id {DEMO_CLIENT_ID}" in err


def test_client_credentials_secret_from_stdin(
    authority: OAuthAuthority, vault: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(APP_SECRET + "\n"))
    args = ["--client-id", APP_CLIENT, "--username", DEMO_USER,
            "--authority", authority.microsoft_authority, "--cafile", authority.cafile]  # fmt: skip
    out = io.StringIO()
    assert main(["login", "microsoft", *args, "--client-credentials", "--client-secret-stdin"],
                out=out) == 0  # fmt: skip
    assert APP_SECRET not in out.getvalue()
    assert (KEYRING_SERVICE, f"microsoft-client-secret:{APP_CLIENT}") in vault.passwords
    assert main(["logout", "microsoft", *args], out=io.StringIO()) == 0
    assert (KEYRING_SERVICE, f"microsoft-client-secret:{APP_CLIENT}") not in vault.passwords


def test_send_with_oauth_but_no_sign_in_fails_before_connecting(
    authority: OAuthAuthority, vault: MemoryKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["send", "--to", "bob@example.org", "--subject", "s", "--body", "b",
         "--host", "127.0.0.1", "--port", "9", "--user", DEMO_USER, "--oauth", "microsoft",
         "--client-id", DEMO_CLIENT_ID, "--authority", authority.microsoft_authority,
         "--oauth-cafile", authority.cafile],
        out=io.StringIO(),
    )  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert "no OAuth2 token" in err and "`smtp-magic login microsoft" in err
