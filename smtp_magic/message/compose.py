"""Build an EmailMessage from a body, pandas tables, matplotlib figures and files (no network).

The only I/O here is reading attachment files named by path. pandas and matplotlib are optional:
they are never imported here, and a value is recognised as a DataFrame or Figure only if its
library is already loaded (see :func:`smtp_magic.template.is_dataframe`).

The MIME tree for a Markdown body with a figure and a table::

    multipart/mixed
    ├── multipart/alternative
    │   ├── text/plain                 the body as written, tables as text, "[figure: fig.png]"
    │   └── multipart/related
    │       ├── text/html              the body rendered, inbox-safe (message.inbox), <img src="cid:...">
    │       └── image/png              inline, Content-ID
    └── text/csv                       df.csv

Without inline images there is no multipart/related; without attachments no multipart/mixed.
"""

from __future__ import annotations

import email.policy
import functools
import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Literal

from smtp_magic.errors import ComposeError
from smtp_magic.message.addresses import (
    check_headers,
    check_round_trip,
    one_line,
    parse_addresses,
    short,
)
from smtp_magic.message.htmltext import html_to_text
from smtp_magic.message.inbox import BASE_CSS, data_images, image_size, inbox_html
from smtp_magic.message.parts import Parts, collect, png_bytes
from smtp_magic.message.template import DEFAULT_DOMAIN, render, table_html, table_text

__all__ = ["POLICY", "compose", "html_to_text"]

# email.policy.default, except that bodies are 7-bit clean (quoted-printable or base64 when
# needed): a server without 8BITMIME (RFC 6152) then passes the message unchanged, and
# smtplib.send_message never has to announce BODY=8BITMIME.
POLICY = email.policy.default.clone(cte_type="7bit")

# The house style lives in message.inbox (BASE_CSS) and is inlined into every HTML body.
HTML_STYLE = BASE_CSS


@functools.cache
def _markdown() -> Any:
    """The Markdown renderer, built on first use: ``import smtp_magic`` need not load it."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).enable("table")


def _document(body_html: str) -> str:
    # No <style>: inbox_html writes the house style into each element.
    return f"<!DOCTYPE html>\n<html>\n<head></head>\n<body>\n{body_html}\n</body>\n</html>\n"


def _append_to_document(document: str, extra: str) -> str:
    """Add HTML at the end of a document's body, or of a fragment."""
    if not extra:
        return document
    position = document.lower().rfind("</body>")
    if position == -1:
        return f"{document}\n{extra}"
    return f"{document[:position]}{extra}\n{document[position:]}"


def _text_only(field_name: str, text: str | None) -> None:
    """Refuse a lone surrogate: not text, and no encoding can write it (a raw UnicodeEncodeError)."""
    if text is None or text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ComposeError(
            f"{field_name} holds {text[exc.start]!r} at position {exc.start}, a lone surrogate, "
            "which is not text: it comes from bytes read with errors='surrogateescape' (a file "
            "or stdin that is not UTF-8). Decode them with their real encoding first"
        ) from None


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
            ``("df", df)`` gives ``df.csv``, ``("fig", fig)`` gives ``fig.png``. None: none.
        format: ``"markdown"`` (text plus rendered HTML), ``"html"`` (HTML plus a text
            version) or ``"text"`` (plain text only; figures become attachments).
        template_vars: If given, the names the subject and body templates may use. A
            DataFrame shows as a table and a Figure inline; other values are HTML-escaped.

    Returns:
        The message, with Date and Message-ID set; From set only if ``sender`` was given.

    Raises:
        ComposeError: A malformed address, no recipient, a line break in a header or in any
            header parameter once decoded (an attachment's file name given as an RFC 2047
            encoded-word), text that is not text (a lone surrogate), an attachment that is
            missing or of an unsupported type, or a template error.
    """
    if format not in ("markdown", "html", "text"):
        raise ComposeError(f"format {format!r} is unknown; use 'markdown', 'html' or 'text'")
    if not isinstance(subject, str) or not isinstance(body, str):
        raise ComposeError("subject and body must be strings")
    if template_vars is not None and not isinstance(template_vars, Mapping):
        raise ComposeError(
            f"template_vars must map names to values (a dict, or globals()), not "
            f"{type(template_vars).__name__}"
        )
    attachments = () if attachments is None else attachments
    one_line("subject", subject)
    senders = parse_addresses("sender", sender)
    if len(senders) > 1:
        raise ComposeError(f"sender {short(sender or '')} names several addresses; give one")
    recipients = {
        "To": parse_addresses("to", to),
        "Cc": parse_addresses("cc", cc),
        "Bcc": parse_addresses("bcc", bcc),
    }
    if not any(recipients.values()):
        raise ComposeError("the message has no recipient; give at least one of to, cc or bcc")
    replies = parse_addresses("reply_to", reply_to)
    domain = senders[0].domain if senders else DEFAULT_DOMAIN
    if domain.startswith("["):  # an address literal makes a poor Message-ID domain
        domain = DEFAULT_DOMAIN

    bodies = _Bodies.render(body, format, template_vars, domain)
    if template_vars is not None:
        subject = render(subject, template_vars, mode="text", label="the subject template").text
        one_line("subject (after rendering the template)", subject)
    text_body, html_body = bodies.text, bodies.html
    for field_name, text in (("subject", subject), ("body", text_body), ("body", html_body)):
        _text_only(field_name, text)
    shown_tables, shown_figures = bodies.shown_tables, bodies.shown_figures
    inline_from_template = bodies.inline_figures
    text_attachments_from_template = bodies.text_figures

    parts = Parts(figures=list(inline_from_template))
    for name, _png_bytes, _cid in inline_from_template:
        parts.unique(name)
    for name, figure in text_attachments_from_template:
        parts.files.append((parts.unique(name), "image/png", png_bytes(figure), {}))
        shown_figures[id(figure)] = name
    collect(
        attachments,
        parts,
        inline_figures=format != "text",
        shown_tables=shown_tables,
        shown_figures=shown_figures,
        domain=domain,
    )

    # Tables and figures given as attachments (not shown by the template) go after the body.
    extra_text = [table_text(table) for table in parts.tables]
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
    _add_bodies(message, text_body, html_body, "\n".join(extra_html), parts, domain)
    check_headers(message)  # decoded: an attachment's name may be an encoded-word (issue 11, #1)
    check_round_trip(message)
    return message


def _add_bodies(
    message: EmailMessage,
    text_body: str,
    html_body: str | None,
    extra_html: str,
    parts: Parts,
    domain: str,
) -> None:
    """Give ``message`` its text, its HTML alternative with inline figures, and its files.

    An empty body makes no empty parts: a message of attachments alone is just those, and a
    message of a subject alone is one plain-text part, without an empty HTML twin.
    """
    shows_html = html_body is not None and (
        "<img" in html_body.lower() or html_to_text(html_body).strip()
    )
    empty = not text_body.strip() and not parts.figures and not shows_html
    if not empty or not parts.files:
        message.set_content(text_body if not empty else "\n")
    if html_body is not None and not empty:
        is_document = "<html" in html_body[:1000].lower()
        document = _append_to_document(
            html_body if is_document else _document(html_body), extra_html
        )
        document, found = data_images(document, domain)  # data: images show in few inboxes
        moved = [(parts.unique(name), data, kind, cid) for name, data, kind, cid in found]
        inline = [(name, png, "image/png", cid[1:-1]) for name, png, cid in parts.figures] + moved
        # Styles inlined, no classes or scripts, figures sized: what every inbox shows alike.
        sizes = {cid: size for _n, data, _t, cid in inline if (size := image_size(data))}
        message.add_alternative(inbox_html(document, sizes), subtype="html")
        html_part = message.get_payload()[1]  # type: ignore[index]  # [text, html]
        for name, data, content_type, cid in inline:
            maintype, subtype = content_type.split("/", 1)
            html_part.add_related(  # type: ignore[union-attr]
                data, maintype, subtype, cid=f"<{cid}>", disposition="inline", filename=name
            )
    for filename, content_type, data, params in parts.files:
        maintype, subtype = content_type.split("/", 1)
        message.add_attachment(data, maintype, subtype, filename=filename, params=params or None)
    for part in message.walk():
        if part is not message:
            del part["MIME-Version"]  # the email package adds it to every part; RFC 2045: once


@dataclass
class _Bodies:
    """The text and HTML bodies, and what a template showed of tables and figures."""

    text: str
    html: str | None = None
    shown_tables: set[int] = field(default_factory=set)
    shown_figures: dict[int, str] = field(default_factory=dict)
    inline_figures: list[tuple[str, bytes, str]] = field(default_factory=list)  # name, png, cid
    text_figures: list[tuple[str, Any]] = field(default_factory=list)  # name, figure

    @classmethod
    def render(
        cls, body: str, format: str, template_vars: Mapping[str, Any] | None, domain: str
    ) -> _Bodies:
        """Render ``body`` as ``format`` says, through the template when there are variables."""
        if template_vars is None:
            if format == "markdown":
                return cls(body, _markdown().render(body))
            return cls(html_to_text(body), body) if format == "html" else cls(body)
        label = "the body template"
        if format == "text":
            rendered = render(body, template_vars, mode="text", domain=domain, label=label)
            bodies = cls(rendered.text, text_figures=[(f.name, f.figure) for f in rendered.figures])
        else:
            rendered = render(body, template_vars, mode="html", domain=domain, label=label)
            if format == "markdown":
                text = render(body, template_vars, mode="text", domain=domain, label=label).text
                bodies = cls(text, _markdown().render(rendered.text))
            else:
                bodies = cls(html_to_text(rendered.text), rendered.text)
            for figure in rendered.figures:
                bodies.shown_figures[id(figure.figure)] = figure.name
                bodies.inline_figures.append((figure.name, png_bytes(figure.figure), figure.cid))
        bodies.shown_tables.update(id(table) for table in rendered.tables)
        return bodies
