"""Train Style node: content and style pictures in (one painting is enough); a CycleGAN, its
losses and the last (content | stylized) preview out. The loop itself is gan_core.train_style."""
from __future__ import annotations

from .. import gan_core
from . import bridge
from .training_common import (AUGMENT_CHOICES, NONE, files_changed_key, load_resume,
                              run_training)

# Built-in content is rendered at this many times the crop size (at least BUILTIN_MIN_SIDE),
# a built-in painting at STYLE_SIDE: large enough for crops at every scale.
CONTENT_CONTEXT = 2
BUILTIN_MIN_SIDE = 256
BUILTIN_CONTENT_COUNT = 64
STYLE_SIDE = 768


def _source(images, folder: str, builtin: str, size: int, seed: int, side: str):
    """IMAGE input, else a folder (or one image file) inside ComfyUI's input directory, else
    the built-in set; crops come from pictures at their own size."""
    what = f"{side}_images"
    if images is not None:
        return gan_core.crops_from_images(images, name=what)
    if folder.strip():
        path = gan_core.safe_join(bridge.folder_paths().get_input_directory(), folder.strip(),
                                  f"{side}_folder")
        return gan_core.open_crop_source(path, what=f"{side}_folder")
    if side == "style":
        return gan_core.open_crop_source(gan_core.BUILTIN_PREFIX + builtin, max_side=STYLE_SIDE,
                                         count=1, seed=seed, what="style_builtin")
    return gan_core.open_crop_source(gan_core.BUILTIN_PREFIX + builtin,
                                     max_side=max(BUILTIN_MIN_SIDE, CONTENT_CONTEXT * size),
                                     count=BUILTIN_CONTENT_COUNT, seed=seed,
                                     what="content_builtin")


class GANAtelierTrainStyle:
    DESCRIPTION = (
        "Train a style of your own: a CycleGAN learns to turn content pictures (photos, renders, "
        "your images) into the look of style pictures (paintings) and back, without paired "
        "examples. One painting is enough: it is cut into crops at many scales. With nothing "
        "connected it trains on built-in pictures and a built-in swirling painting. Shows a "
        "live preview (content | stylized), can be cancelled at any time (a checkpoint is "
        "saved first) and writes checkpoints to models/gan. Apply the result with Style "
        "Transfer (A->B = content to style).")
    CATEGORY = "GAN Atelier/style"
    FUNCTION = "train"
    RETURN_TYPES = ("GAN_MODEL", "LOSS_MAP", "IMAGE")
    RETURN_NAMES = ("model", "loss", "preview")
    OUTPUT_TOOLTIPS = ("the trained CycleGAN (both directions); its checkpoint is in models/gan",
                       "per-step generator loss as {'loss': [...]} (and the parts), for Plot "
                       "Loss Graph",
                       "the last preview: rows of content | stylized")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "content_builtin": (list(gan_core.BUILTIN_DATASETS), {"default": "blobs",
                                    "tooltip": "procedural content pictures used when neither "
                                               "content_images nor content_folder is given"}),
                "style_builtin": (list(gan_core.BUILTIN_DATASETS), {"default": "painting",
                                  "tooltip": "procedural painting used as the style when neither "
                                             "style_images nor style_folder is given"}),
                "resolution": ("INT", {"default": 96, "min": 16, "max": 512, "step": 4,
                               "tooltip": "training crop size in px (a multiple of 4); the "
                                          "trained model stylizes any size. 96-128 on a CPU, "
                                          "256 on a GPU"}),
                "width": ("INT", {"default": 16, "min": 4, "max": 128, "step": 4,
                          "tooltip": "generator width (ngf; the discriminator gets twice it): "
                                     "16 trains in minutes on a CPU, 64 is the original's"}),
                "blocks": ("INT", {"default": 6, "min": 0, "max": 12,
                           "tooltip": "residual blocks of the generator: 6 (the original's for "
                                      "128 px) or 9 (256 px)"}),
                "steps": ("INT", {"default": 600, "min": 1, "max": 1_000_000,
                          "tooltip": "total training steps; the learning rate falls linearly to "
                                     "0 over the second half. A resumed run continues up to "
                                     "this count"}),
                "batch_size": ("INT", {"default": 1, "min": 1, "max": 64,
                               "tooltip": "crop pairs per step (the original uses 1)"}),
                "learning_rate": ("FLOAT", {"default": 2e-4, "min": 1e-6, "max": 0.1,
                                  "step": 1e-5, "round": False,
                                  "tooltip": "Adam learning rate of generators and "
                                             "discriminators"}),
                "cycle_weight": ("FLOAT", {"default": 10.0, "min": 0.0, "max": 100.0,
                                 "step": 0.5, "tooltip": "how strongly a stylized picture must "
                                                         "convert back to its original: higher "
                                                         "keeps more of the content"}),
                "identity_weight": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 10.0,
                                    "step": 0.05, "tooltip": "times cycle_weight: keeps colours "
                                                             "when the input already looks "
                                                             "like the target (0 = off)"}),
                "augmentation": (AUGMENT_CHOICES, {"default": "none",
                                 "tooltip": "DiffAugment on everything the discriminators see; "
                                            "helps with very few pictures"}),
                "seed": ("INT", {"default": 0, "min": 0, "max": gan_core.MAX_SEED,
                         "control_after_generate": True,
                         "tooltip": "seeds initial weights, crops and the image pool: the same "
                                    "seed repeats the same run"}),
                "preview_every": ("INT", {"default": 50, "min": 0, "max": 100_000,
                                  "tooltip": "steps between previews on the node (0 = end only)"}),
                "checkpoint_every": ("INT", {"default": 100, "min": 0, "max": 100_000,
                                     "tooltip": "steps between checkpoints in models/gan (0 = end "
                                                "and cancel only)"}),
                "filename_prefix": ("STRING", {"default": "gan_atelier/style",
                                    "tooltip": "checkpoint name under models/gan; a counter is "
                                               "added (prefix_00001_.safetensors)"}),
            },
            "optional": {
                "content_images": ("IMAGE", {"tooltip": "content pictures (domain A), any size; "
                                                        "takes precedence over content_folder"}),
                "style_images": ("IMAGE", {"tooltip": "style pictures (domain B): one painting "
                                                      "is enough; takes precedence over "
                                                      "style_folder"}),
                "content_folder": ("STRING", {"default": "", "tooltip": "a folder (or one image "
                                              "file) inside ComfyUI's input directory"}),
                "style_folder": ("STRING", {"default": "", "tooltip": "a folder of paintings (or "
                                            "one painting file) inside ComfyUI's input "
                                            "directory; sizes may differ"}),
                "resume": ([NONE] + bridge.model_names(), {"default": NONE,
                           "tooltip": "continue a run from one of its checkpoints in models/gan"}),
            },
        }

    @classmethod
    def IS_CHANGED(cls, content_folder: str = "", style_folder: str = "", resume: str = NONE,
                   **kwargs):
        """Re-run when a picture folder or the resume file changes on disk."""
        return files_changed_key(content_folder, resume) + files_changed_key(style_folder)

    def train(self, content_builtin, style_builtin, resolution, width, blocks, steps, batch_size,
              learning_rate, cycle_weight, identity_weight, augmentation, seed, preview_every,
              checkpoint_every, filename_prefix, content_images=None, style_images=None,
              content_folder="", style_folder="", resume=NONE):
        resume_model = load_resume(resume)
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
        history = model.resume.history
        loss_map = {"loss": list(history["loss_g"])}
        loss_map.update({k: list(v) for k, v in history.items() if k != "lr"})
        return (model, loss_map, grid)
