"""Turning user-supplied names into paths that provably stay inside a given folder.

Node inputs are typed by strangers (shared workflows, servers on a network), so a name is
refused outright if it is absolute, has a drive letter, a NUL byte or a ".." part, and the
resolved path (symlinks followed) must still lie under the root.
"""
from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath, PureWindowsPath

_DRIVE = re.compile(r"^[A-Za-z]:")


class UnsafePathError(ValueError):
    """A name from outside tried to leave its folder."""


def safe_join(root: str | os.PathLike, name: str, what: str = "path") -> Path:
    """`root / name`, or UnsafePathError naming `what` if `name` could escape `root`."""
    if not isinstance(name, str):
        raise UnsafePathError(f"{what}: expected a relative name, got {type(name).__name__}")
    if "\x00" in name:
        raise UnsafePathError(f"{what}: the name contains a NUL byte")
    if name.startswith(("/", "\\")) or _DRIVE.match(name) or PureWindowsPath(name).anchor:
        raise UnsafePathError(f"{what}: {name!r} is absolute; give a name relative to its folder")
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if ".." in parts:
        raise UnsafePathError(f"{what}: {name!r} contains '..'; it must stay inside its folder")
    root_real = Path(os.path.realpath(root))
    candidate = Path(os.path.realpath(root_real.joinpath(*parts))) if parts else root_real
    if candidate != root_real and root_real not in candidate.parents:
        raise UnsafePathError(f"{what}: {name!r} leads outside its folder (through a symlink?)")
    return root_real.joinpath(*parts)


def reserve_numbered(folder: str | os.PathLike, stem: str, counter: int, suffix: str) -> Path:
    """Claim `folder/stem_NNNNN_suffix` with the first free counter from `counter` on.

    The file is created exclusively (an empty placeholder the first checkpoint replaces), so
    two runs started together with the same prefix can never pick the same name. A `stem`
    that is empty, "." (what an empty or folder-only prefix becomes), hidden or holds a path
    separator is refused with UnsafePathError (a ValueError) naming the prefix.
    """
    if not isinstance(stem, str) or not stem.strip() or stem.startswith(".") \
            or any(c in stem for c in "/\\\x00"):
        raise UnsafePathError(
            f"filename prefix: {stem!r} is not a file name (it is empty, a folder, or starts "
            "with '.', which would make a hidden file); end the prefix with a name, e.g. "
            "'gan_atelier/model'")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        path = folder / f"{stem}_{counter:05d}_{suffix}"
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            counter += 1
            continue
        os.close(fd)
        return path


def release_if_empty(path: str | os.PathLike) -> None:
    """Remove a reserved placeholder that never received a checkpoint."""
    try:
        if os.path.getsize(path) == 0:
            os.unlink(path)
    except FileNotFoundError:
        pass
