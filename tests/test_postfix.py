"""send() and send_many() against a real Postfix on 127.0.0.1, pipelined and in lock-step.

The Postfix (Debian's package, installed by .ci/run) runs from a private configuration and
queue directory set up by benchmarks/postfix.py, accepts mail from 127.0.0.1 and discards it,
refuses nobody@example.org (550) and busy@example.org (450). Its cleanup daemon logs every
Message-ID it received: the tests count them, so nothing lost and nothing sent twice is
checked at the server itself.
"""

from __future__ import annotations

import collections
import importlib.util
import os
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from types import ModuleType

import pytest

from smtp_magic import compose, send
from smtp_magic.bulk import send_many
from smtp_magic.errors import AuthenticationError, RecipientsRejectedError
from smtp_magic.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "postfix_harness", ROOT / "benchmarks" / "postfix.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


harness = _harness()


def _start(extra: str = "", login: tuple[str, str] | None = None) -> Iterator[object]:
    reason = harness.available(sasl=login is not None)
    if reason:
        why = os.environ.get("SMTP_MAGIC_POSTFIX_PROBLEM")
        if why:  # .ci/run tried to install it and could not: fail, saying why
            pytest.fail(f"no Postfix: {reason}; .ci/run could not install it ({why})")
        # The Python 3.13 root and developer machines without Postfix: .ci/run's host run has it.
        pytest.skip(f"no Postfix: {reason}")
    with harness.Postfix(extra=extra, login=login) as postfix:
        yield postfix


@pytest.fixture(scope="module")
def postfix() -> Iterator[object]:
    """Postfix as configured: it advertises PIPELINING."""
    yield from _start()


@pytest.fixture(scope="module")
def lockstep_postfix() -> Iterator[object]:
    """The same, told not to advertise PIPELINING (so the client must go in lock-step)."""
    yield from _start("smtpd_discard_ehlo_keywords = pipelining\n")


# RFC 4616: PLAIN carries UTF-8; Cyrus SASL compares the bytes (smtplib's login() cannot send it).
SUBMISSION_LOGIN = ("analyst", "Pässwörd-für-Postfix")


@pytest.fixture(scope="module")
def submission_postfix() -> Iterator[object]:
    """Postfix as a submission service: STARTTLS, then AUTH (Cyrus SASL), required to send."""
    yield from _start(login=SUBMISSION_LOGIN)


def _settings(server: object) -> Settings:
    return Settings(
        "127.0.0.1",
        port=server.port,  # type: ignore[attr-defined]
        security="plain",
        sender="alice@example.org",
        local_hostname="client.localhost",
        timeout=10.0,
    )


def _messages(n: int, tag: str) -> list[EmailMessage]:
    return [
        compose(to="bob@example.org", subject=f"{tag} {i}", body=f"Message {i}.\n.\n")
        for i in range(n)
    ]


def test_send_pipelines_the_envelope(postfix: object) -> None:
    message = compose(to="bob@example.org, carol@example.org", subject="one", body="Hi.\n")
    report = send(message, _settings(postfix))
    assert report.accepted == ("bob@example.org", "carol@example.org")
    assert "PIPELINING" in {k.upper() for k in report.extensions}
    text = [str(line) for line in report.transcript]
    assert any("pipelined group: 4 commands" in line for line in text), text
    ids = postfix.wait_for(1)  # type: ignore[attr-defined]
    assert ids[message["Message-ID"]] == 1


@pytest.mark.parametrize("mode", ["pipelined", "lockstep"])
def test_send_many_exact_results(mode: str, postfix: object, lockstep_postfix: object) -> None:
    server = postfix if mode == "pipelined" else lockstep_postfix
    before = server.received()  # type: ignore[attr-defined]
    messages = _messages(30, mode)
    messages[5] = compose(to="nobody@example.org", subject="refused", body="x")
    messages[9] = compose(to="bob@example.org, nobody@example.org", subject="half", body="x")
    messages[14] = compose(to="busy@example.org", subject="later", body="x")
    report = send_many(messages, _settings(server), progress=False, retries=1, backoff=0.01)
    statuses = [r.status for r in report]
    assert (
        statuses
        == ["accepted"] * 5 + ["refused"] + ["accepted"] * 8 + ["refused"] + ["accepted"] * 15
    )
    assert isinstance(report[5].error, RecipientsRejectedError)
    assert report[5].refused["nobody@example.org"][0] == 550
    assert report[9].accepted == ("bob@example.org",)
    assert report[9].refused["nobody@example.org"][0] == 550
    assert report[14].error is not None and report[14].error.temporary
    assert report[14].attempts == 2  # 450: retried once, then reported
    assert report.connections == 1
    delivered = [m["Message-ID"] for i, m in enumerate(messages) if i not in (5, 14)]
    ids = server.wait_for(before + len(delivered))  # type: ignore[attr-defined]
    assert collections.Counter({i: ids[i] for i in delivered}) == collections.Counter(delivered)
    assert ids[messages[5]["Message-ID"]] == 0 and ids[messages[14]["Message-ID"]] == 0


def _submission(server: object, password: str | None = SUBMISSION_LOGIN[1]) -> Settings:
    return Settings(
        "127.0.0.1",
        port=server.port,  # type: ignore[attr-defined]
        security="starttls",
        cafile=server.cafile,  # type: ignore[attr-defined]
        username=SUBMISSION_LOGIN[0] if password is not None else None,
        password=password,
        sender="alice@example.org",
        local_hostname="client.localhost",
        timeout=10.0,
    )


def test_send_many_logs_in_to_a_submission_postfix(submission_postfix: object) -> None:
    """STARTTLS, AUTH PLAIN with a UTF-8 password against Cyrus SASL, then pipelined messages."""
    server = submission_postfix
    before = server.received()  # type: ignore[attr-defined]
    messages = _messages(20, "submission")
    report = send_many(messages, _submission(server), progress=False)
    assert [r.status for r in report] == ["accepted"] * 20
    assert report.connections == 1
    ids = server.wait_for(before + 20)  # type: ignore[attr-defined]
    assert [ids[m["Message-ID"]] for m in messages] == [1] * 20
    one = send(compose(to="bob@example.org", subject="one", body="x"), _submission(server))
    assert one.auth_mechanism == "PLAIN"
    assert one.tls is not None and one.tls.version.startswith("TLSv1.")
    assert SUBMISSION_LOGIN[1] not in "\n".join(str(line) for line in one.transcript)


def test_wrong_password_at_a_submission_postfix(submission_postfix: object) -> None:
    server = submission_postfix
    before = server.received()  # type: ignore[attr-defined]
    wrong = "not-the-Pässwörd"
    message = compose(to="bob@example.org", subject="never", body="x")
    with pytest.raises(AuthenticationError) as caught:
        send(message, _submission(server, password=wrong))
    text = str(caught.value)
    assert f"127.0.0.1:{server.port}" in text  # type: ignore[attr-defined]
    assert "535" in text and "password" in text.lower()
    assert wrong not in text and wrong not in repr(caught.value)
    assert server.received() == before  # type: ignore[attr-defined]


def test_no_login_at_a_submission_postfix_is_refused_and_says_log_in(
    submission_postfix: object,
) -> None:
    """Postfix refuses the recipient of a client that did not log in (554 5.7.1 Access denied)."""
    server = submission_postfix
    before = server.received()  # type: ignore[attr-defined]
    message = compose(to="bob@example.org", subject="anonymous", body="x")
    with pytest.raises(RecipientsRejectedError) as caught:
        send(message, _submission(server, password=None))
    error = caught.value
    assert error.recipients["bob@example.org"][0] == 554
    assert error.refusal == "login-required"
    assert "did not log in" in str(error) and "Set username=" in str(error)
    assert server.received() == before  # type: ignore[attr-defined]
