"""Inbox-safe HTML in headless Chromium: it looks the same without <style>, and the preview frame
fits the message. Screenshots go to test-artifacts/ for a person to look at."""

from __future__ import annotations

import base64
import io
import os
import re
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from PIL import Image, ImageChops

from smtp_magic.message.compose import compose
from smtp_magic.message.fromnotebook import add_inline_images, render_notebook
from smtp_magic.message.inbox import BASE_CSS, inbox_html
from smtp_magic.message.preview import MAX_HEIGHT, preview

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def figure_png() -> str:
    fig, ax = plt.subplots(figsize=(6, 3), dpi=100)
    ax.bar(["a", "b", "c"], [3, -1, 2], color="#4c72b0")
    ax.set_title("Revenue by product")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def executed_notebook() -> dict[str, Any]:
    """A notebook as nbclient leaves it: a heading, a DataFrame, a Styler and a figure."""
    frame = pd.DataFrame({"product": ["a", "b", "c"], "revenue": [1234.5, -20.25, 7.0]})
    styler = frame.style.format({"revenue": "{:,.2f}"}).map(
        lambda v: "color: #b00020; font-weight: bold" if v < 0 else "background-color: #c8f0c8",
        subset=["revenue"],
    )

    def cell(outputs: list[dict[str, Any]]) -> dict[str, Any]:
        return {"cell_type": "code", "metadata": {"tags": ["email"]}, "outputs": outputs}

    def data(**mime: str) -> dict[str, Any]:
        return {
            "output_type": "display_data",
            "data": {k.replace("_", "/"): v for k, v in mime.items()},
        }

    return {
        "cells": [
            {
                "cell_type": "markdown",
                "metadata": {"tags": ["email"]},
                "source": "# Weekly\n\nText.",
            },
            cell([data(text_html=frame._repr_html_(), text_plain=str(frame))]),
            cell([data(text_html=styler.to_html(), text_plain="<Styler>")]),
            cell([data(image_png=figure_png(), text_plain="<Figure size 600x300 with 1 Axes>")]),
        ]
    }


def with_styles(notebook: dict[str, Any]) -> str:
    """The same outputs as a browser shows them: our stylesheet and the outputs' own <style>."""
    blocks = []
    for found in notebook["cells"]:
        if found["cell_type"] == "markdown":
            blocks.append("<h1>Weekly</h1>\n<p>Text.</p>")
        for output in found.get("outputs", []):
            blocks.append(output["data"].get("text/html", "IMAGE"))
    return f'<!DOCTYPE html><html><head><meta charset="utf-8"><style>{BASE_CSS}</style></head><body>{"".join(blocks)}</body></html>'


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        why = os.environ.get("SMTP_MAGIC_CHROMIUM_PROBLEM", "install it (.ci/run does)")
        pytest.fail(f"{CHROMIUM} is missing: {why}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 800, "height": 600})
        yield page
        browser.close()


def screenshot(page: Any, document: str, name: str) -> Image.Image:
    page.set_viewport_size({"width": 800, "height": 600})
    page.set_content(document)
    ARTIFACTS.mkdir(exist_ok=True)
    data = page.screenshot(full_page=True, path=str(ARTIFACTS / name))
    return Image.open(io.BytesIO(data)).convert("RGB")


def test_tables_look_the_same_without_any_stylesheet(page: Any) -> None:
    notebook = executed_notebook()
    # Without images, so the two documents differ only in where their styles live.
    for found in notebook["cells"]:
        found["outputs"] = [o for o in found.get("outputs", []) if "image/png" not in o["data"]]
    styled = with_styles(notebook)
    inlined = render_notebook(notebook, cells="all").html
    assert "<style" not in inlined and "class=" not in inlined
    before = screenshot(page, styled.replace("IMAGE", ""), "inbox-with-stylesheet.png")
    after = screenshot(page, inlined, "inbox-inlined-no-stylesheet.png")
    stripped = screenshot(
        page, re.sub(r"<style.*?</style>", "", styled, flags=re.S), "inbox-classes-only.png"
    )
    assert before.size == after.size
    assert ImageChops.difference(before, after).getbbox() is None  # pixel for pixel
    # And the check can fail: the same page relying on its stylesheet looks different without it.
    assert ImageChops.difference(before.crop((0, 0, *stripped.size)), stripped).getbbox()


def report_message() -> EmailMessage:
    rendered = render_notebook(executed_notebook(), cells="tagged")
    message = compose(to="a@example.org", subject="report", body=rendered.html, format="html")
    message.get_body(preferencelist=("plain",)).set_content(rendered.text)  # type: ignore[union-attr]
    add_inline_images(message, rendered.images)
    return message


def frame_fit(page: Any, message: EmailMessage, name: str) -> tuple[int, int]:
    # Tall enough for the largest frame: a full-page screenshot would drop the frame's content.
    page.set_viewport_size({"width": 800, "height": MAX_HEIGHT + 200})
    page.set_content(f"<html><body style='margin:0'>{preview(message)._repr_html_()}</body></html>")
    page.wait_for_load_state("load")
    frame = page.locator("iframe").element_handle().content_frame()
    frame.wait_for_load_state("load")
    # The content's own height (documentElement.scrollHeight would be at least the frame's).
    content = int(frame.evaluate("Math.ceil(document.body.getBoundingClientRect().bottom) + 8"))
    box = page.locator("iframe").bounding_box()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))
    return content, int(box["height"])


def test_the_preview_frame_shows_the_whole_report(page: Any) -> None:
    content, frame = frame_fit(page, report_message(), "preview-report.png")
    # The whole figure and both tables are visible: the frame is at least as tall as the
    # content, and not much taller.
    assert content <= frame - 2 <= content * 1.25 + 60, (content, frame)
    assert page.locator("details summary").inner_text() == "Plain-text alternative"
    page.locator("details summary").click()
    shown = page.locator("details pre").inner_text()
    assert "revenue" in shown and "[Figure 1]" in shown


def test_a_long_message_scrolls_in_a_frame_of_bounded_height(page: Any) -> None:
    body = "\n\n".join(f"Paragraph {n}: " + "words " * 40 for n in range(80))
    content, frame = frame_fit(
        page, compose(to="a@example.org", subject="s", body=body), "preview-long.png"
    )
    assert content > MAX_HEIGHT and frame == MAX_HEIGHT + 2  # 1 px border above and below


def test_a_short_message_gets_a_short_frame(page: Any) -> None:
    content, frame = frame_fit(
        page, compose(to="a@example.org", subject="s", body="Hi **there**."), "preview-short.png"
    )
    assert content <= frame - 2 <= content + 80, (content, frame)
    assert inbox_html("<p>x</p>").count("<meta charset") == 1
