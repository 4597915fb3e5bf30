"""The benchmark script runs end to end in its --quick mode (no timing is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_quick_mode_runs() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("machine: ")
    assert lines[-1].startswith("key ratios: send_many/stdlib ")
    for measurement in (
        "send_many, 20 msgs, one connection",
        "one send() vs raw smtplib",
        "auto vs starttls, standard port",
        "import smtp_magic",
        "peak RSS sending 1 MiB attached",
        "client CPU per message",
        "round trips per message, steady state, lab 587",
        "rate='600/min'",
        "merge --dry-run, 2,000 rows",
    ):
        assert measurement in done.stdout
    assert "no IPython/ipywidgets/aiosmtpd" in done.stdout
