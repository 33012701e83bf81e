"""Recognisers for public checkpoint files (CycleGAN, fast-neural-style, DnCNN, ...).

Each format says, from the file's tensors and key names alone, whether a file is its own and
then builds a GANModel whose module has exactly the file's keys and shapes. Files are only
ever read as data; nothing here executes code from them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import CheckpointError


@dataclass(frozen=True)
class PublicFormat:
    name: str
    detect: Callable[[dict[str, Any]], bool]  # the loaded object (usually a state_dict)
    build: Callable[[dict[str, Any], Path], Any]  # -> GANModel


PUBLIC_FORMATS: list[PublicFormat] = []


def register_format(fmt: PublicFormat) -> PublicFormat:
    if any(f.name == fmt.name for f in PUBLIC_FORMATS):
        raise ValueError(f"public format {fmt.name!r} is registered twice")
    PUBLIC_FORMATS.append(fmt)
    return fmt


def describe_keys(obj: dict[str, Any]) -> str:
    keys = sorted(k for k, v in obj.items() if isinstance(v, torch.Tensor))
    others = sorted(k for k, v in obj.items() if not isinstance(v, torch.Tensor))
    text = f"{len(keys)} tensors, e.g. {', '.join(keys[:6])}" if keys else "no tensors"
    if others:
        text += f"; other entries: {', '.join(map(str, others[:6]))}"
    return text


def load_public(path: Path, obj: dict[str, Any]):
    """The first format that claims `obj`, built; else an error saying what the file holds."""
    for fmt in PUBLIC_FORMATS:
        if fmt.detect(obj):
            return fmt.build(obj, path)
    known = ", ".join(f.name for f in PUBLIC_FORMATS) or "none yet"
    raise CheckpointError(
        f"model file {path.name!r} is not a GAN Atelier model nor a public format this version "
        f"recognises ({known}); found {describe_keys(obj)}"
    )


# Registration side effects, after PublicFormat and register_format exist (the modules import
# them from here). Formats must never import gan_core.checkpoint: it imports this package.
from . import style  # noqa: E402,F401
from . import denoise  # noqa: E402,F401
from . import stylegan2  # noqa: E402,F401
from . import fastgan  # noqa: E402,F401
