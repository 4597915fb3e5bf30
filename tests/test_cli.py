"""The smtp-magic command, run as a real subprocess and in process."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from smtp_magic.cli import main
from smtp_magic.lab.server import LabServer


def test_demo_shows_three_sends_and_two_diagnoses() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMTP_")}
    result = subprocess.run(
        [sys.executable, "-m", "smtp_magic.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    lines = [line.split() for line in out.splitlines() if line.strip()[:3] in ("25 ", "465", "587")]
    rows = {line[0]: line for line in lines if len(line) > 4}
    assert rows["25"][2] == "starttls" and rows["465"][2] == "tls" and rows["587"][2] == "starttls"
    assert all("yes" in row for row in rows.values())
    assert out.count("SecurityMismatchError") == 2
    assert "expects STARTTLS" in out and "expects implicit TLS" in out
    assert "lab-demo-pass" not in out


@pytest.mark.parametrize("command", [[], ["demo"], ["serve"], ["probe"], ["send"]])
def test_help_everywhere(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "smtp_magic.cli", *command, "--help"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0
    assert "usage: smtp-magic" in result.stdout


def test_probe_command(lab: LabServer) -> None:
    out = io.StringIO()
    code = main(
        ["probe", "127.0.0.1", "--port", str(lab.ports[587]), "--cafile", lab.cafile], out=out
    )
    assert code == 0
    assert "starttls" in out.getvalue()


def test_send_command_reads_stdin_and_env(
    clean_lab: LabServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = clean_lab.settings(587)
    monkeypatch.setenv("SMTP_HOST", settings.host)
    monkeypatch.setenv("SMTP_PORT", str(settings.port))
    monkeypatch.setenv("SMTP_USERNAME", settings.username or "")
    monkeypatch.setenv("SMTP_PASSWORD", settings.password or "")
    monkeypatch.setenv("SMTP_CAFILE", settings.cafile or "")
    monkeypatch.setenv("SMTP_FROM", "cli@example.org")
    monkeypatch.setattr("sys.stdin", io.StringIO("Body from *stdin*."))
    out = io.StringIO()
    code = main(["send", "--to", "bob@example.org", "--subject", "From the CLI"], out=out)
    assert code == 0
    received = clean_lab.wait_for_messages(1)[0]
    assert received.message["Subject"] == "From the CLI"
    assert received.authenticated and received.tls
    assert "Body from *stdin*." in received.message.get_body(("plain",)).get_content()
    assert settings.password not in out.getvalue()


def test_send_failure_prints_the_diagnosis(
    clean_lab: LabServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "send",
            "--to",
            "bob@example.org",
            "--subject",
            "x",
            "--body",
            "x",
            "--from",
            "a@example.org",
            "--host",
            "127.0.0.1",
            "--port",
            str(clean_lab.ports[587]),
            "--security",
            "tls",
            "--cafile",
            clean_lab.cafile,
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "SecurityMismatchError" in err and "security='starttls'" in err
    assert "Traceback" not in err
    assert clean_lab.messages == []


def test_send_dry_run_sends_nothing(clean_lab: LabServer) -> None:
    out = io.StringIO()
    code = main(
        ["send", "--to", "bob@example.org", "--subject", "dry", "--body", "x", "--dry-run"],
        out=out,
    )
    assert code == 0
    assert "nothing was sent" in out.getvalue()
    assert "dry" in out.getvalue()
    assert sum(clean_lab.connections.values()) == 0


def test_serve_prints_ports_and_messages(tmp_path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "smtp_magic.cli",
            "serve",
            "--seconds",
            "1",
            "--directory",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "plays port 465" in result.stdout
    assert str(tmp_path) in result.stdout
    assert (tmp_path / "lab-ca.pem").exists()
