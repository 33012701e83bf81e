"""Pictures of any size and shape, sampled as random crops at random scales.

Style training needs this where GAN training does not: a painter may have one canvas, not a
dataset. Cutting many crops of different sizes out of it (each resized to the training size,
maybe mirrored) turns one picture into a stream of varied views of its brushwork and palette.
The same sampler serves the content side, where a single photo or a few are common too.
Pictures keep their aspect ratio and (up to `max_side`) their resolution, as uint8.
"""
from __future__ import annotations

import logging
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import DatasetError
from ..images import check_image_batch, to_rgb
from .dataset import BUILTIN_PREFIX
from .folder import IMAGE_EXTENSIONS, list_image_files, read_image
from .procedural import BUILTIN_DATASETS, make_builtin

# Up to this many pictures count as "a few paintings": crops then range over small parts of
# the canvas (brushwork at a readable scale) instead of nearly the whole picture.
FEW_PICTURES = 4
FEW_SCALE = (0.25, 0.8)
MANY_SCALE = (0.8, 1.0)
DEFAULT_MAX_SIDE = 1024

log = logging.getLogger("gan_core")


@dataclass
class CropSource:
    """uint8 pictures [3, H, W] (any sizes) and how crops are drawn from them.

    `scale` bounds the crop side as a fraction of the picture's shorter side; the side is drawn
    log-uniformly between the two, so small and large views are equally likely."""

    pictures: list[torch.Tensor]
    name: str
    scale: tuple[float, float]
    flip: bool = True

    def __post_init__(self) -> None:
        if not self.pictures:
            raise DatasetError(f"{self.name}: no pictures to crop from")
        for p in self.pictures:
            if p.dtype != torch.uint8 or p.dim() != 3 or p.shape[0] != 3:
                raise ValueError("CropSource pictures must be uint8 [3, H, W]")
        lo, hi = (float(s) for s in self.scale)
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"scale must be two fractions 0 < min <= max <= 1, got {self.scale}")
        self.scale = (lo, hi)

    def __len__(self) -> int:
        return len(self.pictures)

    def sample(self, batch: int, size: int, generator: torch.Generator,
               device: torch.device | str = "cpu") -> torch.Tensor:
        """`batch` random crops as float [batch, 3, size, size] in [-1, 1] on `device`."""
        lo, hi = math.log(self.scale[0]), math.log(self.scale[1])
        idx = torch.randint(len(self.pictures), (batch,), generator=generator).tolist()
        draws = torch.rand(batch, 4, generator=generator).tolist()
        crops = []
        for i, (r_scale, r_top, r_left, r_flip) in zip(idx, draws):
            pic = self.pictures[i]
            h, w = pic.shape[-2:]
            side = max(1, min(h, w, round(min(h, w) * math.exp(lo + (hi - lo) * r_scale))))
            top, left = int(r_top * (h - side + 1)), int(r_left * (w - side + 1))
            crop = pic[:, top:top + side, left:left + side].to(device).float().unsqueeze(0)
            if side != size:
                crop = F.interpolate(crop, size=(size, size), mode="bilinear",
                                     align_corners=False, antialias=side > size)
            if self.flip and r_flip < 0.5:
                crop = crop.flip(-1)
            crops.append(crop)
        return torch.cat(crops).div_(127.5).sub_(1.0).clamp_(-1.0, 1.0)

    def views(self, count: int, size: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """The centre square of the first `count` pictures at `size`, [n, 3, size, size] in
        [-1, 1]: fixed pictures for previews."""
        out = []
        for pic in self.pictures[:count]:
            h, w = pic.shape[-2:]
            side = min(h, w)
            top, left = (h - side) // 2, (w - side) // 2
            x = pic[:, top:top + side, left:left + side].to(device).float().unsqueeze(0)
            out.append(F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                                     antialias=side > size))
        return torch.cat(out).div_(127.5).sub_(1.0).clamp_(-1.0, 1.0)


def _cap(x: torch.Tensor, max_side: int) -> torch.Tensor:
    """float [1, 3, H, W] in [0, 1] -> uint8 [3, H', W'] with max(H', W') <= max_side."""
    h, w = x.shape[-2:]
    if max(h, w) > max_side:
        f = max_side / max(h, w)
        x = F.interpolate(x, size=(max(1, round(h * f)), max(1, round(w * f))), mode="bilinear",
                          align_corners=False, antialias=True)
    return x[0].mul(255.0).round_().clamp_(0, 255).to(torch.uint8)


def _auto_scale(n: int) -> tuple[float, float]:
    return FEW_SCALE if n <= FEW_PICTURES else MANY_SCALE


def crops_from_images(images: torch.Tensor, name: str = "images", max_side: int = DEFAULT_MAX_SIDE,
                      scale: tuple[float, float] | None = None, flip: bool = True) -> CropSource:
    """A ComfyUI IMAGE batch [B, H, W, C] in [0, 1] -> CropSource."""
    images = check_image_batch(images, name)
    pics = [_cap(to_rgb(img).permute(2, 0, 1).unsqueeze(0).float().cpu(), max_side)
            for img in images]
    return CropSource(pics, name, scale or _auto_scale(len(pics)), flip)


def open_crop_source(spec: str | os.PathLike, max_side: int = DEFAULT_MAX_SIDE,
                     scale: tuple[float, float] | None = None, flip: bool = True,
                     count: int = 1, seed: int = 0, what: str = "pictures") -> CropSource:
    """`builtin:NAME` (`count` procedural pictures rendered at `max_side`), an image file, or a
    folder of images -> CropSource. `what` names the input in errors (e.g. "--style")."""
    spec = os.fspath(spec)
    if spec.startswith(BUILTIN_PREFIX):
        name = spec[len(BUILTIN_PREFIX):]
        if name not in BUILTIN_DATASETS:
            raise DatasetError(f"{what}: unknown built-in dataset {name!r}; expected one of: "
                               f"{', '.join(BUILTIN_DATASETS)}")
        imgs = make_builtin(name, count, max_side, seed=seed)
        return crops_from_images(imgs, spec, max_side, scale, flip)
    path = Path(spec)
    if path.is_file():
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            raise DatasetError(f"{what} {spec!r} is not an image file (expected one of "
                               f"{', '.join(IMAGE_EXTENSIONS)})")
        files = [path]
    elif path.is_dir():
        files = list_image_files(path)
        if not files:
            raise DatasetError(f"{what} folder {spec!r} has no image files "
                               f"(looked for {', '.join(IMAGE_EXTENSIONS)})")
    else:
        raise DatasetError(f"{what} {spec!r} is neither an image file, a folder nor builtin:NAME "
                           f"(built-in names: {', '.join(BUILTIN_DATASETS)})")
    pics, skipped = [], []
    for f in files:
        try:
            img = read_image(f, hint_size=max_side // 2)
        except (OSError, ValueError, SyntaxError) as exc:  # PIL's UnidentifiedImageError is an OSError
            skipped.append(f"{f.name} ({exc})")
            msg = f"skipping unreadable image {str(f)!r}: {exc}"
            log.warning(msg)
            warnings.warn(msg, stacklevel=2)
            continue
        pics.append(_cap(img.permute(2, 0, 1).unsqueeze(0), max_side))
    if not pics:
        raise DatasetError(f"{what} {spec!r}: no image could be read: {'; '.join(skipped[:5])}")
    return CropSource(pics, path.name or spec, scale or _auto_scale(len(pics)), flip)
