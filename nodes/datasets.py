"""Example dataset node: the built-in procedural art as an IMAGE batch."""
from __future__ import annotations

from .. import gan_core


class GANAtelierExampleDataset:
    DESCRIPTION = ("Procedural art images (Mondrian-like grids, op-art rings, colour fields, ...) "
                   "to train on or look at, with no files needed. Deterministic per seed.")
    CATEGORY = "GAN Atelier/data"
    FUNCTION = "make"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_TOOLTIPS = ("count images, RGB, resolution x resolution",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "style": (list(gan_core.BUILTIN_DATASETS), {"tooltip": "which procedural art style"}),
            "count": ("INT", {"default": 64, "min": 1, "max": 10_000, "tooltip": "number of images"}),
            "resolution": ("INT", {"default": 64, "min": 8, "max": 1024, "step": 8,
                           "tooltip": "width and height in px"}),
            "seed": ("INT", {"default": 0, "min": 0, "max": gan_core.MAX_SEED,
                     "control_after_generate": True,
                     "tooltip": "the same seed gives the same images"}),
        }}

    def make(self, style, count, resolution, seed):
        return (gan_core.make_builtin(style, count, resolution, seed=seed),)
