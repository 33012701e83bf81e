"""Style transfer on ComfyUI IMAGE batches: the code behind GANModel.stylize.

Networks differ in what they eat: CycleGAN / pix2pix want [-1, 1] and sizes that are multiples
of 4 (ResNet) or 2**num_downs (U-Net); TransformerNet wants 0..255 and returns unbounded values.
Each family says so in its ArchSpec's ImageIO, and this module does the rest in one place:
range conversion, padding to a size the network accepts (the tiler's rule, whole image or
tiles), channel handling and the strength blend.
"""
from __future__ import annotations

import logging

import torch
from torch import nn

from ..images import check_image_batch, luma_nchw, to_gray
from ..registry import ImageIO
from .tiling import downscale_for_stats, frozen_instance_norm, plan_tile, tiled_apply

log = logging.getLogger("gan_core")


def to_net(io: ImageIO, x: torch.Tensor) -> torch.Tensor:
    """[B,3,H,W] in [0,1] -> what the network eats (its channels and value range)."""
    if io.channels == 1:
        x = luma_nchw(x)
    if io.value_range == "signed":
        return x * 2.0 - 1.0
    return x * 255.0 if io.value_range == "byte" else x


def _from_net(io: ImageIO, y: torch.Tensor) -> torch.Tensor:
    """The network's output -> [B,3,H,W] in [0,1], converted in place (y is the tiler's result,
    never the caller's image: no full-size temporaries)."""
    if io.value_range == "signed":
        y.add_(1.0).mul_(0.5)
    elif io.value_range == "byte":
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


def _run(net: nn.Module, io: ImageIO, x: torch.Tensor, tile: int | None,
         out: torch.Tensor | None = None) -> torch.Tensor:
    """x [1,3,H,W] in [0,1] on the network's device -> [1,3,H,W] in [0,1], written into `out`
    when given.

    Whole or tiled, the image goes through gan_core.infer.tiling, so both pad alike: extended
    at the bottom / right by reflection to the network's multiple and cropped back (a whole
    image is the tiler's one-tile case). Tiled, tiles overlap and are blended, one tile's
    activations at a time, and a CUDA out-of-memory error halves the tile and retries.
    Instance-norm networks (CycleGAN, fast-neural-style) would give each tile its own
    statistics and tiles would disagree in tone; their statistics are captured once from a
    downscaled copy of the whole image and frozen for every tile.

    Memory: x stays in [0,1] and each tile is converted to the network's range on its own, so
    the only full-size buffers are x and the output (`out`, e.g. a slice of the caller's
    result batch; blending weights sum to 1, so the range conversion can follow the blend)."""
    mult, least = io.size_multiple, io.min_size
    if out is None:  # our own buffer: the conversions below work in place
        out = x.new_empty((x.shape[0], 3, *x.shape[-2:]))

    def tile_fn(t: torch.Tensor) -> torch.Tensor:
        return _as_rgb_out(net(to_net(io, t)))

    if tile is None:
        y = tiled_apply(tile_fn, x, None, multiple=mult, oom_fallback=False, out=out,
                        min_size=least)
        return _from_net(io, y)
    x_low = to_net(io, downscale_for_stats(x))  # area averaging commutes with to_net
    with frozen_instance_norm(net, x_low, multiple=mult, min_size=least):
        y = tiled_apply(tile_fn, x, tile, multiple=mult, min_tile=max(64, io.pad_multiple),
                        out=out, min_size=least)
    return _from_net(io, y)


def stylize_images(net: nn.Module, io: ImageIO, images: torch.Tensor, strength: float = 1.0,
                   tile: int | None = None) -> torch.Tensor:
    """See GANModel.stylize: `net` (the generator to run) takes and returns images as `io`
    says."""
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
            y = _run(net, io, x, t, target)
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
