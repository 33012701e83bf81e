"""Style Transfer node: a style model (CycleGAN, pix2pix, fast-neural-style) applied to images."""
from __future__ import annotations

from .. import gan_core
from . import bridge, widgets
from .bridge import io


class GANAtelierStyleTransfer(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GANAtelierStyleTransfer",
            display_name="Style Transfer (GAN Atelier)",
            category="GAN Atelier/style",
            description="Apply a style model to images: one trained with Train Style, or public "
                        "CycleGAN (Monet, Van Gogh, Cezanne, Ukiyo-e...), pix2pix and "
                        "fast-neural-style (candy, mosaic, udnie...) files from models/gan. Any "
                        "image size; the result has the input's size.",
            inputs=[
                widgets.model("a style model from Load GAN Model or Train Style"),
                io.Image.Input("images", tooltip="the images to stylize (any size)"),
                widgets.strength("1 = the model's output, 0 = the input unchanged; values in "
                                 "between blend the two"),
                widgets.tile(),
                io.Combo.Input("direction", options=list(gan_core.DIRECTIONS), default="A->B",
                               tooltip="A->B: content to style (what a public file does); "
                                       "B->A: style back to content, for CycleGANs trained "
                                       "with Train Style, which hold both generators"),
            ],
            outputs=[io.Image.Output(display_name="images",
                                     tooltip="the stylized images, same size as the input")],
        )

    @classmethod
    def execute(cls, model, images, strength, tile, direction="A->B") -> io.NodeOutput:
        if model.task != "style":
            raise ValueError(f"model: expected a style model, got a {model.task!r} model "
                             f"({model.arch})")
        with bridge.lend_device(model):
            return io.NodeOutput(bridge.map_images(images, lambda img: model.stylize(
                img, strength=strength, tile=tile or None, direction=direction)))
