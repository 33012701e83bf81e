"""Checking a safetensors file's header before any tensor is read from it.

A safetensors file is an 8-byte little-endian header length N, N bytes of UTF-8 JSON (padded
with spaces), then the body: raw tensor bytes. The JSON maps each tensor name to its dtype,
shape and `data_offsets` [begin, end] (relative to the body), plus an optional
`__metadata__` object of string -> string. The format requires the tensors to cover the body
exactly, with no holes and no overlaps (so a file cannot hide a second payload).

Model files come from anywhere, so every number in the header is checked against the file's
real size here, before the safetensors library maps the file or torch allocates a tensor: a
header that claims petabytes, overlapping or out-of-body ranges, unknown dtypes or a truncated
body gives a CheckpointError naming the file and the problem, and what is read is bounded by
min(file size, MAX_HEADER_BYTES). The header is parsed as JSON, never evaluated.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckpointError

# Real headers are KBs (a GAN with a few hundred tensors, resume state included) to a few MB
# (the largest language models, or training metadata). The safetensors library allows 100 MB,
# but parsing a hostile 100 MB header costs Python 0.6-1.7 GB and up to a minute (measured);
# 16 MiB and 65536 tensors bound that to a few hundred MB and seconds, far above any model
# gan_core loads.
MAX_HEADER_BYTES = 16 * 2**20
MAX_TENSORS = 65_536
LENGTH_BYTES = 8
METADATA_KEY = "__metadata__"

# Element sizes in bytes of the dtypes the safetensors torch binding reads.
DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E4M3FNUZ": 1, "F8_E5M2": 1, "F8_E5M2FNUZ": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8, "C64": 8,
}


@dataclass(frozen=True)
class TensorEntry:
    """One tensor as the header describes it; begin/end are offsets into the body."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass(frozen=True)
class SafetensorsHeader:
    """A header that passed every check: the tensors tile the body exactly."""

    metadata: dict[str, str]
    tensors: dict[str, TensorEntry]
    header_bytes: int
    body_bytes: int


def _fail(path: Path, problem: str) -> CheckpointError:
    return CheckpointError(f"model file {path.name!r} is not a valid safetensors file: {problem}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key!r} appears twice")
        out[key] = value
    return out


def _byte_count(shape: list[int], item: int, limit: int) -> int:
    """numel * item, or limit + 1 as soon as it exceeds limit (hostile shapes can multiply to
    numbers with thousands of digits; nothing above limit can be valid anyway)."""
    if any(d == 0 for d in shape):
        return 0
    total = item
    for d in shape:
        total *= d
        if total > limit:
            return limit + 1
    return total


def _parse_json(path: Path, raw: bytes) -> dict[str, object]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(path, f"the header is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not text.startswith("{"):
        raise _fail(path, f"the header does not start with '{{' (it starts with {text[:16]!r})")
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise _fail(path, "the header JSON is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, a duplicate key, an integer too long to parse
        raise _fail(path, f"the header is not valid JSON ({str(exc)[:200]})") from None
    if not isinstance(obj, dict):
        raise _fail(path, f"the header is JSON {type(obj).__name__}, not an object")
    return obj


def _metadata(path: Path, value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(path, f"{METADATA_KEY} is a JSON {type(value).__name__}, not an object of "
                          "strings")
    for key, item in value.items():
        if not isinstance(item, str):
            raise _fail(path, f"{METADATA_KEY} entry {key!r} is a JSON {type(item).__name__}, "
                              "not a string")
    return dict(value)


def _entry(path: Path, name: str, info: object, body: int) -> TensorEntry:
    what = f"tensor {name!r}"
    if not isinstance(info, dict):
        raise _fail(path, f"{what} is described by a JSON {type(info).__name__}, not an object")
    missing = [k for k in ("dtype", "shape", "data_offsets") if k not in info]
    if missing:
        raise _fail(path, f"{what} lacks {', '.join(missing)}")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BYTES:
        raise _fail(path, f"{what} has unknown dtype {str(dtype)[:40]!r}; expected one of "
                          f"{', '.join(DTYPE_BYTES)}")
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        raise _fail(path, f"{what} has shape {str(shape)[:80]}; expected a list of "
                          "non-negative integers")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(_is_int(o) and o >= 0 for o in offsets) or offsets[0] > offsets[1]):
        raise _fail(path, f"{what} has data_offsets {str(offsets)[:80]}; expected [begin, end] "
                          "with 0 <= begin <= end")
    begin, end = offsets
    if end > body:
        raise _fail(path, f"{what} claims bytes {begin}..{end} ({end - begin} bytes) but the "
                          f"file body has {body} (truncated or corrupt?)")
    needed = _byte_count(shape, DTYPE_BYTES[dtype], end - begin)
    if needed != end - begin:
        claim = f"more than {end - begin} bytes" if needed > end - begin else f"{needed} bytes"
        raise _fail(path, f"{what} ({dtype}, shape {shape}) needs {claim} but its "
                          f"data_offsets [{begin}, {end}] span {end - begin}")
    return TensorEntry(name, dtype, tuple(shape), begin, end)


def _check_tiling(path: Path, entries: list[TensorEntry], body: int) -> None:
    """The tensors must cover the body exactly: sorted by offset, each starts where the
    previous ended and the last ends at the end of the file."""
    covered, previous = 0, None
    for e in sorted(entries, key=lambda e: (e.begin, e.end)):
        if e.begin < covered:
            raise _fail(path, f"tensors {previous.name!r} (bytes {previous.begin}..{previous.end}) "
                              f"and {e.name!r} (bytes {e.begin}..{e.end}) overlap")
        if e.begin > covered:
            raise _fail(path, f"body bytes {covered}..{e.begin} belong to no tensor (a hole)")
        covered, previous = e.end, e
    if covered != body:
        raise _fail(path, f"the tensors cover {covered} bytes of the {body}-byte body; the "
                          f"remaining {body - covered} belong to no tensor")


def check_safetensors_header(path: str | os.PathLike) -> SafetensorsHeader:
    """Read and check the header of the safetensors file at `path` (see the module docstring);
    CheckpointError naming the file and the first problem found."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(LENGTH_BYTES)
        if len(head) < LENGTH_BYTES:
            raise _fail(path, f"it has {size} bytes, fewer than the {LENGTH_BYTES}-byte header "
                              "length (truncated or corrupt?)")
        n = int.from_bytes(head, "little")
        if n > MAX_HEADER_BYTES:
            raise _fail(path, f"its header length field says {n} bytes, more than the "
                              f"{MAX_HEADER_BYTES}-byte limit")
        if n > size - LENGTH_BYTES:
            raise _fail(path, f"its header length field says {n} bytes but only "
                              f"{size - LENGTH_BYTES} follow (truncated or corrupt?)")
        if n < 2:
            raise _fail(path, f"its header length field says {n} bytes, too short for a JSON "
                              "object")
        raw = fh.read(n)
    if len(raw) != n:  # the file shrank while being read
        raise _fail(path, f"the header ended after {len(raw)} of {n} bytes (truncated?)")
    obj = _parse_json(path, raw)
    body = size - LENGTH_BYTES - n
    if len(obj) - (METADATA_KEY in obj) > MAX_TENSORS:
        raise _fail(path, f"its header lists {len(obj) - (METADATA_KEY in obj)} tensors, more "
                          f"than the {MAX_TENSORS} this reader accepts")
    metadata = _metadata(path, obj.get(METADATA_KEY))
    tensors = {name: _entry(path, name, info, body)
               for name, info in obj.items() if name != METADATA_KEY}
    _check_tiling(path, list(tensors.values()), body)
    return SafetensorsHeader(metadata, tensors, n, body)
