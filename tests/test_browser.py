"""SendMailForm in a real browser: JupyterLab serves a notebook, headless Chromium fills and sends it.

The LabServer runs in this test process and the notebook's kernel reaches it over TCP, so the
assertions see what a person at the page would cause: the message arrives, the page says so.
A screenshot of the form is saved to ``test-artifacts/form.png`` for a person to look at.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from smtp_magic.lab.server import DEMO_PASSWORD, DEMO_SENDER, DEMO_USERNAME, LabServer

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
SERVER_START = 45.0  # seconds for JupyterLab to answer
PAGE_WAIT = 30_000  # milliseconds for the page, the kernel and the send
RUN_WAIT = 15_000  # milliseconds for the form to appear after Run All Cells

# The cell the user runs: the password is not in it; the person types it into the page.
FORM_CELL = """\
from smtp_magic.settings import Settings
from smtp_magic.notebook.form import SendMailForm

settings = Settings(
    "127.0.0.1", port={port}, security="auto", username={username!r},
    cafile={cafile!r}, sender={sender!r},
)
form = SendMailForm(settings=settings, namespace=globals())
form"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Jupyter:
    url: str
    token: str
    root: Path


@pytest.fixture
def browser_lab() -> Iterator[LabServer]:
    with LabServer(ports={25: 0, 465: 0, 587: 0}) as lab:
        yield lab


@pytest.fixture
def jupyter(tmp_path: Path, browser_lab: LabServer) -> Iterator[Jupyter]:
    """JupyterLab on 127.0.0.1 with a token, every Jupyter directory inside tmp_path."""
    root = tmp_path / "root"
    root.mkdir()
    cell = FORM_CELL.format(
        port=browser_lab.ports[587],
        username=DEMO_USERNAME,
        cafile=browser_lab.cafile,
        sender=DEMO_SENDER,
    )
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(cell)]
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, root / "form.ipynb")

    dirs = {name: tmp_path / name for name in ("config", "data", "runtime", "settings", "ws")}
    for folder in dirs.values():
        folder.mkdir()
    # The "receive Jupyter news?" toast would ask for a click and fetch from the internet.
    labconfig = dirs["config"] / "labconfig"
    labconfig.mkdir()
    (labconfig / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    # Start the notebook's kernel without the "Select Kernel" dialog (JupyterLab >= 4.1 asks).
    tracker = dirs["settings"] / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(
        json.dumps({"autoStartDefaultKernel": True})
    )
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
        "JUPYTERLAB_WORKSPACES_DIR": str(dirs["ws"]),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    port, token = free_port(), secrets.token_hex(16)
    log = (tmp_path / "jupyter.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",  # no PyPI queries from the test
            *(["--allow-root"] if os.geteuid() == 0 else []),  # CI containers run as root
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START
        while True:
            if process.poll() is not None:
                pytest.fail(f"jupyter lab exited with {process.returncode}:\n{_tail(tmp_path)}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"jupyter lab did not answer in {SERVER_START:g} s:\n{_tail(tmp_path)}"
                    )
                time.sleep(0.25)
        # Start the notebook's kernel through the REST API before the page opens, as opening
        # the notebook would: the page joins a kernel that is already up, which avoids the
        # "Select Kernel" dialog and jupyter_server's start-up race (a websocket that arrives
        # before the kernel is ready gets a 500, and the page may then shut the kernel down).
        session = urllib.request.Request(
            f"{url}/api/sessions",
            method="POST",
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
            data=json.dumps(
                {
                    "path": "form.ipynb",
                    "name": "form.ipynb",
                    "type": "notebook",
                    "kernel": {"name": "python3"},
                }
            ).encode(),
        )
        urllib.request.urlopen(session, timeout=SERVER_START).close()
        yield Jupyter(url=url, token=token, root=root)
    finally:
        # /api/shutdown stops the kernels too; terminate() is the fallback.
        try:
            request = urllib.request.Request(
                f"{url}/api/shutdown?token={token}", method="POST", data=b""
            )
            urllib.request.urlopen(request, timeout=5).close()
            process.wait(timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        log.close()


def _tail(tmp_path: Path) -> str:
    return (tmp_path / "jupyter.log").read_text(errors="replace")[-3000:]


def test_form_sends_from_jupyterlab(jupyter: Jupyter, browser_lab: LabServer) -> None:
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which("chromium")):
        # .ci/run says why it could not install it (no root, apt failed, the dpkg lock).
        why = os.environ.get("SMTP_MAGIC_CHROMIUM_PROBLEM")
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}"
            + (
                f": .ci/run could not install it ({why})."
                if why
                else ": run `bash .ci/run`, which installs it (Debian's package; Playwright's "
                "own browser download is not used)."
            )
        )
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1500})
            page.set_default_timeout(PAGE_WAIT)
            page.goto(f"{jupyter.url}/lab/tree/form.ipynb?token={jupyter.token}")

            # The notebook is open and connected to its idle kernel: then run every cell from
            # the menu. A run that races the kernel connection does nothing, so try twice.
            page.locator(".jp-Notebook .jp-Cell").first.wait_for()
            expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible()
            form = page.locator(".smtp-magic-form")
            for attempt in range(2):
                page.locator(".jp-Notebook .jp-Cell .jp-InputArea-editor").first.click()
                page.get_by_role("menuitem", name="Run", exact=True).click()
                page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
                try:
                    form.wait_for(state="visible", timeout=RUN_WAIT)
                    break
                except PlaywrightTimeoutError:
                    if attempt:
                        raise
            page.locator(".smtp-magic-to input").fill("reader@example.org")
            page.locator(".smtp-magic-subject input").fill("Sent from the browser")
            page.locator(".smtp-magic-body textarea").fill("Hello from **JupyterLab**.")
            password = page.locator(".smtp-magic-password input")
            expect(password).to_have_attribute("placeholder", "typed here, cleared when sent")
            password.fill(DEMO_PASSWORD)
            with page.expect_file_chooser() as chooser:  # as a person picks a file
                page.locator(".smtp-magic-files").click()
            chooser.value.set_files(
                files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"from a file\n"}]
            )
            expect(page.locator(".smtp-magic-files")).to_contain_text("(1)")
            page.locator("button.smtp-magic-send").click()

            status = page.locator(".smtp-magic-status")
            expect(status).to_contain_text("Sent", timeout=PAGE_WAIT)
            expect(status).to_contain_text("reader@example.org")
            expect(password).to_have_value("")  # cleared by the kernel, synced to the page
            expect(page.locator("button.smtp-magic-send")).to_be_enabled()
            form.scroll_into_view_if_needed()
            form.screenshot(path=str(ARTIFACTS / "form.png"))
        except Exception:
            # What the page showed when it went wrong, for the person reading the failure.
            page.screenshot(path=str(ARTIFACTS / "form-failure.png"))
            raise
        finally:
            browser.close()

    (received,) = browser_lab.wait_for_messages(1, timeout=10)
    assert received.message["Subject"] == "Sent from the browser"
    assert received.rcpt_tos == ("reader@example.org",)
    assert received.tls and received.authenticated
    files = {p.get_filename(): p.get_content() for p in received.message.iter_attachments()}
    assert files == {"notes.txt": "from a file\n"}
    saved = (jupyter.root / "form.ipynb").read_text()
    assert DEMO_PASSWORD not in saved
