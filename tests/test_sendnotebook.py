"""send_notebook and `smtp-magic send-notebook`: a real kernel runs tests/data/report-example.ipynb,
the report goes to the lab over STARTTLS, and the received bytes are checked."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import nbformat
import pytest

from smtp_magic.cli.notebook import parameter_value
from smtp_magic.errors import ComposeError, NotebookError, SettingsError
from smtp_magic.lab.server import LabServer
from smtp_magic.message.size import size_warnings
from smtp_magic.sendnotebook import inject_parameters, send_notebook

REPORT = Path(__file__).parent / "data" / "report-example.ipynb"
TO = "team@example.org"
CLI = [sys.executable, "-m", "smtp_magic.cli"]


def tree(part: EmailMessage) -> object:
    if part.is_multipart():
        return (part.get_content_type(), [tree(p) for p in part.iter_parts()])
    return part.get_content_type()


def received(lab: LabServer) -> EmailMessage:
    (item,) = lab.messages
    return item.message  # type: ignore[no-any-return]


def test_a_report_is_executed_rendered_and_received(clean_lab: LabServer) -> None:
    result = send_notebook(
        REPORT,
        to=TO,
        subject="Weekly sales, north",
        parameters={"rows": 4, "region": "north"},
        settings=clean_lab.settings(587),
        attach_notebook=True,
        attach_html=True,
    )
    assert result.sent and result.report is not None and result.report.delivered
    message = received(clean_lab)
    assert tree(message) == (
        "multipart/mixed",
        [
            (
                "multipart/alternative",
                ["text/plain", ("multipart/related", ["text/html", "image/png"])],
            ),
            "application/octet-stream",
            "text/html",
        ],
    )
    html = str(message.get_body(preferencelist=("html",)).get_content())  # type: ignore[union-attr]
    # Nothing carries meaning in a class or a <style> block: all of it is inline.
    assert "<style" not in html and "class=" not in html and "<script" not in html
    assert '<meta charset="utf-8">' in html
    assert "<h1" in html and "Weekly sales report" in html
    # The DataFrame (4 rows: the parameter took effect) and the Styler, with its formats.
    assert html.count("P003") == 2 and "P004" not in html
    negative = re.search(r'<td style="([^"]*)">-300.00 €</td>', html)
    assert negative and "color:#b00020" in negative[1] and "font-weight:bold" in negative[1]
    best = re.search(r'<td style="([^"]*)">625.00 €</td>', html)
    assert best and "background-color:#c8f0c8" in best[1]
    # The figure: a cid: image with alt text and an explicit size.
    image = re.search(r"<img [^>]*>", html)
    assert image and 'src="cid:' in image[0] and 'alt="Figure 1"' in image[0]
    size = re.search(r'width="(\d+)" height="(\d+)"', image[0])  # inline backend: tight bbox
    assert size and 500 < int(size[1]) <= 640 and 200 < int(size[2]) <= 320
    # Code cells without the tag, and the code itself, are not sent.
    assert "not sent" not in html and "plt.subplots" not in html
    text = str(message.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
    assert "   product  units  revenue\n0  P000         0   -300.0\n" in text
    assert "[Figure 1]" in text and "4 products, total revenue 312.50 €" in text
    attached = next(p for p in message.walk() if p.get_filename() == "report-example.ipynb")
    executed = nbformat.reads(attached.get_content().decode(), as_version=4)
    assert [c.metadata.get("tags") for c in executed.cells][:3] == [
        ["email"],
        ["parameters"],
        ["injected-parameters"],
    ]
    assert "smtp_magic:send_email" not in attached.get_content().decode()  # the probe is gone
    assert size_warnings(message) == []


@pytest.mark.parametrize(
    ("parameters", "reason"),
    [
        ({"skip_email": True}, "the notebook raised SkipEmail: no sales this week"),
        ({"quiet": True}, "the notebook set send_email = False"),
    ],
)
def test_a_notebook_can_decide_not_to_send(
    clean_lab: LabServer, parameters: dict[str, object], reason: str
) -> None:
    result = send_notebook(REPORT, to=TO, parameters=parameters, settings=clean_lab.settings(587))
    assert not result.sent and result.reason == reason
    assert str(result) == f"{REPORT}: nothing was sent ({reason})."
    assert clean_lab.messages == []


def test_a_failing_cell_is_named_and_nothing_is_sent(clean_lab: LabServer) -> None:
    with pytest.raises(NotebookError) as caught:
        send_notebook(REPORT, to=TO, parameters={"fail": True}, settings=clean_lab.settings(587))
    assert caught.value.cell == 4  # the injected parameters cell shifted it by one
    assert str(caught.value).startswith(
        "report-example.ipynb: cell 4 ('import matplotlib') raised RuntimeError: the sales "
        "database did not answer. Nothing was sent."
    )
    # The way out, in each front end's terms.
    assert "use send_on_error=True to send what ran" in str(caught.value)
    assert "use --send-on-error to send what ran" in caught.value.phrased("cli")
    assert clean_lab.messages == []


def test_send_on_error_sends_what_ran_and_says_it_is_incomplete(clean_lab: LabServer) -> None:
    result = send_notebook(
        REPORT,
        to=TO,
        parameters={"fail": True},
        settings=clean_lab.settings(587),
        send_on_error=True,
    )
    assert result.sent
    text = str(received(clean_lab).get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
    assert text.startswith(
        "This report is incomplete: report-example.ipynb: cell 4 ('import matplotlib') raised "
        "RuntimeError: the sales database did not answer.\n\n# Weekly sales report"
    )
    assert "P000" not in text  # the cells after the failure never ran


def test_no_prompt_free_password_fails_before_running(clean_lab: LabServer) -> None:
    settings = clean_lab.settings(587, password=None)
    start = time.monotonic()
    with pytest.raises(SettingsError) as caught:
        send_notebook(REPORT, to=TO, settings=settings)
    assert "cannot be prompted: set SMTP_PASSWORD" in str(caught.value)
    assert "The notebook was not run." in str(caught.value)
    assert time.monotonic() - start < 5  # no kernel was started (one takes seconds)


def test_parameters_are_injected_after_the_parameters_cell_as_literals() -> None:
    notebook = nbformat.read(REPORT, as_version=4)
    inject_parameters(notebook, {"region": "south's", "rows": 3, "limits": [1.5, None]})
    cell = notebook.cells[2]
    assert cell.metadata["tags"] == ["injected-parameters"]
    assert cell.source == '# Parameters\nregion = "south\'s"\nrows = 3\nlimits = [1.5, None]\n'
    with pytest.raises(SettingsError, match="is not a plain value"):
        inject_parameters(notebook, {"when": object()})
    with pytest.raises(SettingsError, match="not a Python identifier"):
        inject_parameters(notebook, {"1x": 1})
    assert [parameter_value(v) for v in ("3", "2.5", "True", "None", "north")] == [
        3,
        2.5,
        True,
        None,
        "north",
    ]


def test_the_command_line_sends_a_report(clean_lab: LabServer) -> None:
    executable = shutil.which("smtp-magic")
    command = [executable] if executable else [sys.executable, "-m", "smtp_magic.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMTP_")}
    env["SMTP_PASSWORD"] = clean_lab.password
    result = subprocess.run(
        [
            *command,
            "send-notebook",
            str(REPORT),
            "--to",
            TO,
            "--execute",
            "-p",
            "rows",
            "2",
            "--subject",
            "From cron",
            "--host",
            "127.0.0.1",
            "--port",
            str(clean_lab.ports[587]),
            "--security",
            "starttls",
            "--user",
            clean_lab.username,
            "--from",
            "reports@example.org",
            "--cafile",
            str(clean_lab.cafile),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{REPORT}: sent.\nSent:")
    assert clean_lab.password not in result.stdout + result.stderr
    message = received(clean_lab)
    assert message["Subject"] == "From cron" and "P001" in str(message)
    assert "P002" not in str(message.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]


def test_saved_outputs_are_sent_only_if_every_chosen_cell_ran(tmp_path: Path) -> None:
    with pytest.raises(ComposeError, match=r"cell 6 \('sales'\) has never been run"):
        send_notebook(REPORT, to=TO, execute=False, dry_run=True)
    executed = send_notebook(REPORT, to=TO, dry_run=True, parameters={"rows": 2}).notebook
    saved = tmp_path / "executed.ipynb"
    nbformat.write(executed, saved)
    result = send_notebook(saved, to=TO, execute=False, dry_run=True)
    assert not result.sent and result.reason == "dry run" and result.message is not None
    assert "P001" in str(result.message) and "P002" not in str(result.message)


def test_the_command_line_without_execute_refuses_parameters() -> None:
    result = subprocess.run(
        [*CLI, "send-notebook", str(REPORT), "--to", TO, "-p", "rows", "2", "--dry-run"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr == (
        "smtp-magic: SettingsError: -p parameters only take effect with --execute: add --execute\n"
    )
