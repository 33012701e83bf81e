"""What a model file is, from its metadata alone: for checks at queue time (ComfyUI's
validate_inputs runs before any node, so it must answer in milliseconds, not load a model)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from safetensors import SafetensorError, safe_open

from ..errors import CheckpointError
from .checkpoint import FORMAT_TAG
from .safetensors_header import check_safetensors_header


@dataclass(frozen=True)
class FileSummary:
    """`ours`: a GAN Atelier checkpoint (else a public file, whose family is known only once
    it is read). `arch` / `task` from our metadata; `resumable`: it holds training state;
    `steps`: steps trained so far."""

    name: str
    ours: bool
    arch: str = ""
    task: str = ""
    resumable: bool = False
    steps: int = 0


def peek(path: str | os.PathLike) -> FileSummary:
    """The summary of a model file without reading its tensors (a CheckpointError for a
    broken safetensors header; other files are reported as not ours)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file {str(path)!r} does not exist" if not path.exists()
                              else f"model path {str(path)!r} is not a file")
    if path.suffix.lower() != ".safetensors":
        return FileSummary(path.name, ours=False)
    check_safetensors_header(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError):
        return FileSummary(path.name, ours=False)
    if meta.get("format") != FORMAT_TAG:
        return FileSummary(path.name, ours=False)
    steps = 0
    try:
        resume = json.loads(meta.get("resume", "null"))
        if isinstance(resume, dict) and isinstance(resume.get("step"), int):
            steps = resume["step"]
    except ValueError:
        resume = None
    return FileSummary(path.name, ours=True, arch=meta.get("arch", ""),
                       task=meta.get("task", ""), resumable=isinstance(resume, dict),
                       steps=steps)
