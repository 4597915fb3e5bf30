"""Property tests (hypothesis): any input gives a result or a documented error, and bad input sends nothing."""

from __future__ import annotations

import contextlib
import string
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from smtp_magic import (
    ComposeError,
    DeliveryUnknownError,
    RejectedError,
    Settings,
    SettingsError,
    SMTPMagicError,
    compose,
    send,
)
from smtp_magic.lab.server import LabServer
from smtp_magic.send import prepare
from tests.hostile import HOST, Dialog, ScriptedServer

FAST = settings(max_examples=60, deadline=None)

# -- strategies ----------------------------------------------------------------------------------

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.binary(max_size=10),
    st.lists(st.integers(), max_size=2),
)
header_text = st.text(max_size=40)  # any code point, including CR, LF, NUL and U+2028
atoms = st.text(string.ascii_letters + string.digits + "._+-", min_size=1, max_size=12)
plausible = st.builds(lambda local, domain: f"{local}@{domain}.example", atoms, atoms)
address = st.one_of(
    st.emails(),
    plausible,
    st.builds(lambda name, addr: f"{name} <{addr}>", header_text, plausible),
    st.builds(lambda name, addr: f'"{name}" <{addr}>', header_text, plausible),
    header_text,
)
addresses = st.one_of(
    plausible, address, st.lists(address, max_size=3), st.lists(anything, max_size=2)
)
attachment = st.one_of(
    st.tuples(header_text, st.binary(max_size=20)),
    st.tuples(anything, st.binary(max_size=5)),
    st.binary(max_size=20),
    anything,
)


@contextlib.contextmanager
def nothing_reaches(lab: LabServer) -> Iterator[None]:
    """Assert that the block makes no connection to the lab and delivers nothing."""
    connections, messages = sum(lab.connections.values()), len(lab.messages)
    yield
    assert sum(lab.connections.values()) == connections
    assert len(lab.messages) == messages


# -- Settings ------------------------------------------------------------------------------------


@FAST
@given(
    host=st.one_of(st.just(HOST), st.text(max_size=20), anything),
    port=st.one_of(st.integers(-5, 70000), anything),
    security=st.one_of(st.sampled_from(["auto", "tls", "starttls", "plain"]), anything),
    timeout=st.one_of(st.floats(-1, 100), anything),
    username=st.one_of(st.none(), st.text(max_size=10), anything),
    # A snowman first: a password that is an ordinary word ("password") would also be found in
    # messages that never showed it, so the check below could fail without a leak.
    password=st.one_of(
        st.none(), st.text(min_size=7, max_size=20).map(lambda t: "\u2603" + t), anything
    ),
    sender=st.one_of(st.none(), address, anything),
    cafile=st.one_of(st.none(), st.text(max_size=10), anything),
)
def test_settings_raise_only_settings_error(**values: Any) -> None:
    host = values.pop("host")
    try:
        result = Settings(host, **values)
    except SettingsError as exc:
        assert str(exc)  # one sentence, never empty
        password = values["password"]
        if isinstance(password, str) and len(password) >= 8:
            assert password not in str(exc)
        return
    # Valid settings keep the promises: no credentials in plaintext, the password masked.
    assert not (result.security == "plain" and (result.username or result.password))
    assert 1 <= result.port <= 65535
    if result.password and result.password not in repr(
        [result.host, result.username, result.sender, result.cafile, result.security]
    ):
        assert result.password not in repr(result)


def test_unhashable_security_is_a_settings_error() -> None:
    with pytest.raises(SettingsError):
        Settings(HOST, security=[])  # type: ignore[arg-type]


# -- compose and send ----------------------------------------------------------------------------


@FAST
@given(
    to=addresses,
    cc=st.one_of(st.just(()), addresses),
    sender=st.one_of(st.none(), address),
    subject=st.one_of(header_text, anything),
    body=st.one_of(st.text(max_size=80), anything),
    reply_to=st.one_of(st.none(), address),
    attachments=st.lists(attachment, max_size=2),
    fmt=st.sampled_from(["markdown", "html", "text"]),
)
def test_compose_raises_only_compose_error_and_bad_input_sends_nothing(
    lab: LabServer, fmt: str, **values: Any
) -> None:
    try:
        with nothing_reaches(lab):
            message = compose(format=fmt, **values)  # type: ignore[arg-type]
    except ComposeError as exc:
        assert str(exc)
        event("compose refused")
        return
    assert isinstance(message, EmailMessage)
    # What compose accepts, send must be able to carry: prepare() succeeds or says why.
    settings_ = lab.settings(25, timeout=5.0)
    try:
        prepare(message, settings_)
    except ComposeError:
        return
    before = len(lab.messages)
    try:
        report = send(message, settings_)
    except SMTPMagicError:
        return  # a documented refusal (the lab may refuse an odd address)
    assert report.delivered
    assert len(lab.messages) == before + 1
    event("delivered")


@FAST
@given(
    name=header_text,
    value=st.one_of(header_text, anything),
)
def test_arbitrary_header_values_on_an_email_message(lab: LabServer, name: str, value: Any) -> None:
    """A message built by hand (not by compose) with odd headers: send() raises only our errors."""
    message = EmailMessage()
    message["To"] = "bob@example.org"
    try:
        message["Subject"] = value
        message["X-Test"] = name
    except (ValueError, TypeError, AttributeError, IndexError):
        return  # the email package refused it before smtp_magic was involved
    with contextlib.suppress(SMTPMagicError):
        send(message, lab.settings(25, timeout=5.0))


# -- hostile replies -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[tuple[ScriptedServer, Dialog]]:
    dialog = Dialog()
    with contextlib.closing(ScriptedServer(dialog)) as server:
        yield server, dialog


reply_line = st.one_of(
    st.from_regex(r"\A[0-9]{3}[ -][ -~]{0,20}\Z"),
    st.text(max_size=30),
    st.sampled_from(
        ["", "250", "250-", "2", "999 nine", "-1 x", "354 go", "220 again", "251 ok?", "452 full"]
    ),
)


@settings(max_examples=50, deadline=None)
@given(where=st.sampled_from(["greeting", "EHLO", "MAIL", "RCPT", "DATA", "end"]), reply=reply_line)
def test_any_server_reply_gives_a_result_or_a_documented_error(
    fuzz_server: tuple[ScriptedServer, Dialog], where: str, reply: str
) -> None:
    server, dialog = fuzz_server
    dialog.greeting, dialog.replies, dialog.after_data = "220 fuzz", {}, "250 OK"
    dialog.answer(where, reply)
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.org", "b@example.org", "fuzz"
    message.set_content("fuzz\n")
    plain = Settings(HOST, port=server.port, security="plain", timeout=0.3, local_hostname="c")
    try:
        report = send(message, plain)
    except SMTPMagicError as exc:
        assert str(exc) and f"{HOST}:{server.port}" in str(exc)
        event(type(exc).__name__)
        if where == "end":
            # The server holds the message: only a clear 4xx/5xx reply may say "not delivered".
            clear_no = reply[:3].isdigit() and reply[3:4] in (" ", "") and reply[0] in "45"
            expected = RejectedError if clear_no else DeliveryUnknownError
            assert isinstance(exc, expected), (reply, exc)
        return
    assert report.accepted == ("b@example.org",)
    if where == "end":
        assert reply.startswith("250")


# -- issue 11: encoded-words and Unicode line breaks in every header and parameter ---------------

BREAKS = ["\r\n", "\n", "\r", "\u2028", "\u0085", "\x0b"]
INJECTED = "X-Injected: yes"


def _encoded_word(text: str, charset: str, encoding: str) -> str:
    import base64
    import quopri

    data = text.encode(charset, "replace")
    if encoding == "b":
        payload = base64.b64encode(data).decode()
    else:
        payload = quopri.encodestring(data, header=True).decode().replace("\n", "=0A")
        payload = payload.replace("\r", "=0D").replace("?", "=3F").replace(" ", "_")
    return f"=?{charset}?{encoding}?{payload}?="


injections = st.builds(
    lambda head, brk, charset, encoding, raw: (
        f"{head}{brk}{INJECTED}"
        if raw
        else _encoded_word(f"{head}{brk}{INJECTED}", charset, encoding)
    ),
    st.text(string.ascii_letters + ".", min_size=1, max_size=8),
    st.sampled_from(BREAKS),
    st.sampled_from(["utf-8", "iso-8859-1"]),
    st.sampled_from(["q", "b"]),
    st.booleans(),
)
maybe_injected = st.one_of(injections, st.text(string.ascii_letters + " .", max_size=12))


def assert_not_injected(lab: LabServer, before: int) -> None:
    """Whatever arrived carries no header line that the values above tried to add."""
    for received in lab.messages[before:]:
        for part in received.message.walk():
            assert "X-Injected" not in part, received.raw[:2000]


@FAST
@given(
    subject=maybe_injected,
    name=maybe_injected,
    display=maybe_injected,
    fmt=st.sampled_from(["markdown", "text"]),
)
def test_compose_refuses_every_encoded_or_raw_line_break(
    lab: LabServer, subject: str, name: str, display: str, fmt: str
) -> None:
    """Subject, a display name and an attachment's file name: ComposeError, or nothing injected."""
    before = len(lab.messages)
    try:
        message = compose(
            to=f'"{display}" <b@example.org>',
            subject=subject,
            body="x",
            attachments=[(name or "file.txt", b"data")],
            format=fmt,  # type: ignore[arg-type]
        )
    except ComposeError:
        event("compose refused")
        return
    try:
        send(message, lab.settings(25, timeout=5.0))
    except SMTPMagicError:
        return
    lab.wait_for_messages(before + 1)
    assert_not_injected(lab, before)
    event("sent, nothing injected")


@FAST
@given(header=maybe_injected, filename=maybe_injected, param=maybe_injected)
def test_hand_built_messages_never_inject_a_header(
    lab: LabServer, header: str, filename: str, param: str
) -> None:
    """Any header, file name or parameter of a hand-built message: refused, or nothing injected."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.org", "b@example.org", "s"
    before = len(lab.messages)
    try:
        message["X-Report"] = header
        message.set_content("x")
        message.add_attachment(
            b"data", "application", "octet-stream", filename=filename or "f", params={"p": param}
        )
    except (ValueError, TypeError, IndexError):
        return  # the email package refused it itself
    try:
        send(message, lab.settings(25, timeout=5.0))
    except ComposeError:
        event("send refused")
        return
    lab.wait_for_messages(before + 1)
    assert_not_injected(lab, before)


# -- issue 11: reply streams with long lines, mixed codes and extra replies ----------------------

stream_reply = st.one_of(
    reply_line,
    st.builds(
        lambda c, n: f"{c} " + "x" * n,
        st.sampled_from(["250", "550", "451"]),
        st.integers(5000, 20000),
    ),
    st.builds(  # a multi-line reply whose lines carry different codes
        lambda a, b: f"{a}-first\r\n{b} last",
        st.sampled_from(["250", "550"]),
        st.sampled_from(["250", "550", "354"]),
    ),
    st.builds(  # one reply, then another nobody asked for
        lambda a, b: f"{a} one\r\n{b} two",
        st.sampled_from(["250", "550", "452"]),
        st.sampled_from(["250", "221"]),
    ),
    st.builds(lambda n: "\r\n".join(["250-more"] * n + ["250 end"]), st.integers(1, 1500)),
)


def _first_reply(reply: str) -> tuple[int, bool]:
    """The code of the first reply in ``reply`` and whether that reply is well formed."""
    import re

    lines = reply.split("\r\n")
    codes = []
    for line in lines:
        if not re.fullmatch(r"[0-9]{3}([ -].{0,500})?", line):
            return -1, False
        codes.append(line[:3])
        if line[3:4] != "-":
            return int(codes[0]), len(set(codes)) == 1 and len(codes) <= 100
    return -1, False


@settings(max_examples=60, deadline=None)
@given(
    where=st.sampled_from(["greeting", "EHLO", "MAIL", "RCPT", "DATA", "end"]), reply=stream_reply
)
def test_reply_streams_give_a_result_or_a_documented_error(
    fuzz_server: tuple[ScriptedServer, Dialog], where: str, reply: str
) -> None:
    server, dialog = fuzz_server
    dialog.greeting, dialog.replies, dialog.after_data = "220 fuzz", {}, "250 OK"
    dialog.answer(where, reply)
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.org", "b@example.org", "fuzz"
    message.set_content("fuzz\n")
    plain = Settings(HOST, port=server.port, security="plain", timeout=0.5, local_hostname="c")
    code, well_formed = _first_reply(reply)
    try:
        report = send(message, plain)
    except SMTPMagicError as exc:
        assert str(exc) and f"{HOST}:{server.port}" in str(exc)
        assert len(exc.transcript) < 200, len(exc.transcript)  # bounded, however long the reply
        event(type(exc).__name__)
        if where == "end":
            # The server holds the message: only a well-formed 4xx/5xx may say "not delivered".
            clear_no = well_formed and 400 <= code < 600
            assert isinstance(exc, RejectedError if clear_no else DeliveryUnknownError), (
                reply,
                exc,
            )
        return
    assert report.accepted == ("b@example.org",)
    if where == "end":
        assert well_formed and code == 250, reply


# -- issue 11: an interrupt at every step of a transaction: nothing sent twice, nothing lost ------


def _message_ids(server: ScriptedServer) -> list[str]:
    import email

    return [str(email.message_from_bytes(raw)["Message-ID"]) for raw in server.messages]


@pytest.fixture(scope="module")
def interrupt_server() -> Iterator[tuple[ScriptedServer, Dialog]]:
    dialog = Dialog()
    with contextlib.closing(ScriptedServer(dialog)) as server:
        yield server, dialog


@settings(max_examples=40, deadline=None)
@given(
    verb=st.sampled_from(["MAIL", "RCPT", "DATA", "end"]),
    nth=st.integers(1, 3),
    count=st.integers(1, 3),
)
def test_an_interrupt_at_any_step_loses_nothing_and_sends_nothing_twice(
    interrupt_server: tuple[ScriptedServer, Dialog], verb: str, nth: int, count: int
) -> None:
    import os
    import signal
    import threading

    import smtp_magic.bulk
    from smtp_magic import send_many

    server, dialog = interrupt_server
    server.messages.clear()
    fired = threading.Event()
    seen = [0]

    def interrupting(answer: str) -> Any:
        def reply(peer: Any, line: str) -> bool:
            if (line == "." and verb == "end") or line != ".":
                seen[0] += 1
                if seen[0] == nth and not fired.is_set():
                    fired.set()
                    os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the client waits
                    peer.server.stopping.wait(0.05)
            peer.reply(answer)
            return False

        return reply

    answers = {
        "MAIL": "250 2.1.0 OK",
        "RCPT": "250 2.1.5 OK",
        "DATA": "354 go",
        "end": "250 queued",
    }
    dialog.greeting, dialog.replies, dialog.after_data = "220 fuzz", {}, "250 queued"
    if verb == "DATA":

        def data(peer: Any, line: str) -> bool:
            interrupting("354 go")(peer, line)
            peer.read_data()
            peer.reply("250 queued")
            return False

        dialog.replies["DATA"] = data
    else:
        dialog.answer(verb, interrupting(answers[verb]))
    messages = [
        compose(to="b@example.org", subject=f"m{i}", body="x", sender="a@example.org")
        for i in range(count)
    ]
    plain = Settings(HOST, port=server.port, security="plain", timeout=5.0, local_hostname="c")
    try:
        report = send_many(messages, plain, progress=False)
    except KeyboardInterrupt as exc:
        report = exc.report  # type: ignore[attr-defined]
        assert report is smtp_magic.bulk.last_report and report.interrupted
        event("interrupted")
    fired.set()  # no more interrupts: resume runs undisturbed
    delivered = _message_ids(server)
    for result in report:
        if result.status == "accepted":
            assert result.message_id in delivered
        if result.status == "unsent":
            assert result.message_id not in delivered, report  # else resume sends it twice
        assert result.status in ("accepted", "unsent", "unknown"), result
    final = report.resume(progress=False)
    delivered = _message_ids(server)
    for result in final:
        assert delivered.count(result.message_id) <= 1, "sent twice"  # nothing sent twice
        if result.status != "unknown":
            assert result.status == "accepted" and result.message_id in delivered  # nothing lost
