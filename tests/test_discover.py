"""discover(): the provider table offline, MX/SPF/SRV/autoconfig through a loopback DNS and HTTPS server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from smtp_magic import SettingsError, discover
from smtp_magic.lab.discovery import DiscoveryLab, Page, autoconfig_xml
from smtp_magic.lab.server import LabServer


@pytest.fixture
def world() -> Iterator[DiscoveryLab]:
    with DiscoveryLab() as lab:
        yield lab


# --- the built-in table: no network at all ---------------------------------------------------

TABLE = [
    ("alice@gmail.com", "Gmail", "smtp.gmail.com", 465, "tls", "oauth2"),
    ("alice@googlemail.com", "Gmail", "smtp.gmail.com", 465, "tls", "oauth2"),
    ("alice@outlook.com", "Outlook.com", "smtp-mail.outlook.com", 587, "starttls", "oauth2"),
    ("alice@hotmail.co.uk", "Outlook.com", "smtp-mail.outlook.com", 587, "starttls", "oauth2"),
    ("alice@contoso.onmicrosoft.com", None, None, None, None, None),  # subdomain: not a table hit
    ("alice@yahoo.com", "Yahoo Mail", "smtp.mail.yahoo.com", 465, "tls", "app-password"),
    ("alice@icloud.com", "iCloud Mail", "smtp.mail.me.com", 587, "starttls", "app-password"),
    ("alice@fastmail.com", "Fastmail", "smtp.fastmail.com", 465, "tls", "app-password"),
    ("alice@zoho.com", "Zoho Mail", "smtp.zoho.com", 465, "tls", "password"),
    ("alice@zoho.eu", "Zoho Mail (EU)", "smtp.zoho.eu", 465, "tls", "password"),
    ("alice@gmx.de", "GMX", "mail.gmx.net", 465, "tls", "password"),
    ("alice@gmx.com", "GMX (international)", "mail.gmx.com", 465, "tls", "password"),
    ("alice@web.de", "WEB.DE", "smtp.web.de", 465, "tls", "password"),
    ("alice@aol.com", "AOL Mail", "smtp.aol.com", 465, "tls", "app-password"),
    ("alice@proton.me", "Proton Mail (Bridge)", "127.0.0.1", 1025, "starttls", "password"),
]


@pytest.mark.parametrize(("address", "name", "host", "port", "security", "login"), TABLE)
def test_table_answers_offline(
    address: str, name: str | None, host: str | None, port: int | None, security: str, login: str
) -> None:
    if name is None:
        return  # covered by the MX tests: a custom subdomain needs DNS
    # A resolver that points nowhere: a table hit must not even try it.
    found = discover(address, resolver=_dead_resolver(), timeout=0.5)
    best = found.best
    assert best is not None
    assert (best.provider, best.host, best.port, best.security, best.login) == (
        name,
        host,
        port,
        security,
        login,
    )
    assert best.source == "table" and not best.confirm
    assert "built-in table" in found.notes[0]


def test_username_follows_the_provider() -> None:
    assert discover("bob@web.de").best.username == "bob"  # type: ignore[union-attr]
    assert discover("bob@gmail.com").best.username == "bob@gmail.com"  # type: ignore[union-attr]


def test_settings_from_a_candidate_carry_no_password() -> None:
    settings = discover("alice@gmail.com").best.settings(sender="alice@gmail.com")  # type: ignore[union-attr]
    assert (settings.host, settings.port, settings.security) == ("smtp.gmail.com", 465, "tls")
    assert settings.username == "alice@gmail.com" and settings.password is None


@pytest.mark.parametrize("bad", ["", "alice", "alice@", "@example.org", "a b@example.org"])
def test_not_an_address(bad: str) -> None:
    with pytest.raises(SettingsError, match="not an email address"):
        discover(bad)


def _dead_resolver() -> object:
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = 9  # discard: nothing answers
    return resolver


def test_offline_custom_domain_gives_notes_not_errors() -> None:
    found = discover("alice@example.test", resolver=_dead_resolver(), timeout=0.3)
    assert found.candidates == ()
    assert any("timed out" in n or "failed" in n for n in found.notes)
    assert "nothing found" in found.notes[-1]


# --- MX and SPF: custom domains of known providers --------------------------------------------


@pytest.mark.parametrize(
    ("mx", "provider", "host"),
    [
        ("1 aspmx.l.google.com.", "Google Workspace", "smtp.gmail.com"),
        ("5 alt1.aspmx.l.google.com.", "Google Workspace", "smtp.gmail.com"),
        ("1 smtp.google.com.", "Google Workspace", "smtp.gmail.com"),
        ("0 contoso-com.mail.protection.outlook.com.", "Microsoft 365", "smtp.office365.com"),
        ("10 in1-smtp.messagingengine.com.", "Fastmail", "smtp.fastmail.com"),
        (
            "10 inbound-smtp.eu-west-1.amazonaws.com.",
            "Amazon SES",
            "email-smtp.eu-west-1.amazonaws.com",
        ),
    ],
)
def test_mx_identifies_the_provider(world: DiscoveryLab, mx: str, provider: str, host: str) -> None:
    world.dns("contoso.test", "MX", mx)
    found = world.discover("alice@contoso.test")
    assert found.best is not None
    assert (found.best.provider, found.best.host, found.best.source) == (provider, host, "mx")
    assert not found.best.confirm  # the host comes from the table, not from DNS
    assert found.provider is not None and found.provider.name == provider


def test_unknown_mx_is_no_provider(world: DiscoveryLab) -> None:
    world.dns("plain.test", "MX", "10 mx.plain.test.")
    found = world.discover("alice@plain.test")
    assert found.candidates == () and found.provider is None


def test_spf_include_names_a_sending_service(world: DiscoveryLab) -> None:
    world.dns("shop.test", "TXT", '"v=spf1 include:spf.mtasv.net include:sendgrid.net ~all"')
    found = world.discover("orders@shop.test")
    assert [c.provider for c in found] == ["Postmark"]  # the first include that matches
    assert found.best.login == "api-key" and found.best.source == "spf"  # type: ignore[union-attr]


# --- SRV: RFC 6186 and RFC 8314 ----------------------------------------------------------------


def test_srv_submissions_ranks_first_and_off_domain_needs_confirmation(world: DiscoveryLab) -> None:
    world.dns("_submission._tcp.example.test", "SRV", "0 1 587 mail.example.test.")
    world.dns("_submissions._tcp.example.test", "SRV", "10 1 465 mail.example.test.")
    world.dns("_submissions._tcp.example.test", "SRV", "0 1 465 relay.attacker.test.")
    found = world.discover("alice@example.test")
    listing = [(c.host, c.port, c.security, c.confirm) for c in found]
    assert listing == [
        ("mail.example.test", 465, "tls", False),
        ("mail.example.test", 587, "starttls", False),
        ("relay.attacker.test", 465, "tls", True),  # outside example.test: confirm first
    ]
    assert "(confirm!)" in str(found)


def test_srv_dot_target_means_not_offered(world: DiscoveryLab) -> None:
    world.dns("_submissions._tcp.example.test", "SRV", "0 0 0 .")
    found = world.discover("alice@example.test")
    assert found.candidates == ()
    assert any("not offered" in n for n in found.notes)


def test_every_dns_lookup_honours_the_timeout(world: DiscoveryLab) -> None:
    world.dns("slow.test", "MX", "1 aspmx.l.google.com.", delay=1.5)
    found = world.discover("alice@slow.test", timeout=0.3)
    assert found.best is None or found.best.source != "mx"
    assert any("MX lookup of slow.test timed out" in n for n in found.notes)


# --- autoconfig over verified HTTPS -----------------------------------------------------------


def test_autoconfig_file_is_read(world: DiscoveryLab) -> None:
    world.autoconfig(
        "example.test",
        [("smtp.example.test", 465, "SSL"), ("smtp.example.test", 587, "STARTTLS")],
    )
    found = world.discover("alice@example.test")
    assert [(c.host, c.port, c.security, c.source) for c in found] == [
        ("smtp.example.test", 465, "tls", "autoconfig"),
        ("smtp.example.test", 587, "starttls", "autoconfig"),
    ]
    assert found.best.username == "alice@example.test"  # type: ignore[union-attr]
    assert "autoconfig.example.test/mail/config-v1.1.xml" in world.requests


def test_well_known_location_is_the_fallback(world: DiscoveryLab) -> None:
    world.autoconfig("example.test", [("smtp.example.test", 465, "SSL")], where="well-known")
    found = world.discover("alice@example.test")
    assert found.best is not None and found.best.host == "smtp.example.test"
    assert any("autoconfig.example.test" in n for n in found.notes)  # the first URL failed


def test_plaintext_server_in_autoconfig_is_skipped(world: DiscoveryLab) -> None:
    world.autoconfig("example.test", [("smtp.example.test", 25, "plain")])
    found = world.discover("alice@example.test")
    assert found.candidates == ()
    assert any("without TLS: skipped" in n for n in found.notes)


def test_autoconfig_host_outside_the_domain_needs_confirmation(world: DiscoveryLab) -> None:
    world.autoconfig("example.test", [("smtp.hoster.test", 465, "SSL")])
    found = world.discover("alice@example.test")
    assert found.best is not None and found.best.confirm


def test_redirect_inside_the_domain_is_followed(world: DiscoveryLab) -> None:
    target = world.autoconfig(
        "example.test", [("smtp.example.test", 465, "SSL")], where="well-known"
    )
    world.autoconfig("example.test", page=Page(status=301, location=target))
    found = world.discover("alice@example.test")
    assert found.best is not None and found.best.host == "smtp.example.test"


HOSTILE = {
    "redirect to another domain": (
        Page(status=302, location="https://evil.test/mail/config-v1.1.xml"),
        "outside example.test: not followed",
    ),
    "XML bomb": (
        Page(
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
            b"<clientConfig>&lol2;</clientConfig>"
        ),
        "refused: it contains DTDForbidden",
    ),
    "huge file": (
        Page(autoconfig_xml("example.test", [("smtp.example.test", 465, "SSL")]) + b" " * 200_000),
        "sent more than 64 kB",
    ),
    "slow drip": (
        Page(autoconfig_xml("example.test", [("smtp.example.test", 465, "SSL")]), drip=0.2),
        "took longer than the timeout",
    ),
    "not XML": (Page(b"<html>oops"), "not well-formed XML"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_autoconfig_is_a_note(world: DiscoveryLab, case: str) -> None:
    page, note = HOSTILE[case]
    world.autoconfig("example.test", page=page)
    found = world.discover("alice@example.test", timeout=1.0)
    assert found.candidates == ()
    assert any(note in n for n in found.notes), found.notes


def test_certificate_for_another_name_is_refused(world: DiscoveryLab) -> None:
    world.autoconfig(
        "example.test", [("smtp.example.test", 465, "SSL")], certificate_for="evil.test"
    )
    found = world.discover("alice@example.test")
    assert found.candidates == ()
    assert any("did not verify" in n for n in found.notes)


def test_untrusted_ca_is_refused(world: DiscoveryLab) -> None:
    from smtp_magic.discovery import lookups as discoverdns

    world.autoconfig("example.test", [("smtp.example.test", 465, "SSL")])
    saved, discoverdns.HTTPS_PORT = discoverdns.HTTPS_PORT, world.https_port
    try:
        found = discover("alice@example.test", resolver=world.resolver(), timeout=1.0)
    finally:
        discoverdns.HTTPS_PORT = saved
    assert found.candidates == ()
    assert any("did not verify" in n for n in found.notes)


# --- then confirm: probe the best candidates, never sending credentials ------------------------


def test_probe_confirms_without_credentials(world: DiscoveryLab) -> None:
    with LabServer(ports={25: 0, 465: 0, 587: 0}) as lab:
        ports = lab.ports
        world.dns("_submissions._tcp.example.test", "SRV", f"0 1 {lab.ports[465]} localhost.")
        world.dns("_submission._tcp.example.test", "SRV", f"0 1 {lab.ports[587]} localhost.")
        found = world.discover("alice@example.test")
        reports = found.probe(timeout=3.0, cafile=lab.cafile)
    assert [r.host for r in reports] == ["localhost", "localhost"]
    first, second = reports[0].ports[0], reports[1].ports[0]
    assert (first.port, first.recommended) == (ports[465], "tls")
    assert (second.port, second.recommended) == (ports[587], "starttls")
    sent = [line.text for r in reports for p in r for line in p.transcript if line.direction == "C"]
    assert sent and not any(t.upper().startswith(("AUTH", "MAIL", "RCPT", "DATA")) for t in sent)


def test_a_host_found_for_a_providers_domain_is_known_by_that_provider(world: DiscoveryLab) -> None:
    """Refusals from a custom-named host are read in the terms of the provider discovery saw."""
    from smtp_magic.smtp import refusals

    world.dns("contoso.test", "MX", "0 contoso-test.mail.protection.outlook.com.")
    world.dns("_submission._tcp.contoso.test", "SRV", "0 1 587 smtp.contoso.test.")
    assert refusals.recognise("smtp.contoso.test") is None  # nothing learnt yet
    found = world.discover("alice@contoso.test")
    assert "smtp.contoso.test" in [c.host for c in found]
    assert refusals.recognise("smtp.contoso.test") == "microsoft365"
    assert refusals.recognise("smtp.elsewhere.test") is None
    # ...so Microsoft's refusal from that host is explained in Microsoft's terms.
    rule = refusals.match(
        535,
        "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.",
        refusals.recognise("smtp.contoso.test"),
    )
    assert rule is not None and "microsoft365" in rule.providers


def test_what_dns_and_autoconfig_say_is_shown_printable(world: DiscoveryLab) -> None:
    world.autoconfig("example.test", [("smtp.\u202eevil.example.test", 465, "SSL")])
    found = world.discover("alice@example.test")
    assert found.best is not None and "\u202e" in found.best.host  # kept as given...
    shown = str(found) + found._repr_html_()
    assert "\u202e" not in shown and "\\u202e" in shown  # ...but never shown raw
