"""Write small stand-ins for NVIDIA's StyleGAN network pickles, for tests.

The streams have the structure NVIDIA's files have (../shared/reference/NVIDIA_PKL.md), built
from our own nn.Modules or plain descriptions, without NVIDIA's code:

- every `FakeModule` is a persistent object: REDUCE of
  `torch_utils.persistence._reconstruct_persistent_obj` over `(meta,)`, meta = {type: 'class',
  version: 6, module_src, class_name, state} and the state an nn.Module's __dict__
  (OrderedDicts for parameters, buffers, modules and hooks, a set of non-persistent buffer
  names, `_init_args` = (), `_init_kwargs` an EasyDict, then the plain attributes);
- tensors are torch's own `_rebuild_tensor_v2` / `_rebuild_parameter` reductions over storages
  reduced as `torch.storage._load_from_bytes(<legacy torch.save blob of the storage>)`;
- dict values of `init_kwargs` become `dnnlib.util.EasyDict`s, numpy scalars and arrays are
  reduced by numpy itself under the chosen module spelling (`numpy.core` as numpy 1 writes,
  `numpy._core` as numpy 2 writes);
- a `FakeTFNetwork` is a `dnnlib.tflib.network.Network` built by NEWOBJ and given its state by
  BUILD, as the TensorFlow-era files are.

The pickler needs NVIDIA's module names to be importable while it writes a global, so small
stand-in modules are put in sys.modules for the duration of one write and always removed
again (`stand_in_modules`). The stand-in functions are never called: the writer only names
them. Nothing here is used to read a file.
"""
from __future__ import annotations

import contextlib
import io
import pickle
import sys
import types
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

# Module names registered only while a stream is written.
STAND_IN_MODULES = ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util",
                    "dnnlib.tflib", "dnnlib.tflib.network")
NUMPY_SPELLINGS = ("numpy.core", "numpy._core")

# The hook registries NVIDIA-era nn.Modules carried in their __dict__.
_HOOK_DICTS = ("_backward_hooks", "_forward_hooks", "_forward_pre_hooks", "_state_dict_hooks",
               "_load_state_dict_pre_hooks")


@dataclass
class FakeModule:
    """What one persistent network object holds."""

    class_name: str
    init_kwargs: dict = field(default_factory=dict)
    attributes: dict = field(default_factory=dict)
    parameters: dict[str, torch.Tensor | None] = field(default_factory=dict)
    buffers: dict[str, torch.Tensor | None] = field(default_factory=dict)
    non_persistent: set[str] = field(default_factory=set)
    modules: dict[str, FakeModule | None] = field(default_factory=dict)


@dataclass
class FakeTFNetwork:
    """What one TensorFlow-era dnnlib.tflib.network.Network pickles as its state."""

    name: str
    static_kwargs: dict = field(default_factory=dict)
    components: dict[str, FakeTFNetwork] = field(default_factory=dict)
    variables: list[tuple[str, np.ndarray]] = field(default_factory=list)
    build_func_name: str = "G_main"
    build_module_src: str = "<source>"
    version: int = 4

    def state(self) -> dict:
        return {"version": self.version, "name": self.name,
                "static_kwargs": dict(self.static_kwargs), "components": dict(self.components),
                "build_module_src": self.build_module_src,
                "build_func_name": self.build_func_name, "variables": list(self.variables)}


def fake_from_module(module: torch.nn.Module,
                     class_names: dict[type, str] | Callable[[torch.nn.Module], str] | None = None,
                     init_kwargs: dict | None = None,
                     attributes: Callable[[torch.nn.Module], dict] | None = None) -> FakeModule:
    """A FakeModule tree mirroring a real nn.Module tree: each module's own parameters,
    buffers (non-persistent ones marked) and children, named by `class_names` (default: the
    Python class name). `init_kwargs` goes to the top module; `attributes(m)` gives each
    module's plain attributes."""

    def name_of(m: torch.nn.Module) -> str:
        if isinstance(class_names, dict):
            return class_names.get(type(m), type(m).__name__)
        if class_names is not None:
            return class_names(m)
        return type(m).__name__

    def build(m: torch.nn.Module, top: bool) -> FakeModule:
        return FakeModule(
            class_name=name_of(m),
            init_kwargs=dict(init_kwargs or {}) if top else {},
            attributes=dict(attributes(m)) if attributes is not None else {},
            parameters={k: None if p is None else p.detach().clone()
                        for k, p in m._parameters.items()},
            buffers={k: None if b is None else b.detach().clone()
                     for k, b in m._buffers.items()},
            non_persistent=set(m._non_persistent_buffers_set),
            modules={k: None if c is None else build(c, False) for k, c in m._modules.items()},
        )

    return build(module, True)


# ----------------------------------------------------------------------------- stand-in modules

def _named(obj, module: str, name: str):
    obj.__module__ = module
    obj.__qualname__ = name
    obj.__name__ = name
    return obj


def _never_called(*args, **kwargs):
    raise RuntimeError("writer-side stand-in: only its name goes into the stream")


def _build_stand_ins(numpy_module: str) -> dict[str, types.ModuleType]:
    """Fresh modules under NVIDIA's names (and one numpy spelling when numpy's own differs)."""
    modules = {name: types.ModuleType(name) for name in STAND_IN_MODULES}
    modules["torch_utils.persistence"]._reconstruct_persistent_obj = _named(
        types.FunctionType(_never_called.__code__, {}), "torch_utils.persistence",
        "_reconstruct_persistent_obj")
    modules["dnnlib.util"].EasyDict = _named(type("EasyDict", (dict,), {}), "dnnlib.util",
                                             "EasyDict")
    modules["dnnlib.tflib.network"].Network = _named(
        type("Network", (), {"__getstate__": lambda self: self.pickled_state}),
        "dnnlib.tflib.network", "Network")
    modules["torch_utils"].persistence = modules["torch_utils.persistence"]
    modules["dnnlib"].util = modules["dnnlib.util"]
    modules["dnnlib"].tflib = modules["dnnlib.tflib"]
    modules["dnnlib.tflib"].network = modules["dnnlib.tflib.network"]
    if numpy_module != _numpy_own_spelling():
        name = f"{numpy_module}.multiarray"
        fake = types.ModuleType(name)
        for attr in ("scalar", "_reconstruct"):
            setattr(fake, attr, _named(types.FunctionType(_never_called.__code__, {}), name,
                                       attr))
        modules[name] = fake
    return modules


def _numpy_own_spelling() -> str:
    return np.float32(0).__reduce__()[0].__module__.rsplit(".", 1)[0]


_MISSING = object()


@contextlib.contextmanager
def stand_in_modules(numpy_module: str = "numpy.core") -> Iterator[dict[str, types.ModuleType]]:
    """Register the writer's stand-in modules in sys.modules for one write; always removed
    (or the previous entries restored) afterwards."""
    modules = _build_stand_ins(numpy_module)
    saved = {name: sys.modules.get(name, _MISSING) for name in modules}
    try:
        sys.modules.update(modules)
        yield modules
    finally:
        for name, old in saved.items():
            if old is _MISSING:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old


# ----------------------------------------------------------------------------- the writer

def _storage_blob(storage: torch.storage.TypedStorage) -> bytes:
    """A legacy (non-zip) torch.save of one storage, as TypedStorage.__reduce__ makes."""
    buffer = io.BytesIO()
    torch.save(storage, buffer, _use_new_zipfile_serialization=False)
    return buffer.getvalue()


class _Writer(pickle.Pickler):
    """A Pickler giving FakeModules, storages and numpy values NVIDIA's reductions; everything
    else (stand-in Networks included) is pickled as Python and torch pickle it."""

    def __init__(self, file, protocol: int, modules: dict[str, types.ModuleType],
                 numpy_module: str, module_src: str):
        super().__init__(file, protocol=protocol)
        self.persistent = modules["torch_utils.persistence"]._reconstruct_persistent_obj
        self.easydict = modules["dnnlib.util"].EasyDict
        self.numpy_functions = modules.get(f"{numpy_module}.multiarray")
        self.module_src = module_src

    def reducer_override(self, obj):
        if isinstance(obj, FakeModule):
            return self.persistent, (self.meta(obj),)
        if isinstance(obj, torch.storage.TypedStorage):
            return torch.storage._load_from_bytes, (_storage_blob(obj),)
        if type(obj) is np.ndarray or isinstance(obj, np.generic):
            # __reduce__, not __reduce_ex__: protocol 5 would otherwise write numpy's
            # out-of-band buffer form, which NVIDIA's files never have.
            reduced = obj.__reduce__()
            if self.numpy_functions is not None:
                name = reduced[0].__name__
                reduced = (getattr(self.numpy_functions, name), *reduced[1:])
            return reduced
        return NotImplemented

    def easy(self, value):
        """Dicts inside init_kwargs become EasyDicts, as NVIDIA's training code made them."""
        if isinstance(value, dict):
            return self.easydict({k: self.easy(v) for k, v in value.items()})
        if isinstance(value, list):
            return [self.easy(v) for v in value]
        return value

    def meta(self, module: FakeModule) -> dict:
        state = {
            "training": False,
            "_parameters": OrderedDict(
                (k, None if p is None else torch.nn.Parameter(p.detach(), requires_grad=False))
                for k, p in module.parameters.items()),
            "_buffers": OrderedDict(module.buffers),
            "_non_persistent_buffers_set": set(module.non_persistent),
            **{name: OrderedDict() for name in _HOOK_DICTS},
            "_modules": OrderedDict(module.modules),
            "_init_args": (),
            "_init_kwargs": self.easy(dict(module.init_kwargs)),
            **module.attributes,
        }
        return {"type": "class", "version": 6, "module_src": self.module_src,
                "class_name": module.class_name, "state": state}


def _with_networks(value, network_class: type, memo: dict):
    """FakeTFNetworks replaced by stand-in Network objects (shared ones stay shared).

    A Network must really be an instance of the class it names: pickle writes it as
    NEWOBJ(Network) + BUILD(state) from its own __reduce_ex__, which needs no other global.
    """
    if isinstance(value, FakeTFNetwork):
        if id(value) not in memo:
            network = object.__new__(network_class)
            memo[id(value)] = network
            state = value.state()
            state["components"] = _with_networks(state["components"], network_class, memo)
            network.pickled_state = state
        return memo[id(value)]
    if isinstance(value, tuple):
        return tuple(_with_networks(v, network_class, memo) for v in value)
    if isinstance(value, list):
        return [_with_networks(v, network_class, memo) for v in value]
    if type(value) is dict:
        return {k: _with_networks(v, network_class, memo) for k, v in value.items()}
    return value


def write_nvidia_pickle(path, top: dict | tuple, protocol: int = 4,
                        numpy_module: str = "numpy.core", module_src: str = "<source>") -> Path:
    """Write `top` (a dict like NVIDIA's {'G': ..., 'D': ..., 'G_ema': ...}, or a tuple of
    FakeTFNetworks) as a network pickle; returns the path."""
    if numpy_module not in NUMPY_SPELLINGS:
        raise ValueError(f"numpy_module must be one of {NUMPY_SPELLINGS}")
    if not 2 <= protocol <= 5:
        raise ValueError("NVIDIA-style streams use pickle protocols 2-5")
    buffer = io.BytesIO()
    with stand_in_modules(numpy_module) as modules:
        top = _with_networks(top, modules["dnnlib.tflib.network"].Network, {})
        _Writer(buffer, protocol, modules, numpy_module, module_src).dump(top)
    path = Path(path)
    path.write_bytes(buffer.getvalue())
    return path


def write_tf_pickle(path, networks: tuple, protocol: int = 2) -> Path:
    """Write a TensorFlow-era (G, D, Gs) tuple of FakeTFNetworks; returns the path."""
    if not all(isinstance(n, FakeTFNetwork) for n in networks):
        raise TypeError("write_tf_pickle takes FakeTFNetworks")
    return write_nvidia_pickle(path, tuple(networks), protocol=protocol)
