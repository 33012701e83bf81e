"""Atomic writes: a file is replaced whole or not at all.

Every model, latent and preview gan_core writes goes through `atomic_write`: the content is
written inside a private temporary folder beside the target, flushed to disk and renamed over
it, so a cancel, a crash, a full disk or SIGKILL half-way through leaves the previous file as
it was.

Why a folder, not a temporary file: a writer may make temporaries of its own beside the path
it is given (safetensors 0.8's save_file writes `.tmpXXXXXX` next to it and renames that:
killed mid-write, it leaves a checkpoint-sized file nobody would ever remove). Inside our
folder, everything a killed writer can leave is in one place, named with its pid, and the
next write anywhere in that directory removes it.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

# A temporary whose writer is gone and that nobody touched for this long is debris.
STALE_TEMP_SECONDS = 60.0
# `.NAME.PID-RANDOM.tmp`: a folder (this version) or a file (earlier versions).
_TEMP_NAME = re.compile(r"^\..+\.(\d+)-[0-9a-f]+\.tmp$")


def _writer_gone(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, OSError):
        return False  # another user's process, or not a pid at all: leave it
    return False  # still running


def _last_touched(path: Path) -> float:
    """The newest mtime of a temporary (for a folder: of it and what it holds)."""
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for entry in os.scandir(path):
            newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
    return newest


def sweep_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporaries killed writers left in `folder`, whatever file they were
    writing: named `.NAME.PID-RANDOM.tmp` (see atomic_write), that process no longer
    running and everything in it idle for STALE_TEMP_SECONDS. Only on POSIX, where signal 0
    asks whether a process exists without touching it. Returns what was removed."""
    removed: list[Path] = []
    if os.name != "posix":
        return removed
    folder = Path(folder)
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = _TEMP_NAME.match(name)
        if m is None or not _writer_gone(int(m.group(1))):
            continue
        stale = folder / name
        try:
            if time.time() - _last_touched(stale) <= STALE_TEMP_SECONDS:
                continue
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale)
            else:
                stale.unlink()
            removed.append(stale)
        except OSError:
            pass
    return removed


def _make_temp_dir(path: Path) -> Path:
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
        try:
            tmp.mkdir(mode=0o700)
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary folder next to {str(path)!r}")


def atomic_write(path: str | os.PathLike, write: Any) -> Path:
    """Call `write(tmp_path)` then rename onto `path`; a failure leaves the old file as it was.

    `tmp_path` is `NAME.part` inside the private folder `.NAME.PID-RANDOM.tmp` beside the
    target (whatever else the writer creates lands in that folder too): if the process is
    killed mid-write (SIGKILL, power loss) the target keeps its previous content, and the
    next write into the same directory removes the dead writer's folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(path.parent)
    tmp_dir = _make_temp_dir(path)
    # Not the target's name: ComfyUI lists model files by extension, hidden folders included.
    tmp = tmp_dir / f"{path.name}.part"
    try:
        # Not tempfile.mkstemp: its 0600 mode would survive the rename, leaving a model other
        # users/processes cannot read. os.open with 0666 honours the umask like any new file.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                     0o666)
        os.close(fd)
        mode = os.stat(tmp).st_mode & 0o777  # what the umask allows a new file
        write(str(tmp))
        os.chmod(tmp, mode)  # safetensors 0.8 replaces the file with a 0600 one
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return path
