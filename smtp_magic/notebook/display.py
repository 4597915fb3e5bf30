"""What the magics display: a dry run's preview, the lab's mailbox and its status."""

from __future__ import annotations

import html
from collections.abc import Iterable
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from IPython.display import display

from smtp_magic.message.preview import MessagePreview, preview

if TYPE_CHECKING:
    from smtp_magic.lab.server import LabServer

__all__ = ["DryRun", "LabMailbox"]


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
        return f"{self.note}\n{self.preview}"

    def _repr_html_(self) -> str:
        return f"<p><strong>{html.escape(self.note)}</strong></p>{self.preview._repr_html_()}"


class LabMailbox:
    """What the lab received: one preview per message, with the role, TLS and login it used."""

    def __init__(self, received: Iterable[Any]) -> None:
        self.received = list(received)

    @staticmethod
    def _head(number: int, item: Any) -> str:
        return (
            f"#{number} on the {item.role} role, "
            f"{'TLS' if item.tls else 'no TLS'}, "
            f"{'logged in' if item.authenticated else 'no login'}, "
            f"envelope {item.mail_from} -> {', '.join(item.rcpt_tos)}"
        )

    def __repr__(self) -> str:
        if not self.received:
            return "The lab has received no messages yet."
        blocks = [
            f"{self._head(n, item)}\n" + _indent(str(preview(item.message)))
            for n, item in enumerate(self.received, start=1)
        ]
        return f"The lab received {len(self.received)} message(s):\n\n" + "\n\n".join(blocks)

    def _repr_html_(self) -> str:
        if not self.received:
            return "<p>The lab has received no messages yet.</p>"
        items = "".join(
            f"<li><p>{html.escape(self._head(n, item))}</p>{preview(item.message)._repr_html_()}</li>"
            for n, item in enumerate(self.received, start=1)
        )
        return f"<p>The lab received {len(self.received)} message(s):</p><ol>{items}</ol>"


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
