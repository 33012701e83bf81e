"""Style transfer on ComfyUI IMAGE batches: the code behind GANModel.stylize.

Networks differ in what they eat: CycleGAN / pix2pix want [-1, 1] and sizes that are multiples
of 4 (ResNet) or 2**num_downs (U-Net); TransformerNet wants 0..255 and returns unbounded values.
Each style network says so through class attributes (`io_range`, `size_multiple`, `min_size`,
`in_channels`), and this module does the rest in one place: range conversion, reflect padding
to a size the network accepts (cropped back afterwards), channel handling and the strength blend.
"""
from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from .images import check_image_batch, to_gray, to_rgb
from .tiling import downscale_for_stats, frozen_instance_norm, tiled_apply

if TYPE_CHECKING:
    from .model import GANModel

log = logging.getLogger("gan_core")


def _pad_dim(x: torch.Tensor, before: int, after: int, dim: int) -> torch.Tensor:
    """Mirror-pad one spatial dim by any amount: reflect in steps (one reflect pass can add at
    most size-1 pixels), replicate when a side is a single pixel and cannot be mirrored."""
    while before > 0 or after > 0:
        n = x.shape[dim]
        if n == 1:
            pads = (before, after, 0, 0) if dim == -1 else (0, 0, before, after)
            return F.pad(x, pads, mode="replicate")
        b, a = min(before, n - 1), min(after, n - 1)
        pads = (b, a, 0, 0) if dim == -1 else (0, 0, b, a)
        x = F.pad(x, pads, mode="reflect")
        before, after = before - b, after - a
    return x


def padded_size(n: int, multiple: int, minimum: int) -> int:
    """The smallest size >= n (and >= minimum) that the network accepts."""
    return max(minimum, math.ceil(n / multiple) * multiple)


def _to_net(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """[1,3,H,W] in [0,1] -> what the network eats (its channels and value range)."""
    if int(getattr(net, "in_channels", 3)) == 1:
        x = (x * x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    return x * 2.0 - 1.0 if net.io_range == "signed" else x * 255.0


def _from_net(net: nn.Module, y: torch.Tensor) -> torch.Tensor:
    """The network's output -> [1,3,H,W] in [0,1]."""
    y = (y + 1.0) * 0.5 if net.io_range == "signed" else y / 255.0
    if y.shape[1] == 1:
        y = y.expand(-1, 3, -1, -1)
    elif y.shape[1] != 3:
        raise ValueError(f"the network returns {y.shape[1]} channels; stylize needs 1 or 3")
    return y.clamp(0.0, 1.0)


def _run(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """x [1,3,H,W] in [0,1] on the network's device -> [1,3,H,W] in [0,1], whole image."""
    h, w = x.shape[-2:]
    mult, minimum = int(getattr(net, "size_multiple", 1)), int(getattr(net, "min_size", 1))
    th, tw = padded_size(h, mult, minimum), padded_size(w, mult, minimum)
    top, left = (th - h) // 2, (tw - w) // 2  # centred, so both borders see the same context
    x = _pad_dim(_pad_dim(x, top, th - h - top, -2), left, tw - w - left, -1)
    y = net(_to_net(net, x))[..., top:top + h, left:left + w]
    return _from_net(net, y)


def _run_tiled(net: nn.Module, x: torch.Tensor, tile: int) -> torch.Tensor:
    """Like _run, in overlapping tiles blended together, one tile's activations at a time.

    Instance-norm networks (CycleGAN, fast-neural-style) would give each tile its own
    statistics and tiles would disagree in tone; their statistics are captured once from a
    downscaled copy of the whole image and frozen for every tile. A CUDA out-of-memory error
    halves the tile and retries (gan_core.tiling)."""
    mult = max(int(getattr(net, "size_multiple", 1)), int(getattr(net, "min_size", 1)))
    xn = _to_net(net, x)
    with frozen_instance_norm(net, downscale_for_stats(xn), multiple=mult):
        y = tiled_apply(net, xn, tile, multiple=mult, min_tile=max(64, mult))
    return _from_net(net, y)


def stylize_images(model: "GANModel", images: torch.Tensor, strength: float = 1.0,
                   tile: int | None = None, net: nn.Module | None = None) -> torch.Tensor:
    """See GANModel.stylize; `net` is which of the model's generators runs (default: its main
    one)."""
    net = model.module if net is None else net
    if getattr(net, "io_range", None) not in ("signed", "byte"):
        raise ValueError(f"this {model.arch} model is not an image-to-image network "
                         f"({type(net).__name__}); it cannot stylize")
    images = check_image_batch(images).cpu()  # results come back on the CPU, like IMAGE
    strength = float(strength)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be between 0 and 1, got {strength}")
    if tile is not None and tile < 16:
        raise ValueError(f"tile must be at least 16 px (or None for whole images), got {tile}")
    param = next(net.parameters())
    out = []
    with torch.inference_mode():
        net.eval()
        # One image at a time: memory stays that of one image, and a batch of unrelated
        # pictures never shares normalisation statistics (pix2pix's train-mode BatchNorm).
        for img in images.split(1):
            rgb = to_rgb(img)
            if strength == 0.0:
                styled = rgb
            else:
                x = rgb.permute(0, 3, 1, 2).to(param.device, param.dtype)
                tiled = tile is not None and max(x.shape[-2:]) > tile
                y = _run_tiled(net, x, tile) if tiled else _run(net, x)
                styled = y.float().permute(0, 2, 3, 1).cpu()
            c = img.shape[-1]
            base = img[..., :1] if c == 1 else rgb
            if c == 1:
                styled = to_gray(styled)
            blended = torch.lerp(base, styled, strength) if strength < 1.0 else styled
            if c == 4:
                blended = torch.cat([blended, img[..., 3:]], -1)  # alpha untouched
            out.append(blended)
    return torch.cat(out).contiguous()
