"""Train GAN node: images, a folder or a built-in dataset in; a trained GAN, its losses and the
last preview grid out. The loop itself is gan_core.train."""
from __future__ import annotations

from .. import gan_core
from . import bridge, widgets
from .bridge import io, ui
from .training_common import files_changed_key, load_resume, loss_map, queue_checks, run_training
from .widgets import AUGMENT_CHOICES, NONE

DEFAULT_ARCH = gan_core.default_arch("gan")


def _families(what) -> str:
    """'a: ...; b: ...' over the families the GAN trainer trains, for a tooltip."""
    return "; ".join(f"{a}: {what(gan_core.get_arch(a))}" for a in gan_core.list_archs(trainer="gan"))


def _profile_value(key: str, fallback: str):
    return lambda spec: spec.training.profile("cpu").get(key, fallback)


def augment_policy(arch: str, choice: str) -> str:
    """The DiffAugment policy for the widget value ("auto" -> the family's usual one, from its
    "cpu" profile: FastGAN's original trains with color,translation, the others with none)."""
    if choice == "auto":
        return gan_core.get_arch(arch).training.profile("cpu").get("augment", "")
    return "" if choice == "none" else choice


def _width_config(arch: str, width: int) -> dict:
    """The node's width as the family's width fields (ngf = ndf), if it has any."""
    return {f: width for f in gan_core.get_arch(arch).training.width_fields}


def _dataset(images, folder: str, builtin: str, size: int, seed: int, fit: str, flip: bool):
    if images is not None:
        return gan_core.from_images(images, size, fit=fit, flip=flip, name="images")
    if folder.strip():
        return gan_core.open_dataset(bridge.input_subfolder(folder.strip(), "folder"), size,
                                     fit=fit, flip=flip)
    return gan_core.open_dataset(gan_core.BUILTIN_PREFIX + builtin, size, seed=seed, flip=flip)


class GANAtelierTrain(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GANAtelierTrain",
            display_name="Train GAN (GAN Atelier)",
            category="GAN Atelier/train",
            description=(
                "Train a GAN on your images (the images input), on a folder inside ComfyUI's "
                "input directory, or on a built-in procedural art dataset. Shows a live preview "
                "grid, can be cancelled at any time (a checkpoint is saved first) and writes "
                "checkpoints to models/gan. Outputs the model (EMA generator), the loss curves "
                "and the last preview, which also stays on the node."),
            inputs=[
                io.Combo.Input("arch", options=gan_core.list_archs(trainer="gan"),
                               default=DEFAULT_ARCH,
                               tooltip=_families(lambda spec: spec.description)),
                io.Combo.Input("builtin_dataset", options=list(gan_core.BUILTIN_DATASETS),
                               tooltip="procedural art used when neither images nor folder is "
                                       "given"),
                io.Int.Input("resolution", default=32, min=8, max=1024, step=4,
                             tooltip="training size in px; each family trains at its own sizes "
                                     "(checked when you queue). Their CPU settings: "
                                     + _families(_profile_value("size", "any"))),
                io.Int.Input("width", default=64, min=4, max=512, step=4,
                             tooltip="base width (filters of G and D, ngf = ndf) of the "
                                     "families that have one: 64 is the papers', 32 trains "
                                     "about twice as fast on a CPU; ignored by the others. "
                                     + _families(lambda spec: ", ".join(spec.training.width_fields)
                                                 or "no width")),
                io.Int.Input("steps", default=300, min=1, max=1_000_000,
                             tooltip="total training steps (one D and one G update each); a "
                                     "resumed run continues up to this count"),
                io.Int.Input("batch_size", default=32, min=1, max=1024,
                             tooltip="images per step; the CPU settings: "
                                     + _families(_profile_value("batch", "any"))),
                io.Float.Input("learning_rate", default=2e-4, min=1e-6, max=0.1, step=1e-5,
                               round=False, tooltip="Adam learning rate of G and D"),
                io.Combo.Input("loss", options=list(gan_core.LOSSES), default="bce",
                               tooltip="bce: non-saturating logistic loss; hinge: margin loss, "
                                       "often steadier; lsgan: least squares. Families with an "
                                       "objective of their own ignore it (FastGAN: hinge with "
                                       "random targets)"),
                io.Combo.Input("augmentation", options=AUGMENT_CHOICES, default="auto",
                               tooltip="DiffAugment applied to real and fake images alike; use "
                                       "it when you have fewer than ~1000 images. auto: each "
                                       "family's usual policy: "
                                       + _families(_profile_value("augment", "none"))),
                io.Float.Input("r1_gamma", default=0.0, min=0.0, max=100.0, step=0.1,
                               tooltip="R1 gradient penalty on real images (0 = off); try "
                                       "0.1-10 if training collapses"),
                widgets.seed("seeds initial weights, batches and augmentation: the same seed "
                             "repeats the same run (a new node keeps it fixed, so queueing "
                             "again reuses the trained model)"),
                widgets.preview_every(),
                widgets.checkpoint_every(),
                widgets.filename_prefix(f"gan_atelier/{DEFAULT_ARCH}"),
                io.Image.Input("images", optional=True,
                               tooltip="training images (any size; centre-cropped and resized). "
                                       "Takes precedence over folder."),
                io.String.Input("folder", default="", optional=True,
                                tooltip="a folder inside ComfyUI's input directory holding "
                                        "png/jpg/webp images (used when images is not "
                                        "connected)"),
                widgets.resume(),
                io.Combo.Input("fit", options=list(gan_core.FIT_MODES), default="crop",
                               optional=True,
                               tooltip="how images that are not square are fitted: crop the "
                                       "centre, stretch, or pad with white"),
                io.Boolean.Input("flip", default=True, optional=True,
                                 tooltip="randomly mirror training images left-right (doubles "
                                         "the variety; turn off for text or asymmetric "
                                         "subjects)"),
            ],
            outputs=widgets.training_outputs(
                "the trained model; its checkpoint is in models/gan",
                "per-step generator loss as {'loss': [...]} for Plot Loss Graph, with every "
                "other curve by name (loss_d, loss_g, ...) for Plot GAN Losses",
                "the last preview grid (seeds 0-15)"),
        )

    @classmethod
    def validate_inputs(cls, arch=None, resolution=None, folder="", resume=NONE):
        # no **kwargs: ComfyUI would then skip its range and option checks for every input
        return (bridge.widget_errors(cls, arch=arch, resolution=resolution, resume=resume)
                or queue_checks("gan", arch, resolution, resume, {"folder": folder}))

    @classmethod
    def fingerprint_inputs(cls, folder: str = "", resume: str = NONE, **_):
        """Re-run when the dataset folder or the resume file changes on disk."""
        return files_changed_key(folder, resume)

    @classmethod
    def execute(cls, arch, builtin_dataset, resolution, width, steps, batch_size, learning_rate,
                loss, augmentation, r1_gamma, seed, preview_every, checkpoint_every,
                filename_prefix, images=None, folder="", resume=NONE, fit="crop",
                flip=True) -> io.NodeOutput:
        resume_model = load_resume(resume, "gan", arch)
        size = resume_model.image_size if resume_model else resolution
        config = gan_core.TrainConfig(
            arch=arch, size=size, steps=steps, batch=batch_size, lr_g=learning_rate,
            lr_d=learning_rate, loss=loss, augment=augment_policy(arch, augmentation),
            r1_gamma=r1_gamma, seed=seed, preview_every=preview_every,
            checkpoint_every=checkpoint_every, device=str(bridge.device()),
            model=_width_config(arch, width),
        ).validate()
        dataset = _dataset(images, folder or "", builtin_dataset, size, seed, fit, flip)
        model, _ = run_training(
            lambda out, callbacks: gan_core.train(config, dataset, out=out, resume=resume_model,
                                                  callbacks=callbacks),
            filename_prefix, steps)
        preview = gan_core.make_grid(model.generate(range(16)))
        return io.NodeOutput(model, loss_map(model.resume.history, "loss_g"), preview,
                             ui=ui.PreviewImage(preview, cls=cls))
