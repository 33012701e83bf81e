"""Node classes, collected into one table of id -> (class, display name).

Each family module is imported on its own: if one fails (say, a later family needs a
package the user lacks), it is logged and the rest of the pack still loads.
"""
from __future__ import annotations

import importlib
import logging

log = logging.getLogger("gan_atelier")

# module, class name (= node id), display name
NODES = [
    ("train", "GANAtelierTrain", "Train GAN (GAN Atelier)"),
    ("generate", "GANAtelierGenerate", "Generate (GAN Atelier)"),
    ("style", "GANAtelierStyleTransfer", "Style Transfer (GAN Atelier)"),
    ("train_style", "GANAtelierTrainStyle", "Train Style (GAN Atelier)"),
    ("noise", "GANAtelierAddNoise", "Add Noise (GAN Atelier)"),
    ("denoise", "GANAtelierDenoise", "Denoise (GAN Atelier)"),
    ("train_denoise", "GANAtelierTrainDenoiser", "Train Denoiser (GAN Atelier)"),
    ("io", "GANAtelierLoadModel", "Load GAN Model (GAN Atelier)"),
    ("io", "GANAtelierSaveModel", "Save GAN Model (GAN Atelier)"),
    ("datasets", "GANAtelierExampleDataset", "Example Dataset (GAN Atelier)"),
    ("images", "GANAtelierImageGrid", "Image Grid (GAN Atelier)"),
    ("latent", "GANAtelierLatentWalk", "Latent Walk (GAN Atelier)"),
    ("latent", "GANAtelierInvertImage", "Invert Image (GAN Atelier)"),
    ("latent", "GANAtelierGenerateFromLatent", "Generate From Latent (GAN Atelier)"),
    ("latent", "GANAtelierStyleMix", "Style Mix (GAN Atelier)"),
]


def collect() -> tuple[dict[str, type], dict[str, str]]:
    from . import bridge

    bridge.register_model_folder()
    classes: dict[str, type] = {}
    names: dict[str, str] = {}
    for module_name, class_name, display in NODES:
        try:
            module = importlib.import_module(f".{module_name}", __name__)
            classes[class_name] = getattr(module, class_name)
            names[class_name] = display
        except Exception:  # noqa: BLE001 - one broken family must not hide the others
            log.exception("GAN Atelier: node %s could not be loaded", class_name)
    return classes, names
