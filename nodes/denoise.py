"""Denoise node: a denoising model (DnCNN, DRUNet) applied to images."""
from __future__ import annotations

import torch

from .. import gan_core
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
                                "(0 = whole images)"}),
        }}

    def denoise(self, model, images, strength, sigma, tile):
        if model.task != "denoise":
            raise ValueError(f"model: expected a denoising model, got a {model.task!r} model "
                             f"({model.arch})")
        images = gan_core.check_image_batch(images, "images")
        model.to(bridge.device())
        progress = bridge.Progress(len(images))
        out = []
        for i in range(len(images)):
            bridge.check_interrupt()
            out.append(model.denoise(images[i:i + 1], strength=strength, sigma=sigma,
                                     tile=tile or None))
            progress.update(i + 1)
        bridge.soft_empty_cache()
        return (torch.cat(out),)
