"""Atomic writes: a file is replaced whole or not at all.

Every model, latent and preview gan_core writes goes through `atomic_write`: the content is
written to a temporary file beside the target, flushed to disk and renamed over it, so a
cancel, a crash, a full disk or SIGKILL half-way through leaves the previous file as it was.
"""
from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any

# A temporary file whose writer is gone and that nobody touched for this long is debris.
STALE_TEMP_SECONDS = 60.0


def _sweep_stale_temps(path: Path) -> None:
    """Delete temporary files a killed writer left beside `path`: named with the writer's pid
    (see atomic_write), that process no longer running and the file idle for a minute. Only on
    POSIX, where signal 0 asks whether a process exists without touching it."""
    if os.name != "posix":
        return
    prefix = f".{path.name}."
    try:
        names = [n for n in os.listdir(path.parent) if n.startswith(prefix) and n.endswith(".tmp")]
    except OSError:
        return
    for name in names:
        pid = name[len(prefix):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # still running (or another user's)
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError):
            continue
        stale = path.parent / name
        try:
            if time.time() - stale.stat().st_mtime > STALE_TEMP_SECONDS:
                stale.unlink()
        except OSError:
            pass


def atomic_write(path: str | os.PathLike, write: Any) -> Path:
    """Call `write(tmp_path)` then rename onto `path`; a failure leaves the old file as it was.

    The temporary file is `.NAME.PID-RANDOM.tmp` beside the target: if the process is killed
    mid-write (SIGKILL, power loss) the target keeps its previous content, and the next write
    to the same target removes the dead writer's leftover."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_stale_temps(path)
    # Not tempfile.mkstemp: its 0600 mode would survive the rename, leaving a model other
    # users/processes cannot read. os.open with 0666 honours the umask like any new file.
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o666)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"could not create a temporary file next to {str(path)!r}")
    os.close(fd)
    try:
        mode = os.stat(tmp).st_mode & 0o777  # what the umask allows a new file
        write(tmp)
        os.chmod(tmp, mode)  # safetensors 0.8 replaces the file with a 0600 one
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path
