"""Generate node: a trained generator and a seed -> images."""
from __future__ import annotations

from .. import gan_core
from . import bridge, widgets
from .bridge import io

CHUNK = 64


class GANAtelierGenerate(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GANAtelierGenerate",
            display_name="Generate (GAN Atelier)",
            category="GAN Atelier/generate",
            description="Generate images from a trained GAN. Image i uses seed + i, and a seed "
                        "always gives the same image, whatever the count.",
            inputs=[
                widgets.model(),
                widgets.seed("seed of the first image; image i uses seed + i"),
                io.Int.Input("count", default=16, min=1, max=4096,
                             tooltip="how many images to generate"),
                widgets.truncation("below 1 pulls latents toward the average: more typical, "
                                   "less varied images; 1 = no truncation"),
                widgets.class_index(),
                widgets.camera("camera_x", "moves the view right by this share of the image "
                               "width (0.25 = a quarter)", 4.0, 0.01),
                widgets.camera("camera_y", "moves the view down by this share of the image "
                               "height", 4.0, 0.01),
                widgets.camera("camera_rotate", "turns the view by this many degrees "
                               "(counter-clockwise)", 360.0, 1.0),
            ],
            outputs=[io.Image.Output(display_name="images", tooltip="count images, RGB")],
        )

    @classmethod
    def execute(cls, model, seed, count, truncation, class_index=-1, camera_x=0.0, camera_y=0.0,
                camera_rotate=0.0) -> io.NodeOutput:
        if model.task != "generate":
            raise ValueError(f"model: expected a generator, got a {model.task!r} model "
                             f"({model.arch})")
        seeds = [(seed + i) % (gan_core.MAX_SEED + 1) for i in range(count)]
        camera = ((camera_x, camera_y, camera_rotate)
                  if (camera_x, camera_y, camera_rotate) != (0.0, 0.0, 0.0) else None)
        progress = bridge.Progress(count)
        # Chunks of CHUNK images: bounded activations, a cancel check and progress between
        # chunks, each written into one result batch.
        with bridge.lend_device(model) as device:
            def render(rows: range):
                bridge.check_interrupt()
                return model.generate(seeds[rows.start:rows.stop], truncation=truncation,
                                      device=device, class_index=class_index, camera=camera)
            out = gan_core.fill_batch(count, gan_core.chunks(count, CHUNK), render,
                                      after=progress.update)
        return io.NodeOutput(out)
