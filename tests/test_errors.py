"""The error tree: every error survives pickle and deepcopy (multiprocessing, joblib, copied reports)."""

from __future__ import annotations

import copy
import importlib
import inspect
import pickle
import pkgutil
from typing import Any

import pytest

import smtp_magic
from smtp_magic import BulkReport, MessageResult, RecipientsRejectedError, Settings, SMTPMagicError
from smtp_magic.report import TranscriptLine

# Values for the keyword-only arguments that some errors require.
SAMPLES: dict[str, Any] = {
    "expected": "tls",
    "recipients": {"a@example.org": (550, "5.1.1 no such user")},
    "verify_code": 20,
}


def every_error() -> list[type[SMTPMagicError]]:
    """SMTPMagicError and all its subclasses, in any module of the package."""
    for module in pkgutil.walk_packages(smtp_magic.__path__, "smtp_magic."):
        importlib.import_module(module.name)
    found, todo = [], [SMTPMagicError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(set(found), key=lambda c: c.__qualname__)


def build(cls: type[SMTPMagicError]) -> SMTPMagicError:
    """An instance with every field set, as the session would raise it."""
    extra = {}
    for name, parameter in inspect.signature(cls).parameters.items():
        if parameter.kind is parameter.KEYWORD_ONLY and parameter.default is parameter.empty:
            assert name in SAMPLES, f"{cls.__name__} requires {name}=: add a sample to SAMPLES"
            extra[name] = SAMPLES[name]
    return cls(
        f"{cls.__name__}: what happened, why, and what to change",
        host="smtp.example.org",
        port=587,
        security="starttls",
        phase="rcpt",
        code=550,
        reply="5.1.1 no such user",
        transcript=(TranscriptLine("C", "RCPT TO:<a@example.org>", True),),
        **extra,
    )


def same(a: SMTPMagicError, b: SMTPMagicError) -> None:
    assert type(a) is type(b)
    assert (str(a), repr(a), a.args) == (str(b), repr(b), b.args)
    assert vars(a) == vars(b)
    assert (a.where, a.temporary) == (b.where, b.temporary)


@pytest.mark.parametrize("cls", every_error(), ids=lambda c: c.__name__)
def test_every_error_round_trips_through_pickle_and_deepcopy(cls: type[SMTPMagicError]) -> None:
    error = build(cls)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        same(error, pickle.loads(pickle.dumps(error, protocol)))
    same(error, copy.deepcopy(error))
    same(error, copy.copy(error))


def test_the_tree_is_all_there() -> None:
    names = {cls.__name__ for cls in every_error()}
    assert {"SecurityMismatchError", "RecipientsRejectedError", "CertificateError"} <= names
    assert len(names) >= 20


def test_a_bulk_report_with_a_refusal_deep_copies() -> None:
    refusal = build(RecipientsRejectedError)
    result = MessageResult(0, "<1@example.org>", "refused", error=refusal)
    report = BulkReport([result], ["message"], Settings("smtp.example.org"), error=refusal)
    copied = copy.deepcopy(report)
    assert copied.results[0].error is not refusal
    same(refusal, copied.results[0].error)  # type: ignore[arg-type]
    assert str(copied) == str(report)
