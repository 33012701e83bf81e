"""Image grid node: a batch -> one contact sheet, to save or preview a run at a glance."""
from __future__ import annotations

from .. import gan_core
from .bridge import io


class GANAtelierImageGrid(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GANAtelierImageGrid",
            display_name="Image Grid (GAN Atelier)",
            category="GAN Atelier/image",
            description="Arrange a batch of images into one grid image (a contact sheet).",
            inputs=[
                io.Image.Input("images", tooltip="the batch to arrange (all the same size)"),
                io.Int.Input("columns", default=0, min=0, max=256,
                             tooltip="images per row; 0 = as square as possible"),
                io.Int.Input("padding", default=2, min=0, max=64,
                             tooltip="white border between images, in px"),
            ],
            outputs=[io.Image.Output(display_name="grid",
                                     tooltip="one image holding the whole batch")],
        )

    @classmethod
    def execute(cls, images, columns, padding) -> io.NodeOutput:
        images = gan_core.check_image_batch(images, "images")
        return io.NodeOutput(gan_core.make_grid(images, nrow=columns or None, pad=padding))
