"""The Binder configuration, proven without Docker: a fresh venv from binder/requirements.txt runs the notebooks."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent

# What pip prints when the index cannot be reached (urllib3/requests wording, pip's own).
_UNREACHABLE = re.compile(
    r"NewConnectionError|Failed to establish a new connection|Max retries exceeded|"
    r"Temporary failure in name resolution|Name or service not known|Connection refused|"
    r"Network is unreachable|ConnectTimeoutError|ReadTimeoutError|ProxyError|SSLError|"
    # Without retries pip only says it found nothing; for pinned, existing packages that means
    # no index answered.
    r"\(from versions: none\)"
)


def _failure(step: str, result: subprocess.CompletedProcess[str]) -> str:
    """Why a step failed: plainly "cannot reach the package index" when that is the cause."""
    output = result.stdout + result.stderr
    if step == "pip" and _UNREACHABLE.search(output):
        lines = output.splitlines()
        seen = next(line for line in lines if _UNREACHABLE.search(line))
        index = next((line for line in lines if line.startswith("Looking in indexes")), "")
        return (
            "the Binder test installs binder/requirements.txt into a fresh venv and needs the "
            "package index, which pip could not reach from this machine (check the network, "
            f"a proxy, or PIP_INDEX_URL). {index} pip said: {seen.strip()[:300]}"
        )
    return output[-3000:]


def test_runtime_pins_a_python_ipython_9_supports() -> None:
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    assert runtime.startswith("python-3.")
    assert int(runtime.split(".")[1]) >= 11
    # If binder/ exists, repo2docker ignores root-level configuration: keep it all in binder/.
    assert not (ROOT / ".binder").exists()


# A fresh venv and every notebook: about 60 s alone, several minutes while .ci/run's Python 3.13
# suite shares the machine's two cores; pip and pytest below have their own 600 s bounds.
@pytest.mark.timeout(900)
def test_fresh_venv_from_binder_requirements_runs_every_notebook(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "PYTHON", "VIRTUAL_ENV"))
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [python, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
        if result.returncode != 0:
            pytest.fail(_failure("pip" if args[1:2] == ("pip",) else "pytest", result))
        return result

    # Exactly what repo2docker does (pip from the repository root) ...
    run("-m", "pip", "install", "--quiet", "-r", "binder/requirements.txt")
    # ... plus the test runner, which Binder does not need.
    run("-m", "pip", "install", "--quiet", "nbval>=0.11", "pytest>=8.1", "pytest-timeout")
    result = run(
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        "--nbval",
        "--nbval-current-env",
        "--nbval-sanitize-with",
        "notebooks/sanitize.cfg",
        "notebooks",
    )
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_an_unreachable_index_is_named_as_the_cause(tmp_path: Path) -> None:
    # A real pip against an index on a loopback port where nothing listens.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(
        PIP_CONFIG_FILE=os.devnull,  # no find-links or local indexes that would answer
        PIP_INDEX_URL=f"http://127.0.0.1:{port}/simple",
        PIP_RETRIES="0",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(tmp_path), "nbval"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    message = _failure("pip", result)
    assert message.startswith("the Binder test installs binder/requirements.txt")
    assert "could not reach" in message and f"127.0.0.1:{port}" in message
