"""Hostile and broken model files (SECURITY.md, "Model files are data"):

- a pickle that would run code is refused with an error naming the file, wherever the payload
  sits (top level, nested, as a key, inside the one allowed class argparse.Namespace, in the
  legacy format, as a bare pickle), and the code does not run (a marker file is not created);
- no code in the project unpickles, evaluates or executes file data (a static check);
- safetensors headers are checked before anything is allocated: absurd sizes, overlaps, holes,
  unknown dtypes, truncated bodies, non-JSON headers, non-string metadata;
- foreign or broken files get an answer saying what is wrong (keys, counts, sizes).
"""
from __future__ import annotations

import argparse
import ast
import builtins
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import gan_core
from gan_core.io import checkpoint, pickles
from gan_core.model import GANModel
from gan_core.archs import get_arch
from gan_core.io.safetensors_header import (DTYPE_BYTES, MAX_HEADER_BYTES, check_safetensors_header)

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("core_single_thread")


# ----------------------------------------------------------------------------- code in pickles

class _Shell:
    """Unpickled by full pickle, this runs a shell command."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _PyExec:
    """Unpickled by full pickle, this runs Python source."""

    def __init__(self, source: str):
        self.source = source

    def __reduce__(self):
        return (builtins.exec, (self.source,))


class _NamespaceThatRuns(argparse.Namespace):
    """A subclass of the one allowed class, reducing to a shell command."""

    def __init__(self, command: str):
        super().__init__()
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _payloads(marker: Path) -> dict[str, object]:
    return {"os.system": _Shell(f"touch '{marker}'"),
            "exec": _PyExec(f"open({str(marker)!r}, 'w').close()")}


def _placements(evil, weights) -> dict[str, object]:
    """Where a payload can hide in a checkpoint-like object."""
    return {
        "top level": evil,
        "a value": {"state_dict": evil},
        "deeply nested": {"g": weights, "meta": [{"a": ({"b": [evil]},)}]},
        "a dict key": {evil: weights["w"]},
        "a Namespace attribute": {"g_ema": weights, "args": argparse.Namespace(size=64, cmd=evil)},
        "a Namespace in a list": {"g_ema": weights,
                                  "runs": [argparse.Namespace(inner=argparse.Namespace(x=evil))]},
    }


def _write(path: Path, obj, how: str) -> None:
    if how == "zip":
        torch.save(obj, path)
    elif how == "legacy":
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    else:  # a bare pickle, not torch's container at all
        path.write_bytes(pickle.dumps(obj, protocol=0 if how == "pickle0" else 4))


@pytest.mark.parametrize("how", ["zip", "legacy", "pickle0", "pickle4"])
@pytest.mark.parametrize("payload", ["os.system", "exec"])
def test_code_in_a_pickle_never_runs_wherever_it_sits(tmp_path, how, payload):
    weights = {"w": torch.zeros(3)}
    marker = tmp_path / "MARKER"
    evil = _payloads(marker)[payload]
    for where, obj in _placements(evil, weights).items():
        path = tmp_path / f"evil_{where.replace(' ', '_')}.pth"
        _write(path, obj, how)
        with pytest.raises(gan_core.CheckpointError) as info:
            gan_core.load(path)
        assert path.name in str(info.value), where
        # A bare protocol 2-5 pickle is NVIDIA's network-pickle layout, whatever its name: the
        # restricted NVIDIA reader refuses the global; torch's containers are torch's refusal.
        said = "nothing in the file is run" if how == "pickle4" else "never unpickled"
        assert said in str(info.value), where
        assert not marker.exists(), f"code ran: payload {payload} at {where} ({how})"


def test_a_subclass_of_the_allowed_class_is_not_allowed(tmp_path):
    marker = tmp_path / "MARKER"
    path = tmp_path / "sub.pt"
    torch.save({"args": _NamespaceThatRuns(f"touch '{marker}'")}, path)
    with pytest.raises(gan_core.CheckpointError, match="sub.pt.*never unpickled"):
        gan_core.load(path)
    assert not marker.exists()


def test_the_allow_list_is_namespace_only_and_does_not_leak(tmp_path):
    assert pickles.PICKLE_ALLOWED == (argparse.Namespace,)
    path = tmp_path / "args.pth"
    torch.save({"args": argparse.Namespace(size=8, lr=0.002, name="x"),
                "w": torch.ones(2)}, path)
    obj = pickles.read_pickle_state(path)  # the pickle stage alone: plain data comes back
    assert isinstance(obj["args"], argparse.Namespace) and vars(obj["args"])["size"] == 8
    # the allow-list is scoped to our reads: torch's own global list is unchanged afterwards
    assert argparse.Namespace not in torch.serialization.get_safe_globals()
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


def test_a_namespace_cannot_be_turned_into_another_class(tmp_path):
    """BUILD may set attributes on an allowed Namespace; setting __class__ to a class the file
    names is refused because the class itself must be on the allow-list."""
    marker = tmp_path / "MARKER"
    data = (b"\x80\x02cargparse\nNamespace\n)\x81"  # Namespace() via NEWOBJ, then
            b"N}X\t\x00\x00\x00__class__cos\nsystem\ns\x86b.")  # BUILD (None, {"__class__": os.system})
    path = tmp_path / "swap.pth"
    path.write_bytes(data)
    with pytest.raises(gan_core.CheckpointError, match="swap.pth"):
        gan_core.load(path)
    assert not marker.exists()


_PICKLING_CALLS = {("pickle", "load"), ("pickle", "loads"), ("marshal", "load"),
                   ("marshal", "loads"), ("dill", "load"), ("dill", "loads"), ("shelve", "open"),
                   ("yaml", "load"), ("yaml", "unsafe_load"), ("jsonpickle", "decode")}


def _call_name(node: ast.Call) -> tuple[str, str]:
    f = node.func
    if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
        return f.value.id, f.attr
    if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Attribute):
        return f.value.attr, f.attr
    if isinstance(f, ast.Name):
        return "", f.id
    return "", ""


def test_no_code_reads_files_with_pickle_eval_or_exec():
    """Static check over gan_core, nodes, benchmarks, tests and the pack entry: every
    torch.load passes weights_only=True; nothing calls pickle/marshal/dill/shelve/yaml loaders,
    numpy loads with allow_pickle=True, eval, exec or compile."""
    offenders = []
    files = [REPO / "__init__.py"] + [p for d in ("gan_core", "nodes", "benchmarks", "tests")
                                      for p in (REPO / d).rglob("*.py")]
    for path in files:
        if path == Path(__file__).resolve():
            continue  # this file builds hostile pickles on purpose (pickle.dumps only)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            owner, name = _call_name(node)
            where = f"{path.relative_to(REPO)}:{node.lineno}"
            kwargs = {k.arg: k.value for k in node.keywords}
            if (owner, name) == ("torch", "load"):
                wo = kwargs.get("weights_only")
                if not (isinstance(wo, ast.Constant) and wo.value is True):
                    offenders.append(f"{where} torch.load without weights_only=True")
            elif (owner, name) in _PICKLING_CALLS:
                offenders.append(f"{where} {owner}.{name}")
            elif owner in ("np", "numpy") and name == "load":
                ap = kwargs.get("allow_pickle")
                if isinstance(ap, ast.Constant) and ap.value is True:
                    offenders.append(f"{where} numpy.load(allow_pickle=True)")
            elif owner in ("", "builtins") and name in ("eval", "exec", "compile", "__import__"):
                offenders.append(f"{where} {name}()")
    assert offenders == []


# ----------------------------------------------------------------------------- safetensors headers

def _header_file(path: Path, header: dict | bytes, body: bytes = b"", length: int | None = None,
                 pad: bytes = b"") -> Path:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    raw += pad
    path.write_bytes(struct.pack("<Q", len(raw) if length is None else length) + raw + body)
    return path


def _f32(name: str, shape, begin: int, end: int | None = None) -> dict:
    n = 4
    for d in shape:
        n *= d
    return {name: {"dtype": "F32", "shape": list(shape), "data_offsets": [begin, begin + n
                                                                           if end is None else end]}}


# name: (header, body, header-length override, what the error must say, who refuses it:
# "ours" = gan_core.io.safetensors_header before the library is called, "library" = the
# safetensors library when the file is opened, before any tensor is made)
HOSTILE_HEADERS = {
    "absurd tensor size": ({"G.x": {"dtype": "F32", "shape": [10**7, 10**8],
                                    "data_offsets": [0, 4 * 10**15]}},
                           bytes(1234), None, r"'G\.x' claims bytes 0\.\.4000000000000000 .* "
                                                    r"body has 1234", "library"),
    "shape bigger than its bytes": ({"G.x": {"dtype": "F32", "shape": [10**9, 10**9, 10**9],
                                             "data_offsets": [0, 16]}},
                                    bytes(16), None, r"shape and dtype claim more bytes than",
                                    "library"),
    "span unlike its shape": ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 16]}},
                              bytes(16), None, r"do not span exactly the bytes its dtype and "
                                               r"shape need", "library"),
    "overlapping offsets": ({**_f32("a", [4], 0), **_f32("b", [4], 8)}, bytes(24), None,
                            r"tensor 'b' \(bytes 8\.\.24\) does not start where the tensor "
                            r"before it ends: overlapping", "library"),
    "a hole between tensors": ({**_f32("a", [2], 0), **_f32("b", [2], 12)}, bytes(20), None,
                               r"tensor 'b' \(bytes 12\.\.20\) does not start where .* a hole",
                               "library"),
    "bytes after the last tensor": (_f32("a", [2], 0), bytes(8 + 100), None,
                                    r"cover 8 bytes of the 108-byte body", "library"),
    "unknown dtype": ({"a": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}},
                      bytes(16), None, r"not what the format allows \(unknown variant `F128`",
                      "library"),
    "negative dimension": ({"a": {"dtype": "F32", "shape": [-1, 4], "data_offsets": [0, 16]}},
                           bytes(16), None, r"integer `-1`, expected usize", "library"),
    "boolean dimension": ({"a": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}},
                          bytes(4), None, r"invalid type: boolean `true`", "library"),
    "reversed offsets": ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}},
                         bytes(4), None, r"tensor 'a' \(bytes 4\.\.0\) does not start", "library"),
    "missing data_offsets": ({"a": {"dtype": "F32", "shape": [1]}}, bytes(4), None,
                             r"missing field `data_offsets`", "library"),
    "truncated body": (_f32("a", [1000], 0), bytes(100), None,
                       r"'a' claims bytes 0\.\.4000 .*body has 100 \(truncated or corrupt\?\)",
                       "library"),
    "header length beyond the file": (_f32("a", [1], 0), bytes(4), 10**6,
                                      r"says 1000000 bytes but only \d+ follow", "ours"),
    "header length beyond the cap": (_f32("a", [1], 0), bytes(4), 2**63,
                                     rf"says {2**63} bytes, more than the {MAX_HEADER_BYTES}",
                                     "ours"),
    "header not JSON": (b"{this is not json", b"", None, r"header is not valid JSON", "ours"),
    "header not an object": (b"[1, 2, 3]", b"", None, r"does not start with '\{'", "ours"),
    "header not UTF-8": (b"{\"a\xff\xfe\": 1}", b"", None, r"header is not UTF-8", "ours"),
    "header nested too deeply": (b"{\"a\": " + b"[" * 200_000 + b"]" * 200_000 + b"}", b"", None,
                                 r"nested too deeply", "ours"),
    "duplicate tensor name": (b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, '
                              b'"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}',
                              bytes(8), None, r"'a' appears twice", "ours"),
    # the library keeps one "a" silently when both have the same offsets
    "duplicate tensor name, same bytes": (
        b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, '
        b'"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}',
        bytes(4), None, r"'a' appears twice", "ours"),
    "metadata value not a string": ({"__metadata__": {"format": "gan_atelier", "steps": 5},
                                     **_f32("a", [1], 0)}, bytes(4), None,
                                    r"integer `5`, expected a string", "library"),
    "metadata not an object": ({"__metadata__": ["x"], **_f32("a", [1], 0)}, bytes(4), None,
                               r"sequence, expected a map", "library"),
}


@pytest.mark.parametrize("case", list(HOSTILE_HEADERS))
def test_hostile_safetensors_header_is_refused_before_any_allocation(tmp_path, monkeypatch, case):
    """gan_core refuses what the safetensors library does not check before calling it; the
    library refuses the rest when the file is opened: no tensor is ever read from either
    kind, the error names the file and the problem, and little memory is used."""
    header, body, length, expected, who = HOSTILE_HEADERS[case]
    path = _header_file(tmp_path / "hostile.safetensors", header, body, length)
    real_open = checkpoint.safe_open
    opened = []

    class NoTensors:
        """safe_open whose handle refuses to give out tensors: the refusal must come first."""

        def __init__(self, *args, **kwargs):
            opened.append(args[0])
            self._inner = real_open(*args, **kwargs)

        def __enter__(self):
            self._inner.__enter__()
            return self

        def __exit__(self, *exc):
            return self._inner.__exit__(*exc)

        def get_tensor(self, name):
            raise AssertionError("a tensor was read: the header was not refused first")

        def __getattr__(self, name):
            return getattr(self._inner, name)

    monkeypatch.setattr(checkpoint, "safe_open", NoTensors)  # tensors only ever come from here
    tracemalloc.start()
    try:
        with pytest.raises(gan_core.CheckpointError, match=expected) as info:
            gan_core.load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "'hostile.safetensors'" in str(info.value)
    assert "is not a valid safetensors file" in str(info.value)
    assert bool(opened) == (who == "library"), f"{case}: refused by the wrong side"
    # At most the header itself (the deeply nested one is 400 KB) and the JSON parse of it.
    assert peak < 8 * 2**20, f"{case}: {peak} bytes allocated while refusing"


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.skipif(sys.platform == "win32", reason="resource.getrusage")
def test_headers_the_library_refuses_cost_no_memory(tmp_path):
    """What the safetensors library checks (not traced by tracemalloc: it is Rust) is checked
    before it allocates: opening every library-refused header above, in a fresh process with
    torch already imported, grows peak RSS by under 16 MB (the absurd claims are 4e15 and 4e27
    bytes)."""
    paths = [str(_header_file(tmp_path / f"h{i}.safetensors", header, body, length))
             for i, (header, body, length, _, who) in enumerate(HOSTILE_HEADERS.values())
             if who == "library"]
    code = ("import resource, sys, torch, gan_core\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "for p in sys.argv[1:]:\n"
            "    try:\n"
            "        gan_core.load(p); print('LOADED', p)\n"
            "    except gan_core.CheckpointError:\n"
            "        print('REFUSED')\n"
            "print('GROWTH_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n")
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines.count("REFUSED") == len(paths), lines
    assert int(lines[-1].split()[1]) < 16 * 1024, lines[-1]


def test_a_header_listing_too_many_tensors_is_refused(tmp_path, monkeypatch):
    from gan_core.io.safetensors_header import MAX_TENSORS

    empty = {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}
    path = _header_file(tmp_path / "many.safetensors",
                        {f"t{i}": empty for i in range(MAX_TENSORS + 1)})
    monkeypatch.setattr(checkpoint, "safe_open", None)  # never reached
    with pytest.raises(gan_core.CheckpointError, match=rf"'many.safetensors'.*lists "
                                                       rf"{MAX_TENSORS + 1} tensors, more than"):
        gan_core.load(path)


def test_valid_headers_pass_and_describe_the_file_exactly(tmp_path, core_trained):
    """What safetensors writes (padding, scalars, empty tensors, every dtype torch has) passes,
    and the parsed header agrees with the file."""
    tensors = {"scalar": torch.tensor(3.0), "empty": torch.zeros(0, 5),
               "i64": torch.arange(6).reshape(2, 3), "f16": torch.ones(3, dtype=torch.float16),
               "bf16": torch.ones(1, dtype=torch.bfloat16), "u8": torch.ones(7, dtype=torch.uint8),
               "bool": torch.ones(2, dtype=torch.bool), "f64": torch.ones(1, dtype=torch.float64)}
    path = tmp_path / "all.safetensors"
    save_file(tensors, str(path), metadata={"k": "v"})
    head = check_safetensors_header(path)
    assert head.metadata == {"k": "v"}
    assert set(head.entries) == set(tensors)
    assert head.entries["scalar"]["shape"] == [] and head.entries["empty"]["shape"] == [0, 5]
    spans = [e["data_offsets"][1] - e["data_offsets"][0] for e in head.entries.values()]
    assert sum(spans) == head.body_bytes
    assert 8 + head.header_bytes + head.body_bytes == path.stat().st_size
    assert set(DTYPE_BYTES) >= {"F32", "F16", "BF16", "I64", "U8", "BOOL", "F64"}
    # and our own checkpoints, resume state included
    _, ours = core_trained
    assert check_safetensors_header(ours).metadata["format"] == "gan_atelier"


def test_header_check_reads_at_most_the_header(tmp_path, monkeypatch):
    """A 4 MB file: the check reads 8 bytes and the header, never the body."""
    path = tmp_path / "big.safetensors"
    save_file({"w": torch.zeros(1024, 1024)}, str(path))
    reads = []
    real_open = open

    class Counting(io.FileIO):
        def read(self, n=-1):
            data = super().read(n)
            reads.append(len(data))
            return data

    def counting_open(file, mode="r", *args, **kwargs):
        if str(file) == str(path) and mode == "rb":
            return Counting(file, "r")
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    check_safetensors_header(path)
    assert reads and sum(reads) < 1024
    assert path.stat().st_size > 4 * 10**6


# ----------------------------------------------------------------------------- broken files say so

def _small_dcgan(tmp_path) -> tuple[GANModel, Path]:
    spec = get_arch("dcgan")
    cfg = spec.config_cls(image_size=32, ngf=8, ndf=8)
    torch.manual_seed(0)
    model = GANModel("dcgan", cfg, {"G": spec.build(cfg)["G"]})
    return model, gan_core.save(model, tmp_path / "g.safetensors", include_resume=False)


def test_a_config_that_asks_for_a_giant_network_is_refused_without_building_it(tmp_path):
    """A 250 KB file whose metadata claims 8000 filters (a 5 GB network): refused from the
    shapes, on the meta device; with a billion blocks the build is stopped, not looped."""
    model, path = _small_dcgan(tmp_path)
    meta, tensors = checkpoint.read_safetensors(path)
    big = dict(meta, config=json.dumps({**json.loads(meta["config"]), "ngf": 2000, "ndf": 2000}))
    save_file(tensors, str(tmp_path / "giant.safetensors"), metadata=big)
    tracemalloc.start()
    try:
        with pytest.raises(gan_core.CheckpointError,
                           match=r"'giant.safetensors'.*mis-shaped.*\(100, 8000, 4, 4\)"):
            gan_core.load(tmp_path / "giant.safetensors")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20

    spec = get_arch("cyclegan_resnet")
    cfg = spec.config_cls(ngf=4, n_blocks=1)
    cyc = GANModel("cyclegan_resnet", cfg, {"G": spec.build(cfg)["G"]})
    path = gan_core.save(cyc, tmp_path / "c.safetensors", include_resume=False)
    meta, tensors = checkpoint.read_safetensors(path)
    endless = dict(meta, config=json.dumps({**json.loads(meta["config"]), "n_blocks": 10**9}))
    save_file(tensors, str(tmp_path / "endless.safetensors"), metadata=endless)
    with pytest.raises(gan_core.CheckpointError, match=r"'endless.safetensors'.*more than \d+ "
                                                       r"layers, parameters and buffers"):
        gan_core.load(tmp_path / "endless.safetensors")


def test_a_model_loaded_from_meta_is_complete_and_trainable(core_trained, tmp_path,
                                                            core_dataset, core_config):
    """The meta-device build leaves nothing uninitialised, and a loaded file resumes training."""
    model, path = core_trained
    loaded = gan_core.load(path)
    for role, module in loaded.modules.items():
        for name, t in (*module.named_parameters(), *module.named_buffers()):
            assert not t.is_meta and t.device.type == "cpu", (role, name)
        assert all(p.requires_grad for p in module.parameters()), role
    cont = gan_core.train(core_config(steps=5, seed=7), core_dataset, resume=loaded)
    assert cont.resume.step == 5


@pytest.mark.parametrize("edit,expected", [
    (lambda info: info.update(step=-3), r"step is -3, not a non-negative integer"),
    (lambda info: info.update(step="7"), r"step is 7, not a non-negative integer"),
    (lambda info: info.update(param_groups=[1]), r"param_groups is not an object"),
    (lambda info: info.update(train_config="x"), r"train_config is not an object"),
])
def test_inconsistent_resume_state_is_refused_with_the_reason(core_trained, tmp_path, edit,
                                                               expected):
    _, path = core_trained
    meta, tensors = checkpoint.read_safetensors(path)
    info = json.loads(meta["resume"])
    edit(info)
    save_file(tensors, str(tmp_path / "r.safetensors"), metadata=dict(meta, resume=json.dumps(info)))
    with pytest.raises(gan_core.CheckpointError, match=r"'r.safetensors'.*resume state is "
                                                       r"inconsistent: " + expected):
        gan_core.load(tmp_path / "r.safetensors")


def _dncnn_state():
    spec = get_arch("dncnn")
    torch.manual_seed(0)
    return spec.build(spec.config_cls(in_nc=3, out_nc=3, nc=8, nb=4))["G"].state_dict()


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_public_files_load_from_both_containers_and_broken_ones_say_what_they_hold(tmp_path,
                                                                                    suffix):
    def write(state, name):
        path = tmp_path / (name + suffix)
        if suffix == ".pth":
            torch.save(state, path)
        else:
            save_file({k: v.contiguous() for k, v in state.items()}, str(path))
        return path

    state = _dncnn_state()
    assert gan_core.load(write(state, "dncnn")).arch == "dncnn"
    cut = {k: v for k, v in state.items() if k != "model.4.weight"}
    with pytest.raises(gan_core.CheckpointError) as info:
        gan_core.load(write(cut, "missing"))
    msg = str(info.value)
    assert f"'missing{suffix}'" in msg and f"found {len(cut)} tensors" in msg
    assert "model.0.bias" in msg and "KAIR DnCNN" in msg  # what it found, what it knows
    assert "Closest: a KAIR DnCNN file with missing keys ['model.4.weight']" in msg
    reshaped = dict(state, **{"model.2.weight": torch.zeros(8, 8, 5, 5)})
    with pytest.raises(gan_core.CheckpointError, match=r"KAIR DnCNN file with mis-shaped "
                       r"\['model\.2\.weight: file \(8, 8, 5, 5\) vs model \(8, 8, 3, 3\)'\]"):
        gan_core.load(write(reshaped, "reshaped"))
    for name, raw in (("zero", b""), ("cut", write(state, "whole").read_bytes()[:300])):
        path = tmp_path / (name + suffix)
        path.write_bytes(raw)
        with pytest.raises(gan_core.CheckpointError, match=rf"'{name}{suffix}'.*"
                           + ("empty \\(0 bytes\\)" if name == "zero" else "truncated")):
            gan_core.load(path)


def test_pth_with_keys_of_any_type_is_described_not_crashed(tmp_path):
    path = tmp_path / "odd.pth"
    torch.save({1: torch.zeros(1), "a": torch.zeros(2), (2, 3): 5}, path)
    with pytest.raises(gan_core.CheckpointError, match=r"'odd.pth'.*found 2 tensors, e.g. 1, a; "
                                                       r"other entries: \(2, 3\)"):
        gan_core.load(path)


def test_unreadable_file_is_a_checkpoint_error(tmp_path, core_trained):
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    _, path = core_trained
    locked = tmp_path / "locked.safetensors"
    shutil.copyfile(path, locked)
    locked.chmod(0)
    with pytest.raises(gan_core.CheckpointError, match="locked.safetensors"):
        gan_core.load(locked)


# ----------------------------------------------------------------------------- .pth size claims

def _claim_numel(pickled: bytes, numel: int) -> bytes:
    """The pickle with its storage's element count (the int after the 'cpu' location)
    replaced by `numel`: what a hostile .pth would claim."""
    import pickletools

    seen_cpu = False
    for op, arg, pos in pickletools.genops(pickled):
        if op.name in ("BINUNICODE", "SHORT_BINUNICODE") and arg == "cpu":
            seen_cpu = True
        elif seen_cpu and op.name == "BININT1":
            return pickled[:pos] + b"\x8a\x08" + numel.to_bytes(8, "little") + pickled[pos + 2:]
    raise AssertionError("no storage size found")


def _hostile_pth(path: Path, numel: int, legacy: bool) -> Path:
    import zipfile

    buf = io.BytesIO()
    torch.save({"w": torch.zeros(10)}, buf, _use_new_zipfile_serialization=not legacy)
    raw = buf.getvalue()
    if legacy:  # magic number, protocol and sys-info pickles come first
        f = io.BytesIO(raw)
        import pickletools
        for _ in range(3):
            for op, _, _ in pickletools.genops(f):
                pass
        start = f.tell()
        path.write_bytes(raw[:start] + _claim_numel(raw[start:], numel))
        return path
    src = zipfile.ZipFile(io.BytesIO(raw))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            dst.writestr(info, _claim_numel(data, numel) if info.filename.endswith(".pkl") else data)
    return path


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.skipif(sys.platform == "win32", reason="resource.getrusage")
def test_pth_claiming_huge_storage_is_refused_without_using_the_memory(tmp_path):
    """torch checks a zip .pth's storage sizes against its records before allocating; a legacy
    .pth's claim is allocated lazily by torch (untouched, so no memory is used) and refused on
    reading. Measured in a fresh process: peak RSS grows by less than 100 MB for claims of 4 GB
    and 400 TB."""
    files = [_hostile_pth(tmp_path / f"{kind}_{numel}.pth", numel, kind == "legacy")
             for kind in ("zip", "legacy") for numel in (10**9, 10**14)]
    code = (
        "import resource, sys, gan_core\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "for p in sys.argv[1:]:\n"
        "    try:\n"
        "        gan_core.load(p)\n"
        "        print('LOADED', p)\n"
        "    except gan_core.CheckpointError as e:\n"
        "        print('REFUSED', str(e).splitlines()[0][:200])\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print('GROWTH_KB', after - before)\n")
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code, *map(str, files)], capture_output=True,
                         text=True, env=env, timeout=300)
    lines = out.stdout.splitlines()
    assert out.returncode == 0, out.stderr[-2000:]
    refused = [line for line in lines if line.startswith("REFUSED")]
    assert len(refused) == len(files), lines
    for f, line in zip(files, refused):
        assert f.name in line
    growth_kb = int(lines[-1].split()[1])
    assert growth_kb < 100 * 1024, f"peak RSS grew by {growth_kb} KB"
