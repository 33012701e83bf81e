"""The only module that touches ComfyUI.

The node schema comes from ComfyUI's versioned V3 API, pinned to `comfy_api.v0_0_2` (what
ComfyUI 0.3.64 ships): `io`, `ui` and `ComfyExtension` are imported here and nowhere else, and
without them (outside ComfyUI) importing this module raises ImportError, which the pack's
__init__ turns into one log line. Everything else (folder_paths, comfy.utils,
comfy.model_management, comfy.cli_args) is imported lazily with a plain fallback, so gan_core's
work runs the same in tests and tools.
"""
from __future__ import annotations

import contextlib
import importlib
import logging
import os
import time
from typing import Any, Iterator

import torch
from comfy_api.v0_0_2 import ComfyExtension, io, ui  # noqa: F401  (re-exported to the nodes)

from .. import gan_core

log = logging.getLogger("gan_atelier")

# The pack's own types: a loaded or trained model, and latent codes made for one.
GAN_MODEL = io.Custom("GAN_MODEL")
GAN_LATENT = io.Custom("GAN_LATENT")

MODEL_FOLDER = "gan"
MODEL_EXTENSIONS = {".safetensors", ".pth", ".pt", ".pkl"}
DEFAULT_PREVIEW_SIZE = 512  # ComfyUI's --preview-size default


def _module(name: str) -> Any | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def folder_paths() -> Any:
    fp = _module("folder_paths")
    if fp is None:
        raise RuntimeError("this needs ComfyUI's folder_paths (run inside ComfyUI)")
    return fp


def register_model_folder() -> None:
    """models/gan as the "gan" key, listing only model files, keeping any paths a user
    added in extra_model_paths.yaml (which may have created the key before us)."""
    fp = _module("folder_paths")
    if fp is None:
        return
    fp.add_model_folder_path(MODEL_FOLDER, os.path.join(fp.models_dir, MODEL_FOLDER), is_default=True)
    paths, _ = fp.folder_names_and_paths[MODEL_FOLDER]
    fp.folder_names_and_paths[MODEL_FOLDER] = (paths, set(MODEL_EXTENSIONS))


def model_names() -> list[str]:
    try:
        return folder_paths().get_filename_list(MODEL_FOLDER)
    except (RuntimeError, KeyError):
        return []


def missing_model(name: str, what: str = "model_name") -> str | None:
    """None when `name` is a file in models/gan, else what to do about it: a shared workflow
    names a file this machine lacks (ComfyUI's own message would be "Value not in list")."""
    names = model_names()
    if name in names:
        return None
    where = ", ".join(folder_paths().get_folder_paths(MODEL_FOLDER)) or "ComfyUI/models/gan"
    have = (f"; it holds {len(names)} file(s), e.g. {', '.join(names[:5])}" if names
            else "; it is empty")
    kind = ("an NVIDIA network pickle (from your StyleGAN2-ADA / StyleGAN3 training run or a "
            "published model)" if name.lower().endswith(".pkl") else "the model file")
    return (f"{what}: {name!r} is not in {where}{have}. Put {kind} there under that name, then "
            f"refresh the page (R) and pick it.")


def model_path(name: str, what: str = "model_name") -> str:
    """A model name from a node input (`what`, for errors) -> its full path inside a "gan"
    folder."""
    fp = folder_paths()
    for root in fp.get_folder_paths(MODEL_FOLDER):
        # refuses '..', absolute names, drive letters, NUL and links that leave the folder
        path = gan_core.safe_join(root, name, what)
        if path.is_file():
            return str(path)
    return fp.get_full_path_or_raise(MODEL_FOLDER, name)


def model_save_dir() -> str:
    return folder_paths().get_folder_paths(MODEL_FOLDER)[0]


def input_subfolder(name: str, what: str = "folder") -> str:
    """A folder name typed by the user -> a path inside ComfyUI's input directory."""
    path = gan_core.safe_join(folder_paths().get_input_directory(), name, what)
    if not path.is_dir():
        raise ValueError(f"{what}: {name!r} is not a folder inside ComfyUI's input directory")
    return str(path)


def reserve_model_file(prefix: str) -> str:
    """A new models/gan file named like ComfyUI's savers (prefix_00001_.safetensors), claimed
    exclusively so two runs with the same prefix never write the same file."""
    fp = folder_paths()
    root = model_save_dir()
    gan_core.safe_join(root, prefix, "filename_prefix")
    folder, stem, counter, _, _ = fp.get_save_image_path(prefix, root)
    return str(gan_core.reserve_numbered(folder, stem, counter, ".safetensors"))


def relative_model_name(path: str) -> str:
    for root in folder_paths().get_folder_paths(MODEL_FOLDER):
        rel = os.path.relpath(path, root)
        if not rel.startswith(".."):
            return rel.replace(os.sep, "/")
    return os.path.basename(path)


def device() -> torch.device:
    mm = _module("comfy.model_management")
    return mm.get_torch_device() if mm is not None else gan_core.resolve_device("auto")


def check_interrupt() -> None:
    """Raises ComfyUI's InterruptProcessingException when the user pressed Cancel."""
    mm = _module("comfy.model_management")
    if mm is not None:
        mm.throw_exception_if_processing_interrupted()


def soft_empty_cache() -> None:
    mm = _module("comfy.model_management")
    if mm is not None:
        mm.soft_empty_cache()


def _weights_bytes(model: Any) -> int:
    return sum(t.numel() * t.element_size() for m in model.modules.values()
               for t in m.state_dict().values())


@contextlib.contextmanager
def lend_device(model: Any) -> Iterator[torch.device]:
    """Run a GAN_MODEL on ComfyUI's device for one node's work, then move it back.

    ComfyUI only evicts models registered with comfy.model_management; GAN Atelier's are not,
    so a model left on the GPU after a node would hold memory ComfyUI cannot reclaim when it
    later loads a checkpoint, until the node's cached output is dropped (/free, or a prompt
    without it). Like ComfyUI's own upscale-model node, this asks model_management to make
    room first (it unloads its own models if needed), moves the model in, and moves it back to
    where it was (the CPU, for a loaded file) afterwards, even on error or cancel. A model that
    is already on the device (CPU servers; a model trained there) is left alone."""
    target = device()
    home = model.device
    if target == home:
        yield target
        return
    mm = _module("comfy.model_management")
    if mm is not None and hasattr(mm, "free_memory"):
        mm.free_memory(_weights_bytes(model), target)
    model.to(target)
    try:
        yield target
    finally:
        model.to(home)
        soft_empty_cache()


def widget_errors(node: Any, **values: Any) -> str | None:
    """ComfyUI's own queue-time checks (combo options, min, max) for the inputs a node's
    validate_inputs takes: ComfyUI skips them for exactly those inputs, trusting the node to
    check them. None when all are fine, else the message for the node. None values are inputs
    fed by links (not known before the run) and pass."""
    spec = node.INPUT_TYPES()
    declared = {**spec.get("required", {}), **spec.get("optional", {})}
    for name, value in values.items():
        if value is None or name not in declared:
            continue
        kind, *rest = declared[name]
        opts = rest[0] if rest else {}
        options = kind if isinstance(kind, list) else opts.get("options") if kind == "COMBO" else None
        if options is not None and value not in options:
            shown = ", ".join(map(repr, options[:20])) + (", ..." if len(options) > 20 else "")
            return f"{name}: {value!r} is not one of {shown}"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if "min" in opts and value < opts["min"]:
                return f"{name}: {value} is below the minimum {opts['min']}"
            if "max" in opts and value > opts["max"]:
                return f"{name}: {value} is above the maximum {opts['max']}"
    return None


def preview_size() -> int:
    """The longest side ComfyUI shows live previews at (its --preview-size setting)."""
    cli = _module("comfy.cli_args")
    size = getattr(getattr(cli, "args", None), "preview_size", None) if cli is not None else None
    return int(size) if isinstance(size, int) and size > 0 else DEFAULT_PREVIEW_SIZE


def make_room_for_training() -> None:
    """Before training on a GPU: ask ComfyUI's model management to unload what it holds there,
    as core's training node does, so a diffusion model kept from an earlier prompt does not
    leave the trainer short of memory. Models it unloads are reloaded when next needed."""
    target = device()
    mm = _module("comfy.model_management")
    if target.type == "cpu" or mm is None or not hasattr(mm, "free_memory"):
        return
    # ComfyUI's own trainer asks for 1e20 bytes: everything that can be unloaded is.
    mm.free_memory(1e20, target)


def release_after_training(model: Any) -> None:
    """After training: the result goes to the CPU, where it holds no GPU memory that model
    management cannot reclaim (the nodes that use it borrow the device, see lend_device),
    and the cache is trimmed."""
    if model.device.type != "cpu":
        model.to("cpu")
    soft_empty_cache()


class Progress:
    """ComfyUI's ProgressBar with a preview image (at ComfyUI's preview size), throttled so a
    10k-step run does not send 10k websocket messages; without ComfyUI it does nothing."""

    def __init__(self, total: int, min_interval: float = 0.2):
        utils = _module("comfy.utils")
        self.bar = utils.ProgressBar(total) if utils is not None else None
        self.total = total
        self.min_interval = min_interval
        self._last = 0.0

    def update(self, value: int, preview: torch.Tensor | None = None) -> None:
        if self.bar is None:
            return
        now = time.monotonic()
        if preview is None and value < self.total and now - self._last < self.min_interval:
            return
        self._last = now
        shown = None
        if preview is not None:
            shown = ("JPEG", gan_core.tensor_to_pil(preview), preview_size())
        self.bar.update_absolute(value, self.total, shown)


def map_images(images: torch.Tensor, fn) -> torch.Tensor:
    """fn applied to each image of a batch in turn on ComfyUI's device, with progress and a
    cancel check between images; the cache is trimmed afterwards."""
    images = gan_core.check_image_batch(images, "images")
    progress = Progress(len(images))
    # Results go into one batch allocated at the first result (a list and torch.cat would hold
    # the whole output twice); a single image's result is returned as it is.
    out: torch.Tensor | None = None
    for i in range(len(images)):
        check_interrupt()
        one = fn(images[i:i + 1])
        if len(images) == 1:
            out = one
        else:
            if out is None:
                out = one.new_empty((len(images), *one.shape[1:]))
            elif one.shape[1:] != out.shape[1:]:
                raise ValueError(f"images: image {i} gave a result shaped {tuple(one.shape)}, "
                                 f"image 0 one shaped {tuple(out[:1].shape)}")
            out[i:i + 1] = one
        del one
        progress.update(i + 1)
    soft_empty_cache()
    assert out is not None  # check_image_batch refuses empty batches
    return out
