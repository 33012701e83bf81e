"""Sample-quality metrics that need no pretrained network.

FID and KID need Inception weights, which cannot be downloaded here and are not ours to ship.
The sliced Wasserstein distance (SWD) of Karras et al. 2018 ("Progressive Growing of GANs",
section 5) compares the distributions of local patches at several scales instead: close to 0
when two image sets share their textures and structure at every scale, larger as they drift
apart. It is what we report for the few-shot benchmark; compare figures only between runs with
the same image size, set sizes and settings.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .images import check_image_batch

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _blur(x: torch.Tensor) -> torch.Tensor:
    """Separable 5-tap binomial blur with reflect padding; x is [B,C,H,W]."""
    c = x.shape[1]
    k = _BINOMIAL.to(x)
    x = F.pad(x, (2, 2, 2, 2), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, 5).expand(c, 1, 1, 5).contiguous(), groups=c)
    return F.conv2d(x, k.view(1, 1, 5, 1).expand(c, 1, 5, 1).contiguous(), groups=c)


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Band-pass levels from fine to coarse, the last one the low-pass residual."""
    bands = []
    for _ in range(levels - 1):
        small = _blur(x)[:, :, ::2, ::2]
        up = F.interpolate(small, size=x.shape[-2:], mode="bilinear", align_corners=False)
        bands.append(x - up)
        x = small
    bands.append(x)
    return bands


def _patches(band: torch.Tensor, per_image: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """`per_image` random size x size neighbourhoods of every image, flattened: [B*per_image, C*size*size]."""
    b, c, h, w = band.shape
    ys = torch.randint(0, h - size + 1, (b, per_image), generator=gen)
    xs = torch.randint(0, w - size + 1, (b, per_image), generator=gen)
    offs = torch.arange(size)
    rows = (ys[..., None] + offs).view(b, per_image, size, 1).expand(b, per_image, size, size)
    cols = (xs[..., None] + offs).view(b, per_image, 1, size).expand(b, per_image, size, size)
    bi = torch.arange(b).view(b, 1, 1, 1).expand_as(rows)
    picked = band.permute(0, 2, 3, 1)[bi, rows, cols]  # [b, n, size, size, C]
    return picked.permute(0, 1, 4, 2, 3).reshape(b * per_image, c * size * size)


def _standardise(desc: torch.Tensor, channels: int) -> torch.Tensor:
    """Zero mean, unit variance per colour channel, over the whole set (as in the paper)."""
    d = desc.view(desc.shape[0], channels, -1)
    mean = d.mean(dim=(0, 2), keepdim=True)
    std = d.std(dim=(0, 2), keepdim=True).clamp_min(1e-8)
    return ((d - mean) / std).view_as(desc)


def _sliced_distance(a: torch.Tensor, b: torch.Tensor, directions: int, repeats: int,
                     gen: torch.Generator) -> float:
    """Mean over random unit directions of the 1-D Wasserstein-1 distance of the projections."""
    n = min(len(a), len(b))
    total = 0.0
    for _ in range(repeats):
        dirs = torch.randn(a.shape[1], directions, generator=gen, dtype=a.dtype)
        dirs = dirs / dirs.norm(dim=0, keepdim=True)
        # [directions, n] rows sorted with numpy: 8x faster than torch.sort on a CPU here.
        pa = np.sort((dirs.T @ a[:n].T).numpy(), axis=1)
        pb = np.sort((dirs.T @ b[:n].T).numpy(), axis=1)
        total += float(np.abs(pa - pb).mean())
    return total / repeats


@torch.no_grad()
def sliced_wasserstein(images_a: torch.Tensor, images_b: torch.Tensor, levels: int | None = None,
                       patches_per_image: int = 128, patch_size: int = 7, directions: int = 512,
                       repeats: int = 4, seed: int = 0) -> dict[str, float]:
    """SWD between two IMAGE batches ([B,H,W,C] in [0,1], same H, W and C), x 1e3 as usually
    reported: one figure per pyramid level (finest first, "16px" for a 16 px level) and their
    mean under "mean". Levels default to every halving down to 16 px. Deterministic for a
    given `seed`; sets of different sizes use the same number of patches from each."""
    images_a = check_image_batch(images_a, "images_a")
    images_b = check_image_batch(images_b, "images_b")
    if images_a.shape[1:] != images_b.shape[1:]:
        raise ValueError(f"images_a {tuple(images_a.shape[1:])} and images_b "
                         f"{tuple(images_b.shape[1:])} must have the same size and channels")
    if len(images_a) == 0 or len(images_b) == 0:
        raise ValueError("sliced_wasserstein needs at least one image in each set")
    h = min(images_a.shape[1], images_a.shape[2])
    if h < 16:
        raise ValueError(f"images must be at least 16 px, got {h}")
    if levels is None:
        levels = max(1, (h // 16).bit_length())
    gen = torch.Generator().manual_seed(seed)
    a = images_a.permute(0, 3, 1, 2).contiguous()
    b = images_b.permute(0, 3, 1, 2).contiguous()
    channels = a.shape[1]
    result: dict[str, float] = {}
    for band_a, band_b in zip(laplacian_pyramid(a, levels), laplacian_pyramid(b, levels)):
        da = _standardise(_patches(band_a, patches_per_image, patch_size, gen), channels)
        db = _standardise(_patches(band_b, patches_per_image, patch_size, gen), channels)
        # Same count from both sets: subsample the larger one.
        n = min(len(da), len(db))
        da = da[torch.randperm(len(da), generator=gen)[:n]]
        db = db[torch.randperm(len(db), generator=gen)[:n]]
        result[f"{band_a.shape[-1]}px"] = 1e3 * _sliced_distance(da, db, directions, repeats, gen)
    result["mean"] = sum(result.values()) / len(result)
    return result


# --------------------------------------------------------------------------- image measures
# The one definition of PSNR and SSIM in gan_core (inversion, training logs, tests).

def _window(channels: int, size: int, sigma: float, like: torch.Tensor) -> torch.Tensor:
    x = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-x * x / (2 * sigma * sigma))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 7, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM per image of [B, C, H, W] batches in [0, 1] (Gaussian window, reflect
    padding so small images keep every pixel)."""
    c = x.shape[1]
    size = min(window, x.shape[-1], x.shape[-2]) | 1
    if size > min(x.shape[-1], x.shape[-2]):
        size -= 2
    k = _window(c, max(1, size), sigma, x)
    pad = k.shape[-1] // 2

    def blur(t: torch.Tensor) -> torch.Tensor:
        if pad:
            t = F.pad(t, (pad, pad, pad, pad), mode="reflect")
        return F.conv2d(t, k, groups=c)

    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1)


def pyramid_ssim(x: torch.Tensor, y: torch.Tensor, levels: int = 4) -> torch.Tensor:
    """SSIM averaged over an average-pooled image pyramid (halving until 8 px or `levels`
    scales), per image. Not Wang et al.'s MS-SSIM (which weights contrast and structure per
    scale and luminance at the coarsest only): the plain mean the inversion loss uses."""
    scores = []
    for _ in range(levels):
        scores.append(ssim(x, y))
        if min(x.shape[-2:]) < 16:
            break
        x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return torch.stack(scores).mean(0)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of two images in [0, 1]."""
    mse = (a.float() - b.float()).pow(2).mean().item()
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)
