"""Public checkpoint files (CycleGAN, fast-neural-style, DnCNN, FastGAN, StyleGAN2, ...):
recognised by their families' readers, built through the one bounded path.

Each family's PublicFormat says, from the file's object alone, whether a file is its own and
what it holds as data (gan_core.registry.PublicModel); gan_core.io.build then makes networks
with exactly the file's keys and shapes. Files are only ever read as data; nothing here
executes code from them.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from ..archs import get_arch, public_formats
from ..errors import CheckpointError
from ..model import GANModel
from ..registry import PublicFormat
from .build import build_modules

log = logging.getLogger("gan_core")


def describe_keys(obj: Any) -> str:
    """What a file's top-level object holds, in a few words, for an error message."""
    if not isinstance(obj, dict):
        return f"a {type(obj).__name__}"
    # str(): a pickle's dict may have keys of any type (int, tuple), which do not sort together
    keys = sorted(str(k) for k, v in obj.items() if isinstance(v, torch.Tensor))
    others = sorted(str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor))
    text = f"{len(keys)} tensors, e.g. {', '.join(keys[:6])}" if keys else "no tensors"
    if others:
        text += f"; other entries: {', '.join(map(str, others[:6]))}"
    return text


def _diagnose(fmt: PublicFormat, obj: Any, path: Path) -> str | None:
    if fmt.diagnose is None:
        return None
    try:
        found = fmt.diagnose(obj)
    except Exception as exc:  # noqa: BLE001 - a diagnosis is a courtesy; never fail on it
        log.warning("%s: the %s diagnosis failed: %r", path.name, fmt.name, exc)
        return None
    return f"a {fmt.name} file with {found}" if found else None


def _count_tensors(states: dict[str, dict[str, torch.Tensor]]) -> int:
    return sum(len(s) for s in states.values())


def load_public(path: Path, obj: Any, container: str = "torch") -> GANModel:
    """The first format that claims `obj`, built; else an error saying what the file holds."""
    formats = public_formats(container)
    failed = []
    for _spec, fmt in formats:
        try:
            found = fmt.read(obj, path.name)
        except CheckpointError:
            raise
        except Exception as exc:  # noqa: BLE001 - a reader tripping on odd data must not hide the rest
            log.warning("%s: the %s reader failed on it: %r", path.name, fmt.name, exc)
            failed.append(fmt.name)
            continue
        if found is None:
            continue
        spec = get_arch(found.arch)
        for note in found.notes:
            log.info("%s: %s", path.name, note)
        modules = build_modules(spec, found.config, found.states, path,
                                _count_tensors(found.states), found.extras)
        return GANModel(spec.name, found.config, modules, training=found.info,
                        source=str(path))
    known = ", ".join(f.name for _, f in formats) or "none yet"
    note = f" (the {', '.join(failed)} reader failed on it)" if failed else ""
    near = [d for d in (_diagnose(fmt, obj, path) for _, fmt in formats) if d]
    if near:
        note += f". Closest: {'; '.join(near[:2])}"
    raise CheckpointError(
        f"model file {path.name!r} is not a GAN Atelier model nor a public format this version "
        f"recognises ({known}); found {describe_keys(obj)}{note}"
    )
