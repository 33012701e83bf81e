"""Example dataset node: the built-in procedural art as an IMAGE batch."""
from __future__ import annotations

from .. import gan_core
from . import widgets
from .bridge import io


class GANAtelierExampleDataset(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GANAtelierExampleDataset",
            display_name="Example Dataset (GAN Atelier)",
            category="GAN Atelier/data",
            description="Procedural art images (Mondrian-like grids, op-art rings, colour "
                        "fields, brush-stroke paintings, ...) to train on or look at, with no "
                        "files needed. Deterministic per seed.",
            inputs=[
                io.Combo.Input("style", options=list(gan_core.BUILTIN_DATASETS),
                               tooltip="which procedural art style"),
                io.Int.Input("count", default=64, min=1, max=10_000, tooltip="number of images"),
                io.Int.Input("resolution", default=64, min=8, max=1024, step=8,
                             tooltip="width and height in px"),
                widgets.seed("the same seed gives the same images (a new node keeps it fixed: "
                             "it feeds trainers, which should not retrain on every queue)"),
            ],
            outputs=[io.Image.Output(display_name="images",
                                     tooltip="count images, RGB, resolution x resolution")],
        )

    @classmethod
    def execute(cls, style, count, resolution, seed) -> io.NodeOutput:
        return io.NodeOutput(gan_core.make_builtin(style, count, resolution, seed=seed))
