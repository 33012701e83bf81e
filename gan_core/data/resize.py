"""Fitting arbitrary images to a square training size, identically for files and tensors."""
from __future__ import annotations

import torch
import torch.nn.functional as F

FIT_MODES = ("crop", "stretch", "pad")


def fit_square(x: torch.Tensor, size: int, fit: str = "crop") -> torch.Tensor:
    """[N,C,H,W] float -> [N,C,size,size].

    crop: scale the short side to `size` and cut the centre (keeps aspect, loses borders);
    stretch: scale each axis independently (keeps everything, distorts);
    pad: scale the long side to `size` and pad with white (keeps everything undistorted).
    """
    if fit not in FIT_MODES:
        raise ValueError(f"fit must be one of {FIT_MODES}, got {fit!r}")
    h, w = x.shape[-2:]
    if (h, w) == (size, size):
        return x
    if fit == "stretch":
        return _resize(x, size, size)
    scale = size / (min(h, w) if fit == "crop" else max(h, w))
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    x = _resize(x, nh, nw)
    if fit == "crop":
        top, left = (nh - size) // 2, (nw - size) // 2
        return x[..., top:top + size, left:left + size]
    top, left = (size - nh) // 2, (size - nw) // 2
    out = x.new_ones(x.shape[0], x.shape[1], size, size)
    out[..., top:top + nh, left:left + nw] = x
    return out


def _resize(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    if (h, w) == tuple(x.shape[-2:]):
        return x
    shrinking = h < x.shape[-2] or w < x.shape[-1]
    return F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False,
                         antialias=shrinking).clamp_(0.0, 1.0)
