"""Our `.safetensors` checkpoint format: writing, and reading it back exactly.

Layout: tensors are the parts' state_dicts prefixed by role (`G.`, `G_ema.`, `D.`; a CycleGAN
also `G_BA.` and `D_A.`), plus for resumable files the optimiser moments
(`opt.<name>.<param index>.<key>`), the trainer's RNG state (`rng.torch`), the loss history
(`history.<loss>`) and any other trainer state (`buffer.<name>`, e.g. CycleGAN's image pools),
and a StyleGAN2 generator's average w (`latent_avg.<role>`). String metadata carries the
format tag and version, arch, task, the constructor config as JSON, a training summary and the
gan_core version, so a model is rebuilt from its family's ArchSpec with no code from the file.
The resume state is checked against the rebuilt networks when a file is opened
(gan_core.io.resume).
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
from ..model import GANModel
from ..registry import config_from_json, config_to_json
from ..version import __version__
from ..atomic import atomic_write
from .build import build_modules
from .resume import read_resume
from .safetensors_header import check_safetensors_header, explain_refusal

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
    header passes gan_core's checks (gan_core.io.safetensors_header: size cap, duplicate keys,
    tensor count) and then the library's own validation of every offset, shape and dtype,
    which happens when the file is opened, before any tensor is made: a header that lies
    allocates nothing."""
    head = check_safetensors_header(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except SafetensorError as exc:
        raise CheckpointError(f"model file {path.name!r} is not a valid safetensors file: "
                              f"{explain_refusal(head, str(exc))}") from None
    except (OSError, ValueError, RuntimeError) as exc:
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
        resume = read_resume(path, _meta_json(meta, "resume", path), tensors, spec, modules)
    return GANModel(arch, config, modules, training=training, resume=resume, source=str(path))
