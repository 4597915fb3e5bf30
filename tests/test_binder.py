"""The Binder configuration, proven without Docker: a fresh venv from binder/requirements.txt runs the notebooks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_runtime_pins_a_python_ipython_9_supports() -> None:
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    assert runtime.startswith("python-3.")
    assert int(runtime.split(".")[1]) >= 11
    # If binder/ exists, repo2docker ignores root-level configuration: keep it all in binder/.
    assert not (ROOT / ".binder").exists()


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
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
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
