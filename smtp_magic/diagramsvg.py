"""Drawing a ladder diagram as SVG text: lanes, arrows, the plaintext and TLS bands, timings.

Only presentation attributes (no style sheet, no script, no ids), so that the picture survives
the HTML sanitisers of GitHub's and nbviewer's static notebook renderers.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence

from smtp_magic.diagramsteps import Step, describe

__all__ = ["render", "wrap"]


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


def wrap(text: str, limit: int) -> list[str]:
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
        # A white strip under the diagnosis: the lifelines end here, the words stay readable.
        body = f"<rect x='10' y='{y}' width='{SERVER_X + 40}' height='{height}' fill='#ffffff'/>"
        body += _text(
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


def render(
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
