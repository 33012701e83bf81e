"""The resume state of our checkpoints, checked against what it belongs to when a file is opened.

A resumed run hands these values straight to torch: optimiser moments to a fused Adam kernel
that walks them as flat memory beside the parameter (an `exp_avg` of `zeros(1)` for a
[100, 32, 4, 4] weight makes the first resumed step read and write past the end of the moment:
a segmentation fault that takes the ComfyUI server down), the RNG state to
`torch.Generator.set_state`, the step count and loss history to the loop. So every field is
checked here, against the file's own networks (already built and matched key by key), and a
file that lies is refused by `gan_core.load` with a CheckpointError naming the field, before
any training starts:

- `step` a whole number 0..MAX_STEP, `ema_count` at most `step`;
- `param_groups`: for each optimiser a non-empty list of groups whose `params` indices cover
  exactly the parameters of the roles it steps (gan_core.registry.optimizer_roles: "G" steps
  G, and a CycleGAN's G_BA after it), with numeric hyper-parameters in range (`lr` >= 0,
  `betas` two numbers in [0, 1), `eps` > 0, `weight_decay` >= 0) and boolean flags;
- moments `opt.<optimiser>.<index>.<field>`: an optimiser and an index that exist, Adam's
  fields only and all of them (`max_exp_avg_sq` exactly when `amsgrad`), each moment the
  shape of its parameter, floating point and finite (`exp_avg_sq` >= 0), each `step` a scalar
  whole number at most one more than the run's step (a step that failed after its D update
  is saved with that update);
- `rng.torch`: a state a CPU torch.Generator accepts (it is tried on a fresh one);
- `history.<loss>`: finite 1-D float series, none longer than `step` and, once the run has
  stepped, the longest exactly `step` long (one value a step);
- `buffer.<name>`: finite floating-point tensors of at most four dimensions (the trainer
  checks their exact shape when it restores them, before its first step);
- `train_config`: an object; the sizes a resumed run reuses (`size`, `batch`, `steps`) whole
  numbers in range.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError
from ..model import ResumeState
from ..registry import ArchSpec, optimizer_roles

# A step count beyond this is a lie: a billion steps is years of training on one GPU, and
# float32 step counters in Adam stop counting exactly at 2**24 anyway.
MAX_STEP = 10**9
# The sizes a resumed run takes from the file's train_config.
TRAIN_CONFIG_BOUNDS = {"size": (1, 8192), "batch": (1, 65_536), "steps": (1, MAX_STEP)}
ADAM_MOMENTS = ("exp_avg", "exp_avg_sq")
AMSGRAD_MOMENT = "max_exp_avg_sq"
# Hyper-parameters: name -> (test, what it must be).
_HYPER = {
    "lr": (lambda v: _real(v) and v >= 0, "a number >= 0"),
    "eps": (lambda v: _real(v) and v > 0, "a number > 0"),
    "weight_decay": (lambda v: _real(v) and v >= 0, "a number >= 0"),
    "initial_lr": (lambda v: _real(v) and v >= 0, "a number >= 0"),
    "betas": (lambda v: isinstance(v, (list, tuple)) and len(v) == 2
              and all(_real(b) and 0 <= b < 1 for b in v), "two numbers in [0, 1)"),
}
_FLAGS = {"amsgrad", "maximize", "capturable", "differentiable", "decoupled_weight_decay"}
_OPTIONAL_FLAGS = {"foreach", "fused"}  # True, False or None (torch picks)


def _real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _whole(value: Any, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def _short(value: Any, limit: int = 40) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _shape(t: torch.Tensor) -> str:
    return f"{t.dtype} {tuple(t.shape)}"


class _Checker:
    def __init__(self, path: Path):
        self.path = path

    def bad(self, problem: str) -> CheckpointError:
        return CheckpointError(f"model file {self.path.name!r}: its resume state is "
                               f"inconsistent: {problem}")


def _groups(c: _Checker, name: str, groups: Any, params: list[nn.Parameter],
            roles: tuple[str, ...]) -> dict[int, nn.Parameter]:
    """The optimiser's parameter groups checked; {index in the file: the parameter}."""
    owners = " + ".join(roles)
    if not isinstance(groups, list) or not groups:
        raise c.bad(f"param_groups[{name!r}] is {_short(groups)}, not a non-empty list of "
                    "parameter groups")
    indices: list[int] = []
    for g, group in enumerate(groups):
        where = f"param_groups[{name!r}][{g}]"
        if not isinstance(group, dict):
            raise c.bad(f"{where} is a JSON {type(group).__name__}, not an object")
        ids = group.get("params")
        if not isinstance(ids, list) or not all(_whole(i, 0, 2**31) for i in ids):
            raise c.bad(f"{where}['params'] is {_short(ids)}, not a list of parameter indices")
        indices.extend(ids)
        for key, value in group.items():
            if key == "params":
                continue
            if key in _HYPER:
                test, expected = _HYPER[key]
                if not test(value):
                    raise c.bad(f"{where}[{key!r}] is {_short(value)}, not {expected}")
            elif key in _FLAGS:
                if not isinstance(value, bool):
                    raise c.bad(f"{where}[{key!r}] is {_short(value)}, not true or false")
            elif key in _OPTIONAL_FLAGS:
                if value is not None and not isinstance(value, bool):
                    raise c.bad(f"{where}[{key!r}] is {_short(value)}, not true, false or null")
            elif value is not None and not isinstance(value, (bool, int, float, str)):
                raise c.bad(f"{where}[{key!r}] is a JSON {type(value).__name__}; optimiser "
                            "settings are numbers, flags or names")
        for key in ("lr", "betas"):
            if key not in group:
                raise c.bad(f"{where} has no {key!r}")
    if sorted(indices) != list(range(len(params))):
        raise c.bad(f"param_groups[{name!r}] lists {len(indices)} parameter indices "
                    f"({_short(sorted(set(indices)), 60)}) but optimiser {name!r} steps the "
                    f"{len(params)} parameters of {owners} (indices 0..{len(params) - 1}, each "
                    "once)")
    return dict(enumerate(params))


def _moments(c: _Checker, name: str, groups: list[dict], by_index: dict[int, nn.Parameter],
             tensors: dict[str, torch.Tensor], step: int) -> dict[int, dict[str, torch.Tensor]]:
    """The optimiser's per-parameter state from the file's `opt.<name>.*` tensors, checked."""
    amsgrad = {i: bool(g.get("amsgrad", False)) for g in groups for i in g["params"]}
    prefix = f"opt.{name}."
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if not key.startswith(prefix):
            continue
        idx, _, field = key[len(prefix):].partition(".")
        if not idx.isdigit() or not field:
            raise c.bad(f"tensor {key!r} is not named opt.<optimiser>.<index>.<field>")
        if int(idx) not in by_index:
            raise c.bad(f"tensor {key!r} is for parameter {int(idx)} of optimiser {name!r}, "
                        f"which steps only {len(by_index)} parameters")
        state.setdefault(int(idx), {})[field] = value
    for idx, fields in sorted(state.items()):
        param = by_index[idx]
        expected = {"step", *ADAM_MOMENTS} | ({AMSGRAD_MOMENT} if amsgrad[idx] else set())
        where = f"opt.{name}.{idx}"
        unknown = sorted(set(fields) - expected)
        if unknown:
            raise c.bad(f"{where} has fields {unknown} that Adam does not keep"
                        f"{' (amsgrad is off)' if AMSGRAD_MOMENT in unknown else ''}")
        missing = sorted(expected - set(fields))
        if missing:
            raise c.bad(f"{where} lacks {missing}")
        count = fields["step"]
        if count.dim() != 0 or (not count.is_floating_point() and count.dtype != torch.int64):
            raise c.bad(f"{where}.step is {_shape(count)}, not a scalar step count")
        n = float(count)
        # One more than the run's step when a step failed after its D update (kept on save).
        if not (math.isfinite(n) and n == int(n) and 0 <= n <= step + 1):
            raise c.bad(f"{where}.step is {_short(n)}, not a whole number of steps in "
                        f"0..{step + 1} (the run's step, or one more)")
        for moment in sorted(expected - {"step"}):
            t = fields[moment]
            if tuple(t.shape) != tuple(param.shape) or not t.is_floating_point():
                raise c.bad(f"{where}.{moment} is {_shape(t)} but its parameter is "
                            f"{_shape(param)}: a moment must have its parameter's shape")
            if not bool(torch.isfinite(t).all()) or (moment != "exp_avg" and bool((t < 0).any())):
                raise c.bad(f"{where}.{moment} holds "
                            f"{'non-finite' if not bool(torch.isfinite(t).all()) else 'negative'}"
                            " values")
    return state


def _optimizers(c: _Checker, param_groups: Any, tensors: dict[str, torch.Tensor],
                spec: ArchSpec, modules: dict[str, nn.Module], step: int) -> dict[str, dict]:
    if not isinstance(param_groups, dict):
        raise c.bad("param_groups is not an object of lists of parameter groups")
    names = {key.split(".", 2)[1] for key in tensors if key.startswith("opt.") and key.count(".") >= 2}
    orphans = sorted(names - set(param_groups))
    if orphans:
        raise c.bad(f"tensors opt.{orphans[0]}.* belong to no optimiser in param_groups "
                    f"({', '.join(map(repr, param_groups)) or 'none'})")
    optimizers = {}
    for name, groups in param_groups.items():
        roles = optimizer_roles(spec, name)
        absent = [r for r in roles if r not in modules]
        if not roles or absent:
            held = ", ".join(sorted(modules))
            raise c.bad(f"optimiser {name!r} steps no network this {spec.name} file holds "
                        f"({held})" if not roles else
                        f"optimiser {name!r} steps {', '.join(absent)}, which the file lacks "
                        f"(it holds {held})")
        params = [p for r in roles for p in modules[r].parameters()]
        by_index = _groups(c, name, groups, params, roles)
        state = _moments(c, name, groups, by_index, tensors, step)
        optimizers[name] = {"state": state, "param_groups": groups}
    return optimizers


def _rng(c: _Checker, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    rng = tensors["rng.torch"]
    if rng.dtype != torch.uint8 or rng.dim() != 1:
        raise c.bad(f"rng.torch is {_shape(rng)}, not a 1-D uint8 state")
    expected = torch.Generator().get_state().numel()
    try:
        torch.Generator().set_state(rng.clone())
    except (RuntimeError, ValueError, TypeError) as exc:
        raise c.bad(f"rng.torch holds {rng.numel()} bytes, not a torch.Generator state "
                    f"({expected} bytes here): {str(exc).splitlines()[0][:120]}") from None
    return rng


def _history(c: _Checker, tensors: dict[str, torch.Tensor], step: int) -> dict[str, list[float]]:
    history = {}
    for key, value in tensors.items():
        if not key.startswith("history."):
            continue
        if value.dim() != 1 or not value.is_floating_point():
            raise c.bad(f"{key!r} is {_shape(value)}, not a 1-D float series")
        if not bool(torch.isfinite(value).all()):
            raise c.bad(f"{key!r} holds non-finite values (a run stops before recording one)")
        if len(value) > step:
            raise c.bad(f"{key!r} holds {len(value)} values, more than the {step} steps run")
        history[key[len("history."):]] = value.tolist()
    longest = max((len(v) for v in history.values()), default=0)
    if step > 0 and longest != step:
        raise c.bad(f"step is {step} but the longest loss history holds {longest} values "
                    "(one value is recorded every step)" if history else
                    f"step is {step} but the file holds no loss history")
    return history


def _buffers(c: _Checker, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    buffers = {}
    for key, value in tensors.items():
        if not key.startswith("buffer."):
            continue
        if value.numel() and (not value.is_floating_point() or value.dim() > 4):
            raise c.bad(f"{key!r} is {_shape(value)}; trainer buffers are floating-point "
                        "tensors of at most 4 dimensions")
        if value.numel() and not bool(torch.isfinite(value).all()):
            raise c.bad(f"{key!r} holds non-finite values")
        buffers[key[len("buffer."):]] = value
    return buffers


def _train_config(c: _Checker, train_config: Any) -> dict[str, Any]:
    if not isinstance(train_config, dict):
        raise c.bad("train_config is not an object")
    for key, (lo, hi) in TRAIN_CONFIG_BOUNDS.items():
        if key in train_config and not _whole(train_config[key], lo, hi):
            raise c.bad(f"train_config[{key!r}] is {_short(train_config[key])}, not a whole "
                        f"number in {lo}..{hi}")
    return train_config


def read_resume(path: Path, info: Any, tensors: dict[str, torch.Tensor], spec: ArchSpec,
                modules: dict[str, nn.Module]) -> ResumeState:
    """The resume state of the file at `path` (metadata `info`, its `tensors`), every field
    checked against the file's own networks `modules` (see the module docstring)."""
    c = _Checker(path)
    if not isinstance(info, dict):
        raise c.bad(f"metadata 'resume' is a JSON {type(info).__name__}, not an object")
    step = info.get("step")
    if not _whole(step, 0, MAX_STEP):
        raise c.bad(f"step is {_short(step)}, not a non-negative integer (at most {MAX_STEP})")
    ema_count = info.get("ema_count", 0)
    if not _whole(ema_count, 0, step):
        raise c.bad(f"ema_count is {_short(ema_count)}, not a non-negative integer of at most "
                    f"{step}, the step (the EMA is updated once a step)")
    train_config = _train_config(c, info.get("train_config", {}))
    rng = _rng(c, tensors)
    history = _history(c, tensors, step)
    optimizers = _optimizers(c, info.get("param_groups", {}), tensors, spec, modules, step)
    buffers = _buffers(c, tensors)
    return ResumeState(step=step, optimizers=optimizers, rng_state=rng, ema_count=ema_count,
                       history=history, train_config=train_config, buffers=buffers)
