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


# -- issue 11: the sender is validated as compose() validates addresses; no raw exceptions -------


@pytest.mark.parametrize(
    ("sender", "reason"),
    [
        ("me@example.org\x00", "malformed"),  # a NUL would reach MAIL FROM:<...>
        ("Me\x0b <me@example.org>", "line break"),  # \x0b would land in the From header
        ("Me\u2028 <me@example.org>", "line break"),
        ("a@example.org, b@example.org", "several addresses"),  # a From of two mailboxes
        ("alice", "malformed"),
        ("<>", "malformed"),
        ("a@" + "\u00e4" * 70 + ".example", "ASCII"),  # no IDNA form
    ],
)
def test_sender_is_validated_like_a_composed_address(sender: str, reason: str) -> None:
    with pytest.raises(SettingsError, match=reason) as info:
        Settings("smtp.example.org", sender=sender)
    assert str(info.value).startswith("sender")


def test_smtp_from_is_validated_and_named() -> None:
    with pytest.raises(SettingsError, match="SMTP_FROM"):
        Settings.from_env(
            {"SMTP_HOST": "smtp.example.org", "SMTP_FROM": "x@example.org, y@example.org"}
        )


@pytest.mark.parametrize(
    "sender", ["alice@example.org", "Alice <alice@example.org>", "Ünï <a@bücher.example>", "  "]
)
def test_good_senders_are_kept_as_given(sender: str) -> None:
    assert Settings("smtp.example.org", sender=sender).sender == sender


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"timeout": 1e300}, "at most"),  # was OverflowError at connect, shown as ProtocolError
        ({"greeting_wait": 1e20}, "at most"),
        ({"host": "a" * 64 + ".example.org"}, "not a valid host name"),  # a label over 63
        ({"host": "ä" * 70 + ".example.org"}, "not a valid host name"),
        ({"host": "smtp..example.org"}, "not a valid host name"),
        ({"host": "smtp.\udc80.org"}, "not a valid host name"),
    ],
)
def test_settings_the_network_could_not_use_are_refused_at_creation(
    kwargs: dict, reason: str
) -> None:
    values = {"host": "smtp.example.org", **kwargs}
    with pytest.raises(SettingsError, match=reason):
        Settings(values.pop("host"), **values)


def test_timeout_from_the_environment_too_large_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="SMTP_TIMEOUT"):
        Settings.from_env({"SMTP_TIMEOUT": "1e300"})


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "::1", "localhost", "bücher.example", "mx_1.example."]
)
def test_hosts_that_resolve_are_accepted(host: str) -> None:
    assert Settings(host).host == host
