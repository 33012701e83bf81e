"""Add Noise node: the degradations a denoiser trains against, applied to images."""
from __future__ import annotations

from .. import gan_core


class GANAtelierAddNoise:
    DESCRIPTION = ("Degrade images with a noise recipe: Gaussian, Poisson (shot), salt-and-pepper, "
                   "JPEG, film grain, blur and resolution loss, alone or mixed. The same recipes "
                   "train denoisers, so you can see what a model learns to remove.")
    CATEGORY = "GAN Atelier/denoise"
    FUNCTION = "add_noise"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_TOOLTIPS = ("the degraded images, same size as the input",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "clean images to degrade"}),
            "recipe": ("STRING", {"default": "gaussian:25",
                       "tooltip": "comma-separated steps applied in order, e.g. gaussian:25 "
                                  "(sigma in 0-255 units), gaussian:5-50 (a range per image), "
                                  "poisson, saltpepper:0.02, jpeg:10-40, grain:12, blur:0.5-2, "
                                  "downscale:2; add @0.5 to apply a step to half the images"}),
            "seed": ("INT", {"default": 0, "min": 0, "max": gan_core.MAX_SEED,
                     "control_after_generate": True,
                     "tooltip": "the same seed gives the same noise"}),
        }}

    def add_noise(self, images, recipe, seed):
        recipe = gan_core.parse_recipe(recipe)  # a typo fails here, naming the bad part
        images = gan_core.check_image_batch(images, "images")
        return (gan_core.degrade(images, recipe, seed=seed),)
