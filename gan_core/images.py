"""Conversions between ComfyUI's IMAGE layout and what networks eat, plus grids and files.

ComfyUI's IMAGE is float32 [B, H, W, C], RGB, in [0, 1]; GANs work on [B, C, H, W] in
[-1, 1]. Keeping every conversion here means there is one place to get the layout right.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def check_image_batch(images: torch.Tensor, name: str = "images") -> torch.Tensor:
    """Validate an IMAGE tensor and return it as float32, with errors that name the input."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor IMAGE batch, got {type(images).__name__}")
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4 or images.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"{name}: expected an IMAGE batch shaped [B, H, W, C] with C in 1/3/4, "
            f"got shape {tuple(images.shape)}"
        )
    if images.shape[0] == 0:
        raise ValueError(f"{name}: the image batch is empty")
    images = images.float()
    if not torch.isfinite(images).all():
        raise ValueError(f"{name}: the image batch contains NaN or infinite pixel values")
    return images


def to_rgb(images: torch.Tensor) -> torch.Tensor:
    """[B,H,W,C] with C in 1/3/4 -> [B,H,W,3]; alpha is dropped, gray is replicated."""
    c = images.shape[-1]
    if c == 3:
        return images
    if c == 1:
        return images.expand(*images.shape[:-1], 3).contiguous()
    return images[..., :3].contiguous()


def to_gray(images: torch.Tensor) -> torch.Tensor:
    """[B,H,W,3] RGB -> [B,H,W,1] using ITU-R 601 luma, the weights Pillow's "L" uses."""
    w = images.new_tensor([0.299, 0.587, 0.114])
    return (images[..., :3] * w).sum(-1, keepdim=True)


def comfy_to_signed(images: torch.Tensor, channels: int = 3) -> torch.Tensor:
    """IMAGE [B,H,W,C] in [0,1] -> network input [B,channels,H,W] in [-1,1]."""
    rgb = to_rgb(images)
    x = to_gray(rgb) if channels == 1 else rgb
    return x.permute(0, 3, 1, 2).mul(2.0).sub(1.0).contiguous()


def signed_to_comfy(x: torch.Tensor) -> torch.Tensor:
    """Network output [B,C,H,W] in about [-1,1] -> IMAGE [B,H,W,3] float32 in [0,1] on CPU."""
    img = x.detach().float().add(1.0).mul(0.5).clamp_(0.0, 1.0).permute(0, 2, 3, 1)
    return to_rgb(img.cpu().contiguous())


def make_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 2,
              pad_value: float = 1.0) -> torch.Tensor:
    """Tile an IMAGE batch [B,H,W,C] into one IMAGE [1,H',W',C] (near-square by default)."""
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
    """One image [H,W,C] or [1,H,W,C] in [0,1] -> an 8-bit PIL image."""
    if image.dim() == 4:
        image = image[0]
    arr = (image.detach().float().clamp(0, 1).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
    if arr.shape[-1] == 1:
        return Image.fromarray(arr[..., 0], "L")
    return Image.fromarray(arr, "RGBA" if arr.shape[-1] == 4 else "RGB")


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL image (any mode) -> [H,W,3] float32 in [0,1]; alpha is composited onto white."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        # 16-bit (PNG, TIFF) and float grayscale: Pillow's convert("RGB") clips these to
        # 0..255, which would turn almost every pixel white. Scale them ourselves.
        gray = np.asarray(img, dtype=np.float32)
        scale = 1.0 if img.mode == "F" and gray.max(initial=0.0) <= 1.0 else (
            255.0 if img.mode == "F" else 65535.0)
        gray = np.clip(gray / scale, 0.0, 1.0)
        return torch.from_numpy(np.repeat(gray[..., None], 3, axis=-1))
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr.copy())


def save_image(image: torch.Tensor, path: str | os.PathLike) -> Path:
    """Write one IMAGE (or a [1,H,W,C] grid) as PNG/JPEG/WebP by extension."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensor_to_pil(image).save(path)
    return path
