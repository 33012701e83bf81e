"""Public formats recognised by key names alone: bare state_dicts with no metadata (CycleGAN,
pix2pix, fast-neural-style, DnCNN, DRUNet files).

A reader infers a config from key names and shapes; the network that config builds (on the meta
device, bounded by the file's size) must then have exactly the file's keys and shapes, or the
file is not claimed. A file is thus never half-claimed by the wrong family, and file names play
no part.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from ...registry import PublicFormat, PublicModel
from ...statedict import State, as_state, describe_mismatch, meta_build, registration_limit

# (state, network) -> (state without keys the original code ignores, the dropped key names)
Cleaner = Callable[[State, nn.Module], tuple[State, list[str]]]

_STAT_LEAVES = ("running_mean", "running_var", "num_batches_tracked")
LEGACY_STATS_NOTE = ("legacy InstanceNorm running-stat keys (InstanceNorm here keeps no running "
                     "statistics, as in the original code)")


def conv_weight(state: State, key: str, kernel: int | None = None) -> torch.Size | None:
    """The shape of a 4-D conv weight at `key` (with a square `kernel` when given), or None."""
    t = state.get(key)
    if t is None or t.dim() != 4 or (kernel is not None and tuple(t.shape[2:]) != (kernel, kernel)):
        return None
    return t.shape


def drop_instance_stats(state: State, net: nn.Module) -> tuple[State, list[str]]:
    """Remove running-stat keys an old file has for InstanceNorm layers that keep none (early
    2018 CycleGAN files, fast-neural-style files from PyTorch <= 0.3), as the originals do."""
    expected = net.state_dict()
    legacy = {f"{name}.{leaf}" for name, m in net.named_modules()
              if isinstance(m, nn.InstanceNorm2d) for leaf in _STAT_LEAVES}
    dropped = [k for k in state if k in legacy and k not in expected]
    return {k: v for k, v in state.items() if k not in dropped}, dropped


def keyed_format(name: str, arch: str, read: Callable[[State], Any],
                 make: Callable[[Any], nn.Module], clean: Cleaner | None = None,
                 dropped_note: str = "keys the original code ignores") -> PublicFormat:
    """A PublicFormat for single-network state_dict files whose layout `read` recognises
    (config or None); `clean` removes keys old files carry that the network has no place for."""
    def template(state: State, what: str) -> tuple[Any, nn.Module] | None:
        cfg = read(state)
        if cfg is None:
            return None
        return cfg, meta_build(lambda: make(cfg), registration_limit(len(state)), what)

    def read_file(obj: Any, file_name: str) -> PublicModel | None:
        state = as_state(obj)
        found = template(state, f"model file {file_name!r}") if state is not None else None
        if found is None:
            return None
        cfg, net = found
        state, dropped = clean(state, net) if clean else (state, [])
        if describe_mismatch(net.state_dict(), state):
            return None
        notes = ([f"dropped {len(dropped)} {dropped_note} (e.g. {dropped[0]})"]
                 if dropped else [])
        return PublicModel(arch, cfg, {"G": state}, notes=notes)

    def diagnose(obj: Any) -> str | None:
        state = as_state(obj)
        found = template(state, name) if state is not None else None
        if found is None:
            return None
        _, net = found
        state, _ = clean(state, net) if clean else (state, [])
        return describe_mismatch(net.state_dict(), state) or None

    return PublicFormat(name, read_file, diagnose)
