"""send_many(): many messages over one connection, pipelined, paced and retried, and a resume that never sends twice."""

from __future__ import annotations

import collections
import dataclasses
import functools
import time
from collections.abc import Callable, Iterable, Sequence
from email.message import EmailMessage
from typing import Any

from smtp_magic.bulkreport import (
    BulkReport,
    MessageResult,
    Status,
    combine,
    header_id,
    with_message_id,
)
from smtp_magic.errors import ComposeError, MessageRejectedError, SMTPMagicError
from smtp_magic.pacing import Options, Pacer, parse_rate
from smtp_magic.send import check_provider_limit, prepare
from smtp_magic.settings import Settings
from smtp_magic.smtp.pipeline import Item, Outcome, Pipeline
from smtp_magic.smtp.session import Session, open_session

__all__ = ["BulkReport", "MessageResult", "Status", "last_report", "send_many"]

_AHEAD = 1 << 20  # bytes of messages held, under which the next one is built ahead

last_report: BulkReport | None = None
"""The report of the latest ``send_many`` or ``resume`` in this process, also when interrupted."""


def send_many(
    messages: Iterable[EmailMessage] | Sequence[EmailMessage],
    settings: Settings,
    *,
    rate: str | float | None = None,
    retries: int = 3,
    backoff: float = 1.0,
    progress: bool = True,
) -> BulkReport:
    """Send many messages over one connection and report on each.

    The connection is negotiated and authenticated once. When the server offers PIPELINING
    (RFC 2920), each message's MAIL, RCPT and DATA commands travel with the previous message's
    content: one round trip a message. A refused message does not stop the others.

    Temporary trouble is retried, up to ``retries`` times per message, after a wait that
    doubles each time (with jitter): a ``4xx`` refusal (of the message, or of some recipients:
    then only to those), a ``421``, or a connection lost before a message's data was complete
    (then it reconnects). A message whose data was sent but never confirmed is "unknown" and is
    never sent again automatically. ``report.resume()`` sends exactly the "unsent" ones.

    Ctrl-C (or Jupyter's stop button) stops the run and is raised again, so that a loop around
    ``send_many`` stops too; the partial report is kept in ``smtp_magic.bulk.last_report`` and
    on the exception as ``.report``, and a note on the exception says so.

    Args:
        messages: EmailMessages, for example from ``compose()``. A sequence (a list, or a lazy
            sequence that builds message ``i`` when indexed, as the mail merge does) is read
            one message at a time, just before it is sent; any other iterable is read in full
            first. A message without a Message-ID is given one (on a copy), so that every
            message can be traced.
        settings: Where and how to connect, as for ``send()``.
        rate: At most this many messages per unit of time: "30/min", "2/s", "500/hour", or a
            number per second. None (the default) follows the server's documented limit when
            it is a known provider (Microsoft 365: 30/min), else no pacing; "unlimited": none.
        retries: How many times a message may be tried again after temporary trouble.
        backoff: Seconds to wait before the first retry (doubling up to 60 s, with jitter).
        progress: Show a progress bar with the rate and the time left (a widget in Jupyter,
            text on stderr elsewhere).

    Returns:
        A BulkReport: a MessageResult per message, and ``resume()`` for any not sent.

    Raises:
        SettingsError: ``rate`` cannot be understood.
        SMTPMagicError: the first connection could not be opened (as ``send()`` would say);
            nothing was sent.
        KeyboardInterrupt: interrupted; the partial report is ``exc.report``.
    """
    source: Sequence[object] = (
        messages
        if isinstance(messages, Sequence) and not isinstance(messages, str)
        else list(messages)
    )
    options = Options(parse_rate(rate, settings.host), max(0, int(retries)), float(backoff))
    return _send(source, range(len(source)), settings, progress, options, None)


def _send(
    messages: Sequence[object],
    todo: Iterable[int],
    settings: Settings,
    progress: bool,
    options: Options,
    previous: BulkReport | None,
) -> BulkReport:
    run = _Run(messages, settings, progress, options)
    try:
        run.send(list(todo))
    finally:
        merged = dict(enumerate(previous.results)) if previous is not None else {}
        merged.update(run.results)
        report = BulkReport(
            [merged[i] for i in range(len(messages))],
            messages,
            settings,
            error=run.error,
            interrupted=run.interrupted,
            connections=run.connections + (previous.connections if previous else 0),
            security=run.security or (previous.security if previous else None),
            elapsed=run.elapsed + (previous.elapsed if previous else 0.0),
            resume_with=functools.partial(_resume, options=options),
        )
        if previous is not None and any(
            r.status not in ("unsent", "invalid") for r in run.results.values()
        ):
            previous._successor = report  # a second resume() there must not resend these
        run.finish(report)
    return report


def _resume(
    previous: BulkReport, settings: Settings, progress: bool, *, options: Options
) -> BulkReport:
    """Send the "unsent" messages of ``previous``; the merged report (see ``BulkReport.resume``)."""
    todo = [r.index for r in previous.results if r.status == "unsent"]
    return _send(previous.messages, todo, settings, progress, options, previous)


class _Run:
    """One pass over some of the messages: sessions, the pipeline, pacing and retries."""

    def __init__(
        self, messages: Sequence[object], settings: Settings, progress: bool, options: Options
    ) -> None:
        self.messages = messages
        self.settings = settings
        self.progress = progress
        self.options = options
        self.pacer = Pacer(options.interval, options.backoff)
        self.results: dict[int, MessageResult] = {}
        self.error: SMTPMagicError | None = None
        self.interrupted, self.connections, self.elapsed = False, 0, 0.0
        self.security: str | None = None
        self.session: Session | None = None
        self.pipeline: Pipeline | None = None
        self.raised: BaseException | None = None
        self.todo: collections.deque[int] = collections.deque()
        self.prepared: dict[int, tuple[Item, str | None]] = {}  # in flight or to be retried
        self.in_flight: list[int] = []  # submitted, no outcome yet, in the order sent
        self.ended: set[int] = set()  # their end mark went out: possibly delivered
        self.earlier: dict[int, MessageResult] = {}  # accepted by some, retried for the rest
        self.attempts: collections.Counter[int] = collections.Counter()
        self.counts: collections.Counter[str] = collections.Counter()
        self.bar: Any = None

    def send(self, indexes: list[int]) -> None:
        """Send the messages at ``indexes``; every one of them gets a result, whatever happens."""
        from tqdm.auto import tqdm  # loaded on first use: it imports asyncio

        self.todo.extend(indexes)
        start = time.monotonic()
        self.bar = tqdm(total=len(indexes), disable=not self.progress, unit="msg", desc="send_many")
        try:
            while self.todo:
                index = self.todo.popleft()
                if index not in self.prepared and (
                    index in self.results or not self._prepare(index)
                ):
                    continue  # invalid (when built ahead, its result is there already)
                if not self._transact(index):
                    break
            else:
                if self.pipeline is not None:
                    self._guard(self.pipeline.flush)
        except BaseException as exc:
            self.interrupted = isinstance(exc, KeyboardInterrupt)
            self.raised = exc
            self._close(quit=False)
            raise
        finally:
            self.bar.close()
            for index in indexes:
                if index not in self.results:  # never handed over (or refused for now): unsent
                    message_id, attempts = self._message_id(index), self.attempts[index]
                    self.results[index] = MessageResult(
                        index, message_id, "unsent", error=self.error, attempts=attempts
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
    def _prepare(self, index: int) -> bool:
        """Build and flatten message ``index`` (only now: a merge builds each just in time)."""
        message: object = None
        error: SMTPMagicError
        try:
            message = with_message_id(self.messages[index])
            outgoing = prepare(message, self.settings)  # type: ignore[arg-type]
            check_provider_limit(outgoing, self.settings)  # too large for the provider: skip it
        except (ComposeError, MessageRejectedError) as exc:
            error = exc
        except Exception as exc:  # one unflattenable message must not stop the others
            error = ComposeError(f"message #{index} could not be built or flattened: {exc}")
            error.__cause__ = exc
        else:
            item = Item(
                index, outgoing.sender, outgoing.recipients, outgoing.chunks, outgoing.smtputf8
            )
            # A plain str: the header object holds its whole parse tree (about 10 KB), and a
            # result is kept for every message of the run.
            message_id = None if outgoing.message_id is None else str(outgoing.message_id)
            self.prepared[index] = (item, message_id)
            return True
        self._final(MessageResult(index, header_id(message), "invalid", error=error))
        return False

    def _prepare_next(self) -> None:
        """Build the next message while the server answers (see ``Pipeline.submit``), unless
        the messages held already are large: the next one would be held on top of them."""
        if not self.todo or self.todo[0] in self.prepared or self.todo[0] in self.results:
            return
        if sum(len(c) for item, _ in self.prepared.values() for c in item.chunks) < _AHEAD:
            self._prepare(self.todo[0])

    def _transact(self, index: int) -> bool:
        """Start message ``index``'s transaction, when pacing allows; False: stop the run."""
        wait = self.pacer.wait()
        if wait > 0 and self.pipeline is not None and self.pipeline.open is not None:
            # Before waiting, let the message whose content is due go, so it is not held back;
            # this message comes round again next.
            self.todo.appendleft(index)
            return self._guard(self.pipeline.flush)
        if wait > 0:
            self.bar.set_postfix_str(f"waiting {wait:.1f} s", refresh=True)
            time.sleep(wait)
        if self.session is None and not self._connect():
            return False
        assert self.pipeline is not None
        self.pacer.started()
        self.attempts[index] += 1
        self.in_flight.append(index)
        item, _ = self.prepared[index]
        pipeline = self.pipeline
        return self._guard(lambda: pipeline.submit(item, self._prepare_next))

    def _guard(self, step: Callable[[], None]) -> bool:
        """Run a pipeline step; on an error the session is dropped and its messages sorted out."""
        try:
            step()
        except SMTPMagicError as exc:
            return self._lost(exc)
        return True

    def _lost(self, exc: SMTPMagicError) -> bool:
        """The session is unusable: "unknown" for what may have arrived, retry the rest."""
        self._close(quit=False)
        retry: list[int] = []
        for index in self.in_flight:
            if index in self.ended:
                item_id = self.prepared.pop(index)[1]
                earlier = self.earlier.pop(index, None)
                accepted = earlier.accepted if earlier is not None else ()
                attempts = self.attempts[index]
                self._final(
                    MessageResult(index, item_id, "unknown", accepted, {}, exc, "", attempts)
                )
            else:
                retry.append(index)
        self.in_flight.clear()
        self.ended.clear()
        if any(self.attempts[i] > self.options.retries for i in retry):
            self.error = exc  # tried often enough: stop; the rest stay "unsent"
            return False
        self.todo.extendleft(reversed(retry))
        self.pacer.failed()
        return True

    def _on_data_end(self, token: object) -> None:
        # From the end mark until the outcome is recorded the message counts as "unknown", so
        # a Ctrl-C anywhere in that window can never make resume() send it twice.
        index = int(token)  # type: ignore[call-overload]
        earlier = self.earlier.get(index)
        accepted = earlier.accepted if earlier is not None else ()
        self.ended.add(index)
        self.results[index] = MessageResult(
            index, self.prepared[index][1], "unknown", accepted, attempts=self.attempts[index]
        )

    def _on_outcome(self, outcome: Outcome) -> None:
        index = int(outcome.token)  # type: ignore[call-overload]
        item, message_id = self.prepared[index]
        error = outcome.error
        self.in_flight.remove(index)
        self.ended.discard(index)
        earlier = self.earlier.pop(index, None)
        took = outcome.accepted if outcome.status == "accepted" else ()
        accepted, refused = combine(earlier, took, outcome.refused, error, item)
        later = [a for a, (code, _) in outcome.refused.items() if 400 <= code < 500]
        if self.attempts[index] <= self.options.retries and (
            (outcome.status == "refused" and error is not None and error.temporary)
            or (outcome.status == "accepted" and later)
        ):
            # 4xx: the server did not take it (or not for some recipients), and may later.
            # Back off, then try again, for those recipients only: the others have it.
            so_far = MessageResult(
                index, message_id, "accepted", accepted, refused, None, outcome.reply
            )
            if accepted:
                self.earlier[index] = dataclasses.replace(so_far, attempts=self.attempts[index])
                self.results[index] = self.earlier[index]
                later = later or list(item.recipients)
                self.prepared[index] = (
                    dataclasses.replace(item, recipients=tuple(later)),
                    message_id,
                )
            else:
                self.results.pop(index, None)
            self.todo.appendleft(index)
            self.pacer.failed()
            return
        del self.prepared[index]
        if outcome.status == "accepted":
            self.pacer.succeeded()
        self._final(
            MessageResult(
                index,
                message_id,
                "accepted" if accepted else "refused",
                accepted=accepted,
                refused=refused,
                error=error,
                reply=outcome.reply or (earlier.reply if earlier is not None else ""),
                attempts=self.attempts[index],
            )
        )

    def _final(self, result: MessageResult) -> None:
        self.results[result.index] = result
        self.bar.update(1)
        if result.status != "accepted":
            self.counts[result.status] += 1
            self.bar.set_postfix_str(
                ", ".join(f"{n} {s}" for s, n in self.counts.items()), refresh=False
            )

    def _message_id(self, index: int) -> str | None:
        if index in self.prepared:
            return self.prepared[index][1]
        if isinstance(self.messages, list | tuple):  # cheap to look at; a lazy one is not built
            return header_id(self.messages[index])
        return None

    # -- the connection -------------------------------------------------------------------
    def _connect(self) -> bool:
        """Open a session; the first failure of a run is raised, later ones retried, then stop."""
        failures = 0
        while True:
            try:
                session = open_session(self.settings)
            except SMTPMagicError as exc:
                if self.connections == 0:
                    raise
                failures += 1
                if failures > self.options.retries:
                    self.error = exc
                    return False
                self.bar.set_postfix_str(f"reconnecting ({exc.code or type(exc).__name__})")
                time.sleep(self.pacer.failed())
                continue
            self.connections += 1
            self.security = session.security
            self.session = session
            self.pipeline = Pipeline(session, self._on_outcome, self._on_data_end)
            return True

    def _close(self, *, quit: bool = True) -> None:
        """QUIT and close (mid-transaction, only close: QUIT would read as data); never raises."""
        session, self.session, self.pipeline = self.session, None, None
        if session is not None:
            session.close() if quit else session.abort()
