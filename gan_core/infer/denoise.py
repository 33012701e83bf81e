"""Denoising ComfyUI IMAGE batches: the code behind GANModel.denoise.

A denoising family says what its network needs in its ArchSpec's ImageIO, so every denoiser
(DnCNN, DRUNet, our U-Net) shares one path for padding, channels, noise level and blending:

* `channels` (1 or 3): the image channels it takes and returns;
* `noise_level_input`: whether its input ends with one extra channel holding the noise level
  sigma/255 everywhere (DRUNet), or it is blind / trained for one sigma (DnCNN);
* `size_multiple`, `min_size`: what H and W must be (8 and 8 for DRUNet, 1 for DnCNN);
* forward(x) maps [B, C(+1), H, W] in [0, 1] to the clean image [B, C, H, W], unclipped.

Whole images and tiles go through gan_core.infer.tiling alike: extended at the bottom / right
(reflect, replicate where an image is too small to mirror) to a size the network accepts and
cropped back, so any size works and tiled results equal untiled ones away from tile seams. The
result is clipped to [0, 1] (the originals clip when they write uint8) and blended with the
input.
"""
from __future__ import annotations

import logging
import math

import torch
from torch import nn

from ..images import check_image_batch, to_gray
from ..registry import ImageIO
from .tiling import plan_tile, tiled_apply

log = logging.getLogger("gan_core")

# Noise level for DRUNet when the caller gives none (0..255 units). 15 is the lowest level of
# the published benchmarks (DPIR's sigma 15 / 25 / 50 tables) and a mild setting for real photos and scans,
# whose noise is usually weaker than the 25-50 of the synthetic tests; too high a sigma
# over-smooths, too low leaves noise, so the caller should set it.
DEFAULT_SIGMA = 15.0


def _forward(net: nn.Module, sigma: float | None):
    """The network as a function of an image batch; DRUNet gets its noise map appended as the
    last input channel, as in DPIR, at whatever size the (tile) input has."""
    def fn(t: torch.Tensor) -> torch.Tensor:
        if sigma is not None:
            t = torch.cat([t, t.new_full((t.shape[0], 1, *t.shape[-2:]), sigma / 255.0)], 1)
        return net(t)
    return fn


def _run(net: nn.Module, io: ImageIO, x: torch.Tensor, sigma: float | None,
         tile: int | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
    """x [N, C, H, W] in [0, 1] (C = io.channels) -> clean [N, C, H, W] in [0, 1], written
    into `out` when given (then the only full-size buffers are x and out).

    Images larger than `tile` (or than tiling.MAX_UNTILED_SIDE) go in overlapping tiles
    blended together, one tile's activations at a time, the tile halved on out-of-memory;
    smaller ones as the tiler's single tile. These networks have no normalisation layers, so
    tiles agree with the whole-image result away from tile borders."""
    h, w = x.shape[-2:]
    fn = _forward(net, sigma)
    if out is None:  # our own buffer: a network may hand back (a view of) its input
        out = x.new_empty(x.shape)
    tile = plan_tile(tile, h, w, "denoise")
    if tile is not None:
        y = tiled_apply(fn, x, tile, multiple=io.size_multiple, out=out, min_size=io.min_size,
                        min_tile=max(64, io.pad_multiple))
    else:
        y = tiled_apply(fn, x, None, multiple=io.size_multiple, oom_fallback=False, out=out,
                        min_size=io.min_size)
    # The tiler's own buffer or `out`: never the caller's image, so clamped in place.
    return y.clamp_(0.0, 1.0)


def _denoise_color(net: nn.Module, io: ImageIO, x: torch.Tensor, sigma: float | None,
                   tile: int | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
    """x [1, C, H, W] (C 1 or 3, the image's own channels) -> denoised, same shape (into
    `out` when given)."""
    want, have = io.channels, x.shape[1]
    if want == have:
        return _run(net, io, x, sigma, tile, out)
    if want == 1:
        # A gray model on a colour image: each channel is denoised as its own gray image.
        # Running it on luma alone would lose the chroma noise and the colour; per channel keeps
        # colour and matches the additive-Gaussian noise model (independent per channel). One
        # channel at a time bounds memory to one plane.
        if out is not None:
            for i in range(have):
                _run(net, io, x[:, i:i + 1], sigma, tile, out[:, i:i + 1])
            return out
        return torch.cat([_run(net, io, x[:, i:i + 1], sigma, tile) for i in range(have)], 1)
    # A colour model on a gray image: fed as gray RGB, and the result turned back to one
    # channel with the same luma weights as everywhere else in gan_core.
    y = _run(net, io, x.expand(-1, 3, -1, -1), sigma, tile)
    gray = to_gray(y.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    return gray if out is None else out.copy_(gray)


def denoise_images(net: nn.Module, io: ImageIO, images: torch.Tensor, strength: float = 1.0,
                   sigma: float | None = None, tile: int | None = None,
                   name: str = "the model") -> torch.Tensor:
    """See GANModel.denoise: `net` takes and returns images as `io` says; `name` is how log
    lines call the model."""
    images = check_image_batch(images).cpu()  # results come back on the CPU, like IMAGE
    strength = float(strength)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be between 0 and 1, got {strength}")
    if sigma is not None:
        sigma = float(sigma)
        if not math.isfinite(sigma) or not 0.0 <= sigma <= 255.0:
            raise ValueError(f"sigma is a noise level in 0..255 units, got {sigma}")
    if tile is not None and tile < 16:
        raise ValueError(f"tile must be at least 16 px (or None for whole images), got {tile}")
    if io.noise_level_input:
        if sigma is None:
            sigma = DEFAULT_SIGMA
            log.info("denoise: %s takes a noise level and none was given; using sigma %g "
                     "(0..255 units)", name, sigma)
    elif sigma is not None:
        log.info("denoise: %s takes no noise level (blind or trained for one sigma); "
                 "sigma %g is ignored", name, sigma)
        sigma = None
    param = next(net.parameters())
    with torch.inference_mode():
        net.eval()
        # One preallocated result batch, filled image by image: no list of results and no
        # final concatenation (which would hold the whole output twice).
        result = torch.empty_like(images)
        for i, img in enumerate(images.split(1)):  # one image at a time: memory of one image
            res = result[i:i + 1]
            c = img.shape[-1]
            color = img[..., :3] if c == 4 else img
            if strength == 0.0:
                res.copy_(img)
                continue
            target = res[..., :color.shape[-1]].permute(0, 3, 1, 2)
            x = color.permute(0, 3, 1, 2).to(param.device, param.dtype)
            direct = x.device == target.device and x.dtype == target.dtype
            clean = _denoise_color(net, io, x, sigma, tile, target if direct else None)
            if clean is not target:
                target.copy_(clean)
            del clean, x
            if strength < 1.0:  # strength * clean + (1 - strength) * input
                res[..., :color.shape[-1]].lerp_(color, 1.0 - strength)
            if c == 4:
                res[..., 3:].copy_(img[..., 3:])  # alpha untouched
    return result
