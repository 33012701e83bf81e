"""Architecture registry: one name -> a config dataclass and a builder.

A checkpoint stores only the name and the config as JSON; the registry is what turns that
back into modules, so no code ever comes from a model file.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from ..errors import CheckpointError


@dataclass(frozen=True)
class ArchSpec:
    """What the library knows about one architecture."""

    name: str
    task: str  # "generate" | "style" | "denoise"
    config_cls: type
    build: Callable[[Any], dict[str, nn.Module]]  # config -> {"G": ..., "D": ...}
    description: str = ""
    trainable: bool = True  # False for architectures we only load (StyleGAN2)


_REGISTRY: dict[str, ArchSpec] = {}


def register(spec: ArchSpec) -> ArchSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"architecture {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def get_arch(name: str) -> ArchSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown architecture {name!r}; expected one of: {', '.join(list_archs())}"
        ) from None


def list_archs(task: str | None = None, trainable: bool | None = None) -> list[str]:
    """Registered names, optionally only those of one task and/or those our trainers train."""
    return [n for n, s in _REGISTRY.items() if (task is None or s.task == task)
            and (trainable is None or s.trainable == trainable)]


def config_to_json(config: Any) -> str:
    return json.dumps(dataclasses.asdict(config), sort_keys=True)


def config_from_json(arch: str, text: str) -> Any:
    """Rebuild a config from checkpoint metadata, refusing fields the dataclass lacks."""
    spec = get_arch(arch)
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError; absurd nesting or numbers
        raise CheckpointError(f"the model config in the file is not valid JSON "
                              f"({str(exc)[:200]})") from None
    if not isinstance(raw, dict):
        raise CheckpointError("the model config in the file is not a JSON object")
    known = {f.name: f for f in dataclasses.fields(spec.config_cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise CheckpointError(
            f"the {arch} config in the file has fields this version does not know: {unknown}"
        )
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    try:
        return spec.config_cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"the {arch} config in the file is invalid: {exc}") from None
