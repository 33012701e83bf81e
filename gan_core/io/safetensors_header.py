"""Checking a safetensors file's header before the safetensors library reads it.

A safetensors file is an 8-byte little-endian header length N, N bytes of UTF-8 JSON (padded
with spaces), then the body: raw tensor bytes. The JSON maps each tensor name to its dtype,
shape and `data_offsets` [begin, end] (relative to the body), plus an optional
`__metadata__` object of string -> string. The format requires the tensors to cover the body
exactly, with no holes and no overlaps (so a file cannot hide a second payload).

Who checks what. The safetensors library (0.8.0, verified by tests/test_security_files.py
for each hostile header below) validates the whole header when a file is opened, before it
maps the file or makes a tensor: the length field against the file size and its own 100 MB
cap, UTF-8, JSON (with a nesting limit), known dtypes, shapes and offsets as unsigned
integers, `numel * itemsize` without overflow and equal to each tensor's span, the tensors
sorted by offset starting where the previous one ended ("invalid offset for tensor"), the
last one ending at the end of the file ("file not fully covered") and `__metadata__` as a
string -> string map. gan_core leans on that. What the library does not do is done here:

- a 16 MiB header cap: parsing a hostile header at the library's 100 MB limit cost Python
  0.6-1.7 GB and up to a minute (measured), and gan_core parses the JSON itself too;
- duplicate keys: the library keeps one of two tensors of the same name without a word
  (a header listing "a" twice with the same offsets opens as one tensor), so a file could
  show one reader one tensor and another reader the other;
- at most MAX_TENSORS tensors (each costs the library and torch a few hundred bytes);
- the header must start with '{' as the format says (the library accepts leading spaces);
- clear errors: `explain_refusal` turns the library's terse messages into ones that name
  the file, the tensor and the bytes involved.

The header is parsed as JSON, never evaluated; what is read is bounded by
min(file size, MAX_HEADER_BYTES).
"""
from __future__ import annotations

import json
import os
import re
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

# Element sizes in bytes of the dtypes the safetensors torch binding reads (for messages and
# the tests' own check of what the library accepted).
DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E4M3FNUZ": 1, "F8_E5M2": 1, "F8_E5M2FNUZ": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8, "C64": 8,
}


@dataclass(frozen=True)
class SafetensorsHeader:
    """A header that passed gan_core's own checks: `metadata` (string -> string when the
    header's is one, else {}: the library refuses the file then), `entries` each tensor's raw
    JSON description (validated by the library when the file is opened)."""

    metadata: dict[str, str]
    entries: dict[str, object]
    header_bytes: int
    body_bytes: int


def _fail(path: Path, problem: str) -> CheckpointError:
    return CheckpointError(f"model file {path.name!r} is not a valid safetensors file: {problem}")


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key!r} appears twice")
        out[key] = value
    return out


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


def _metadata(value: object) -> dict[str, str]:
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return dict(value)
    return {}


def check_safetensors_header(path: str | os.PathLike) -> SafetensorsHeader:
    """Read and check the header of the safetensors file at `path` (the checks the library
    does not make: see the module docstring); CheckpointError naming the file and the first
    problem found."""
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
    count = len(obj) - (METADATA_KEY in obj)
    if count > MAX_TENSORS:
        raise _fail(path, f"its header lists {count} tensors, more than the {MAX_TENSORS} this "
                          "reader accepts")
    entries = {name: info for name, info in obj.items() if name != METADATA_KEY}
    return SafetensorsHeader(_metadata(obj.get(METADATA_KEY)), entries, n,
                             size - LENGTH_BYTES - n)


# ----------------------------------------------------------------------------- clear errors

_LIBRARY_PREFIX = "Error while deserializing header: "
_BAD_OFFSET = re.compile(r"invalid offset for tensor `(.*)`")


def _offsets(info: object) -> tuple[int, int] | None:
    offsets = info.get("data_offsets") if isinstance(info, dict) else None
    if (isinstance(offsets, list) and len(offsets) == 2
            and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
        return offsets[0], offsets[1]
    return None


def explain_refusal(head: SafetensorsHeader, message: str) -> str:
    """The safetensors library's refusal of a file whose header passed ours, in words that
    name the tensor and the bytes (read off the header already parsed; nothing is re-checked)."""
    detail = message.split(_LIBRARY_PREFIX, 1)[-1].strip()
    body = head.body_bytes
    spans = {name: o for name, info in head.entries.items() if (o := _offsets(info))}
    if "not fully covered" in detail:
        beyond = [(name, o) for name, o in spans.items() if o[1] > body]
        if beyond:
            name, (begin, end) = max(beyond, key=lambda item: item[1][1])
            return (f"tensor {name!r} claims bytes {begin}..{end} ({end - begin} bytes) but the "
                    f"file body has {body} (truncated or corrupt?)")
        covered = max((o[1] for o in spans.values()), default=0)
        return (f"the tensors cover {covered} bytes of the {body}-byte body; the remaining "
                f"{body - covered} belong to no tensor")
    found = _BAD_OFFSET.search(detail)
    if found:
        name = found.group(1)
        where = f" (bytes {spans[name][0]}..{spans[name][1]})" if name in spans else ""
        return (f"tensor {name!r}{where} does not start where the tensor before it ends: "
                "overlapping offsets, a hole between tensors, or begin after end (the tensors "
                "must tile the body exactly)")
    if "overflow computing buffer size" in detail:
        return "a tensor's shape and dtype claim more bytes than any file can hold"
    if "invalid shape, data type, or offset" in detail:
        return ("a tensor's data_offsets do not span exactly the bytes its dtype and shape "
                "need")
    if detail.startswith("invalid JSON in header: "):
        return f"the header is not what the format allows ({detail[len('invalid JSON in header: '):][:200]})"
    return detail[:300]
