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
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from types import ModuleType

import pytest

from smtp_magic import compose, send
from smtp_magic.bulk import send_many
from smtp_magic.errors import RecipientsRejectedError
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


def _start(extra: str = "") -> Iterator[object]:
    reason = harness.available()
    if reason:  # CI installs it (.ci/run); a developer machine without it says why
        pytest.skip(f"no Postfix: {reason}")
    with harness.Postfix(extra=extra) as postfix:
        yield postfix


@pytest.fixture(scope="module")
def postfix() -> Iterator[object]:
    """Postfix as configured: it advertises PIPELINING."""
    yield from _start()


@pytest.fixture(scope="module")
def lockstep_postfix() -> Iterator[object]:
    """The same, told not to advertise PIPELINING (so the client must go in lock-step)."""
    yield from _start("smtpd_discard_ehlo_keywords = pipelining\n")


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
