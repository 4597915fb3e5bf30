"""Settings: defaults, validation with one-sentence reasons, from_env, and a repr without the password."""

from __future__ import annotations

import dataclasses

import pytest

from smtp_magic import Settings, SettingsError
from smtp_magic.smtp.tls import client_context


@pytest.mark.parametrize(
    ("security", "port"), [("auto", 587), ("starttls", 587), ("tls", 465), ("plain", 25)]
)
def test_default_port_follows_security(security: str, port: int) -> None:
    assert Settings("smtp.example.org", security=security).port == port  # type: ignore[arg-type]


def test_explicit_port_is_kept_and_replace_derives_variants() -> None:
    settings = Settings("smtp.example.org", port=2525)
    assert settings.port == 2525
    variant = dataclasses.replace(settings, security="tls")
    assert (variant.port, variant.security) == (2525, "tls")
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"host": ""}, "host is empty"),
        ({"host": "smtp example.org"}, "white space"),
        ({"security": "ssl"}, "not a mode"),
        ({"port": 0}, "not a TCP port"),
        ({"port": 70000}, "not a TCP port"),
        ({"port": True}, "not a TCP port"),
        ({"port": "587"}, "not a TCP port"),
        ({"timeout": 0}, "positive number"),
        ({"timeout": float("nan")}, "positive number"),
        ({"greeting_wait": -1}, "positive number"),
        ({"password": "x"}, "without a username"),
        ({"security": "plain", "username": "u", "password": "p"}, "never sends credentials"),
        ({"keyfile": __file__}, "without certfile"),
        ({"cafile": "/no/such/ca.pem"}, "does not exist"),
        ({"username": "a\r\nMAIL FROM:<x>"}, "line break"),
    ],
)
def test_invalid_settings_are_refused_with_a_reason(kwargs: dict, reason: str) -> None:
    values = {"host": "smtp.example.org", **kwargs}
    with pytest.raises(SettingsError, match=reason) as info:
        Settings(values.pop("host"), **values)
    assert isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)


def test_repr_hides_the_password() -> None:
    settings = Settings("smtp.example.org", username="alice", password="hunter2-distinct")
    assert "hunter2-distinct" not in repr(settings)
    assert "hunter2-distinct" not in str(settings)
    assert "password='********'" in repr(settings)
    assert "password=None" in repr(Settings("smtp.example.org"))


def test_from_env_reads_every_variable(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    env = {
        "SMTP_HOST": "mail.example.org",
        "SMTP_PORT": "2525",
        "SMTP_SECURITY": "starttls",
        "SMTP_USERNAME": "alice",
        "SMTP_PASSWORD": "pw-from-env",
        "SMTP_FROM": "alice@example.org",
        "SMTP_CAFILE": str(ca),
        "SMTP_TIMEOUT": "3.5",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    assert settings == Settings(
        "mail.example.org",
        port=2525,
        security="starttls",
        username="alice",
        password="pw-from-env",
        sender="alice@example.org",
        cafile=str(ca),
        timeout=3.5,
    )
    # Overrides beat the environment; None overrides are ignored.
    assert Settings.from_env(port=587, host=None).port == 587


def test_from_env_names_the_bad_variable() -> None:
    with pytest.raises(SettingsError, match="SMTP_PORT='abc' is not a whole number"):
        Settings.from_env({"SMTP_PORT": "abc"})
    with pytest.raises(SettingsError, match="read from SMTP_SECURITY"):
        Settings.from_env({"SMTP_SECURITY": "ssl"})
    with pytest.raises(SettingsError, match="unknown setting"):
        Settings.from_env({}, colour="blue")


def test_tls_context_verifies_and_requires_tls12() -> None:
    import ssl

    context = client_context(Settings("smtp.example.org"))
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_bad_cafile_content_is_explained(tmp_path) -> None:
    bad = tmp_path / "not-a-ca.pem"
    bad.write_text("this is not a certificate")
    with pytest.raises(SettingsError, match="could not be loaded"):
        client_context(Settings("smtp.example.org", cafile=str(bad)))
