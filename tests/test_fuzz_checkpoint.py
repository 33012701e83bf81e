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
from safetensors import safe_open
from safetensors.torch import save_file

import gan_core
from gan_core.model import GANModel
from gan_core.archs import get_arch
from gan_core.io.safetensors_header import check_safetensors_header

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
    """Differential: whenever check_safetensors_header passes an edited header, the
    safetensors library reads every tensor of the file too (our check is never looser)."""
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
        except gan_core.CheckpointError:
            return
        with safe_open(str(path), framework="pt") as f:
            for k in f.keys():
                f.get_tensor(k)
