"""Shared fixtures: a clean environment for every test and one lab server for the session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from smtp_magic.lab.server import LabServer
from smtp_magic.smtp.session import forget_auto_choices

# Notebooks that tests write or open (e.g. for the browser test) are data, not nbval tests;
# the tutorials in notebooks/ are the ones nbval checks.
collect_ignore_glob = ["*.ipynb", "**/*.ipynb"]


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SMTP_* variable of the machine leaks into a test (httpx's clean_environ)."""
    for name in list(os.environ):
        if name.startswith("SMTP_"):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def fresh_auto_choices() -> Iterator[None]:
    """What security='auto' learnt about a port in one test is not reused by the next."""
    forget_auto_choices()
    yield
    forget_auto_choices()


@pytest.fixture(scope="session")
def lab() -> Iterator[LabServer]:
    """One lab server for the whole run, on free ephemeral ports (tests may run beside a demo)."""
    with LabServer(ports={25: 0, 465: 0, 587: 0}) as server:
        yield server


@pytest.fixture
def clean_lab(lab: LabServer) -> LabServer:
    """The session lab with its mailbox and connection counts emptied."""
    lab.clear()
    return lab
