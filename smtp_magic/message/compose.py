"""Build an EmailMessage from a body, pandas tables, matplotlib figures and files (no network).

The only I/O here is reading attachment files named by path. pandas and matplotlib are optional:
they are never imported here, and a value is recognised as a DataFrame or Figure only if its
library is already loaded (see :func:`smtp_magic.template.is_dataframe`).

The MIME tree for a Markdown body with a figure and a table::

    multipart/mixed
    ├── multipart/alternative
    │   ├── text/plain                 the body as written, tables as text, "[figure: fig.png]"
    │   └── multipart/related
    │       ├── text/html              the body rendered, <img src="cid:...">
    │       └── image/png              inline, Content-ID
    └── text/csv                       df.csv

Without inline images there is no multipart/related; without attachments no multipart/mixed.
"""

from __future__ import annotations

import email.policy
import functools
import html
import io
import mimetypes
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import formatdate, make_msgid
from typing import Any, Literal

from smtp_magic.errors import ComposeError
from smtp_magic.message.htmltext import html_to_text
from smtp_magic.message.template import (
    DEFAULT_DOMAIN,
    has_meaningful_index,
    is_dataframe,
    is_figure,
    render,
    table_html,
)

__all__ = ["POLICY", "compose", "html_to_text"]

# email.policy.default, except that bodies are 7-bit clean (quoted-printable or base64 when
# needed): a server without 8BITMIME (RFC 6152) then passes the message unchanged, and
# smtplib.send_message never has to announce BODY=8BITMIME.
POLICY = email.policy.default.clone(cte_type="7bit")

SUPPORTED = (
    "a pandas DataFrame, a matplotlib Figure, bytes, a file path (str or os.PathLike), "
    "or a (name, one of those) tuple"
)

HTML_STYLE = (
    "body{font-family:sans-serif;line-height:1.4}"
    "table{border-collapse:collapse;margin:0.5em 0}"
    "th,td{border:1px solid #ccc;padding:0.25em 0.6em;text-align:left}"
    "th{background:#f3f3f3}"
    "img{max-width:100%}"
)

_HEADERS = HeaderRegistry()
_COMPRESSED = {"gzip": "application/gzip", "bzip2": "application/x-bzip2", "xz": "application/x-xz"}


_LINE_BREAKS = frozenset("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


@functools.cache
def _markdown() -> Any:
    """The Markdown renderer, built on first use: ``import smtp_magic`` need not load it."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).enable("table")


def _short(value: str) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _one_line(field_name: str, value: str) -> str:
    """Refuse line breaks in a header value, before the email package ever sees it."""
    # CR and LF, plus the other characters str.splitlines() breaks at: the email package
    # refuses those with a bare ValueError, so name them here with the field.
    if any(char in _LINE_BREAKS for char in value):
        raise ComposeError(
            f"{field_name} {_short(value)} contains a line break; header values must be one line "
            "(this prevents header injection)"
        )
    return value


def _idna(domain: str, field_name: str, raw: str) -> str:
    """Return the ASCII (IDNA) form of a domain, so the address works without SMTPUTF8."""
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ComposeError(
            f"{field_name} address {_short(raw)} has a domain that cannot be written in ASCII "
            f"(IDNA: {exc}); check the spelling of the domain"
        ) from exc


def _parse_addresses(field_name: str, value: str | Iterable[str] | None) -> list[Address]:
    """Parse a comma-separated string or an iterable of strings into validated addresses."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    addresses: list[Address] = []
    for item in items:
        if not isinstance(item, str):
            raise ComposeError(
                f"{field_name} contains {_short(repr(item))} of type {type(item).__name__}; "
                "give addresses as strings like 'Alice <alice@example.org>'"
            )
        _one_line(field_name, item)
        if not item.strip():
            continue
        addresses.extend(_parse_one(field_name, item))
    return addresses


def _bad_address(field_name: str, raw: str, why: str) -> ComposeError:
    return ComposeError(
        f"{field_name} address {_short(raw)} is malformed ({why}); "
        "write it as name@example.org or 'Name <name@example.org>', separated by commas"
    )


def _parse_one(field_name: str, raw: str) -> list[Address]:
    try:
        header = _HEADERS("To", raw)  # any address-list header name parses the same way
    except (HeaderParseError, IndexError, ValueError) as exc:  # the parser has rough edges
        raise _bad_address(field_name, raw, "it cannot be parsed") from exc
    allowed = {"NonASCIILocalPartDefect"}  # allowed: the sender then needs SMTPUTF8 (RFC 6531)
    defects = [d for d in header.defects if type(d).__name__ not in allowed]
    if defects:
        raise _bad_address(field_name, raw, str(defects[0]).rstrip("."))
    result: list[Address] = []
    for group in header.groups:  # type: ignore[attr-defined]  # an AddressHeader
        if group.display_name is not None:
            raise _bad_address(
                field_name, raw, "address groups 'name: a@b, c@d;' are not supported"
            )
        for address in group.addresses:
            if not address.username:
                raise _bad_address(field_name, raw, "the part before @ is empty")
            if not address.domain:
                raise _bad_address(field_name, raw, "there is no @domain")
            result.append(
                Address(
                    display_name=address.display_name.strip(),
                    username=address.username,
                    domain=_idna(address.domain, field_name, raw),
                )
            )
    if not result:
        raise _bad_address(field_name, raw, "no address found")
    return result


_CHECKED_HEADERS = ("From", "To", "Cc", "Bcc", "Reply-To", "Subject")


def _check_round_trip(message: EmailMessage) -> None:
    """Refuse a header that the email package would not write faithfully.

    Folding long non-ASCII display names into RFC 2047 encoded-words can add a space in
    CPython 3.11 (found by the property test); a recipient would then see a different name.
    Each header is folded as smtplib sends it and parsed back; a difference is an error.
    """
    folded = b"".join(
        email.policy.SMTP.fold_binary(name, message[name])
        for name in _CHECKED_HEADERS
        if name in message
    )
    parsed = BytesParser(policy=email.policy.default).parsebytes(folded + b"\r\n", headersonly=True)
    for name in _CHECKED_HEADERS:
        if name not in message:
            continue
        ours, theirs = message[name], parsed[name]
        if name == "Subject":
            same = str(ours) == str(theirs)
        else:
            same = ours.addresses == getattr(theirs, "addresses", None)
        if not same:
            raise ComposeError(
                f"{name} {_short(str(ours))} would arrive as {_short(str(theirs))}: Python's "
                "email package cannot encode it faithfully; shorten it or simplify its spacing"
            )


def _document(body_html: str) -> str:
    return (
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
        f"<style>{HTML_STYLE}</style>\n</head>\n<body>\n{body_html}\n</body>\n</html>\n"
    )


def _append_to_document(document: str, extra: str) -> str:
    """Add HTML at the end of a document's body, or of a fragment."""
    if not extra:
        return document
    position = document.lower().rfind("</body>")
    if position == -1:
        return f"{document}\n{extra}"
    return f"{document[:position]}{extra}\n{document[position:]}"


@dataclass
class _Parts:
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


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
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


def _collect(
    attachments: Iterable[object],
    parts: _Parts,
    *,
    inline_figures: bool,
    shown_tables: set[int],
    shown_figures: dict[int, str],
    domain: str,
) -> None:
    """Sort attachments into files, tables and figures, giving each a unique file name."""
    if isinstance(attachments, (str, bytes, os.PathLike)) or is_dataframe(attachments):
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
                    f"attachment tuple {_short(repr(item))} must be (name, value) with a str name"
                )
            name, value = item
            _one_line("attachment name", name)
            if not name.strip():
                raise ComposeError("attachment name is empty; give a file name such as 'df.csv'")
        if is_dataframe(value):
            csv_name = name if name and name.lower().endswith(".csv") else None
            csv_name = csv_name or (f"{name}.csv" if name else default_name("table", ".csv"))
            frame: Any = value
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
            png = _png(value)
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
            filename = _one_line("attachment file name", name or os.path.basename(path))
            content_type = _guess_type(filename, path)
            parts.files.append(
                (parts.unique(filename), content_type, data, _file_params(content_type, data))
            )
        else:
            raise ComposeError(
                f"cannot attach {_short(repr(value))} of type {type(value).__name__}; "
                f"an attachment is {SUPPORTED}"
            )


def compose(
    *,
    to: str | Iterable[str],
    subject: str,
    body: str,
    sender: str | None = None,
    cc: str | Iterable[str] = (),
    bcc: str | Iterable[str] = (),
    reply_to: str | None = None,
    attachments: Iterable[object] = (),
    format: Literal["markdown", "html", "text"] = "markdown",
    template_vars: Mapping[str, object] | None = None,
) -> EmailMessage:
    """Build a well-formed message from text, tables, figures and files.

    Nothing is sent and nothing but attachment files is read. Bcc recipients are kept in a
    ``Bcc`` header so the message knows them; the sender takes them as envelope recipients and
    removes the header before the message leaves (as ``smtplib.SMTP.send_message`` does).

    Args:
        to: Recipients: ``"a@example.org, Bob <b@example.org>"`` or a list of such strings.
        subject: One line. With ``template_vars``, a Jinja2 template rendered as text.
        body: Markdown, HTML or plain text, as ``format`` says; with ``template_vars``, a Jinja2
            template.
        sender: The From address; if None, From stays unset and the sender fills it in from
            ``Settings.sender``.
        cc: Copy recipients, like ``to``.
        bcc: Blind copy recipients, like ``to``.
        reply_to: Where replies go, if not to the sender.
        attachments: DataFrames (shown as a table and attached as CSV), matplotlib Figures
            (shown inline as PNG), bytes, file paths, or ``(name, value)`` tuples to name them:
            ``("df", df)`` gives ``df.csv``, ``("fig", fig)`` gives ``fig.png``.
        format: ``"markdown"`` (text plus rendered HTML), ``"html"`` (HTML plus a text
            version) or ``"text"`` (plain text only; figures become attachments).
        template_vars: If given, the names the subject and body templates may use. A
            DataFrame shows as a table and a Figure inline; other values are HTML-escaped.

    Returns:
        The message, with Date and Message-ID set; From set only if ``sender`` was given.

    Raises:
        ComposeError: A malformed address, no recipient, a line break in a header, an
            attachment that is missing or of an unsupported type, or a template error.
    """
    if format not in ("markdown", "html", "text"):
        raise ComposeError(f"format {format!r} is unknown; use 'markdown', 'html' or 'text'")
    if not isinstance(subject, str) or not isinstance(body, str):
        raise ComposeError("subject and body must be strings")
    _one_line("subject", subject)
    senders = _parse_addresses("sender", sender)
    if len(senders) > 1:
        raise ComposeError(f"sender {_short(sender or '')} names several addresses; give one")
    recipients = {
        "To": _parse_addresses("to", to),
        "Cc": _parse_addresses("cc", cc),
        "Bcc": _parse_addresses("bcc", bcc),
    }
    if not any(recipients.values()):
        raise ComposeError("the message has no recipient; give at least one of to, cc or bcc")
    replies = _parse_addresses("reply_to", reply_to)
    domain = senders[0].domain if senders else DEFAULT_DOMAIN
    if domain.startswith("["):  # an address literal makes a poor Message-ID domain
        domain = DEFAULT_DOMAIN

    shown_tables: set[int] = set()
    shown_figures: dict[int, str] = {}
    inline_from_template: list[tuple[str, bytes, str]] = []
    text_attachments_from_template: list[tuple[str, Any]] = []
    html_body: str | None = None
    if template_vars is None:
        text_body = html_to_text(body) if format == "html" else body
        if format == "markdown":
            html_body = _markdown().render(body)
        elif format == "html":
            html_body = body
    else:
        subject = render(subject, template_vars, mode="text", label="the subject template").text
        _one_line("subject (after rendering the template)", subject)
        label = "the body template"
        if format == "text":
            rendered = render(body, template_vars, mode="text", domain=domain, label=label)
            text_body = rendered.text
            text_attachments_from_template = [(f.name, f.figure) for f in rendered.figures]
        else:
            rendered = render(body, template_vars, mode="html", domain=domain, label=label)
            if format == "markdown":
                html_body = _markdown().render(rendered.text)
                text_body = render(
                    body, template_vars, mode="text", domain=domain, label=label
                ).text
            else:
                html_body = rendered.text
                text_body = html_to_text(html_body)
            for figure in rendered.figures:
                shown_figures[id(figure.figure)] = figure.name
                inline_from_template.append((figure.name, _png(figure.figure), figure.cid))
        shown_tables.update(id(table) for table in rendered.tables)

    parts = _Parts(figures=list(inline_from_template))
    for name, _png_bytes, _cid in inline_from_template:
        parts.unique(name)
    for name, figure in text_attachments_from_template:
        parts.files.append((parts.unique(name), "image/png", _png(figure), {}))
        shown_figures[id(figure)] = name
    _collect(
        attachments,
        parts,
        inline_figures=format != "text",
        shown_tables=shown_tables,
        shown_figures=shown_figures,
        domain=domain,
    )

    # Tables and figures given as attachments (not shown by the template) go after the body.
    extra_text = [table.to_string() for table in parts.tables]
    extra_html = [table_html(table) for table in parts.tables]
    for name, _png_bytes, cid in parts.figures[len(inline_from_template) :]:
        extra_text.append(f"[figure: {name}]")
        extra_html.append(
            f'<p><img src="cid:{html.escape(cid[1:-1])}" alt="figure: {html.escape(name)}"></p>'
        )
    if extra_text:
        text_body = text_body.rstrip("\n") + "\n\n" + "\n\n".join(extra_text) + "\n"

    message = EmailMessage(policy=POLICY)
    if senders:
        message["From"] = senders[0]
    for header, addresses in recipients.items():
        if addresses:
            message[header] = addresses
    if replies:
        message["Reply-To"] = replies
    message["Subject"] = subject.strip()  # leading blanks would not survive parsing anyway
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=domain)
    _check_round_trip(message)

    message.set_content(text_body)
    if html_body is not None:
        is_document = "<html" in html_body[:1000].lower()
        document = html_body if is_document else _document(html_body)
        message.add_alternative(
            _append_to_document(document, "\n".join(extra_html)), subtype="html"
        )
        if parts.figures:
            html_part = message.get_payload()[1]  # type: ignore[index]  # [text, html]
            for name, png, cid in parts.figures:
                html_part.add_related(  # type: ignore[union-attr]
                    png, "image", "png", cid=cid, disposition="inline", filename=name
                )
    for filename, content_type, data, params in parts.files:
        maintype, subtype = content_type.split("/", 1)
        message.add_attachment(data, maintype, subtype, filename=filename, params=params or None)
    for part in message.walk():
        if part is not message:
            del part[
                "MIME-Version"
            ]  # the email package adds it to every part; RFC 2045 wants it once
    return message
