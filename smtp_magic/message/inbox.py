"""Inbox-safe HTML: every style inlined, no classes, scripts or remote resources, sized images.

Gmail drops ``<style>`` blocks in several of its clients and Outlook for Windows renders with
Word's engine, which knows no CSS classes; what survives everywhere is a ``style=""``
attribute on each element, plus the old ``width``/``height``/``border`` attributes. So a
message's HTML is passed through :func:`inbox_html` before it is sent:

1. the stylesheet (:data:`BASE_CSS`, then the document's own ``<style>`` blocks, e.g. those of a
   pandas ``Styler``) is inlined into ``style=""`` attributes by css-inline (a Rust library,
   imported on first use);
2. ``<style>``, ``<script>``, ``<link>``, forms, frames and event handlers are removed, and so
   are ``class`` and ``id`` (they carry no meaning once styles are inline);
3. remote images become their ``alt`` text (nothing is fetched when the message is opened);
4. inline images (``cid:``) get an explicit ``width`` and ``height`` and ``alt`` text;
5. the document gets a ``<!DOCTYPE html>`` and ``<meta charset="utf-8">``.

Nothing here does I/O.
"""

from __future__ import annotations

import base64
import binascii
import functools
import html
import re
import struct
from collections.abc import Mapping
from html.parser import HTMLParser
from typing import Any

__all__ = ["BASE_CSS", "MAX_IMAGE_WIDTH", "data_images", "image_size", "inbox_html"]

# The house style. Cells get explicit borders and padding, so a table keeps its grid where
# classes and <style> are ignored (Outlook's Word engine, Gmail's non-Gmail-account clients).
BASE_CSS = (
    "body{font-family:Arial,Helvetica,sans-serif;font-size:14px;line-height:1.4;color:#222}"
    "table{border-collapse:collapse;margin:0.5em 0}"
    # Each cell carries these once its styles are inline: kept short, since a long table
    # repeats them thousands of times towards Gmail's 102 KB.
    "th,td{border:1px solid #ccc;padding:3px 6px}"
    "th{text-align:left;background-color:#f3f3f3}"
    "pre,code{font-family:Consolas,Menlo,monospace;font-size:13px}"
    "pre{white-space:pre-wrap;margin:0.5em 0}"
    "img{border:0;max-width:100%;height:auto}"
)

# The widest an image is shown: a common mail client's reading pane is about 600 to 700 px.
MAX_IMAGE_WIDTH = 640

# Elements whose content is dropped with them: active content, or styles now inlined.
_DROP_WITH_CONTENT = frozenset(
    {"script", "style", "noscript", "template", "iframe", "object", "embed", "applet", "frameset"}
)
# Elements dropped without their content (their children stay).
_DROP_TAG = frozenset({"link", "meta", "base", "form", "input", "button", "select", "textarea"})
_DROP_ATTRIBUTES = frozenset({"class", "id", "srcset", "background", "formaction", "action"})
_VOID = frozenset({"area", "br", "col", "hr", "img", "source", "track", "wbr"})


def image_size(data: bytes) -> tuple[int, int] | None:
    """The pixel size of a PNG, GIF or JPEG, read from its header (no image library needed).

    Args:
        data: The image file's bytes.

    Returns:
        ``(width, height)``, or None for another or a malformed format.
    """
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a"):
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    position = 2
    while position + 9 < len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        # SOF0..SOF15 carry the size, except DHT (C4), JPG (C8) and DAC (CC).
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return int(width), int(height)
        position += 2 + length
    return None


_DATA_IMAGE = re.compile(
    r"""(<img\b[^>]*?\bsrc\s*=\s*)(["'])data:(image/(?:png|jpeg|gif));base64,([A-Za-z0-9+/=\s]+)\2""",
    re.IGNORECASE,
)
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif"}


def data_images(markup: str, domain: str) -> tuple[str, list[tuple[str, bytes, str, str]]]:
    """Turn ``<img src="data:...">`` into ``cid:`` references: Gmail and Outlook do not show
    ``data:`` images, but every client shows an inline image part.

    Args:
        markup: HTML, e.g. a notebook output that embeds its picture.
        domain: The domain part of the new Content-IDs.

    Returns:
        The HTML with ``cid:`` sources, and ``(file name, bytes, content type, Content-ID
        without angle brackets)`` for each image moved out, to attach as inline parts.
    """
    from email.utils import make_msgid

    moved: list[tuple[str, bytes, str, str]] = []

    def replace(match: re.Match[str]) -> str:
        try:
            data = base64.b64decode("".join(match[4].split()), validate=True)
        except (binascii.Error, ValueError):
            return match[0]  # not decodable: left for the sanitizer to keep or drop
        content_type = match[3].lower()
        cid = make_msgid(domain=domain)[1:-1]
        moved.append(
            (f"image-{len(moved) + 1}.{_EXTENSIONS[content_type]}", data, content_type, cid)
        )
        return f"{match[1]}{match[2]}cid:{cid}{match[2]}"

    return _DATA_IMAGE.sub(replace, markup), moved


def shown_size(size: tuple[int, int], max_width: int = MAX_IMAGE_WIDTH) -> tuple[int, int]:
    """The size an image is shown at: its own, scaled down to ``max_width`` if wider."""
    width, height = size
    if width <= max_width or width == 0:
        return width, height
    return max_width, max(1, round(height * max_width / width))


@functools.cache
def _inliner() -> Any:
    # css-inline is imported on first use: `import smtp_magic` stays light.
    try:
        import css_inline
    except ImportError as exc:  # an environment installed before it became a dependency
        from smtp_magic.errors import ComposeError

        raise ComposeError(
            "HTML bodies need css-inline, which is missing from this Python environment: "
            "`pip install css-inline` (or reinstall smtp-magic, which depends on it)."
        ) from exc

    return css_inline.CSSInliner(
        load_remote_stylesheets=False,  # never fetch anything while building a message
        keep_style_tags=False,
        keep_link_tags=False,
        extra_css=BASE_CSS,
    )


class _Sanitizer(HTMLParser):
    """Re-write inlined HTML: drop what a mail client ignores or must not run, size images."""

    def __init__(self, sizes: Mapping[str, tuple[int, int]]) -> None:
        super().__init__(convert_charrefs=False)
        self.sizes = sizes
        self.out: list[str] = []
        self.dropping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, closed=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, closed=True)

    def _start(self, tag: str, attrs: list[tuple[str, str | None]], *, closed: bool) -> None:
        if self.dropping:
            if tag == self.dropping[-1] and not closed:
                self.dropping.append(tag)
            return
        if tag in _DROP_WITH_CONTENT:
            if not closed and tag not in _VOID:
                self.dropping.append(tag)
            return
        if tag in _DROP_TAG:
            return
        kept = {
            name: value
            for name, value in attrs
            if name not in _DROP_ATTRIBUTES and not name.startswith("on")
        }
        if tag == "img":
            replacement = self._image(kept)
            if replacement is not None:
                self.out.append(replacement)
                return
        style = kept.get("style")
        if style:
            kept["style"] = _compact(style)
        if tag == "table":
            # Outlook's Word engine ignores border-spacing; the old attribute it understands.
            kept.setdefault("cellspacing", "0")
        if tag == "a" and (kept.get("href") or "").lower().lstrip().startswith("javascript:"):
            kept.pop("href")
        self.out.append(_tag(tag, kept))
        if tag == "head":
            self.out.append('<meta charset="utf-8">')

    def _image(self, attributes: dict[str, str | None]) -> str | None:
        """Size a cid: image; replace a remote one by its alt text. None keeps the tag as is."""
        source = (attributes.get("src") or "").strip()
        alt = attributes.get("alt")
        if not source.lower().startswith("cid:"):
            if source.lower().startswith("data:"):
                return None
            # A remote image is fetched when the message is opened (a tracking pixel, or a
            # broken picture offline): show its description instead.
            return html.escape(f"[{alt}]" if alt else "[image]")
        attributes.setdefault("alt", "image")
        size = self.sizes.get(source[4:])
        if size is not None and "width" not in attributes:
            width, height = shown_size(size)
            attributes["width"] = str(width)
            attributes["height"] = str(height)
        return None

    def handle_endtag(self, tag: str) -> None:
        if self.dropping:
            if tag == self.dropping[-1]:
                self.dropping.pop()
            return
        if tag in _DROP_WITH_CONTENT or tag in _DROP_TAG or tag in _VOID:
            return
        self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if not self.dropping:
            self.out.append(data)

    def handle_entityref(self, name: str) -> None:
        if not self.dropping:
            self.out.append(f"&{name};")

    def handle_charref(self, name: str) -> None:
        if not self.dropping:
            self.out.append(f"&#{name};")

    def handle_comment(self, data: str) -> None:
        pass  # conditional comments for Outlook are not ours; drop all comments

    def handle_decl(self, decl: str) -> None:
        pass  # the DOCTYPE is written anew

    def handle_pi(self, data: str) -> None:
        pass


_STYLE_SPACE = re.compile(r"\s*([:;])\s*")


def _compact(style: str) -> str:
    """``color: red; border: 0;`` -> ``color:red;border:0``: the same declarations, shorter."""
    return _STYLE_SPACE.sub(r"\1", style).strip().rstrip(";")


def _tag(tag: str, attributes: Mapping[str, str | None]) -> str:
    parts = [tag]
    for name, value in attributes.items():
        parts.append(name if value is None else f'{name}="{html.escape(value, quote=True)}"')
    return "<" + " ".join(parts) + ">"


def inbox_html(markup: str, image_sizes: Mapping[str, tuple[int, int]] | None = None) -> str:
    """Make an HTML body safe for inboxes: styles inline, no classes, scripts or remote images.

    Args:
        markup: An HTML document or fragment (a fragment is wrapped in a document).
        image_sizes: Pixel sizes of the inline images, by Content-ID without angle brackets;
            each ``<img src="cid:...">`` gets ``width`` and ``height`` attributes (scaled to at
            most :data:`MAX_IMAGE_WIDTH` pixels wide).

    Returns:
        A complete document with ``<!DOCTYPE html>`` and ``<meta charset="utf-8">``, in which
        every style is a ``style`` attribute; rendering it with or without a stylesheet looks
        the same.
    """
    if "<html" not in markup[:2000].lower():
        markup = f"<!DOCTYPE html><html><head></head><body>{markup}</body></html>"
    inlined = _inliner().inline(markup)
    sanitizer = _Sanitizer(image_sizes or {})
    sanitizer.feed(inlined)
    sanitizer.close()
    return "<!DOCTYPE html>\n" + "".join(sanitizer.out) + "\n"
