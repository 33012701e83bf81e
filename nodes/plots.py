"""Plot GAN Losses node: a training run's curves (D, G, their parts, ADA p) as an IMAGE."""
from __future__ import annotations

from .. import gan_core
from .bridge import io


class GANAtelierPlotLosses(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GANAtelierPlotLosses",
            display_name="Plot GAN Losses (GAN Atelier)",
            category="GAN Atelier/train",
            description="Draw a training run's loss curves as an image: the discriminator's and "
                        "the generator's losses and their parts on one axis (smoothed, the raw "
                        "values faintly behind), ADA's augmentation strength p on a 0-1 axis on "
                        "the right. Connect the loss output of Train GAN, Train Style or Train "
                        "Denoiser.",
            inputs=[
                io.LossMap.Input("loss", tooltip="the loss output of a GAN Atelier trainer"),
                io.String.Input("curves", default="", optional=True,
                                tooltip="which curves to draw, comma-separated (e.g. "
                                        "loss_d,loss_g); empty = every loss and ADA p (not "
                                        "the duplicate 'loss', nor lr / psnr, which "
                                        "would flatten the losses; name them to see them)"),
                io.Float.Input("smoothing", default=0.02, min=0.0, max=0.5, step=0.01,
                               optional=True,
                               tooltip="moving-average window as a share of the run (0 = raw "
                                       "values only)"),
                io.Int.Input("width", default=768, min=160, max=4096, step=16, optional=True,
                             tooltip="image width in px"),
                io.Int.Input("height", default=384, min=120, max=4096, step=16, optional=True,
                             tooltip="image height in px"),
            ],
            outputs=[io.Image.Output(display_name="plot", tooltip="the curves as one image")],
        )

    @classmethod
    def execute(cls, loss, curves="", smoothing=0.02, width=768, height=384) -> io.NodeOutput:
        if not isinstance(loss, dict):
            raise ValueError(f"loss: expected a loss map (a dict of curves), got "
                             f"{type(loss).__name__}")
        wanted = [c.strip() for c in (curves or "").split(",") if c.strip()]
        series = gan_core.pick_curves(loss, wanted)
        return io.NodeOutput(gan_core.plot_losses(series, width, height, smoothing))
