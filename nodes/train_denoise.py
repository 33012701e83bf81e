"""Train Denoiser node: clean images, a folder or a built-in dataset in; a trained denoiser,
its losses and the last (noisy | denoised | clean) preview out. The loop itself is
gan_core.train_denoiser."""
from __future__ import annotations

from .. import gan_core
from . import bridge
from .training_common import NONE, files_changed_key, load_resume, run_training

# User images and folders are fitted to this many times the crop size and cropped randomly,
# so the model sees the noise and detail at (nearly) their own scale instead of shrunk.
CROP_CONTEXT = 2


def _dataset(images, folder: str, builtin: str, size: int, seed: int, fit: str):
    if images is not None:
        return gan_core.from_images(images, size * CROP_CONTEXT, fit=fit, name="images")
    if folder.strip():
        return gan_core.open_dataset(bridge.input_subfolder(folder.strip(), "folder"),
                                     size * CROP_CONTEXT, fit=fit)
    return gan_core.open_dataset(gan_core.BUILTIN_PREFIX + builtin, size, seed=seed)


class GANAtelierTrainDenoiser:
    DESCRIPTION = (
        "Train a denoiser from clean images: your images (the images input), a folder inside "
        "ComfyUI's input directory, or a built-in procedural dataset. Noise is added on the fly "
        "by a recipe (the same one the Add Noise node shows) and the model learns to remove it, "
        "with an optional adversarial (PatchGAN) term for sharper results. Shows a live preview "
        "(noisy | denoised | clean), can be cancelled at any time (a checkpoint is saved first) "
        "and writes checkpoints to models/gan. Use the model with the Denoise node.")
    CATEGORY = "GAN Atelier/denoise"
    FUNCTION = "train"
    RETURN_TYPES = ("GAN_MODEL", "LOSS_MAP", "IMAGE")
    RETURN_NAMES = ("model", "loss", "preview")
    OUTPUT_TOOLTIPS = ("the trained denoiser (EMA weights); its checkpoint is in models/gan",
                       "per-step reconstruction loss as {'loss': [...]}, for Plot Loss Graph",
                       "the last preview: rows of noisy | denoised | clean")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "noise": ("STRING", {"default": "gaussian:5-50",
                          "tooltip": "what the model learns to remove: a noise recipe such as "
                                     "gaussian:25, gaussian:5-50 (a range), poisson, jpeg:10-40, "
                                     "grain:12, blur:0.5-2, downscale:2, or a comma-separated "
                                     "mixture (preview it with Add Noise)"}),
                "builtin_dataset": (list(gan_core.BUILTIN_DATASETS), {
                    "tooltip": "procedural clean pictures used when neither images nor folder "
                               "is given"}),
                "resolution": ("INT", {"default": 64, "min": 16, "max": 512, "step": 16,
                               "tooltip": "training crop size in px (a multiple of 4 for the "
                                          "default model); the trained model denoises any size"}),
                "width": ("INT", {"default": 16, "min": 4, "max": 256, "step": 4,
                          "tooltip": "base width of the U-Net (filters at full resolution): 16 "
                                     "trains in minutes on a CPU, 32-64 is stronger and slower"}),
                "steps": ("INT", {"default": 300, "min": 1, "max": 1_000_000,
                          "tooltip": "total training steps; a resumed run continues up to this "
                                     "count"}),
                "batch_size": ("INT", {"default": 16, "min": 1, "max": 512,
                               "tooltip": "crops per step"}),
                "adversarial_weight": ("FLOAT", {"default": 0.01, "min": 0.0, "max": 1.0,
                                       "step": 0.001, "round": False,
                                       "tooltip": "weight of the PatchGAN adversarial loss: "
                                                  "sharper, more natural texture at some cost in "
                                                  "PSNR; 0 = plain L1 regression (no "
                                                  "discriminator, faster)"}),
                "learning_rate": ("FLOAT", {"default": 1e-3, "min": 1e-6, "max": 0.1, "step": 1e-5,
                                  "round": False, "tooltip": "Adam learning rate of the "
                                                             "denoiser"}),
                "loss": (list(gan_core.RECON_LOSSES), {"default": "l1",
                         "tooltip": "reconstruction loss: l1, or charbonnier (a smooth L1)"}),
                "seed": ("INT", {"default": 0, "min": 0, "max": gan_core.MAX_SEED,
                         "control_after_generate": True,
                         "tooltip": "seeds initial weights, crops and noise: the same seed "
                                    "repeats the same run"}),
                "preview_every": ("INT", {"default": 50, "min": 0, "max": 100_000,
                                  "tooltip": "steps between previews on the node (0 = end only)"}),
                "checkpoint_every": ("INT", {"default": 100, "min": 0, "max": 100_000,
                                     "tooltip": "steps between checkpoints in models/gan (0 = end "
                                                "and cancel only)"}),
                "filename_prefix": ("STRING", {"default": "gan_atelier/denoiser",
                                    "tooltip": "checkpoint name under models/gan; a counter is "
                                               "added (prefix_00001_.safetensors)"}),
            },
            "optional": {
                "images": ("IMAGE", {"tooltip": "clean training images (any size; fitted to "
                                                "twice the resolution and cropped randomly). "
                                                "Takes precedence over folder."}),
                "folder": ("STRING", {"default": "", "tooltip": "a folder inside ComfyUI's input "
                                      "directory holding clean png/jpg/webp images (used when "
                                      "images is not connected)"}),
                "resume": ([NONE] + bridge.model_names(), {"default": NONE,
                           "tooltip": "continue a run from one of its checkpoints in models/gan"}),
                "noise_level_input": ("BOOLEAN", {"default": False,
                                      "tooltip": "give the model the noise level as an extra "
                                                 "input, so the Denoise node's sigma controls its "
                                                 "strength (Gaussian recipes); off = blind"}),
                "fit": (list(gan_core.FIT_MODES), {"default": "crop",
                        "tooltip": "how images that are not square are fitted: crop the centre, "
                                   "stretch, or pad with white"}),
            },
        }

    @classmethod
    def IS_CHANGED(cls, folder: str = "", resume: str = NONE, **kwargs):
        """Re-run when the dataset folder or the resume file changes on disk."""
        return files_changed_key(folder, resume)

    def train(self, noise, builtin_dataset, resolution, width, steps, batch_size,
              adversarial_weight, learning_rate, loss, seed, preview_every, checkpoint_every,
              filename_prefix, images=None, folder="", resume=NONE, noise_level_input=False,
              fit="crop"):
        resume_model = load_resume(resume)
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
        history = model.resume.history
        loss_map = {"loss": list(history["loss_rec"])}
        loss_map.update({k: list(v) for k, v in history.items()})
        return (model, loss_map, grid)
