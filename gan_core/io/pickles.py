"""Torch pickle files (`.pth`, `.pt`, ...) read as data only.

`torch.load(weights_only=True)` never runs code: it rebuilds tensors, containers and numbers
and refuses every other class. The one class a public file may name beyond those is
`argparse.Namespace` (rosinality StyleGAN2 training checkpoints store their command line in
one), rebuilt attribute by attribute, so it never calls anything the file chooses.

An allow-list does not stop a stream that crashes the unpickler by its shape (a tuple nested
200,000 deep as a dict key segfaults CPython), so every pickle torch would read is first
scanned by gan_core.io.pickle_scan (nesting depth, value count, memo, frames), and torch then
reads exactly the bytes that were scanned: the file is opened once, everything in it except
the raw storage records (the bytes of the tensors, which torch copies and never interprets) is
read into memory ("pinned"), the scan reads the pinned bytes and torch.load reads a file object
that serves them, so a file rewritten in place between the check and the load cannot slip an
unchecked pickle in. What torch rebuilds is then checked tensor by tensor before any reader
sees it: no meta tensors, no view that repeats or reaches past its storage (an expanded view
claiming gigabytes in a 2.5 KB file), no more bytes claimed in total than the file could hold.
"""
from __future__ import annotations

import argparse
import bisect
import io
import os
import re
import struct
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import torch

from ..errors import CheckpointError
from ..statedict import check_file_tensors
from .pickle_scan import MAX_LINE_BYTES, scan_torch_stream

# The only classes a public file may name beyond tensors, containers and numbers.
PICKLE_ALLOWED = (argparse.Namespace,)

# What the tensors of a file may claim together, per byte of the file (plus a constant for
# tiny files): each element is stored once, so a real file's tensors claim at most its size;
# a few tied weights (the same storage under two names) stay far below twice that. Views that
# repeat one storage (`expand`) claim without bound; they are refused at this factor.
CLAIM_PER_FILE_BYTE = 2
CLAIM_SLACK_BYTES = 64 * 2**20

# torch's zip checkpoints keep each storage as a stored record `<archive>/data/<key>`.
_STORAGE_RECORD = re.compile(r"^[^/]+/data/\d+$")
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # zip local file header, 30 bytes
_LOCAL_SIGNATURE = b"PK\x03\x04"


def first_line(exc: BaseException) -> str:
    """An exception's first line, short enough for a one-line error."""
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__


# ----------------------------------------------------------------------------- pinned bytes

class PinnedFile(io.RawIOBase):
    """A read-only view of an open file of `size` bytes in which the `segments` (sorted,
    disjoint (start, bytes) pairs) are served from memory and only the bytes between them are
    read from the file, at the time they are asked for."""

    def __init__(self, raw: BinaryIO, size: int, segments: list[tuple[int, bytes]]):
        super().__init__()
        self._raw, self._size, self._pos = raw, size, 0
        self._segments = segments
        self._starts = [start for start, _ in segments]

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def _where(self, pos: int) -> tuple[int, bytes | None, int]:
        """(start, pinned bytes, end) of the segment holding `pos`, or of the gap (None)."""
        i = bisect.bisect_right(self._starts, pos) - 1
        if i >= 0:
            start, data = self._segments[i]
            if pos < start + len(data):
                return start, data, start + len(data)
        return pos, None, self._starts[i + 1] if i + 1 < len(self._starts) else self._size

    def readinto(self, buffer) -> int:
        """Fill `buffer` from the current position: pinned bytes from memory, the rest read
        from the file straight into the buffer (torch reads tensor records this way, so a
        record is never held twice)."""
        view = memoryview(buffer).cast("B")
        got = 0
        while got < len(view) and self._pos < self._size:
            pos = self._pos
            start, data, end = self._where(pos)
            take = min(len(view) - got, end - pos)
            if data is not None:
                view[got:got + take] = data[pos - start:pos - start + take]
            else:
                self._raw.seek(pos)
                take = self._raw.readinto(view[got:got + take])
                if not take:
                    raise OSError("the file shrank while it was being read")
            self._pos += take
            got += take
        return got

    def _chunk(self, n: int) -> bytes:
        """Up to n bytes from the current position, from one segment or one gap."""
        pos = self._pos
        n = min(n, self._size - pos)
        if n <= 0:
            return b""
        start, data, end = self._where(pos)
        if data is not None:
            out = data[pos - start:pos - start + n]
            self._pos += len(out)
            return out
        out = bytearray(min(n, end - pos))
        return bytes(out[:self.readinto(out)])

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            n = max(0, self._size - self._pos)
        out = bytearray(min(n, max(0, self._size - self._pos)))
        return bytes(out[:self.readinto(out)]) if out else b""

    def readline(self, limit: int | None = -1) -> bytes:
        limit = MAX_LINE_BYTES if limit is None or limit < 0 else min(limit, MAX_LINE_BYTES)
        parts, got = [], 0
        while got < limit:
            start = self._pos
            chunk = self._chunk(min(limit - got, 65536))
            if not chunk:
                break
            cut = chunk.find(b"\n")
            if cut >= 0:
                chunk = chunk[:cut + 1]
                self._pos = start + len(chunk)
            parts.append(chunk)
            got += len(chunk)
            if cut >= 0:
                break
        return b"".join(parts)


class _PrefixReader:
    """Reads a file from its start, keeping every byte read: what a sequential scan consumed
    becomes the pinned prefix torch then reads (the legacy format: pickles, then storages)."""

    def __init__(self, raw: BinaryIO, size: int):
        self._raw, self.size, self.pos = raw, size, 0
        self.data = bytearray()

    def _fill(self, end: int) -> None:
        end = min(end, self.size)
        if end > len(self.data):
            self._raw.seek(len(self.data))
            more = self._raw.read(end - len(self.data))
            if len(self.data) + len(more) < end:
                raise OSError("the file shrank while it was being read")
            self.data += more

    def read(self, n: int = -1) -> bytes:
        end = self.size if n is None or n < 0 else self.pos + n
        self._fill(end)
        out = bytes(self.data[self.pos:end])
        self.pos += len(out)
        return out

    def readline(self, n: int = -1) -> bytes:
        limit = MAX_LINE_BYTES if n is None or n < 0 else min(n, MAX_LINE_BYTES)
        out = bytearray()
        while len(out) < limit:
            self._fill(self.pos + min(4096, limit - len(out)))
            window = self.data[self.pos:self.pos + limit - len(out)]
            if not window:
                break
            cut = window.find(b"\n")
            take = window if cut < 0 else window[:cut + 1]
            out += take
            self.pos += len(take)
            if cut >= 0:
                break
        return bytes(out)

    def tell(self) -> int:
        return self.pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        self.pos = pos if whence == io.SEEK_SET else (
            self.pos + pos if whence == io.SEEK_CUR else self.size + pos)
        return self.pos


def _merge(ranges: list[tuple[int, int]], what: str) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for begin, end in sorted(ranges):
        if out and begin < out[-1][1]:
            raise CheckpointError(f"{what}: two records of its zip archive share bytes (a "
                                  "crafted archive; torch never writes one)")
        out.append((begin, end))
    return out


def _zip_ranges(source: BinaryIO, size: int, what: str) -> tuple[list[tuple[int, int]],
                                                                list[tuple[int, int]]]:
    """(raw storage records, every record) as byte ranges of the archive, from its central
    directory and the local headers `source` holds."""
    raw, every = [], []
    try:
        archive = zipfile.ZipFile(source)
        infos = archive.infolist()
    except Exception as exc:  # noqa: BLE001 - zipfile fails in many ways on damaged archives
        raise CheckpointError(f"{what}: is a damaged zip archive ({first_line(exc)}); "
                              "truncated or corrupt?") from None
    with archive:
        for info in infos:
            source.seek(info.header_offset)
            head = source.read(_LOCAL_HEADER.size)
            if len(head) != _LOCAL_HEADER.size or not head.startswith(_LOCAL_SIGNATURE):
                raise CheckpointError(f"{what}: the zip record {info.filename!r} has no local "
                                      "header where the directory says (truncated or corrupt?)")
            fields = _LOCAL_HEADER.unpack(head)
            name_len, extra_len = fields[-2], fields[-1]
            begin = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
            end = begin + info.compress_size
            if end > size:
                raise CheckpointError(f"{what}: the zip record {info.filename!r} ends at byte "
                                      f"{end}, past the end of the {size}-byte file")
            every.append((info.header_offset, end))
            if info.compress_type == zipfile.ZIP_STORED and _STORAGE_RECORD.match(info.filename):
                raw.append((begin, end))
    return _merge(raw, what), _merge(every, what)


def _pin_zip(raw: BinaryIO, size: int, what: str) -> PinnedFile:
    """Everything but the storage records' bytes, in memory; the directory is read again from
    the pinned copy and must describe the same records (else the file changed meanwhile)."""
    storages, _ = _zip_ranges(raw, size, what)
    segments, at = [], 0
    for begin, end in storages:
        if begin > at:
            raw.seek(at)
            segments.append((at, raw.read(begin - at)))
        at = end
    if at < size:
        raw.seek(at)
        segments.append((at, raw.read(size - at)))
    if sum(len(d) for _, d in segments) != size - sum(e - b for b, e in storages):
        raise CheckpointError(f"{what}: the file shrank while it was being read")
    pinned = PinnedFile(raw, size, segments)
    if _zip_ranges(pinned, size, what)[0] != storages:
        raise CheckpointError(f"{what}: the file changed while it was being read")
    pinned.seek(0)
    return pinned


def open_scanned(raw: BinaryIO, size: int, what: str) -> PinnedFile:
    """`raw` (an open torch file) as a PinnedFile whose pickles passed the scan: a zip
    checkpoint with all but its storage records pinned, any other file with the part the scan
    read (torch's legacy format: its five pickles) pinned."""
    raw.seek(0)
    if raw.read(4) == _LOCAL_SIGNATURE:
        pinned = _pin_zip(raw, size, what)
        scan_torch_stream(pinned, size, what)
        pinned.seek(0)
        return pinned
    prefix = _PrefixReader(raw, size)
    scan_torch_stream(prefix, size, what)
    return PinnedFile(raw, size, [(0, bytes(prefix.data))])


# ----------------------------------------------------------------------------- reading

def read_pickle_state(path: Path) -> dict[str, Any]:
    """A `.pth` state_dict read as data only: scanned, then unpickled by torch's weights-only
    unpickler from the same bytes, then every tensor checked (see the module docstring)."""
    what = f"model file {path.name!r}"
    try:
        with open(path, "rb") as raw:
            size = os.fstat(raw.fileno()).st_size
            if size == 0:
                raise CheckpointError(f"{what} is empty (0 bytes)")
            pinned = open_scanned(raw, size, what)
            try:
                with torch.serialization.safe_globals(list(PICKLE_ALLOWED)):
                    obj = torch.load(pinned, map_location="cpu", weights_only=True)
            except Exception as exc:  # noqa: BLE001 - any unpickling failure means "refused"
                raise CheckpointError(
                    f"{what} could not be read as plain weights (it may be truncated, or hold "
                    f"Python objects, which are never unpickled): {first_line(exc)}"
                ) from None
    except OSError as exc:
        raise CheckpointError(f"{what} cannot be read ({first_line(exc)})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{what} holds a {type(obj).__name__}, not a dict of tensors")
    check_file_tensors(obj, what, CLAIM_PER_FILE_BYTE * size + CLAIM_SLACK_BYTES)
    return obj
