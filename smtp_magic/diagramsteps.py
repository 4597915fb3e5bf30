"""The rows of a ladder diagram: transcript lines grouped into commands, folded replies, notes, TLS.

Pure: no I/O, no drawing (``diagramsvg`` draws, ``diagram`` puts the two together).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["Kind", "Line", "Step", "describe", "steps", "with_failure"]


class Line(Protocol):
    """What the diagram needs of a transcript line (``report.TranscriptLine`` has it)."""

    @property
    def direction(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def encrypted(self) -> bool: ...


Kind = Literal["command", "reply", "note", "tls", "failure"]


@dataclass(frozen=True)
class Step:
    """One row of the diagram: a command, a folded reply, a note, the TLS handshake, or the failure."""

    kind: Kind
    text: str
    encrypted: bool = False
    detail: str = ""  # a folded reply's continuation lines, e.g. its EHLO keywords
    failed: bool = False
    clock: str = "connect"  # which of a report's timings (connect, tls, auth, send) it belongs to

    @property
    def is_arrow(self) -> bool:
        """True for commands and replies: one arrow each."""
        return self.kind in ("command", "reply")

    def spoken(self) -> str:
        """The step as a sentence, for the screen-reader text and ``str(diagram)``."""
        where = "inside TLS" if self.encrypted else "in plaintext"
        failed = "FAILED: " if self.failed else ""
        if self.kind == "command":
            return f"{failed}client to server, {where}: {self.text}"
        if self.kind == "reply":
            more = f" ({self.detail})" if self.detail else ""
            return f"{failed}server to client, {where}: {self.text}{more}"
        if self.kind == "tls":
            more = f"; {self.detail}" if self.detail else ""
            return f"{failed}TLS handshake: {self.text}{more}"
        if self.kind == "failure":
            return f"FAILED: {self.text}"
        return f"note: {self.text}"


_REPLY = re.compile(r"^(\d{3})([- ]|$)")
_HANDSHAKE = "TLS handshake done: "


def _clock(kind: Kind, text: str, encrypted: bool, state: dict[str, str]) -> str:
    """The timing bucket a step falls in, following the session's clocks (approximately)."""
    word = text.split(" ", 1)[0].upper() if kind == "command" else ""
    if kind == "tls" or word == "STARTTLS":
        state["clock"] = "tls"
    elif word == "AUTH":
        state["clock"] = "auth"
    elif word in ("MAIL", "RCPT", "DATA", "RSET", "QUIT") or text.startswith("<message data"):
        state["clock"] = "send"
    elif word in ("EHLO", "HELO") and state["clock"] not in ("tls", "connect"):
        state["clock"] = "connect"
    return state["clock"]


def steps(transcript: Iterable[Line]) -> list[Step]:
    """Group transcript lines into diagram rows: multi-line replies fold into one step."""
    rows: list[Step] = []
    state = {"clock": "connect"}
    folded: list[str] = []  # the lines of the reply being read
    encrypted = False

    def close_reply() -> None:
        if not folded:
            return
        first, rest = folded[0], folded[1:]
        keywords = [line[4:] if _REPLY.match(line) else line for line in rest]
        detail = ", ".join(k for k in keywords if k)
        kind: Kind = "reply"
        rows.append(
            Step(kind, first, encrypted, detail, clock=_clock(kind, first, encrypted, state))
        )
        folded.clear()

    data: list[str] = []  # message data shown line by line (send(show_data=True)): one arrow
    for line in transcript:
        if line.direction != "S":
            close_reply()
        if data or (
            line.direction == "C"
            and rows
            and rows[-1].text.startswith("354")
            and not line.text.startswith("<message data")
        ):
            data.append(line.text)
            if line.text == ".":
                first = next((t for t in data if t.lower().startswith("subject:")), data[0])
                text = f"<message data, {len(data) - 1} lines>"
                rows.append(Step("command", text, line.encrypted, first, clock="send"))
                data.clear()
            continue
        if line.direction == "S":
            if not folded:
                encrypted = line.encrypted
            folded.append(line.text)
            match = _REPLY.match(line.text)
            if not match or match.group(2) != "-":
                close_reply()
            continue
        kind: Kind
        text = line.text
        if line.direction == "C":
            kind = "command"
        elif text.startswith(_HANDSHAKE):
            kind, text = "tls", text[len(_HANDSHAKE) :]
        else:
            kind = "note"
        # "TLSv1.3 TLS_AES_256_GCM_SHA384; certificate localhost issued by ...": the band shows
        # the version and cipher, the line under it the certificate.
        text, _, detail = text.partition("; ") if kind == "tls" else (text, "", "")
        clock = _clock(kind, text, line.encrypted, state)
        rows.append(Step(kind, text, line.encrypted, detail, clock=clock))
    close_reply()
    return rows


def with_failure(rows: list[Step], phase: str | None, diagnosis: str) -> list[Step]:
    """Mark the failed step: an error reply turns red, otherwise a red row says what did not happen."""
    last = rows[-1] if rows else None
    code = _REPLY.match(last.text) if last and last.kind == "reply" else None
    if last is not None and code and code.group(1)[0] in "45":
        rows[-1] = Step("reply", last.text, last.encrypted, last.detail, True, last.clock)
        if len(rows) > 1 and rows[-2].kind == "command":
            before = rows[-2]
            rows[-2] = Step(
                "command", before.text, before.encrypted, failed=True, clock=before.clock
            )
    else:
        what = _MISSING.get(phase or "", f"the {phase or 'last'} step did not complete")
        kind: Kind = "tls" if phase == "tls" else "failure"
        encrypted = bool(last and last.encrypted)
        text = what if kind == "tls" else f"✗ {what}"
        rows.append(
            Step(kind, text, encrypted, failed=True, clock=last.clock if last else "connect")
        )
    rows.append(Step("failure", diagnosis, failed=True, clock=rows[-1].clock))
    return rows


_MISSING = {
    "connect": "no connection",
    "greeting": "no 220 greeting from the server",
    "tls": "TLS handshake failed",
    "starttls": "STARTTLS did not complete",
    "ehlo": "EHLO did not complete",
    "auth": "login did not complete",
    "mail": "MAIL FROM did not complete",
    "rcpt": "RCPT TO did not complete",
    "data": "the message was not confirmed",
}


def describe(title: str, rows: Sequence[Step]) -> str:
    """The diagram as numbered sentences: its ``<desc>``, and ``str(diagram)``."""
    lines = [f"{title}."] + [f"{n}. {step.spoken()}" for n, step in enumerate(rows, start=1)]
    return "\n".join(lines)
