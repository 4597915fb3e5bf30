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
    password=st.one_of(st.none(), st.text(min_size=8, max_size=20), anything),
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
