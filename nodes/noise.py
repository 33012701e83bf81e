"""Add Noise node: the degradations a denoiser trains against, applied to images."""
from __future__ import annotations

from .. import gan_core
from . import widgets
from .bridge import io


class GANAtelierAddNoise(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GANAtelierAddNoise",
            display_name="Add Noise (GAN Atelier)",
            category="GAN Atelier/denoise",
            description="Degrade images with a noise recipe: Gaussian, Poisson (shot), "
                        "salt-and-pepper, JPEG, film grain, blur and resolution loss, alone or "
                        "mixed. The same recipes train denoisers, so you can see what a model "
                        "learns to remove.",
            inputs=[
                io.Image.Input("images", tooltip="clean images to degrade"),
                io.String.Input("recipe", default="gaussian:25",
                                tooltip="comma-separated steps applied in order, e.g. "
                                        "gaussian:25 (sigma in 0-255 units), gaussian:5-50 (a "
                                        "range per image), poisson, saltpepper:0.02, jpeg:10-40, "
                                        "grain:12, blur:0.5-2, downscale:2; end a step with @0.5 to "
                                        "give each image a 50% chance of that step "
                                        "(jpeg:10-40@0.5)"),
                widgets.seed("the same seed gives the same noise"),
            ],
            outputs=[io.Image.Output(display_name="images",
                                     tooltip="the degraded images, same size as the input")],
        )

    @classmethod
    def validate_inputs(cls, recipe=None):
        if recipe is None:
            return True
        try:
            gan_core.parse_recipe(recipe)  # a typo is reported at queue time, naming the part
        except ValueError as exc:
            return f"recipe: {exc}"
        return True

    @classmethod
    def execute(cls, images, recipe, seed) -> io.NodeOutput:
        recipe = gan_core.parse_recipe(recipe)
        images = gan_core.check_image_batch(images, "images")
        return io.NodeOutput(gan_core.degrade(images, recipe, seed=seed))
