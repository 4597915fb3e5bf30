"""prepare() on parsed messages: raw header values are checked decoded, whatever encodes them."""

from __future__ import annotations

import email.policy
import io
from email.generator import BytesGenerator
from email.parser import BytesParser

import pytest

from smtp_magic import ComposeError, Settings, compose
from smtp_magic.send import prepare

SETTINGS = Settings("127.0.0.1", port=2525, security="starttls", sender="a@example.org")
HEAD = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n"


def _parsed(extra: bytes) -> email.message.EmailMessage:
    message = BytesParser(policy=email.policy.default).parsebytes(HEAD + extra + b"\r\nbody\r\n")
    assert isinstance(message, email.message.EmailMessage)
    return message


@pytest.mark.parametrize(
    "header",
    [
        b"X-Note: =?utf-8?q?a=0D=0AX-Injected:_yes?=",  # RFC 2047, in an unstructured header
        b"Content-Disposition: attachment; filename*=utf-8''a%0D%0AX-Injected",  # RFC 2231
        b"Content-Disposition: attachment; filename*=utf-7''+AA0ACg-X-Injected",  # no % at all
        b"Reply-To: =?utf-8?q?Eve=0A?= <e@example.org>",  # the email package's own ValueError
    ],
)
def test_a_raw_header_that_decodes_to_a_line_break_is_refused(header: bytes) -> None:
    message = _parsed(header + b"\r\n")
    assert isinstance(message._headers[-1][1], str)  # type: ignore[attr-defined]  # raw, unparsed
    with pytest.raises(ComposeError, match=r"line break|CR or LF"):
        prepare(message, SETTINGS)


def test_plain_raw_headers_pass_and_are_written_as_the_stdlib_writes_them() -> None:
    message = _parsed(b'X-Note: "quoted \\" pair"; (comment)\r\nBcc: c@example.org\r\n')
    outgoing = prepare(message, SETTINGS)
    assert outgoing.recipients == ("b@example.org", "c@example.org")
    del message["Bcc"]
    expected = io.BytesIO()
    policy = email.policy.default.clone(linesep="\r\n")
    BytesGenerator(expected, mangle_from_=False, policy=policy).flatten(message)
    assert outgoing.data == expected.getvalue()


def test_a_composed_message_is_written_as_the_stdlib_writes_it() -> None:
    message = compose(
        to="b@example.org", sender="a@example.org", subject="hé", body="Hello.\n", format="text"
    )
    outgoing = prepare(message, SETTINGS)
    expected = io.BytesIO()
    policy = email.policy.default.clone(linesep="\r\n")
    BytesGenerator(expected, mangle_from_=False, policy=policy).flatten(message)
    assert outgoing.data == expected.getvalue()
    assert outgoing.sender == "a@example.org" and outgoing.recipients == ("b@example.org",)
