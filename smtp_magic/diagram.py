"""A sequence (ladder) diagram of an SMTP transcript, drawn as SVG text: no browser, no plotting library.

The client and the server each get a lane; every command is an arrow to the right and every
reply (its continuation lines folded) an arrow to the left. Steps inside TLS are drawn solid
green on a green band, plaintext steps dashed on a sand-coloured band; the TLS handshake is its
own band with the version and cipher; a failed step is red, with the error's diagnosis under
it; the time each phase took runs down the right-hand side. The picture carries a ``<title>``,
a ``<desc>`` and a ``<title>`` per step, so a screen reader can follow it in order.

The diagram only ever shows the transcript's own text, which the session has already redacted
(AUTH payloads are ``<redacted>``): it adds nothing that could be a secret.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

__all__ = ["Diagram", "Step", "ladder", "steps"]


class _Line(Protocol):
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


def steps(transcript: Iterable[_Line]) -> list[Step]:
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

    for line in transcript:
        if line.direction != "S":
            close_reply()
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


def _with_failure(rows: list[Step], phase: str | None, diagnosis: str) -> list[Step]:
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

# -- drawing ------------------------------------------------------------------------------

WIDTH = 860
CLIENT_X, SERVER_X = 150, 610
TOP = 92  # below the lane heads and the legend
ROW = {"command": 34, "reply": 34, "note": 24, "tls": 40, "failure": 22}
GREEN, SAND, RED, INK, GREY = "#1a7f37", "#b07d2b", "#cf222e", "#1f2328", "#59636e"
FILL = {True: "#e6f4ea", False: "#fbf3e0"}  # band behind encrypted / plaintext rows
FONT = "font-family='ui-monospace,SFMono-Regular,Menlo,Consolas,monospace'"
LABEL_CHARS = 62  # what fits between the lanes at 12 px


def _measure(text: str) -> int:
    # Digits count as a fixed width per run, so that a port number or a size does not move a
    # line break: stored notebook outputs must not depend on which port the lab got.
    return len(re.sub(r"\d+", "00000", text))


def _clip(text: str, limit: int = LABEL_CHARS) -> str:
    if _measure(text) <= limit:
        return text
    words, out = text.split(" "), ""
    for word in words:
        if _measure(f"{out} {word}") > limit - 1:
            break
        out = f"{out} {word}".strip()
    return (out or text[: limit - 1]) + "…"


def _wrap(text: str, limit: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and _measure(f"{lines[-1]} {word}") <= limit:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def _text(
    x: float,
    y: float,
    body: str,
    *,
    size: int = 12,
    fill: str = INK,
    anchor: str = "start",
    bold: bool = False,
) -> str:
    weight = " font-weight='bold'" if bold else ""
    return (
        f"<text x='{x:g}' y='{y:g}' font-size='{size}' fill='{fill}' text-anchor='{anchor}'"
        f"{weight} {FONT}>{html.escape(body, quote=False)}</text>"
    )


def _arrow(step: Step, y: int, number: int) -> str:
    right = step.kind == "command"
    start, end = (CLIENT_X, SERVER_X) if right else (SERVER_X, CLIENT_X)
    color = RED if step.failed else (GREEN if step.encrypted else SAND)
    dash = "" if step.encrypted else " stroke-dasharray='7 4'"
    tip = end - 9 if right else end + 9
    line_y = y + 24
    head = f"{end},{line_y} {tip},{line_y - 5} {tip},{line_y + 5}"
    parts = [
        f"<g class='arrow {step.kind}' role='listitem'>",
        f"<title>Step {number}: {html.escape(step.spoken(), quote=False)}</title>",
        f"<line x1='{start}' y1='{line_y}' x2='{tip}' y2='{line_y}' stroke='{color}' stroke-width='2'{dash}/>",
        f"<polygon points='{head}' fill='{color}'/>",
        _text(
            (CLIENT_X + SERVER_X) / 2,
            y + 14,
            _clip(step.text),
            fill=RED if step.failed else INK,
            anchor="middle",
            bold=step.failed,
        ),
    ]
    if step.detail:
        parts.append(
            _text(
                (CLIENT_X + SERVER_X) / 2,
                y + 37,
                _clip(step.detail, 74),
                size=10,
                fill=GREY,
                anchor="middle",
            )
        )
    badge = "TLS" if step.encrypted else "plain"
    parts.append(_text(CLIENT_X - 14, line_y + 4, badge, size=10, fill=color, anchor="end"))
    parts.append("</g>")
    return "".join(parts)


def _band(step: Step, y: int, number: int) -> str:
    height = ROW[step.kind]
    if step.kind == "tls":
        color = RED if step.failed else GREEN
        label = ("✗ " if step.failed else "TLS handshake: ") + step.text
        fill = "#ffebe9" if step.failed else "#d2eedb"
        box = (
            f"<rect x='{CLIENT_X}' y='{y + 4}' width='{SERVER_X - CLIENT_X}' height='{height - 8}' rx='6' "
            f"fill='{fill}' stroke='{color}' stroke-width='1.5'/>"
        )
        body = box + _text(
            (CLIENT_X + SERVER_X) / 2,
            y + height / 2 + 4,
            _clip(label, 70),
            fill=color,
            anchor="middle",
            bold=True,
        )
        if step.detail:
            body += _text(
                (CLIENT_X + SERVER_X) / 2,
                y + height + 7,
                _clip(step.detail, 80),
                size=10,
                fill=GREY,
                anchor="middle",
            )
    elif step.kind == "failure":
        body = _text(
            (CLIENT_X + SERVER_X) / 2, y + 15, step.text, fill=RED, anchor="middle", bold=True
        )
    else:
        body = _text(
            (CLIENT_X + SERVER_X) / 2,
            y + 16,
            "· " + _clip(step.text, 70) + " ·",
            size=11,
            fill=GREY,
            anchor="middle",
        )
    role = "listitem"
    return f"<g class='{step.kind}' role='{role}'><title>Step {number}: {html.escape(step.spoken(), quote=False)}</title>{body}</g>"


def _timing_column(rows: Sequence[tuple[Step, int, int]], timings: Mapping[str, float]) -> str:
    """Brackets down the right side: each phase's rows and the time it took."""
    out: list[str] = []
    x = SERVER_X + 60
    runs: list[tuple[str, int, int]] = []
    for step, y, height in rows:
        if runs and runs[-1][0] == step.clock:
            runs[-1] = (step.clock, runs[-1][1], y + height)
        else:
            runs.append((step.clock, y, y + height))
    for clock, y0, y1 in runs:
        if clock not in timings:
            continue
        out.append(
            f"<path d='M{x},{y0 + 4} h6 V{y1 - 4} h-6' fill='none' stroke='{GREY}' stroke-width='1'/>"
        )
        out.append(
            _text(
                x + 12,
                (y0 + y1) / 2 + 4,
                f"{clock} {_duration(timings[clock])}",
                size=11,
                fill=GREY,
            )
        )
    return "".join(out)


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _render(
    title: str, rows_in: Sequence[Step], client: str, server: str, timings: Mapping[str, float]
) -> str:
    placed: list[tuple[Step, int, int]] = []
    y = TOP
    for step in rows_in:
        height = ROW[step.kind] + (12 if step.detail else 0)
        placed.append((step, y, height))
        y += height
    height_total = y + 20
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height_total}' "
        f"viewBox='0 0 {WIDTH} {height_total}' role='img' style='max-width:100%;height:auto'>",
        f"<title>{html.escape(title, quote=False)}</title>",
        f"<desc>{html.escape(describe(title, rows_in), quote=False)}</desc>",
        f"<rect x='0' y='0' width='{WIDTH}' height='{height_total}' fill='#ffffff'/>",
    ]
    for step, top, h in placed:  # the plaintext / TLS bands behind the rows
        if step.kind != "failure":
            out.append(
                f"<rect x='{CLIENT_X - 50}' y='{top}' width='{SERVER_X - CLIENT_X + 100}' height='{h}' fill='{FILL[step.encrypted]}'/>"
            )
    for x, name in ((CLIENT_X, client), (SERVER_X, server)):
        out.append(
            f"<rect x='{x - 120}' y='12' width='240' height='30' rx='4' fill='#f6f8fa' stroke='{INK}'/>"
        )
        out.append(_text(x, 32, _clip(name, 44), anchor="middle", bold=True))
        out.append(
            f"<line x1='{x}' y1='42' x2='{x}' y2='{height_total - 10}' stroke='{GREY}' stroke-width='1'/>"
        )
    out.append(_legend())
    out.append("<g role='list'>")
    for number, (step, top, _h) in enumerate(placed, start=1):
        out.append(_arrow(step, top, number) if step.is_arrow else _band(step, top, number))
    out.append("</g>")
    out.append(_timing_column(placed, timings))
    out.append("</svg>")
    return "".join(out)


def _legend() -> str:
    y = 62
    return (
        f"<g class='legend'><line x1='{CLIENT_X}' y1='{y}' x2='{CLIENT_X + 40}' y2='{y}' stroke='{SAND}' stroke-width='2' stroke-dasharray='7 4'/>"
        + _text(CLIENT_X + 48, y + 4, "plaintext: readable on the path", size=11, fill=GREY)
        + f"<line x1='{CLIENT_X + 270}' y1='{y}' x2='{CLIENT_X + 310}' y2='{y}' stroke='{GREEN}' stroke-width='2'/>"
        + _text(CLIENT_X + 318, y + 4, "inside TLS: encrypted", size=11, fill=GREY)
        + "</g>"
    )


def describe(title: str, rows: Sequence[Step]) -> str:
    """The diagram as numbered sentences: its ``<desc>``, and ``str(diagram)``."""
    lines = [f"{title}."] + [f"{n}. {step.spoken()}" for n, step in enumerate(rows, start=1)]
    return "\n".join(lines)


@dataclass(frozen=True)
class Diagram:
    """A ladder diagram: shows as SVG in Jupyter, as numbered sentences in text, saves to a file."""

    title: str
    rows: tuple[Step, ...]
    svg: str

    def _repr_svg_(self) -> str:
        return self.svg

    def __str__(self) -> str:
        return describe(self.title, self.rows)

    def _repr_pretty_(self, printer: object, cycle: bool) -> None:
        printer.text(str(self))  # type: ignore[attr-defined]

    def save(self, path: str | Path) -> Path:
        """Write the SVG to ``path`` (e.g. ``"conversation.svg"``) and return the path."""
        target = Path(path)
        target.write_text('<?xml version="1.0" encoding="UTF-8"?>\n' + self.svg, encoding="utf-8")
        return target


def ladder(
    transcript: Iterable[_Line],
    *,
    title: str = "SMTP conversation",
    client: str = "client (smtp_magic)",
    server: str = "server",
    timings: Mapping[str, float] | None = None,
    failed_phase: str | None = None,
    diagnosis: str | None = None,
) -> Diagram:
    """Draw ``transcript`` as a ladder diagram.

    Args:
        transcript: Transcript lines (``direction`` "C", "S" or "*", ``text``, ``encrypted``).
        title: The picture's title, read first by a screen reader.
        client: The left lane's name.
        server: The right lane's name, usually ``host:port``.
        timings: Seconds per phase (a report's ``timings``), drawn down the right side.
        failed_phase: The phase an error stopped in; the step is drawn red.
        diagnosis: The error's diagnosis, drawn in red under the failed step.

    Returns:
        A ``Diagram``: ``_repr_svg_`` for Jupyter, ``save("file.svg")``, ``str()`` for text.
    """
    rows = steps(transcript)
    if failed_phase is not None or diagnosis is not None:
        rows = _with_failure(rows, failed_phase, "")
        wrapped = _wrap(diagnosis or "", 96) or [""]
        rows = rows[:-1] + [
            Step("failure", line, failed=True, clock=rows[-1].clock) for line in wrapped
        ]
    svg = _render(title, rows, client, server, timings or {})
    return Diagram(title, tuple(rows), svg)
