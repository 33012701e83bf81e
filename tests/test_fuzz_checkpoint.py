"""Fuzzing the checkpoint reader: whatever bytes a model file holds, gan_core.load returns a
GANModel or raises CheckpointError (a ValueError), never another exception, never hangs.

Inputs: random bytes named .safetensors / .pth, and valid files (ours with resume state, a
CycleGAN pair, public DnCNN weights as zip and legacy .pth and as .safetensors) with flipped,
cut or appended bytes, an edited safetensors header (any field replaced by any JSON value),
edited metadata JSON (config, resume, training) and a mutated pickle inside a valid .pth zip.
Example counts come from the hypothesis profile in conftest.py: 25 per test in CI;
`HYPOTHESIS_PROFILE=long` runs thousands (the command is in SECURITY.md).
"""
from __future__ import annotations

import argparse
import functools
import io
import json
import signal
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

import gan_core
from gan_core.model import GANModel
from gan_core.archs import get_arch
from gan_core.io.safetensors_header import DTYPE_BYTES, check_safetensors_header

pytestmark = pytest.mark.usefixtures("core_single_thread")

# A load of these tiny files takes milliseconds; a minute means it hangs.
HANG_SECONDS = 60
_settings = settings(suppress_health_check=[HealthCheck.too_slow])


@contextmanager
def _watchdog(seconds: int):
    """Fail (instead of waiting forever) if the body runs longer than `seconds`."""
    if sys.platform == "win32":
        yield
        return

    def fire(*_):
        raise TimeoutError(f"gan_core.load ran for more than {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def load_or_refuse(data: bytes, suffix: str) -> GANModel | None:
    """Write `data` to a fresh file and load it: the model, or None when it was refused with
    CheckpointError. Any other exception fails the test."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "fuzzed" + suffix)
        path.write_bytes(data)
        with _watchdog(HANG_SECONDS):
            try:
                model = gan_core.load(path)
            except gan_core.CheckpointError as exc:
                assert "fuzzed" in str(exc)  # the error names the file
                # load() turns any other exception into a CheckpointError as a last resort,
                # chaining it; here each reader must have said what is wrong itself.
                assert exc.__cause__ is None, f"a reader crashed: {exc.__cause__!r}"
                return None
    assert isinstance(model, GANModel)
    return model


# ----------------------------------------------------------------------------- valid files

def _ours_with_resume() -> bytes:
    """A tiny MLP GAN after two training steps: G, G_ema, D, optimiser moments, RNG, history."""
    cfg = gan_core.TrainConfig(arch="mlp", size=8, steps=2, batch=4, device="cpu", preview_every=0,
                               checkpoint_every=0, preview_count=4, channels=1,
                               model={"g_hidden": [16], "d_hidden": [16]})
    data = gan_core.open_dataset("builtin:mondrian", 8, count=8, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp, "m.safetensors")
        gan_core.train(cfg, data, out=out)
        return out.read_bytes()


def _ours_cyclegan() -> bytes:
    spec = get_arch("cyclegan_resnet")
    cfg = spec.config_cls(ngf=4, n_blocks=1)
    torch.manual_seed(0)
    model = GANModel("cyclegan_resnet", cfg, {"G": spec.build(cfg)["G"],
                                              "G_BA": spec.build(cfg)["G"]})
    with tempfile.TemporaryDirectory() as tmp:
        return gan_core.save(model, Path(tmp, "c.safetensors"), include_resume=False).read_bytes()


def _dncnn_state() -> dict[str, torch.Tensor]:
    spec = get_arch("dncnn")
    torch.manual_seed(0)
    return spec.build(spec.config_cls(in_nc=3, out_nc=3, nc=8, nb=4))["G"].state_dict()


def _torch_bytes(obj, legacy: bool = False) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=not legacy)
    return buf.getvalue()


def _safetensors_bytes(tensors: dict[str, torch.Tensor], metadata=None) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "s.safetensors")
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
        return path.read_bytes()


@functools.lru_cache(maxsize=1)
def _stylegan2_state() -> dict[str, torch.Tensor]:
    spec = get_arch("stylegan2")
    cfg = spec.config_cls(image_size=64, style_dim=32, n_mlp=2, channel_multiplier=1,
                          base_channels=16)
    torch.manual_seed(0)
    return spec.build(cfg)["G"].state_dict()


def _rosinality_style() -> bytes:
    """A rosinality StyleGAN2 training checkpoint: g_ema weights and the run's argparse
    Namespace (the one class our pickle reader allows)."""
    return _torch_bytes({"g_ema": _stylegan2_state(), "args": argparse.Namespace(
        size=64, latent=32, n_mlp=2, channel_multiplier=1)})


@functools.lru_cache(maxsize=1)
def valid_files() -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, suffix) of files that load (made once per session)."""
    files = {
        "ours_resume": (_ours_with_resume(), ".safetensors"),
        "ours_cyclegan": (_ours_cyclegan(), ".safetensors"),
        "dncnn_zip": (_torch_bytes(_dncnn_state()), ".pth"),
        "dncnn_legacy": (_torch_bytes(_dncnn_state(), legacy=True), ".pth"),
        "dncnn_safetensors": (_safetensors_bytes(_dncnn_state()), ".safetensors"),
        "stylegan2_namespace": (_rosinality_style(), ".pt"),
    }
    return files


SAFETENSORS = ["ours_resume", "ours_cyclegan", "dncnn_safetensors"]
ALL = SAFETENSORS + ["dncnn_zip", "dncnn_legacy", "stylegan2_namespace"]


def split_safetensors(data: bytes) -> tuple[dict, bytes]:
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + n]), data[8 + n:]


def join_safetensors(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + body


# ----------------------------------------------------------------------------- strategies

# Any JSON value, small, with the numbers that break naive readers (negative, huge, floats).
json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-2**70, 2**70) | st.sampled_from([0, 1, -1, 2**63, 10**15, 10**30])
    | st.text(max_size=12) | st.sampled_from(["F32", "I64", "F16", "U8", "Q4"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=10)


@st.composite
def byte_mutations(draw, data: bytes) -> bytes:
    """Flip some bytes (biased toward the first 512, where headers live), cut, or append."""
    size = len(data)
    kind = draw(st.sampled_from(["flip", "cut", "append", "flip_and_cut"]))
    out = bytearray(data)
    if kind in ("flip", "flip_and_cut"):
        positions = st.integers(0, min(size, 512) - 1) | st.integers(0, size - 1)
        for pos, mask in draw(st.lists(st.tuples(positions, st.integers(1, 255)), min_size=1,
                                       max_size=8)):
            out[pos] ^= mask
    if kind in ("cut", "flip_and_cut"):
        del out[draw(st.integers(0, size - 1)):]
    if kind == "append":
        out += draw(st.binary(min_size=1, max_size=64))
    return bytes(out)


# ----------------------------------------------------------------------------- the properties

def test_the_valid_files_load():
    for name, (data, suffix) in valid_files().items():
        assert load_or_refuse(data, suffix) is not None, name


@_settings
@given(data=st.binary(max_size=4096), suffix=st.sampled_from([".safetensors", ".pth", ".pt"]))
@example(data=b"", suffix=".safetensors")
@example(data=(10**15).to_bytes(8, "little") + b"{}", suffix=".safetensors")
@example(data=b"PK\x03\x04" + b"\x00" * 60, suffix=".pth")
def test_random_bytes_are_refused_cleanly(data, suffix):
    assert load_or_refuse(data, suffix) is None


@_settings
@given(rest=st.binary(max_size=2048))
def test_random_bytes_after_a_plausible_header_start(rest):
    """Past the length check: a length that fits the file, then '{' and noise."""
    body = b"{" + rest
    assert load_or_refuse(len(body).to_bytes(8, "little") + body, ".safetensors") is None


@_settings
@given(st.data())
def test_mutated_valid_files(data):
    valid = valid_files()
    name = data.draw(st.sampled_from(ALL), label="file")
    raw, suffix = valid[name]
    load_or_refuse(data.draw(byte_mutations(raw), label="mutated"), suffix)


@_settings
@given(st.data())
def test_edited_safetensors_headers(data):
    """Any field of any entry, or a whole entry, replaced by any JSON value."""
    name = data.draw(st.sampled_from(SAFETENSORS), label="file")
    header, body = split_safetensors(valid_files()[name][0])
    key = data.draw(st.sampled_from(sorted(header)), label="entry")
    if data.draw(st.booleans(), label="whole entry"):
        header[key] = data.draw(json_values, label="value")
    elif isinstance(header[key], dict) and header[key]:
        field = data.draw(st.sampled_from(sorted(header[key])), label="field")
        header[key][field] = data.draw(json_values, label="value")
    load_or_refuse(join_safetensors(header, body), ".safetensors")


@_settings
@given(st.data())
def test_edited_metadata_json(data):
    """Our metadata (format, arch, config, training, resume) is JSON the loader interprets:
    replace one entry with other JSON, or one field inside it with any value."""
    name = data.draw(st.sampled_from(["ours_resume", "ours_cyclegan"]), label="file")
    header, body = split_safetensors(valid_files()[name][0])
    meta = header["__metadata__"]
    key = data.draw(st.sampled_from(sorted(meta)), label="metadata key")
    try:
        inner = json.loads(meta[key])
    except ValueError:
        inner = meta[key]
    if isinstance(inner, dict) and inner and data.draw(st.booleans(), label="one field"):
        inner[data.draw(st.sampled_from(sorted(inner)), label="field")] = data.draw(json_values)
        meta[key] = json.dumps(inner)
    else:
        meta[key] = json.dumps(data.draw(json_values, label="value"))
    load_or_refuse(join_safetensors(header, body), ".safetensors")


@_settings
@given(st.data())
def test_mutated_pickle_inside_a_valid_zip(data):
    """The zip container intact, its data.pkl flipped or cut: the weights-only unpickler
    refuses or reads plain data, never anything else."""
    raw, _ = valid_files()["dncnn_zip"]
    src = zipfile.ZipFile(io.BytesIO(raw))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            content = src.read(info.filename)
            if info.filename.endswith("data.pkl"):
                content = data.draw(byte_mutations(content), label="pickle")
            dst.writestr(info, content)
    load_or_refuse(out.getvalue(), ".pth")


@pytest.mark.slow
@_settings
@given(st.data())
def test_namespace_attributes_of_any_value(data):
    """The one allowed class carries whatever the file says: any attribute values (numbers,
    strings, lists, dicts, None, tensors of any shape) give a model or a clear refusal."""
    values = json_values | st.builds(lambda shape: torch.zeros(shape),
                                     st.lists(st.integers(0, 3), max_size=3))
    args = data.draw(st.dictionaries(st.sampled_from(
        ["size", "latent", "n_mlp", "channel_multiplier", "other"]), values, max_size=5),
        label="args")
    load_or_refuse(_torch_bytes({"g_ema": _stylegan2_state(), "args": argparse.Namespace(**args)}),
                   ".pt")


@_settings
@given(st.data())
def test_a_header_we_accept_is_one_safetensors_reads(data):
    """Differential: gan_core checks only what the safetensors library does not (cap,
    duplicates, tensor count) and leans on the library for offsets, shapes and dtypes. So
    whenever an edited header gets through both, it must obey the format as this test reads
    it, independently of both: every dtype known, each span exactly numel * itemsize, the
    spans tiling the body with no overlap, hole or trailing byte, and each tensor read back
    with the header's dtype and shape. A safetensors release that loosened its checks fails
    here."""
    name = data.draw(st.sampled_from(SAFETENSORS), label="file")
    header, body = split_safetensors(valid_files()[name][0])
    key = data.draw(st.sampled_from(sorted(k for k in header if k != "__metadata__")),
                    label="tensor")
    field = data.draw(st.sampled_from(["dtype", "shape", "data_offsets"]), label="field")
    header[key][field] = data.draw(json_values | st.lists(st.integers(0, 4096), min_size=2,
                                                           max_size=2), label="value")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "edited.safetensors")
        path.write_bytes(join_safetensors(header, body))
        try:
            check_safetensors_header(path)
            with safe_open(str(path), framework="pt") as f:
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except (gan_core.CheckpointError, SafetensorError):
            return
    entries = {k: v for k, v in header.items() if k != "__metadata__"}
    assert set(tensors) == set(entries)
    covered = 0
    for k, e in sorted(entries.items(), key=lambda kv: tuple(kv[1]["data_offsets"])):
        begin, end = e["data_offsets"]
        numel = 1
        for d in e["shape"]:
            numel *= d
        assert begin == covered and end - begin == numel * DTYPE_BYTES[e["dtype"]], (k, e)
        assert list(tensors[k].shape) == e["shape"], (k, e)
        covered = end
    assert covered == len(body)


# ----------------------------------------------------------------------------- issue 16's classes

def _deep_pickle(kind: str, depth: int) -> bytes:
    """A pickle whose containers nest `depth` deep, opcode by opcode (pickle.dumps itself
    recurses): a tuple used as a dict key (hashing it recursed in C and crashed CPython at
    200,000), lists in a dict value, or dicts in dicts."""
    if kind == "tuple key":
        return b"\x80\x02}" + b")" + b"\x85" * (depth - 1) + b"K\x01s."
    if kind == "lists":
        return b"\x80\x02}X\x01\x00\x00\x00w" + b"]" * depth + b"a" * (depth - 1) + b"s."
    return b"\x80\x02" + b"}X\x01\x00\x00\x00k" * (depth - 1) + b"}" + b"s" * (depth - 1) + b"."


def _torch_with_pickle(data_pkl: bytes, container: str) -> bytes:
    """A real torch file (zip or legacy) whose object pickle is `data_pkl`, or the bare pickle."""
    if container == "bare":
        return data_pkl
    if container == "zip":
        raw = _torch_bytes({"w": torch.zeros(2)})
        src, out = zipfile.ZipFile(io.BytesIO(raw)), io.BytesIO()
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as dst:
            for info in src.infolist():
                dst.writestr(info.filename, data_pkl if info.filename.endswith("/data.pkl")
                             else src.read(info))
        return out.getvalue()
    from gan_core.io.pickle_scan import scan_pickle_sequence

    raw = _torch_bytes({"w": torch.zeros(2)}, legacy=True)
    head = sum(s.length for s in scan_pickle_sequence(raw, "x", ("magic", "protocol", "info")))
    return raw[:head] + data_pkl + b"\x80\x02]q\x00."


@_settings
@given(kind=st.sampled_from(["tuple key", "lists", "dicts"]),
       container=st.sampled_from(["zip", "legacy", "bare"]),
       suffix=st.sampled_from([".pth", ".pt", ".pkl"]),
       depth=st.integers(1, 1200) | st.sampled_from([99, 100, 101, 999, 1000, 1001, 5000,
                                                      200_000]))
@example(kind="tuple key", container="zip", suffix=".pth", depth=200_000)
@example(kind="tuple key", container="legacy", suffix=".pt", depth=200_000)
@example(kind="tuple key", container="bare", suffix=".pkl", depth=200_000)
def test_deeply_nested_pickles_are_refused_before_unpickling(kind, container, suffix, depth):
    """Deep nesting in any container and under any name: a model or CheckpointError, and
    refused whenever it is deeper than the reader's bound (1000 for torch files, 100 for
    NVIDIA network pickles, which any bare protocol 2 pickle is read as). A stream that got
    through to an unpickler at 200,000 would kill this process."""
    data = _torch_with_pickle(_deep_pickle(kind, depth), container)
    nvidia = container == "bare" or suffix == ".pkl"
    bound = 100 if nvidia else 1000
    result = load_or_refuse(data, suffix)
    if depth + 1 > bound:  # the dict around the structure is one more level
        assert result is None


def _layout_overlaps(size, stride, offset) -> bool:
    """Brute force (small tensors only): do two elements share a storage slot?"""
    import itertools

    seen = set()
    for index in itertools.product(*(range(n) for n in size)):
        slot = offset + sum(i * s for i, s in zip(index, stride))
        if slot in seen:
            return True
        seen.add(slot)
    return False


@_settings
@given(st.data())
def test_overlapping_and_expanded_views_are_refused(data):
    """A DnCNN file with one tensor replaced by an arbitrary strided view (strides 0-40,
    any offset, storage of any length it fits): a view whose elements overlap is always
    refused; one that is a permutation of a dense layout loads; nothing else happens."""
    state = _dncnn_state()
    key = data.draw(st.sampled_from(sorted(state)), label="tensor")
    shape = tuple(state[key].shape)
    permuted = data.draw(st.booleans(), label="a permutation of a dense layout")
    if permuted:
        order = data.draw(st.permutations(range(len(shape))), label="order")
        dense = state[key].permute(*order).contiguous()
        inverse = sorted(range(len(order)), key=lambda i: order[i])
        view = dense.permute(*inverse)
    else:
        strides = tuple(data.draw(st.integers(0, 40), label=f"stride {i}")
                        for i in range(len(shape)))
        offset = data.draw(st.integers(0, 64), label="offset")
        reach = offset + sum((n - 1) * s for n, s in zip(shape, strides)) + 1
        extra = data.draw(st.integers(0, 64), label="spare storage")
        base = torch.randn(reach + extra, generator=torch.Generator().manual_seed(0))
        view = base.as_strided(shape, strides, offset)
    result = load_or_refuse(_torch_bytes(dict(state, **{key: view})), ".pth")
    if not permuted and _layout_overlaps(shape, view.stride(), view.storage_offset()):
        assert result is None, (shape, view.stride())
    if permuted:
        assert result is not None
        assert torch.equal(result.module.state_dict()[key], view)


@_settings
@given(args=st.fixed_dictionaries({}, optional={
    "size": st.integers(-2**40, 2**40) | st.sampled_from([0, 4, 8, 64, 2**30, 10**12]),
    "latent": st.integers(-2**40, 2**40) | st.sampled_from([0, 1, 32, 10**9]),
    "n_mlp": st.integers(-2**40, 2**40) | st.sampled_from([0, 2, 100_000, 200_000, 10**9]),
    "channel_multiplier": st.integers(-2**20, 2**20) | st.sampled_from([0, 1, 2, 10**6]),
}))
@example(args={"size": 64, "latent": 32, "n_mlp": 100_000, "channel_multiplier": 1})
@example(args={"size": 2**30, "latent": 10**9, "n_mlp": 200_000, "channel_multiplier": 10**6})
def test_a_config_that_disagrees_with_the_tensors_is_cheap(args):
    """Config / tensor disagreement: a rosinality file's args with any integers beside its
    real generator. Whatever they claim, the answer (the model its weights describe, or a
    CheckpointError) comes in seconds: nothing the args describe is built before they are
    compared with the tensors."""
    import time

    start = time.perf_counter()
    load_or_refuse(_torch_bytes({"g_ema": _stylegan2_state(),
                                 "args": argparse.Namespace(**args)}), ".pt")
    assert time.perf_counter() - start < 10


_RESUME_FIELDS = ["step", "ema_count", "param_groups.G.lr", "param_groups.G.betas",
                  "param_groups.G.params", "param_groups.D.eps", "param_groups.D.amsgrad",
                  "param_groups", "train_config.size", "train_config.batch"]


@st.composite
def lying_resume(draw):
    """Our resumable MLP file with one resume field or tensor lying: a metadata field set to
    any JSON value (or a huge integer), a moment / step counter / RNG state / history series
    / buffer replaced by a tensor of another shape or dtype, an extra or a missing tensor."""
    header, body = split_safetensors(valid_files()["ours_resume"][0])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "r.safetensors")
        path.write_bytes(valid_files()["ours_resume"][0])
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata())
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    info = json.loads(meta["resume"])
    what = draw(st.sampled_from(["field", "tensor", "extra", "missing"]), label="lie")
    if what == "field":
        field = draw(st.sampled_from(_RESUME_FIELDS), label="field")
        value = draw(json_values | st.integers(-2**80, 2**80) | st.sampled_from(
            [10**30, 2**70, -1, [], [0.5], "abc", {}]), label="value")
        parts = field.split(".")
        if parts[0] == "param_groups" and len(parts) == 3:
            info["param_groups"][parts[1]][0][parts[2]] = value
        elif parts[0] == "train_config" and len(parts) == 2:
            info["train_config"][parts[1]] = value
        else:
            info[parts[0]] = value
    else:
        names = sorted(k for k in tensors if not k.startswith(("G.", "G_ema.", "D.")))
        if what == "missing":
            del tensors[draw(st.sampled_from(names), label="dropped")]
        else:
            name = (draw(st.sampled_from(names), label="replaced") if what == "tensor" else
                    draw(st.sampled_from(["opt.G.{}.exp_avg", "opt.D.{}.step",
                                          "opt.Z.{}.exp_avg", "history.extra",
                                          "buffer.extra"]), label="added").format(
                        draw(st.integers(0, 12), label="index")))
            shape = draw(st.lists(st.integers(0, 6), max_size=3), label="shape")
            dtype = draw(st.sampled_from([torch.float32, torch.float64, torch.uint8,
                                          torch.int64]), label="dtype")
            tensors[name] = (torch.rand(shape) * 4 - 1).to(dtype)
    meta["resume"] = json.dumps(info)
    return _safetensors_bytes(tensors, meta)


@pytest.mark.slow
@_settings
@given(raw=lying_resume())
def test_lying_resume_state_is_refused_or_resumes_cleanly(raw):
    """Lying resume fields: gan_core.load refuses the file with a CheckpointError, or what
    it accepted resumes: one more training step runs, or the trainer refuses with a
    ValueError before its first step. Never a crash (a moment of the wrong shape segfaulted
    the fused Adam step), never another exception."""
    model = load_or_refuse(raw, ".safetensors")
    if model is None or model.resume is None:
        return
    cfg = gan_core.TrainConfig(arch="mlp", size=8, steps=model.resume.step + 1, batch=4,
                               device="cpu", preview_every=0, checkpoint_every=0,
                               preview_count=4, channels=1,
                               model={"g_hidden": [16], "d_hidden": [16]})
    data = gan_core.open_dataset("builtin:mondrian", 8, count=8, seed=0)
    try:
        with _watchdog(HANG_SECONDS):
            resumed = gan_core.train(cfg, data, resume=model)
    except ValueError:
        return
    assert resumed.resume.step == model.resume.step + 1
