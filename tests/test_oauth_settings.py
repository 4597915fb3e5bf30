"""Settings(token=...): validation in one sentence, a repr that never shows the token, SMTP_TOKEN."""

from __future__ import annotations

import pytest

from smtp_magic import Settings, SettingsError
from smtp_magic.auth.credentials import with_password

TOKEN = "ya29.Distinctive-Token-4417"


def test_token_string_and_callable_are_accepted() -> None:
    assert Settings("smtp.example.org", username="a@example.org", token=TOKEN).token == TOKEN

    def fresh() -> str:
        return TOKEN

    assert Settings("smtp.example.org", username="a@example.org", token=fresh).token is fresh


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"username": "a", "token": TOKEN, "password": "pw"}, "both a password and a token"),
        ({"token": TOKEN}, "without a username"),
        ({"username": "a", "token": 42}, "a string or a function"),
        ({"username": "a", "token": ""}, "empty"),
        ({"username": "a", "token": "x\r\nQUIT"}, "line break"),
        ({"username": "a", "token": TOKEN, "security": "plain"}, "never sends a token"),
    ],
)
def test_token_problems_are_one_sentence(values: dict[str, object], reason: str) -> None:
    with pytest.raises(SettingsError, match=reason) as caught:
        Settings("smtp.example.org", **values)  # type: ignore[arg-type]
    assert TOKEN not in str(caught.value)


def test_repr_masks_the_token() -> None:
    shown = repr(Settings("smtp.example.org", username="a", token=TOKEN))
    assert TOKEN not in shown
    assert "token='********'" in shown

    def fetch_outlook_token() -> str:
        return TOKEN

    shown = repr(Settings("smtp.example.org", username="a", token=fetch_outlook_token))
    assert "token=<function" in shown and "fetch_outlook_token" in shown
    assert "token" not in repr(Settings("smtp.example.org"))  # no token: not mentioned


def test_from_env_reads_smtp_token() -> None:
    env = {"SMTP_HOST": "smtp.example.org", "SMTP_USERNAME": "a@example.org", "SMTP_TOKEN": TOKEN}
    assert Settings.from_env(env).token == TOKEN
    with pytest.raises(SettingsError, match="both a password and a token"):
        Settings.from_env({**env, "SMTP_PASSWORD": "pw"})


def test_no_password_is_looked_up_for_a_token() -> None:
    settings = Settings("smtp.example.org", username="a@example.org", token=TOKEN)
    # interactive=True would prompt if a password were wanted; with a token nothing is asked.
    assert with_password(settings, interactive=True) is settings
