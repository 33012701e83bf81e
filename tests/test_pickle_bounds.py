"""Pickle streams are bounded before any unpickler reads them (gan_core/io/pickle_scan.py).

- a 200,000-deep tuple used as a dict key crashes CPython inside torch.load(weights_only=True)
  (shown in a child process); the scan refuses it in-process, in zip and legacy `.pth` files;
- ordinary state_dicts, 100-deep structures and a flat list of 100,000 ints pass (depth is not
  length); memo tricks that grow a container after it was nested still count;
- truncated, garbage and malformed streams give CheckpointError;
- GLOBAL / STACK_GLOBAL names come out right for protocols 2-5, also through the memo;
- property tests: the reported depth equals an independent depth of random Python structures
  pickled with protocols 0-5, and refusal happens exactly above max_depth; mutated torch files
  either pass or raise CheckpointError, never anything else.
"""
from __future__ import annotations

import collections
import fractions
import io
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gan_core.errors import CheckpointError
from gan_core.io.pickle_scan import (
    DEFAULT_MAX_DEPTH,
    scan_pickle,
    scan_pickle_sequence,
    scan_torch_file,
)


def py_depth(obj) -> int:
    """Independent depth of a Python value: scalars 0, a container 1 + its deepest item (keys
    and values for dicts), so an empty container is 1."""
    if isinstance(obj, dict):
        return 1 + max((py_depth(x) for pair in obj.items() for x in pair), default=0)
    if isinstance(obj, (list, tuple, set, frozenset)):
        return 1 + max((py_depth(x) for x in obj), default=0)
    return 0


def deep_key_pickle(depth: int) -> bytes:
    """{((...((),)...),): 1} with `depth` nested tuples, written opcode by opcode (pickle.dumps
    itself refuses to recurse that deep)."""
    return b"\x80\x02}" + b")" + b"\x85" * (depth - 1) + b"K\x01s."


def zip_with_data_pkl(path: Path, data_pkl: bytes) -> Path:
    """A real torch zip checkpoint whose data.pkl is replaced."""
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source, \
            zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            data = source.read(info)
            target.writestr(info.filename, data_pkl if info.filename.endswith("/data.pkl")
                            else data)
    return path


def legacy_with_object(path: Path, object_pkl: bytes) -> Path:
    """A real legacy torch file (magic, protocol, system info) with our object pickle and an
    empty storage key list."""
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buffer, _use_new_zipfile_serialization=False)
    raw = buffer.getvalue()
    head = sum(s.length for s in scan_pickle_sequence(raw, "x", ("magic", "protocol", "info")))
    path.write_bytes(raw[:head] + object_pkl + b"\x80\x02]q\x00.")
    return path


CHILD_LOAD = ("import sys, torch\n"
              "torch.load(sys.argv[1], weights_only=True, map_location='cpu')\n"
              "print('LOADED')\n")


# ----------------------------------------------------------------------------- deep nesting

@pytest.mark.parametrize("kind", ["zip", "legacy"])
def test_deep_tuple_key_is_refused_without_crashing(tmp_path, kind):
    payload = deep_key_pickle(200_000)
    path = tmp_path / f"deep_{kind}.pth"
    if kind == "zip":
        zip_with_data_pkl(path, payload)
    else:
        legacy_with_object(path, payload)
    # The reference behaviour, only ever in a child: torch's weights-only unpickler dies
    # (SIGSEGV when hashing the key) or at best errors; it never loads the file.
    child = subprocess.run([sys.executable, "-c", CHILD_LOAD, str(path)], capture_output=True,
                           text=True, timeout=300, check=False)
    assert child.returncode != 0 and "LOADED" not in child.stdout
    with pytest.raises(CheckpointError) as info:
        scan_torch_file(path)
    message = str(info.value)
    assert path.name in message and "deep" in message and str(DEFAULT_MAX_DEPTH) in message


def test_deep_nesting_in_a_bare_pickle_is_refused():
    with pytest.raises(CheckpointError, match="nests containers"):
        scan_pickle(deep_key_pickle(200_000), "stream")
    deep_lists = b"\x80\x02" + b"]" * 5000 + b"a" * 4999 + b"."
    with pytest.raises(CheckpointError, match="nests containers"):
        scan_pickle(deep_lists, "stream")
    assert scan_pickle(deep_lists, "stream", max_depth=5000).max_depth == 5000


def test_100_deep_passes_and_torch_still_loads_it(tmp_path):
    path = zip_with_data_pkl(tmp_path / "deep100.pth", deep_key_pickle(100))
    scan_torch_file(path)
    loaded = torch.load(path, weights_only=True)
    assert py_depth(next(iter(loaded))) == 100
    nested: list = []
    for _ in range(99):
        nested = [nested]
    assert scan_pickle(pickle.dumps(nested, 4), "x").max_depth == 100


def test_ordinary_state_dicts_pass(tmp_path):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                              torch.nn.Linear(4, 2))
    objects = {"state_dict": net.state_dict(),
               "checkpoint": {"g": net.state_dict(), "step": 10, "args": {"lr": 0.002},
                              "opt": torch.optim.Adam(net.parameters()).state_dict()},
               "tensor": torch.arange(5)}
    for name, obj in objects.items():
        for zip_format in (True, False):
            path = tmp_path / f"{name}_{zip_format}.pth"
            torch.save(obj, path, _use_new_zipfile_serialization=zip_format)
            assert scan_torch_file(path) is None
    bare = tmp_path / "bare.pkl"
    bare.write_bytes(pickle.dumps({"a": [1, 2, (3, 4)]}, 4))
    scan_torch_file(bare)


def test_depth_is_not_length(tmp_path):
    flat = list(range(100_000))
    for protocol in (0, 2, 4, 5):
        stats = scan_pickle(pickle.dumps(flat, protocol), "flat")
        assert stats.max_depth == 1 and stats.objects >= 100_000
    path = tmp_path / "flat.pth"
    torch.save({"ids": flat}, path)
    scan_torch_file(path)
    assert scan_pickle(pickle.dumps({i: None for i in range(50_000)}, 4), "d").max_depth == 1


def test_containers_grown_after_nesting_still_count():
    """Lists memoised first and linked in the 'wrong' order: each append makes an already
    nested list deeper. The scan carries that growth up to every holder."""
    n = 60
    body = b"]\x94" * n              # n empty lists in memo slots 0..n-1, all on the stack
    for i in range(n - 1):           # append list i+1 into list i, root first
        body += b"j" + struct.pack("<I", i) + b"j" + struct.pack("<I", i + 1) + b"a0"
    stream = b"\x80\x04" + body + b"h\x00."
    assert scan_pickle(stream, "x").max_depth == n
    with pytest.raises(CheckpointError, match="nests containers"):
        scan_pickle(stream, "x", max_depth=n - 1)


def test_cycles_stay_shallow():
    """A cycle is counted at most once around (recursion guards handle cycles; long chains
    are what overflow the C stack), so recursive structures pass."""
    loop: list = []
    loop.append(loop)
    pair: dict = {}
    pair["self"] = [pair]
    for obj in (loop, pair):
        for protocol in range(6):
            assert scan_pickle(pickle.dumps(obj, protocol), "x").max_depth <= 4


# ----------------------------------------------------------------------------- broken streams

def test_truncated_streams_are_refused():
    stream = pickle.dumps({"a": [1, 2.5, "x" * 300, b"y" * 70_000], "b": (None, True)}, 4)
    for cut in list(range(60)) + [len(stream) // 2, len(stream) - 1]:
        with pytest.raises(CheckpointError):
            scan_pickle(stream[:cut], "cut")


@pytest.mark.parametrize("garbage", [
    b"\x00\x01\x02garbage", b"hello world", b"\x80\x09N.",
    b"\x80\x04\x95\xff\xff\xff\xff\x00\x00\x00\x00N.",       # a frame longer than the stream
    b"\x80\x02a.", b"\x80\x02(e.", b"\x80\x04\x93.", b"\x80\x02h\x05.",
    b"\x80\x02Nr\xff\xff\xff\xff.",                           # memo slot 2**32 - 1
    b"\x80\x02NNu.",
    b"\x80\x02\x8e\xff\xff\xff\xff\xff\xff\xff\x7f",              # bytes8 claiming 2**63 bytes
    b"\x80\x02NNNNN0000001.", b"(((((((((((", b".", b"",
])
def test_garbage_and_malformed_streams_are_refused(garbage):
    with pytest.raises(CheckpointError):
        scan_pickle(garbage, "junk")


def test_broken_torch_files_are_refused(tmp_path):
    good = tmp_path / "good.pth"
    torch.save({"w": torch.ones(3)}, good)
    raw = good.read_bytes()
    cases = {"empty.pth": b"", "garbage.pth": b"\x00" * 100, "cut_zip.pth": raw[:len(raw) // 2],
             "zip_no_pkl.pth": None}
    with zipfile.ZipFile(tmp_path / "zip_no_pkl.pth", "w") as archive:
        archive.writestr("archive/other.txt", "x")
    for name, data in cases.items():
        path = tmp_path / name
        if data is not None:
            path.write_bytes(data)
        with pytest.raises(CheckpointError) as info:
            scan_torch_file(path)
        assert name in str(info.value)
    legacy = tmp_path / "legacy.pth"
    torch.save({"w": torch.ones(3)}, legacy, _use_new_zipfile_serialization=False)
    raw = legacy.read_bytes()
    for cut in (10, 30, 100, 200):
        legacy.write_bytes(raw[:cut])
        with pytest.raises(CheckpointError, match="legacy"):
            scan_torch_file(legacy)


def test_oversized_data_pkl_is_refused_from_the_directory(tmp_path):
    """A compressed data.pkl claiming a huge expansion is refused before it is read."""
    path = tmp_path / "bomb.pth"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02" + b"N" * (2 << 20) + b".")
    with pytest.raises(CheckpointError, match="zip bomb"):
        scan_torch_file(path)


# ----------------------------------------------------------------------------- global names

@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_global_names_are_reported(protocol):
    stream = pickle.dumps([collections.OrderedDict, fractions.Fraction, collections.OrderedDict,
                           collections.OrderedDict(a=1)], protocol)
    stats = scan_pickle(stream, "x")
    assert stats.globals == {"collections.OrderedDict", "fractions.Fraction"}
    assert stats.protocol == protocol


def test_stack_global_follows_the_stack_and_the_memo():
    memo_module = (b"\x80\x04\x8c\x0bcollections\x94" + b"0"  # push, memoize, pop
                   + b"h\x00\x8c\x0bOrderedDict\x94\x93)R.")  # module from the memo
    stats = scan_pickle(memo_module, "x")
    assert stats.globals == {"collections.OrderedDict"}
    # The last two strings pushed are not what STACK_GLOBAL takes after a POP.
    trap = b"\x80\x04\x8c\x02os\x8c\x06system\x8c\x01x0\x93."
    assert scan_pickle(trap, "x").globals == {"os.system"}
    with pytest.raises(CheckpointError, match="STACK_GLOBAL"):
        scan_pickle(b"\x80\x04K\x01\x8c\x01x\x93.", "x")


def test_protocols_0_and_1_are_scanned():
    for protocol in (0, 1):
        stats = scan_pickle(pickle.dumps({"a": fractions.Fraction(1, 3)}, protocol), "x")
        assert stats.protocol == protocol and "fractions.Fraction" in stats.globals


def test_absurd_memo_slots_and_item_counts_are_refused():
    with pytest.raises(CheckpointError, match="memo slot"):
        scan_pickle(b"\x80\x02Nr\x00\x00\x00\xf0.", "x")
    with pytest.raises(CheckpointError, match="values"):
        scan_pickle(pickle.dumps(list(range(1000)), 4), "x", max_items=500)
    with pytest.raises(CheckpointError, match="opcodes"):
        scan_pickle(b"\x80\x02N" + b"q\x00" * 10_000 + b".", "x")


# ----------------------------------------------------------------------------- properties

_scalars = st.one_of(st.integers(), st.integers(min_value=-2**70, max_value=2**70),
                     st.text(max_size=4), st.binary(max_size=4),
                     st.floats(allow_nan=False), st.none(), st.booleans())
_hashables = st.recursive(
    _scalars, lambda inner: st.one_of(st.lists(inner, max_size=3).map(tuple),
                                      st.frozensets(inner, max_size=3)), max_leaves=6)
_structures = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.lists(inner, max_size=4).map(tuple),
                            st.dictionaries(_hashables, inner, max_size=3),
                            st.sets(_hashables, max_size=3), st.frozensets(_hashables, max_size=2)),
    max_leaves=25)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(obj=_structures, protocol=st.integers(0, 5), max_depth=st.integers(0, 7))
def test_reported_depth_is_the_structures_depth(obj, protocol, max_depth):
    stream = pickle.dumps(obj, protocol)
    expected = py_depth(obj)
    assert scan_pickle(stream, "x").max_depth == expected
    if expected > max_depth:
        with pytest.raises(CheckpointError):
            scan_pickle(stream, "x", max_depth=max_depth)
    else:
        assert scan_pickle(stream, "x", max_depth=max_depth).max_depth == expected


def _torch_file_bytes(zip_format: bool) -> bytes:
    buffer = io.BytesIO()
    torch.save({"w": torch.arange(4.0), "n": [1, 2], "s": "x", "d": {"k": (1, 2)}}, buffer,
               _use_new_zipfile_serialization=zip_format)
    return buffer.getvalue()


_TORCH_FILES = {True: _torch_file_bytes(True), False: _torch_file_bytes(False)}


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(zip_format=st.booleans(), data=st.data())
def test_mutated_torch_files_pass_or_raise_checkpoint_error(tmp_path, zip_format, data):
    raw = bytearray(_TORCH_FILES[zip_format])
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, max(0, len(raw) - 1)))
        how = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        if how == "flip" and raw:
            raw[where] ^= data.draw(st.integers(1, 255))
        elif how == "delete":
            del raw[where:where + data.draw(st.integers(1, 16))]
        elif how == "insert":
            raw[where:where] = data.draw(st.binary(min_size=1, max_size=16))
        else:
            del raw[where:]
    path = tmp_path / "mutated.pth"
    path.write_bytes(bytes(raw))
    try:
        scan_torch_file(path)
    except CheckpointError:
        pass
