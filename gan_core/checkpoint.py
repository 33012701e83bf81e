"""Our `.safetensors` checkpoint format, atomic writes, and recognition of model files.

Layout: tensors are the parts' state_dicts prefixed by role (`G.`, `G_ema.`, `D.`; a CycleGAN
also `G_BA.` and `D_A.`), plus for resumable files the optimiser moments
(`opt.<name>.<param index>.<key>`), the trainer's RNG state (`rng.torch`), the loss history
(`history.<loss>`) and any other trainer state (`buffer.<name>`, e.g. CycleGAN's image pools),
and a StyleGAN2 generator's average w (`latent_avg.<role>`). String metadata carries the
format tag and version, arch, task, the constructor config as JSON, a training summary and the
gan_core version, so a model is rebuilt from the registry with no code from the file.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .errors import CheckpointError
from .formats import load_public
from .model import GANModel, ResumeState
from .models import config_from_json, config_to_json, get_arch
from .version import __version__

FORMAT_TAG = "gan_atelier"
FORMAT_VERSION = 1
# role -> which part of the arch's builder makes its module
_ROLES = {"G": "G", "G_ema": "G", "D": "D", "G_BA": "G", "D_A": "D"}


# --------------------------------------------------------------------------- writing

def atomic_write(path: str | os.PathLike, write: Any) -> Path:
    """Call `write(tmp_path)` then rename onto `path`; a failure leaves the old file as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkstemp: its 0600 mode would survive the rename, leaving a model other
    # users/processes cannot read. os.open with 0666 honours the umask like any new file.
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o666)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"could not create a temporary file next to {str(path)!r}")
    os.close(fd)
    try:
        mode = os.stat(tmp).st_mode & 0o777  # what the umask allows a new file
        write(tmp)
        os.chmod(tmp, mode)  # safetensors 0.8 replaces the file with a 0600 one
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


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
    keep = ({"G_ema"} if "G_ema" in model.modules else
            {r for r in model.modules if _ROLES.get(r) == "G"})
    for role, module in model.modules.items():
        if not include_resume and role not in keep:
            continue
        tensors.update(_state_tensors(role, module.state_dict()))
        avg = getattr(module, "latent_avg", None)
        if isinstance(avg, torch.Tensor):  # StyleGAN2's truncation centre: no buffer, own key
            tensors[f"latent_avg.{role}"] = avg.detach().to("cpu").float().contiguous().clone()
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

def _check_file(path: Path) -> None:
    if not path.exists():
        raise CheckpointError(f"model file {str(path)!r} does not exist")
    if not path.is_file():
        raise CheckpointError(f"model path {str(path)!r} is not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"model file {path.name!r} is empty (0 bytes)")


def read_safetensors(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """Metadata and tensors of a safetensors file, with a clear error for a broken one."""
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
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"model file {path.name!r}: metadata {key!r} is not JSON ({exc})") from None


def _split_roles(tensors: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        role, _, rest = key.partition(".")
        if role in _ROLES:
            parts.setdefault(role, {})[rest] = value
    return parts


def load_state_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """load_state_dict with an error that lists missing, unexpected and mis-shaped keys."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
              for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:8]}{' ...' if len(missing) > 8 else ''}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}")
        if shapes:
            parts.append(f"mis-shaped {shapes[:5]}")
        raise CheckpointError(f"{what} does not match its architecture: " + "; ".join(parts))
    module.load_state_dict(state)


def _load_ours(path: Path, meta: dict[str, str], tensors: dict[str, torch.Tensor]) -> GANModel:
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
    config = config_from_json(arch, meta["config"])
    parts = _split_roles(tensors)
    if "G" not in parts and "G_ema" not in parts:
        raise CheckpointError(f"model file {path.name!r} holds no generator weights (G. or G_ema.)")
    modules: dict[str, torch.nn.Module] = {}
    for role, state in parts.items():
        built = spec.build(config)
        if _ROLES[role] not in built:
            raise CheckpointError(f"model file {path.name!r} holds {role} weights, which a "
                                  f"{arch} model does not have")
        template = built[_ROLES[role]]
        load_state_strict(template, state, f"{role} in {path.name!r}")
        modules[role] = template
    for role, module in modules.items():
        if f"latent_avg.{role}" in tensors:  # see save(): kept outside the state_dict
            module.latent_avg = tensors[f"latent_avg.{role}"]
    training = _meta_json(meta, "training", path, default={})
    resume = None
    if "resume" in meta and "rng.torch" in tensors:
        resume = _read_resume(path, _meta_json(meta, "resume", path), tensors)
    return GANModel(arch, config, modules, training=training, resume=resume, source=str(path))


def _read_resume(path: Path, info: dict[str, Any], tensors: dict[str, torch.Tensor]) -> ResumeState:
    optimizers = {}
    for name, groups in info.get("param_groups", {}).items():
        state: dict[int, dict[str, torch.Tensor]] = {}
        prefix = f"opt.{name}."
        for key, value in tensors.items():
            if key.startswith(prefix):
                idx, _, field = key[len(prefix):].partition(".")
                state.setdefault(int(idx), {})[field] = value
        optimizers[name] = {"state": state, "param_groups": groups}
    history = {k[len("history."):]: v.tolist() for k, v in tensors.items() if k.startswith("history.")}
    buffers = {k[len("buffer."):]: v for k, v in tensors.items() if k.startswith("buffer.")}
    return ResumeState(step=int(info["step"]), optimizers=optimizers, rng_state=tensors["rng.torch"],
                       ema_count=int(info.get("ema_count", 0)), history=history,
                       train_config=info.get("train_config", {}), buffers=buffers)


def load(path: str | os.PathLike) -> GANModel:
    """Open a model file: our `.safetensors`, else a clear error saying what the file holds."""
    path = Path(path)
    _check_file(path)
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        meta, tensors = read_safetensors(path)
        if meta.get("format") == FORMAT_TAG:
            return _load_ours(path, meta, tensors)
        return _load_public(path, tensors)
    if suffix in (".pth", ".pt", ".ckpt", ".bin"):
        return _load_public(path, _read_pickle_state(path))
    raise CheckpointError(
        f"model file {path.name!r}: unsupported extension {suffix!r}; expected .safetensors, "
        ".pth or .pt"
    )


# The only classes a public file may name beyond tensors, containers and numbers:
# rosinality's StyleGAN2 training checkpoints store their command line as an argparse.Namespace
# (rebuilt attribute by attribute, so it never calls anything the file chooses).
PICKLE_ALLOWED = (argparse.Namespace,)


def _read_pickle_state(path: Path) -> dict[str, torch.Tensor]:
    """A `.pth` state_dict read as data only (weights_only=True never runs code)."""
    try:
        with torch.serialization.safe_globals(list(PICKLE_ALLOWED)):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "refused"
        raise CheckpointError(
            f"model file {path.name!r} could not be read as plain weights (it may be truncated, "
            f"or hold Python objects, which are never unpickled): {str(exc).splitlines()[0][:300]}"
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"model file {path.name!r} holds a {type(obj).__name__}, not a dict of tensors"
        )
    return obj


def _load_public(path: Path, state: dict[str, Any]) -> GANModel:
    """Recognise a public checkpoint by its key layout (see gan_core.formats)."""
    return load_public(path, state)
