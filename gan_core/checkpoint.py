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
import contextlib
import json
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .errors import CheckpointError
from .formats import load_public
from .formats.by_keys import describe_mismatch
from .model import GANModel, ResumeState
from .models import config_from_json, config_to_json, get_arch
from .safetensors_header import check_safetensors_header
from .version import __version__

FORMAT_TAG = "gan_atelier"
FORMAT_VERSION = 1
# role -> which part of the arch's builder makes its module
_ROLES = {"G": "G", "G_ema": "G", "D": "D", "G_BA": "G", "D_A": "D"}


# --------------------------------------------------------------------------- writing

# A temporary file whose writer is gone and that nobody touched for this long is debris.
STALE_TEMP_SECONDS = 60.0


def _sweep_stale_temps(path: Path) -> None:
    """Delete temporary files a killed writer left beside `path`: named with the writer's pid
    (see atomic_write), that process no longer running and the file idle for a minute. Only on
    POSIX, where signal 0 asks whether a process exists without touching it."""
    if os.name != "posix":
        return
    prefix = f".{path.name}."
    try:
        names = [n for n in os.listdir(path.parent) if n.startswith(prefix) and n.endswith(".tmp")]
    except OSError:
        return
    for name in names:
        pid = name[len(prefix):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # still running (or another user's)
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError):
            continue
        stale = path.parent / name
        try:
            if time.time() - stale.stat().st_mtime > STALE_TEMP_SECONDS:
                stale.unlink()
        except OSError:
            pass


def atomic_write(path: str | os.PathLike, write: Any) -> Path:
    """Call `write(tmp_path)` then rename onto `path`; a failure leaves the old file as it was.

    The temporary file is `.NAME.PID-RANDOM.tmp` beside the target: if the process is killed
    mid-write (SIGKILL, power loss) the target keeps its previous content, and the next write
    to the same target removes the dead writer's leftover."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_stale_temps(path)
    # Not tempfile.mkstemp: its 0600 mode would survive the rename, leaving a model other
    # users/processes cannot read. os.open with 0666 honours the umask like any new file.
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
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
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        role, _, rest = key.partition(".")
        if role in _ROLES:
            parts.setdefault(role, {})[rest] = value
    return parts


def check_state(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """CheckpointError listing missing, unexpected and mis-shaped keys, if `state` is not
    exactly `module`'s; works on a module built on the meta device (nothing is allocated)."""
    problems = describe_mismatch(module.state_dict(), state)
    if problems:
        raise CheckpointError(f"{what} does not match its architecture: {problems}")


def load_state_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """load_state_dict with an error that lists missing, unexpected and mis-shaped keys."""
    check_state(module, state, what)
    module.load_state_dict(state)


# How many modules, parameters and buffers building one architecture from a file's config may
# register, beyond four per tensor in the file: real models stay far below, while a config that
# asks for a billion residual blocks is stopped at once instead of looping for hours.
BUILD_REGISTRATION_SLACK = 10_000


@contextlib.contextmanager
def _bounded_registrations(limit: int, path: Path):
    """Raise CheckpointError once this thread registers more than `limit` modules, parameters
    and buffers (torch's global registration hooks; other threads are not counted)."""
    thread, count = threading.get_ident(), [0]

    def hook(*_args):
        if threading.get_ident() == thread:
            count[0] += 1
            if count[0] > limit:
                raise CheckpointError(
                    f"model file {path.name!r}: its config describes a network of more than "
                    f"{limit} layers, parameters and buffers, far more than the file holds")

    mod = torch.nn.modules.module
    handles = [mod.register_module_module_registration_hook(hook),
               mod.register_module_parameter_registration_hook(hook),
               mod.register_module_buffer_registration_hook(hook)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _module_from_file(spec: Any, config: Any, part: str, state: dict[str, torch.Tensor],
                      what: str, path: Path, limit: int) -> torch.nn.Module | None:
    """The `part` network of `spec` holding the file's tensors, or None if the arch has no such
    part. Built on the meta device and checked key by key and shape by shape before any memory
    is used, so the config in a file's metadata cannot make the loader allocate more than the
    file's own tensors (a 250 KB file claiming a 8000-filter DCGAN used to cost 5 GB)."""
    try:
        with _bounded_registrations(limit, path), torch.device("meta"):
            built = spec.build(config)
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - a config the builder rejects is a bad file
        raise CheckpointError(f"model file {path.name!r}: its {spec.name} config cannot be "
                              f"built ({type(exc).__name__}: {str(exc)[:200]})") from None
    if part not in built:
        return None
    template = built[part]
    check_state(template, state, what)
    expected = template.state_dict()
    template.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()},
                             strict=True, assign=True)
    left = [n for n, t in (*template.named_parameters(), *template.named_buffers()) if t.is_meta]
    if left:  # a tensor outside the state_dict: the arch must be made loadable this way
        raise CheckpointError(f"{what}: {spec.name} keeps tensors outside its state_dict "
                              f"({', '.join(left[:4])}), which a file cannot restore")
    return template


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
    try:
        config = config_from_json(arch, meta["config"])
    except CheckpointError as exc:
        raise CheckpointError(f"model file {path.name!r}: {exc}") from None
    parts = _split_roles(tensors)
    if "G" not in parts and "G_ema" not in parts:
        raise CheckpointError(f"model file {path.name!r} holds no generator weights (G. or G_ema.)")
    modules: dict[str, torch.nn.Module] = {}
    limit = BUILD_REGISTRATION_SLACK + 4 * len(tensors)
    for role, state in parts.items():
        module = _module_from_file(spec, config, _ROLES[role], state, f"{role} in {path.name!r}",
                                   path, limit)
        if module is None:
            raise CheckpointError(f"model file {path.name!r} holds {role} weights, which a "
                                  f"{arch} model does not have")
        modules[role] = module
    for role, module in modules.items():
        if f"latent_avg.{role}" in tensors:  # see save(): kept outside the state_dict
            module.latent_avg = tensors[f"latent_avg.{role}"]
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


# What reading and interpreting arbitrary bytes can raise below the readers' own checks.
_INTERPRETING_ERRORS = (OSError, LookupError, TypeError, ValueError, AttributeError,
                        ArithmeticError, RuntimeError, NotImplementedError, RecursionError,
                        MemoryError)


def load(path: str | os.PathLike) -> GANModel:
    """Open a model file: our `.safetensors`, else a clear error saying what the file holds.

    Whatever the file holds, the result is a GANModel or a CheckpointError naming the file:
    the readers check what they can and say what is wrong; anything else that goes wrong while
    interpreting the bytes (a format reader tripping on data it did not expect) is reported
    the same way, with the original exception chained for debugging."""
    path = Path(path)
    _check_file(path)
    try:
        return _load_checked(path)
    except CheckpointError:
        raise
    except _INTERPRETING_ERRORS as exc:
        raise CheckpointError(f"model file {path.name!r} could not be read as a model "
                              f"({type(exc).__name__}: {_first_line(exc)})") from exc


def _load_checked(path: Path) -> GANModel:
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


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__


def _read_pickle_state(path: Path) -> dict[str, torch.Tensor]:
    """A `.pth` state_dict read as data only (weights_only=True never runs code)."""
    try:
        with torch.serialization.safe_globals(list(PICKLE_ALLOWED)):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "refused"
        raise CheckpointError(
            f"model file {path.name!r} could not be read as plain weights (it may be truncated, "
            f"or hold Python objects, which are never unpickled): {_first_line(exc)}"
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"model file {path.name!r} holds a {type(obj).__name__}, not a dict of tensors"
        )
    return obj


def _load_public(path: Path, state: dict[str, Any]) -> GANModel:
    """Recognise a public checkpoint by its key layout (see gan_core.formats)."""
    return load_public(path, state)
