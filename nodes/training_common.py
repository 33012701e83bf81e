"""What the training nodes share: cache keys that follow files on disk, queue-time checks,
and running a gan_core trainer with ComfyUI's progress, preview, cancel, memory management
and checkpoint naming."""
from __future__ import annotations

import hashlib
import os

from .. import gan_core
from . import bridge
from .widgets import NONE


def files_changed_key(folder: str = "", resume: str = NONE) -> str:
    """A fingerprint that changes when the dataset folder's files or the resume checkpoint
    change on disk (ComfyUI would otherwise reuse the last result)."""
    h = hashlib.sha256()
    try:
        if folder and folder.strip():
            path = gan_core.safe_join(bridge.folder_paths().get_input_directory(), folder.strip())
            # a folder of images, or (Train Style's style_folder) one image file
            for p in gan_core.list_image_files(path) if path.is_dir() else [path]:
                st = p.stat()
                h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}".encode())
        if resume and resume != NONE:
            h.update(str(os.stat(bridge.model_path(resume, "resume")).st_mtime_ns).encode())
    except (OSError, ValueError, RuntimeError) as exc:
        h.update(str(exc).encode())  # validation reports it properly
    return h.hexdigest()


def load_resume(resume: str | None, trainer: str, arch: str | None = None):
    """The resume file's model, checked to be a run this trainer (and arch) can continue, or
    None for "none". The same check ran at queue time; this one covers files changed since
    and prompts posted without validation."""
    if not resume or resume == NONE:
        return None
    model = gan_core.load(bridge.model_path(resume, "resume"))
    gan_core.check_resume(model, arch=arch, trainer=trainer)
    return model


def queue_checks(trainer: str, arch: str | None = None, size: int | None = None,
                 resume: str | None = None, folders: dict[str, str] | None = None) -> bool | str:
    """What validate_inputs can know before anything runs: a family / size combination it
    cannot train, a resume file of another family or trainer, a folder that does not exist.
    True, or the message ComfyUI shows on the node. Inputs fed by links are None here."""
    try:
        if arch is not None and size is not None:
            gan_core.check_train_size(arch, size)
        for name, value in (folders or {}).items():
            if value and value.strip():
                path = gan_core.safe_join(bridge.folder_paths().get_input_directory(),
                                          value.strip(), name)
                if not path.exists():
                    return f"{name}: {value!r} does not exist in ComfyUI's input directory"
        if resume and resume != NONE:
            gan_core.check_resume_file(bridge.model_path(resume, "resume"), trainer, arch)
    except (ValueError, OSError, RuntimeError) as exc:
        return str(exc)
    return True


def run_training(train, filename_prefix: str, steps: int):
    """Call `train(out, callbacks)` with a freshly claimed models/gan file, the node's progress
    bar (live preview grid) and cancel polled every step; ComfyUI's models are asked to make
    room on the GPU first and the result ends on the CPU. Returns (model, last preview)."""
    out = bridge.reserve_model_file(filename_prefix)
    progress = bridge.Progress(steps)
    last = {}

    def on_preview(step, grid):
        last["grid"] = grid
        progress.update(step, grid)

    callbacks = gan_core.TrainCallbacks(
        on_step=lambda step, losses: progress.update(step),
        on_preview=on_preview,
        check_stop=bridge.check_interrupt,
    )
    bridge.make_room_for_training()
    try:
        model = train(out, callbacks)
    finally:
        gan_core.release_if_empty(out)
        bridge.soft_empty_cache()
    bridge.release_after_training(model)
    return model, last.get("grid")


def loss_map(history: dict[str, list[float]], main: str) -> dict[str, list[float]]:
    """LOSS_MAP for core's Plot Loss Graph ({"loss": [...]}, the `main` curve) plus every
    recorded series by name (D and G losses, ADA p, ...), for the pack's loss plot."""
    out = {"loss": list(history[main])}
    out.update({k: list(v) for k, v in history.items()})
    return out
