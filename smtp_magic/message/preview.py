"""Show a composed message in a notebook: a stable text summary and a sandboxed HTML preview."""

from __future__ import annotations

import base64
import email.policy
import html
import re
from email.message import EmailMessage, Message
from html.parser import HTMLParser
from typing import ClassVar
from urllib.parse import unquote

from smtp_magic.message.inbox import image_size, shown_size
from smtp_magic.message.size import size_warnings
from smtp_magic.printable import printable

__all__ = [
    "MessagePreview",
    "estimated_height",
    "human_size",
    "message_size",
    "preview",
    "summarize_attachments",
]

# Headers shown, in order. Date and Message-ID are left out on purpose: they change on every run,
# and notebooks checked by nbval must print the same thing each time.
SHOWN_HEADERS = ("From", "To", "Cc", "Bcc", "Reply-To", "Subject")

_CID = re.compile(r"""cid:([^"'\s)>]+)""", re.IGNORECASE)

# The frame is as tall as its content is estimated to be, between these bounds; taller content
# scrolls inside it, and the reader can drag its corner (resize) to see more at once.
MIN_HEIGHT = 80
MAX_HEIGHT = 1200
IFRAME_STYLE = "width:100%;border:1px solid #ddd;background:#fff;resize:vertical;overflow:auto"


class _HeightEstimate(HTMLParser):
    """Estimate the rendered height of a message's HTML at a reading width of about 700 px.

    A sandboxed frame cannot tell its parent how tall it is (no scripts, opaque origin), so the
    height is worked out from the markup: lines of text, table rows, preformatted lines and
    images (whose height attribute, set by inbox_html, is exact). It errs on the tall side.
    """

    LINE = 21  # 14 px text at line-height 1.4, rounded up
    CHARS_PER_LINE = 85
    BLOCK_MARGIN = 16
    ROW = 30  # a table row: one line plus padding and border
    HEADINGS: ClassVar[dict[str, int]] = {"h1": 44, "h2": 36, "h3": 30, "h4": 26}
    BLOCKS = frozenset(
        [
            "p",
            "div",
            "ul",
            "ol",
            "blockquote",
            "table",
            "pre",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "hr",
        ]
    )

    def __init__(self, images: dict[str, tuple[int, int]]) -> None:
        super().__init__(convert_charrefs=True)
        self.images = images
        self.height = 16.0  # the body's margins
        self.text = 0  # characters of the paragraph being read
        self.tables = 0
        self.pre = 0
        self.skip = 0

    def _flush(self) -> None:
        if self.text:
            self.height += self.LINE * -(-self.text // self.CHARS_PER_LINE)
            self.text = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag in ("style", "script", "head", "title"):
            self.skip += 1
        elif tag == "tr":
            self.height += self.ROW  # its cells' text is in the row's height
        elif tag == "table":
            self.tables += 1
        elif tag == "pre":
            self._flush()
            self.pre += 1
        elif tag == "br":
            self.height += self.LINE
        elif tag == "li":
            self._flush()
            self.height += 4
        elif tag == "img":
            self.height += self._image_height(attributes)
        elif tag in self.HEADINGS:
            self._flush()
            self.height += self.HEADINGS[tag] + self.BLOCK_MARGIN
            self.skip += 1  # its text is counted in the heading's height
        if tag in self.BLOCKS:
            self._flush()
            self.height += self.BLOCK_MARGIN

    def _image_height(self, attributes: dict[str, str | None]) -> float:
        height = attributes.get("height")
        if height and height.isdigit():
            return int(height) + 4
        source = (attributes.get("src") or "").strip()
        size = self.images.get(source[4:]) if source.lower().startswith("cid:") else None
        return (shown_size(size)[1] if size else 300) + 4

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "head", "title") or tag in self.HEADINGS:
            self.skip = max(0, self.skip - 1)
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
        elif tag == "table":
            self.tables = max(0, self.tables - 1)
        if tag in self.BLOCKS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self.skip or self.tables:
            return
        if self.pre:
            self.height += self.LINE * (data.count("\n") + 1)
        else:
            self.text += len(" ".join(data.split()))


def estimated_height(document: str, images: dict[str, tuple[int, int]] | None = None) -> int:
    """The height in pixels to give a frame showing ``document``, within the preview's bounds.

    Args:
        document: The HTML.
        images: Pixel sizes of inline images by Content-ID (for those without a height).
    """
    estimate = _HeightEstimate(images or {})
    estimate.feed(document)
    estimate.close()
    estimate._flush()
    return int(min(MAX_HEIGHT, max(MIN_HEIGHT, estimate.height * 1.05 + 24)))


def human_size(size: int) -> str:
    """Format a byte count for people: ``532 B``, ``1.2 kB``, ``3.4 MB`` (powers of 1000)."""
    if size < 1000:
        return f"{size} B"
    value = float(size)
    for unit in ("kB", "MB", "GB"):
        value /= 1000
        if value < 999.95 or unit == "GB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def _decoded(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _body_parts(message: EmailMessage) -> tuple[Message | None, Message | None]:
    """The text/plain and text/html bodies (either may be None)."""
    return (
        message.get_body(preferencelist=("plain",)),
        message.get_body(preferencelist=("html",)),
    )


def _attachment_parts(message: EmailMessage) -> list[Message]:
    bodies = {id(part) for part in _body_parts(message) if part is not None}
    return [part for part in message.walk() if not part.is_multipart() and id(part) not in bodies]


def summarize_attachments(message: EmailMessage) -> list[tuple[str, str, int]]:
    """List what a message carries besides its text and HTML bodies.

    Inline images (parts of multipart/related) count, because they add to the size.

    Args:
        message: A message, e.g. from :func:`smtp_magic.message.compose`.

    Returns:
        ``(file name, content type, decoded size in bytes)`` for each part, in message order;
        a part without a file name is listed as ``"(unnamed)"``.
    """
    return [
        (
            printable(part.get_filename() or "(unnamed)"),
            printable(part.get_content_type()),
            len(_decoded(part)),
        )
        for part in _attachment_parts(message)
    ]


def _text(part: Message) -> str:
    content = part.get_content()  # type: ignore[attr-defined]
    return content if isinstance(content, str) else content.decode("utf-8", "replace")


def _header(message: EmailMessage, name: str) -> str | None:
    value = message.get(name)
    # A received message (the lab's mailbox) is untrusted: no escape sequence of its sender's
    # reaches the terminal through a header.
    return None if value is None else printable(str(value))


def _image_sizes(message: EmailMessage) -> dict[str, tuple[int, int]]:
    sizes = {}
    for part in message.walk():
        cid = part.get("Content-ID")
        if cid is not None and not part.is_multipart():
            size = image_size(_decoded(part))
            if size is not None:
                sizes[str(cid).strip().strip("<>")] = size
    return sizes


def message_size(message: EmailMessage) -> int:
    """The size of the message as sent (CRLF line ends), in bytes."""
    return len(message.as_bytes(policy=email.policy.SMTP))


def _inline_images(message: EmailMessage) -> dict[str, str]:
    """Map each Content-ID (without angle brackets) to a ``data:`` URI of its part."""
    images: dict[str, str] = {}
    for part in message.walk():
        cid = part.get("Content-ID")
        if cid is None or part.is_multipart():
            continue
        encoded = base64.b64encode(_decoded(part)).decode("ascii")
        images[str(cid).strip().strip("<>")] = f"data:{part.get_content_type()};base64,{encoded}"
    return images


def _inline_cids(html_text: str, images: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        # RFC 2392: a cid: URL is the Content-ID, URL-encoded.
        return images.get(unquote(match[1]), match[0])

    return _CID.sub(replace, html_text)


class MessagePreview:
    """A message as a notebook shows it: a text summary, or headers plus a sandboxed rendering.

    The text form has no Date or Message-ID, so a notebook's saved output stays the same from
    run to run. The HTML form renders the message's HTML inside ``<iframe sandbox srcdoc=...>``:
    the message is untrusted, and an empty ``sandbox`` attribute stops its scripts, forms and
    styles from reaching the notebook (jupyterlab#15275).

    Args:
        message: The message to show.
    """

    def __init__(self, message: EmailMessage) -> None:
        self.message = message

    def _rows(self) -> list[tuple[str, str]]:
        rows = []
        for name in SHOWN_HEADERS:
            value = _header(self.message, name)
            if value is not None:
                rows.append((name, value))
        return rows

    def _body_sizes(self) -> list[str]:
        sizes = []
        for part in _body_parts(self.message):
            if part is not None:
                # Count the text itself, with \n line ends, so a parsed copy (CRLF) counts the same.
                size = len(_text(part).replace("\r\n", "\n").encode("utf-8"))
                sizes.append(f"{part.get_content_type()}, {human_size(size)}")
        return sizes

    def __str__(self) -> str:
        lines = [f"{name}: {value}" for name, value in self._rows()]
        lines.append(f"Body: {'; '.join(self._body_sizes()) or 'none'}")
        attachments = summarize_attachments(self.message)
        if attachments:
            lines.append("Attachments:")
            lines.extend(
                f"  {name} ({content_type}, {human_size(size)})"
                for name, content_type, size in attachments
            )
        lines.extend(f"Warning: {warning}" for warning in size_warnings(self.message))
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        rows = "".join(
            f'<tr><th style="text-align:left;padding-right:1em">{html.escape(name)}</th>'
            f"<td>{html.escape(value)}</td></tr>"
            for name, value in self._rows()
        )
        attachments = summarize_attachments(self.message)
        if attachments:
            items = ", ".join(
                html.escape(f"{name} ({content_type}, {human_size(size)})")
                for name, content_type, size in attachments
            )
            rows += (
                '<tr><th style="text-align:left;padding-right:1em">Attachments</th>'
                f"<td>{items}</td></tr>"
            )
        rows += (
            '<tr><th style="text-align:left;padding-right:1em">Size</th>'
            f"<td>{human_size(message_size(self.message))} as sent</td></tr>"
        )
        rows += "".join(
            '<tr><th style="text-align:left;padding-right:1em;color:#9a6700">Warning</th>'
            f"<td>{html.escape(warning)}</td></tr>"
            for warning in size_warnings(self.message)
        )
        return f'<div class="smtp-magic-preview"><table>{rows}</table>{self._bodies_html()}</div>'

    def _bodies_html(self) -> str:
        """The HTML body in a frame sized to it, and the plain-text alternative behind a switch."""
        plain, rich = _body_parts(self.message)
        if rich is None and plain is None:
            return "<p><em>(no text body)</em></p>"
        text = "" if plain is None else html.escape(_text(plain))
        if rich is None:
            return f'<pre style="white-space:pre-wrap">{text}</pre>'
        source = _text(rich)
        document = _inline_cids(source, _inline_images(self.message))
        height = estimated_height(source, _image_sizes(self.message))
        # html.escape(quote=True) escapes & < > " ', so the document cannot end the
        # attribute early; the browser unescapes it back into the iframe's source.
        shown = (
            f'<iframe sandbox srcdoc="{html.escape(document, quote=True)}" '
            f'style="{IFRAME_STYLE};height:{height}px"></iframe>'
        )
        if plain is not None:
            # A switch without scripts: <details> opens the text a plain-text reader sees.
            shown += (
                "<details><summary>Plain-text alternative</summary>"
                f'<pre style="white-space:pre-wrap">{text}</pre></details>'
            )
        return shown


def preview(message: EmailMessage) -> MessagePreview:
    """Wrap a message so a notebook shows it (``preview(compose(...))`` as a cell's last line).

    Args:
        message: The message to show.

    Returns:
        A :class:`MessagePreview`.
    """
    return MessagePreview(message)
