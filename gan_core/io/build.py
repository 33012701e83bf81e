"""Networks from a file's tensors: the one bounded path every reader ends in.

Whether the tensors came from our format or a public one, each role's network is built from
its family's ArchSpec on the meta device (no memory, no random init), with a bound on how many
layers the config may make the builder register, then checked key by key and shape by shape,
and only then given the file's tensors. A config in a file therefore cannot make the loader
allocate more than the file's own tensors or loop for minutes.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError
from ..registry import ArchSpec
from ..statedict import assign_state, check_layout, meta_build, registration_limit


def build_modules(spec: ArchSpec, config: object, states: dict[str, dict[str, torch.Tensor]],
                  path: Path, tensor_count: int,
                  extras: dict[str, dict[str, torch.Tensor]] | None = None) -> dict[str, nn.Module]:
    """{role: network holding `states[role]`} for `spec` built from `config`; `extras` are
    the tensors the family keeps outside its state_dict (ArchSpec.extra_tensors)."""
    limit = registration_limit(tensor_count)
    what = f"model file {path.name!r}"
    modules: dict[str, nn.Module] = {}
    for role, state in states.items():
        part = spec.roles.get(role)
        if part is None:
            raise CheckpointError(f"{what} holds {role} weights, which a {spec.name} model "
                                  f"does not have")
        built = meta_build(lambda: spec.build(config), limit, f"{what} ({spec.name} config)")
        if part not in built:
            raise CheckpointError(f"{what} holds {role} weights, which a {spec.name} model "
                                  f"does not have")
        modules[role] = assign_state(built[part], state, f"{role} in {path.name!r}")
    for role, named in (extras or {}).items():
        for name, tensor in named.items():
            if name not in spec.extra_tensors:
                raise CheckpointError(f"{what}: {spec.name} models keep no {name!r}")
            if role in modules:
                check_layout(tensor, f"{what}: {name} of {role}")
                setattr(modules[role], name, tensor.detach().float().clone())
    return modules
