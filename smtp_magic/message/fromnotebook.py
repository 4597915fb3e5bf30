"""Render a notebook's chosen cells and outputs as an inbox-safe email (no I/O, no kernel).

The notebook is the JSON structure of nbformat 4 (a dict, or nbformat's NotebookNode). What is
shown, cell by cell:

- Markdown cells: rendered (CommonMark plus tables); their source is the plain text.
- Code cells: their outputs only, never the code. For each output the richest form a mail
  client can show is taken: PNG/JPEG/GIF images (as ``cid:`` inline images), then HTML
  (DataFrames, Stylers; inlined by :func:`smtp_magic.message.inbox.inbox_html`), then Markdown,
  then plain text. ``stdout`` is shown as preformatted text, ``stderr`` (warnings) is not.

``cells="tagged"`` shows only cells tagged ``email``; ``cells="all"`` shows every cell except
those tagged ``parameters``, ``injected-parameters`` or ``email-hide``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any, Literal

from smtp_magic.errors import ComposeError
from smtp_magic.message.htmltext import html_to_text
from smtp_magic.message.inbox import data_images, image_size, inbox_html
from smtp_magic.message.template import DEFAULT_DOMAIN

__all__ = ["InlineImage", "RenderedNotebook", "add_inline_images", "render_notebook"]

EMAIL_TAG = "email"
HIDDEN_TAGS = frozenset({"parameters", "injected-parameters", "email-hide"})
_IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif")
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif"}


@dataclass(frozen=True)
class InlineImage:
    """An image shown in the HTML body, sent as a ``multipart/related`` part.

    Attributes:
        name: Its file name, e.g. ``"figure-2.png"``.
        data: The image file's bytes.
        content_type: ``"image/png"``, ``"image/jpeg"`` or ``"image/gif"``.
        cid: The Content-ID without angle brackets, as ``<img src="cid:...">`` names it.
    """

    name: str
    data: bytes
    content_type: str
    cid: str


@dataclass(frozen=True)
class RenderedNotebook:
    """The chosen parts of a notebook as an email body.

    Attributes:
        html: The inbox-safe HTML document.
        text: The plain-text alternative (tables as aligned columns, figures as ``[alt]``).
        images: The inline images the HTML shows.
        cells: How many cells contributed something.
    """

    html: str
    text: str
    images: tuple[InlineImage, ...]
    cells: int


@functools.cache
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).enable("table")


def _source(value: object) -> str:
    """nbformat stores multi-line strings either as a string or a list of lines."""
    if isinstance(value, list):
        return "".join(str(line) for line in value)
    return str(value or "")


def _tags(cell: Mapping[str, Any]) -> set[str]:
    metadata = cell.get("metadata") or {}
    return {str(tag) for tag in metadata.get("tags") or ()}


def chosen_cells(
    notebook: Mapping[str, Any], cells: Literal["tagged", "all"]
) -> list[tuple[int, Mapping[str, Any]]]:
    """The cells to show, with their 1-based numbers.

    Args:
        notebook: The notebook (nbformat 4 JSON structure).
        cells: ``"tagged"`` (cells tagged ``email``) or ``"all"``.

    Raises:
        ComposeError: ``cells`` is neither, or the notebook has no cells list.
    """
    if cells not in ("tagged", "all"):
        raise ComposeError(f"cells={cells!r} is unknown; use 'tagged' or 'all'")
    found = notebook.get("cells")
    if not isinstance(found, list):
        raise ComposeError("this is not an nbformat 4 notebook: it has no list of cells")
    chosen = []
    for number, cell in enumerate(found, start=1):
        tags = _tags(cell)
        if (cells == "tagged" and EMAIL_TAG in tags) or (cells == "all" and not tags & HIDDEN_TAGS):
            chosen.append((number, cell))
    return chosen


class _Builder:
    """Collects the HTML blocks, text blocks and images of the chosen cells."""

    def __init__(self, domain: str) -> None:
        self.domain = domain
        self.html: list[str] = []
        self.text: list[str] = []
        self.images: list[InlineImage] = []

    def markdown(self, source: str) -> None:
        if source.strip():
            self.html.append(_markdown().render(source))
            self.text.append(source.strip())

    def preformatted(self, text: str) -> None:
        if text.strip():
            self.html.append(f"<pre>{html.escape(text.rstrip())}</pre>")
            self.text.append(text.rstrip())

    def rich_html(self, markup: str) -> None:
        if markup.strip():
            markup, moved = data_images(markup, self.domain)
            for name, data, content_type, cid in moved:
                number = len(self.images) + 1
                extension = name.rsplit(".", 1)[1]
                self.images.append(
                    InlineImage(f"image-{number}.{extension}", data, content_type, cid)
                )
            self.html.append(markup)
            self.text.append(html_to_text(markup).strip("\n"))  # keep a table's indent

    def image(self, content_type: str, encoded: object, alt: str) -> None:
        try:
            data = base64.b64decode(_source(encoded), validate=False)
        except (binascii.Error, ValueError):
            return  # a corrupt image output is left out rather than sent broken
        number = len(self.images) + 1
        name = f"figure-{number}.{_EXTENSIONS[content_type]}"
        cid = make_msgid(domain=self.domain)[1:-1]
        self.images.append(InlineImage(name, data, content_type, cid))
        self.html.append(
            f'<p><img src="cid:{html.escape(cid, quote=True)}" alt="{html.escape(alt, quote=True)}"></p>'
        )
        self.text.append(f"[{alt}]")

    def output(self, output: Mapping[str, Any], figure_number: int) -> None:
        kind = output.get("output_type")
        if kind == "stream":
            if output.get("name") == "stdout":
                self.preformatted(_source(output.get("text")))
            return
        if kind == "error":
            trace = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
            self.html.append(f'<p style="color:#b00020"><strong>{html.escape(trace)}</strong></p>')
            self.text.append(f"ERROR {trace}")
            return
        data = output.get("data") or {}
        for content_type in _IMAGE_TYPES:
            if content_type in data:
                plain = _source(data.get("text/plain")).strip()
                alt = plain if plain and not plain.startswith("<") else f"Figure {figure_number}"
                self.image(content_type, data[content_type], alt)
                return
        if "text/html" in data:
            self.rich_html(_source(data["text/html"]))
        elif "text/markdown" in data:
            self.markdown(_source(data["text/markdown"]))
        elif "text/plain" in data:
            self.preformatted(_source(data["text/plain"]))


def render_notebook(
    notebook: Mapping[str, Any],
    *,
    cells: Literal["tagged", "all"] = "tagged",
    domain: str = DEFAULT_DOMAIN,
    notice: str | None = None,
) -> RenderedNotebook:
    """Render the chosen cells of an executed notebook as an inbox-safe HTML and a text body.

    Args:
        notebook: The notebook (nbformat 4 JSON structure), with outputs.
        cells: ``"tagged"`` (cells tagged ``email``) or ``"all"``.
        domain: The domain part of the inline images' Content-IDs.
        notice: A warning shown first, in red (e.g. that a cell failed and the report is
            incomplete).

    Returns:
        The HTML document, the text alternative and the inline images.

    Raises:
        ComposeError: ``cells`` is unknown, or nothing was chosen (no cell tagged ``email``
            with ``cells="tagged"``; an empty notebook).
    """
    builder = _Builder(domain)
    contributed = 0
    for _number, cell in chosen_cells(notebook, cells):
        before = len(builder.html)
        if cell.get("cell_type") == "markdown":
            builder.markdown(_source(cell.get("source")))
        elif cell.get("cell_type") == "code":
            for output in cell.get("outputs") or ():
                builder.output(output, len(builder.images) + 1)
        contributed += len(builder.html) > before
    if not contributed:
        where = "no cell is tagged 'email'" if cells == "tagged" else "no cell shows anything"
        raise ComposeError(
            f"the notebook gives nothing to send: {where}. Tag the cells to send 'email' "
            "(View > Cell Toolbar > Tags in Jupyter), or send all cells with cells='all'."
        )
    sizes = {}
    for image in builder.images:
        size = image_size(image.data)
        if size is not None:
            sizes[image.cid] = size
    if notice:
        builder.html.insert(
            0, f'<p style="color:#b00020"><strong>{html.escape(notice)}</strong></p>'
        )
        builder.text.insert(0, notice)
    document = inbox_html("\n".join(builder.html), sizes)
    text = "\n\n".join(block for block in builder.text if block) + "\n"
    return RenderedNotebook(document, text, tuple(builder.images), contributed)


def add_inline_images(message: EmailMessage, images: Iterable[InlineImage]) -> None:
    """Attach ``images`` to the HTML body of ``message`` (a ``multipart/related`` is made).

    Also removes the ``MIME-Version`` header the email package adds to parts it rebuilds.
    The images belong to the HTML alone, as Thunderbird builds it: ``multipart/alternative`` >
    (``text/plain``, ``multipart/related`` > (``text/html``, images)).

    Raises:
        ComposeError: the message has no HTML body.
    """
    part = message.get_body(preferencelist=("html",))
    if part is None:
        raise ComposeError("the message has no HTML body to show the images in")
    for image in images:
        maintype, subtype = image.content_type.split("/", 1)
        part.add_related(
            image.data,
            maintype,
            subtype,
            cid=f"<{image.cid}>",
            disposition="inline",
            filename=image.name,
        )
    for sub in message.walk():
        if sub is not message:
            del sub["MIME-Version"]  # RFC 2045 wants it once, at the top
