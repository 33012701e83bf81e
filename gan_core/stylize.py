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

from .images import check_image_batch, to_gray
from .tiling import downscale_for_stats, frozen_instance_norm, plan_tile, tiled_apply

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
    """The network's output -> [1,3,H,W] in [0,1], converted in place (y is the network's own
    output or the tiler's buffer, never the caller's image: no full-size temporaries)."""
    if y.shape[1] not in (1, 3):
        raise ValueError(f"the network returns {y.shape[1]} channels; stylize needs 1 or 3")
    if net.io_range == "signed":
        y.add_(1.0).mul_(0.5)
    else:
        y.div_(255.0)
    y.clamp_(0.0, 1.0)
    return y.expand(-1, 3, -1, -1) if y.shape[1] == 1 else y


def _as_rgb_out(y: torch.Tensor) -> torch.Tensor:
    """A tile's output with 3 channels (a gray network's result is replicated), so tiles can
    be accumulated straight into an RGB buffer."""
    if y.shape[1] == 1:
        return y.expand(-1, 3, -1, -1)
    if y.shape[1] != 3:
        raise ValueError(f"the network returns {y.shape[1]} channels; stylize needs 1 or 3")
    return y


def _run(net: nn.Module, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """x [1,3,H,W] in [0,1] on the network's device -> [1,3,H,W] in [0,1], whole image,
    written into `out` when given."""
    h, w = x.shape[-2:]
    mult, minimum = int(getattr(net, "size_multiple", 1)), int(getattr(net, "min_size", 1))
    th, tw = padded_size(h, mult, minimum), padded_size(w, mult, minimum)
    top, left = (th - h) // 2, (tw - w) // 2  # centred, so both borders see the same context
    x = _pad_dim(_pad_dim(x, top, th - h - top, -2), left, tw - w - left, -1)
    y = _from_net(net, net(_to_net(net, x))[..., top:top + h, left:left + w])
    return y if out is None else out.copy_(y)


def _run_tiled(net: nn.Module, x: torch.Tensor, tile: int,
               out: torch.Tensor | None = None) -> torch.Tensor:
    """Like _run, in overlapping tiles blended together, one tile's activations at a time.

    Instance-norm networks (CycleGAN, fast-neural-style) would give each tile its own
    statistics and tiles would disagree in tone; their statistics are captured once from a
    downscaled copy of the whole image and frozen for every tile. A CUDA out-of-memory error
    halves the tile and retries (gan_core.tiling).

    Memory: x stays in [0,1] and each tile is converted to the network's range on its own, so
    the only full-size buffers are x and the output (`out`, e.g. a slice of the caller's
    result batch; blending weights sum to 1, so the range conversion can follow the blend)."""
    mult = max(int(getattr(net, "size_multiple", 1)), int(getattr(net, "min_size", 1)))
    x_low = _to_net(net, downscale_for_stats(x))  # area averaging commutes with _to_net

    def tile_fn(t: torch.Tensor) -> torch.Tensor:
        return _as_rgb_out(net(_to_net(net, t)))

    with frozen_instance_norm(net, x_low, multiple=mult):
        y = tiled_apply(tile_fn, x, tile, multiple=mult, min_tile=max(64, mult), out=out)
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
    with torch.inference_mode():
        net.eval()
        # Results are written into one preallocated batch: no list of per-image results and
        # no final concatenation (which would hold the whole output twice).
        result = torch.empty_like(images)
        # One image at a time: memory stays that of one image, and a batch of unrelated
        # pictures never shares normalisation statistics (pix2pix's train-mode BatchNorm).
        for i, img in enumerate(images.split(1)):
            res = result[i:i + 1]
            c = img.shape[-1]
            if strength == 0.0:
                res.copy_(img)
                continue
            rgb = img.expand(-1, -1, -1, 3) if c == 1 else img[..., :3]  # views, no copies
            x = rgb.permute(0, 3, 1, 2).to(param.device, param.dtype)
            # On the CPU in float32 the network's output goes straight into the result.
            direct = c != 1 and x.device == res.device and x.dtype == res.dtype
            target = res[..., :3].permute(0, 3, 1, 2) if direct else None
            t = plan_tile(tile, x.shape[-2], x.shape[-1], "stylize")
            y = _run_tiled(net, x, t, target) if t is not None else _run(net, x, target)
            if c == 1:
                res.copy_(to_gray(y.float().permute(0, 2, 3, 1).cpu()))
            elif y is not target:
                res[..., :3].copy_(y.permute(0, 2, 3, 1))
            del y, x
            base = img if c == 1 else img[..., :3]
            if strength < 1.0:  # strength * styled + (1 - strength) * input
                res[..., :base.shape[-1]].lerp_(base, 1.0 - strength)
            if c == 4:
                res[..., 3:].copy_(img[..., 3:])  # alpha untouched
    return result
