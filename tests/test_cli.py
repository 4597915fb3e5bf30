"""The smtp-magic command, run as a real subprocess and in process."""

from __future__ import annotations

import io
import os
import shlex
import smtplib
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

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
    assert "SecurityMismatchError" in err and "Use --security starttls (or --security auto)" in err
    assert "security='" not in err
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


# --- the first hour (issue 17): the real executable, as a newcomer runs it ----------------------

_EXE = str(Path(sys.executable).with_name("smtp-magic"))


def _run(argv: list[str], lab_env: dict[str, str] | None = None, **kwargs: Any) -> Any:
    """Run the installed ``smtp-magic`` without a controlling terminal and without SMTP_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMTP_")}
    env.update(lab_env or {})
    return subprocess.run(
        [_EXE, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        start_new_session=True,  # no controlling terminal: getpass cannot open /dev/tty
        **kwargs,
    )


def _lab_env(lab: LabServer) -> dict[str, str]:
    return {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(lab.ports[587]),
        "SMTP_CAFILE": lab.cafile,
        "SMTP_FROM": "cli@example.org",
    }


def test_demo_into_head_ends_quietly() -> None:
    result = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {shlex.quote(_EXE)} demo | head -3"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert len(result.stdout.splitlines()) == 3
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr
    assert result.stderr == ""


def test_stdin_body_with_user_and_no_password_says_what_works(clean_lab: LabServer) -> None:
    result = _run(
        ["send", "--to", "bob@example.org", "--subject", "x", "--user", clean_lab.username],
        _lab_env(clean_lab),
        input="The body, from stdin.",
    )
    assert result.returncode == 1
    err = result.stderr
    assert "no password prompt can appear" in err
    assert "SMTP_PASSWORD" in err and "--password-stdin" in err and "--body-file" in err
    assert f"keyring set smtp_magic/127.0.0.1 {clean_lab.username}" in err
    assert "answer the password prompt" not in err and "Traceback" not in err
    assert clean_lab.messages == []


def test_password_stdin_with_body_file_sends(clean_lab: LabServer, tmp_path: Path) -> None:
    body = tmp_path / "body.md"
    body.write_text("Body from a *file*.", encoding="utf-8")
    argv = ["send", "--to", "bob@example.org", "--subject", "pw", "--user", clean_lab.username]
    result = _run(
        [*argv, "--body-file", str(body), "--password-stdin"],
        _lab_env(clean_lab),
        input=clean_lab.password + "\n",
    )
    assert result.returncode == 0, result.stderr
    received = clean_lab.wait_for_messages(1)[0]
    assert received.authenticated and received.message["Subject"] == "pw"
    assert clean_lab.password not in result.stdout + result.stderr


def test_password_stdin_refuses_a_body_from_stdin_too(clean_lab: LabServer) -> None:
    argv = ["send", "--to", "bob@example.org", "--subject", "pw", "--user", clean_lab.username]
    result = _run([*argv, "--password-stdin"], _lab_env(clean_lab), input="secret\nbody\n")
    assert result.returncode == 1
    assert "--body TEXT or --body-file PATH" in result.stderr
    assert clean_lab.messages == []


def test_probe_puts_long_notes_under_the_table(lab: LabServer) -> None:
    # Without the lab's CA the 465 role's certificate does not verify: a long note.
    result = _run(["probe", "127.0.0.1", "--port", str(lab.ports[465]), "--timeout", "5"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    table = lines[1 : lines.index("notes:")]
    assert table and all(len(line) <= 100 for line in table), table
    assert "--security" in table[0] and "use security=" not in table[0]
    notes = lines[lines.index("notes:") + 1 :]
    assert notes[0].startswith(f"  {lab.ports[465]}: certificate problem")
    assert all(len(line) <= 100 for line in notes)


def test_starttls_against_the_implicit_tls_role_is_diagnosed_without_waiting(
    clean_lab: LabServer,
) -> None:
    argv = ["send", "--to", "bob@example.org", "--subject", "x", "--body", "x"]
    argv += ["--port", str(clean_lab.ports[465]), "--security", "starttls", "--timeout", "30"]
    result = _run(argv, _lab_env(clean_lab))
    assert result.returncode == 1
    # The verdict comes after the greeting wait (1.5 s) and a TLS check, not after the 30 s
    # timeout or the lab's own 5 s handshake timeout.
    assert "sent no SMTP greeting within 1.5 s, and a second connection completes a TLS" in (
        result.stderr
    )
    assert "Use --security tls (or --security auto)." in result.stderr
    assert clean_lab.messages == []


def test_serve_reports_a_client_that_rejects_the_ca_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMTP_")}
    with subprocess.Popen(
        [_EXE, "serve", "--seconds", "4", "--directory", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as server:
        assert server.stdout is not None and server.stderr is not None
        port = 0
        for line in server.stdout:
            if "plays port 587 on" in line:
                port = int(line.rsplit(":", 1)[1])
            if "CA certificate" in line:
                break
        # A client that does not trust the lab's CA: the most common student mistake.
        with (
            smtplib.SMTP("127.0.0.1", port, timeout=10) as client,
            pytest.raises(ssl.SSLCertVerificationError),
        ):
            client.starttls(context=ssl.create_default_context())
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "rejected the lab's certificate (unknown CA): give it the lab's CA file," in lines[0]
    assert str(tmp_path / "lab-ca.pem") in lines[0]


def test_send_with_non_utf8_stdin_is_explained(clean_lab: LabServer) -> None:
    """Latin-1 bytes on stdin: a clear message, not a UnicodeDecodeError or UnicodeEncodeError."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMTP_")}
    settings = clean_lab.settings(25)
    for locale in ("C.UTF-8", "C"):  # surrogateescape'd stdin under both
        result = subprocess.run(
            [
                *(sys.executable, "-m", "smtp_magic.cli", "send", "--to", "bob@example.org"),
                *("--subject", "latin-1", "--from", "a@example.org", "--host", "127.0.0.1"),
                *("--port", str(settings.port), "--cafile", clean_lab.cafile),
            ],
            input="caf\u00e9 cr\u00e8me\n".encode("latin-1"),
            capture_output=True,
            timeout=30,
            env={**env, "LC_ALL": locale, "PYTHONUTF8": "1" if locale == "C.UTF-8" else "0"},
        )
        err = result.stderr.decode("utf-8", "replace")
        assert result.returncode == 1, err
        assert "Traceback" not in err and "UTF-8" in err, err
    assert clean_lab.messages == []


def test_send_with_a_non_utf8_body_file_is_explained(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = tmp_path / "body.txt"
    body.write_bytes("caf\u00e9\n".encode("latin-1"))
    code = main(
        ["send", "--to", "bob@example.org", "--subject", "x", "--body-file", str(body), "--dry-run"]
    )
    err = capsys.readouterr().err
    assert code == 1 and "is not UTF-8 text (byte 0xe9 at position 3)" in err, err
