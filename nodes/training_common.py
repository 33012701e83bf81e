"""What the training nodes share: cache keys that follow files on disk, and running a
gan_core trainer with ComfyUI's progress, preview, cancel and checkpoint naming."""
from __future__ import annotations

import hashlib
import os

from .. import gan_core
from . import bridge

NONE = "none"
# The augmentation widget of the training nodes ("auto": each family's usual policy).
AUGMENT_CHOICES = ["auto", "none", "translation", "color,translation", "color,translation,cutout"]


def files_changed_key(folder: str = "", resume: str = NONE) -> str:
    """A value for IS_CHANGED that changes when the dataset folder's files or the resume
    checkpoint change on disk (ComfyUI would otherwise reuse the last result)."""
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


def load_resume(resume: str):
    return gan_core.load(bridge.model_path(resume, "resume")) if resume and resume != NONE else None


def run_training(train, filename_prefix: str, steps: int):
    """Call `train(out, callbacks)` with a freshly claimed models/gan file, the node's progress
    bar (live preview grid) and cancel polled every step; returns (model, last preview)."""
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
    try:
        model = train(out, callbacks)
    finally:
        gan_core.release_if_empty(out)
        bridge.soft_empty_cache()
    return model, last.get("grid")
