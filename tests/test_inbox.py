"""Inbox-safe HTML (message.inbox), size checks (message.size) and tables as aligned text."""

from __future__ import annotations

import base64
import dataclasses
import email.policy
import io
import re
import subprocess
import sys
from email.message import EmailMessage
from email.parser import BytesParser

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from smtp_magic.errors import MessageRejectedError
from smtp_magic.lab.server import LabServer
from smtp_magic.message.compose import compose
from smtp_magic.message.fromnotebook import InlineImage, add_inline_images
from smtp_magic.message.htmltext import aligned, html_to_text
from smtp_magic.message.inbox import image_size, inbox_html, shown_size
from smtp_magic.message.size import CLIP_BYTES, over_provider_limit, size_warnings
from smtp_magic.send import send
from smtp_magic.settings import Settings


def sales() -> pd.DataFrame:
    return pd.DataFrame({"product": ["a", "b", "c"], "revenue": [1234.5, -20.25, 7.0]})


def styler_html() -> str:
    def colour(value: float) -> str:
        return "color: #b00020" if value < 0 else "background-color: #c8f0c8"

    return str(
        sales().style.format({"revenue": "{:,.2f}"}).map(colour, subset=["revenue"]).to_html()
    )


def png(width_inches: float, dpi: int) -> bytes:
    fig, ax = plt.subplots(figsize=(width_inches, width_inches / 2), dpi=dpi)
    ax.plot([1, 2, 3])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


# --- inbox_html --------------------------------------------------------------------------------


def test_styler_styles_are_inlined_and_no_class_or_style_block_remains() -> None:
    document = inbox_html(styler_html())
    assert "<style" not in document and "class=" not in document and " id=" not in document
    assert document.startswith('<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head>')
    cells = re.findall(r"<td style=\"([^\"]*)\">([^<]*)</td>", document)
    by_text = {text: style for style, text in cells}
    # The Styler's conditional formats survive as inline styles on the very cells they chose.
    assert "color:#b00020" in by_text["-20.25"]
    assert "background-color:#c8f0c8" in by_text["1,234.50"]
    # The house style gives every cell its own border: the grid survives without a stylesheet.
    assert all("border:1px solid #ccc" in style for style, _ in cells)


def test_scripts_handlers_and_remote_resources_are_removed() -> None:
    markup = (
        '<html><head><link rel="stylesheet" href="https://cdn.example/x.css">'
        '<script src="https://cdn.example/x.js"></script></head><body>'
        '<p onclick="steal()" class="c">Hi <img src="https://tracker.example/p.gif" alt="logo">'
        '<a href="javascript:alert(1)">link</a></p><form action="https://x.example"><input '
        'name="q"></form><iframe src="https://x.example"></iframe><script>alert(1)</script>'
        "</body></html>"
    )
    document = inbox_html(markup)
    assert "script" not in document and "onclick" not in document and "iframe" not in document
    assert "https://" not in document and "javascript:" not in document
    assert "[logo]" in document and ">link</a>" in document


def test_inline_images_get_width_height_and_alt() -> None:
    document = inbox_html(
        '<p><img src="cid:big@x"> <img src="cid:small@x" alt="chart"></p>',
        {"big@x": (1920, 960), "small@x": (300, 200)},
    )
    images = re.findall(r"<img [^>]*>", document)
    assert len(images) == 2
    big, small = images
    assert 'src="cid:big@x"' in big and 'alt="image"' in big
    assert 'width="640" height="320"' in big
    assert 'alt="chart"' in small and 'width="300" height="200"' in small
    assert shown_size((1280, 1000)) == (640, 500)


def test_image_size_reads_png_gif_and_jpeg_headers() -> None:
    assert image_size(png(4, 50)) == (200, 100)
    gif = b"GIF89a" + (17).to_bytes(2, "little") + (9).to_bytes(2, "little") + b"\0" * 10
    assert image_size(gif) == (17, 9)
    jpeg = io.BytesIO()
    plt.imsave(jpeg, [[0.0, 1.0, 0.5]], format="jpeg")
    assert image_size(jpeg.getvalue()) == (3, 1)
    assert image_size(b"not an image") is None


# --- the plain-text alternative ------------------------------------------------------------------


def test_tables_become_aligned_text_with_numbers_right_aligned() -> None:
    text = html_to_text(styler_html())
    lines = [line for line in text.splitlines() if line]
    assert lines == [
        "   product   revenue",
        "0  a        1,234.50",
        "1  b          -20.25",
        "2  c            7.00",
    ]
    assert aligned([["x", "n"], ["long", "1"], ["y", "100"]]) == [
        "x       n",
        "long    1",
        "y     100",
    ]


# --- the MIME tree, parsed from the bytes ------------------------------------------------------


def tree(part: EmailMessage) -> object:
    if part.is_multipart():
        return (part.get_content_type(), [tree(p) for p in part.iter_parts()])
    return part.get_content_type()


def parsed(message: EmailMessage) -> EmailMessage:
    wire = message.as_bytes(policy=email.policy.SMTP)
    result = BytesParser(policy=email.policy.default).parsebytes(wire)
    assert isinstance(result, EmailMessage)
    return result


def test_inline_images_belong_to_the_html_alone_as_thunderbird_builds_it() -> None:
    message = compose(
        to="a@example.org",
        subject="report",
        body='<p>see <img src="cid:fig@x" alt="chart"></p>',
        format="html",
        attachments=[("data.csv", b"a,b\n1,2\n")],
    )
    add_inline_images(message, [InlineImage("chart.png", png(2, 50), "image/png", "fig@x")])
    back = parsed(message)
    assert tree(back) == (
        "multipart/mixed",
        [
            (
                "multipart/alternative",
                ["text/plain", ("multipart/related", ["text/html", "image/png"])],
            ),
            "text/csv",
        ],
    )
    assert [p for p in back.walk() if p is not back and p["MIME-Version"]] == []
    for part in back.walk():  # no empty parts
        if not part.is_multipart():
            assert part.get_payload(decode=True)
    image = next(p for p in back.walk() if p.get_content_type() == "image/png")
    assert image["Content-ID"] == "<fig@x>" and image.get_content_disposition() == "inline"


# --- size checks --------------------------------------------------------------------------------


def big_table_message() -> EmailMessage:
    frame = pd.DataFrame({"n": range(1500), "square": [i * i for i in range(1500)]})
    body = inbox_html(frame.to_html())
    return compose(to="a@example.org", subject="big", body=body, format="html")


def test_a_large_table_warns_of_gmail_clipping() -> None:
    message = big_table_message()
    html_size = len(str(message.get_body(preferencelist=("html",)).get_content()).encode())  # type: ignore[union-attr]
    assert html_size > CLIP_BYTES
    (warning,) = size_warnings(message)
    assert "Gmail clips" in warning and "df.head(50)" in warning


def test_an_image_larger_than_shown_warns() -> None:
    message = compose(
        to="a@example.org", subject="s", body='<p><img src="cid:f@x"></p>', format="html"
    )
    add_inline_images(message, [InlineImage("huge.png", png(16, 100), "image/png", "f@x")])
    (warning,) = size_warnings(message)
    assert warning.startswith("huge.png is 1600x800 pixels but is shown at most 640 wide")
    assert size_warnings(compose(to="a@example.org", subject="s", body="small")) == []


def test_the_report_carries_the_warnings(clean_lab: LabServer) -> None:
    report = send(big_table_message(), clean_lab.settings(587))
    assert report.delivered
    assert any(w.startswith("the HTML part is") for w in report.warnings)
    assert "Warning" in str(report) and "Gmail clips" in str(report)


def test_a_message_over_gmails_limit_is_refused_before_connecting(clean_lab: LabServer) -> None:
    assert over_provider_limit(24_000_000, "smtp.gmail.com") is None
    assert over_provider_limit(26_000_000, "other.example") is None
    message = compose(
        to="a@example.org", subject="s", body="x", attachments=[("big.bin", bytes(19_000_000))]
    )
    # smtp.gmail.com resolves to nothing here: the refusal comes before any connection attempt.
    settings = Settings("smtp.gmail.com", port=587, sender="me@example.org")
    with pytest.raises(MessageRejectedError) as caught:
        send(message, settings)
    text = str(caught.value)
    assert text.startswith("smtp.gmail.com:587: the message is 26.0 MB") and "25.0 MB Gmail" in text
    assert "no connection was opened" in text and caught.value.phase == "size"
    # The same message goes to a server without a known limit (the lab).
    lab_settings = dataclasses.replace(clean_lab.settings(587))
    assert send(message, lab_settings).delivered


def test_data_uri_images_become_inline_parts() -> None:
    # Gmail and Outlook show no data: images; an inline part shows everywhere.
    encoded = base64.b64encode(png(2, 50)).decode()
    body = f'<p>Dot: <img src="data:image/png;base64,{encoded}" alt="chart"></p>'
    message = parsed(compose(to="a@example.org", subject="s", body=body, format="html"))
    assert tree(message) == (
        "multipart/alternative",
        ["text/plain", ("multipart/related", ["text/html", "image/png"])],
    )
    html = str(message.get_body(preferencelist=("html",)).get_content())  # type: ignore[union-attr]
    assert "data:" not in html
    image = next(p for p in message.walk() if p.get_content_type() == "image/png")
    assert f'src="cid:{image["Content-ID"][1:-1]}"' in html and 'width="100"' in html
    assert image.get_filename() == "image-1.png" and image.get_content() == png(2, 50)


def test_a_wide_figure_is_downscaled_and_keeps_its_look() -> None:
    fig, ax = plt.subplots(figsize=(20, 5), dpi=100)  # 2000 px wide
    ax.plot([1, 2, 3])
    message = compose(to="a@example.org", subject="s", body="wide", attachments=[("fig", fig)])
    plt.close(fig)
    image = next(p for p in message.walk() if p.get_content_type() == "image/png")
    size = image_size(image.get_content())
    # At most 2x the 640 px it is shown at (bbox_inches="tight" trims the margins further).
    assert size is not None and 900 < size[0] <= 1280
    assert size_warnings(message) == []
    html = str(message.get_body(preferencelist=("html",)).get_content())  # type: ignore[union-attr]
    assert 'width="640"' in html


def test_a_missing_css_inline_is_a_clear_compose_error() -> None:
    code = (
        "import sys; sys.modules['css_inline'] = None\n"
        "from smtp_magic import compose, ComposeError\n"
        "try:\n"
        "    compose(to='a@example.org', subject='s', body='**hi**')\n"
        "except ComposeError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("HTML bodies need css-inline, which is missing")
