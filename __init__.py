"""GAN Atelier: a ComfyUI node pack to train, generate, style-transfer and denoise with GANs.

ComfyUI loads this file as a package; everything is imported relatively so the pack never
shadows ComfyUI's own top-level `nodes` module or `comfy` package.
"""
from .nodes import collect

NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = collect()

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
