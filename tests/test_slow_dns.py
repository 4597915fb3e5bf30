"""The connect deadline holds against a genuinely slow DNS resolver, and the error says it was the lookup.

getaddrinfo has no timeout of its own; smtp_magic runs it in a thread and stops waiting at the
deadline (smtp/connect.py). Here the system resolver itself is slow: tests/slowdns_child.py runs
in ``unshare --mount --net`` (a private network namespace with its own loopback, and
/etc/resolv.conf bind-mounted for that process only) with a DNS server on 127.0.0.1:53 that
answers late. Nothing outside the namespace is touched or reached. Needs root (CI runs as root);
elsewhere the test says why it cannot run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHILD = ROOT / "tests" / "slowdns_child.py"


def _in_namespace(delay: float, timeout: float) -> dict[str, Any]:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) for a private network and mount namespace")
    done = subprocess.run(
        ["unshare", "--mount", "--net", "--", sys.executable, str(CHILD), str(delay), str(timeout)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if done.returncode != 0 and "unshare failed" in done.stderr:
        pytest.skip(f"this machine refuses new namespaces: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_a_slow_resolver_ends_at_the_deadline_and_is_named() -> None:
    # The resolver answers after 6 s; the whole connect phase has 1 s.
    outcome = _in_namespace(delay=6.0, timeout=1.0)
    assert ["mail.slow-dns.test.", "A"] in outcome["queries"]  # the lookup reached the server
    assert outcome["type"] == "SMTPTimeoutError" and outcome["phase"] == "connect"
    assert outcome["elapsed"] < 4.0, outcome  # by the deadline, not the resolver's 6 s
    message = outcome["message"]
    assert "looking up the name mail.slow-dns.test did not finish within 1 s" in message
    assert "no connection to mail.slow-dns.test:2525 was tried" in message
    assert "host=" in message and "timeout=" in message


def test_the_same_resolver_answering_in_time_is_used() -> None:
    """The control: answered in 0.3 s, the name resolves to 127.0.0.1 and the connection is tried."""
    outcome = _in_namespace(delay=0.3, timeout=10.0)
    assert ["mail.slow-dns.test.", "A"] in outcome["queries"]
    assert outcome["type"] == "ConnectError", outcome
    assert "nothing is listening on mail.slow-dns.test:2525" in outcome["message"]
