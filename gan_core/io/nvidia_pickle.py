"""Read NVIDIA's StyleGAN network pickles (`network-snapshot-*.pkl`, `stylegan2-*.pkl`,
`stylegan3-*.pkl`, and the TensorFlow-era `(G, D, Gs)` files) as data only.

NVIDIA's own loader is `pickle.load`: each network object in the file carries its module's
Python source, which the loader executes, so a file can run anything. This reader never
imports NVIDIA's packages and never runs anything from the file:

- `scan_pickle` first bounds the stream's nesting depth, value count, memo slots and frames
  (a deeply nested key crashes CPython no matter what the unpickler allows), and every global
  the stream names is checked against ALLOWED_GLOBALS before unpickling starts;
- the unpickler maps those names, as strings, to small stand-ins written here. The persistent
  network objects become `PickledModule`s (their `module_src` is never looked at), tensors are
  rebuilt from their storages only after checking offset, shape and strides against the
  storage (no view may reach outside it or alias an element), storage blobs are checked
  against their own length before torch reads them, numpy arrays and scalars are rebuilt from
  raw bytes of plain numeric dtypes, and TF-era `Network` objects become `TFNetwork`s with
  their build source dropped;
- the storages together may not hold more bytes than the file itself has;
- while unpickling, the stream only ever holds inert stand-ins (see "stand-ins" below), so
  BUILD / APPEND / SETITEM opcodes aimed at them fail; a final walk makes the results.

Returned values are plain Python and torch data: dicts (EasyDict and OrderedDict become plain
dicts, in order), lists, tuples, sets, numbers, strings, numpy arrays, CPU tensors,
`PickledModule` and `TFNetwork`.
"""
from __future__ import annotations

import io
import math
import os
import pickle
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError
from .pickle_scan import (
    MAX_COMPRESSION_RATIO,
    TORCH_LEGACY_MAGIC,
    scan_pickle,
    scan_pickle_sequence,
)

# NVIDIA's pickles nest about 20 containers deep (17 measured for five module levels:
# meta -> state -> _modules per level, then a tensor's arguments); 100 is five times that and
# keeps the final walk over the result far from Python's recursion limit.
NVIDIA_MAX_DEPTH = 100

# The only persistence format version NVIDIA's stylegan2-ada-pytorch and stylegan3 write.
KNOWN_PERSISTENCE_VERSIONS = frozenset({6})
# TensorFlow-era Network states NVlabs/stylegan2 writes (version 4 and later).
MIN_TF_NETWORK_VERSION = 4

MAX_TENSOR_DIMS = 8
MAX_ARRAY_DIMS = 32
MAX_CLASS_NAME_CHARS = 200

# Every global a network pickle may name, as "module.name" strings: nothing here is imported.
# `_codecs.encode` and `__builtin__.set` are how Python writes bytes and sets at protocol 2
# (bytes as `_codecs.encode(text, 'latin1')`); `dnnlib.tflib.network.Network` is rebuilt by
# NEWOBJ + BUILD, which needs no other global at protocols 2-5.
ALLOWED_GLOBALS = frozenset({
    "torch_utils.persistence._reconstruct_persistent_obj",
    "collections.OrderedDict",
    "dnnlib.util.EasyDict",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter",
    "torch.storage._load_from_bytes",
    "numpy.dtype",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.ndarray",
    "builtins.set",
    "__builtin__.set",
    "_codecs.encode",
    "dnnlib.tflib.network.Network",
})

# Plain numeric numpy dtypes a file may use (numpy pickles a dtype by these codes).
NUMPY_DTYPES = frozenset({"f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8",
                          "b1"})

# Storage classes a storage blob may name, with their element sizes in bytes.
STORAGE_ELEMENT_BYTES = {
    "FloatStorage": 4, "DoubleStorage": 8, "HalfStorage": 2, "BFloat16Storage": 2,
    "LongStorage": 8, "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1,
    "BoolStorage": 1,
}

# nn.Module bookkeeping in a persistent object's state; everything else is an attribute.
_MODULE_INTERNALS = frozenset({
    "training", "_parameters", "_buffers", "_modules", "_non_persistent_buffers_set",
    "_init_args", "_init_kwargs", "_is_full_backward_hook", "_compiled_call_impl",
})

_TORCH_LEGACY_HEAD = b"\x80\x02\x8a\x0a" + TORCH_LEGACY_MAGIC.to_bytes(10, "little") + b"."


class _Refused(ValueError):
    """Raised by the stand-ins; read_nvidia_pickle adds the file name."""


def _short(value, limit: int = 80) -> str:
    """A value's repr cut to fit in one error line (file values can be huge)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ----------------------------------------------------------------------------- results

@dataclass(eq=False, repr=False)
class PickledModule:
    """One of NVIDIA's persistent network objects (an nn.Module subclass), as data.

    Tensors are plain CPU tensors (parameters too: nothing here trains, and a plain tensor
    carries no autograd state from the file). `attributes` holds the object's other plain
    state (conv_clamp, use_fp16, architecture, in_size, sampling_rate, ...); numpy scalars in
    it are Python numbers and numpy arrays stay numpy arrays.
    """

    class_name: str
    init_kwargs: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, torch.Tensor | None] = field(default_factory=dict)
    buffers: dict[str, torch.Tensor | None] = field(default_factory=dict)
    non_persistent: set[str] = field(default_factory=set)
    modules: dict[str, PickledModule | None] = field(default_factory=dict)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors named as torch's nn.Module.state_dict() would name them: a module's
        parameters, then its persistent buffers, then each child's under "child." (None
        entries skipped)."""
        out: dict[str, torch.Tensor] = {}
        todo: list[tuple[str, PickledModule]] = [("", self)]
        while todo:
            prefix, module = todo.pop()
            for name, tensor in module.parameters.items():
                if tensor is not None:
                    out[prefix + name] = tensor
            for name, tensor in module.buffers.items():
                if tensor is not None and name not in module.non_persistent:
                    out[prefix + name] = tensor
            children = [(prefix + name + ".", child) for name, child in module.modules.items()
                        if child is not None]
            todo.extend(reversed(children))
        return out

    def get(self, dotted: str) -> PickledModule:
        """The submodule at a dotted path such as "synthesis.b4.conv1" ("" is this one)."""
        module: PickledModule = self
        walked: list[str] = []
        for part in dotted.split(".") if dotted else []:
            child = module.modules.get(part)
            if child is None:
                where = ".".join(walked) or f"the {self.class_name}"
                have = ", ".join(k for k, v in module.modules.items() if v is not None)
                state = "is empty (None)" if part in module.modules else "is missing"
                raise CheckpointError(
                    f"network has no module {dotted!r}: {part!r} under {where} {state} "
                    f"(its modules: {have or 'none'})")
            walked.append(part)
            module = child
        return module

    def __repr__(self) -> str:
        return (f"PickledModule({self.class_name!r}, {len(self.parameters)} parameters, "
                f"{len(self.buffers)} buffers, modules={list(self.modules)})")


@dataclass(eq=False)
class TFNetwork:
    """A TensorFlow-era `dnnlib.tflib.network.Network`, as data.

    `variables` keeps the file's order of (name, numpy array) pairs; `components` holds the
    nested networks (mapping, synthesis). The network's build source is never kept; other
    keys a later version adds are kept in `extra`.
    """

    name: str
    version: int
    static_kwargs: dict[str, Any] = field(default_factory=dict)
    components: dict[str, TFNetwork] = field(default_factory=dict)
    build_func_name: str | None = None
    variables: list[tuple[str, np.ndarray]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def variable_dict(self) -> dict[str, np.ndarray]:
        """The variables by name."""
        return dict(self.variables)


# ----------------------------------------------------------------------------- stand-ins
#
# Everything the stream can reach is one of these small objects, never a live torch tensor,
# numpy array or public result: a stream can BUILD, APPEND or SETITEM on any value it holds,
# and torch.Tensor.__setstate__ would resize a tensor over its storage, a dataclass would let
# BUILD replace its checked fields, a function would let BUILD rewrite its defaults. The
# stand-ins have no instance dict and refuse BUILD unless they are meant to receive one (a
# numpy dtype or array, a TF Network, each once). The final walk (`_Reader.finish`) turns
# them into tensors, arrays, PickledModules and TFNetworks.

class _Sealed:
    """Base of the stand-ins that take no BUILD state."""

    __slots__ = ()
    label = "value"

    def __setstate__(self, state) -> None:
        raise _Refused(f"the file gives a {self.label} a state (BUILD), which NVIDIA's "
                       "pickles never do")


class _StandIn(_Sealed):
    """One allowed callable, as the stream sees it: callable, nothing else."""

    __slots__ = ("fn", "name")
    label = "global (a class or function)"

    def __init__(self, fn, name: str):
        self.fn = fn
        self.name = name

    def __call__(self, *args):
        return self.fn(*args)


class _NumpyDType:
    """numpy.dtype as pickled: dtype(code, align, copy) then BUILD with a state tuple."""

    __slots__ = ("built", "code", "order")

    def __new__(cls, code=None, align=False, copy=True):
        if not isinstance(code, str) or code not in NUMPY_DTYPES:
            raise _Refused(f"numpy dtype {_short(code)} is not allowed (only plain numbers: "
                           f"{' '.join(sorted(NUMPY_DTYPES))})")
        if not isinstance(align, bool) or not isinstance(copy, bool):
            raise _Refused("malformed numpy dtype arguments")
        self = object.__new__(cls)
        self.code = code
        self.order = "="
        self.built = False
        return self

    def __setstate__(self, state) -> None:
        if self.built:
            raise _Refused("a numpy dtype is given its state twice")
        # numpy writes (3, byteorder, None, None, None, -1, -1, 0) for plain dtypes; version 4
        # adds a metadata dict. Anything else (fields, subarrays, sizes) is structure.
        ok = isinstance(state, tuple) and (
            (len(state) == 8 and state[0] == 3) or
            (len(state) == 9 and state[0] == 4 and state[8] in (None, {})))
        if ok:
            ok = state[1] in ("<", ">", "|", "=") and state[2:5] == (None, None, None) \
                and state[5:8] == (-1, -1, 0)
        if not ok:
            raise _Refused(f"numpy dtype {self.code!r} has a state that is not a plain number's")
        self.order = state[1]
        self.built = True

    def resolve(self) -> np.dtype:
        dtype = np.dtype(self.code)
        if self.order in ("<", ">") and dtype.itemsize > 1:
            dtype = dtype.newbyteorder(self.order)
        return dtype


class _NDArrayClass(_Sealed):
    """What `numpy.ndarray` names in a stream: only a marker for `_reconstruct`."""

    __slots__ = ()
    label = "global (numpy.ndarray)"

    def __repr__(self) -> str:
        return "numpy.ndarray (marker)"


_NDARRAY = _NDArrayClass()


class _PendingArray:
    """numpy's `_reconstruct(ndarray, (0,), b'b')`, waiting for its BUILD state."""

    __slots__ = ("array",)

    def __init__(self):
        self.array: np.ndarray | None = None

    def __setstate__(self, state) -> None:
        if self.array is not None:
            raise _Refused("a numpy array is given its data twice")
        if not (isinstance(state, tuple) and len(state) == 5 and state[0] == 1):
            raise _Refused("a numpy array's state is not (1, shape, dtype, fortran, data)")
        _, shape, dtype, fortran, raw = state
        if isinstance(raw, list):
            raise _Refused("a numpy object array (its items would be arbitrary objects) is "
                           "not allowed")
        if not isinstance(dtype, _NumpyDType):
            raise _Refused("a numpy array's dtype is not a plain numeric dtype")
        if not isinstance(raw, bytes) or not isinstance(fortran, bool):
            raise _Refused("a numpy array's data is not raw bytes")
        if not (isinstance(shape, tuple) and len(shape) <= MAX_ARRAY_DIMS
                and all(type(n) is int and n >= 0 for n in shape)):
            raise _Refused(f"a numpy array's shape {_short(shape)} is not up to "
                           f"{MAX_ARRAY_DIMS} non-negative integers")
        resolved = dtype.resolve()
        claimed = math.prod(shape) * resolved.itemsize
        if claimed != len(raw):
            raise _Refused(f"a numpy array of shape {shape} ({resolved}) needs {claimed} bytes "
                           f"but its data has {len(raw)}")
        flat = np.frombuffer(raw, dtype=resolved)
        self.array = flat.reshape(shape, order="F" if fortran else "C").copy(order="K")


def _numpy_reconstruct(cls, shape, typecode) -> _PendingArray:
    if cls is not _NDARRAY or shape != (0,) or typecode != b"b":
        raise _Refused("numpy _reconstruct is only allowed as numpy itself pickles an ndarray")
    return _PendingArray()


def _numpy_scalar(dtype, data) -> bool | int | float:
    if not isinstance(dtype, _NumpyDType) or not isinstance(data, bytes):
        raise _Refused("a numpy scalar is not (plain numeric dtype, raw bytes)")
    resolved = dtype.resolve()
    if len(data) != resolved.itemsize:
        raise _Refused(f"a numpy {resolved} scalar has {len(data)} bytes, not "
                       f"{resolved.itemsize}")
    return np.frombuffer(data, dtype=resolved)[0].item()


def _latin1_bytes(text, encoding) -> bytes:
    """Protocol 2 writes bytes as _codecs.encode(text, 'latin1'): only that is accepted."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Refused("_codecs.encode is only allowed as protocol 2 writes bytes "
                       "(text, 'latin1')")
    return text.encode("latin-1")


def _ordered_dict(*args) -> dict:
    if args:
        raise _Refused("OrderedDict is only allowed empty, filled item by item")
    return {}


def _make_set(items=()) -> set:
    if not isinstance(items, (list, tuple)):
        raise _Refused("set() is only allowed over a list of items")
    return set(items)


class _TFNetworkInPickle:
    """`dnnlib.tflib.network.Network` as pickled: NEWOBJ with no arguments, then BUILD."""

    __slots__ = ("state",)

    def __new__(cls, *args, **kwargs):
        if args or kwargs:
            raise _Refused("a TF Network is only allowed as created by NEWOBJ + BUILD")
        self = object.__new__(cls)
        self.state = None
        return self

    def __init__(self, *args, **kwargs):
        if args or kwargs:  # pragma: no cover - __new__ refused them already
            raise _Refused("a TF Network takes no arguments")

    def __setstate__(self, state) -> None:
        if self.state is not None:
            raise _Refused("a TF Network is given its state twice")
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise _Refused("a TF Network's state is not a dict of names")
        version = state.get("version")
        if type(version) is not int or version < MIN_TF_NETWORK_VERSION:
            raise _Refused(f"TF Network state version {_short(version)} is not known "
                           f"({MIN_TF_NETWORK_VERSION} or later)")
        # The build source is code: it is dropped here, unread, like every *_src entry.
        self.state = {k: v for k, v in state.items() if not k.endswith("_src")}


class _LoadedStorage(_Sealed):
    """A storage read from a checked blob: its untyped bytes, dtype and element count."""

    __slots__ = ("dtype", "numel", "untyped")
    label = "storage"

    def __init__(self, untyped: torch.UntypedStorage, dtype: torch.dtype, numel: int):
        self.untyped, self.dtype, self.numel = untyped, dtype, numel


class _PendingTensor(_Sealed):
    """A checked tensor view, made a tensor only by the final walk."""

    __slots__ = ("offset", "size", "storage", "stride")
    label = "tensor"

    def __init__(self, storage: _LoadedStorage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def materialize(self) -> torch.Tensor:
        tensor = torch.empty((0,), dtype=self.storage.dtype)
        return tensor.set_(self.storage.untyped, self.offset, self.size, self.stride)


class _PendingModule(_Sealed):
    """A persistent network object's checked parts, made a PickledModule by the final walk."""

    __slots__ = (
        "attributes",
        "buffers",
        "class_name",
        "init_kwargs",
        "modules",
        "non_persistent",
        "parameters",
    )
    label = "network object"

    def __init__(self, **parts):
        for name, value in parts.items():
            setattr(self, name, value)


class _BlobHeaderUnpickler(pickle.Unpickler):
    """Reads the small pickles of one storage blob (numbers, a dict, the persistent id).

    Its only global is a torch storage class name, returned as that string; the persistent
    id is recorded, not resolved. The blob's pickles are scanned before this reads them.
    """

    def __init__(self, file):
        super().__init__(file)
        self.ids: list = []

    def find_class(self, module, name):
        if module == "torch" and name in STORAGE_ELEMENT_BYTES:
            return _StorageClass(name)
        raise _Refused(f"a storage blob names {module}.{name}, which is not a storage class")

    def persistent_load(self, pid):
        self.ids.append(pid)
        return _PERSISTENT_MARK


class _StorageClass(str):
    """A storage class name seen in a blob."""


_PERSISTENT_MARK = object()


def _storage_id(pid, zip_format: bool) -> tuple[str, int, int]:
    """(key, element size, element count) from a blob's persistent id, checked."""
    size = 5 if zip_format else 6
    if not (isinstance(pid, tuple) and len(pid) == size and pid[0] == "storage"):
        raise _Refused("a storage blob's persistent id is not a storage")
    kind, key, location, numel = pid[1:5]
    if not isinstance(kind, _StorageClass) or not isinstance(key, str) \
            or not isinstance(location, str) or type(numel) is not int or numel < 0:
        raise _Refused("a storage blob's persistent id is malformed")
    if not zip_format and pid[5] is not None:
        raise _Refused("a storage blob holds a view of another storage")
    return key, STORAGE_ELEMENT_BYTES[kind], numel


def _legacy_blob_claim(blob: bytes) -> int:
    """Bytes a legacy `torch.save(storage)` blob will make torch allocate, checked against
    the blob's own length before torch sees it.

    The blob is five pickles (magic number, protocol version, system info, the storage's
    persistent id, the key list) and then, for its one storage, an 8-byte element count and
    the raw elements. torch allocates from the persistent id's count, so that count, the
    header's count and the bytes left must all agree.
    """
    parts = ("magic number", "protocol version", "system info", "storage", "storage keys")
    scan_pickle_sequence(blob, "a storage blob", parts, max_depth=8, max_items=4096)
    stream = io.BytesIO(blob)
    values, ids = [], []
    for _ in parts:
        unpickler = _BlobHeaderUnpickler(stream)
        values.append(unpickler.load())
        ids.extend(unpickler.ids)
    magic, protocol, _info, obj, keys = values
    if magic != TORCH_LEGACY_MAGIC or protocol != 1001 or obj is not _PERSISTENT_MARK \
            or len(ids) != 1:
        raise _Refused("a storage blob is not torch.save of one storage")
    key, element_bytes, numel = _storage_id(ids[0], zip_format=False)
    if keys != [key]:
        raise _Refused("a storage blob's key list does not match its storage")
    head = stream.read(8)
    left = len(blob) - stream.tell()
    claimed = numel * element_bytes
    if len(head) != 8:
        raise _Refused("a storage blob ends before its data")
    counted = int.from_bytes(head, "little", signed=True)
    if counted != numel or left != claimed:
        raise _Refused(f"a storage blob claims {numel} elements ({claimed} bytes) in its "
                       f"persistent id and {counted} in its data header, but holds "
                       f"{max(0, left)} bytes of data")
    return claimed


def _zip_blob_claim(blob: bytes) -> int:
    """The same check for a blob in torch's zip format (older torch versions wrote those):
    the one storage's record must hold exactly the bytes its persistent id claims."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(blob))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise _Refused(f"a storage blob is a damaged zip archive ({exc})") from None
    with archive:
        infos = {info.filename: info for info in archive.infolist()}
        pickles = [name for name in infos if name.rsplit("/", 1)[-1] == "data.pkl"]
        if len(pickles) != 1 or len(infos) != len(archive.infolist()):
            raise _Refused("a storage blob's zip archive does not have one data.pkl")
        info = infos[pickles[0]]
        if info.file_size > len(blob) or info.compress_type != zipfile.ZIP_STORED:
            raise _Refused("a storage blob's data.pkl is larger than the blob or compressed")
        data = archive.read(info)
        scan_pickle(data, "a storage blob", max_depth=8, max_items=4096)
        unpickler = _BlobHeaderUnpickler(io.BytesIO(data))
        obj = unpickler.load()
        if obj is not _PERSISTENT_MARK or len(unpickler.ids) != 1:
            raise _Refused("a storage blob is not torch.save of one storage")
        key, element_bytes, numel = _storage_id(unpickler.ids[0], zip_format=True)
        prefix = pickles[0][: -len("data.pkl")]
        record = infos.get(f"{prefix}data/{key}")
        claimed = numel * element_bytes
        if record is None or record.file_size != claimed or claimed > len(blob):
            raise _Refused(f"a storage blob claims {claimed} bytes that its archive does not "
                           "hold")
        for other in infos.values():
            if other.compress_type != zipfile.ZIP_STORED and \
                    other.file_size > MAX_COMPRESSION_RATIO * max(1, other.compress_size):
                raise _Refused("a storage blob's archive would expand like a zip bomb")
        return claimed


class _Reader:
    """One file's read: the stand-ins bound to its name and its byte budget."""

    def __init__(self, what: str, file_bytes: int):
        self.what = what
        self.file_bytes = file_bytes
        self.storage_bytes = 0
        self.owned: set[int] = set()
        self.done: dict[int, Any] = {}
        functions = {
            "torch_utils.persistence._reconstruct_persistent_obj": self.persistent_obj,
            "collections.OrderedDict": _ordered_dict,
            "torch._utils._rebuild_tensor_v2": self.rebuild_tensor,
            "torch._utils._rebuild_parameter": self.rebuild_parameter,
            "torch.storage._load_from_bytes": self.load_storage,
            "numpy.core.multiarray.scalar": _numpy_scalar,
            "numpy._core.multiarray.scalar": _numpy_scalar,
            "numpy.core.multiarray._reconstruct": _numpy_reconstruct,
            "numpy._core.multiarray._reconstruct": _numpy_reconstruct,
            "builtins.set": _make_set,
            "__builtin__.set": _make_set,
            "_codecs.encode": _latin1_bytes,
        }
        # Fresh wrappers per read: nothing a file does to them outlives it.
        self.classes: dict[str, Any] = {name: _StandIn(fn, name)
                                        for name, fn in functions.items()}
        # Classes, because NEWOBJ needs a class: dict (an EasyDict is a dict filled by
        # SETITEMS) and two stand-ins that define __setstate__ (so BUILD on the class itself
        # fails instead of setting class attributes).
        self.classes.update({"dnnlib.util.EasyDict": dict, "numpy.dtype": _NumpyDType,
                             "dnnlib.tflib.network.Network": _TFNetworkInPickle,
                             "numpy.ndarray": _NDARRAY})
        assert set(self.classes) == ALLOWED_GLOBALS

    # -- persistent network objects -----------------------------------------------------------

    def persistent_obj(self, meta) -> _PendingModule:
        """NVIDIA's `_reconstruct_persistent_obj(meta)`, as data: `meta['module_src']` (the
        source NVIDIA's loader executes) is never read; the class is only its name."""
        if not isinstance(meta, dict) or meta.get("type") != "class":
            raise _Refused("a persistent object's meta is not a class record")
        version = meta.get("version")
        if version not in KNOWN_PERSISTENCE_VERSIONS or type(version) is not int:
            raise _Refused(f"persistence version {_short(version)} is not known (only "
                           f"{sorted(KNOWN_PERSISTENCE_VERSIONS)})")
        class_name, state = meta.get("class_name"), meta.get("state")
        if not isinstance(class_name, str) or not 0 < len(class_name) <= MAX_CLASS_NAME_CHARS:
            raise _Refused("a persistent object's class name is not a short string")
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise _Refused(f"the state of a {class_name} is not a dict of names")
        return _PendingModule(
            class_name=class_name,
            init_kwargs=self.named_dict(state.get("_init_kwargs", {}), class_name,
                                        "_init_kwargs"),
            attributes={k: v for k, v in state.items()
                        if k not in _MODULE_INTERNALS and not _is_hook_dict(k)},
            parameters=self.tensor_dict(state.get("_parameters", {}), class_name,
                                        "_parameters"),
            buffers=self.tensor_dict(state.get("_buffers", {}), class_name, "_buffers"),
            non_persistent=self.name_set(state.get("_non_persistent_buffers_set", set()),
                                         class_name),
            modules=self.module_dict(state.get("_modules", {}), class_name),
        )

    @staticmethod
    def named_dict(value, class_name: str, what: str) -> dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise _Refused(f"{what} of a {class_name} is not a dict of names")
        return dict(value)

    def tensor_dict(self, value, class_name: str, what: str) -> dict:
        value = self.named_dict(value, class_name, what)
        for name, tensor in value.items():
            if tensor is not None and type(tensor) is not _PendingTensor:
                raise _Refused(f"{what}[{name!r}] of a {class_name} is a "
                               f"{type(tensor).__name__}, not a tensor")
        return value

    @staticmethod
    def name_set(value, class_name: str) -> set[str]:
        if not isinstance(value, (set, frozenset)) or not all(isinstance(k, str) for k in value):
            raise _Refused(f"_non_persistent_buffers_set of a {class_name} is not a set of names")
        return set(value)

    def module_dict(self, value, class_name: str) -> dict:
        value = self.named_dict(value, class_name, "_modules")
        for name, child in value.items():
            if child is None:
                continue
            if type(child) is not _PendingModule:
                raise _Refused(f"_modules[{name!r}] of a {class_name} is a "
                               f"{type(child).__name__}, not a network object")
            # NVIDIA's networks are trees. A child shared by many parents would let a small
            # file describe an exponentially large state_dict.
            if id(child) in self.owned:
                raise _Refused(f"module {name!r} of a {class_name} also sits in another module")
            self.owned.add(id(child))
        return value

    # -- tensors ------------------------------------------------------------------------------

    def load_storage(self, blob) -> _LoadedStorage:
        """`torch.storage._load_from_bytes(blob)` after checking what the blob claims."""
        if not isinstance(blob, bytes):
            raise _Refused("a storage is not given as bytes")
        if len(blob) > self.file_bytes:
            raise _Refused("a storage blob is larger than the file")
        claimed = _zip_blob_claim(blob) if blob.startswith(b"PK\x03\x04") \
            else _legacy_blob_claim(blob)
        if self.storage_bytes + claimed > self.file_bytes:
            raise _Refused(f"its storages claim more than the file's {self.file_bytes} bytes")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # TypedStorage deprecation notices
            loaded = torch.load(io.BytesIO(blob), weights_only=True, map_location="cpu")
            if isinstance(loaded, torch.storage.TypedStorage):
                untyped, dtype, numel = loaded.untyped(), loaded.dtype, loaded.size()
            elif isinstance(loaded, torch.UntypedStorage):
                untyped, dtype, numel = loaded, torch.uint8, loaded.nbytes()
            else:
                raise _Refused(f"a storage blob holds a {type(loaded).__name__}, not a storage")
        if untyped.device.type != "cpu" or untyped.nbytes() != claimed:
            raise _Refused("a storage blob did not load as the CPU storage it claims")
        self.storage_bytes += claimed
        return _LoadedStorage(untyped, dtype, numel)

    def rebuild_tensor(self, storage, offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None) -> _PendingTensor:
        """`torch._utils._rebuild_tensor_v2`, checked: the view must lie inside its storage
        and no two elements may share memory (an expanded view of one element could
        otherwise claim gigabytes)."""
        if not isinstance(storage, _LoadedStorage):
            raise _Refused("a tensor is not built on a storage from the file")
        if not (isinstance(size, tuple) and isinstance(stride, tuple)
                and len(size) == len(stride) <= MAX_TENSOR_DIMS):
            raise _Refused(f"a tensor's size {_short(size)} and stride {_short(stride)} are "
                           f"not two tuples of the same length up to {MAX_TENSOR_DIMS}")
        if not all(type(n) is int and n >= 0 for n in (offset, *size, *stride)):
            raise _Refused(f"a tensor's offset {_short(offset)}, size {_short(size)} or stride "
                           f"{_short(stride)} is not made of non-negative integers")
        optional_dicts = (backward_hooks, metadata)
        if not isinstance(requires_grad, bool) or \
                not all(isinstance(d, (dict, type(None))) for d in optional_dicts):
            raise _Refused("a tensor's flags are malformed")
        _check_layout(offset, size, stride, storage.numel)
        return _PendingTensor(storage, offset, size, stride)

    @staticmethod
    def rebuild_parameter(data, requires_grad=False, backward_hooks=None) -> _PendingTensor:
        """`torch._utils._rebuild_parameter`: the tensor itself (it becomes a plain tensor,
        not an nn.Parameter: this is data, nothing trains it)."""
        if type(data) is not _PendingTensor:
            raise _Refused("a parameter does not wrap a tensor")
        return data

    # -- the finished result -------------------------------------------------------------------

    def finish(self, obj, depth: int = 0):
        """Turn stand-ins into their final values and refuse anything that is not data."""
        kind = type(obj)
        if obj is None or kind in (bool, int, float, str, bytes):
            return obj
        key = id(obj)
        if key in self.done:
            return self.done[key]
        if depth > 2 * NVIDIA_MAX_DEPTH:
            raise _Refused("the file nests its values too deeply")
        step = depth + 1
        if kind is dict:
            out: Any = {}
            self.done[key] = out
            for k, v in obj.items():
                out[self.finish(k, step)] = self.finish(v, step)
            return out
        if kind is list:
            out = []
            self.done[key] = out
            for v in obj:
                out.append(self.finish(v, step))
            return out
        if kind in (tuple, set, frozenset):
            items = [self.finish(v, step) for v in obj]
            out = kind(items)
            self.done[key] = out
            return out
        if kind is _PendingArray:
            if obj.array is None:
                raise _Refused("a numpy array is used before its data was given")
            self.done[key] = obj.array
            return obj.array
        if kind is _NumpyDType:
            return obj.resolve()
        if kind is _PendingTensor:
            tensor = obj.materialize()
            self.done[key] = tensor
            return tensor
        if kind is _PendingModule:
            module = PickledModule(class_name=obj.class_name)
            self.done[key] = module
            module.init_kwargs = self.finish(obj.init_kwargs, step)
            module.attributes = self.finish(obj.attributes, step)
            module.parameters = self.finish(obj.parameters, step)
            module.buffers = self.finish(obj.buffers, step)
            module.non_persistent = set(obj.non_persistent)
            module.modules = self.finish(obj.modules, step)
            return module
        if kind is _TFNetworkInPickle:
            return self.finish_tf(obj, key, step)
        raise _Refused(f"the file holds a {_describe(obj)} where only data may be")

    def finish_tf(self, obj: _TFNetworkInPickle, key: int, step: int) -> TFNetwork:
        if obj.state is None:
            raise _Refused("a TF Network was never given its state")
        net = TFNetwork(name="", version=0)
        self.done[key] = net
        state = dict(obj.state)
        net.version = state.pop("version")
        net.name = state.pop("name", None)
        if not isinstance(net.name, str):
            raise _Refused("a TF Network has no name")
        net.static_kwargs = self.finish(state.pop("static_kwargs", {}), step)
        components = self.finish(state.pop("components", {}), step)
        if not isinstance(net.static_kwargs, dict) or not isinstance(components, dict) or \
                not all(isinstance(k, str) and isinstance(v, TFNetwork)
                        for k, v in components.items()):
            raise _Refused(f"TF Network {net.name!r} has malformed static_kwargs or components")
        net.components = components
        net.build_func_name = state.pop("build_func_name", None)
        if not isinstance(net.build_func_name, (str, type(None))):
            raise _Refused(f"TF Network {net.name!r} has a malformed build_func_name")
        variables = self.finish(state.pop("variables", []), step)
        if not isinstance(variables, list) or not all(
                isinstance(v, (tuple, list)) and len(v) == 2 and isinstance(v[0], str)
                and isinstance(v[1], np.ndarray) for v in variables):
            raise _Refused(f"TF Network {net.name!r} has variables that are not (name, array) "
                           "pairs")
        net.variables = [(name, value) for name, value in variables]
        net.extra = self.finish(state, step)
        return net


def _is_hook_dict(name: str) -> bool:
    """nn.Module's hook registries (_forward_hooks, _state_dict_pre_hooks, ...)."""
    return name.startswith("_") and "hook" in name


_CLASS_NAMES = {dict: "dnnlib.util.EasyDict", _NumpyDType: "numpy.dtype",
                _TFNetworkInPickle: "dnnlib.tflib.network.Network"}


def _describe(obj) -> str:
    if isinstance(obj, _StandIn):
        return f"reference to {obj.name}"
    if isinstance(obj, type) and obj in _CLASS_NAMES:
        return f"reference to {_CLASS_NAMES[obj]}"
    if isinstance(obj, _LoadedStorage):
        return "bare storage"
    if obj is _NDARRAY:
        return "reference to numpy.ndarray"
    if callable(obj):
        return f"reference to {getattr(obj, '__name__', type(obj).__name__)}"
    return type(obj).__name__


def _check_layout(offset: int, size: tuple, stride: tuple, numel: int) -> None:
    """A view must lie inside its storage, and no two of its elements may share one."""
    if math.prod(size) == 0:
        if offset > numel:
            raise _Refused(f"an empty tensor starts at {offset}, past its storage of {numel}")
        return
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= numel:
        raise _Refused(f"a tensor of size {list(size)} and stride {list(stride)} at offset "
                       f"{offset} reaches element {last}, but its storage has {numel}")
    # Non-overlapping: ordered by stride, each dimension must step past everything the
    # smaller ones span. A stride of 0 on a dimension longer than one repeats an element.
    span = 1
    for s, n in sorted((s, n) for n, s in zip(size, stride) if n > 1):
        if s < span:
            raise _Refused(f"a tensor of size {list(size)} and stride {list(stride)} "
                           "repeats elements of its storage (an expanded or overlapping "
                           "view), which a saved network never has")
        span = s * n


class _NvidiaUnpickler(pickle.Unpickler):
    """pickle.Unpickler that resolves globals only through the allow-list, to stand-ins."""

    def __init__(self, file, reader: _Reader):
        super().__init__(file)
        self._classes = reader.classes

    def find_class(self, module, name):
        key = f"{module}.{name}"
        found = self._classes.get(key)
        if found is None:
            raise _Refused(_not_allowed(key))
        return found

    def persistent_load(self, pid):
        raise _Refused("it holds a persistent id, which NVIDIA's network pickles never do")


def _not_allowed(name: str) -> str:
    return (f"global {name!r} is not allowed in a network pickle (only the classes NVIDIA's "
            "StyleGAN pickles use are read; nothing in the file is run)")


# ----------------------------------------------------------------------------- entry points

def is_nvidia_pickle(head: bytes) -> bool:
    """Cheap sniff on a file's first bytes: a protocol 2-5 pickle that is not torch's legacy
    `torch.save` format (which starts with a pickled magic number)."""
    head = bytes(head[:len(_TORCH_LEGACY_HEAD)])
    if len(head) < 2 or head[0] != 0x80 or not 2 <= head[1] <= 5:
        return False
    return not (len(head) >= 4 and _TORCH_LEGACY_HEAD.startswith(head))


def _refuse_foreign(data: bytes, what: str) -> None:
    if not data:
        raise CheckpointError(f"{what} is empty (0 bytes)")
    if data.startswith(b"PK\x03\x04"):
        raise CheckpointError(f"{what} is a zip archive (a torch .pt/.pth checkpoint?), not "
                              "an NVIDIA network pickle")
    if len(data) >= 9 and data[8:9] == b"{" and \
            int.from_bytes(data[:8], "little") <= len(data) - 8:
        raise CheckpointError(f"{what} looks like a safetensors file, not an NVIDIA network "
                              "pickle")
    if data.startswith(_TORCH_LEGACY_HEAD):
        raise CheckpointError(f"{what} is a legacy torch.save file, not an NVIDIA network "
                              "pickle")
    if not is_nvidia_pickle(data):
        raise CheckpointError(f"{what} is not an NVIDIA network pickle (it does not start "
                              "with a pickle protocol 2-5 header)")


def read_nvidia_pickle(path: str | os.PathLike) -> Any:
    """Read an NVIDIA StyleGAN network pickle as data; nothing in it is run.

    Returns the file's top object: for PyTorch-era files a dict {'G', 'D', 'G_ema',
    'augment_pipe', 'training_set_kwargs', ...} whose networks are `PickledModule`s; for
    TensorFlow-era files a tuple (G, D, Gs) of `TFNetwork`s. Raises CheckpointError naming
    the file for anything else: another format, a global outside ALLOWED_GLOBALS, tensors or
    arrays claiming more than their bytes, too deep or too many values, truncation.
    """
    path = Path(path)
    what = f"model file {path.name!r}"
    try:
        if not path.is_file():
            raise CheckpointError(f"{what} does not exist or is not a regular file")
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{what} cannot be read ({exc.strerror or exc})") from None
    _refuse_foreign(data, what)
    stats = scan_pickle(data, what, max_depth=NVIDIA_MAX_DEPTH)
    refused = sorted(stats.globals - ALLOWED_GLOBALS)
    if refused:
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        raise CheckpointError(f"{what}: {_not_allowed(refused[0])}{more}")
    reader = _Reader(what, len(data))
    try:
        top = _NvidiaUnpickler(io.BytesIO(data), reader).load()
        return reader.finish(top)
    except _Refused as exc:
        raise CheckpointError(f"{what}: {exc}") from None
    except CheckpointError as exc:
        raise CheckpointError(f"{what}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a malformed stream fails in many ways
        lines = str(exc).strip().splitlines()
        detail = lines[0][:200] if lines else type(exc).__name__
        raise CheckpointError(f"{what} is not a readable network pickle ({type(exc).__name__}: "
                              f"{detail}); truncated or corrupt?") from None
