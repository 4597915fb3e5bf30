"""The ladder diagram: well-formed SVG, one arrow per step, TLS where the transcript says, no secret.

Transcripts come from real sends to the lab over loopback TCP and TLS. The last test opens a
report with its diagram in headless Chromium and stores a screenshot in test-artifacts/.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from smtp_magic import SMTPMagicError, compose, probe, send
from smtp_magic.diagram import ladder, steps
from smtp_magic.lab.server import LabServer
from smtp_magic.report import SendReport, TranscriptLine

SVG = "{http://www.w3.org/2000/svg}"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def _message(sender: str | None) -> object:
    return compose(to="student@example.org", subject="Diagram", body="Hello.", sender=sender)


def _arrows(svg: str) -> list[ET.Element]:
    root = ET.fromstring(svg)
    return [g for g in root.iter(f"{SVG}g") if g.get("class", "").startswith("arrow")]


def _expected_arrows(transcript: tuple[TranscriptLine, ...]) -> list[bool]:
    """One arrow per command and per reply (a reply ends at a line without "NNN-"), and its TLS flag."""
    flags = []
    for line in transcript:
        if line.direction == "C" or (line.direction == "S" and not re.match(r"^\d{3}-", line.text)):
            flags.append(line.encrypted)
    return flags


def _badges(svg: str) -> list[bool]:
    badges = []
    for group in _arrows(svg):
        texts = [t.text for t in group.iter(f"{SVG}text")]
        assert texts[-1] in ("TLS", "plain")
        badges.append(texts[-1] == "TLS")
    return badges


@pytest.mark.parametrize(("role", "security"), [(587, "starttls"), (465, "tls"), (25, "plain")])
def test_one_arrow_per_step_and_tls_where_the_transcript_says(
    clean_lab: LabServer, role: int, security: str
) -> None:
    settings = clean_lab.settings(role, security=security)
    report = send(_message(settings.sender), settings)  # type: ignore[arg-type]
    diagram = report.diagram()
    root = ET.fromstring(diagram.svg)  # well formed, or this raises
    assert root.tag == f"{SVG}svg"
    assert root[0].tag == f"{SVG}title" and "SMTP conversation" in (root[0].text or "")
    assert root[1].tag == f"{SVG}desc"
    assert _badges(diagram.svg) == _expected_arrows(report.transcript)
    bands = [g for g in root.iter(f"{SVG}g") if g.get("class") == "tls"]
    if security == "plain":
        assert not bands and not any(_badges(diagram.svg))
    else:
        assert report.tls is not None
        (band,) = bands
        label = " ".join(t.text or "" for t in band.iter(f"{SVG}text"))
        assert report.tls.version in label and report.tls.cipher in label
    # every step can be read in order by a screen reader
    titles = [g.find(f"{SVG}title") for g in root.iter(f"{SVG}g") if g.get("role") == "listitem"]
    assert titles and all(t is not None and (t.text or "").startswith("Step ") for t in titles)
    assert diagram._repr_svg_() == diagram.svg
    assert diagram.svg in report._repr_html_()
    assert "<details><summary>SMTP transcript" in report._repr_html_()


def test_multi_line_replies_fold_into_one_step() -> None:
    transcript = [
        TranscriptLine("C", "EHLO x"),
        TranscriptLine("S", "250-lab.localhost"),
        TranscriptLine("S", "250-STARTTLS"),
        TranscriptLine("S", "250 HELP"),
        TranscriptLine("C", "QUIT"),
        TranscriptLine("S", "221 Bye"),
    ]
    rows = steps(transcript)
    assert [(r.kind, r.text) for r in rows] == [
        ("command", "EHLO x"),
        ("reply", "250-lab.localhost"),
        ("command", "QUIT"),
        ("reply", "221 Bye"),
    ]
    assert rows[1].detail == "STARTTLS, HELP"
    assert len(_arrows(ladder(transcript).svg)) == 4


def test_a_wrong_password_never_reaches_the_picture(clean_lab: LabServer) -> None:
    secret = "Diagram-Secret-7f3a9"
    settings = clean_lab.settings(587, password=secret)
    with pytest.raises(SMTPMagicError) as caught:
        send(_message(settings.sender), settings)  # type: ignore[arg-type]
    error = caught.value
    diagram = error.diagram()
    assert diagram is not None
    encoded = base64.b64encode(f"\0{settings.username}\0{secret}".encode()).decode()
    for text in (diagram.svg, str(diagram), error._repr_html_()):
        assert secret not in text and encoded not in text
        assert base64.b64encode(secret.encode()).decode() not in text
    # the refusal (535) is the failed step, in red, with its diagnosis under it
    failed = [r for r in diagram.rows if r.failed]
    assert any(r.kind == "reply" and r.text.startswith("535") for r in failed)
    assert "#cf222e" in diagram.svg


def test_implicit_tls_against_a_starttls_port_fails_in_the_handshake(lab: LabServer) -> None:
    settings = dataclasses.replace(lab.settings(587), security="tls")
    with pytest.raises(SMTPMagicError) as caught:
        send(_message(settings.sender), settings)  # type: ignore[arg-type]
    diagram = caught.value.diagram()
    assert diagram is not None
    root = ET.fromstring(diagram.svg)
    (band,) = [g for g in root.iter(f"{SVG}g") if g.get("class") == "tls"]
    assert "TLS handshake failed" in "".join(band.itertext())
    said = " ".join(diagram.svg.split())
    assert "answered in plaintext SMTP" in said
    assert not _arrows(diagram.svg)  # nothing was said: TLS failed first


def test_line_breaks_do_not_depend_on_the_port_number() -> None:
    # Stored notebook outputs are compared with the port sanitised: the layout must not move.
    def picture(port: int) -> str:
        message = (
            f"127.0.0.1:{port} answered in plaintext SMTP, so it expects STARTTLS, not TLS from "
            "the first byte. Use security='starttls' (or 'auto')."
        )
        lines = [TranscriptLine("*", f"connected to 127.0.0.1:{port}")]
        return ladder(lines, failed_phase="tls", diagnosis=message).svg

    assert re.sub(r"\d+", "N", picture(8587)) == re.sub(r"\d+", "N", picture(40483))


def test_save_writes_a_standalone_svg(tmp_path: Path) -> None:
    diagram = ladder([TranscriptLine("C", "QUIT"), TranscriptLine("S", "221 Bye")])
    path = diagram.save(tmp_path / "conversation.svg")
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    assert "1. client to server, in plaintext: QUIT" in str(diagram)


def test_probe_report_shows_each_conversation(lab: LabServer) -> None:
    table = probe("127.0.0.1", [lab.ports[587]], cafile=lab.cafile)
    diagram = table.diagram()
    assert len(_arrows(diagram.svg)) == len(_expected_arrows(table.ports[0].transcript))
    assert diagram.svg in table._repr_html_()


@pytest.mark.browser
def test_a_report_with_its_diagram_in_chromium(clean_lab: LabServer, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    settings = clean_lab.settings(587)
    report: SendReport = send(_message(settings.sender), settings)  # type: ignore[arg-type]
    page_file = tmp_path / "report.html"
    page_file.write_text(f"<!DOCTYPE html><html><body>{report._repr_html_()}</body></html>")
    with pytest.raises(SMTPMagicError) as caught:
        send(_message(settings.sender), dataclasses.replace(settings, security="tls"))  # type: ignore[arg-type]
    error_file = tmp_path / "error.html"
    error_file.write_text(f"<!DOCTYPE html><html><body>{caught.value._repr_html_()}</body></html>")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"]
        )
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            page.goto(page_file.as_uri())
            box = page.locator("svg").bounding_box()
            assert box is not None and box["height"] > 300  # drawn, not an empty element
            # the accessible name comes from the SVG's <title>
            assert "SMTP conversation" in (page.locator("svg > title").text_content() or "")
            page.screenshot(path=str(ARTIFACTS / "report-diagram.png"), full_page=True)
            page.goto(error_file.as_uri())
            # the failed step is drawn: a red band with its words, not an empty picture
            band = page.locator("svg g.tls text").first
            assert band.text_content() == "✗ TLS handshake failed"
            page.screenshot(path=str(ARTIFACTS / "error-diagram.png"), full_page=True)
        finally:
            browser.close()
    assert (ARTIFACTS / "report-diagram.png").stat().st_size > 10_000


def test_a_raised_error_shows_its_diagram_in_ipython(lab: LabServer) -> None:
    import sys

    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output
    from traitlets.config import Config

    shared = InteractiveShell.initialized()
    main = sys.modules["__main__"]
    config = Config()
    config.HistoryAccessor.enabled = False
    shell = InteractiveShell.instance(config=config)
    formatter = shell.display_formatter
    saved = formatter.active_types
    formatter.active_types = formatter.format_types
    try:
        shell.run_line_magic("load_ext", "smtp_magic")
        shell.user_ns["settings"] = dataclasses.replace(lab.settings(587), security="tls")
        shell.user_ns["message"] = _message(lab.username and "demo@lab.localhost")
        with capture_output() as captured:
            result = shell.run_cell("from smtp_magic import send\nsend(message, settings)")
        assert isinstance(result.error_in_exec, SMTPMagicError)
        (shown,) = [o for o in captured.outputs if "text/html" in o.data]
        assert (
            "<svg" in shown.data["text/html"] and "TLS handshake failed" in shown.data["text/html"]
        )
        error = result.error_in_exec
        # what IPython shows as the error output: the one line, no traceback
        assert shell.CustomTB(type(error), error, None) == error._render_traceback_()
        shell.run_line_magic("unload_ext", "smtp_magic")
        assert shell.custom_exceptions == ()
    finally:
        formatter.active_types = saved
        if not shared:
            InteractiveShell.clear_instance()
            sys.modules["__main__"] = main


def test_show_data_puts_the_message_in_the_transcript_and_one_arrow_in_the_picture(
    clean_lab: LabServer,
) -> None:
    settings = clean_lab.settings(25, security="plain")
    message = compose(
        to="student@example.org", subject="Look for me", body=".hidden dot\nHello.", sender=None
    )
    plain = send(message, settings)
    shown = send(message, settings, show_data=True)
    texts = [line.text for line in shown.transcript if line.direction == "C"]
    assert "Subject: Look for me" in texts
    assert "..hidden dot" in texts  # dot-stuffed, as it crossed the network
    assert texts[texts.index("QUIT") - 1] == "."
    assert not any(t.startswith("<message data") for t in texts)
    # the picture folds the data into one arrow: as many arrows as without show_data
    assert len(_arrows(shown.diagram().svg)) == len(_arrows(plain.diagram().svg))
    (data,) = [r for r in shown.diagram().rows if r.text.startswith("<message data")]
    assert data.detail == "Subject: Look for me"


def test_the_form_shows_the_failed_conversation_as_a_picture(lab: LabServer) -> None:
    import ipywidgets as W

    from smtp_magic.notebook.form import SendMailForm

    form = SendMailForm(dataclasses.replace(lab.settings(587), security="tls"), namespace={})
    try:
        form.to.value = "reader@example.org"
        form.subject.value = "Diagram"
        form.body.value = "Hello."
        form.send_button.click()
        with pytest.raises(SMTPMagicError):
            form.last.result(timeout=30)
        status = form.status.value
        assert "<svg" in status and "TLS handshake failed" in status
        # the diagnosis under the picture speaks of the form's Security field, as the status does
        picture = ET.fromstring(status[status.index("<svg") : status.index("</svg>") + 6])
        said = " ".join("".join(t.itertext()) for t in picture.iter(f"{SVG}text"))
        assert "security='starttls'" not in said
        assert lab.password not in status
    finally:
        form.close()
        W.Widget.close_all()
