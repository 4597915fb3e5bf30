"""send_many(): many messages over one connection, a result per message, and a resume that never sends twice."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Sequence
from email.message import EmailMessage
from email.utils import getaddresses, make_msgid
from typing import Any

from smtp_magic.bulkreport import BulkReport, MessageResult, Status
from smtp_magic.errors import (
    ComposeError,
    ConnectionLostError,
    DeliveryUnknownError,
    MessageRejectedError,
    RecipientsRejectedError,
    RejectedError,
    SMTPMagicError,
    SMTPTimeoutError,
)
from smtp_magic.send import Outgoing, check_provider_limit, prepare
from smtp_magic.settings import Settings
from smtp_magic.smtp.session import Session, open_session

__all__ = ["BulkReport", "MessageResult", "Status", "last_report", "send_many"]

last_report: BulkReport | None = None
"""The report of the latest ``send_many`` or ``resume`` in this process, also when interrupted."""

_MESSAGE_ID_DOMAIN = "smtp-magic.invalid"  # RFC 2606: never a real domain, needs no DNS lookup


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
            resume_with=_resume,
        )
        run.finish(report)
    return report


def _resume(previous: BulkReport, settings: Settings, progress: bool) -> BulkReport:
    """Send the "unsent" messages of ``previous``; the merged report (see ``BulkReport.resume``)."""
    todo = [r.index for r in previous.results if r.status == "unsent"]
    run = _Run(previous.messages, settings, progress)
    try:
        run.send(todo)
    finally:
        merged = dict(enumerate(previous.results))
        merged.update(run.results)
        report = BulkReport(
            [merged[i] for i in range(len(previous.messages))],
            previous.messages,
            settings,
            error=run.error,
            interrupted=run.interrupted,
            connections=previous.connections + run.connections,
            security=run.security or previous.security,
            elapsed=previous.elapsed + run.elapsed,
            resume_with=_resume,
        )
        if any(r.status not in ("unsent", "invalid") for r in run.results.values()):
            previous._successor = report  # a second resume() there must not resend these
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
        error: SMTPMagicError
        try:
            outgoing = prepare(self.messages[index], self.settings)  # type: ignore[arg-type]
            check_provider_limit(outgoing, self.settings)  # too large for the provider: skip it
            return outgoing
        except (ComposeError, MessageRejectedError) as exc:
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
