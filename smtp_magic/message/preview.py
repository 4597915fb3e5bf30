"""Show a composed message in a notebook: a stable text summary and a sandboxed HTML preview."""

from __future__ import annotations

import base64
import html
import re
from email.message import EmailMessage, Message
from urllib.parse import unquote

__all__ = ["MessagePreview", "human_size", "preview", "summarize_attachments"]

# Headers shown, in order. Date and Message-ID are left out on purpose: they change on every run,
# and notebooks checked by nbval must print the same thing each time.
SHOWN_HEADERS = ("From", "To", "Cc", "Bcc", "Reply-To", "Subject")

_CID = re.compile(r"""cid:([^"'\s)>]+)""", re.IGNORECASE)

IFRAME_STYLE = "width:100%;height:420px;border:1px solid #ddd;background:#fff"


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
        (part.get_filename() or "(unnamed)", part.get_content_type(), len(_decoded(part)))
        for part in _attachment_parts(message)
    ]


def _text(part: Message) -> str:
    content = part.get_content()  # type: ignore[attr-defined]
    return content if isinstance(content, str) else content.decode("utf-8", "replace")


def _header(message: EmailMessage, name: str) -> str | None:
    value = message.get(name)
    return None if value is None else str(value)


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
        plain, rich = _body_parts(self.message)
        if rich is not None:
            document = _inline_cids(_text(rich), _inline_images(self.message))
            # html.escape(quote=True) escapes & < > " ', so the document cannot end the
            # attribute early; the browser unescapes it back into the iframe's source.
            shown = (
                f'<iframe sandbox srcdoc="{html.escape(document, quote=True)}" '
                f'style="{IFRAME_STYLE}"></iframe>'
            )
        elif plain is not None:
            shown = f'<pre style="white-space:pre-wrap">{html.escape(_text(plain))}</pre>'
        else:
            shown = "<p><em>(no text body)</em></p>"
        return f'<div class="smtp-magic-preview"><table>{rows}</table>{shown}</div>'


def preview(message: EmailMessage) -> MessagePreview:
    """Wrap a message so a notebook shows it (``preview(compose(...))`` as a cell's last line).

    Args:
        message: The message to show.

    Returns:
        A :class:`MessagePreview`.
    """
    return MessagePreview(message)
