"""probe() against the lab's three roles: what each port speaks, and what to use."""

from __future__ import annotations

import socket

import pytest

from smtp_magic import ProbeReport, SettingsError, probe
from smtp_magic.lab.server import LabServer


@pytest.fixture(scope="module")
def table(lab: LabServer) -> ProbeReport:
    ports = [lab.ports[role] for role in (25, 465, 587)]
    return probe("127.0.0.1", ports, cafile=lab.cafile, timeout=3, greeting_wait=0.5)


def test_port_25_role(lab: LabServer, table: ProbeReport) -> None:
    row = table[lab.ports[25]]
    assert row.reachable and row.speaks == "plaintext"
    assert row.greeting.startswith("lab.localhost")
    assert row.starttls
    assert row.auth_before_tls == () and row.auth_after_tls == ()
    assert row.recommended == "starttls"
    assert row.tls is not None and row.tls.certificate is not None
    assert row.tls.certificate.verified


def test_port_465_role(lab: LabServer, table: ProbeReport) -> None:
    row = table[lab.ports[465]]
    assert row.speaks == "tls"
    assert row.recommended == "tls"
    assert not row.starttls
    assert set(row.auth_after_tls) >= {"PLAIN", "LOGIN"}
    assert row.tls is not None and row.tls.version in ("TLSv1.2", "TLSv1.3")
    cert = row.tls.certificate
    assert cert is not None and cert.verified
    assert cert.subject == "localhost" and cert.issuer == "smtp_magic lab CA"
    assert cert.not_after is not None and cert.not_after.year == 3000


def test_port_587_role_offers_auth_only_after_tls(lab: LabServer, table: ProbeReport) -> None:
    row = table[lab.ports[587]]
    assert row.speaks == "plaintext" and row.starttls
    assert row.auth_before_tls == ()
    assert set(row.auth_after_tls) >= {"PLAIN", "LOGIN"}
    assert row.recommended == "starttls"


def test_probe_sends_no_credentials_or_mail(lab: LabServer, table: ProbeReport) -> None:
    for row in table:
        commands = [
            line.text.split()[0].upper() for line in row.transcript if line.direction == "C"
        ]
        assert set(commands) <= {"EHLO", "HELO", "STARTTLS", "QUIT"}, commands


def test_text_and_html_tables(lab: LabServer, table: ProbeReport) -> None:
    text = str(table)
    assert "STARTTLS" in text and "use security=" in text
    assert "lab.localhost smtp_magic-lab" in text  # the greetings
    for role in (25, 465, 587):
        assert str(lab.ports[role]) in text
    assert "<table>" in table._repr_html_()


def test_untrusted_certificate_is_described_not_hidden(lab: LabServer) -> None:
    report = probe("127.0.0.1", [lab.ports[465]], timeout=3, greeting_wait=0.5)
    row = report[lab.ports[465]]
    assert row.speaks == "tls"
    assert row.tls is not None and row.tls.certificate is not None
    assert not row.tls.certificate.verified
    assert row.tls.certificate.subject == "localhost"
    assert "cafile" in row.note
    assert "NOT verified" in str(report)


def test_closed_port_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    row = probe("127.0.0.1", [port], timeout=2)[port]
    assert not row.reachable
    assert row.recommended is None
    assert "nothing listening" in row.note


def test_bad_arguments() -> None:
    with pytest.raises(SettingsError):
        probe("127.0.0.1", [])
    with pytest.raises(SettingsError, match="not a TCP port"):
        probe("127.0.0.1", [70000])


# -- issue 11: arguments that used to end in a raw TypeError or OverflowError ----------------


def test_probe_ports_none_means_the_default_ports(lab: LabServer) -> None:
    # ports=None probes 25, 465 and 587 as the default does; nothing listens there on 127.0.0.1
    # in the test run (or something does: either way each row says so, no TypeError).
    report = probe("127.0.0.1", None, timeout=1, greeting_wait=0.2)
    assert [row.port for row in report] == [25, 465, 587]


def test_probe_one_port_as_a_number(lab: LabServer) -> None:
    report = probe("127.0.0.1", lab.ports[587], cafile=lab.cafile, timeout=3, greeting_wait=0.5)
    assert [row.port for row in report] == [lab.ports[587]]
    assert report[lab.ports[587]].recommended == "starttls"


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"ports": [[25]]}, "not a TCP port"),
        ({"ports": "587"}, "ports"),
        ({"ports": object()}, "ports"),
        ({"ports": [25], "timeout": 1e300}, "at most"),
        ({"ports": [25], "timeout": None}, "positive number"),
    ],
)
def test_probe_bad_arguments_are_settings_errors(kwargs: dict, reason: str) -> None:
    with pytest.raises(SettingsError, match=reason):
        probe("127.0.0.1", **kwargs)
