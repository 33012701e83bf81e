"""Conversions between ComfyUI's IMAGE layout and what networks eat, plus grids and files.

ComfyUI's IMAGE is float32 [B, H, W, C], RGB, in [0, 1]; GANs work on [B, C, H, W] in
[-1, 1]. Keeping every conversion here means there is one place to get the layout right.
"""
from __future__ import annotations

import logging
import math
import os
import re
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError

log = logging.getLogger("gan_core")


def _as_float(images: torch.Tensor, name: str) -> torch.Tensor:
    """Any float dtype -> float32; uint8 is read as 0..255 and bool as 0/1 (both -> [0, 1]).

    Other integer and complex dtypes have no agreed pixel range, so guessing would give a
    silently wrong picture (0..255 ints read as 0..1 are all white): they are refused."""
    if images.dtype == torch.float32:
        return images
    if images.is_floating_point() or images.dtype == torch.bool:
        return images.float()
    if images.dtype == torch.uint8:
        return images.float().div_(255.0)
    raise ImageError(f"{name}: expected float pixels in [0, 1] (or uint8 0..255), "
                     f"got dtype {images.dtype}")


# Rows checked per torch.isfinite call: isfinite makes a float copy and two masks of what it
# is given (86 MiB for one 2048 px image); blocks of about a million values bound that to ~6 MiB.
_FINITE_BLOCK = 1 << 20


def _is_finite(img: torch.Tensor) -> bool:
    """All values of one image [H, W, C] finite, checked in blocks of rows."""
    rows = max(1, _FINITE_BLOCK // max(1, img[0].numel()))
    return all(bool(torch.isfinite(img[r:r + rows]).all()) for r in range(0, img.shape[0], rows))


def _check_finite(images: torch.Tensor, name: str) -> None:
    """Image by image (the error says which), in blocks (temporaries stay small)."""
    for i, img in enumerate(images):
        if _is_finite(img):
            continue
        nan = int(torch.isnan(img).sum())
        inf = int(torch.isinf(img).sum())
        raise ImageError(
            f"{name}: image {i} of the batch of {len(images)} has {nan} NaN and {inf} infinite "
            f"pixel values; IMAGE pixels must be finite numbers in [0, 1]. The node that made "
            f"this batch produced invalid values; GAN Atelier does not guess what they should be."
        )


def check_image_batch(images: torch.Tensor, name: str = "images") -> torch.Tensor:
    """Validate an IMAGE tensor and return it as float32 [B, H, W, C], C in 1/3/4.

    A single image [H, W, C] gets a batch dim; uint8 (0..255) and other float dtypes are
    converted. Errors name the input: not a tensor (TypeError), wrong shape, an empty batch, no
    pixels, an unusable dtype, NaN or infinite values (ImageError, a ValueError)."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor IMAGE batch, got {type(images).__name__}")
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4 or images.shape[-1] not in (1, 3, 4):
        raise ImageError(
            f"{name}: expected an IMAGE batch shaped [B, H, W, C] with C in 1/3/4, "
            f"got shape {tuple(images.shape)}"
        )
    if images.shape[0] == 0:
        raise ImageError(f"{name}: the image batch is empty (shape {tuple(images.shape)}); "
                         "there is nothing to process")
    if images.shape[1] == 0 or images.shape[2] == 0:
        raise ImageError(f"{name}: the images have no pixels (shape {tuple(images.shape)})")
    images = _as_float(images, name)
    _check_finite(images, name)
    return images


def _check_channels(images: torch.Tensor, allowed: tuple[int, ...], what: str) -> int:
    c = images.shape[-1] if images.dim() > 0 else 0
    if images.dim() < 3 or c not in allowed:
        raise ImageError(f"{what}: expected images [..., H, W, C] with C in "
                         f"{'/'.join(map(str, allowed))}, got shape {tuple(images.shape)}")
    return c


def to_rgb(images: torch.Tensor) -> torch.Tensor:
    """[B,H,W,C] with C in 1/3/4 -> [B,H,W,3]; alpha is dropped, gray is replicated."""
    c = _check_channels(images, (1, 3, 4), "to_rgb")
    if c == 3:
        return images
    if c == 1:
        return images.expand(*images.shape[:-1], 3).contiguous()
    return images[..., :3].contiguous()


def fill_batch(total: int, groups: Iterable[range], make: Callable[[range], torch.Tensor],
               before: Callable[[], None] | None = None,
               after: Callable[[int], None] | None = None) -> torch.Tensor:
    """One result batch of `total` rows, filled group by group: `make(rows)` renders a group,
    which is written into a batch allocated at the first group (a list of parts and a final
    torch.cat would hold the whole output twice). `before()` runs before each group (a cancel
    poll, which may raise) and `after(rows done)` after it (progress). When one group covers
    everything, its result is returned as it is."""
    out: torch.Tensor | None = None
    for rows in groups:
        if before is not None:
            before()
        part = make(rows)
        if out is None:
            whole = len(part) == total
            out = part if whole else part.new_empty((total, *part.shape[1:]))
        if out is not part:
            out[rows.start:rows.start + len(part)] = part
        del part
        if after is not None:
            after(rows.stop)
    if out is None:
        raise ValueError("fill_batch: no rows to render")
    return out


def chunks(total: int, size: int) -> list[range]:
    """[0, total) in consecutive ranges of at most `size` rows."""
    step = max(1, size)
    return [range(i, min(total, i + step)) for i in range(0, total, step)]


# ITU-R BT.601 luma weights (what Pillow's "L" uses): the one definition of gray in gan_core.
LUMA = (0.299, 0.587, 0.114)


def luma_nchw(x: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] -> [B, 1, H, W] luma; a [B, 1, H, W] batch is returned as it is."""
    if x.shape[1] == 1:
        return x
    return (x * x.new_tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)


def to_gray(images: torch.Tensor) -> torch.Tensor:
    """[B,H,W,3] RGB (or RGBA: alpha ignored) -> [B,H,W,1] using ITU-R 601 luma, the weights
    Pillow's "L" uses; gray [B,H,W,1] is returned as it is."""
    if _check_channels(images, (1, 3, 4), "to_gray") == 1:
        return images
    return (images[..., :3] * images.new_tensor(LUMA)).sum(-1, keepdim=True)


def comfy_to_signed(images: torch.Tensor, channels: int = 3) -> torch.Tensor:
    """IMAGE [B,H,W,C] in [0,1] -> network input [B,channels,H,W] in [-1,1]."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    rgb = to_rgb(images)
    x = to_gray(rgb) if channels == 1 else rgb
    return x.permute(0, 3, 1, 2).mul(2.0).sub(1.0).contiguous()


def signed_to_comfy(x: torch.Tensor) -> torch.Tensor:
    """Network output [B,C,H,W] in about [-1,1] -> IMAGE [B,H,W,3] float32 in [0,1] on CPU."""
    if x.dim() != 4 or x.shape[1] not in (1, 3, 4):
        raise ImageError(f"expected network output [B, C, H, W] with C in 1/3/4, "
                         f"got shape {tuple(x.shape)}")
    img = x.detach().float().add(1.0).mul_(0.5).clamp_(0.0, 1.0).permute(0, 2, 3, 1)
    return to_rgb(img.cpu().contiguous())


def make_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 2,
              pad_value: float = 1.0) -> torch.Tensor:
    """Tile an IMAGE batch [B,H,W,C] into one IMAGE [1,H',W',C] (near-square by default)."""
    if images.dim() != 4:
        raise ImageError(f"make_grid: expected an IMAGE batch [B, H, W, C], got shape "
                         f"{tuple(images.shape)}")
    b, h, w, c = images.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(b)))
    ncol = math.ceil(b / nrow)
    grid = images.new_full((ncol * (h + pad) + pad, nrow * (w + pad) + pad, c), pad_value)
    for i in range(b):
        r, col = divmod(i, nrow)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[y:y + h, x:x + w] = images[i]
    return grid.unsqueeze(0)


def tensor_to_pil(image: torch.Tensor) -> Image.Image:
    """One image [H,W,C] or [1,H,W,C] (C 1/3/4) in [0,1] -> an 8-bit PIL image.

    For display and saving, so it never fails on values: out-of-range values are clipped, NaN
    becomes 0 and +/-inf 1/0 (a training preview must not stop a run)."""
    if image.dim() == 4:
        if image.shape[0] != 1:
            raise ImageError(f"tensor_to_pil: expected one image, got a batch of {image.shape[0]} "
                             "(make_grid turns a batch into one image)")
        image = image[0]
    c = _check_channels(image, (1, 3, 4), "tensor_to_pil")
    if image.dim() != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageError(f"tensor_to_pil: expected an image [H, W, C] with pixels, got shape "
                         f"{tuple(image.shape)}")
    img = _as_float(image.detach(), "tensor_to_pil").cpu()
    img = torch.nan_to_num(img, nan=0.0, posinf=1.0, neginf=0.0).clamp_(0.0, 1.0)
    arr = img.mul_(255.0).add_(0.5).to(torch.uint8).numpy()
    if c == 1:
        return Image.fromarray(arr[..., 0], "L")
    return Image.fromarray(arr, "RGBA" if c == 4 else "RGB")


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode in ("P", "L", "RGB") and "transparency" in img.info)


def _standard_mode(img: Image.Image) -> Image.Image:
    """Any PIL mode -> "RGB" (8 bit) or a gray "I" / "F" image (more than 8 bits), which keep
    their levels; transparency is composited onto white. Palette ("P"), bilevel ("1"), CMYK,
    YCbCr, LAB, HSV... are converted by Pillow. An unconvertible mode is a ValueError."""
    if img.mode.startswith("I;16"):
        return img.convert("I")  # same values, a mode Image.reduce and numpy both handle
    if img.mode in ("I", "F", "RGB"):
        return img
    if _has_alpha(img):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def _pil_to_array(img: Image.Image) -> np.ndarray:
    """PIL image (any mode) -> uint8 [H,W,3], or float32 [H,W] gray in [0,1] for deep images."""
    img = _standard_mode(img)
    if img.mode in ("I", "F"):
        # 16-bit (PNG, TIFF) and float grayscale: Pillow's convert("RGB") clips these to
        # 0..255, which would turn almost every pixel white. Scale them ourselves, in place.
        gray = np.array(img, dtype=np.float32)
        if img.mode == "I":
            scale = 65535.0
        else:
            scale = 1.0 if gray.size == 0 or np.nanmax(gray) <= 1.0 else 255.0
        gray /= scale
        np.nan_to_num(gray, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
        np.clip(gray, 0.0, 1.0, out=gray)
        return gray
    return np.array(img, dtype=np.uint8)


def _array_to_tensor(arr: np.ndarray) -> torch.Tensor:
    """_pil_to_array's result -> [H,W,3] float32 in [0,1], with one full-size float buffer."""
    t = torch.from_numpy(arr)
    if arr.ndim == 2:
        return t[..., None].expand(*arr.shape, 3).contiguous()
    return t.to(torch.float32).div_(255.0)


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL image (any mode) -> [H,W,3] float32 in [0,1]; alpha is composited onto white,
    16-bit and float gray keep their levels (scaled, not clipped)."""
    return _array_to_tensor(_pil_to_array(img))


def _bomb_message(path: Path, exc: Exception) -> str:
    found = re.search(r"\((\d+) pixels\)", str(exc))
    limit = Image.MAX_IMAGE_PIXELS
    shown = f"{int(found.group(1)):,} px" if found else "more pixels than allowed"
    cap = f"{2 * limit:,} px (about {math.isqrt(2 * limit):,} px square)" if limit else "?"
    return (f"image file {str(path)!r} is too large: {shown}, over Pillow's decompression-bomb "
            f"limit of {cap}, 2 x PIL.Image.MAX_IMAGE_PIXELS. It is refused before decoding, "
            f"so a small file cannot claim gigabytes. Downscale it, or raise "
            f"PIL.Image.MAX_IMAGE_PIXELS if you trust the file.")


def _open(path: Path) -> Image.Image:
    """Image.open with Pillow's errors turned into ImageError messages naming the file."""
    try:
        return Image.open(path)
    except Image.DecompressionBombError as exc:
        raise ImageError(_bomb_message(path, exc)) from None
    except UnidentifiedImageError:
        size = path.stat().st_size
        what = "it is empty (0 bytes)" if size == 0 else f"{size:,} bytes in no format it knows"
        raise ImageError(f"image file {str(path)!r} cannot be read as an image: {what}") from None


def _exif_upright(img: Image.Image, path: Path) -> None:
    """Apply the EXIF orientation in place (phone photos are stored sideways with a tag)."""
    try:
        ImageOps.exif_transpose(img, in_place=True)
    except Exception as exc:  # noqa: BLE001 - Pillow's EXIF parser raises many types
        # A damaged EXIF block must not lose the picture: use it as stored.
        log.warning("image file %r: unreadable EXIF orientation (%s); using the pixels as "
                    "stored", str(path), exc)


def read_image(path: str | os.PathLike, hint_size: int | None = None,
               keep_mode: bool = False) -> torch.Tensor:
    """One image file -> [H,W,3] float32 in [0,1]: the one reader behind the CLI, image folders
    and crop sources, so every file-reading path treats odd files the same way.

    `keep_mode` (for tools that write the picture back, like `stylize` and `denoise`): a gray
    file comes back as [H,W,1] and one with transparency as [H,W,4] (RGBA, not composited),
    so the result can be saved in the input's own mode.

    * EXIF orientation is applied (the picture is upright as a viewer shows it);
    * alpha and palette transparency are composited onto white; palette, bilevel, CMYK (JPEG,
      TIFF), YCbCr, LAB... become RGB; 16-bit and float gray keep their levels (not clipped);
    * animated files (GIF, APNG, WebP) give their first frame, and a warning says so;
    * a file over Pillow's decompression-bomb limit (2 x PIL.Image.MAX_IMAGE_PIXELS, ~179 M px)
      is refused before decoding with an ImageError naming the limit; an empty, truncated or
      unrecognised file is an ImageError naming the file.

    `hint_size` lets Pillow decode a large JPEG at reduced scale and shrinks huge images by an
    integer factor before the float conversion, keeping at least 2 x hint_size px on the short
    side, so a 6000 px photo does not cost 400 MB on the way to 64 px.
    """
    path = Path(path)
    if keep_mode:
        return _read_keeping_mode(path, hint_size)
    try:
        arr = _decode(path, hint_size)
    except (ImageError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - a decoder fed a damaged file raises any type
        if isinstance(exc, OSError) and exc.errno is not None:
            raise  # missing file, a folder, no permission: the OS's message names the path
        # Pillow's parsers raise OSError, SyntaxError, ValueError, EOFError, struct.error...
        # on damaged files; whatever the type, the file cannot be used, and the message says
        # which file and what the decoder found.
        raise ImageError(f"image file {str(path)!r} is truncated or corrupt: "
                         f"{type(exc).__name__}: {exc}") from None
    # The file's decoded pixels are freed before the float copy is made.
    return _array_to_tensor(arr)


def _decode(path: Path, hint_size: int | None) -> np.ndarray:
    """read_image's work up to the pixel array (uint8 RGB, or float gray for deep images)."""
    with _open(path) as img:
        frames = int(getattr(img, "n_frames", 1) or 1)
        if frames > 1:
            log.warning("image file %r is animated (%s, %d frames); using its first frame only",
                        str(path), img.format, frames)
        if hint_size and img.format == "JPEG":
            img.draft("RGB", (hint_size * 2, hint_size * 2))
        img.load()
        _exif_upright(img, path)
        try:
            std = _standard_mode(img)
        except ValueError as exc:
            raise ImageError(f"image file {str(path)!r}: cannot convert its mode {img.mode!r} "
                             f"to RGB ({exc})") from None
        if hint_size:
            factor = min(std.size) // (hint_size * 2)
            if factor >= 2:
                std = std.reduce(factor)
        return _pil_to_array(std)


def _read_keeping_mode(path: Path, hint_size: int | None) -> torch.Tensor:
    """read_image(keep_mode=True): RGB as usual, gray as one channel, alpha kept (RGBA with
    the colour under it, not composited)."""
    with _open(path) as img:
        mode, transparent = img.mode, _has_alpha(img)
        if transparent:
            img.load()
            _exif_upright(img, path)
            rgba = np.array(img.convert("RGBA"), dtype=np.uint8)
    if transparent:
        return torch.from_numpy(rgba).float().div_(255.0)
    rgb = read_image(path, hint_size)
    if mode in ("L", "I", "F", "1") or mode.startswith("I;16"):
        return rgb[..., :1].contiguous()
    return rgb


def save_image(image: torch.Tensor, path: str | os.PathLike) -> Path:
    """Write one IMAGE (or a [1,H,W,C] grid) as PNG/JPEG/WebP by extension."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensor_to_pil(image).save(path)
    return path
