"""One mail transaction on an open session (``send()``): MAIL, RCPT for each recipient, DATA, the end mark.

It runs through the same Pipeline as ``send_many``: with PIPELINING the envelope is one group
(MAIL, every RCPT and DATA in one write, RFC 2920), then the content and its end mark; without
it, lock-step. Replies are matched strictly in order (see ``pipeline`` and ``stream``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from smtp_magic.smtp.pipeline import Item, Outcome, Pipeline

if TYPE_CHECKING:
    from smtp_magic.smtp.session import Session

__all__ = ["Delivery", "deliver"]


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
        DeliveryUnknownError: the connection was lost (or the reply could not be read) after
            the data was sent.
        SMTPMagicError: anything else that ends the session.
    """
    chunks = (data,) if isinstance(data, bytes | bytearray) else tuple(data)
    outcomes: list[Outcome] = []
    session.delivered_data = False
    pipeline = Pipeline(session, outcomes.append)
    pipeline.submit(Item(None, sender, tuple(recipients), chunks, smtputf8))
    pipeline.flush()
    outcome = outcomes[0]
    if outcome.error is not None and outcome.status != "accepted":
        raise outcome.error
    return Delivery(outcome.accepted, outcome.refused, outcome.reply)
