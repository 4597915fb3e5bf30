"""html_to_text(): a readable plain-text version of an HTML body, for the text/plain alternative."""

from __future__ import annotations

from html.parser import HTMLParser

__all__ = ["aligned", "html_to_text"]


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
        self.href: list[str | None] = []
        # Tables are collected cell by cell and written out as aligned columns at </table>.
        self.tables: list[list[list[str]]] = []
        self.cell: list[str] | None = None

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
        elif tag == "table":
            self.tables.append([])
            self.out.append("\n\n")
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag == "caption" and self.tables:
            self.cell = []
        elif tag in ("td", "th") and self.tables:
            if not self.tables[-1]:
                self.tables[-1].append([])
            self.cell = []
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
        if tag in ("td", "th") and self.cell is not None and self.tables:
            self.tables[-1][-1].append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "caption" and self.cell is not None:
            self.out.append(" ".join("".join(self.cell).split()) + "\n")
            self.cell = None
        elif tag == "table" and self.tables:
            self.cell = None
            rows = self.tables.pop()
            self.out.append("\n".join(_TABLE_LINE + line for line in aligned(rows)) + "\n\n")
        elif tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
            self.out.append("\n\n")
        elif tag == "a" and self.href:
            href = self.href.pop()
            if href and not href.startswith(("#", "mailto:", "cid:")):
                self.out.append(f" <{href}>")
        elif tag in self.BLOCK and tag not in ("li", "tr", "table"):
            self.out.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if self.cell is not None:
            self.cell.append(data)
            return
        if self.tables:
            return  # white space between rows and cells
        self.out.append(data if self.pre else _spaced(data))

    def text(self) -> str:
        lines = [
            line[len(_TABLE_LINE) :].rstrip() if line.startswith(_TABLE_LINE) else line.strip()
            for line in "".join(self.out).splitlines()
        ]
        text = "\n".join(lines)
        while "\n\n\n" in text:
            text = text.replace("\n\n\n", "\n\n")
        return text.strip("\n") + "\n"  # lines are stripped; an aligned table keeps its indent


# Marks a line of an aligned table, whose leading spaces are alignment and must stay.
_TABLE_LINE = "\x00"


def _numeric(text: str) -> bool:
    """A cell that reads as a number (``-1,234.5``, ``12%``) is right-aligned, as pandas does."""
    core = text.replace(",", "").replace("_", "").rstrip("%").strip()
    try:
        float(core)
    except ValueError:
        return False
    return True


def aligned(rows: list[list[str]]) -> list[str]:
    """Lay out table rows as text columns separated by two spaces; numbers right-aligned.

    Args:
        rows: The cells' text, row by row (rows may have fewer cells than others).

    Returns:
        One string per row, trailing spaces removed; an empty list for an empty table.
    """
    rows = [row for row in rows if row]
    if not rows:
        return []
    width = max(len(row) for row in rows)
    rows = [row + [""] * (width - len(row)) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(width)]
    # A column is numeric when all its non-empty cells but the header row are numbers.
    numeric = [
        all(_numeric(row[i]) for row in rows[1:] if row[i]) and any(row[i] for row in rows[1:])
        for i in range(width)
    ]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(widths[i]) if numeric[i] else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


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
        The text, with paragraphs separated by blank lines, list items as "- ", tables as
        aligned columns (numbers right-aligned), images as their alt text and links followed by their URL.
    """
    parser = _TextFromHTML()
    parser.feed(markup)
    parser.close()
    return parser.text()
