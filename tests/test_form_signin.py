"""The form's Sign in for Microsoft: a device code or the browser, chosen in the form; Conditional Access turns it to the browser.

Against the loopback OAuth2 authority (authlib, trustme TLS) and an OAuth2-only lab server; a
thread plays the person: it reads the link the form shows, signs in on the authority's page,
then either the browser reaches the kernel's listener or the person pastes the address.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from smtp_magic import SignInError
from smtp_magic.auth.google import GoogleTokens
from smtp_magic.auth.microsoft import MicrosoftTokens
from smtp_magic.auth.tokenstore import MemoryStore
from smtp_magic.lab.authority import DEMO_CLIENT_ID, DEMO_USER, OAuthAuthority
from smtp_magic.lab.server import LabServer
from smtp_magic.notebook.form import SendMailForm
from tests.oauthhelpers import GOOGLE_CLIENT, lab_authority, person_signs_in


@pytest.fixture(scope="module")
def authority() -> Iterator[OAuthAuthority]:
    with lab_authority() as running:
        yield running


@pytest.fixture(scope="module")
def lab(authority: OAuthAuthority) -> Iterator[LabServer]:
    with LabServer(tokens=authority.validator) as running:
        yield running


def _microsoft(authority: OAuthAuthority) -> MicrosoftTokens:
    return MicrosoftTokens(
        DEMO_CLIENT_ID,
        username=DEMO_USER,
        authority=authority.microsoft_authority,
        cafile=authority.cafile,
        store=MemoryStore(),
    )


def _sign_in_by_browser(form: SendMailForm, authority: OAuthAuthority, reaches: bool) -> str:
    person = threading.Thread(
        target=person_signs_in, args=(form, authority), kwargs={"reaches_kernel": reaches}
    )
    form.signin_button.click()
    person.start()
    try:
        assert form.last is not None
        return str(form.last.result(timeout=30))
    finally:
        person.join(timeout=30)


def test_the_choice_shows_only_for_microsoft(authority: OAuthAuthority, lab: LabServer) -> None:
    google = GoogleTokens(
        username=DEMO_USER,
        client_config=authority.google_client_config(GOOGLE_CLIENT),
        cafile=authority.cafile,
        store=MemoryStore(),
    )
    shown = {}
    for name, token in (("microsoft", _microsoft(authority)), ("google", google), ("none", None)):
        settings = lab.settings(587, username=DEMO_USER, token=token)  # type: ignore[arg-type]
        form = SendMailForm(settings)
        try:
            shown[name] = (form.signin_method.layout.display, form.signin_method.value)
            assert (form.signin_button in form.buttons) == (token is not None)
        finally:
            form.close()
    assert shown == {
        "microsoft": ("", "device"),
        "google": ("none", "device"),
        "none": ("none", "device"),
    }


@pytest.mark.parametrize("reaches_kernel", [True, False], ids=["local", "pasted"])
def test_microsoft_browser_sign_in_from_the_form_then_send(
    authority: OAuthAuthority, lab: LabServer, reaches_kernel: bool
) -> None:
    tokens = _microsoft(authority)
    form = SendMailForm(lab.settings(587, username=DEMO_USER, token=tokens))  # type: ignore[arg-type]
    try:
        form.signin_method.value = "browser"
        assert _sign_in_by_browser(form, authority, reaches_kernel) == DEMO_USER
        assert f"Signed in</b> as {DEMO_USER}" in form.status.value
        assert form.paste_box.value == "" and form.paste_box.layout.display == "none"
        assert authority.validator(DEMO_USER, tokens()).ok
        subject = f"form-browser-{reaches_kernel}"
        form.to.value, form.subject.value, form.body.value = "bob@example.org", subject, "x"
        form.send_button.click()
        form.last.result(timeout=30)  # type: ignore[union-attr]
        assert any(m.message["Subject"] == subject for m in lab.messages)
    finally:
        form.close()


def test_conditional_access_turns_the_form_to_the_browser(
    authority: OAuthAuthority, lab: LabServer
) -> None:
    """Entra's AADSTS53003 for a device code: the form says what to do, in its own terms, and
    has chosen Browser already; the next click signs in."""
    tokens = _microsoft(authority)
    form = SendMailForm(lab.settings(587, username=DEMO_USER, token=tokens))  # type: ignore[arg-type]
    authority.block_device_code = True
    try:
        form.signin_button.click()
        assert form.last is not None
        with pytest.raises(SignInError):
            form.last.result(timeout=30)
        status = form.status.value
        assert "Conditional Access" in status and "AADSTS53003" in status
        assert "Browser beside the Sign in button" in status
        assert "--browser" not in status and "smtp-magic login" not in status  # the form's words
        assert form.signin_method.value == "browser"
        assert _sign_in_by_browser(form, authority, True) == DEMO_USER
        assert authority.validator(DEMO_USER, tokens()).ok
    finally:
        authority.block_device_code = False
        form.close()
