"""Tests for the notebook preview of a message: stable text, sandboxed HTML."""

from __future__ import annotations

import base64
import email.policy
import re
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from smtp_magic.message.compose import compose
from smtp_magic.message.preview import MessagePreview, human_size, preview, summarize_attachments

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Tags(HTMLParser):
    """Collect the start tags (with attributes) a browser would see at the top level."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags_of(markup: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(markup)
    parser.close()
    return parser.tags


def iframe_of(markup: str) -> dict[str, str | None]:
    iframes = [attrs for tag, attrs in tags_of(markup) if tag == "iframe"]
    assert len(iframes) == 1
    return iframes[0]


@pytest.fixture
def rich_message() -> EmailMessage:
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    fig, axes = plt.subplots(figsize=(2, 1.5))
    axes.plot([1, 2], [2, 1])
    try:
        return compose(
            to="Bob <bob@example.org>",
            cc="carol@example.org",
            sender="Alice <alice@example.org>",
            subject="Weekly numbers",
            body="# Numbers\n\nSee below.\n",
            attachments=[("df", df), ("fig", fig), ("raw.bin", b"\x00" * 1500)],
        )
    finally:
        plt.close(fig)


def test_text_summary_lists_headers_and_attachments(rich_message: EmailMessage) -> None:
    text = str(preview(rich_message))
    lines = text.splitlines()
    assert lines[:4] == [
        "From: Alice <alice@example.org>",
        "To: Bob <bob@example.org>",
        "Cc: carol@example.org",
        "Subject: Weekly numbers",
    ]
    assert re.search(r"^Body: text/plain, \d+ B; text/html, [\d.]+ k?B$", text, re.M)
    assert "Attachments:" in lines
    assert "  df.csv (text/csv, 12 B)" in lines
    assert "  raw.bin (application/octet-stream, 1.5 kB)" in lines
    assert any(re.fullmatch(r"  fig\.png \(image/png, [\d.]+ kB\)", line) for line in lines)
    assert "Date" not in text and "Message-ID" not in text
    assert repr(preview(rich_message)) == text


def test_text_summary_is_stable_across_composes() -> None:
    def make() -> str:
        return str(preview(compose(to="b@example.org", subject="s", body="x", attachments=[b"1"])))

    assert make() == make()  # Date and Message-ID differ, the preview does not


def test_summarize_attachments(rich_message: EmailMessage) -> None:
    summary = summarize_attachments(rich_message)
    assert [(name, kind) for name, kind, _ in summary] == [
        ("fig.png", "image/png"),
        ("df.csv", "text/csv"),
        ("raw.bin", "application/octet-stream"),
    ]
    sizes = {name: size for name, _, size in summary}
    assert sizes["raw.bin"] == 1500
    assert sizes["df.csv"] == len(b"a,b\n1,x\n2,y\n")


def test_summarize_without_attachments() -> None:
    message = compose(to="b@example.org", subject="s", body="x")
    assert summarize_attachments(message) == []
    assert "Attachments" not in str(preview(message))


def test_html_is_sandboxed_and_shows_inline_images(rich_message: EmailMessage) -> None:
    markup = preview(rich_message)._repr_html_()
    iframe = iframe_of(markup)
    assert iframe["sandbox"] in ("", None)  # present and empty: no scripts, no same origin
    assert re.search(r"<iframe sandbox srcdoc=", markup)
    document = iframe["srcdoc"]
    assert document is not None and "<h1>Numbers</h1>" in document
    assert "cid:" not in document
    (data_uri,) = re.findall(r'src="(data:image/png;base64,[^"]+)"', document)
    assert base64.b64decode(data_uri.split(",", 1)[1]).startswith(PNG_SIGNATURE)
    assert "Weekly numbers" in markup and "df.csv (text/csv, 12 B)" in markup


def test_html_body_cannot_break_out_of_srcdoc() -> None:
    evil = "<p>hi</p>\"><script>alert(1)</script><img src=x onerror='alert(2)'>"
    message = compose(to="b@example.org", subject="s", body="x", format="html")
    # compose() itself removes scripts; a received message may still carry them.
    message.get_body(preferencelist=("html",)).set_content(evil, subtype="html")  # type: ignore[union-attr]
    markup = preview(message)._repr_html_()
    tags = tags_of(markup)
    assert [tag for tag, _ in tags if tag in ("script", "img")] == []
    allowed = {"div", "table", "tr", "th", "td", "iframe", "details", "summary", "pre"}
    assert {tag for tag, _ in tags} <= allowed
    assert evil in (iframe_of(markup)["srcdoc"] or "")  # intact, but only inside the sandbox


def test_headers_are_escaped() -> None:
    message = compose(to='"<b>Bob</b>" <b@example.org>', subject="<script>x</script>", body="x")
    markup = preview(message)._repr_html_()
    assert "<script>" not in markup.split("<iframe", 1)[0]
    assert "&lt;script&gt;x&lt;/script&gt;" in markup
    assert [tag for tag, _ in tags_of(markup) if tag in ("b", "script")] == []


def test_text_only_message_shows_pre() -> None:
    message = compose(to="b@example.org", subject="s", body="a < b\n", format="text")
    markup = preview(message)._repr_html_()
    assert "<iframe" not in markup and "<pre" in markup and "a &lt; b" in markup


def test_preview_of_a_parsed_message(rich_message: EmailMessage) -> None:
    wire = rich_message.as_bytes(policy=email.policy.SMTP)
    parsed = BytesParser(policy=email.policy.default).parsebytes(wire)
    assert isinstance(parsed, EmailMessage)
    assert str(preview(parsed)) == str(preview(rich_message))
    assert "data:image/png;base64," in preview(parsed)._repr_html_()


def test_preview_returns_message_preview(rich_message: EmailMessage) -> None:
    shown = preview(rich_message)
    assert isinstance(shown, MessagePreview) and shown.message is rich_message


@pytest.mark.parametrize(
    ("size", "expected"),
    [(0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (1234, "1.2 kB"), (999_949, "999.9 kB"),
     (999_950, "1.0 MB"), (2_500_000, "2.5 MB"), (3 * 10**12, "3000.0 GB")],
)  # fmt: skip
def test_human_size(size: int, expected: str) -> None:
    assert human_size(size) == expected
