"""The catalogue of model families: every subpackage of gan_core/archs that defines `SPECS`.

Nothing here names a family. A family is a folder (`archs/<family>/`) whose __init__.py holds
its ArchSpec(s) as `SPECS`; this module finds the folders, so adding a family means adding a
folder. `layers/` holds building blocks shared by several families and defines no spec.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Iterator

from ..registry import ArchSpec, PublicFormat

_CATALOGUE: dict[str, ArchSpec] = {}


def _discover() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for spec in getattr(module, "SPECS", ()):
            if spec.name in _CATALOGUE:
                raise ValueError(f"architecture {spec.name!r} is defined twice")
            _CATALOGUE[spec.name] = spec


_discover()


def get_arch(name: str) -> ArchSpec:
    try:
        return _CATALOGUE[name]
    except KeyError:
        raise ValueError(
            f"unknown architecture {name!r}; expected one of: {', '.join(list_archs())}"
        ) from None


def all_archs() -> Iterator[ArchSpec]:
    return iter(_CATALOGUE.values())


def list_archs(task: str | None = None, trainable: bool | None = None,
               trainer: str | None = None) -> list[str]:
    """Names, optionally only those of one task, those our trainers train (or not), or those
    one trainer ("gan", "style", "denoise") trains."""
    return [s.name for s in _CATALOGUE.values()
            if (task is None or s.task == task)
            and (trainable is None or s.trainable == trainable)
            and (trainer is None or s.trains_with(trainer))]


def default_arch(trainer: str) -> str:
    """The family a trainer uses when none is named (the one whose recipe says default)."""
    for spec in _CATALOGUE.values():
        if spec.trains_with(trainer) and spec.training.default:
            return spec.name
    raise ValueError(f"no family is the default of the {trainer!r} trainer")


def public_formats(container: str | None = None) -> list[tuple[ArchSpec, PublicFormat]]:
    """Every public file layout the families read, in catalogue order."""
    return [(spec, fmt) for spec in _CATALOGUE.values() for fmt in spec.public_formats
            if container is None or fmt.container == container]


def public_format_names() -> list[str]:
    """The names of every public file layout gan_core reads, for help texts."""
    return [fmt.name for _, fmt in public_formats()]


__all__ = ["all_archs", "default_arch", "get_arch", "list_archs", "public_format_names",
           "public_formats"]
