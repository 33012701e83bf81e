"""`gan_core.load`: any model file in, a GANModel or one clear CheckpointError out."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import CheckpointError
from ..model import GANModel
from .checkpoint import FORMAT_TAG, load_ours, read_safetensors
from .pickles import first_line, read_pickle_state
from .public import load_public

# What reading and interpreting arbitrary bytes can raise below the readers' own checks.
_INTERPRETING_ERRORS = (OSError, LookupError, TypeError, ValueError, AttributeError,
                        ArithmeticError, RuntimeError, NotImplementedError, RecursionError,
                        MemoryError)
TORCH_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")


def _check_file(path: Path) -> None:
    if not path.exists():
        raise CheckpointError(f"model file {str(path)!r} does not exist")
    if not path.is_file():
        raise CheckpointError(f"model path {str(path)!r} is not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"model file {path.name!r} is empty (0 bytes)")


def load(path: str | os.PathLike) -> GANModel:
    """Open a model file: our `.safetensors`, else a public format, else a clear error saying
    what the file holds.

    Whatever the file holds, the result is a GANModel or a CheckpointError naming the file:
    the readers check what they can and say what is wrong; anything else that goes wrong while
    interpreting the bytes (a format reader tripping on data it did not expect) is reported
    the same way, with the original exception chained for debugging."""
    path = Path(path)
    _check_file(path)
    try:
        return _load_checked(path)
    except CheckpointError:
        raise
    except _INTERPRETING_ERRORS as exc:
        raise CheckpointError(f"model file {path.name!r} could not be read as a model "
                              f"({type(exc).__name__}: {first_line(exc)})") from exc


def _load_checked(path: Path) -> GANModel:
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        meta, tensors = read_safetensors(path)
        if meta.get("format") == FORMAT_TAG:
            return load_ours(path, meta, tensors)
        return load_public(path, tensors)
    if suffix in TORCH_SUFFIXES:
        return load_public(path, read_pickle_state(path))
    raise CheckpointError(
        f"model file {path.name!r}: unsupported extension {suffix!r}; expected .safetensors, "
        ".pth or .pt"
    )
