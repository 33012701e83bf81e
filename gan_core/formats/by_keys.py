"""The one way public formats are matched: a reader infers a config from key names and
shapes, the network that config builds must have exactly the file's keys and shapes, and the
file's tensors are then assigned to that network (built on the meta device, so no random init
and no second copy of the weights)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ..errors import CheckpointError
from ..model import GANModel
from . import PublicFormat

log = logging.getLogger("gan_core")

State = dict[str, torch.Tensor]
# (state, network) -> (state without keys the original code ignores, the dropped key names)
Cleaner = Callable[[State, nn.Module], tuple[State, list[str]]]


def as_state(obj: Any) -> State | None:
    """The object as a flat state_dict (a DataParallel `module.` prefix removed), or None."""
    if not isinstance(obj, dict) or not obj:
        return None
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        return None
    if all(k.startswith("module.") for k in obj):
        return {k[len("module."):]: v for k, v in obj.items()}
    return dict(obj)


def _match(state: State, read: Callable[[State], Any], make: Callable[[Any], nn.Module],
           clean: Cleaner | None):
    """(config, cleaned state, dropped keys) when the keys and shapes equal those of the
    network the reader inferred; else None."""
    cfg = read(state)
    if cfg is None:
        return None
    with torch.device("meta"):
        net = make(cfg)
    state, dropped = clean(state, net) if clean else (state, [])
    expected = net.state_dict()
    if set(state) != set(expected):
        return None
    if any(tuple(state[k].shape) != tuple(v.shape) for k, v in expected.items()):
        return None
    return cfg, state, dropped


def describe_mismatch(expected: dict[str, torch.Tensor], state: dict[str, Any]) -> str:
    """Missing, unexpected and mis-shaped keys of `state` against `expected` (a network's
    state_dict), a few of each; "" when they agree."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
              for k, v in expected.items()
              if k in state and tuple(getattr(state[k], "shape", ())) != tuple(v.shape)]
    parts = []
    if missing:
        parts.append(f"missing keys {missing[:8]}{' ...' if len(missing) > 8 else ''}")
    if unexpected:
        parts.append(f"unexpected keys {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}")
    if shapes:
        parts.append(f"mis-shaped {shapes[:5]}{' ...' if len(shapes) > 5 else ''}")
    return "; ".join(parts)


def _float32(t: torch.Tensor) -> torch.Tensor:
    return t.float() if t.is_floating_point() else t


def keyed_format(name: str, arch: str, read: Callable[[State], Any],
                 make: Callable[[Any], nn.Module], clean: Cleaner | None = None,
                 dropped_note: str = "keys the original code ignores") -> PublicFormat:
    """A PublicFormat for single-network state_dict files whose layout `read` recognises;
    `clean` removes keys old files carry that the network has no place for (logged)."""
    def detect(obj: dict[str, Any]) -> bool:
        state = as_state(obj)
        return state is not None and _match(state, read, make, clean) is not None

    def build(obj: dict[str, Any], path: Path) -> GANModel:
        state = as_state(obj)
        found = _match(state, read, make, clean) if state is not None else None
        if found is None:  # detect() said yes, so only a changed object gets here
            raise CheckpointError(f"model file {Path(path).name!r} is no longer a {name} file")
        cfg, state, dropped = found
        if dropped:
            log.info("%s: dropped %d %s (e.g. %s)", Path(path).name, len(dropped), dropped_note,
                     dropped[0])
        with torch.device("meta"):
            net = make(cfg)
        net.load_state_dict({k: _float32(v) for k, v in state.items()}, strict=True, assign=True)
        return GANModel(arch, cfg, {"G": net}, source=str(path))

    def diagnose(obj: dict[str, Any]) -> str | None:
        state = as_state(obj)
        cfg = read(state) if state is not None else None
        if cfg is None:
            return None
        with torch.device("meta"):
            net = make(cfg)
        state, _ = clean(state, net) if clean else (state, [])
        return describe_mismatch(net.state_dict(), state) or None

    return PublicFormat(name, detect, build, diagnose)
