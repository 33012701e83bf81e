"""Node inputs that several nodes share, defined once (names, ranges, tooltips)."""
from __future__ import annotations

from .. import gan_core
from .bridge import GAN_MODEL, io, model_names

NONE = "none"
# The augmentation widget of the training nodes ("auto": each family's usual policy).
AUGMENT_CHOICES = ["auto", "none", "translation", "color,translation", "color,translation,cutout"]


def seed(tooltip: str, id: str = "seed", default: int = 0, control: bool = True,
         optional: bool = False) -> io.Int.Input:
    """A seed over ComfyUI's whole range (0..2^64-1). `control` adds ComfyUI's
    fixed / increment / randomize widget; the frontend sets a new node's to "randomize", which
    is right for generators and wrong for trainers (web/js keeps a new trainer's "fixed")."""
    return io.Int.Input(id, default=default, min=0, max=gan_core.MAX_SEED,
                        control_after_generate=True if control else None, tooltip=tooltip,
                        optional=optional)


def model(tooltip: str = "a generator from Train or Load GAN Model") -> io.Custom:
    return GAN_MODEL.Input("model", tooltip=tooltip)


def class_index() -> io.Int.Input:
    """The class of a conditional generator (NVIDIA models trained with labels)."""
    return io.Int.Input("class_index", default=-1, min=-1, max=100_000, optional=True,
                        tooltip="the class to draw with a conditional model (0, 1, ...; its "
                                "Load GAN Model info lists how many); -1 for unconditional "
                                "models")


def camera(name: str, what: str, limit: float, step: float) -> io.Float.Input:
    """One StyleGAN3 camera setting (other generators have no camera and must leave it 0)."""
    return io.Float.Input(name, default=0.0, min=-limit, max=limit, step=step, optional=True,
                          tooltip=f"StyleGAN3 only: {what}; 0 for other models")


def truncation(tooltip: str, optional: bool = False) -> io.Float.Input:
    return io.Float.Input("truncation", default=1.0, min=0.0, max=2.0, step=0.05,
                          tooltip=tooltip, optional=optional)


def tile() -> io.Int.Input:
    return io.Int.Input("tile", default=0, min=0, max=8192, step=64,
                        tooltip="process large images in tiles of this size to bound memory "
                                "(0 = whole images; images over 4096 px a side are always "
                                "tiled, in 512 px tiles, or yours up to 1024)")


def strength(tooltip: str) -> io.Float.Input:
    return io.Float.Input("strength", default=1.0, min=0.0, max=1.0, step=0.05, tooltip=tooltip)


def preview_every(default: int = 50) -> io.Int.Input:
    return io.Int.Input("preview_every", default=default, min=0, max=100_000,
                        tooltip="steps between preview grids on the node (0 = end only)")


def checkpoint_every(default: int = 100) -> io.Int.Input:
    return io.Int.Input("checkpoint_every", default=default, min=0, max=100_000,
                        tooltip="steps between checkpoints in models/gan (0 = end and cancel "
                                "only)")


def filename_prefix(default: str) -> io.String.Input:
    return io.String.Input("filename_prefix", default=default,
                           tooltip="checkpoint name under models/gan; a counter is added "
                                   "(prefix_00001_.safetensors)")


def resume() -> io.Combo.Input:
    return io.Combo.Input("resume", options=[NONE] + model_names(), default=NONE, optional=True,
                          tooltip="continue a run from one of its checkpoints in models/gan")


def training_outputs(model_tip: str, loss_tip: str, preview_tip: str) -> list:
    return [GAN_MODEL.Output(display_name="model", tooltip=model_tip),
            io.LossMap.Output(display_name="loss", tooltip=loss_tip),
            io.Image.Output(display_name="preview", tooltip=preview_tip)]
