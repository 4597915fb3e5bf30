"""What the magics display: a dry run's preview, the lab's mailbox and its status."""

from __future__ import annotations

import html
from collections.abc import Iterable
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from IPython.display import display

from smtp_magic.message.preview import MessagePreview, preview
from smtp_magic.printable import printable

if TYPE_CHECKING:
    from smtp_magic.lab.server import LabServer

_BODY_LINES = 12  # of the text part, in a dry run's text form

__all__ = ["DryRun", "LabMailbox", "hide_error_diagrams", "show_error_diagrams"]


class DryRun:
    """What ``--dry-run`` shows: the preview of a message, and how many would have been sent."""

    def __init__(self, message: EmailMessage, count: int = 1) -> None:
        self.preview: MessagePreview = preview(message)
        self.count = count

    @property
    def note(self) -> str:
        if self.count == 1:
            return "Dry run: nothing was sent."
        return f"Dry run: {self.count} messages would be sent; nothing was sent. The first:"

    def __repr__(self) -> str:
        # The text part too: a reader of the stored notebook (a terminal, a static renderer that
        # drops the HTML frame) sees what the message says, not only its size.
        body = self.preview.message.get_body(("plain",))
        text = body.get_content().strip() if isinstance(body, EmailMessage) else ""
        lines = text.splitlines()
        shown = "\n".join(f"  | {line}" for line in lines[:_BODY_LINES])
        if len(lines) > _BODY_LINES:
            shown += f"\n  | ... ({len(lines) - _BODY_LINES} more lines)"
        return f"{self.note}\n{self.preview}" + (f"\nText:\n{shown}" if shown else "")

    def _repr_html_(self) -> str:
        return f"<p><strong>{html.escape(self.note)}</strong></p>{self.preview._repr_html_()}"


class LabMailbox:
    """What the lab received: one preview per message, with the role, TLS and login it used."""

    def __init__(self, received: Iterable[Any], dropped: int = 0) -> None:
        self.received = list(received)
        self.dropped = dropped

    def _headline(self) -> str:
        kept = len(self.received)
        if not self.dropped:
            return f"The lab received {kept} message(s):"
        return (
            f"The lab received {kept + self.dropped} message(s) and keeps the latest {kept} "
            f"(the {self.dropped} older ones were dropped, so that it never fills the kernel's "
            "memory):"
        )

    @staticmethod
    def _head(number: int, item: Any) -> str:
        return (
            f"#{number} on the {item.role} role, "
            f"{'TLS' if item.tls else 'no TLS'}, "
            f"{'logged in' if item.authenticated else 'no login'}, "
            f"envelope {printable(item.mail_from)} -> {printable(', '.join(item.rcpt_tos))}"
        )

    def __repr__(self) -> str:
        if not self.received:
            return "The lab has received no messages yet."
        blocks = [
            f"{self._head(n, item)}\n" + _indent(str(preview(item.message)))
            for n, item in enumerate(self.received, start=self.dropped + 1)
        ]
        return f"{self._headline()}\n\n" + "\n\n".join(blocks)

    def _repr_html_(self) -> str:
        if not self.received:
            return "<p>The lab has received no messages yet.</p>"
        items = "".join(
            f"<li><p>{html.escape(self._head(n, item))}</p>{preview(item.message)._repr_html_()}</li>"
            for n, item in enumerate(self.received, start=self.dropped + 1)
        )
        start = f" start={self.dropped + 1}" if self.dropped else ""
        return f"<p>{html.escape(self._headline())}</p><ol{start}>{items}</ol>"


def _error_display(
    shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None
) -> list[str]:
    """IPython's custom exception handler: the conversation's diagram, then the one-line error.

    The diagram goes out as display data (inline SVG in text/html, so a stored notebook shows
    it on GitHub and nbviewer without JavaScript); the error itself stays an error output
    (what nbval's ``NBVAL_RAISES_EXCEPTION`` and JupyterLab's "Run All" go by), without a
    traceback, as ``_render_traceback_`` asks.
    """
    from smtp_magic.errors import SMTPMagicError
    from smtp_magic.report import conversation_html

    assert isinstance(value, SMTPMagicError)
    diagram = value.diagram()
    if diagram is not None:
        steps = len(diagram.rows)
        text = f"The conversation with {value.where} up to the failure ({steps} steps; diagram in HTML)."
        display(
            {"text/plain": text, "text/html": conversation_html(diagram, value.transcript)},
            raw=True,
        )
    lines = value._render_traceback_()
    # IPython's run_code ignores what a custom handler returns: the handler shows the error
    # itself. _showtraceback is what ipykernel overrides to send the error output.
    shell._showtraceback(etype, value, lines)
    return lines


def show_error_diagrams(ipython: Any) -> None:
    """Show a raised ``SMTPMagicError`` with its conversation diagram (``%load_ext smtp_magic``).

    IPython has one slot for a custom exception handler: one set by someone else is kept.
    """
    from smtp_magic.errors import SMTPMagicError

    if not ipython.custom_exceptions:
        ipython.set_custom_exc((SMTPMagicError,), _error_display)


def hide_error_diagrams(ipython: Any) -> None:
    """Undo ``show_error_diagrams`` (``%unload_ext smtp_magic``)."""
    from smtp_magic.errors import SMTPMagicError

    if ipython.custom_exceptions == (SMTPMagicError,):
        ipython.set_custom_exc((), None)


def _show(obj: Any) -> None:
    """Display a report or preview: its readable text as text/plain, its HTML as text/html."""
    display(obj)


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


def _status(lab: LabServer) -> str:
    ports = lab.ports
    lines = ["Lab running on 127.0.0.1 (nothing leaves this machine):"]
    lines += [f"  plays port {role:<3} on 127.0.0.1:{ports[role]}" for role in sorted(ports)]
    lines.append(f"  CA certificate: {lab.cafile}")
    lines.append(f"  account: {lab.username} (its password is in the defaults; never shown)")
    return "\n".join(lines)
