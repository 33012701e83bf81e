"""GAN Atelier: a ComfyUI node pack to train, generate, style-transfer and denoise with GANs.

ComfyUI loads this file as a package and calls `comfy_entrypoint()` (its V3 extension API,
ComfyUI 0.3.64 or newer); everything is imported relatively so the pack never shadows
ComfyUI's own top-level `nodes` module or `comfy` package. Outside ComfyUI (tests, tools)
the pack still imports: without ComfyUI's comfy_api it offers no nodes and says why once.
"""
import logging

from . import gan_core  # noqa: F401  (the library the nodes use; importable as pack.gan_core)

WEB_DIRECTORY = "./web"

try:
    from .nodes import comfy_entrypoint
except ImportError as exc:  # no comfy_api: not inside ComfyUI 0.3.64+
    logging.getLogger("gan_atelier").warning(
        "GAN Atelier: ComfyUI's V3 node API (comfy_api.v0_0_2) is not importable (%s); the "
        "nodes need ComfyUI 0.3.64 or newer. gan_core itself works without ComfyUI.", exc)
else:
    __all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
