"""The wire policy folds every header to exactly the bytes the email package writes, short ones without its folding machinery."""

from __future__ import annotations

import email.policy
import io
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smtp_magic import Settings, compose
from smtp_magic.message.wirefold import _one_line, wire_policy
from smtp_magic.send import prepare

SETTINGS = Settings("127.0.0.1", port=2525, security="starttls", sender="a@example.org")
NAMES = [
    "Subject",
    "To",
    "From",
    "Cc",
    "Reply-To",
    "Message-ID",
    "Date",
    "Content-Type",
    "Content-Disposition",
    "Content-Transfer-Encoding",
    "MIME-Version",
    "X-Note",
]
PIECES = st.sampled_from(
    [
        "a",
        "Bob",
        " ",
        "  ",
        "\t",
        '"',
        "\\",
        "<",
        ">",
        "@",
        ",",
        ";",
        ":",
        "=",
        "(",
        ")",
        ".",
        "*",
        "%",
        "'",
        "é",
        "€",
        "\r\n ",
        "\n",
        "=?utf-8?q?caf=C3=A9?=",
        "=?utf-8?q?a=0D=0Ab?=",
        "=?us-ascii?q?plain?=",
        "bob@example.org",
        "Bob <bob@example.org>",
        "<id.1@example.org>",
        "text/plain; charset=utf-8",
        "attachment; filename*=utf-8''caf%C3%A9.txt",
        "Mon, 30 Nov 2026 11:40:14 +0000",
        "x" * 40,
    ]
)
VALUES = st.lists(PIECES, max_size=12).map("".join)


def _reference(smtputf8: bool) -> email.policy.EmailPolicy:
    """The email package's own policy for the wire: what prepare() used before wire_policy."""
    return email.policy.default.clone(linesep="\r\n", utf8=smtputf8)


def _outcome(policy: email.policy.Policy, name: str, header: object) -> bytes | str:
    """The folded bytes, or the name of the exception the folding raised (it has bugs)."""
    try:
        return policy.fold_binary(name, header)  # type: ignore[arg-type]
    except Exception as exc:
        return type(exc).__name__


def _header(name: str, value: str) -> object:
    try:
        return email.policy.default.header_factory(name, value)  # type: ignore[attr-defined]
    except Exception:  # the email package refuses some values itself: nothing to fold
        return None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(NAMES), value=VALUES, smtputf8=st.booleans())
def test_every_header_folds_to_the_email_packages_bytes(
    name: str, value: str, smtputf8: bool
) -> None:
    header = _header(name, value)
    if header is None:
        return
    ours = _outcome(wire_policy(email.policy.default, smtputf8), name, header)
    assert ours == _outcome(_reference(smtputf8), name, header)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Subject", "bulk 1"),
        ("To", "Bob <bob@example.org>"),
        ("To", "bob@example.org (Bob)"),  # a comment: kept by folding, not by str()
        ("To", "Bob   <bob@example.org>"),  # spacing str() normalises
        ("Message-ID", "<1.2@example.org>"),
        ("Content-Type", 'text/plain; charset="utf-8"'),
        ("MIME-Version", "1.0"),
        ("X-Note", ""),  # no value: "X-Note:" without the space
        ("Subject", "x" * 69),  # "Subject: " + 69 = 78 characters: one line
        ("Subject", "x" * 70),  # 79: folded (or left long) by the email package
        ("Subject", "=?utf-8?q?a=0D=0Ab?="),  # decodes to a line break: the email package's way
        ("Subject", "café"),
    ],
)
def test_edge_headers_fold_to_the_email_packages_bytes(name: str, value: str) -> None:
    header = _header(name, value)
    for smtputf8 in (False, True):
        ours = _outcome(wire_policy(email.policy.default, smtputf8), name, header)
        assert ours == _outcome(_reference(smtputf8), name, header)
        assert isinstance(ours, bytes)


def test_a_short_ascii_header_takes_the_shortcut_and_others_do_not() -> None:
    policy = wire_policy(email.policy.default, False)
    short = _header("Subject", "bulk 1")
    assert _one_line(policy, short) == b"Subject: bulk 1\r\n"  # type: ignore[arg-type]
    assert _one_line(policy, _header("Subject", "x" * 70)) is None  # type: ignore[arg-type]
    assert _one_line(policy, _header("Subject", "café")) is None  # type: ignore[arg-type]
    assert _one_line(policy, "a plain string") is None  # type: ignore[arg-type]


def test_a_header_stored_under_another_case_is_written_with_its_own_name() -> None:
    message = EmailMessage()
    message["subject"] = _header("Subject", "hello")  # kept as it is: its name is "Subject"
    message["To"] = "b@example.org"
    message["From"] = "a@example.org"
    assert message._headers[0][0] == "subject"  # type: ignore[attr-defined]
    ours = prepare(message, SETTINGS).data
    assert ours == _flattened(message, False)
    assert ours.startswith(b"Subject: hello\r\n")


def test_another_policy_class_keeps_its_own_folding() -> None:
    class Loud(email.policy.EmailPolicy):
        def fold_binary(self, name: str, value: str) -> bytes:
            return super().fold_binary(name, value).upper()

    policy = wire_policy(Loud(), False)
    assert type(policy) is Loud
    assert policy.fold_binary("Subject", _header("Subject", "hi")) == b"SUBJECT: HI\r\n"  # type: ignore[arg-type]


def _flattened(message: EmailMessage, smtputf8: bool) -> bytes:
    """What the stdlib generator writes with the reference policy (From and Bcc as prepare)."""
    copy = EmailMessage()
    copy._headers = [h for h in message._headers if h[0].lower() != "bcc"]  # type: ignore[attr-defined]
    copy._payload = message._payload  # type: ignore[attr-defined]
    copy.policy = message.policy
    buffer = io.BytesIO()
    BytesGenerator(buffer, mangle_from_=False, policy=_reference(smtputf8)).flatten(copy)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "message",
    [
        compose(
            to="bob@example.org",
            sender="a@example.org",
            subject="bulk 1",
            body="Message 1.\n",
            format="text",
        ),
        compose(
            to=["Bob <bob@example.org>", "carol@example.org"],
            cc="Dave Long-Name <dave@example.org>",
            subject="Numbers for the north and the south regions, with notes and tables for each month",
            body="<p>Hello, <b>world</b></p>",
            sender="Ann <a@example.org>",
        ),
        compose(
            to="bob@example.org",
            sender="a@example.org",
            subject="Grüße",
            body="Grüße\n",
            format="text",
        ),
        BytesParser(policy=email.policy.default).parsebytes(
            b"From: a@example.org\r\nTo: b@example.org (Bee)\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n"
            b"X-Long: " + b"word " * 30 + b"\r\n\r\nbody\r\n"
        ),
    ],
)
def test_prepared_messages_are_the_email_packages_bytes(message: EmailMessage) -> None:
    for number, part in enumerate(message.walk()):
        if part.is_multipart() and part.get_boundary() is None:
            part.set_boundary(f"boundary-{number}")  # else each flattening picks its own
    assert prepare(message, SETTINGS).data == _flattened(message, False)
