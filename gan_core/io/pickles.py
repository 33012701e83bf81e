"""Torch pickle files (`.pth`, `.pt`, ...) read as data only.

`torch.load(weights_only=True)` never runs code: it rebuilds tensors, containers and numbers
and refuses every other class. The one class a public file may name beyond those is
`argparse.Namespace` (rosinality StyleGAN2 training checkpoints store their command line in
one), rebuilt attribute by attribute, so it never calls anything the file chooses.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError

# The only classes a public file may name beyond tensors, containers and numbers.
PICKLE_ALLOWED = (argparse.Namespace,)


def first_line(exc: BaseException) -> str:
    """An exception's first line, short enough for a one-line error."""
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__


def read_pickle_state(path: Path) -> dict[str, Any]:
    """A `.pth` state_dict read as data only (weights_only=True never runs code)."""
    try:
        with torch.serialization.safe_globals(list(PICKLE_ALLOWED)):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "refused"
        raise CheckpointError(
            f"model file {path.name!r} could not be read as plain weights (it may be truncated, "
            f"or hold Python objects, which are never unpickled): {first_line(exc)}"
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"model file {path.name!r} holds a {type(obj).__name__}, not a dict of tensors"
        )
    return obj
