"""Recognisers for public checkpoint files (CycleGAN, fast-neural-style, DnCNN, ...).

Each format says, from the file's tensors and key names alone, whether a file is its own and
then builds a GANModel whose module has exactly the file's keys and shapes. Files are only
ever read as data; nothing here executes code from them.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import CheckpointError

log = logging.getLogger("gan_core")


@dataclass(frozen=True)
class PublicFormat:
    name: str
    detect: Callable[[dict[str, Any]], bool]  # the loaded object (usually a state_dict)
    build: Callable[[dict[str, Any], Path], Any]  # -> GANModel
    # For a file the format does not claim but nearly does (its layout reads as this format's):
    # what differs, e.g. "missing keys [...]"; None when the file is nothing like it.
    diagnose: Callable[[dict[str, Any]], str | None] | None = None


PUBLIC_FORMATS: list[PublicFormat] = []


def register_format(fmt: PublicFormat) -> PublicFormat:
    if any(f.name == fmt.name for f in PUBLIC_FORMATS):
        raise ValueError(f"public format {fmt.name!r} is registered twice")
    PUBLIC_FORMATS.append(fmt)
    return fmt


def describe_keys(obj: dict[str, Any]) -> str:
    # str(): a pickle's dict may have keys of any type (int, tuple), which do not sort together
    keys = sorted(str(k) for k, v in obj.items() if isinstance(v, torch.Tensor))
    others = sorted(str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor))
    text = f"{len(keys)} tensors, e.g. {', '.join(keys[:6])}" if keys else "no tensors"
    if others:
        text += f"; other entries: {', '.join(map(str, others[:6]))}"
    return text


def _diagnose(fmt: PublicFormat, obj: dict[str, Any], path: Path) -> str | None:
    if fmt.diagnose is None:
        return None
    try:
        found = fmt.diagnose(obj)
    except Exception as exc:  # noqa: BLE001 - a diagnosis is a courtesy; never fail on it
        log.warning("%s: the %s diagnosis failed: %r", path.name, fmt.name, exc)
        return None
    return f"a {fmt.name} file with {found}" if found else None


def load_public(path: Path, obj: dict[str, Any]):
    """The first format that claims `obj`, built; else an error saying what the file holds."""
    failed = []
    for fmt in PUBLIC_FORMATS:
        try:
            claimed = fmt.detect(obj)
        except Exception as exc:  # noqa: BLE001 - a reader tripping on odd data must not hide the rest
            log.warning("%s: the %s reader failed on it: %r", path.name, fmt.name, exc)
            failed.append(fmt.name)
            continue
        if claimed:
            return fmt.build(obj, path)
    known = ", ".join(f.name for f in PUBLIC_FORMATS) or "none yet"
    note = f" (the {', '.join(failed)} reader failed on it)" if failed else ""
    near = [d for d in (_diagnose(fmt, obj, path) for fmt in PUBLIC_FORMATS) if d]
    if near:
        note += f". Closest: {'; '.join(near[:2])}"
    raise CheckpointError(
        f"model file {path.name!r} is not a GAN Atelier model nor a public format this version "
        f"recognises ({known}); found {describe_keys(obj)}{note}"
    )


# Registration side effects, after PublicFormat and register_format exist (the modules import
# them from here). Formats must never import gan_core.checkpoint: it imports this package.
from . import style  # noqa: E402,F401
from . import denoise  # noqa: E402,F401
from . import fastgan  # noqa: E402,F401
from . import stylegan2  # noqa: E402,F401
