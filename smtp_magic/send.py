"""send(): hand one EmailMessage to a server over a negotiated, verified connection and report what happened."""

from __future__ import annotations

import copy
import dataclasses
import functools
import io
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.policy import Policy
from email.utils import getaddresses
from typing import Any

from smtp_magic.errors import ComposeError, MessageRejectedError
from smtp_magic.message.addresses import check_headers
from smtp_magic.message.size import over_provider_limit, size_warnings
from smtp_magic.message.wirefold import wire_policy
from smtp_magic.report import SendReport, with_message_data
from smtp_magic.settings import Settings
from smtp_magic.smtp.session import Delivery, Session, open_session

__all__ = ["Outgoing", "check_provider_limit", "prepare", "report_for", "send"]


@dataclass(frozen=True)
class Outgoing:
    """A message ready for the wire: the envelope and the exact bytes (Bcc removed).

    The bytes are kept as chunks, so that a large attachment is never held twice.
    """

    sender: str
    recipients: tuple[str, ...]
    chunks: tuple[bytes, ...]
    smtputf8: bool
    message_id: str | None

    @property
    def size(self) -> int:
        """The size of the message in bytes, as sent."""
        return sum(len(chunk) for chunk in self.chunks)

    @property
    def data(self) -> bytes:
        """The whole message as one bytes object (a copy: for inspection and tests)."""
        return b"".join(self.chunks)


def prepare(message: EmailMessage, settings: Settings) -> Outgoing:
    """Work out the envelope of ``message`` and flatten it with CRLF line ends.

    The envelope sender is the From address (or ``settings.sender`` when the message has none,
    which is then also written as From). The recipients are To, Cc and Bcc; the Bcc header
    itself is removed from what is sent, as ``smtplib.send_message`` does.

    Raises:
        ComposeError: the message is not an EmailMessage, has no sender or no recipient, has
            a header or parameter that holds a line break once decoded (header injection), or
            holds text it cannot encode.
    """
    if not isinstance(message, EmailMessage):
        raise ComposeError(
            f"send() takes an email.message.EmailMessage, not {type(message).__name__}: "
            "build one with smtp_magic.message.compose(...)."
        )
    # A shallow copy with its own header list, so that adding From or removing Bcc leaves the
    # caller's message alone (copy.copy alone shares the list). A deepcopy would be safer still
    # but costs about 1.4 ms a message, most of what sending one takes.
    outgoing = copy.copy(message)
    outgoing._headers = list(message._headers)  # type: ignore[attr-defined]
    if outgoing["From"] is None:
        if not settings.sender:
            raise ComposeError(
                "the message has no From address: set sender= in Settings (or SMTP_FROM), "
                "or pass sender= to compose()."
            )
        outgoing["From"] = _from_header(outgoing.policy, settings.sender)
    found, has_bcc, message_id = _envelope_headers(outgoing)
    sender = next(iter(found["sender"] or found["from"]), "")
    if not sender:
        raise ComposeError("the From address of the message is empty or malformed.")
    recipients = list(dict.fromkeys(found["to"] + found["cc"] + found["bcc"]))
    if not recipients:
        raise ComposeError("the message has no recipient: give at least one of to, cc or bcc.")
    if has_bcc:
        del outgoing["Bcc"]
        del outgoing["Resent-Bcc"]
    check_headers(outgoing)  # hand-built messages too: no header may break its line, decoded
    smtputf8 = not all(a.isascii() for a in (sender, *recipients))
    small = _payload_size(outgoing) <= _SLICE
    if not small:
        _set_boundaries(outgoing)  # worth it only for large messages: set_boundary re-parses
    policy = wire_policy(outgoing.policy, smtputf8)
    sink: _Chunks | io.BytesIO = _Chunks() if not small else io.BytesIO()
    generator = _Generator if not small else _SmallGenerator
    try:
        # The policy has CRLF line ends already: no linesep here, which would clone it again.
        generator(sink, mangle_from_=False, policy=policy).flatten(outgoing)
    except UnicodeEncodeError as exc:
        # A hand-built part whose text has no charset to encode it (set_payload("héllo")): the
        # email package itself cannot write it (compose() always declares one).
        raise ComposeError(
            f"the message cannot be written for sending: a part holds the character "
            f"{exc.object[exc.start : exc.start + 1]!r} but no charset to encode it. Build text "
            "parts with set_content(text), which declares UTF-8, or build the message with "
            "smtp_magic.compose()."
        ) from None
    chunks = sink.close() if isinstance(sink, _Chunks) else (sink.getvalue(),)
    return Outgoing(
        sender=sender,
        recipients=tuple(recipients),
        chunks=chunks,
        smtputf8=smtputf8,
        message_id=message_id,
    )


_SLICE = 1 << 20


@functools.lru_cache(maxsize=32)
def _from_header(policy: Policy, sender: str) -> object:
    """The parsed From header for ``sender``: parsing an address costs more than sending it,
    and ``send_many`` adds the same From to every message (header objects are immutable)."""
    return policy.header_factory("From", sender)  # type: ignore[attr-defined]


_ENVELOPE = ("sender", "from", "to", "cc", "bcc")


def _envelope_headers(message: EmailMessage) -> tuple[dict[str, list[str]], bool, Any]:
    """The addresses in the Sender, From, To, Cc and Bcc headers, whether a Bcc or Resent-Bcc
    header is present, and the (first) Message-ID, in one walk over the headers (``get_all``
    and ``get`` walk them all for each field)."""
    found: dict[str, list[str]] = {field: [] for field in _ENVELOPE}
    has_bcc = False
    message_id = None
    fetch = message.policy.header_fetch_parse
    for name, raw in message._headers:  # type: ignore[attr-defined]
        field = name.lower()
        if field in ("bcc", "resent-bcc"):
            has_bcc = True
        if field in found:
            found[field] += _addresses(fetch(name, raw))  # the same value get_all gives
        elif field == "message-id" and message_id is None:
            message_id = fetch(name, raw)  # what message["Message-ID"] gives: the first
    return found, has_bcc, message_id


def _addresses(header: object) -> list[str]:
    """The addresses in one header, from the parsed header when the policy made one."""
    parsed = getattr(header, "addresses", None)
    if parsed is not None:  # email.policy.default: already parsed, no second parse
        return [a.addr_spec for a in parsed if a.addr_spec and a.addr_spec != "<>"]
    return [a for _name, a in getaddresses([str(header)]) if a]  # compat32: plain strings


def _payload_size(message: EmailMessage) -> int:
    """Characters in the leaf payloads, without decoding them.

    The stored payloads themselves: ``get_payload()`` looks up Content-Transfer-Encoding and
    encodes the whole payload to look for surrogates, for a size that only picks a buffer.
    """
    if not message.is_multipart():
        return len(message._payload or "")  # type: ignore[attr-defined]
    leaves: list[Any] = [part for part in message.walk() if not part.is_multipart()]
    return sum(len(part._payload or "") for part in leaves)


def _set_boundaries(message: EmailMessage) -> None:
    """Give every multipart a random boundary before flattening.

    Without one, the generator joins the text of all the parts into one extra full copy just to
    pick a boundary that does not occur in it; 19 random digits make a collision negligible.
    ``compose()`` messages carry boundaries already; for others, nested parts shared with the
    caller's message get the boundary the generator would otherwise have chosen.
    """
    for part in message.walk():
        if part.is_multipart() and part.get_boundary() is None:
            part.set_boundary(BytesGenerator._make_boundary())  # type: ignore[attr-defined]


class _SmallGenerator(BytesGenerator):
    """The stdlib generator (its buffers are C ``BytesIO`` objects), with ``_Generator``'s
    ASCII shortcut: for messages whose payloads are small, where holding a part twice is
    cheap and a Python-level buffer costs more than it saves."""

    def _handle_text(self, msg: Any) -> None:
        _handle_text(self, msg)


class _Chunks:
    """A write-only buffer that keeps what it is given as a list of chunks.

    The stdlib generator flattens every MIME part into a buffer of its own, then copies that
    buffer into its parent's: a 25 MB attachment would exist twice. As the generator's buffer,
    this keeps a large part's chunks by reference instead, so each byte is held once.
    """

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.pending = bytearray()
        self.size = 0

    def write(self, data: bytes | _Chunks) -> int:
        if isinstance(data, _Chunks):
            self._flush()
            self.chunks += data.chunks
        elif len(data) >= _SLICE:
            self._flush()
            self.chunks.append(bytes(data))  # bytes(bytes) is the same object: no copy
        else:
            self.pending += data
            if len(self.pending) >= _SLICE:
                self._flush()
        self.size += data.size if isinstance(data, _Chunks) else len(data)
        return 0

    def _flush(self) -> None:
        if self.pending:
            self.chunks.append(bytes(self.pending))
            self.pending.clear()

    def getvalue(self) -> bytes | _Chunks:
        """Small parts as bytes (the generator may join or split them); large ones as chunks.

        Large parts only occur in messages whose multiparts got boundaries before flattening,
        so the generator never needs to join them (see ``_set_boundaries``).
        """
        self._flush()
        return b"".join(self.chunks) if self.size < 4 * _SLICE else self

    def close(self) -> tuple[bytes, ...]:
        self._flush()
        return tuple(self.chunks)


class _Generator(BytesGenerator):
    """A BytesGenerator that holds a large message once.

    Its buffers are ``_Chunks``; it converts line ends a slice at a time (the stdlib splits a
    whole payload into a list of lines at once: for a 25 MB attachment about 460,000 strings,
    twice its size); and it skips the stdlib's surrogate tests for ASCII payloads.
    """

    def _new_buffer(self) -> _Chunks:
        return _Chunks()

    def _handle_text(self, msg: Any) -> None:
        _handle_text(self, msg)

    def _write_lines(self, lines: str) -> None:
        start = 0
        while len(lines) - start > _SLICE:
            end = lines.find("\n", start + _SLICE)
            if end < 0:
                break
            super()._write_lines(lines[start : end + 1])  # type: ignore[misc]
            start = end + 1
        super()._write_lines(lines[start:] if start else lines)  # type: ignore[misc]


def _handle_text(generator: Any, msg: Any) -> None:
    payload = msg._payload
    if isinstance(payload, str) and payload.isascii() and not generator._mangle_from_:
        # ASCII holds no surrogates: skip the stdlib's tests for them (in get_payload and
        # twice in _handle_text), each of which encodes the whole payload, i.e. three
        # transient copies of a large attachment. What is written is the same.
        generator._write_lines(payload)
        return
    BytesGenerator._handle_text(generator, msg)  # type: ignore[attr-defined]


def report_for(
    session: Session, delivery: Delivery, outgoing: Outgoing, warnings: tuple[str, ...] = ()
) -> SendReport:
    """The SendReport of one delivery on ``session``."""
    return SendReport(
        host=session.host,
        port=session.port,
        security=session.security or "?",
        requested_security=session.settings.security,
        accepted=delivery.accepted,
        refused=delivery.refused,
        message_id=outgoing.message_id,
        reply=delivery.reply,
        tls=session.tls,
        greeting=session.greeting,
        extensions=session.extensions,
        auth_mechanism=session.auth_mechanism,
        timings=dict(session.timings),
        transcript=session.transcript,
        warnings=warnings,
    )


def check_provider_limit(outgoing: Outgoing, settings: Settings) -> None:
    """Refuse, before connecting, a message larger than the provider of ``settings.host`` takes.

    Raises:
        MessageRejectedError: the message exceeds a known provider limit (message.size).
    """
    reason = over_provider_limit(outgoing.size, settings.host)
    if reason is not None:
        raise MessageRejectedError(
            f"{settings.address}: {reason}",
            host=settings.host,
            port=settings.port,
            security=settings.security,
            phase="size",
        )


def send(message: EmailMessage, settings: Settings, *, show_data: bool = False) -> SendReport:
    """Send ``message`` as ``settings`` say and report how.

    The connection is secured as ``settings.security`` says (never falling back to plaintext),
    the certificate verified, and the password sent only over TLS.

    Args:
        message: The message; From defaults to ``settings.sender``; Bcc recipients get it but
            the Bcc header is not sent.
        settings: Where and how to connect.
        show_data: Put the message's content, line by line as it crossed the network, in the
            report's transcript instead of ``<message data, N bytes>`` (for teaching: on port 25
            in plaintext, anyone on the path reads exactly this). Off by default, because a
            transcript is for diagnosing and a message can be large or private.

    Returns:
        A SendReport: the security used, TLS details, accepted and refused recipients, timings
        and the transcript (AUTH redacted).

    Raises:
        SMTPMagicError: the subclass says what failed and what to change. When every recipient
            was refused it is RecipientsRejectedError; some refused ones are listed in the report.

    Example:
        >>> with LabServer() as lab:  # doctest: +SKIP
        ...     send(compose(to="you@example.org", subject="Hi", body="Hello"), lab.settings(587))
    """
    outgoing = prepare(message, settings)
    check_provider_limit(outgoing, settings)
    warnings = tuple(size_warnings(message))
    session = open_session(settings)
    try:
        delivery = session.deliver(
            outgoing.sender, outgoing.recipients, outgoing.chunks, smtputf8=outgoing.smtputf8
        )
    finally:
        session.close()
    report = report_for(session, delivery, outgoing, warnings)
    if show_data:
        report = dataclasses.replace(
            report, transcript=with_message_data(report.transcript, outgoing.data)
        )
    return report
