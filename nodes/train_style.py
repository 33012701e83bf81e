"""Train Style node: content and style pictures in (one painting is enough); a CycleGAN, its
losses and the last (content | stylized) preview out. The loop itself is gan_core.train_style;
what the pictures become (crops at many scales) is gan_core.style_source, as for the CLI."""
from __future__ import annotations

from .. import gan_core
from . import bridge, widgets
from .bridge import io, ui
from .training_common import files_changed_key, load_resume, loss_map, queue_checks, run_training
from .widgets import AUGMENT_CHOICES, NONE


def _source(images, folder: str, builtin: str, size: int, seed: int, side: str):
    """IMAGE input, else a folder (or one image file) inside ComfyUI's input directory, else
    the built-in set."""
    if images is not None:
        return gan_core.style_source(images, side, size, what=f"{side}_images")
    if folder.strip():
        path = gan_core.safe_join(bridge.folder_paths().get_input_directory(), folder.strip(),
                                  f"{side}_folder")
        return gan_core.style_source(path, side, size, what=f"{side}_folder")
    return gan_core.style_source(gan_core.BUILTIN_PREFIX + builtin, side, size, seed=seed,
                                 what=f"{side}_builtin")


class GANAtelierTrainStyle(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GANAtelierTrainStyle",
            display_name="Train Style (GAN Atelier)",
            category="GAN Atelier/style",
            description=(
                "Train a style of your own: a CycleGAN learns to turn content pictures (photos, "
                "renders, your images) into the look of style pictures (paintings) and back, "
                "without paired examples. One painting is enough: it is cut into crops at many "
                "scales. With nothing connected it trains on built-in pictures and a built-in "
                "swirling painting. Shows a live preview (content | stylized), which stays on "
                "the node, can be cancelled at any time (a checkpoint is saved first) and "
                "writes checkpoints to models/gan. Apply the result with Style Transfer "
                "(A->B = content to style)."),
            inputs=[
                io.Combo.Input("content_builtin", options=list(gan_core.BUILTIN_DATASETS),
                               default="blobs",
                               tooltip="procedural content pictures used when neither "
                                       "content_images nor content_folder is given"),
                io.Combo.Input("style_builtin", options=list(gan_core.BUILTIN_DATASETS),
                               default="painting",
                               tooltip="procedural painting used as the style when neither "
                                       "style_images nor style_folder is given"),
                io.Int.Input("resolution", default=96, min=16, max=512, step=4,
                             tooltip="training crop size in px (a multiple of 4); the trained "
                                     "model stylizes any size. 96-128 on a CPU, 256 on a GPU"),
                io.Int.Input("width", default=16, min=4, max=128, step=4,
                             tooltip="generator width (ngf; the discriminator gets twice it): "
                                     "16 trains in minutes on a CPU, 64 is the original's"),
                io.Int.Input("blocks", default=6, min=0, max=12,
                             tooltip="residual blocks of the generator: 6 (the original's for "
                                     "128 px) or 9 (256 px)"),
                io.Int.Input("steps", default=600, min=1, max=1_000_000,
                             tooltip="total training steps; the learning rate falls linearly to "
                                     "0 over the second half. A resumed run continues up to "
                                     "this count"),
                io.Int.Input("batch_size", default=1, min=1, max=64,
                             tooltip="crop pairs per step (the original uses 1)"),
                io.Float.Input("learning_rate", default=2e-4, min=1e-6, max=0.1, step=1e-5,
                               round=False,
                               tooltip="Adam learning rate of generators and discriminators"),
                io.Float.Input("cycle_weight", default=10.0, min=0.0, max=100.0, step=0.5,
                               tooltip="how strongly a stylized picture must convert back to "
                                       "its original: higher keeps more of the content"),
                io.Float.Input("identity_weight", default=0.5, min=0.0, max=10.0, step=0.05,
                               tooltip="times cycle_weight: keeps colours when the input "
                                       "already looks like the target (0 = off)"),
                io.Combo.Input("augmentation", options=AUGMENT_CHOICES, default="none",
                               tooltip="DiffAugment on everything the discriminators see; helps "
                                       "with very few pictures"),
                widgets.seed("seeds initial weights, crops and the image pool: the same seed "
                             "repeats the same run (a new node keeps it fixed)"),
                widgets.preview_every(),
                widgets.checkpoint_every(),
                widgets.filename_prefix("gan_atelier/style"),
                io.Image.Input("content_images", optional=True,
                               tooltip="content pictures (domain A), any size; takes precedence "
                                       "over content_folder"),
                io.Image.Input("style_images", optional=True,
                               tooltip="style pictures (domain B): one painting is enough; "
                                       "takes precedence over style_folder"),
                io.String.Input("content_folder", default="", optional=True,
                                tooltip="a folder (or one image file) inside ComfyUI's input "
                                        "directory"),
                io.String.Input("style_folder", default="", optional=True,
                                tooltip="a folder of paintings (or one painting file) inside "
                                        "ComfyUI's input directory; sizes may differ"),
                widgets.resume(),
            ],
            outputs=widgets.training_outputs(
                "the trained CycleGAN (both directions); its checkpoint is in models/gan",
                "per-step generator loss as {'loss': [...]} for Plot Loss Graph, with the "
                "parts by name for Plot GAN Losses",
                "the last preview: rows of content | stylized"),
        )

    @classmethod
    def validate_inputs(cls, content_folder="", style_folder="", resume=NONE):
        # no **kwargs: ComfyUI would then skip its range and option checks for every input
        return bridge.widget_errors(cls, resume=resume) or queue_checks("style", resume=resume,
                            folders={"content_folder": content_folder, "style_folder": style_folder})

    @classmethod
    def fingerprint_inputs(cls, content_folder: str = "", style_folder: str = "",
                           resume: str = NONE, **_):
        """Re-run when a picture folder or the resume file changes on disk."""
        return files_changed_key(content_folder, resume) + files_changed_key(style_folder)

    @classmethod
    def execute(cls, content_builtin, style_builtin, resolution, width, blocks, steps,
                batch_size, learning_rate, cycle_weight, identity_weight, augmentation, seed,
                preview_every, checkpoint_every, filename_prefix, content_images=None,
                style_images=None, content_folder="", style_folder="",
                resume=NONE) -> io.NodeOutput:
        resume_model = load_resume(resume, "style")
        saved = resume_model.resume.train_config if resume_model and resume_model.resume else {}
        size = int(saved.get("size", resolution))
        config = gan_core.StyleTrainConfig(
            size=size, steps=steps, batch=batch_size, lr=learning_rate,
            cycle_weight=cycle_weight, identity_weight=identity_weight,
            augment="" if augmentation == "none" else augmentation, seed=seed,
            preview_every=preview_every, checkpoint_every=checkpoint_every,
            device=str(bridge.device()),
            model={"ngf": width, "ndf": 2 * width, "n_blocks": blocks},
        ).validate()
        content = _source(content_images, content_folder or "", content_builtin, size, seed,
                          "content")
        style = _source(style_images, style_folder or "", style_builtin, size, seed, "style")
        model, grid = run_training(
            lambda out, callbacks: gan_core.train_style(config, content, style, out=out,
                                                        resume=resume_model, callbacks=callbacks),
            filename_prefix, steps)
        history = {k: v for k, v in model.resume.history.items() if k != "lr"}
        return io.NodeOutput(model, loss_map(history, "loss_g"), grid,
                             ui=ui.PreviewImage(grid, cls=cls) if grid is not None else None)
