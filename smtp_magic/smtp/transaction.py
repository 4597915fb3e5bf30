"""One mail transaction on an open session: MAIL, RCPT for each recipient, DATA, the end mark."""

from __future__ import annotations

import smtplib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from smtp_magic.report import TranscriptLine
from smtp_magic.smtp.markers import MessageTooLarge
from smtp_magic.smtp.wire import send_body

if TYPE_CHECKING:
    from smtp_magic.smtp.session import Session

__all__ = ["Delivery", "deliver"]

_KEEP_LINES = 100  # transcript lines of earlier messages kept on a long-lived session


@dataclass(frozen=True)
class Delivery:
    """What the server said to one message: who it accepted and refused, and its final reply."""

    accepted: tuple[str, ...]
    refused: dict[str, tuple[int, str]]
    reply: str


def deliver(
    session: Session,
    sender: str,
    recipients: Sequence[str],
    data: bytes | Sequence[bytes],
    *,
    smtputf8: bool = False,
) -> Delivery:
    """Run one mail transaction (MAIL, RCPT for each recipient, DATA) on the open session.

    Raises:
        RejectedError: the sender, every recipient, or the message was refused.
        DeliveryUnknownError: the connection was lost after the data was sent.
    """
    wire = session.wire
    chunks = (data,) if isinstance(data, bytes | bytearray) else tuple(data)
    size = sum(len(chunk) for chunk in chunks)
    session.delivered_data = False
    # Keep the negotiation and this message's lines, not every earlier message's: a long
    # send_many would otherwise hold thousands of lines (and the garbage collector's time).
    if len(wire.transcript) > session.opening + _KEEP_LINES:
        dropped = len(wire.transcript) - session.opening
        del wire.transcript[session.opening :]
        wire.note(f"({dropped} lines of earlier messages omitted)")
    options: list[str] = []
    with session.step("mail", "send"):
        if wire.has_extn("size"):
            limit = int(wire.esmtp_features.get("size") or 0)
            if limit and size > limit:
                raise MessageTooLarge(size, limit)
            options.append(f"SIZE={size}")
        if smtputf8:
            if not wire.has_extn("smtputf8"):
                raise smtplib.SMTPNotSupportedError(
                    "One or more source or delivery addresses require internationalized "
                    "email support, but the server does not advertise the required SMTPUTF8 "
                    "capability"
                )
            options += ["SMTPUTF8", "BODY=8BITMIME"]
        elif wire.has_extn("8bitmime") and not all(c.isascii() for c in chunks):
            options.append("BODY=8BITMIME")
        code, text = wire.mail(sender, options)
        if code != 250:
            session.reset_quietly()
            raise smtplib.SMTPSenderRefused(code, text, sender)
    refused: dict[str, tuple[int, str]] = {}
    accepted: list[str] = []
    for rcpt in recipients:
        with session.step("rcpt", "send"):
            code, text = wire.rcpt(rcpt)
        if code in (250, 251):
            accepted.append(rcpt)
        else:
            refused[rcpt] = (code, text.decode("utf-8", "replace"))
    if not accepted:
        session.reset_quietly()
        with session.step("rcpt", "send"):
            raise smtplib.SMTPRecipientsRefused(
                {r: (c, t.encode()) for r, (c, t) in refused.items()}
            )
    with session.step("data", "send"):
        code, text = wire.docmd("DATA")
        if code != 354:
            session.reset_quietly()
            raise smtplib.SMTPDataError(code, text)
        wire.transcript.append(TranscriptLine("C", f"<message data, {size} bytes>", wire.encrypted))
        tail = send_body(wire, chunks)
    # The last piece carries the end mark: from its first byte on, the server may hold the
    # whole message, so losing the connection (or a Ctrl-C) now means "delivery unknown".
    session.delivered_data = True
    with session.step("data-end", "send"):
        wire.sendall(tail)
        code, text = wire.getreply()
        session.delivered_data = False
        if code != 250:
            raise smtplib.SMTPDataError(code, text)
    return Delivery(tuple(accepted), refused, f"{code} {text.decode('utf-8', 'replace')}")
