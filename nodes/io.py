"""Load and save GAN models in ComfyUI's models/gan folder."""
from __future__ import annotations

import json
import os

from .. import gan_core
from . import bridge
from .bridge import GAN_MODEL, io

CONVERT_HINT = ("an NVIDIA network pickle: to keep it as a plain data file, run "
                "`python -m gan_core convert {name} {stem}.safetensors` (the converted file "
                "loads with identical outputs) and delete the pickle")


class GANAtelierLoadModel(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GANAtelierLoadModel",
            display_name="Load GAN Model (GAN Atelier)",
            category="GAN Atelier/io",
            description="Load a model from models/gan: a GAN Atelier .safetensors checkpoint "
                        "(from Train or Save) or a public file the original projects wrote, "
                        "recognised by its contents: " + "; ".join(gan_core.public_format_names())
                        + ". Files are read as data only; nothing in them is executed.",
            inputs=[io.Combo.Input("model_name", options=bridge.model_names(),
                                   tooltip="a file in ComfyUI/models/gan (refresh the page "
                                           "after adding files)")],
            outputs=[GAN_MODEL.Output(display_name="model", tooltip="the loaded model"),
                     io.String.Output(display_name="info",
                                      tooltip="its metadata as JSON text (and, for an NVIDIA "
                                              "pickle, how to convert it)")],
        )

    @classmethod
    def validate_inputs(cls, model_name=None):
        """Instead of ComfyUI's "Value not in list": where the file goes, what is there."""
        return True if model_name is None else bridge.missing_model(model_name) or True

    @classmethod
    def fingerprint_inputs(cls, model_name=None, **_):
        try:
            st = os.stat(bridge.model_path(model_name))
            return f"{st.st_size}-{st.st_mtime_ns}"
        except (OSError, ValueError, RuntimeError, TypeError) as exc:
            return str(exc)

    @classmethod
    def execute(cls, model_name) -> io.NodeOutput:
        model = gan_core.load(bridge.model_path(model_name))
        info = model.info()
        if model_name.lower().endswith(".pkl"):
            stem = model_name.rsplit(".", 1)[0]
            info["convert"] = CONVERT_HINT.format(name=model_name, stem=stem)
        return io.NodeOutput(model, json.dumps(info, indent=2, sort_keys=True, default=str))


class GANAtelierSaveModel(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GANAtelierSaveModel",
            display_name="Save GAN Model (GAN Atelier)",
            category="GAN Atelier/io",
            description="Save a GAN model to models/gan as .safetensors, numbered like "
                        "ComfyUI's savers (prefix_00001_.safetensors), never overwriting a file.",
            is_output_node=True,
            inputs=[
                GAN_MODEL.Input("model", tooltip="the model to save"),
                io.String.Input("filename_prefix", default="gan_atelier/model",
                                tooltip="name under models/gan; subfolders allowed, '..' is not"),
                io.Boolean.Input("include_training_state", default=True,
                                 tooltip="keep D, optimiser and RNG state so training can "
                                         "resume from this file; off = a smaller file for "
                                         "generation only"),
            ],
            outputs=[io.String.Output(display_name="model_name",
                                      tooltip="the saved file's name in models/gan, usable by "
                                              "Load GAN Model")],
        )

    @classmethod
    def execute(cls, model, filename_prefix, include_training_state) -> io.NodeOutput:
        path = bridge.reserve_model_file(filename_prefix)
        try:
            gan_core.save(model, path, include_resume=include_training_state)
        finally:
            gan_core.release_if_empty(path)
        name = bridge.relative_model_name(path)
        return io.NodeOutput(name, ui={"text": [f"saved models/gan/{name}"]})
