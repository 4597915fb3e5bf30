"""Terminal escapes from the network never reach a terminal or a notebook raw (issue 11, finding 14).

Hostile servers (tests/hostile.py) greet, advertise, refuse and present certificates with escape
sequences in them; a local client sends the lab an envelope full of them. What the CLI prints
(probe, send errors, serve), the reports' text and HTML, errors and transcripts must hold none.
"""

# ruff: noqa: F811  (the certs fixture, imported from tests/hostile.py)

from __future__ import annotations

import contextlib
import io
import os
import re
import socket
import subprocess
import sys
import time
from email.message import EmailMessage

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smtp_magic import RecipientsRejectedError, Settings, SMTPMagicError, probe, send
from smtp_magic.cli import main
from smtp_magic.lab.server import LabServer
from smtp_magic.report import format_transcript
from tests.hostile import HOST, AioServer, Certs, Dialog, certs, scripted  # noqa: F401

# ESC ] 0 ; title BEL sets the window title, ESC [ 2 J clears the screen, CSI (U+009B) is the
# one-character ESC [, U+202E reverses the text that follows, OSC 52 writes the clipboard.
EVIL = "\x1b]0;pwned\x07\x1b[2J\x9b31m\u202etxt.exe\x1b]52;c;ZXZpbA==\x07"
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def assert_clean(text: str, where: str = "") -> None:
    """``text`` has no control character but newline and tab, and no bidirectional override."""
    found = RAW.search(text)
    assert found is None, f"{where}: raw {found.group()!r} in {text!r}"


def message() -> EmailMessage:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "a@example.org", "b@example.org", "escapes"
    m.set_content("Hello.")
    return m


# -- the helper -----------------------------------------------------------------------------------


@given(st.text())
def test_printable_leaves_nothing_raw_and_is_idempotent(text: str) -> None:
    from smtp_magic.printable import printable

    shown = printable(text)
    assert shown.isprintable()
    assert printable(shown) == shown
    assert printable(text, keep="\n").replace("\n", "").isprintable()


def test_printable_keeps_ordinary_text() -> None:
    from smtp_magic.printable import printable

    plain = "250-smtp.example.org greets [192.0.2.1] ÄÖÜ 你好 ⟦setting:host⟧"
    assert printable(plain) is plain
    assert printable("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert printable("x\u202ey") == "x\\u202ey"


# -- a hostile server's greeting, EHLO, replies and certificate --------------------------------------


def test_probe_shows_a_hostile_greeting_and_ehlo_escaped(certs: Certs) -> None:
    dialog = Dialog(
        greeting=f"220 hostile.test {EVIL}",
        extensions=("PIPELINING", f"AUTH PLAIN {EVIL}", "STARTTLS"),
        tls=certs.server_context(),
    )
    with scripted(dialog) as server:
        out = io.StringIO()
        assert (
            main(
                [
                    "probe",
                    HOST,
                    "--port",
                    str(server.port),
                    "--cafile",
                    certs.cafile,
                    "--timeout",
                    "3",
                ],
                out=out,
            )
            == 0
        )
        report = probe(HOST, [server.port], cafile=certs.cafile, timeout=3)
    assert "pwned" in out.getvalue()  # the greeting is shown, escaped
    assert_clean(out.getvalue(), "smtp-magic probe")
    assert_clean(str(report), "str(ProbeReport)")
    assert_clean(report._repr_html_(), "ProbeReport HTML")
    assert_clean(format_transcript(report[server.port].transcript), "probe transcript")


def test_a_certificate_full_of_escapes_is_shown_escaped(certs: Certs) -> None:
    leaf = certs.ca.issue_cert("localhost", HOST, common_name=f"evil{EVIL}")
    with AioServer(tls_context=certs.server_context(leaf)) as server:
        report = probe(HOST, [server.port], cafile=certs.cafile, timeout=3)
    cert = report[server.port].tls.certificate  # type: ignore[union-attr]
    assert cert is not None and "evil" in cert.subject
    for text in (str(report), report._repr_html_(), str(cert)):
        assert_clean(text, "certificate")


def test_send_errors_show_a_hostile_reply_escaped(
    certs: Certs, capsys: pytest.CaptureFixture[str]
) -> None:
    dialog = Dialog(extensions=("PIPELINING",), replies={"RCPT": f"550 5.1.1 no such user {EVIL}"})
    with scripted(dialog) as server:
        settings = Settings(HOST, port=server.port, security="plain", timeout=3)
        with pytest.raises(RecipientsRejectedError) as caught:
            send(message(), settings)
        code = main(
            [
                *("send", "--to", "b@example.org", "--subject", "x", "--body", "x"),
                *("--from", "a@example.org", "--host", HOST, "--port", str(server.port)),
                *("--security", "plain", "--timeout", "3"),
            ]
        )
    err = capsys.readouterr().err
    assert code == 1 and "no such user" in err
    assert_clean(err, "smtp-magic send")
    error = caught.value
    for text in (str(error), repr(error), *error._render_traceback_(), error.phrased("cli")):
        assert_clean(text, "the error")
    assert_clean(format_transcript(error.transcript), "the error's transcript")


def test_a_report_shows_refusals_and_transcript_escaped() -> None:
    dialog = Dialog(extensions=("PIPELINING",))
    refused = {"RCPT": None}

    def rcpt(peer, line):  # type: ignore[no-untyped-def]
        ok = "good@" in line
        peer.reply("250 2.1.5 OK" if ok else f"550 5.1.1 {EVIL}")

    refused["RCPT"] = rcpt
    dialog.replies.update(refused)  # type: ignore[arg-type]
    dialog.after_data = f"250 2.0.0 queued {EVIL}"
    m = message()
    del m["To"]
    m["To"] = "good@example.org, bad@example.org"
    with scripted(dialog) as server:
        report = send(m, Settings(HOST, port=server.port, security="plain", timeout=3))
    assert report.refused and report.accepted == ("good@example.org",)
    for text in (str(report), report._repr_html_(), format_transcript(report.transcript)):
        assert_clean(text, "SendReport")


def test_an_error_message_is_printable_whoever_built_it() -> None:
    error = SMTPMagicError(f"the server said {EVIL}\nand then more")
    for text in (str(error), repr(error), error.message, *error.args, error.phrased("cli")):
        assert_clean(text)
    assert "\n" in str(error)


# -- a local client's envelope, as `smtp-magic serve` and %smtp_lab messages show it ------------------


def _talk(port: int, lines: list[bytes]) -> None:
    with socket.create_connection((HOST, port), 5) as sock:
        sock.settimeout(5)
        reader = sock.makefile("rb")
        reader.readline()  # greeting
        for line in lines:
            sock.sendall(line + b"\r\n")
            reply = reader.readline()
            while reply[3:4] == b"-":
                reply = reader.readline()
            if line == b"DATA":
                assert reply.startswith(b"354"), reply


# aiosmtpd takes a raw ESC in a quoted local part, and C1 controls and bidirectional overrides
# in SMTPUTF8 addresses.
ENVELOPE = [
    b"EHLO client",
    b'MAIL FROM:<"a\\\x1b]0;pwned\x07\\\x1b[2J"@example.org> SMTPUTF8',
    "RCPT TO:<b\x9b31m\u202etxt.exe@example.org>".encode(),
    b"DATA",
    b"Subject: hi \x1b[31mred\r\n\r\nHello.\r\n.",
    b"QUIT",
]


def test_serve_prints_a_clients_envelope_escaped(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMTP_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "smtp_magic.cli",
            "serve",
            "--seconds",
            "6",
            "--directory",
            tmp_path,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert process.stdout is not None
        port = None
        deadline = time.monotonic() + 20
        while port is None and time.monotonic() < deadline:
            line = process.stdout.readline().decode()
            found = re.search(r"plays port 25\s+on 127\.0\.0\.1:(\d+)", line)
            port = int(found.group(1)) if found else None
        assert port is not None
        _talk(port, ENVELOPE)
        out, err = process.communicate(timeout=30)
    finally:
        with contextlib.suppress(OSError):
            process.kill()
    text = out.decode("utf-8")
    assert "received on the 25 role" in text, (text, err)
    assert_clean(text, "smtp-magic serve")


def test_the_lab_mailbox_shows_a_clients_envelope_escaped(clean_lab: LabServer) -> None:
    from smtp_magic.notebook.display import LabMailbox

    _talk(clean_lab.ports[25], ENVELOPE)
    mailbox = LabMailbox(clean_lab.wait_for_messages(1))
    assert "pwned" in repr(mailbox)
    assert_clean(repr(mailbox), "%smtp_lab messages")
    assert_clean(mailbox._repr_html_(), "%smtp_lab messages, HTML")
