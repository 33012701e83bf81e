"""Generate node: a trained generator and a seed -> images."""
from __future__ import annotations

from .. import gan_core
from . import bridge

CHUNK = 64


class GANAtelierGenerate:
    DESCRIPTION = ("Generate images from a trained GAN. Image i uses seed + i, and a seed always "
                   "gives the same image, whatever the count.")
    CATEGORY = "GAN Atelier/generate"
    FUNCTION = "generate"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_TOOLTIPS = ("count images, RGB",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("GAN_MODEL", {"tooltip": "a generator from Train or Load GAN Model"}),
                "seed": ("INT", {"default": 0, "min": 0, "max": gan_core.MAX_SEED,
                         "control_after_generate": True,
                         "tooltip": "seed of the first image; image i uses seed + i"}),
                "count": ("INT", {"default": 16, "min": 1, "max": 4096,
                          "tooltip": "how many images to generate"}),
                "truncation": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 2.0, "step": 0.05,
                               "tooltip": "below 1 pulls latents toward the average: more typical, "
                                          "less varied images; 1 = no truncation"}),
            }
        }

    def generate(self, model, seed, count, truncation):
        if model.task != "generate":
            raise ValueError(f"model: expected a generator, got a {model.task!r} model ({model.arch})")
        seeds = [(seed + i) % (gan_core.MAX_SEED + 1) for i in range(count)]
        progress = bridge.Progress(count)
        # Chunks of CHUNK images: bounded activations, a cancel check and progress between
        # chunks; each chunk is copied into one result batch (no list + torch.cat copy).
        out = None
        with bridge.lend_device(model) as device:
            for i in range(0, count, CHUNK):
                bridge.check_interrupt()
                part = model.generate(seeds[i:i + CHUNK], truncation=truncation, device=device)
                if out is None:
                    out = part.new_empty((count, *part.shape[1:])) if count > len(part) else part
                if out is not part:
                    out[i:i + len(part)] = part
                del part
                progress.update(min(count, i + CHUNK))
        return (out,)
