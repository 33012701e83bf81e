"""Train Denoiser node: clean images, a folder or a built-in dataset in; a trained denoiser,
its losses and the last (noisy | denoised | clean) preview out. The loop itself is
gan_core.train_denoiser; what the pictures become (full-resolution tiles) is
gan_core.denoise_dataset, as for the CLI and the quality benchmark."""
from __future__ import annotations

from .. import gan_core
from . import bridge, widgets
from .bridge import io, ui
from .training_common import files_changed_key, load_resume, loss_map, queue_checks, run_training
from .widgets import NONE


def _dataset(images, folder: str, builtin: str, size: int, seed: int, fit: str):
    if images is not None:
        return gan_core.denoise_dataset(images, size, fit=fit, what="images")
    if folder.strip():
        return gan_core.denoise_dataset(bridge.input_subfolder(folder.strip(), "folder"), size,
                                        fit=fit, what="folder")
    return gan_core.denoise_dataset(gan_core.BUILTIN_PREFIX + builtin, size, seed=seed)


class GANAtelierTrainDenoiser(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GANAtelierTrainDenoiser",
            display_name="Train Denoiser (GAN Atelier)",
            category="GAN Atelier/denoise",
            description=(
                "Train a denoiser from clean images: your images (the images input), a folder "
                "inside ComfyUI's input directory, or a built-in procedural dataset. Noise is "
                "added on the fly by a recipe (the same one the Add Noise node shows) and the "
                "model learns to remove it, with an optional adversarial (PatchGAN) term for "
                "sharper results. Shows a live preview (noisy | denoised | clean), which stays "
                "on the node, can be cancelled at any time (a checkpoint is saved first) and "
                "writes checkpoints to models/gan. Use the model with the Denoise node."),
            inputs=[
                io.String.Input("noise", default="gaussian:5-50",
                                tooltip="what the model learns to remove: a noise recipe such "
                                        "as gaussian:25, gaussian:5-50 (a range), poisson, "
                                        "jpeg:10-40, grain:12, blur:0.5-2, downscale:2, or a "
                                        "comma-separated mixture (preview it with Add Noise)"),
                io.Combo.Input("builtin_dataset", options=list(gan_core.BUILTIN_DATASETS),
                               tooltip="procedural clean pictures used when neither images nor "
                                       "folder is given"),
                io.Int.Input("resolution", default=64, min=16, max=512, step=16,
                             tooltip="training crop size in px (a multiple of 4 for the "
                                     "default model); the trained model denoises any size"),
                io.Int.Input("width", default=16, min=4, max=256, step=4,
                             tooltip="base width of the U-Net (filters at full resolution): 16 "
                                     "trains in minutes on a CPU, 32-64 is stronger and slower"),
                io.Int.Input("steps", default=300, min=1, max=1_000_000,
                             tooltip="total training steps; a resumed run continues up to this "
                                     "count"),
                io.Int.Input("batch_size", default=16, min=1, max=512, tooltip="crops per step"),
                io.Float.Input("adversarial_weight", default=0.01, min=0.0, max=1.0, step=0.001,
                               round=False,
                               tooltip="weight of the PatchGAN adversarial loss: sharper, more "
                                       "natural texture at some cost in PSNR; 0 = plain L1 "
                                       "regression (no discriminator, faster)"),
                io.Float.Input("learning_rate", default=1e-3, min=1e-6, max=0.1, step=1e-5,
                               round=False, tooltip="Adam learning rate of the denoiser"),
                io.Combo.Input("loss", options=list(gan_core.RECON_LOSSES), default="l1",
                               tooltip="reconstruction loss: l1, or charbonnier (a smooth L1)"),
                widgets.seed("seeds initial weights, crops and noise: the same seed repeats the "
                             "same run (a new node keeps it fixed)"),
                widgets.preview_every(),
                widgets.checkpoint_every(),
                widgets.filename_prefix("gan_atelier/denoiser"),
                io.Image.Input("images", optional=True,
                               tooltip="clean training images at full resolution (cut into "
                                       "tiles of twice the resolution and cropped randomly; "
                                       "smaller ones are fitted up). Takes precedence over "
                                       "folder."),
                io.String.Input("folder", default="", optional=True,
                                tooltip="a folder inside ComfyUI's input directory holding "
                                        "clean png/jpg/webp images (used when images is not "
                                        "connected)"),
                widgets.resume(),
                io.Boolean.Input("noise_level_input", default=False, optional=True,
                                 tooltip="give the model the noise level as an extra input, so "
                                         "the Denoise node's sigma controls its strength "
                                         "(Gaussian recipes); off = blind"),
                io.Combo.Input("fit", options=list(gan_core.FIT_MODES), default="crop",
                               optional=True,
                               tooltip="how a picture smaller than one training tile is fitted "
                                       "up to it: crop the centre, stretch, or pad with white"),
            ],
            outputs=widgets.training_outputs(
                "the trained denoiser (EMA weights); its checkpoint is in models/gan",
                "per-step reconstruction loss as {'loss': [...]} for Plot Loss Graph, with the "
                "other curves by name for Plot GAN Losses",
                "the last preview: rows of noisy | denoised | clean"),
        )

    @classmethod
    def validate_inputs(cls, noise=None, folder="", resume=NONE):
        # no **kwargs: ComfyUI would then skip its range and option checks for every input
        error = bridge.widget_errors(cls, resume=resume)
        if error:
            return error
        if noise is not None:
            try:
                gan_core.parse_recipe(noise)
            except ValueError as exc:
                return f"noise: {exc}"
        return queue_checks("denoise", resume=resume, folders={"folder": folder})

    @classmethod
    def fingerprint_inputs(cls, folder: str = "", resume: str = NONE, **_):
        """Re-run when the dataset folder or the resume file changes on disk."""
        return files_changed_key(folder, resume)

    @classmethod
    def execute(cls, noise, builtin_dataset, resolution, width, steps, batch_size,
                adversarial_weight, learning_rate, loss, seed, preview_every, checkpoint_every,
                filename_prefix, images=None, folder="", resume=NONE, noise_level_input=False,
                fit="crop") -> io.NodeOutput:
        resume_model = load_resume(resume, "denoise")
        saved = resume_model.resume.train_config if resume_model and resume_model.resume else {}
        size = int(saved.get("size", resolution))
        config = gan_core.DenoiseTrainConfig(
            size=size, noise=noise, steps=steps, batch=batch_size, lr_g=learning_rate,
            loss=loss, adv_weight=adversarial_weight, seed=seed, preview_every=preview_every,
            checkpoint_every=checkpoint_every, device=str(bridge.device()),
            model={"width": width, "noise_level_input": bool(noise_level_input)},
        ).validate()
        dataset = _dataset(images, folder or "", builtin_dataset, size, seed, fit)
        model, grid = run_training(
            lambda out, callbacks: gan_core.train_denoiser(config, dataset, out=out,
                                                           resume=resume_model, callbacks=callbacks),
            filename_prefix, steps)
        return io.NodeOutput(model, loss_map(model.resume.history, "loss_rec"), grid,
                             ui=ui.PreviewImage(grid, cls=cls) if grid is not None else None)
