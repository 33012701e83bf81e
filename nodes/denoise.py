"""Denoise node: a denoising model (DnCNN, DRUNet) applied to images."""
from __future__ import annotations

from . import bridge


class GANAtelierDenoise:
    DESCRIPTION = ("Remove noise from images with a denoising model from models/gan (public "
                   "KAIR DnCNN or DPIR DRUNet files). Any image size; large images are tiled; "
                   "alpha passes through untouched.")
    CATEGORY = "GAN Atelier/denoise"
    FUNCTION = "denoise"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_TOOLTIPS = ("the denoised images, same size as the input",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("GAN_MODEL", {"tooltip": "a denoising model from Load GAN Model"}),
            "images": ("IMAGE", {"tooltip": "the noisy images (any size)"}),
            "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.05,
                         "tooltip": "1 = fully denoised, 0 = the input unchanged; in between "
                                    "keeps some grain"}),
            "sigma": ("FLOAT", {"default": 15.0, "min": 0.0, "max": 255.0, "step": 1.0,
                      "tooltip": "noise level in 0-255 units for models that take one "
                                 "(DRUNet); blind models (DnCNN) ignore it"}),
            "tile": ("INT", {"default": 0, "min": 0, "max": 8192, "step": 64,
                     "tooltip": "process large images in tiles of this size to bound memory "
                                "(0 = whole images; images over 4096 px a side are always "
                                "tiled, in 512 px tiles)"}),
        }}

    def denoise(self, model, images, strength, sigma, tile):
        if model.task != "denoise":
            raise ValueError(f"model: expected a denoising model, got a {model.task!r} model "
                             f"({model.arch})")
        with bridge.lend_device(model):
            return (bridge.map_images(images, lambda img: model.denoise(
                img, strength=strength, sigma=sigma, tile=tile or None)),)
