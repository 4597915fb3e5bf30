"""html_to_text(): a readable plain-text version of an HTML body, for the text/plain alternative."""

from __future__ import annotations

from html.parser import HTMLParser

__all__ = ["html_to_text"]


_BLOCK_TAGS = (
    "address article aside blockquote dd div dl dt footer form h1 h2 h3 h4 h5 h6 header hr "
    "li main nav ol p pre section table tbody thead tfoot tr ul"
)


class _TextFromHTML(HTMLParser):
    """Turn HTML into readable plain text: block elements become lines, links keep their URL."""

    BLOCK = frozenset(_BLOCK_TAGS.split())
    SKIP = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0
        self.pre = 0
        self.cells = 0
        self.href: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag in self.SKIP:
            self.skipping += 1
        elif tag == "br":
            self.out.append("\n")
        elif tag == "pre":
            self.pre += 1
            self.out.append("\n\n")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag == "tr":
            self.cells = 0
            self.out.append("\n")
        elif tag in ("td", "th"):
            if self.cells:
                self.out.append(" | ")
            self.cells += 1
        elif tag == "img":
            alt = attributes.get("alt")
            if alt:
                self.out.append(f"[{alt}]")
        elif tag == "a":
            self.href.append(attributes.get("href"))
        elif tag in self.BLOCK:
            self.out.append("\n\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "a":
            self.href.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
            self.out.append("\n\n")
        elif tag == "a" and self.href:
            href = self.href.pop()
            if href and not href.startswith(("#", "mailto:", "cid:")):
                self.out.append(f" <{href}>")
        elif tag in self.BLOCK and tag not in ("li", "tr"):
            self.out.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        self.out.append(data if self.pre else _spaced(data))

    def text(self) -> str:
        lines = [line.strip() for line in "".join(self.out).splitlines()]
        text = "\n".join(lines)
        while "\n\n\n" in text:
            text = text.replace("\n\n\n", "\n\n")
        return text.strip() + "\n"


def _spaced(data: str) -> str:
    """Collapse whitespace, keeping one space at either end if there was any there."""
    core = " ".join(data.split())
    if not core:
        return " " if data else ""
    lead = " " if data[:1].isspace() else ""
    trail = " " if data[-1:].isspace() else ""
    return f"{lead}{core}{trail}"


def html_to_text(markup: str) -> str:
    """Return a readable plain-text version of an HTML body (simple: no layout, no CSS).

    Args:
        markup: An HTML fragment or document.

    Returns:
        The text, with paragraphs separated by blank lines, list items as "- ", table cells
        separated by " | ", images as their alt text and links followed by their URL.
    """
    parser = _TextFromHTML()
    parser.feed(markup)
    parser.close()
    return parser.text()
