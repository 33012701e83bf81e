"""The pack's nodes in ComfyUI's V3 schema, and the extension that hands them to ComfyUI.

Each module is imported on its own: if one fails (say, a later family needs a package the
user lacks), it is logged and the rest of the pack still loads.
"""
from __future__ import annotations

import importlib
import logging

from . import bridge  # ComfyUI's V3 API: an ImportError here means "not inside ComfyUI"

log = logging.getLogger("gan_atelier")

# module, class name (= node id)
NODES = [
    ("train", "GANAtelierTrain"),
    ("generate", "GANAtelierGenerate"),
    ("style", "GANAtelierStyleTransfer"),
    ("train_style", "GANAtelierTrainStyle"),
    ("noise", "GANAtelierAddNoise"),
    ("denoise", "GANAtelierDenoise"),
    ("train_denoise", "GANAtelierTrainDenoiser"),
    ("io", "GANAtelierLoadModel"),
    ("io", "GANAtelierSaveModel"),
    ("datasets", "GANAtelierExampleDataset"),
    ("images", "GANAtelierImageGrid"),
    ("plots", "GANAtelierPlotLosses"),
    ("latent", "GANAtelierLatentWalk"),
    ("latent", "GANAtelierInvertImage"),
    ("latent", "GANAtelierGenerateFromLatent"),
    ("latent", "GANAtelierStyleMix"),
    ("audio", "GANAtelierAudioReactiveWalk"),
    ("audio", "GANAtelierExampleSong"),
]
# The frontend serves this folder: per-node help pages (docs/<NodeId>.md) and the small script
# that keeps a new trainer's seed fixed (js/).
WEB_DIRECTORY = "./web"


def node_classes() -> dict[str, type]:
    """Node id -> class, for every node whose module imports."""
    bridge.register_model_folder()
    classes: dict[str, type] = {}
    for module_name, class_name in NODES:
        try:
            module = importlib.import_module(f".{module_name}", __name__)
            classes[class_name] = getattr(module, class_name)
        except Exception:  # noqa: BLE001 - one broken family must not hide the others
            log.exception("GAN Atelier: node %s could not be loaded", class_name)
    return classes


def comfy_entrypoint():
    """What ComfyUI calls to load the pack (V3): an extension listing the node classes."""
    class GanAtelierExtension(bridge.ComfyExtension):
        async def get_node_list(self) -> list[type]:
            return list(node_classes().values())

    return GanAtelierExtension()
