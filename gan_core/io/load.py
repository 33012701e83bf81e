"""`gan_core.load`: any model file in, a GANModel or one clear CheckpointError out."""
from __future__ import annotations

import os
from pathlib import Path

from ..archs import public_formats
from ..errors import CheckpointError
from ..model import GANModel
from .checkpoint import FORMAT_TAG, load_ours, read_safetensors
from .nvidia_pickle import is_nvidia_pickle, read_nvidia_pickle
from .pickles import first_line, read_pickle_state
from .public import load_public

# What reading and interpreting arbitrary bytes can raise below the readers' own checks.
_INTERPRETING_ERRORS = (OSError, LookupError, TypeError, ValueError, AttributeError,
                        ArithmeticError, RuntimeError, NotImplementedError, RecursionError,
                        MemoryError)
TORCH_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")
NVIDIA_SUFFIXES = (".pkl",)
NVIDIA_CONTAINER = "nvidia_pickle"


def _check_file(path: Path) -> None:
    if not path.exists():
        raise CheckpointError(f"model file {str(path)!r} does not exist")
    if not path.is_file():
        raise CheckpointError(f"model path {str(path)!r} is not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"model file {path.name!r} is empty (0 bytes)")


def load(path: str | os.PathLike) -> GANModel:
    """Open a model file: our `.safetensors`, else a public format (torch files through the
    scanned weights-only reader, NVIDIA network pickles through the restricted NVIDIA reader),
    else a clear error saying what the file holds.

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


def _head(path: Path, n: int = 16) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def _load_checked(path: Path) -> GANModel:
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        meta, tensors = read_safetensors(path)
        if meta.get("format") == FORMAT_TAG:
            return load_ours(path, meta, tensors)
        return load_public(path, tensors)
    # A plain pickle (protocol 2-5, not torch's legacy container) is NVIDIA's network-pickle
    # layout whatever the name (users rename snapshots); torch.load could not read it anyway.
    if suffix in NVIDIA_SUFFIXES or is_nvidia_pickle(_head(path)):
        return _load_nvidia(path)
    if suffix in TORCH_SUFFIXES:
        return load_public(path, read_pickle_state(path))
    raise CheckpointError(
        f"model file {path.name!r}: unsupported extension {suffix!r}; expected .safetensors "
        "(ours, or public weights), .pth / .pt / .ckpt / .bin (torch checkpoints) or .pkl "
        "(NVIDIA StyleGAN network pickles)"
    )


def _load_nvidia(path: Path) -> GANModel:
    """An NVIDIA network pickle: read as data by the restricted reader (nothing in it runs),
    then given to the families that read that container."""
    obj = read_nvidia_pickle(path)
    if not public_formats(NVIDIA_CONTAINER):
        raise CheckpointError(
            f"model file {path.name!r} is an NVIDIA StyleGAN network pickle, but no model "
            "family of this gan_core version reads those yet")
    return load_public(path, obj, container=NVIDIA_CONTAINER)
