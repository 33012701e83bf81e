"""Checks a front end can run before training starts (ComfyUI's validate_inputs, the CLI
before it builds a dataset): is this size trainable for this family, is this file a run this
trainer can continue. Each raises ValueError with the message to show."""
from __future__ import annotations

import os

from ..archs import get_arch, list_archs
from ..io.peek import peek

TRAINER_NAMES = {"gan": "Train GAN / `train`", "style": "Train Style / `train-style`",
                 "denoise": "Train Denoiser / `train-denoise`"}


def check_train_size(arch: str, size: int) -> None:
    """ValueError (the family's own words) when `arch` cannot train at `size` px."""
    spec = get_arch(arch)
    if spec.training is None:
        raise ValueError(f"{arch} is not trainable here")
    if spec.training.trainer != "gan":
        return  # crop sizes: checked by their trainers' configs
    try:
        spec.config_cls(image_size=int(size))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"resolution {size}: {exc}") from None


def check_resume_file(path: str | os.PathLike, trainer: str, arch: str | None = None) -> None:
    """ValueError when the file at `path` cannot resume a run of `trainer` (and `arch`):
    another family, an inference-only file, a public file."""
    info = peek(path)
    if not info.ours:
        raise ValueError(f"resume: {info.name!r} is not a GAN Atelier training checkpoint "
                         "(public files hold no training state; start a run from scratch)")
    if not info.resumable:
        raise ValueError(f"resume: {info.name!r} holds no training state (it was saved for "
                         "inference only)")
    try:
        spec = get_arch(info.arch)
    except ValueError:
        raise ValueError(f"resume: {info.name!r} is a {info.arch!r} model, which this version "
                         "does not know") from None
    own = spec.training.trainer if spec.training is not None else None
    if own != trainer:
        where = TRAINER_NAMES.get(own, "no trainer")
        raise ValueError(f"resume: {info.name!r} is a {spec.task} model ({info.arch}); "
                         f"{TRAINER_NAMES[trainer]} continues {', '.join(list_archs(trainer=trainer))} "
                         f"runs; continue this one with {where}")
    if arch is not None and info.arch != arch:
        raise ValueError(f"resume: {info.name!r} is a {info.arch} run but arch {arch!r} is "
                         f"selected; pick {info.arch} to continue it")
