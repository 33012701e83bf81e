"""Load and save GAN models in ComfyUI's models/gan folder."""
from __future__ import annotations

import os

from .. import gan_core
from . import bridge


class GANAtelierLoadModel:
    DESCRIPTION = ("Load a model from models/gan: a GAN Atelier .safetensors checkpoint (from "
                   "Train or Save) or a public .pth file (CycleGAN, pix2pix, fast-neural-style), "
                   "recognised by its contents. Files are read as data only; nothing in them is "
                   "executed.")
    CATEGORY = "GAN Atelier/io"
    FUNCTION = "load"
    RETURN_TYPES = ("GAN_MODEL", "STRING")
    RETURN_NAMES = ("model", "info")
    OUTPUT_TOOLTIPS = ("the loaded model", "its metadata as JSON text")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model_name": (bridge.model_names(), {
            "tooltip": "a file in ComfyUI/models/gan (refresh the page after adding files)"})}}

    @classmethod
    def IS_CHANGED(cls, model_name):
        try:
            st = os.stat(bridge.model_path(model_name))
            return f"{st.st_size}-{st.st_mtime_ns}"
        except (OSError, ValueError, RuntimeError) as exc:
            return str(exc)

    def load(self, model_name):
        import json

        model = gan_core.load(bridge.model_path(model_name))
        return (model, json.dumps(model.info(), indent=2, sort_keys=True, default=str))


class GANAtelierSaveModel:
    DESCRIPTION = ("Save a GAN model to models/gan as .safetensors, numbered like ComfyUI's "
                   "savers (prefix_00001_.safetensors), never overwriting a file.")
    CATEGORY = "GAN Atelier/io"
    FUNCTION = "save"
    OUTPUT_NODE = True
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("model_name",)
    OUTPUT_TOOLTIPS = ("the saved file's name in models/gan, usable by Load GAN Model",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("GAN_MODEL", {"tooltip": "the model to save"}),
            "filename_prefix": ("STRING", {"default": "gan_atelier/model",
                                "tooltip": "name under models/gan; subfolders allowed, '..' is not"}),
            "include_training_state": ("BOOLEAN", {"default": True,
                                       "tooltip": "keep D, optimiser and RNG state so training can "
                                                  "resume from this file; off = a smaller file for "
                                                  "generation only"}),
        }}

    def save(self, model, filename_prefix, include_training_state):
        path = bridge.reserve_model_file(filename_prefix)
        try:
            gan_core.save(model, path, include_resume=include_training_state)
        finally:
            gan_core.release_if_empty(path)
        name = bridge.relative_model_name(path)
        return {"ui": {"text": [f"saved models/gan/{name}"]}, "result": (name,)}
