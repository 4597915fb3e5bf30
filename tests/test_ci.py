"""The CI scripts' promises: no root or sudo assumed, a bounded and announced wait for apt."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _bash(
    script: str, env: dict[str, str], user: str | None = None
) -> subprocess.CompletedProcess[str]:
    # The helpers' text, not a path: another user may not be allowed to read this work tree.
    helpers = (ROOT / ".ci" / "lib.sh").read_text()
    argv = ["bash", "-c", f"{helpers}\n{script}"]
    if user is not None:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
    return subprocess.run(
        argv, cwd="/", env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_apt_install_without_root_or_sudo_says_why() -> None:
    env = {"PATH": os.environ["PATH"], "HOME": "/nonexistent"}
    # As an ordinary user (root here drops to "nobody"; anyone else is one already), with no
    # sudo rights: nothing is installed, and the reason is one sentence.
    user = 65534 if os.getuid() == 0 else None  # nobody
    result = _bash('apt_install chromium || echo "PROBLEM: $APT_PROBLEM"', env, user)
    assert "PROBLEM: installing chromium needs root or passwordless sudo" in result.stdout, (
        result.stdout + result.stderr
    )
    assert "sudo:" not in result.stderr  # never a password prompt or sudo's own complaint


def test_wait_for_apt_is_bounded_and_says_what_it_waits_for(tmp_path: Path) -> None:
    assert shutil.which("lslocks"), "util-linux's lslocks is part of every Debian system"
    lock = tmp_path / "lock-frontend"
    lock.touch()
    holder = subprocess.Popen(  # another "apt": holds the lock as dpkg does (fcntl)
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'w');"
            " fcntl.lockf(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)",
            str(lock),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        env = {"PATH": os.environ["PATH"], "APT_LOCKS": str(lock), "SMTP_MAGIC_CI_APT_WAIT": "5"}
        start = time.monotonic()
        result = _bash('wait_for_apt || echo "GAVE UP: $APT_PROBLEM"', env)
        waited = time.monotonic() - start
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    assert "another apt or dpkg holds the package lock" in result.stderr
    assert "GAVE UP: another apt or dpkg still held the package lock after 5 s" in result.stdout
    assert waited < 60  # bounded by SMTP_MAGIC_CI_APT_WAIT, not by the holder


def test_wait_for_apt_returns_at_once_when_nothing_holds_the_lock(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "APT_LOCKS": str(tmp_path / "unheld")}
    result = _bash("wait_for_apt && echo FREE", env)
    assert result.stdout.strip() == "FREE" and result.stderr == ""


def test_background_job_keeps_ctrl_c_for_python(tmp_path: Path) -> None:
    # .ci/run starts the Python 3.13 suite this way; with a plain `&` its tests of Ctrl-C
    # (send_many's interrupted report) saw SIGINT ignored and failed.
    log = tmp_path / "job.log"
    probe = "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"
    env = {"PATH": os.environ["PATH"]}
    result = _bash(
        f'background {log} {sys.executable} -c "{probe}"; wait "$BACKGROUND_PID"; echo DONE', env
    )
    assert result.stdout.strip() == "DONE", result.stderr
    assert log.read_text().strip() == "True"
