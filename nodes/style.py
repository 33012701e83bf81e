"""Style Transfer node: a style model (CycleGAN, pix2pix, fast-neural-style) applied to images."""
from __future__ import annotations

from .. import gan_core
from . import bridge


class GANAtelierStyleTransfer:
    DESCRIPTION = ("Apply a style model to images: one trained with Train Style, or public "
                   "CycleGAN (Monet, Van Gogh, Cezanne, Ukiyo-e...), pix2pix and "
                   "fast-neural-style (candy, mosaic, udnie...) files from models/gan. Any image "
                   "size; the result has the input's size.")
    CATEGORY = "GAN Atelier/style"
    FUNCTION = "stylize"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_TOOLTIPS = ("the stylized images, same size as the input",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("GAN_MODEL", {"tooltip": "a style model from Load GAN Model"}),
            "images": ("IMAGE", {"tooltip": "the images to stylize (any size)"}),
            "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.05,
                         "tooltip": "1 = the model's output, 0 = the input unchanged; values in "
                                    "between blend the two"}),
            "tile": ("INT", {"default": 0, "min": 0, "max": 8192, "step": 64,
                     "tooltip": "process large images in tiles of this size to bound memory "
                                "(0 = whole images; images over 4096 px a side are always "
                                "tiled, in 512 px tiles)"}),
            "direction": (list(gan_core.DIRECTIONS), {"default": "A->B",
                          "tooltip": "A->B: content to style (what a public file does); B->A: "
                                     "style back to content, for CycleGANs trained with Train "
                                     "Style, which hold both generators"}),
        }}

    def stylize(self, model, images, strength, tile, direction="A->B"):
        if model.task != "style":
            raise ValueError(f"model: expected a style model, got a {model.task!r} model ({model.arch})")
        with bridge.lend_device(model):
            return (bridge.map_images(images, lambda img: model.stylize(
                img, strength=strength, tile=tile or None, direction=direction)),)
