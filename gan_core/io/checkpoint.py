"""Our `.safetensors` checkpoint format: writing, and reading it back exactly.

Layout: tensors are the parts' state_dicts prefixed by role (`G.`, `G_ema.`, `D.`; a CycleGAN
also `G_BA.` and `D_A.`), plus for resumable files the optimiser moments
(`opt.<name>.<param index>.<key>`), the trainer's RNG state (`rng.torch`), the loss history
(`history.<loss>`) and any other trainer state (`buffer.<name>`, e.g. CycleGAN's image pools),
and a StyleGAN2 generator's average w (`latent_avg.<role>`). String metadata carries the
format tag and version, arch, task, the constructor config as JSON, a training summary and the
gan_core version, so a model is rebuilt from its family's ArchSpec with no code from the file.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..archs import all_archs, get_arch
from ..errors import CheckpointError
from ..model import GANModel, ResumeState
from ..registry import config_from_json, config_to_json
from ..version import __version__
from ..atomic import atomic_write
from .build import build_modules
from .safetensors_header import check_safetensors_header

FORMAT_TAG = "gan_atelier"
FORMAT_VERSION = 1


def _all_roles() -> set[str]:
    """Every role name any family stores: the tensor-name prefixes that are weights."""
    return {role for spec in all_archs() for role in spec.roles}


def _state_tensors(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # clone: safetensors refuses tensors that share storage, and params may be views.
    return {f"{prefix}.{k}": v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


def _optimizer_tensors(name: str, state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], Any]:
    tensors = {}
    for idx, per_param in state["state"].items():
        for key, value in per_param.items():
            t = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            tensors[f"opt.{name}.{idx}.{key}"] = t.detach().to("cpu").contiguous().clone()
    return tensors, state["param_groups"]


def save(model: GANModel, path: str | os.PathLike, include_resume: bool = True) -> Path:
    """Write `model` in our format, atomically. `include_resume=False` writes a smaller
    inference-only file (generator weights and metadata)."""
    tensors: dict[str, torch.Tensor] = {}
    # Inference-only files keep what samples: the EMA generator when there is one, else the
    # generators (both directions of a CycleGAN).
    spec = get_arch(model.arch)
    keep = ({"G_ema"} if "G_ema" in model.modules else
            {r for r in model.modules if spec.roles.get(r) == "G"})
    for role, module in model.modules.items():
        if not include_resume and role not in keep:
            continue
        tensors.update(_state_tensors(role, module.state_dict()))
        for name in spec.extra_tensors:  # kept outside the state_dict: a key of their own
            extra = getattr(module, name, None)
            if isinstance(extra, torch.Tensor):
                tensors[f"{name}.{role}"] = extra.detach().to("cpu").float().contiguous().clone()
    metadata = {
        "format": FORMAT_TAG,
        "format_version": str(FORMAT_VERSION),
        "arch": model.arch,
        "task": model.task,
        "config": config_to_json(model.config),
        "training": json.dumps(model.training, sort_keys=True),
        "gan_core_version": __version__,
    }
    if include_resume and model.resume is not None:
        r = model.resume
        groups = {}
        for name, state in r.optimizers.items():
            t, groups[name] = _optimizer_tensors(name, state)
            tensors.update(t)
        tensors["rng.torch"] = r.rng_state.detach().cpu().clone()
        for key, values in r.history.items():
            tensors[f"history.{key}"] = torch.tensor(values, dtype=torch.float64)
        for key, value in r.buffers.items():
            tensors[f"buffer.{key}"] = value.detach().cpu().contiguous().clone()
        metadata["resume"] = json.dumps({
            "step": r.step,
            "ema_count": r.ema_count,
            "param_groups": groups,
            "train_config": r.train_config,
        }, sort_keys=True)
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


# --------------------------------------------------------------------------- reading

def read_safetensors(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """Metadata and tensors of a safetensors file, with a clear error for a broken one. The
    header is checked against the file's size first, so no tensor is allocated for a file
    whose header lies (see gan_core.safetensors_header)."""
    check_safetensors_header(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"model file {path.name!r} is not a readable safetensors file (truncated or "
            f"corrupt?): {exc}"
        ) from None
    return metadata, tensors


def _meta_json(meta: dict[str, str], key: str, path: Path, default: Any = None) -> Any:
    if key not in meta:
        if default is not None:
            return default
        raise CheckpointError(f"model file {path.name!r} lacks the {key!r} metadata entry")
    try:
        return json.loads(meta[key])
    except (ValueError, RecursionError) as exc:  # JSONDecodeError; absurd nesting or numbers
        raise CheckpointError(f"model file {path.name!r}: metadata {key!r} is not JSON "
                              f"({str(exc)[:200]})") from None


def _split_roles(tensors: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    roles = _all_roles()
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        role, _, rest = key.partition(".")
        if role in roles:
            parts.setdefault(role, {})[rest] = value
    return parts


def load_ours(path: Path, meta: dict[str, str], tensors: dict[str, torch.Tensor]) -> GANModel:
    version = meta.get("format_version", "?")
    if version != str(FORMAT_VERSION):
        raise CheckpointError(
            f"model file {path.name!r} uses format version {version}; this gan_core "
            f"({__version__}) reads version {FORMAT_VERSION}"
        )
    arch = meta.get("arch", "")
    try:
        spec = get_arch(arch)
    except ValueError as exc:
        raise CheckpointError(f"model file {path.name!r}: {exc}") from None
    if "config" not in meta:
        raise CheckpointError(f"model file {path.name!r} lacks the 'config' metadata entry")
    try:
        config = config_from_json(spec, meta["config"])
    except CheckpointError as exc:
        raise CheckpointError(f"model file {path.name!r}: {exc}") from None
    parts = _split_roles(tensors)
    if "G" not in parts and "G_ema" not in parts:
        raise CheckpointError(f"model file {path.name!r} holds no generator weights (G. or G_ema.)")
    extras = {role: {name: tensors[f"{name}.{role}"] for name in spec.extra_tensors
                     if f"{name}.{role}" in tensors} for role in parts}
    modules = build_modules(spec, config, parts, path, len(tensors), extras)
    training = _meta_json(meta, "training", path, default={})
    if not isinstance(training, dict):
        raise CheckpointError(f"model file {path.name!r}: metadata 'training' is a JSON "
                              f"{type(training).__name__}, not an object")
    resume = None
    if "resume" in meta and "rng.torch" in tensors:
        resume = _read_resume(path, _meta_json(meta, "resume", path), tensors)
    return GANModel(arch, config, modules, training=training, resume=resume, source=str(path))


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _read_resume(path: Path, info: Any, tensors: dict[str, torch.Tensor]) -> ResumeState:
    """The resume state, every field checked: a file that lies about it is refused here, not
    half-way through a resumed run."""
    def bad(problem: str) -> CheckpointError:
        return CheckpointError(f"model file {path.name!r}: its resume state is inconsistent: "
                               f"{problem}")

    if not isinstance(info, dict):
        raise bad(f"metadata 'resume' is a JSON {type(info).__name__}, not an object")
    if not _count(info.get("step")):
        raise bad(f"step is {str(info.get('step'))[:40]}, not a non-negative integer")
    if not _count(info.get("ema_count", 0)):
        raise bad(f"ema_count is {str(info.get('ema_count'))[:40]}, not a non-negative integer")
    param_groups = info.get("param_groups", {})
    if not isinstance(param_groups, dict) or not all(
            isinstance(g, list) and all(isinstance(x, dict) for x in g)
            for g in param_groups.values()):
        raise bad("param_groups is not an object of lists of parameter groups")
    train_config = info.get("train_config", {})
    if not isinstance(train_config, dict):
        raise bad("train_config is not an object")
    rng = tensors["rng.torch"]
    if rng.dtype != torch.uint8 or rng.dim() != 1:
        raise bad(f"rng.torch is {rng.dtype} {tuple(rng.shape)}, not a 1-D uint8 state")
    optimizers = {}
    for name, groups in param_groups.items():
        state: dict[int, dict[str, torch.Tensor]] = {}
        prefix = f"opt.{name}."
        for key, value in tensors.items():
            if key.startswith(prefix):
                idx, _, field = key[len(prefix):].partition(".")
                if not idx.isdigit() or not field:
                    raise bad(f"tensor {key!r} is not named opt.<optimiser>.<index>.<field>")
                state.setdefault(int(idx), {})[field] = value
        optimizers[name] = {"state": state, "param_groups": groups}
    history = {}
    for key, value in tensors.items():
        if key.startswith("history."):
            if value.dim() != 1 or not value.is_floating_point():
                raise bad(f"{key!r} is {value.dtype} {tuple(value.shape)}, not a 1-D float series")
            history[key[len("history."):]] = value.tolist()
    buffers = {k[len("buffer."):]: v for k, v in tensors.items() if k.startswith("buffer.")}
    return ResumeState(step=info["step"], optimizers=optimizers, rng_state=rng,
                       ema_count=info.get("ema_count", 0), history=history,
                       train_config=train_config, buffers=buffers)
