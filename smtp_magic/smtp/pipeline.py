"""Mail transactions on an open session: RFC 2920 command groups when PIPELINING is offered, lock-step otherwise.

With PIPELINING a message costs one round trip in steady state: its MAIL, RCPT and DATA
commands go out in one write together with the previous message's content and end mark, and
the replies come back in that order (RFC 2920 section 3.1: EHLO, DATA, QUIT and NOOP may only
end a group; the transfer of message content may open one). Without PIPELINING every command
is a group of its own, which is plain lock-step SMTP. The same code matches replies either way.

Replies are matched to commands strictly in order, and a reply that does not fit its command
(a 354 to MAIL, a 250 to DATA...), or bytes the server sends before it was asked anything, end
the session: a reply is never attributed to the wrong command or message. Each message's
outcome is handed to ``on_outcome`` as soon as its last reply is read; ``on_data_end`` is
called just before its end mark goes out, so that a caller can count it as possibly delivered
("unknown") for the whole window until its outcome is known.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from smtp_magic import errors
from smtp_magic.report import TranscriptLine
from smtp_magic.smtp import diagnose
from smtp_magic.smtp.markers import MessageTooLarge
from smtp_magic.smtp.stream import check_in_step, misfit, read_reply, unknown_on_failure
from smtp_magic.smtp.wire import send_body

if TYPE_CHECKING:
    from smtp_magic.smtp.session import Session

__all__ = ["Item", "Outcome", "Pipeline"]

_KEEP_LINES = 100  # transcript lines of earlier messages kept on a long-lived session
_PHASES = {"MAIL": "mail", "RCPT": "rcpt", "DATA": "data", "RSET": "rset"}
_FITS = {"MAIL": (250,), "RCPT": (250, 251), "DATA": (354,), "RSET": (250,)}
"""The success codes that fit each command's reply; any 4xx or 5xx fits too, except to RSET."""


@dataclass(frozen=True)
class Item:
    """One message to transfer: its envelope and the exact bytes (Bcc removed)."""

    token: object  # the caller's name for it (send_many: the message's index)
    sender: str
    recipients: Sequence[str]
    chunks: Sequence[bytes]
    smtputf8: bool = False


@dataclass
class Outcome:
    """What the server said to one message.

    ``status`` is "accepted" (taken for at least one recipient) or "refused" (the sender,
    every recipient or the message refused; ``error`` says which, as ``send()`` would raise it).
    """

    token: object
    status: str = "refused"
    accepted: tuple[str, ...] = ()
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)
    reply: str = ""
    error: errors.SMTPMagicError | None = None


class _Open:
    """A message whose DATA got 354: its content goes at the head of the next group."""

    __slots__ = ("item", "outcome")

    def __init__(self, item: Item, outcome: Outcome) -> None:
        self.item = item
        self.outcome = outcome


class Pipeline:
    """Transactions on one open session; ``submit`` each message, then ``flush`` at the end.

    Args:
        session: An open, authenticated session.
        on_outcome: Called with each message's Outcome as soon as it is known.
        on_data_end: Called with a message's token just before its end mark goes out.

    Any SMTPMagicError raised by ``submit`` or ``flush`` means the session must not be used
    again (lost, timed out, a reply that did not fit, bytes out of step). A message with no
    outcome then was not delivered, unless ``on_data_end`` was called for it: that one is
    "delivery unknown".
    """

    def __init__(
        self,
        session: Session,
        on_outcome: Callable[[Outcome], None],
        on_data_end: Callable[[object], None] = lambda token: None,
    ) -> None:
        self.session = session
        self.wire = session.wire
        wire = self.wire
        self.pipelining = wire.has_extn("pipelining")
        # What the server offers does not change within a session: look it up once.
        self.size_limit = int(wire.esmtp_features.get("size") or 0) if wire.has_extn("size") else -1
        self.eightbit = wire.has_extn("8bitmime")
        self.smtputf8 = wire.has_extn("smtputf8")
        self.on_outcome = on_outcome
        self.on_data_end = on_data_end
        self.open: _Open | None = None  # a message waiting for its content to be sent
        self.need_rset = False  # a refused transaction may still hold MAIL or RCPT state

    # -- the public steps ---------------------------------------------------------------
    def submit(self, item: Item, meanwhile: Callable[[], None] | None = None) -> None:
        """Send ``item``'s envelope (with the previous message's content, when pipelining).

        ``meanwhile`` is called between the write and the reading of the replies (pipelining
        only): work done there overlaps the server's, whose replies are then waiting when read
        instead of each costing a wait. It must not raise (but KeyboardInterrupt).
        """
        self._trim_transcript()
        size = sum(len(c) for c in item.chunks)
        try:
            options = self._options(item, size)
        except (MessageTooLarge, smtplib.SMTPNotSupportedError, ValueError) as exc:
            self.session.phase = "mail"
            self.on_outcome(Outcome(item.token, error=diagnose.explain(exc, self.session)))
            return
        encoding = "utf-8" if item.smtputf8 else "ascii"
        commands = [f"MAIL FROM:<{item.sender}>{options}"]
        commands += [f"RCPT TO:<{r}>" for r in item.recipients]
        commands.append("DATA")
        if self.need_rset:
            commands.insert(0, "RSET")
        if not self.pipelining:
            self.flush()
            self._lockstep(item, commands, encoding)
            return
        previous = self.open
        self._in_step()
        head = self._send_content(previous) if previous is not None else b""
        self._write(head, commands, encoding, "data-end" if previous is not None else "mail")
        if meanwhile is not None:
            meanwhile()
        if previous is not None:
            self._finish(previous)
        self._read_envelope(item, commands)

    def flush(self) -> None:
        """Send the content of the message waiting for it, and read the server's verdict."""
        previous = self.open
        if previous is None:
            return
        self._in_step()
        head = self._send_content(previous)
        self._write(head, [], "ascii", "data-end")
        self._finish(previous)

    # -- groups -------------------------------------------------------------------------
    def _options(self, item: Item, size: int) -> str:
        for address in (item.sender, *item.recipients):
            if "\r" in address or "\n" in address or "<" in address or ">" in address:
                raise ValueError(f"an address holds a line break or angle bracket: {address!r}")
        options = ""
        if self.size_limit >= 0:
            if self.size_limit and size > self.size_limit:
                raise MessageTooLarge(size, self.size_limit)
            options += f" SIZE={size}"
        if item.smtputf8:
            if not self.smtputf8:
                raise smtplib.SMTPNotSupportedError(
                    "One or more source or delivery addresses require internationalized email "
                    "support, but the server does not advertise the required SMTPUTF8 capability"
                )
            options += " SMTPUTF8 BODY=8BITMIME"
        elif self.eightbit and not all(c.isascii() for c in item.chunks):
            options += " BODY=8BITMIME"
        return options

    def _write(self, head: bytes, commands: Sequence[str], encoding: str, phase: str) -> None:
        """One write: ``head`` (the end of a message's content) followed by ``commands``."""
        wire = self.wire
        encrypted = wire.encrypted
        if len(commands) > 1 or (head and commands):
            what = f"{len(commands)} commands" + (
                " after the end of a message's data" if head else ""
            )
            wire.transcript.append(
                TranscriptLine("*", f"pipelined group: {what}, in one write", encrypted)
            )
        for command in commands:
            wire.transcript.append(TranscriptLine("C", command, encrypted))
        data = head + "".join(c + "\r\n" for c in commands).encode(encoding)
        with self.session.step(phase, "send"):
            if phase != "data-end":
                wire.sendall(data)
                return
            with unknown_on_failure():
                wire.sendall(data)

    def _send_content(self, previous: _Open) -> bytes:
        """Send all of ``previous``'s content but the last piece; that piece + the end mark."""
        wire = self.wire
        item = previous.item
        size = sum(len(c) for c in item.chunks)
        wire.transcript.append(TranscriptLine("C", f"<message data, {size} bytes>", wire.encrypted))
        with self.session.step("data", "send"):
            tail = send_body(wire, item.chunks)  # dot-stuffed; large messages in pieces
        # From the first byte of the end mark on, the server may hold the whole message.
        self.on_data_end(item.token)
        self.session.delivered_data = True
        self.open = None
        return tail

    def _lockstep(self, item: Item, commands: list[str], encoding: str) -> None:
        """No PIPELINING: each command waits for its reply before the next goes out."""
        replies: list[tuple[int, bytes]] = []
        for command in commands:
            self._in_step()
            self._write(b"", [command], encoding, "mail")
            replies.append(self._read_one(command))
            if not self._carry_on(command, replies[-1], commands, replies):
                break
        self._judge(item, commands, replies)

    def _carry_on(
        self,
        command: str,
        reply: tuple[int, bytes],
        commands: list[str],
        replies: list[tuple[int, bytes]],
    ) -> bool:
        """In lock-step, whether the next command is worth sending after ``reply``."""
        verb = command.split(" ", 1)[0]
        if verb == "MAIL":
            return reply[0] == 250
        if verb == "RCPT" and len(replies) == len(commands) - 1:
            # The last RCPT: DATA only if at least one recipient was accepted.
            rcpts = [r for c, r in zip(commands, replies, strict=False) if c.startswith("RCPT")]
            return any(code in (250, 251) for code, _ in rcpts)
        return True

    def _read_envelope(self, item: Item, commands: list[str]) -> None:
        # One deadline for the group's replies (a step per reply costs CPU on every message);
        # session.phase follows the command whose reply is awaited, for the diagnosis.
        with self.session.step("mail", "send"):
            replies = [self._reply_to(command) for command in commands]
        self._judge(item, commands, replies)

    def _read_one(self, command: str) -> tuple[int, bytes]:
        """The reply to ``command`` alone (lock-step)."""
        with self.session.step("mail", "send"):
            return self._reply_to(command)

    def _reply_to(self, command: str) -> tuple[int, bytes]:
        """The reply to ``command``; a reply that does not fit it ends the session."""
        verb = command[:4]
        self.session.phase = _PHASES[verb]
        code, text = read_reply(self.wire)
        if code == 421:
            # RFC 5321 section 3.8: the server is closing the channel; nothing after this.
            raise smtplib.SMTPResponseException(code, text)
        if code not in _FITS[verb] and (verb == "RSET" or not 400 <= code < 600):
            raise misfit(command, code, text)
        return code, text

    def _judge(self, item: Item, commands: list[str], replies: list[tuple[int, bytes]]) -> None:
        """Work out ``item``'s fate from its replies (fewer replies: lock-step stopped early)."""
        start = 1 if commands[0] == "RSET" else 0
        if start:
            self.need_rset = False
        got = replies[start:]
        mail = got[0]
        rcpts = got[1 : 1 + len(item.recipients)]
        data = got[1 + len(item.recipients)] if len(got) > 1 + len(item.recipients) else None
        outcome = Outcome(item.token)
        for address, (code, text) in zip(item.recipients, rcpts, strict=False):
            if code in (250, 251):
                outcome.accepted += (address,)
            else:
                outcome.refused[address] = (code, text.decode("utf-8", "replace"))
        if data is not None and data[0] == 354:
            if mail[0] == 250 and outcome.accepted:
                self.open = _Open(item, outcome)
                return
            # RFC 2920 section 3.1: DATA accepted though nothing else was: a lone end mark.
            self._empty_data()
        if mail[0] == 250:
            self.need_rset = True
        session = self.session
        if mail[0] != 250:
            session.phase = "mail"
            cause: Exception = smtplib.SMTPSenderRefused(mail[0], mail[1], item.sender)
        elif not outcome.accepted:
            session.phase = "rcpt"
            cause = smtplib.SMTPRecipientsRefused(
                {r: (c, t.encode()) for r, (c, t) in outcome.refused.items()}
            )
        else:
            assert data is not None
            session.phase = "data"
            cause = smtplib.SMTPDataError(data[0], data[1])
        outcome.error = diagnose.explain(cause, session)
        self.on_outcome(outcome)

    def _empty_data(self) -> None:
        self.wire.transcript.append(TranscriptLine("C", ".", self.wire.encrypted))
        self._write(b".\r\n", [], "ascii", "data")
        with self.session.step("data", "send"):
            read_reply(self.wire)  # whatever it says: nothing was in the data

    def _finish(self, previous: _Open) -> None:
        """Read the reply to ``previous``'s end mark and hand over its outcome."""
        outcome = previous.outcome
        session = self.session
        with session.step("data-end", "send"), unknown_on_failure():
            code, text = read_reply(self.wire)
            if not (code == 250 or 400 <= code < 600):
                # Not a clear yes or no: "delivery unknown", and the stream cannot be trusted.
                raise misfit("the end of the data", code, text)
        session.delivered_data = False
        reply = f"{code} {text.decode('utf-8', 'replace')}"
        if code == 250:
            outcome.status, outcome.reply = "accepted", reply
        else:
            self.need_rset = True  # harmless after a refused end of data, and sure
            outcome.status = "refused"
            outcome.error = diagnose.explain(smtplib.SMTPDataError(code, text), session)
        self.on_outcome(outcome)
        if code == 421:
            with session.step("data-end", "send"):
                raise smtplib.SMTPResponseException(code, text)

    # -- staying in step ------------------------------------------------------------------
    def _in_step(self) -> None:
        with self.session.step("mail", "send"):
            check_in_step(self.wire)

    def _trim_transcript(self) -> None:
        # Keep the negotiation and this message's lines, not every earlier message's: a long
        # send_many would otherwise hold thousands of lines (and the garbage collector's time).
        wire, opening = self.wire, self.session.opening
        if len(wire.transcript) > opening + _KEEP_LINES:
            dropped = len(wire.transcript) - opening
            del wire.transcript[opening:]
            wire.note(f"({dropped} lines of earlier messages omitted)")
