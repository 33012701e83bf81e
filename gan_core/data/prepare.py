"""What the front ends (the CLI, the nodes, the benchmarks) turn the user's pictures into
before a trainer sees them: one place for the choices that decide what a model learns from,
so the same folder gives the same training data whichever door it came in by.

- Style training (CycleGAN): pictures keep their size; crops at random scales come from each
  (`CropSource`). Built-in content is rendered at twice the crop size (at least 256 px) and a
  built-in painting at 768 px: large enough for crops at every scale.
- Denoising: the model must see noise and detail at the scale they have in the user's photos,
  so photos are cut into overlapping tiles at full resolution (twice the crop side, stride
  three quarters of it; near-flat tiles dropped), and the trainer draws random crops of those.
  Shrinking whole photos to the crop size (what `train-denoise --data` did) trains on
  something else than the photos.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from ..errors import DatasetError
from ..images import check_image_batch, read_image, to_rgb
from .crops import DEFAULT_MAX_SIDE, CropSource, crops_from_images, open_crop_source
from .dataset import BUILTIN_PREFIX, ImageDataset, open_dataset
from .folder import IMAGE_EXTENSIONS, list_image_files
from .resize import fit_square

log = logging.getLogger("gan_core")

CONTENT_CONTEXT = 2  # built-in content is rendered at this many times the crop size
BUILTIN_MIN_SIDE = 256
BUILTIN_CONTENT_COUNT = 64
STYLE_SIDE = 768  # a built-in painting's side
TILE_CONTEXT = 2  # denoise tiles are this many times the crop side
TILE_STRIDE = 0.75  # of the tile side: neighbouring tiles overlap by a quarter
FLAT_STD = 0.03  # tiles flatter than this (std in 0..1) teach nothing about detail
MAX_TILES_PER_PICTURE = 256  # evenly spaced subset beyond this (a 6000 px photo has ~2000)


def style_source(source: str | os.PathLike | torch.Tensor, side: str, size: int, seed: int = 0,
                 max_side: int = DEFAULT_MAX_SIDE, count: int | None = None,
                 what: str | None = None) -> CropSource:
    """Pictures for one side ("content" or "style") of a style run: an IMAGE batch, an image
    file or folder, or `builtin:NAME` (content: `count` (64) pictures at twice the crop size;
    style: `count` (1) painting at 768 px). `what` names the input in errors."""
    if side not in ("content", "style"):
        raise ValueError(f"side must be 'content' or 'style', got {side!r}")
    what = what or side
    if isinstance(source, torch.Tensor):
        return crops_from_images(source, name=what, max_side=max_side)
    spec = os.fspath(source)
    if spec.startswith(BUILTIN_PREFIX):
        if side == "style":
            return open_crop_source(spec, max_side=STYLE_SIDE, count=count or 1, seed=seed,
                                    what=what)
        return open_crop_source(spec, max_side=max(BUILTIN_MIN_SIDE, CONTENT_CONTEXT * size),
                                count=count or BUILTIN_CONTENT_COUNT, seed=seed, what=what)
    return open_crop_source(spec, max_side=max_side, what=what)


def _tiles(picture: torch.Tensor, tile: int, fit: str = "crop") -> list[torch.Tensor]:
    """Overlapping full-resolution tiles of one [3, H, W] picture in [0, 1] (the picture
    fitted up to one tile when it is smaller), near-flat ones dropped, at most
    MAX_TILES_PER_PICTURE of them, evenly spaced."""
    _, h, w = picture.shape
    if min(h, w) < tile:
        return [fit_square(picture.unsqueeze(0), tile, fit)[0]]
    stride = max(1, int(tile * TILE_STRIDE))
    tops = list(range(0, h - tile + 1, stride)) or [0]
    lefts = list(range(0, w - tile + 1, stride)) or [0]
    if tops[-1] != h - tile:
        tops.append(h - tile)
    if lefts[-1] != w - tile:
        lefts.append(w - tile)
    spots = [(t, left) for t in tops for left in lefts]
    if len(spots) > MAX_TILES_PER_PICTURE:
        step = len(spots) / MAX_TILES_PER_PICTURE
        spots = [spots[int(i * step)] for i in range(MAX_TILES_PER_PICTURE)]
    pieces = [picture[:, t:t + tile, left:left + tile] for t, left in spots]
    kept = [p for p in pieces if float(p.std()) >= FLAT_STD]
    return kept or pieces[:1]  # a flat picture still gives one tile


def _pictures(source: str | os.PathLike | torch.Tensor, what: str):
    """[3, H, W] pictures in [0, 1] one at a time (files read lazily); unreadable files are
    skipped with a warning, as training folders always were."""
    if isinstance(source, torch.Tensor):
        images = check_image_batch(source, what)
        for img in images:
            yield to_rgb(img.unsqueeze(0))[0].permute(2, 0, 1).float().cpu()
        return
    path = Path(source)
    files = [path] if path.is_file() else list_image_files(path)
    if not files:
        raise DatasetError(f"{what}: {str(path)!r} has no image files (looked for "
                           f"{', '.join(IMAGE_EXTENSIONS)})")
    for file in files:
        try:
            img = read_image(file)
        except (OSError, ValueError) as exc:  # ImageError is a ValueError
            log.warning("skipping unreadable image %r: %s", str(file), exc)
            continue
        yield to_rgb(img.unsqueeze(0))[0].permute(2, 0, 1)


def denoise_dataset(source: str | os.PathLike | torch.Tensor, size: int, channels: int = 3,
                    seed: int = 0, count: int = 512, fit: str = "crop",
                    what: str = "data") -> ImageDataset:
    """Clean training pictures for a denoiser whose crops are `size` px: an IMAGE batch or a
    folder / image file cut into full-resolution tiles (see the module docstring; `fit` says
    how a picture smaller than one tile is brought up to it), or `builtin:NAME` (`count`
    procedural pictures at `size`)."""
    if not isinstance(source, torch.Tensor) and os.fspath(source).startswith(BUILTIN_PREFIX):
        return open_dataset(os.fspath(source), size, channels=channels, seed=seed, count=count)
    tile = TILE_CONTEXT * size
    kept: list[torch.Tensor] = []
    for picture in _pictures(source, what):
        kept.extend(t.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
                    for t in _tiles(picture, tile, fit))
    if not kept:
        raise DatasetError(f"{what}: none of the pictures could be read")
    name = "images" if isinstance(source, torch.Tensor) else Path(source).name
    return ImageDataset(torch.stack(kept), name, channels, flip=True)
