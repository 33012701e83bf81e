"""NVIDIA StyleGAN network pickles read as data only (gan_core/io/nvidia_pickle.py).

Streams come from tests/nvidia_pickles.py, which writes NVIDIA's structure from our own
modules. Checked here:
- round trips for protocols 2-5 and both numpy spellings: tensors bit-equal, None entries,
  non-persistent buffers, EasyDict kwargs as plain dicts, numpy scalars and arrays, and
  state_dict() keys equal to the real nn.Module's; TF-era (G, D, Gs) tuples;
- the streams name exactly the globals NVIDIA's files name; writing leaves no torch_utils /
  dnnlib module behind and reading never imports one;
- `module_src` never runs; every other global is refused by name wherever it sits;
- lying sizes (tensor views, storage blobs, numpy shapes, object arrays) are refused with
  bounded memory (measured in a child process), deep nesting is refused, foreign and broken
  files get CheckpointError, and a byte-mutation fuzz only ever returns or raises that.
"""
from __future__ import annotations

import contextlib
import io
import json
import pickle
import pickletools
import subprocess
import sys
import types
import warnings
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gan_core.errors import CheckpointError
from gan_core.io.nvidia_pickle import (
    ALLOWED_GLOBALS,
    PickledModule,
    TFNetwork,
    is_nvidia_pickle,
    read_nvidia_pickle,
)
from gan_core.io.pickle_scan import scan_pickle, scan_pickle_sequence

if str(Path(__file__).resolve().parent) not in sys.path:   # pytest puts it there already
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from nvidia_pickles import (
    FakeModule,
    FakeTFNetwork,
    fake_from_module,
    stand_in_modules,
    write_nvidia_pickle,
    write_tf_pickle,
)

REPO = Path(__file__).resolve().parents[1]
NVIDIA_NAMES = ("torch_utils", "dnnlib")


def _nvidia_modules() -> list[str]:
    return sorted(k for k in sys.modules if k.split(".")[0] in NVIDIA_NAMES)


# ----------------------------------------------------------------------------- a module tree

class Affine(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(4, 3))
        self.bias = torch.nn.Parameter(torch.randn(4))


class Layer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.affine = Affine()
        self.weight = torch.nn.Parameter(torch.randn(2, 4, 3, 3))
        self.register_buffer("noise_const", torch.randn(8, 8))
        self.register_buffer("resample_filter", torch.ones(4, 4), persistent=False)
        self.register_buffer("up_filter", None)
        self.register_buffer("counts", torch.arange(5, dtype=torch.int64))
        self.register_buffer("flags", torch.tensor([True, False]))
        self.register_buffer("fp16", torch.randn(3).half())
        self.register_module("embed", None)
        self.conv_clamp = 256


class Generator(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.mapping = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 3))
        self.b4 = Layer()
        self.register_buffer("w_avg", torch.randn(3))


def _attributes(m: torch.nn.Module) -> dict:
    if isinstance(m, Layer):
        return {"conv_clamp": m.conv_clamp, "use_fp16": False, "architecture": "skip",
                "sampling_rate": np.float64(16.5), "gain": np.float32(0.25),
                "is_torgb": np.bool_(False), "channels": np.int64(512),
                "in_size": np.array([36, 36], dtype=np.int64),
                "taps": np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))}
    return {}


INIT_KWARGS = {"z_dim": 3, "w_dim": 3, "img_resolution": 4,
               "mapping_kwargs": {"num_layers": 2, "nested": {"lr_multiplier": 0.01}},
               "synthesis_kwargs": {"channel_base": 32768, "conv_clamp": 256}}


@pytest.fixture(scope="module")
def generator() -> Generator:
    torch.manual_seed(0)
    return Generator()


def _fake(generator: torch.nn.Module) -> FakeModule:
    return fake_from_module(generator, init_kwargs=INIT_KWARGS, attributes=_attributes,
                            class_names={torch.nn.Sequential: "MappingNetwork"})


def _top(generator, **extra) -> dict:
    return {"G": _fake(generator), "D": FakeModule("Discriminator",
                                                   parameters={"w": torch.randn(2)}),
            "G_ema": _fake(generator), "augment_pipe": None,
            "training_set_kwargs": {"class_name": "training.dataset.ImageFolderDataset",
                                    "resolution": 4, "xflip": False}, **extra}


def _bits(t: torch.Tensor) -> bytes:
    return t.detach().contiguous().view(torch.uint8).numpy().tobytes()


def _assert_same_module(read: PickledModule, fake: FakeModule) -> None:
    assert type(read) is PickledModule and read.class_name == fake.class_name
    assert set(read.parameters) == set(fake.parameters)
    for group_read, group_fake in ((read.parameters, fake.parameters),
                                   (read.buffers, fake.buffers)):
        assert list(group_read) == list(group_fake)
        for name, tensor in group_fake.items():
            got = group_read[name]
            if tensor is None:
                assert got is None
            else:
                assert type(got) is torch.Tensor and not got.requires_grad
                assert got.dtype == tensor.dtype and got.shape == tensor.shape
                assert _bits(got) == _bits(tensor)
    assert read.non_persistent == fake.non_persistent
    assert list(read.modules) == list(fake.modules)
    for name, child in fake.modules.items():
        if child is None:
            assert read.modules[name] is None
        else:
            _assert_same_module(read.modules[name], child)


# ----------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("numpy_module", ["numpy.core", "numpy._core"])
def test_round_trip(tmp_path, generator, protocol, numpy_module):
    top = _top(generator)
    path = write_nvidia_pickle(tmp_path / "snapshot.pkl", top, protocol=protocol,
                               numpy_module=numpy_module)
    assert _nvidia_modules() == []
    before = set(sys.modules)
    out = read_nvidia_pickle(path)
    assert _nvidia_modules() == [] and not {m for m in set(sys.modules) - before
                                            if m.split(".")[0] in NVIDIA_NAMES}
    assert set(out) == set(top) and out["augment_pipe"] is None
    assert out["training_set_kwargs"] == top["training_set_kwargs"]
    for key in ("G", "D", "G_ema"):
        _assert_same_module(out[key], top[key])
    G = out["G"]
    assert G.init_kwargs == INIT_KWARGS
    assert type(G.init_kwargs["mapping_kwargs"]) is dict
    assert type(G.init_kwargs["mapping_kwargs"]["nested"]) is dict
    # state_dict() names tensors exactly as torch does for the real module.
    real = generator.state_dict()
    state = G.state_dict()
    assert list(state) == list(real)
    assert all(_bits(state[k]) == _bits(real[k]) for k in real)
    layer = G.get("b4")
    assert layer.non_persistent == {"resample_filter"} and layer.buffers["up_filter"] is None
    assert layer.modules["embed"] is None
    attrs = layer.attributes
    assert attrs["conv_clamp"] == 256 and attrs["architecture"] == "skip"
    assert attrs["sampling_rate"] == 16.5 and type(attrs["sampling_rate"]) is float
    assert attrs["gain"] == 0.25 and attrs["is_torgb"] is False and attrs["channels"] == 512
    assert type(attrs["in_size"]) is np.ndarray and attrs["in_size"].dtype == np.int64
    assert np.array_equal(attrs["in_size"], [36, 36])
    assert np.array_equal(attrs["taps"], np.arange(6, dtype=np.float32).reshape(2, 3))
    assert attrs["taps"].flags.f_contiguous
    assert G.get("b4.affine").class_name == "Affine" and G.get("") is G
    assert G.get("mapping").class_name == "MappingNetwork"
    with pytest.raises(CheckpointError, match="b4.convX"):
        G.get("b4.convX")
    with pytest.raises(CheckpointError, match="None"):
        G.get("b4.embed")


def test_streams_name_exactly_nvidias_globals(tmp_path, generator):
    core = {"torch_utils.persistence._reconstruct_persistent_obj", "collections.OrderedDict",
            "dnnlib.util.EasyDict", "torch._utils._rebuild_tensor_v2",
            "torch._utils._rebuild_parameter", "torch.storage._load_from_bytes", "numpy.dtype",
            "numpy.core.multiarray.scalar", "numpy.core.multiarray._reconstruct",
            "numpy.ndarray"}
    # Protocol 3 (stylegan2-ada-pytorch) pickles sets by builtins.set; protocol 4
    # (stylegan3) has an opcode for sets.
    for protocol, expected in ((3, core | {"builtins.set"}), (4, core)):
        path = write_nvidia_pickle(tmp_path / f"p{protocol}.pkl", _top(generator),
                                   protocol=protocol)
        assert scan_pickle(path.read_bytes(), "x").globals == expected
    # The same, read straight off pickletools (protocol 3 names globals in GLOBAL opcodes).
    stream = (tmp_path / "p3.pkl").read_bytes()
    assert {arg.replace(" ", ".") for op, arg, _ in pickletools.genops(stream)
            if op.name == "GLOBAL"} == core | {"builtins.set"}
    numpy2 = write_nvidia_pickle(tmp_path / "np2.pkl", _top(generator), protocol=4,
                                 numpy_module="numpy._core")
    assert scan_pickle(numpy2.read_bytes(), "x").globals == {
        name.replace("numpy.core.", "numpy._core.") for name in core}
    assert expected <= ALLOWED_GLOBALS
    tf = write_tf_pickle(tmp_path / "tf.pkl", _tf_networks(), protocol=3)
    assert scan_pickle(tf.read_bytes(), "x").globals == {
        "dnnlib.tflib.network.Network", "numpy.dtype", "numpy.core.multiarray._reconstruct",
        "numpy.ndarray"}


def test_writer_leaves_no_modules_behind(tmp_path, generator):
    numpy_entry = sys.modules.get("numpy.core.multiarray")
    with stand_in_modules("numpy.core") as modules:
        assert "torch_utils.persistence" in sys.modules and "dnnlib.tflib.network" in modules
    assert _nvidia_modules() == []
    with pytest.raises(RuntimeError), stand_in_modules():
        raise RuntimeError("a failed write")
    assert _nvidia_modules() == []
    write_nvidia_pickle(tmp_path / "x.pkl", _top(generator))
    assert _nvidia_modules() == [] and sys.modules.get("numpy.core.multiarray") is numpy_entry


def _tf_networks() -> tuple:
    rng = np.random.default_rng(0)
    mapping = FakeTFNetwork("G_mapping", static_kwargs={"latent_size": 8, "mapping_layers": 2},
                            variables=[("Dense0/weight", rng.standard_normal((8, 8), np.float32)),
                                       ("Dense0/bias", np.zeros(8, np.float32))],
                            build_func_name="G_mapping")
    synthesis = FakeTFNetwork("G_synthesis", static_kwargs={"resolution": 4},
                              variables=[("4x4/Const/const",
                                          rng.standard_normal((1, 8, 4, 4), np.float32)),
                                         ("noise0", rng.standard_normal((1, 1, 4, 4)))],
                              build_func_name="G_synthesis_stylegan2")
    G = FakeTFNetwork("G", static_kwargs={"resolution": 4, "architecture": "skip",
                                          "fmap_base": 16 << 10},
                      components={"mapping": mapping, "synthesis": synthesis},
                      variables=[("dlatent_avg", np.zeros(8, np.float32))],
                      build_module_src="import os\nos.system('echo hi')\n")
    D = FakeTFNetwork("D", static_kwargs={"resolution": 4},
                      variables=[("4x4/Dense0/weight", rng.standard_normal((16, 8), np.float32))],
                      build_func_name="D_stylegan2")
    Gs = FakeTFNetwork("Gs", static_kwargs=dict(G.static_kwargs),
                       components={"mapping": mapping, "synthesis": synthesis},
                       variables=list(G.variables))
    return G, D, Gs


def _assert_same_tf(read: TFNetwork, fake: FakeTFNetwork) -> None:
    assert type(read) is TFNetwork and read.name == fake.name and read.version == fake.version
    assert read.static_kwargs == fake.static_kwargs
    assert read.build_func_name == fake.build_func_name
    assert "build_module_src" not in read.extra and fake.build_module_src not in repr(read)
    assert [n for n, _ in read.variables] == [n for n, _ in fake.variables]
    for (_, got), (_, want) in zip(read.variables, fake.variables):
        assert type(got) is np.ndarray and got.dtype == want.dtype
        assert got.tobytes() == want.tobytes() and got.shape == want.shape
    assert list(read.components) == list(fake.components)
    for name, child in fake.components.items():
        _assert_same_tf(read.components[name], child)


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_tf_era_tuple_round_trips(tmp_path, protocol):
    networks = _tf_networks()
    path = write_tf_pickle(tmp_path / "karras2019.pkl", networks, protocol=protocol)
    out = read_nvidia_pickle(path)
    assert type(out) is tuple and len(out) == 3
    for read, fake in zip(out, networks):
        _assert_same_tf(read, fake)
    assert out[0].components["mapping"] is out[2].components["mapping"]  # shared, as pickled
    assert out[0].variable_dict()["dlatent_avg"].shape == (8,)
    assert _nvidia_modules() == []


# ----------------------------------------------------------------------------- code never runs

def test_module_src_never_runs(tmp_path, generator):
    marker = tmp_path / "MARKER"
    source = (f"open({str(marker)!r}, 'w').close()\n"
              f"import os\nos.system('touch {marker}')\n")
    path = write_nvidia_pickle(tmp_path / "evil_src.pkl", _top(generator), module_src=source)
    out = read_nvidia_pickle(path)
    assert not marker.exists()
    assert source not in repr(vars(out["G"]))
    assert "module_src" not in out["G"].attributes


HOSTILE_GLOBALS = ["os.system", "builtins.eval", "builtins.exec", "subprocess.Popen",
                   "posix.system", "builtins.getattr", "torch.load", "numpy.load",
                   "pickle.loads", "torch_utils.persistence.anything_else", "dnnlib.util.other"]


@contextlib.contextmanager
def _placeholder_global(target: str):
    """A function pickled under a placeholder name of the same lengths as `target`, so the
    stream's bytes can be rewritten to name `target` without breaking any length field."""
    module, _, name = target.rpartition(".")
    fake_module, fake_name = "Q" * len(module), "Z" * len(name)
    placeholder = types.ModuleType(fake_module)

    def fn(*args):  # pragma: no cover - never called
        raise AssertionError

    fn.__module__, fn.__qualname__, fn.__name__ = fake_module, fake_name, fake_name
    setattr(placeholder, fake_name, fn)
    sys.modules[fake_module] = placeholder
    try:
        yield fn, (fake_module, fake_name), (module, name)
    finally:
        del sys.modules[fake_module]


class _Call:
    """Reduces to fn(*args): full pickle would call it when reading."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _rename(stream: bytes, fake: tuple[str, str], real: tuple[str, str]) -> bytes:
    for old, new in zip(fake, real):
        old_b, new_b = old.encode(), new.encode()
        assert len(old_b) == len(new_b) and old_b in stream
        stream = stream.replace(old_b, new_b)
    return stream


@pytest.mark.parametrize("target", HOSTILE_GLOBALS)
@pytest.mark.parametrize("placement", ["top level", "in a module's state", "as a dict key"])
def test_other_globals_are_refused_by_name(tmp_path, generator, target, placement):
    marker = tmp_path / "MARKER"
    for protocol in (3, 4):
        with _placeholder_global(target) as (fn, fake, real):
            evil = _Call(fn, f"touch {marker}")
            top = _top(generator)
            if placement == "top level":
                top = evil
            elif placement == "in a module's state":
                top["G"].modules["b4"].attributes["conv_clamp"] = [{"x": evil}]
            else:
                top["training_set_kwargs"] = {evil: 1}
            path = write_nvidia_pickle(tmp_path / "evil.pkl", top, protocol=protocol)
        path.write_bytes(_rename(path.read_bytes(), fake, real))
        with pytest.raises(CheckpointError) as info:
            read_nvidia_pickle(path)
        message = str(info.value)
        assert "evil.pkl" in message and f"'{target}'" in message and "not allowed" in message
        assert not marker.exists()
        assert _nvidia_modules() == []


def test_find_class_refuses_even_without_the_scan(tmp_path):
    """The unpickler's own allow-list holds on its own (the scan is a second wall)."""
    from gan_core.io import nvidia_pickle as reader

    unpickler = reader._NvidiaUnpickler(io.BytesIO(b"\x80\x02cos\nsystem\n."),
                                        reader._Reader("model file 'x'", 100))
    with pytest.raises(ValueError, match="'os.system' is not allowed"):
        unpickler.load()


# ----------------------------------------------------------------------------- lying sizes

def _u(text: str) -> bytes:
    """A BINUNICODE opcode."""
    data = text.encode()
    return b"X" + len(data).to_bytes(4, "little") + data


_META = (b"}(" + _u("type") + _u("class") + _u("version") + b"K\x06" + _u("class_name")
         + _u("G") + _u("state") + b"}u\x85")
BUILD_ATTACKS = {
    # BUILD on an allowed function: a plain function would take new __defaults__ this way.
    "on a function": b"ctorch._utils\n_rebuild_parameter\n}" + _u("__defaults__")
                     + b"(K\x01tsb.",
    "on a function, slot state": b"c_codecs\nencode\nN}" + _u("__defaults__")
                                 + b"(K\x01ts\x86b.",
    # BUILD on an allowed class would otherwise set class attributes for every later read.
    "on a class": b"cnumpy\ndtype\nN}" + _u("evil") + b"K\x01s\x86b.",
    "on the ndarray marker": b"cnumpy\nndarray\n}" + _u("evil") + b"K\x01sb.",
    # BUILD on a network object would replace its checked parts.
    "on a network object": b"ctorch_utils.persistence\n_reconstruct_persistent_obj\n" + _META
                           + b"R}" + _u("parameters") + _u("x") + b"sb.",
    "APPEND on a network object": b"ctorch_utils.persistence\n_reconstruct_persistent_obj\n"
                                  + _META + b"RK\x01a.",
}


class _TensorWithState:
    """A tensor reduction followed by BUILD: torch.Tensor.__setstate__ would call set_()."""

    def __init__(self, storage, state):
        self.storage, self.state = storage, state

    def __reduce__(self):
        return torch._utils._rebuild_tensor_v2, (self.storage, 0, (6,), (1,), False,
                                                 OrderedDict()), self.state


@pytest.mark.parametrize("attack", list(BUILD_ATTACKS))
def test_build_on_stand_ins_is_refused_and_leaves_no_trace(tmp_path, generator, attack):
    from gan_core.io import nvidia_pickle as reader

    path = tmp_path / "build.pkl"
    path.write_bytes(b"\x80\x02" + BUILD_ATTACKS[attack])
    with pytest.raises(CheckpointError) as info:
        read_nvidia_pickle(path)
    assert "build.pkl" in str(info.value)
    # The scan refuses most of these (BUILD on a global is nothing a Pickler writes); the
    # unpickler's stand-ins refuse them on their own too.
    unpickler = reader._NvidiaUnpickler(io.BytesIO(path.read_bytes()),
                                        reader._Reader("model file 'build.pkl'", 10_000))
    with pytest.raises((ValueError, TypeError, AttributeError)):
        unpickler.load()
    assert reader._latin1_bytes.__defaults__ is None
    assert not hasattr(reader._NumpyDType, "evil") and not hasattr(reader._NDArrayClass, "evil")
    good = write_nvidia_pickle(tmp_path / "good.pkl", _top(generator))
    assert list(read_nvidia_pickle(good)["G"].state_dict()) == list(generator.state_dict())


def test_build_on_a_tensor_is_refused(tmp_path):
    storage = _typed_storage()
    top = {"G": FakeModule("Generator", buffers={
        "x": _TensorWithState(storage, (storage, 0, (10**9,), (1,)))})}
    path = write_nvidia_pickle(tmp_path / "tensor_build.pkl", top, protocol=3)
    with pytest.raises(CheckpointError, match="BUILD"):
        read_nvidia_pickle(path)




class _RawTensor:
    """A tensor reduction with chosen offset, size and stride over a real storage."""

    def __init__(self, storage, offset, size, stride):
        self.parts = (storage, offset, size, stride)

    def __reduce__(self):
        storage, offset, size, stride = self.parts
        return torch._utils._rebuild_tensor_v2, (storage, offset, size, stride, False,
                                                 OrderedDict())


class _RawArray:
    """numpy's own ndarray reduction with a chosen state."""

    def __init__(self, state):
        self.state = state

    def __reduce__(self):
        return np.ndarray.__reduce__(np.zeros(1, np.float32))[0], (np.ndarray, (0,), b"b"), \
            self.state


class _RawStorage:
    """A storage reduced to torch.storage._load_from_bytes over chosen bytes."""

    def __init__(self, blob: bytes):
        self.blob = blob

    def __reduce__(self):
        return torch.storage._load_from_bytes, (self.blob,)


def _legacy_blob(numel_in_id: int, numel_in_header: int, data: bytes) -> bytes:
    """A legacy storage blob whose persistent id and header claim chosen element counts."""
    real = io.BytesIO()
    torch.save(torch.zeros(1).storage(), real, _use_new_zipfile_serialization=False)
    raw = real.getvalue()
    head = sum(s.length for s in scan_pickle_sequence(raw, "x", ("magic", "protocol", "info")))
    storage_id = (b"\x80\x02(X\x07\x00\x00\x00storageq\x00ctorch\nFloatStorage\nq\x01"
                  b"X\x01\x00\x00\x000q\x02X\x03\x00\x00\x00cpuq\x03\x8a\x08"
                  + numel_in_id.to_bytes(8, "little") + b"Ntq\x04Q.")
    keys = b"\x80\x02]q\x00X\x01\x00\x00\x000q\x01a."
    return raw[:head] + storage_id + keys + numel_in_header.to_bytes(8, "little") + data


def _typed_storage() -> torch.storage.TypedStorage:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # TypedStorage is what torch 1.x files hold
        return torch.arange(6, dtype=torch.float32).storage()


def _zip_blob(numel_in_id: int | None = None) -> bytes:
    """A zip-format storage blob (older torch), optionally claiming another element count."""
    buffer = io.BytesIO()
    torch.save(_typed_storage(), buffer)
    if numel_in_id is None:
        return buffer.getvalue()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith("data.pkl"):
                assert b"K\x06t" in data
                data = data.replace(b"K\x06t", b"J" + numel_in_id.to_bytes(4, "little") + b"t")
            target.writestr(info.filename, data)
    return out.getvalue()


def _hostile_files(tmp_path: Path) -> dict[str, Path]:
    """Small files that claim far more than they hold."""
    storage = _typed_storage()
    one_float = b"\x00\x00\x80?" * 6
    cases = {
        "tensor_4gb_view": _RawTensor(storage, 0, (10**9,), (1,)),
        "tensor_past_storage": _RawTensor(storage, 4, (3,), (1,)),
        "expanded_view_1e12": _RawTensor(storage, 0, (10**6, 10**6), (0, 0)),
        "overlapping_view": _RawTensor(storage, 0, (2, 3), (1, 1)),
        "negative_stride": _RawTensor(storage, 5, (3,), (-1,)),
        "rank_100": _RawTensor(storage, 0, (1,) * 100, (1,) * 100),
        "array_1e12": _RawArray((1, (10**12,), np.dtype("f4"), False, b"\x00" * 4)),
        "array_shape_vs_bytes": _RawArray((1, (3, 3), np.dtype("f4"), False, b"\x00" * 32)),
        "object_array": _RawArray((1, (2,), np.dtype("f4"), False, [1, 2])),
        "object_dtype": _RawArray((1, (2,), np.dtype("O"), False, [1, 2])),
        "blob_id_lies": _RawStorage(_legacy_blob(10**9, 6, one_float)),
        "blob_header_lies": _RawStorage(_legacy_blob(6, 10**9, one_float)),
        "blob_both_lie": _RawStorage(_legacy_blob(10**9, 10**9, one_float)),
        "blob_zip_lies": _RawTensor(_RawStorage(_zip_blob(10**9)), 0, (6,), (1,)),
        "blob_zip_claims_little": _RawTensor(_RawStorage(_zip_blob(2)), 0, (2,), (1,)),
    }
    files = {}
    for name, payload in cases.items():
        top = {"G": FakeModule("Generator", buffers={"x": payload})}
        files[name] = write_nvidia_pickle(tmp_path / f"{name}.pkl", top, protocol=3)
    deep = tmp_path / "deep_200k.pkl"
    deep.write_bytes(b"\x80\x04}" + b")" + b"\x85" * 200_000 + b"K\x01s.")
    files["deep_200k"] = deep
    return files


def test_lying_sizes_are_refused(tmp_path):
    files = _hostile_files(tmp_path)
    assert files["tensor_4gb_view"].stat().st_size < 2048
    for name, path in files.items():
        with pytest.raises(CheckpointError) as info:
            read_nvidia_pickle(path)
        assert path.name in str(info.value), name


def test_a_zip_storage_blob_is_read(tmp_path):
    """Older torch versions wrote the storage blobs in the zip format: still data."""
    top = {"G": FakeModule("Generator", buffers={
        "x": _RawTensor(_RawStorage(_zip_blob()), 1, (2, 2), (1, 2))})}
    path = write_nvidia_pickle(tmp_path / "zipblob.pkl", top, protocol=4)
    x = read_nvidia_pickle(path)["G"].buffers["x"]
    assert torch.equal(x, torch.arange(6.0)[1:].as_strided((2, 2), (1, 2)))


MEMORY_CHILD = r"""
import json, resource, sys, tracemalloc
from gan_core.errors import CheckpointError
from gan_core.io.nvidia_pickle import read_nvidia_pickle

def peak_mb():
    # Linux: reset the peak-RSS mark per file (clear_refs 5) and read VmHWM; elsewhere the
    # process-wide ru_maxrss, which only shows growth beyond the import peak.
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass

results = {}
for path in sys.argv[1:]:
    reset_peak()
    before = peak_mb()
    tracemalloc.start()
    try:
        read_nvidia_pickle(path)
        outcome = "read"
    except CheckpointError:
        outcome = "refused"
    python_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    results[path] = [outcome, round(peak_mb() - before, 2), round(python_peak, 3)]
print(json.dumps(results))
"""


def test_hostile_files_stay_within_memory(tmp_path):
    files = _hostile_files(tmp_path)
    warm = write_nvidia_pickle(tmp_path / "warm.pkl", {"G": FakeModule(
        "Generator", parameters={"w": torch.ones(3)})})
    paths = [str(warm)] + [str(p) for p in files.values()]
    child = subprocess.run([sys.executable, "-c", MEMORY_CHILD, *paths], capture_output=True,
                           text=True, timeout=300, cwd=REPO, check=False)
    assert child.returncode == 0, child.stderr[-2000:]
    outcomes = json.loads(child.stdout.strip().splitlines()[-1])
    assert outcomes[str(warm)][0] == "read"
    for path in files.values():
        outcome, grown_mb, python_mb = outcomes[str(path)]
        assert outcome == "refused", path.name
        assert grown_mb < 100 and python_mb < 100, \
            f"{path.name}: peak memory grew {grown_mb} MB ({python_mb} MB by Python)"


# ----------------------------------------------------------------------------- foreign files

def test_foreign_and_broken_files_are_refused(tmp_path, generator):
    good = write_nvidia_pickle(tmp_path / "good.pkl", _top(generator))
    raw = good.read_bytes()
    torch.save({"w": torch.ones(2)}, tmp_path / "torch_zip.pth")
    torch.save({"w": torch.ones(2)}, tmp_path / "torch_legacy.pth",
               _use_new_zipfile_serialization=False)
    from safetensors.torch import save_file
    save_file({"w": torch.ones(2)}, str(tmp_path / "model.safetensors"))
    cases = {"torch_zip.pth": "zip", "torch_legacy.pth": "legacy", "model.safetensors":
             "safetensors", "empty.pkl": "empty", "garbage.pkl": "not an NVIDIA",
             "cut.pkl": "", "cut_more.pkl": "", "proto0.pkl": "not an NVIDIA"}
    (tmp_path / "empty.pkl").write_bytes(b"")
    (tmp_path / "garbage.pkl").write_bytes(b"\x00\x01garbage" * 10)
    (tmp_path / "cut.pkl").write_bytes(raw[:len(raw) // 2])
    (tmp_path / "cut_more.pkl").write_bytes(raw[:40])
    (tmp_path / "proto0.pkl").write_bytes(pickle.dumps({"a": 1}, 0))
    for name, needle in cases.items():
        with pytest.raises(CheckpointError) as info:
            read_nvidia_pickle(tmp_path / name)
        assert name in str(info.value) and needle in str(info.value)
    with pytest.raises(CheckpointError, match="does not exist"):
        read_nvidia_pickle(tmp_path / "missing.pkl")
    with pytest.raises(CheckpointError, match="regular file"):
        read_nvidia_pickle(tmp_path)


def test_sniff():
    assert is_nvidia_pickle(b"\x80\x03}q\x00") and is_nvidia_pickle(b"\x80\x04\x95\x10")
    assert is_nvidia_pickle(b"\x80\x02}") and is_nvidia_pickle(b"\x80\x05\x95")
    legacy = io.BytesIO()
    torch.save({}, legacy, _use_new_zipfile_serialization=False)
    for head in (b"", b"\x80", b"PK\x03\x04", b"\x80\x01", b"\x80\x06", b"(dp0\n",
                 legacy.getvalue()[:64], b"\x08\x00\x00\x00\x00\x00\x00\x00{}      "):
        assert not is_nvidia_pickle(head), head


def test_shared_child_modules_are_refused(tmp_path):
    """A file could describe an exponentially large state_dict by sharing children."""
    leaf = FakeModule("Leaf", parameters={"w": torch.ones(2)})
    node = leaf
    for i in range(30):
        node = FakeModule(f"Level{i}", modules={"a": node, "b": node})
    path = write_nvidia_pickle(tmp_path / "dag.pkl", {"G": node})
    with pytest.raises(CheckpointError, match="another module"):
        read_nvidia_pickle(path)


# ----------------------------------------------------------------------------- fuzz

def _fuzz_seed(tmp_path_factory) -> tuple[bytes, Path]:
    folder = tmp_path_factory.mktemp("fuzz")
    marker = folder / "MARKER"
    top = {"G": FakeModule("Generator", init_kwargs={"z_dim": 2, "k": {"a": 1}},
                           attributes={"s": np.float32(1.5), "a": np.arange(2, dtype=np.int16)},
                           parameters={"w": torch.tensor([1.0, 2.0])},
                           buffers={"b": torch.tensor([3], dtype=torch.int64), "n": None},
                           non_persistent={"b"},
                           modules={"c": FakeModule("Child", buffers={"f": torch.ones(1)}),
                                    "e": None}),
           "augment_pipe": None}
    path = write_nvidia_pickle(folder / "seed.pkl", top, protocol=4,
                               module_src=f"open({str(marker)!r}, 'w').close()")
    return path.read_bytes(), marker


@pytest.fixture(scope="module")
def fuzz_seed(tmp_path_factory):
    return _fuzz_seed(tmp_path_factory)


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_streams_return_or_raise_checkpoint_error(tmp_path, fuzz_seed, data):
    seed, marker = fuzz_seed
    raw = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.integers(0, max(0, len(raw) - 1)))
        how = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        if how == "flip" and raw:
            raw[where] ^= data.draw(st.integers(1, 255))
        elif how == "delete":
            del raw[where:where + data.draw(st.integers(1, 8))]
        elif how == "insert":
            raw[where:where] = data.draw(st.binary(min_size=1, max_size=8))
        else:
            del raw[where:]
    path = tmp_path / "mutated.pkl"
    path.write_bytes(bytes(raw))
    try:
        read_nvidia_pickle(path)
    except CheckpointError:
        pass
    assert not marker.exists()
    assert _nvidia_modules() == []
