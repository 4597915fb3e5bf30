"""send_many(): many messages over one connection, a result per message, and a resume that never sends twice."""

from __future__ import annotations

import copy
import html
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses, make_msgid
from typing import Any, Literal

from smtp_magic.connect import Session, open_session
from smtp_magic.errors import (
    ComposeError,
    ConnectionLostError,
    DeliveryUnknownError,
    RecipientsRejectedError,
    RejectedError,
    SMTPMagicError,
    SMTPTimeoutError,
)
from smtp_magic.send import Outgoing, prepare
from smtp_magic.settings import Settings

__all__ = ["BulkReport", "MessageResult", "Status", "last_report", "send_many"]

Status = Literal["accepted", "refused", "invalid", "unsent", "unknown"]
"""What became of one message.

- ``accepted``: the server took it for at least one recipient (``refused`` lists any others).
- ``refused``: the server refused the sender, every recipient, or the message itself.
- ``invalid``: it could not be prepared (no recipient, no sender...); nothing was sent.
- ``unsent``: not handed over, because the run stopped first; ``resume()`` sends these.
- ``unknown``: the data was sent but the server's confirmation never came; it may have been
  delivered. Never sent again automatically: check the recipient's mailbox first.
"""

last_report: BulkReport | None = None
"""The report of the latest ``send_many`` or ``resume`` in this process, also when interrupted."""

_MESSAGE_ID_DOMAIN = "smtp-magic.invalid"  # RFC 2606: never a real domain, needs no DNS lookup


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
    """

    index: int
    message_id: str | None
    status: Status
    accepted: tuple[str, ...] = ()
    refused: Mapping[str, tuple[int, str]] = field(default_factory=dict)
    error: SMTPMagicError | None = None
    reply: str = ""

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
        return text


class BulkReport:
    """What ``send_many`` did: a ``MessageResult`` per message, and how to finish the job.

    ``results[i]`` belongs to ``messages[i]``. The report keeps the messages so that
    ``resume()`` can send the ones that were not sent; iterate over it for the results.

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
    ) -> None:
        self.results: tuple[MessageResult, ...] = tuple(results)
        self.messages: tuple[object, ...] = tuple(messages)
        self.settings = settings
        self.error = error
        self.interrupted = interrupted
        self.connections = connections
        self.security = security
        self.elapsed = elapsed
        self._successor: BulkReport | None = None

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
        settings = settings or self.settings
        todo = [r.index for r in self.results if r.status == "unsent"]
        if not todo:
            return self
        run = _Run(self.messages, settings, progress)
        try:
            run.send(todo)
        finally:
            merged = dict(enumerate(self.results))
            merged.update(run.results)
            report = BulkReport(
                [merged[i] for i in range(len(self.messages))],
                self.messages,
                settings,
                error=run.error,
                interrupted=run.interrupted,
                connections=self.connections + run.connections,
                security=run.security or self.security,
                elapsed=self.elapsed + run.elapsed,
            )
            if any(r.status not in ("unsent", "invalid") for r in run.results.values()):
                self._successor = report  # a second resume() here must not resend these
            run.finish(report)
        return report

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


def send_many(
    messages: Iterable[EmailMessage], settings: Settings, *, progress: bool = True
) -> BulkReport:
    """Send many messages over one connection and report on each.

    The connection is negotiated and authenticated once. A refused message does not stop the
    others. If the server closes the connection between messages (or answers 421), it
    reconnects once by itself and goes on; if that fails, the run stops and the rest are
    "unsent". A message whose data was sent but never confirmed is "unknown" and is never
    sent again automatically. ``report.resume()`` sends exactly the "unsent" ones.

    Ctrl-C (or Jupyter's stop button) stops the run and is raised again, so that a loop around
    ``send_many`` stops too; the partial report is kept in ``smtp_magic.bulk.last_report`` and
    on the exception as ``.report``, and a note on the exception says so.

    Args:
        messages: EmailMessages, for example from ``compose()``; a generator is read in full
            first. A message without a Message-ID is given one (on a copy), so that every
            message can be traced.
        settings: Where and how to connect, as for ``send()``.
        progress: Show a progress bar (a widget in Jupyter, text on stderr elsewhere).

    Returns:
        A BulkReport: a MessageResult per message, and ``resume()`` for any not sent.

    Raises:
        SMTPMagicError: the first connection could not be opened (as ``send()`` would say);
            nothing was sent.
        KeyboardInterrupt: interrupted; the partial report is ``exc.report``.

    Example:
        >>> rows = [("ann@example.org", "Ann"), ("bob@example.org", "Bob")]
        >>> report = send_many(  # doctest: +SKIP
        ...     (compose(to=a, subject="Hi", body=f"Hello {n}") for a, n in rows), settings
        ... )
    """
    kept = [_with_message_id(m) for m in messages]
    run = _Run(kept, settings, progress)
    try:
        run.send(range(len(kept)))
    finally:
        report = BulkReport(
            [run.results[i] for i in range(len(kept))],
            kept,
            settings,
            error=run.error,
            interrupted=run.interrupted,
            connections=run.connections,
            security=run.security,
            elapsed=run.elapsed,
        )
        run.finish(report)
    return report


class _Run:
    """One pass over some of the messages: one session, reconnected at most once per loss."""

    def __init__(self, messages: Sequence[object], settings: Settings, progress: bool) -> None:
        self.messages = messages
        self.settings = settings
        self.progress = progress
        self.results: dict[int, MessageResult] = {}
        self.error: SMTPMagicError | None = None
        self.interrupted = False
        self.connections = 0
        self.security: str | None = None
        self.elapsed = 0.0
        self.session: Session | None = None
        self.delivering = False  # inside Session.deliver()
        self.raised: BaseException | None = None

    def send(self, indexes: Iterable[int]) -> None:
        """Send the messages at ``indexes``; every one of them gets a result, whatever happens."""
        from tqdm.auto import tqdm  # loaded on first use: it imports asyncio

        todo = list(indexes)
        start = time.monotonic()
        current: int | None = None
        outgoing: Outgoing | None = None
        bar = tqdm(total=len(todo), disable=not self.progress, unit="msg", desc="send_many")
        try:
            for index in todo:
                current, outgoing = index, None
                outgoing = self._prepare(index)
                if outgoing is not None and not self._deliver(index, outgoing):
                    break
                current = None
                bar.update(1)
                if self.results[index].status != "accepted":
                    bar.set_postfix_str(self._postfix(), refresh=False)
        except KeyboardInterrupt as exc:
            self.interrupted = True
            self.raised = exc
            if current is not None and current not in self.results:
                session = self.session
                # Once the data's end mark went out, the server may have taken the message.
                # Session sets delivered_data only after the end mark's sendall returns, so a
                # Ctrl-C in between would pass for "unsent" and resume() would send it twice:
                # count the whole DATA phase as "unknown" (at worst a needless check).
                unknown = session is not None and (
                    session.delivered_data or (self.delivering and session.phase == "data")
                )
                self.results[current] = MessageResult(
                    current,
                    self._message_id(current, outgoing),
                    "unknown" if unknown else "unsent",
                )
            self._abort()
            raise
        except BaseException as exc:
            self.raised = exc
            self._abort()
            raise
        finally:
            bar.close()
            for index in todo:
                if index not in self.results:
                    self.results[index] = MessageResult(
                        index, self._message_id(index, None), "unsent", error=self.error
                    )
            self._close()
            self.elapsed = time.monotonic() - start

    def finish(self, report: BulkReport) -> None:
        """Publish ``report`` as ``last_report``, and on the KeyboardInterrupt being raised."""
        global last_report
        last_report = report
        exc = self.raised
        if isinstance(exc, KeyboardInterrupt):
            exc.report = report  # type: ignore[attr-defined]
            exc.add_note(
                f"send_many was interrupted: {', '.join(f'{n} {s}' for s, n in report._counts())}."
                " The report is smtp_magic.bulk.last_report; last_report.resume() sends the "
                "unsent ones."
            )

    # -- one message ----------------------------------------------------------------------
    def _prepare(self, index: int) -> Outgoing | None:
        try:
            return prepare(self.messages[index], self.settings)  # type: ignore[arg-type]
        except ComposeError as exc:
            error = exc
        except Exception as exc:  # one unflattenable message must not stop the others
            error = ComposeError(f"message #{index} could not be flattened: {exc}")
            error.__cause__ = exc
        self.results[index] = MessageResult(
            index, self._message_id(index, None), "invalid", error=error
        )
        return None

    def _deliver(self, index: int, outgoing: Outgoing) -> bool:
        """Deliver one message, reconnecting once if the connection was lost; False: stop."""
        retried = False
        while True:
            if self.session is None and not self._connect():
                return False
            session = self.session
            assert session is not None
            # Session.deliver leaves delivered_data True after a refusal of the data.
            session.delivered_data = False
            self.delivering = True
            try:
                delivery = session.deliver(
                    outgoing.sender,
                    outgoing.recipients,
                    outgoing.chunks,
                    smtputf8=outgoing.smtputf8,
                )
            except DeliveryUnknownError as exc:
                self.delivering = False
                self._record(index, outgoing, "unknown", error=exc)
                self._close()  # a fresh connection for the next message
                return True
            except SMTPMagicError as exc:
                self.delivering = False
                if _connection_gone(exc):
                    # Nothing was delivered (the data's end mark was not sent, or the server
                    # said 421): safe to send this message again, on a new connection, once.
                    self._close()
                    if retried:
                        self.error = exc
                        return False
                    retried = True
                    continue
                if isinstance(exc, RejectedError):
                    self._record(
                        index, outgoing, "refused", error=exc, refused=_refusals(exc, outgoing)
                    )
                    return True
                # Anything else (a protocol violation...) leaves the session in doubt: stop.
                status: Status = "unknown" if session.delivered_data else "unsent"
                self._record(index, outgoing, status, error=exc)
                self.error = exc
                self._abort()
                return False
            self.delivering = False
            self._record(
                index,
                outgoing,
                "accepted",
                accepted=delivery.accepted,
                refused=delivery.refused,
                reply=delivery.reply,
            )
            return True

    def _connect(self) -> bool:
        """Open a session; the first failure of a run is raised, a failed reconnection stops it."""
        try:
            self.session = open_session(self.settings)
        except SMTPMagicError as exc:
            if self.connections == 0:
                raise
            self.error = exc
            return False
        self.connections += 1
        self.security = self.session.security
        return True

    def _record(self, index: int, outgoing: Outgoing, status: Status, **fields: Any) -> None:
        self.results[index] = MessageResult(index, outgoing.message_id, status, **fields)

    def _message_id(self, index: int, outgoing: Outgoing | None) -> str | None:
        if outgoing is not None:
            return outgoing.message_id
        message = self.messages[index]
        if isinstance(message, EmailMessage):
            value = message.get("Message-ID")
            return str(value) if value is not None else None
        return None

    def _postfix(self) -> str:
        counts: dict[str, int] = {}
        for result in self.results.values():
            counts[result.status] = counts.get(result.status, 0) + 1
        return ", ".join(f"{n} {s}" for s, n in counts.items())

    # -- the connection -------------------------------------------------------------------
    def _close(self) -> None:
        """QUIT and close the session, if any (never raises)."""
        session, self.session = self.session, None
        if session is not None:
            session.close()

    def _abort(self) -> None:
        """Drop the connection without QUIT: mid-transaction, QUIT would be read as message data."""
        session, self.session = self.session, None
        if session is not None:
            session.abort()


def _connection_gone(exc: SMTPMagicError) -> bool:
    """Whether ``exc`` means the connection is gone and the message was certainly not delivered."""
    if isinstance(exc, ConnectionLostError | SMTPTimeoutError):
        return exc.phase != "data-end"
    # RFC 5321 section 3.8: 421 means the server is closing the transmission channel.
    return isinstance(exc, RejectedError) and exc.code == 421


def _refusals(exc: RejectedError, outgoing: Outgoing) -> dict[str, tuple[int, str]]:
    if isinstance(exc, RecipientsRejectedError):
        return dict(exc.recipients)
    if exc.code is None:
        return {}
    return dict.fromkeys(outgoing.recipients, (exc.code, exc.reply or ""))


def _with_message_id(message: object) -> object:
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
