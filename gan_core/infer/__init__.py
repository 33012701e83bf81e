"""Inference: image-to-image (stylize, denoise) with one padding rule, and the tiler."""
from .denoise import DEFAULT_SIGMA, denoise_images
from .stylize import stylize_images
from .tiling import AUTO_TILE, MAX_TILE, MAX_UNTILED_SIDE, plan_tile, tiled_apply

__all__ = ["AUTO_TILE", "DEFAULT_SIGMA", "MAX_TILE", "MAX_UNTILED_SIDE", "denoise_images", "plan_tile",
           "stylize_images", "tiled_apply"]
