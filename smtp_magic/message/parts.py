"""Attachments sorted into files, tables and inline figures, each with a unique name (reads named files)."""

from __future__ import annotations

import io
import mimetypes
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.utils import make_msgid
from typing import Any

from smtp_magic.errors import ComposeError
from smtp_magic.message.addresses import one_line, short
from smtp_magic.message.inbox import MAX_IMAGE_WIDTH
from smtp_magic.message.template import has_meaningful_index, is_figure, is_styler, is_table

__all__ = ["SUPPORTED", "Parts", "collect", "png_bytes"]

SUPPORTED = (
    "a pandas DataFrame, a matplotlib Figure, bytes, a file path (str or os.PathLike), "
    "or a (name, one of those) tuple"
)

_COMPRESSED = {"gzip": "application/gzip", "bzip2": "application/x-bzip2", "xz": "application/x-xz"}


@dataclass
class Parts:
    """What the attachments contribute: files, tables to show, figures to show inline."""

    files: list[tuple[str, str, bytes, dict[str, str]]] = field(default_factory=list)
    tables: list[Any] = field(default_factory=list)
    figures: list[tuple[str, bytes, str]] = field(default_factory=list)  # name, png, cid
    names: set[str] = field(default_factory=set)

    def unique(self, name: str) -> str:
        """Make a file name unique in this message: report.csv, report-2.csv, ..."""
        stem, ext = os.path.splitext(name)
        candidate, number = name, 1
        while candidate.lower() in self.names:
            number += 1
            candidate = f"{stem}-{number}{ext}"
        self.names.add(candidate.lower())
        return candidate


# Twice the widest an image is shown (sharp on high-density screens); more is bytes no one sees.
MAX_FIGURE_PIXELS = 2 * MAX_IMAGE_WIDTH


def png_bytes(figure: Any) -> bytes:
    """A matplotlib figure as PNG, downscaled to at most MAX_FIGURE_PIXELS wide.

    Lowering the dpi keeps the figure's look (text scales with it); only pixels go.
    """
    dpi = sys.modules["matplotlib"].rcParams["savefig.dpi"]
    dpi = figure.dpi if dpi == "figure" else float(dpi)
    width = figure.get_size_inches()[0] * dpi
    if width > MAX_FIGURE_PIXELS:
        dpi *= MAX_FIGURE_PIXELS / width
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight", dpi=dpi)
    return buffer.getvalue()


def _guess_type(*names: str) -> str:
    for name in names:
        content_type, encoding = mimetypes.guess_type(name, strict=False)
        if encoding is not None:
            return _COMPRESSED.get(encoding, "application/octet-stream")
        if content_type is not None:
            return content_type
    return "application/octet-stream"


def _read_file(path: str | os.PathLike[str]) -> bytes:
    shown = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError as exc:
        raise ComposeError(
            f"attachment {shown!r} does not exist (looked in {os.path.abspath(shown)!r}); "
            "check the path, or pass the data itself instead of a path"
        ) from exc
    except IsADirectoryError as exc:
        raise ComposeError(
            f"attachment {shown!r} is a directory; attach the files in it, or a zip of it"
        ) from exc
    except OSError as exc:
        raise ComposeError(
            f"attachment {shown!r} cannot be read ({exc.strerror}); check its permissions"
        ) from exc


def _file_params(content_type: str, data: bytes) -> dict[str, str]:
    """Declare charset=utf-8 on text attachments that are UTF-8, so clients show them right."""
    if not content_type.startswith("text/"):
        return {}
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return {}
    return {"charset": "utf-8"}


def collect(
    attachments: Iterable[object],
    parts: Parts,
    *,
    inline_figures: bool,
    shown_tables: set[int],
    shown_figures: dict[int, str],
    domain: str,
) -> None:
    """Sort attachments into files, tables and figures, giving each a unique file name."""
    if isinstance(attachments, (str, bytes, os.PathLike)) or is_table(attachments):
        attachments = [attachments]  # one attachment given bare; tolerate it
    unnamed = {"table": 0, "figure": 0, "attachment": 0}

    def default_name(kind: str, ext: str) -> str:
        unnamed[kind] += 1
        return f"{kind}{ext}" if unnamed[kind] == 1 else f"{kind}-{unnamed[kind]}{ext}"

    for item in attachments:
        name: str | None = None
        value = item
        if isinstance(item, tuple):
            if len(item) != 2 or not isinstance(item[0], str):
                raise ComposeError(
                    f"attachment tuple {short(repr(item))} must be (name, value) with a str name"
                )
            name, value = item
            one_line("attachment name", name)
            if not name.strip():
                raise ComposeError("attachment name is empty; give a file name such as 'df.csv'")
        if is_table(value):
            csv_name = name if name and name.lower().endswith(".csv") else None
            csv_name = csv_name or (f"{name}.csv" if name else default_name("table", ".csv"))
            frame: Any = value.data if is_styler(value) else value  # type: ignore[attr-defined]
            csv_text = frame.to_csv(index=has_meaningful_index(frame))
            parts.files.append(
                (parts.unique(csv_name), "text/csv", csv_text.encode("utf-8"), {"charset": "utf-8"})
            )
            if id(value) not in shown_tables:
                shown_tables.add(id(value))
                parts.tables.append(value)
        elif is_figure(value):
            if id(value) in shown_figures:
                continue  # the template already shows it inline
            png_name = name if name and name.lower().endswith(".png") else None
            png_name = parts.unique(
                png_name or (f"{name}.png" if name else default_name("figure", ".png"))
            )
            png = png_bytes(value)
            if inline_figures:
                shown_figures[id(value)] = png_name
                parts.figures.append((png_name, png, make_msgid(domain=domain)))
            else:
                parts.files.append((png_name, "image/png", png, {}))
        elif isinstance(value, (bytes, bytearray)):
            filename = parts.unique(name or default_name("attachment", ".bin"))
            content_type = _guess_type(name) if name else "application/octet-stream"
            data = bytes(value)
            parts.files.append((filename, content_type, data, _file_params(content_type, data)))
        elif isinstance(value, (str, os.PathLike)):
            path = os.fspath(value)
            if isinstance(path, bytes):
                path = os.fsdecode(path)
            data = _read_file(path)
            filename = one_line("attachment file name", name or os.path.basename(path))
            content_type = _guess_type(filename, path)
            parts.files.append(
                (parts.unique(filename), content_type, data, _file_params(content_type, data))
            )
        else:
            raise ComposeError(
                f"cannot attach {short(repr(value))} of type {type(value).__name__}; "
                f"an attachment is {SUPPORTED}"
            )
