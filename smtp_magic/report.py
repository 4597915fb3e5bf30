"""What a send or a probe found: SendReport and ProbeReport, readable as text and as HTML."""

from __future__ import annotations

import html
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

if TYPE_CHECKING:
    from smtp_magic.diagram import Diagram

from smtp_magic.phrasing import render
from smtp_magic.tlsinfo import (
    CertInfo,
    TLSInfo,
    auth_offered_before_tls,
    card_html,
    card_text,
)

__all__ = [
    "CertInfo",
    "PortProbe",
    "ProbeReport",
    "SendReport",
    "TLSInfo",
    "TranscriptLine",
    "conversation_html",
    "format_transcript",
    "with_message_data",
]

# swaks' notation: arrows for each direction, a tilde once the connection is encrypted.
_ARROWS = {("C", False): "->", ("S", False): "<-", ("C", True): "~>", ("S", True): "<~"}


class TranscriptLine(NamedTuple):
    """One line of the SMTP conversation.

    ``direction`` is "C" (client), "S" (server) or "*" (a note, such as the TLS handshake);
    ``encrypted`` says whether it crossed the network inside TLS. A named tuple, because a
    session records one per line and bulk sending makes thousands.
    """

    direction: Literal["C", "S", "*"]
    text: str
    encrypted: bool = False

    def __str__(self) -> str:
        arrow = _ARROWS.get((self.direction, self.encrypted), "**")
        return f"{arrow} {self.text}"


DATA_LINES_SHOWN = 400  # a teaching aid, not an archive: longer messages are cut with a note


def with_message_data(lines: Sequence[TranscriptLine], data: bytes) -> tuple[TranscriptLine, ...]:
    """The transcript with its first ``<message data, N bytes>`` line replaced by the data itself.

    Each line as it crossed the network (dot-stuffed, RFC 5321 section 4.5.2), then the ``.``
    that ends it. Used by ``send(..., show_data=True)``.
    """
    out = list(lines)
    for index, line in enumerate(out):  # noqa: B007  (index is used after the loop)
        if line.direction == "C" and line.text.startswith("<message data"):
            break
    else:
        return tuple(out)
    text = data.decode("utf-8", "replace").split("\r\n")
    if text and text[-1] == "":
        text.pop()
    shown = ["." + t if t.startswith(".") else t for t in text[:DATA_LINES_SHOWN]]
    if len(text) > DATA_LINES_SHOWN:
        shown.append(f"<{len(text) - DATA_LINES_SHOWN} more lines not shown>")
    encrypted = out[index].encrypted
    out[index : index + 1] = [TranscriptLine("C", t, encrypted) for t in [*shown, "."]]
    return tuple(out)


def format_transcript(lines: Sequence[TranscriptLine]) -> str:
    """The conversation as text: ``->``/``<-`` in plaintext, ``~>``/``<~`` inside TLS, ``**`` notes."""
    return "\n".join(str(line) for line in lines)


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _table(rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
        f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
        for k, v in rows
    )
    return f"<table>{body}</table>"


def _transcript_html(lines: Sequence[TranscriptLine]) -> str:
    if not lines:
        return ""
    text = html.escape(format_transcript(lines))
    return (
        f"<details><summary>SMTP transcript ({len(lines)} lines)</summary>"
        f"<pre style='font-size:90%'>{text}</pre></details>"
    )


def conversation_html(diagram: Diagram | None, lines: Sequence[TranscriptLine]) -> str:
    """The conversation as a picture (inline SVG, no script), its text transcript one click away."""
    picture = f"<div style='margin:0.5em 0'>{diagram.svg}</div>" if diagram else ""
    return picture + _transcript_html(lines)


@dataclass(frozen=True)
class SendReport:
    """The outcome of one ``send()``: how the connection was secured and who accepted the message."""

    host: str
    port: int
    security: str
    requested_security: str
    accepted: tuple[str, ...]
    refused: Mapping[str, tuple[int, str]] = field(default_factory=dict)
    message_id: str | None = None
    reply: str = ""
    tls: TLSInfo | None = None
    greeting: str = ""
    extensions: Mapping[str, str] = field(default_factory=dict)
    auth_mechanism: str | None = None
    timings: Mapping[str, float] = field(default_factory=dict)
    transcript: tuple[TranscriptLine, ...] = ()
    warnings: tuple[str, ...] = ()  # about the message itself (size), from message.size

    @property
    def delivered(self) -> bool:
        """True when the server accepted the message for at least one recipient."""
        return bool(self.accepted)

    @property
    def elapsed(self) -> float:
        """Seconds from connecting to the server's final reply."""
        return sum(self.timings.values())

    def summary_rows(self) -> list[tuple[str, str]]:
        """The report as (label, value) rows, shared by the text and HTML forms."""
        how = self.security
        if self.requested_security == "auto":
            how += " (chosen by security='auto')"
        rows = [
            ("Server", f"{self.host}:{self.port}"),
            ("Security", how),
            ("TLS", str(self.tls) if self.tls else "none: the conversation was not encrypted"),
        ]
        if self.tls and self.tls.certificate:
            rows.append(("Certificate", str(self.tls.certificate)))
        rows.append(("Login", (self.auth_mechanism and f"AUTH {self.auth_mechanism}") or "none"))
        rows.append(("Accepted", ", ".join(self.accepted) or "nobody"))
        if self.refused:
            rows.append(
                (
                    "Refused",
                    "; ".join(f"{a} ({c} {t})" for a, (c, t) in self.refused.items()),
                )
            )
        if self.message_id:
            rows.append(("Message-ID", self.message_id))
        if self.timings:
            rows.append(("Time", ", ".join(f"{k} {_duration(v)}" for k, v in self.timings.items())))
        rows.extend(("Warning", warning) for warning in self.warnings)
        return rows

    @property
    def headline(self) -> str:
        """The first line: Sent, Not delivered, or Sent but some recipients were refused."""
        if self.refused and self.accepted:
            return "Sent, but some recipients were refused"
        return "Sent" if self.delivered else "Not delivered"

    def diagram(self) -> Diagram:
        """The conversation as a ladder diagram (``_repr_svg_`` in Jupyter, ``save("x.svg")``)."""
        from smtp_magic.diagram import ladder

        where = f"{self.host}:{self.port}"
        return ladder(
            self.transcript,
            title=f"SMTP conversation with {where} ({self.security}): {self.headline.lower()}",
            server=f"server {where}",
            timings=self.timings,
        )

    def __str__(self) -> str:
        head = self.headline
        width = max(len(k) for k, _ in self.summary_rows())
        body = "\n".join(f"  {k:<{width}}  {v}" for k, v in self.summary_rows())
        return f"{head}:\n{body}"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # IPython's text/plain: the readable summary rather than the dataclass fields.
        printer.text(str(self))

    def _repr_html_(self) -> str:
        color = "#1a7f37" if self.delivered and not self.refused else "#9a6700"
        picture = self.diagram() if self.transcript else None
        return (
            f"<div><strong style='color:{color}'>{html.escape(self.headline)}</strong>"
            f"{_table(self.summary_rows())}"
            f"{card_html(self.tls, auth_before_tls=auth_offered_before_tls(self.transcript))}"
            f"{conversation_html(picture, self.transcript)}</div>"
        )


@dataclass(frozen=True)
class PortProbe:
    """What one port speaks, found without sending credentials or mail."""

    host: str
    port: int
    reachable: bool
    speaks: Literal["plaintext", "tls", "unknown"] = "unknown"
    greeting: str = ""
    starttls: bool = False
    auth_before_tls: tuple[str, ...] = ()
    auth_after_tls: tuple[str, ...] = ()
    tls: TLSInfo | None = None
    recommended: str | None = None
    note: str = ""
    transcript: tuple[TranscriptLine, ...] = ()
    note_template: str = field(default="", repr=False, compare=False)

    def note_for(self, front_end: str = "python") -> str:
        """The note with its fix phrased for ``front_end`` ("python", "cli", "magic", "form")."""
        return render(self.note_template, front_end) if self.note_template else self.note

    def diagram(self) -> Diagram:
        """What the probe said to this port and what it answered, as a ladder diagram."""
        from smtp_magic.diagram import ladder

        where = f"{self.host}:{self.port}"
        return ladder(self.transcript, title=f"Probe of {where}", server=f"server {where}")

    def cells(self, front_end: str = "python") -> tuple[str, ...]:
        """The row of the probe table (the text table puts the note below the rows)."""
        note = self.note_for(front_end)
        if not self.reachable:
            return (str(self.port), "unreachable", "", "", "", "", "-", note)
        cert = self.tls.certificate if self.tls else None
        return (
            str(self.port),
            {"plaintext": "plaintext greeting", "tls": "TLS first"}.get(self.speaks, "?"),
            "yes" if self.starttls else ("n/a" if self.speaks == "tls" else "no"),
            " ".join(self.auth_before_tls) or "-",
            " ".join(self.auth_after_tls) or "-",
            (f"{self.tls.version}, " + ("verified" if cert and cert.verified else "NOT verified"))
            if self.tls
            else "-",
            self.recommended or "-",
            note,
        )


_SECURITY_HEADER = {"cli": "--security", "magic": "--security", "form": "Security"}

_PROBE_HEADERS = (
    "port",
    "speaks",
    "STARTTLS",
    "AUTH before TLS",
    "AUTH after TLS",
    "TLS",
    "use security=",
    "note",
)


@dataclass(frozen=True)
class ProbeReport:
    """The probe table for one host: a PortProbe per port."""

    host: str
    ports: tuple[PortProbe, ...]
    front_end: str = field(default="python", compare=False)
    """Whose terms the fixes are shown in: "python", "cli", "magic" or "form"."""

    def phrased(self, front_end: str) -> ProbeReport:
        """This report, showing its fixes in ``front_end``'s terms (``--security`` in a magic)."""
        return replace(self, front_end=front_end)

    def __getitem__(self, port: int) -> PortProbe:
        for probe in self.ports:
            if probe.port == port:
                return probe
        raise KeyError(f"port {port} was not probed; probed: {[p.port for p in self.ports]}")

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.ports)

    def __len__(self) -> int:
        return len(self.ports)

    def diagram(self, port: int | None = None) -> Diagram:
        """The conversation with ``port`` (optional when only one port was probed) as a diagram."""
        if port is None:
            if len(self.ports) != 1:
                raise KeyError(
                    f"say which port: diagram(port), one of {[p.port for p in self.ports]}"
                )
            return self.ports[0].diagram()
        return self[port].diagram()

    def __str__(self) -> str:
        return self.text(self.front_end)

    def text(self, front_end: str | None = None, width: int = 100) -> str:
        """The table as text, its fixes phrased for ``front_end``.

        Notes (a diagnosis can be 200 characters) go below the table, wrapped to ``width``
        columns, so the table's rows stay one line each in a terminal.
        """
        front_end = front_end or self.front_end
        headers = (*_PROBE_HEADERS[:6], _SECURITY_HEADER.get(front_end, _PROBE_HEADERS[6]))
        rows: list[tuple[str, ...]] = [headers, *(p.cells()[:7] for p in self.ports)]
        widths = [max(len(r[i]) for r in rows) for i in range(len(headers))]
        widths[0] = max(widths[0], 5)  # room for any port, so the layout does not depend on it
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))

        def listing(texts: dict[int, str]) -> list[str]:
            return [
                textwrap.fill(text, width, initial_indent=f"  {port}: ", subsequent_indent="    ")
                for port, text in texts.items()
                if text
            ]

        notes = listing({p.port: p.note_for(front_end) for p in self.ports})
        greetings = listing({p.port: p.greeting for p in self.ports})
        tail = ("\nnotes:\n" + "\n".join(notes)) if notes else ""
        tail += ("\ngreetings:\n" + "\n".join(greetings)) if greetings else ""
        for p in self.ports:  # the certificate-and-TLS card of each port, as in the HTML
            if p.tls or p.auth_before_tls:
                card = card_text(p.tls, auth_before_tls=p.auth_before_tls, width=width - 4)
                tail += f"\nport {p.port}, certificate and TLS:\n" + "\n".join(
                    "  " + line for line in card
                )
        return f"Probe of {self.host}\n" + "\n".join(lines) + tail

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        headers = list(_PROBE_HEADERS)
        headers[6] = _SECURITY_HEADER.get(self.front_end, headers[6])
        head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
        body = "".join(
            "<tr>"
            + "".join(f"<td>{html.escape(c)}</td>" for c in p.cells(self.front_end))
            + "</tr>"
            for p in self.ports
        )
        certs_html = "".join(
            card_html(
                p.tls,
                auth_before_tls=p.auth_before_tls,
                title=f"Port {p.port}: certificate and TLS",
            )
            for p in self.ports
            if p.tls or p.auth_before_tls
        )
        greetings = "".join(
            f"<li>{p.port}: {html.escape(p.greeting)}</li>" for p in self.ports if p.greeting
        )
        if greetings:
            certs_html = f"<p>Greetings:</p><ul>{greetings}</ul>" + certs_html
        conversations = "".join(
            f"<details><summary>Conversation with port {p.port} (diagram)</summary>"
            f"{conversation_html(p.diagram(), p.transcript)}</details>"
            for p in self.ports
            if p.transcript
        )
        return (
            f"<div><strong>Probe of {html.escape(self.host)}</strong>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{certs_html}"
            f"{conversations}</div>"
        )
