"""The message preview in a real JupyterLab (headless Chromium): the frame shows the whole
message, figure included, instead of a fixed 420 px window. Screenshot in test-artifacts/."""

from __future__ import annotations

import json
import urllib.request

import nbformat
import pytest
from test_browser import (  # the JupyterLab server fixture of the form's browser test
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    PAGE_WAIT,
    Jupyter,
    browser_lab,
    jupyter,
)

pytestmark = pytest.mark.browser
__all__ = ["browser_lab", "jupyter"]  # fixtures used by name

CELL = """\
import matplotlib
matplotlib.use("agg")
import matplotlib.pyplot as plt
import pandas as pd
from smtp_magic import compose, preview

fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
ax.plot([1, 3, 2])
ax.set_title("A figure that a 420 px frame used to cut off")
df = pd.DataFrame({"region": ["north", "south", "east"], "sales": [120, 95, 143]})
message = compose(
    to="team@example.org",
    subject="Preview",
    body="# Weekly report\\n\\nThe numbers and the figure:",
    attachments=[("sales", df), ("fig", fig)],
)
preview(message)"""


def test_the_preview_in_jupyterlab_shows_the_whole_message(jupyter: Jupyter) -> None:
    from playwright.sync_api import expect, sync_playwright

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(CELL)]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, jupyter.root / "preview.ipynb")
    # Start its kernel before the page opens, as the form's test does (no kernel dialog).
    session = urllib.request.Request(
        f"{jupyter.url}/api/sessions",
        method="POST",
        headers={"Authorization": f"token {jupyter.token}", "Content-Type": "application/json"},
        data=json.dumps(
            {
                "path": "preview.ipynb",
                "name": "preview.ipynb",
                "type": "notebook",
                "kernel": {"name": "python3"},
            }
        ).encode(),
    )
    urllib.request.urlopen(session, timeout=60).close()

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1600})
            page.set_default_timeout(PAGE_WAIT)
            page.goto(f"{jupyter.url}/lab/tree/preview.ipynb?token={jupyter.token}")
            page.locator(".jp-Notebook .jp-Cell").first.wait_for()
            expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible()
            frame_element = page.locator(".jp-OutputArea-output iframe")
            for attempt in range(2):  # a run that races the kernel connection does nothing
                page.locator(".jp-Notebook .jp-Cell .jp-InputArea-editor").first.click()
                page.get_by_role("menuitem", name="Run", exact=True).click()
                page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
                try:
                    frame_element.wait_for(state="visible", timeout=20_000)
                    break
                except Exception:
                    if attempt:
                        raise
            frame = frame_element.element_handle().content_frame()
            frame.wait_for_load_state("load")
            content = int(
                frame.evaluate("Math.ceil(document.body.getBoundingClientRect().bottom) + 8")
            )
            image_bottom = int(
                frame.evaluate(
                    "Math.ceil(document.querySelector('img').getBoundingClientRect().bottom)"
                )
            )
            shown = int(frame_element.bounding_box()["height"])
            frame_element.scroll_into_view_if_needed()
            page.locator(".jp-OutputArea-output").first.screenshot(
                path=str(ARTIFACTS / "jupyterlab-preview.png")
            )
            expect(page.locator(".jp-OutputArea-output summary")).to_have_text(
                "Plain-text alternative"
            )
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-preview-failure.png"))
            raise
        finally:
            browser.close()
    # The figure ends inside the frame, and so does the rest of the message.
    assert image_bottom > 420 and content > 420  # the old fixed frame would have cut it
    assert content <= shown - 2 <= content * 1.25 + 60, (content, shown)
