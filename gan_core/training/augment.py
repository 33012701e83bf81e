"""Differentiable augmentation (Zhao et al. 2020, "DiffAugment") for data-efficient GANs.

The same random transform family is applied to real and fake images before the
discriminator, in both the D and G steps, so D cannot memorise a small dataset while G still
receives gradients through the transform. Randomness comes from the trainer's generator so
runs stay reproducible and resumable.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

AUGMENTATIONS = ("color", "translation", "cutout")


def parse_policy(policy: str) -> tuple[str, ...]:
    """"color,translation" -> ("color", "translation"); "" or "none" -> ()."""
    parts = tuple(p.strip() for p in policy.replace("+", ",").split(",") if p.strip())
    if parts in ((), ("none",)):
        return ()
    bad = [p for p in parts if p not in AUGMENTATIONS]
    if bad:
        raise ValueError(f"unknown augmentation {bad}; expected a comma list of {AUGMENTATIONS}")
    return parts


def diff_augment(x: torch.Tensor, policy: tuple[str, ...], generator: torch.Generator,
                 shard: tuple[int, int] = (0, 1)) -> torch.Tensor:
    """Apply each named transform with per-sample random parameters; x is [B,C,H,W] in [-1,1].

    `shard` = (index, count) says that x is the index-th of `count` equal slices of a global
    batch of count * B samples (data-parallel training: one slice per process). Parameters are
    then drawn for the whole global batch and this slice's rows kept, so every process uses the
    generator identically and a sample is transformed the same whatever the process count."""
    for name in policy:
        x = _TRANSFORMS[name](x, generator, shard)
    return x


def _rows(draw: torch.Tensor, x: torch.Tensor, shard: tuple[int, int]) -> torch.Tensor:
    """This shard's rows of parameters drawn for the global batch, moved to x's device."""
    b = x.shape[0]
    return draw[shard[0] * b:(shard[0] + 1) * b].to(x.device)


def _rand(generator: torch.Generator, x: torch.Tensor, shard: tuple[int, int],
          *tail: int) -> torch.Tensor:
    # Drawn on the CPU generator, then moved: the same numbers on every device.
    draw = torch.rand(x.shape[0] * shard[1], *tail, generator=generator)
    return _rows(draw, x, shard).to(x.dtype)


def _randint(generator: torch.Generator, x: torch.Tensor, shard: tuple[int, int], low: int,
             high: int) -> torch.Tensor:
    draw = torch.randint(low, high, (x.shape[0] * shard[1], 1, 1), generator=generator)
    return _rows(draw, x, shard)


def _color(x: torch.Tensor, g: torch.Generator, shard: tuple[int, int]) -> torch.Tensor:
    x = x + (_rand(g, x, shard, 1, 1, 1) - 0.5)  # brightness
    if x.shape[1] > 1:
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (_rand(g, x, shard, 1, 1, 1) * 2.0) + mean  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(g, x, shard, 1, 1, 1) + 0.5) + mean  # contrast


def _translation(x: torch.Tensor, g: torch.Generator, shard: tuple[int, int],
                 ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to `ratio` of its size, filling with zeros (mid-grey)."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = _randint(g, x, shard, -sh, sh + 1)
    dx = _randint(g, x, shard, -sw, sw + 1)
    ys = (torch.arange(h, device=x.device).view(1, h, 1) + dy).clamp_(-1, h) + 1
    xs = (torch.arange(w, device=x.device).view(1, 1, w) + dx).clamp_(-1, w) + 1
    padded = F.pad(x, [1, 1, 1, 1])
    bi = torch.arange(b, device=x.device).view(b, 1, 1)
    return padded.permute(0, 2, 3, 1)[bi, ys, xs].permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, g: torch.Generator, shard: tuple[int, int],
            ratio: float = 0.5) -> torch.Tensor:
    """Zero one random rectangle of `ratio` x the image size per sample."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = _randint(g, x, shard, 0, h + (1 - ch % 2))
    cx = _randint(g, x, shard, 0, w + (1 - cw % 2))
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = ((ys - cy).abs() * 2 < ch) & ((xs - cx).abs() * 2 < cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


_TRANSFORMS = {"color": _color, "translation": _translation, "cutout": _cutout}
