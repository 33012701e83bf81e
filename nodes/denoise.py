"""Denoise node: a denoising model (DnCNN, DRUNet, ours) applied to images."""
from __future__ import annotations

from . import bridge, widgets
from .bridge import io


class GANAtelierDenoise(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GANAtelierDenoise",
            display_name="Denoise (GAN Atelier)",
            category="GAN Atelier/denoise",
            description="Remove noise from images with a denoising model: one trained with "
                        "Train Denoiser, or public KAIR DnCNN / DPIR DRUNet files from "
                        "models/gan. Any image size; large images are tiled; alpha passes "
                        "through untouched.",
            inputs=[
                widgets.model("a denoising model from Load GAN Model or Train Denoiser"),
                io.Image.Input("images", tooltip="the noisy images (any size)"),
                widgets.strength("1 = fully denoised, 0 = the input unchanged; in between "
                                 "keeps some grain"),
                io.Float.Input("sigma", default=15.0, min=0.0, max=255.0, step=1.0,
                               tooltip="noise level in 0-255 units for models that take one "
                                       "(DRUNet, ours with a noise-level input); blind models "
                                       "(DnCNN) ignore it"),
                widgets.tile(),
            ],
            outputs=[io.Image.Output(display_name="images",
                                     tooltip="the denoised images, same size as the input")],
        )

    @classmethod
    def execute(cls, model, images, strength, sigma, tile) -> io.NodeOutput:
        if model.task != "denoise":
            raise ValueError(f"model: expected a denoising model, got a {model.task!r} model "
                             f"({model.arch})")
        with bridge.lend_device(model):
            return io.NodeOutput(bridge.map_images(images, lambda img: model.denoise(
                img, strength=strength, sigma=sigma, tile=tile or None)))
