"""The certificate and TLS card: chain, days to expiry, which name matched, SNI, AUTH before TLS.

Real TLS over loopback: the session lab (trustme CA) and aiosmtpd servers from tests/hostile.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from aiosmtpd.smtp import AuthResult

from smtp_magic import compose, probe, send
from smtp_magic.lab.server import LabServer
from smtp_magic.report import TranscriptLine
from smtp_magic.smtp.tls import _matching_name
from smtp_magic.tlsinfo import ChainLink, auth_offered_before_tls, card_html, card_rows
from tests.hostile import AioServer, Certs, certs  # noqa: F401  (certs is a fixture)


def _send(settings):  # type: ignore[no-untyped-def]
    message = compose(to="student@example.org", subject="Card", body="Hi.", sender=settings.sender)
    return send(message, settings)


def test_by_host_name_sni_is_sent_and_the_dns_name_matched(lab: LabServer) -> None:
    report = _send(dataclasses.replace(lab.settings(587), host="localhost"))
    cert = report.tls.certificate
    assert cert.sni == "localhost"
    assert cert.checked_name == "localhost"
    assert cert.matched_name == "DNS localhost"
    # the chain runs from the lab's leaf to its CA, which signed itself
    assert [(link.subject, link.issuer) for link in cert.chain] == [
        ("localhost", "smtp_magic lab CA"),
        ("smtp_magic lab CA", "smtp_magic lab CA"),
    ]
    assert all(link.days_left() > 300_000 for link in cert.chain)  # trustme: year 3000
    rows = dict(card_rows(report.tls))
    assert rows["SNI sent"] == "localhost"
    assert rows["Name"] == "localhost matched DNS localhost"
    assert rows["TLS"] == f"{report.tls.version}, cipher {report.tls.cipher}"
    html = report._repr_html_()
    assert "Certificate and TLS" in html and "matched DNS localhost" in html
    assert "Warning" not in html  # the lab offers AUTH only inside TLS


def test_by_ip_address_no_sni_and_the_ip_entry_matched(lab: LabServer) -> None:
    report = _send(lab.settings(465))
    cert = report.tls.certificate
    assert cert.sni is None
    assert cert.matched_name == "IP Address 127.0.0.1"
    assert "never sent as SNI" in dict(card_rows(report.tls))["SNI sent"]


def test_the_probe_prints_each_port_s_card(lab: LabServer) -> None:
    """`smtp-magic probe` in a terminal: SNI, the name matched and the chain, not only in HTML."""
    import io

    from smtp_magic.cli import main

    out = io.StringIO()
    port = lab.ports[465]
    code = main(["probe", "127.0.0.1", "--port", str(port), "--cafile", lab.cafile], out=out)
    text = out.getvalue()
    assert code == 0, text
    card = text[text.index(f"port {port}, certificate and TLS:") :].splitlines()
    assert card[1].split() == ["TLS", *card_rows_tls(card[1])]
    assert any(line.split()[:2] == ["SNI", "sent"] and "never sent as SNI" in line for line in card)
    assert any("Name" in line and "127.0.0.1 matched IP Address 127.0.0.1" in line for line in card)
    assert any(line.split()[:2] == ["Certificate", "verified"] for line in card)
    chain = [line.strip() for line in card if " 0. " in line or line.strip().startswith("1. ")]
    assert chain[0].startswith("Chain") and "0. localhost, issued by smtp_magic lab CA" in chain[0]
    assert chain[1].startswith("1. smtp_magic lab CA, issued by smtp_magic lab CA")


def card_rows_tls(line: str) -> list[str]:
    """The words after "TLS" on the card's first row: the version, "cipher" and its name."""
    words = line.split()[1:]
    assert words[0].startswith("TLSv1.") and words[1] == "cipher"
    return words


def test_auth_offered_before_tls_is_warned_about(certs: Certs) -> None:  # noqa: F811
    def accept(*args: object) -> AuthResult:  # never called: nothing logs in
        raise AssertionError("no login expected")

    with AioServer(
        tls_context=certs.server_context(), authenticator=accept, auth_require_tls=False
    ) as server:
        table = probe("127.0.0.1", [server.port], cafile=certs.cafile)
        settings_report = _send(_plain_settings(server.port, certs.cafile))
    port = table.ports[0]
    assert port.auth_before_tls  # aiosmtpd advertises AUTH in plaintext here
    html = table._repr_html_()
    assert "offered AUTH" in html and "before TLS" in html
    text = str(table)  # what `smtp-magic probe` prints: the same card, as text
    assert f"port {server.port}, certificate and TLS:" in text
    warning = text[text.index("  Warning") :]
    assert "offered AUTH" in " ".join(warning.split()) and "smtp_magic never does" in text
    warned = warning.split("\n  Name")[0].split("\n  TLS")[0].splitlines()
    assert len(warned) > 1 and all(len(line) <= 100 for line in warned)  # prose, wrapped
    assert auth_offered_before_tls(settings_report.transcript) == port.auth_before_tls
    assert "offered AUTH" in settings_report._repr_html_()
    assert server.verbs().count("AUTH") == 0


def _plain_settings(port: int, cafile: str):  # type: ignore[no-untyped-def]
    from smtp_magic import Settings

    return Settings("127.0.0.1", port=port, security="starttls", cafile=cafile, sender="a@b.org")


def test_auth_before_tls_read_from_a_transcript() -> None:
    lines = [
        TranscriptLine("S", "250-hostile.test"),
        TranscriptLine("S", "250-AUTH LOGIN PLAIN"),
        TranscriptLine("S", "250 STARTTLS"),
        TranscriptLine("S", "250 AUTH XOAUTH2", encrypted=True),
    ]
    assert auth_offered_before_tls(lines) == ("LOGIN", "PLAIN")
    assert auth_offered_before_tls(lines[3:]) == ()


def test_names_match_as_rfc_6125_says() -> None:
    sans = [("DNS", "*.example.org"), ("DNS", "mail.example.net"), ("IP Address", "::1")]
    assert _matching_name("smtp.example.org", sans) == "DNS *.example.org"
    assert _matching_name("a.b.example.org", sans) is None  # one label only
    assert _matching_name("example.org", sans) is None
    assert _matching_name("MAIL.example.net.", sans) == "DNS mail.example.net"
    assert _matching_name("0:0:0:0:0:0:0:1", sans) == "IP Address ::1"
    assert _matching_name("127.0.0.1", sans) is None


def test_expiry_is_counted_in_days() -> None:
    now = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
    soon = ChainLink("mail.example.org", "Example CA", now + dt.timedelta(days=12, hours=1))
    gone = ChainLink("mail.example.org", "Example CA", now - dt.timedelta(days=3))
    assert soon.describe(now).endswith("expires 2026-12-12 (in 12 days)")
    assert "EXPIRED 3 days ago" in gone.describe(now)


def test_no_tls_says_so() -> None:
    assert card_rows(None) == [("TLS", "none: the conversation was not encrypted")]
    assert "not encrypted" in card_html(None)
