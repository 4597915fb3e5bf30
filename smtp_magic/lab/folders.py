"""The lab's temporary folders (its CA file): removed at exit, and left-overs at the next start."""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["PREFIX", "make_folder", "remove_folder", "remove_stale_folders"]

PREFIX = "smtp_magic-lab-"
_OWNER = "owner.pid"  # the process that made the folder; gone means the folder is left over
_UNOWNED_AGE = 24 * 3600.0  # folders from before the owner file: removed when a day old

_at_exit: dict[Path, Callable[[], None]] = {}


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process, or no way to tell: leave its folder alone
    return True


def remove_stale_folders(parent: str | None = None) -> list[Path]:
    """Remove lab folders whose process is gone (a killed ``serve``, a crashed kernel).

    Returns:
        The folders removed.
    """
    removed = []
    for folder in Path(parent or tempfile.gettempdir()).glob(PREFIX + "*"):
        with contextlib.suppress(OSError, ValueError):
            if not folder.is_dir() or folder.is_symlink() or folder.stat().st_uid != os.getuid():
                continue
            owner = folder / _OWNER
            if owner.exists():
                stale = not _alive(int(owner.read_text().strip()))
            else:
                stale = time.time() - folder.stat().st_mtime > _UNOWNED_AGE
            if stale:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    return removed


def make_folder() -> Path:
    """A fresh private temp folder for one lab, removed at interpreter exit if not before."""
    remove_stale_folders()
    folder = Path(tempfile.mkdtemp(prefix=PREFIX))
    (folder / _OWNER).write_text(f"{os.getpid()}\n")
    cleanup = functools.partial(shutil.rmtree, folder, ignore_errors=True)
    _at_exit[folder] = cleanup
    atexit.register(cleanup)  # a kernel shut down without lab.stop(), a script that forgot
    return folder


def remove_folder(folder: Path) -> None:
    """Remove a lab folder now (LabServer.stop)."""
    cleanup = _at_exit.pop(folder, None)
    if cleanup is not None:
        atexit.unregister(cleanup)
    shutil.rmtree(folder, ignore_errors=True)
