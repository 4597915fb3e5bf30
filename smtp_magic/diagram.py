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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from smtp_magic.diagramsteps import Line, Step, describe, steps, with_failure
from smtp_magic.diagramsvg import render, wrap

__all__ = ["Diagram", "Step", "ladder", "steps"]


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
    transcript: Iterable[Line],
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
        rows = with_failure(rows, failed_phase, "")
        wrapped = wrap(diagnosis or "", 96) or [""]
        rows = rows[:-1] + [
            Step("failure", line, failed=True, clock=rows[-1].clock) for line in wrapped
        ]
    svg = render(title, rows, client, server, timings or {})
    return Diagram(title, tuple(rows), svg)
