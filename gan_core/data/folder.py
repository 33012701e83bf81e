"""Reading a folder of the user's images into a training cache, skipping what cannot be read."""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import torch

from ..errors import DatasetError
from ..images import read_image
from .resize import fit_square

log = logging.getLogger("gan_core")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def list_image_files(folder: str | os.PathLike) -> list[Path]:
    """Image files directly inside `folder` and its subfolders, in a stable order.

    Every file listed resolves inside the folder: a symlink (or a link inside a linked
    subfolder) leading elsewhere, e.g. to a picture outside ComfyUI's input directory, is
    skipped with a warning naming it, so it never reaches a dataset, a preview or a trained
    model. Links that stay inside the folder are followed."""
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"dataset folder {str(root)!r} does not exist or is not a folder")
    real_root = Path(os.path.realpath(root))
    files = []
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() not in IMAGE_EXTENSIONS or not p.is_file():
            continue
        real = Path(os.path.realpath(p))
        if real_root not in real.parents:
            msg = (f"skipping {str(p)!r}: it is a link to {str(real)!r}, outside the dataset "
                   f"folder {str(root)!r}")
            log.warning(msg)
            warnings.warn(msg, stacklevel=2)
            continue
        files.append(p)
    return files


def load_image_folder(folder: str | os.PathLike, size: int, fit: str = "crop") -> torch.Tensor:
    """Every readable image in `folder`, fitted to size x size, as uint8 [N,3,size,size].

    Unreadable files are skipped with a warning naming each; nothing readable is an error.
    """
    files = list_image_files(folder)
    if not files:
        raise DatasetError(
            f"dataset folder {str(folder)!r} has no image files "
            f"(looked for {', '.join(IMAGE_EXTENSIONS)})"
        )
    out: list[torch.Tensor] = []
    skipped: list[str] = []
    for path in files:
        try:
            img = read_image(path, hint_size=size)
        except (OSError, ValueError, SyntaxError) as exc:  # ImageError is a ValueError
            skipped.append(path.name)
            msg = f"skipping unreadable image {str(path)!r}: {exc}"
            log.warning(msg)
            warnings.warn(msg, stacklevel=2)
            continue
        x = img.permute(2, 0, 1).unsqueeze(0)
        out.append(fit_square(x, size, fit).mul(255.0).round_().to(torch.uint8))
    if not out:
        raise DatasetError(
            f"dataset folder {str(folder)!r}: none of its {len(files)} image files could be "
            f"read (skipped: {', '.join(skipped[:10])}{' ...' if len(skipped) > 10 else ''})"
        )
    return torch.cat(out)
