"""The results of send_many: MessageResult per message and BulkReport, readable as text and HTML."""

from __future__ import annotations

import copy
import html
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses, make_msgid
from typing import Any, Literal

from smtp_magic.errors import RecipientsRejectedError, SMTPMagicError
from smtp_magic.settings import Settings

__all__ = [
    "BulkReport",
    "MessageResult",
    "Status",
    "combine",
    "header_id",
    "refusals",
    "with_message_id",
]

_MESSAGE_ID_DOMAIN = "smtp-magic.invalid"  # RFC 2606: never a real domain, needs no DNS lookup

Status = Literal["accepted", "refused", "invalid", "unsent", "unknown"]
"""What became of one message.

- ``accepted``: the server took it for at least one recipient (``refused`` lists any others).
- ``refused``: the server refused the sender, every recipient, or the message itself.
- ``invalid``: it could not be prepared (no recipient, no sender...); nothing was sent.
- ``unsent``: not handed over, because the run stopped first; ``resume()`` sends these.
- ``unknown``: the data was sent but the server's confirmation never came; it may have been
  delivered. Never sent again automatically: check the recipient's mailbox first.
"""


@dataclass(frozen=True)
class MessageResult:
    """The outcome of one message of a ``send_many`` run.

    Attributes:
        index: The position of the message in what was passed to ``send_many``.
        message_id: Its Message-ID header: search for it to check an ``unknown`` message.
        status: "accepted", "refused", "invalid", "unsent" or "unknown" (see ``Status``).
        accepted: The recipients the server accepted.
        refused: Refused recipients -> (code, reply text); for a refused sender or message,
            every recipient with the server's code.
        error: What went wrong for this message, if anything.
        reply: The server's final reply to the message, such as "250 OK: queued as 12".
        attempts: How many times its transaction was started (retries after temporary
            trouble count; 0: never tried).
    """

    index: int
    message_id: str | None
    status: Status
    accepted: tuple[str, ...] = ()
    refused: Mapping[str, tuple[int, str]] = field(default_factory=dict)
    error: SMTPMagicError | None = None
    reply: str = ""
    attempts: int = 0

    def __str__(self) -> str:
        text = f"#{self.index} {self.status}"
        if self.message_id:
            text += f" {self.message_id}"
        if self.accepted:
            text += f" to {', '.join(self.accepted)}"
        if self.refused:
            text += "; refused " + "; ".join(f"{a} ({c} {t})" for a, (c, t) in self.refused.items())
        if self.error is not None and not self.refused:
            text += f": {self.error}"
        if self.attempts > 1:
            text += f" ({self.attempts} attempts)"
        return text


class BulkReport:
    """What ``send_many`` did: a ``MessageResult`` per message, and how to finish the job.

    ``results[i]`` belongs to ``messages[i]``. The report keeps the sequence of messages it was
    given (not copies: a lazy sequence stays lazy) so that ``resume()`` can send the ones that
    were not sent; iterate over it for the results.

    Attributes:
        results: One MessageResult per message, in the order given.
        messages: The messages (kept for ``resume``).
        settings: The settings used.
        error: The error that stopped the run early, or None if it ran to the end. A
            KeyboardInterrupt is not stored here; ``interrupted`` says so instead.
        interrupted: Whether the run was stopped by KeyboardInterrupt (Ctrl-C, Jupyter's stop).
        connections: How many connections were opened (1 unless the server closed one).
        security: How the last connection was secured ("tls" or "starttls", or "plain").
        elapsed: Seconds the run took (all runs, after ``resume``).
    """

    def __init__(
        self,
        results: Sequence[MessageResult],
        messages: Sequence[object],
        settings: Settings,
        *,
        error: SMTPMagicError | None = None,
        interrupted: bool = False,
        connections: int = 0,
        security: str | None = None,
        elapsed: float = 0.0,
        resume_with: Callable[[BulkReport, Settings, bool], BulkReport] | None = None,
    ) -> None:
        self.results: tuple[MessageResult, ...] = tuple(results)
        self.messages: Sequence[object] = messages
        self.settings = settings
        self.error = error
        self.interrupted = interrupted
        self.connections = connections
        self.security = security
        self.elapsed = elapsed
        self._successor: BulkReport | None = None
        self._resume_with = resume_with or _cannot_resume

    # -- the results by status ----------------------------------------------------------
    def _with(self, status: Status) -> list[MessageResult]:
        return [r for r in self.results if r.status == status]

    @property
    def accepted(self) -> list[MessageResult]:
        """Messages the server accepted (for at least one recipient)."""
        return self._with("accepted")

    @property
    def refused(self) -> list[MessageResult]:
        """Messages the server refused; ``error.temporary`` says whether a retry may succeed."""
        return self._with("refused")

    @property
    def invalid(self) -> list[MessageResult]:
        """Messages that could not be prepared (no recipient, no sender...); nothing was sent."""
        return self._with("invalid")

    @property
    def unsent(self) -> list[MessageResult]:
        """Messages not handed over because the run stopped; ``resume()`` sends them."""
        return self._with("unsent")

    @property
    def unknown(self) -> list[MessageResult]:
        """Messages lost after their data was sent: check before sending them again."""
        return self._with("unknown")

    @property
    def complete(self) -> bool:
        """True when every message got a final answer: none is unsent or unknown."""
        return not any(r.status in ("unsent", "unknown") for r in self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[MessageResult]:
        return iter(self.results)

    def __getitem__(self, index: int) -> MessageResult:
        return self.results[index]

    # -- finishing the job --------------------------------------------------------------
    def resume(self, settings: Settings | None = None, *, progress: bool = True) -> BulkReport:
        """Send the messages that were not sent, and return the merged report.

        Only "unsent" messages are sent. "accepted" and "refused" ones had their answer;
        "invalid" ones need fixing; "unknown" ones may have been delivered, so they are never
        sent again automatically: check the recipients' mailboxes (search for the
        Message-ID), then send the missing ones yourself with ``send_many([...])``.

        Args:
            settings: Other settings to use (for instance a longer timeout); default: the
                settings of this report.
            progress: Show a progress bar.

        Returns:
            A new BulkReport over all the messages. This one keeps its results, but calling
            ``resume()`` on it again continues from the new report, so nothing is sent twice.

        Raises:
            SMTPMagicError: the first connection could not be opened; nothing was sent.
            KeyboardInterrupt: interrupted; see ``send_many``.
        """
        if self._successor is not None:
            return self._successor.resume(settings, progress=progress)
        if not any(r.status == "unsent" for r in self.results):
            return self
        # The sending side (smtp_magic.bulk) hands its resume function to the report it
        # builds, so this module needs no import of it.
        return self._resume_with(self, settings or self.settings, progress)

    # -- display ------------------------------------------------------------------------
    def _counts(self) -> list[tuple[Status, int]]:
        order: tuple[Status, ...] = ("accepted", "refused", "invalid", "unknown", "unsent")
        return [(s, n) for s in order if (n := len(self._with(s)))]

    def _headline(self) -> str:
        total = len(self.results)
        where = self.settings.address + (f" ({self.security})" if self.security else "")
        counts = ", ".join(f"{n} {s}" for s, n in self._counts()) or "no messages"
        if self.interrupted:
            state = "interrupted"
        elif self.error is not None:
            state = "stopped early"
        elif self.complete:
            state = "done"
        else:
            state = "not complete"
        return f"send_many to {where}: {state}, {total} message(s): {counts}"

    def _advice(self) -> list[tuple[str, str]]:
        """(label, text) lines naming which messages need what."""
        rows: list[tuple[str, str]] = []
        for result in self.refused + self.invalid:
            rows.append((result.status, _shorten(str(result), 300)))
        unknown = self.unknown
        if unknown:
            ids = ", ".join(f"#{r.index} {r.message_id or '(no Message-ID)'}" for r in unknown)
            rows.append(
                (
                    "unknown",
                    f"{_shorten(ids, 600)}: the connection was lost after the data was sent, so "
                    "they may have been delivered. Check the recipients' mailboxes before "
                    "sending them again; resume() never sends them.",
                )
            )
        unsent = self.unsent
        if unsent:
            rows.append(
                (
                    "unsent",
                    f"{_ranges([r.index for r in unsent])}: not sent; report.resume() sends "
                    "exactly these.",
                )
            )
        if self.error is not None:
            rows.append(("stopped by", f"{type(self.error).__name__}: {self.error}"))
        elif self.interrupted:
            rows.append(("stopped by", "KeyboardInterrupt"))
        if self.connections > 1:
            rows.append(("connections", f"{self.connections} (the server closed one)"))
        return rows

    def __str__(self) -> str:
        lines = [self._headline()]
        if self.accepted:
            lines.append(f"  accepted: {_ranges([r.index for r in self.accepted])}")
        lines += [f"  {label}: {text}" for label, text in self._advice()]
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # IPython's text/plain: the readable summary, not the one-line repr.
        printer.text(str(self))

    def __repr__(self) -> str:
        counts = ", ".join(f"{s}={n}" for s, n in self._counts())
        return f"<BulkReport {self.settings.address}: {counts or 'empty'}>"

    def _repr_html_(self) -> str:
        color = "#1a7f37" if self.complete and len(self.accepted) == len(self) else "#9a6700"
        if self.error is not None or self.interrupted or self.unknown:
            color = "#cf222e"
        rows = [f"accepted: {_ranges([r.index for r in self.accepted])}"] if self.accepted else []
        rows += [f"{label}: {text}" for label, text in self._advice()]
        items = "".join(f"<li>{html.escape(row)}</li>" for row in rows)
        shown = self.results[:500]
        body = "".join(
            "<tr>"
            f"<td>{r.index}</td><td>{html.escape(r.status)}</td>"
            f"<td>{html.escape(r.message_id or '')}</td>"
            f"<td>{html.escape(', '.join(r.accepted))}</td>"
            f"<td>{html.escape(_detail(r))}</td>"
            "</tr>"
            for r in shown
        )
        more = (
            f"<p>... and {len(self.results) - len(shown)} more</p>"
            if len(self.results) > 500
            else ""
        )
        table = (
            "<details><summary>Per message</summary><table><thead><tr><th>#</th><th>status</th>"
            "<th>Message-ID</th><th>accepted</th><th>detail</th></tr></thead>"
            f"<tbody>{body}</tbody></table>{more}</details>"
        )
        return (
            f"<div><strong style='color:{color}'>{html.escape(self._headline())}</strong>"
            f"<ul>{items}</ul>{table}</div>"
        )


def refusals(error: SMTPMagicError, recipients: Sequence[str]) -> dict[str, tuple[int, str]]:
    """The ``refused`` of a message that ``error`` refused as a whole: each recipient, or all."""
    if isinstance(error, RecipientsRejectedError):
        return dict(error.recipients)
    if error.code is None:
        return {}
    return dict.fromkeys(recipients, (error.code, error.reply or ""))


def combine(
    earlier: MessageResult | None,
    accepted: tuple[str, ...],
    refused: Mapping[str, tuple[int, str]],
    error: SMTPMagicError | None,
    item: Any,
) -> tuple[tuple[str, ...], dict[str, tuple[int, str]]]:
    """(accepted, refused) of a message after an attempt, with an earlier partial one's.

    ``item`` is what this attempt sent (its ``recipients``); a retry goes only to recipients
    refused for now the first time, so their new answers replace the old refusals.
    """
    now = dict(refused or (refusals(error, item.recipients) if error is not None else {}))
    if earlier is None:
        return accepted, now
    merged = {**earlier.refused, **now}
    for address in accepted:
        merged.pop(address, None)
    return earlier.accepted + accepted, merged


def _ranges(indexes: Sequence[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"#0-2, #5, #7-8"`` (shortened when very long)."""
    parts: list[str] = []
    start = previous = None
    for i in [*sorted(indexes), None]:
        if start is not None and (i is None or i != previous + 1):  # type: ignore[operator]
            parts.append(f"#{start}" if start == previous else f"#{start}-{previous}")
            start = None
        if i is not None and start is None:
            start = i
        previous = i
    if len(parts) > 20:
        parts = [*parts[:20], f"... ({len(indexes)} in all)"]
    return ", ".join(parts)


def _detail(result: MessageResult) -> str:
    if result.refused:
        return "; ".join(f"{a}: {c} {t}" for a, (c, t) in result.refused.items())
    if result.error is not None:
        return str(result.error)
    return result.reply


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _cannot_resume(report: BulkReport, settings: Settings, progress: bool) -> BulkReport:
    raise TypeError("this BulkReport was not made by send_many, so it cannot resume sending")


def header_id(message: object) -> str | None:
    """The Message-ID header of ``message``, if it is an EmailMessage that has one."""
    if isinstance(message, EmailMessage):
        value = message.get("Message-ID")
        return str(value) if value is not None else None
    return None


def with_message_id(message: object) -> object:
    """The message itself, or a copy with a Message-ID if it has none."""
    if not isinstance(message, EmailMessage) or message.get("Message-ID") is not None:
        return message
    domain = _MESSAGE_ID_DOMAIN
    senders = getaddresses(message.get_all("From") or [])
    if senders and "@" in senders[0][1]:
        candidate = senders[0][1].rpartition("@")[2]
        if candidate and not candidate.startswith("["):
            domain = candidate
    message = copy.copy(message)
    # copy.copy shares the header list with the original; __delitem__ builds a new one, so the
    # header added below does not show up in the caller's message.
    del message["Message-ID"]
    message["Message-ID"] = make_msgid(domain=domain)  # a domain given: no getfqdn() lookup
    return message
