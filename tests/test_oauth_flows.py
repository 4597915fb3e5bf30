"""Every sign-in flow, with the real msal and google-auth-oauthlib, against the lab's loopback OAuth2 authority."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import pytest

from smtp_magic import SignInError
from smtp_magic.auth.google import GoogleTokens
from smtp_magic.auth.microsoft import MicrosoftTokens
from smtp_magic.auth.oauth import Prompt
from smtp_magic.auth.tokenstore import MemoryStore
from smtp_magic.lab.authority import DEMO_CLIENT_ID, DEMO_USER, OAuthAuthority

GOOGLE_CLIENT = "lab-google-desktop"
GOOGLE_SECRET = "lab-google-not-so-secret"
APP_CLIENT = "lab-unattended-app"
APP_SECRET = "lab-app-secret-5521"


@pytest.fixture(scope="module")
def authority() -> Iterator[OAuthAuthority]:
    with OAuthAuthority(robot=DEMO_USER, robot_after=1) as running:
        running.add_client(GOOGLE_CLIENT, secret=GOOGLE_SECRET)
        running.add_client(APP_CLIENT, secret=APP_SECRET, app_only=True, send_as=[DEMO_USER])
        yield running


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def _microsoft(authority: OAuthAuthority, store: MemoryStore, **kwargs: object) -> MicrosoftTokens:
    return MicrosoftTokens(
        DEMO_CLIENT_ID,
        username=DEMO_USER,
        authority=authority.microsoft_authority,
        cafile=authority.cafile,
        store=store,
        **kwargs,  # type: ignore[arg-type]
    )


def test_device_code_polls_then_signs_in(authority: OAuthAuthority, store: MemoryStore) -> None:
    shown: list[Prompt] = []
    tokens = _microsoft(authority, store)
    account = tokens.sign_in(shown.append, interactive=True)
    assert account == DEMO_USER
    assert shown[0].kind == "device" and shown[0].code and shown[0].code in shown[0].message
    assert shown[0].url == f"{authority.url}/device"
    token = tokens()
    assert authority.validator(DEMO_USER, token).ok
    # The robot approved only after answering authorization_pending at least once.
    device_code = next(iter(authority.store.polls))
    assert len(authority.store.polls[device_code]) >= 2
    # Nothing but msal's cache went to the store, under one key; no token in the repr.
    assert list(store._values) == [tokens.key]
    assert token not in repr(tokens)


def test_cached_token_survives_a_new_process_and_refreshes(
    authority: OAuthAuthority, store: MemoryStore
) -> None:
    _microsoft(authority, store).sign_in(lambda p: None, interactive=True)
    later = _microsoft(authority, store)  # a new kernel: only the store is shared
    first = later()
    assert later() == first  # cached while fresh
    later.invalidate()  # the server refused it: the next call must refresh
    second = later()
    assert second != first and authority.validator(DEMO_USER, second).ok


def test_token_near_expiry_is_refreshed_before_use(store: MemoryStore) -> None:
    # Tokens that live 4 minutes are inside the 5-minute margin: every call refreshes.
    with OAuthAuthority(robot=DEMO_USER, token_lifetime=240) as short:
        tokens = _microsoft(short, store)
        tokens.sign_in(lambda p: None, interactive=True)
        first = tokens()
        second = tokens()
        assert first != second
        assert short.validator(DEMO_USER, second).ok


def test_slow_down_makes_msal_wait_longer(store: MemoryStore) -> None:
    with OAuthAuthority(robot=DEMO_USER, robot_after=1, slow_down=1) as strict:
        tokens = _microsoft(strict, store)
        assert tokens.sign_in(lambda p: None, interactive=True) == DEMO_USER
        polls = next(iter(strict.store.polls.values()))
        # RFC 8628 section 3.5: after slow_down the client adds 5 s to its interval (1 s here).
        assert polls[1] - polls[0] >= 5


def test_expired_device_code(store: MemoryStore) -> None:
    with OAuthAuthority(robot=None, device_expires_in=2) as strict:
        with pytest.raises(SignInError, match=r"device code expired.*sign in again"):
            _microsoft(strict, store).sign_in(lambda p: None, interactive=True)
        assert store.get(f"microsoft:{DEMO_CLIENT_ID}:{strict.microsoft_authority}") is None


def test_conditional_access_block_points_to_browser(
    authority: OAuthAuthority, store: MemoryStore
) -> None:
    authority.block_device_code = True
    try:
        with pytest.raises(SignInError, match=r"Conditional Access.*browser") as caught:
            _microsoft(authority, store).sign_in(lambda p: None, interactive=True)
    finally:
        authority.block_device_code = False
    assert "AADSTS53003" in str(caught.value)


def test_microsoft_browser_flow_with_loopback_redirect(
    authority: OAuthAuthority, store: MemoryStore
) -> None:
    visited: list[str] = []

    def browser(url: str) -> None:
        # The user's browser: sign in on the authority's page, then follow the redirect back.
        redirect = authority.browse(url)
        visited.append(redirect)
        assert authority.follow(redirect) == 200

    tokens = _microsoft(authority, store, open_browser=browser)
    assert tokens.sign_in(lambda p: None, interactive=True, method="browser") == DEMO_USER
    assert visited[0].startswith("http://localhost:") and "code=" in visited[0]
    assert authority.validator(DEMO_USER, tokens()).ok


def test_microsoft_browser_cancelled(authority: OAuthAuthority, store: MemoryStore) -> None:
    tokens = _microsoft(
        authority,
        store,
        open_browser=lambda url: authority.follow(authority.browse(url, approve=False)),
    )
    with pytest.raises(SignInError, match=r"access_denied.*Allow"):
        tokens.sign_in(lambda p: None, interactive=True, method="browser")


def test_client_credentials_for_unattended_sending(
    authority: OAuthAuthority, store: MemoryStore
) -> None:
    tokens = _microsoft(authority, store, client_secret=APP_SECRET)
    tokens = MicrosoftTokens(
        APP_CLIENT,
        username=DEMO_USER,
        authority=authority.microsoft_authority,
        cafile=authority.cafile,
        client_secret=APP_SECRET,
        store=store,
    )
    token = tokens()  # no sign-in step: the app's secret is the credential
    verdict = authority.validator(DEMO_USER, token)
    assert verdict.ok and ".default" in verdict.scope
    assert not authority.validator("someone.else@lab.localhost", token).ok


def test_google_browser_flow_paste_back_and_refresh(
    authority: OAuthAuthority, store: MemoryStore
) -> None:
    config = authority.google_client_config(GOOGLE_CLIENT)
    pasted: list[Prompt] = []

    def paste(prompt: Prompt) -> str:
        # A remote kernel: the browser cannot reach the loopback listener; the user copies the
        # address bar (never visited) and pastes it.
        pasted.append(prompt)
        return authority.browse(prompt.url)

    tokens = GoogleTokens(
        username=DEMO_USER, client_config=config, cafile=authority.cafile, store=store
    )
    assert tokens.sign_in(lambda p: None, interactive=True, paste=paste) == DEMO_USER
    assert pasted[0].paste_back and "access_type=offline" in pasted[0].url
    stored = json.loads(store.get(tokens.key) or "{}")
    assert set(stored) == {"refresh_token", "token_uri", "client_secret"}
    token = tokens()
    assert authority.validator(DEMO_USER, token).ok


def test_google_loopback_flow_and_sign_out_revokes(
    authority: OAuthAuthority, store: MemoryStore
) -> None:
    config = authority.google_client_config(GOOGLE_CLIENT)
    tokens = GoogleTokens(
        username=DEMO_USER,
        client_config=config,
        cafile=authority.cafile,
        store=store,
        open_browser=lambda url: authority.follow(authority.browse(url)),
    )
    tokens.sign_in(lambda p: None, interactive=True)
    refresh = json.loads(store.get(tokens.key) or "{}")["refresh_token"]
    assert authority.validator(DEMO_USER, tokens()).ok
    assert tokens.sign_out() is True
    assert store.get(tokens.key) is None
    with authority.store.lock:
        assert refresh not in authority.store.refresh  # revoked at the authority too
    with pytest.raises(SignInError, match="smtp-magic login google"):
        GoogleTokens(
            username=DEMO_USER, client_config=config, cafile=authority.cafile, store=store
        )()


def test_google_has_no_device_flow(authority: OAuthAuthority, store: MemoryStore) -> None:
    tokens = GoogleTokens(GOOGLE_CLIENT, username=DEMO_USER, store=store)
    with pytest.raises(SignInError, match="invalid_scope"):
        tokens.sign_in(lambda p: None, interactive=True, method="device")


def test_revoked_refresh_token_asks_to_sign_in_again(
    authority: OAuthAuthority, store: MemoryStore
) -> None:
    config = authority.google_client_config(GOOGLE_CLIENT)
    tokens = GoogleTokens(
        username=DEMO_USER,
        client_config=config,
        cafile=authority.cafile,
        store=store,
        open_browser=lambda url: authority.follow(authority.browse(url)),
    )
    tokens.sign_in(lambda p: None, interactive=True)
    refresh = json.loads(store.get(tokens.key) or "{}")["refresh_token"]
    with authority.store.lock:
        authority.store.refresh[refresh].revoked = True
    with pytest.raises(SignInError, match=r"refused the stored refresh token.*7 days") as caught:
        tokens()
    assert caught.value.command and caught.value.command.startswith("smtp-magic login google")
    assert refresh not in str(caught.value)


def test_headless_sign_in_fails_fast_with_the_command(
    authority: OAuthAuthority, store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    # An authority nobody listens on: any network step would end in "cannot reach", so the
    # refusal below comes before any (it is immediate; benchmarks/ is the place for timings).
    tokens = MicrosoftTokens(
        DEMO_CLIENT_ID, username=DEMO_USER, authority="https://127.0.0.1:9/t", store=store
    )
    with pytest.raises(SignInError, match="CI job") as caught:
        tokens.sign_in(lambda p: pytest.fail("no prompt may be shown headless"))
    assert caught.value.command == (
        f"smtp-magic login microsoft --client-id {DEMO_CLIENT_ID} --username {DEMO_USER} "
        "--authority https://127.0.0.1:9/t"
    )
    with pytest.raises(SignInError, match="nothing is stored"):
        tokens()  # and the token callable never starts a flow either


def test_nothing_stored_fails_fast_without_the_network(store: MemoryStore) -> None:
    # An authority nobody listens on: the error must come from the empty store, at once.
    tokens = MicrosoftTokens(
        DEMO_CLIENT_ID, username=DEMO_USER, authority="https://127.0.0.1:9/tenant", store=store
    )
    with pytest.raises(SignInError, match="nothing is stored in this process's memory"):
        tokens()


@pytest.mark.parametrize(
    ("module", "extra"), [("msal", "microsoft"), ("google_auth_oauthlib", "google")]
)
def test_a_missing_extra_names_the_pip_command(
    module: str, extra: str, store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smtp_magic import SettingsError

    monkeypatch.setitem(sys.modules, module, None)  # what Python does for a package not installed
    monkeypatch.setitem(sys.modules, f"{module}.flow", None)
    tokens = (
        MicrosoftTokens(DEMO_CLIENT_ID, username=DEMO_USER, store=store)
        if extra == "microsoft"
        else GoogleTokens(GOOGLE_CLIENT, username=DEMO_USER, store=store)
    )
    with pytest.raises(SettingsError, match=rf"pip install 'smtp-magic\[{extra}\]'"):
        tokens.sign_in(lambda p: None, interactive=True)
