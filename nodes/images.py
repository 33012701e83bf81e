"""Image grid node: a batch -> one contact sheet, to save or preview a run at a glance."""
from __future__ import annotations

from .. import gan_core


class GANAtelierImageGrid:
    DESCRIPTION = "Arrange a batch of images into one grid image (a contact sheet)."
    CATEGORY = "GAN Atelier/image"
    FUNCTION = "grid"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("grid",)
    OUTPUT_TOOLTIPS = ("one image holding the whole batch",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "the batch to arrange (all the same size)"}),
            "columns": ("INT", {"default": 0, "min": 0, "max": 256,
                        "tooltip": "images per row; 0 = as square as possible"}),
            "padding": ("INT", {"default": 2, "min": 0, "max": 64,
                        "tooltip": "white border between images, in px"}),
        }}

    def grid(self, images, columns, padding):
        images = gan_core.check_image_batch(images, "images")
        return (gan_core.make_grid(images, nrow=columns or None, pad=padding),)
