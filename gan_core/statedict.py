"""State-dict helpers shared by every reader of model files: one key-mismatch report, flat
state_dict recognition, and building a network on the meta device with a bound on how much a
file's config may make the builder register.

Readers (gan_core/archs/*/public.py) and the checkpoint loader (gan_core/io) use these, so a
file of any format is matched and reported the same way, and no config read from a file can
make a builder loop for minutes or allocate gigabytes before its tensors are compared.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Iterator

import torch
from torch import nn

from .errors import CheckpointError

State = dict[str, torch.Tensor]

# How many modules, parameters and buffers building one network from a file's config may
# register, beyond four per tensor in the file: real models stay far below, while a config that
# asks for a billion residual blocks is stopped at once instead of looping for hours.
BUILD_REGISTRATION_SLACK = 10_000


def as_state(obj: Any) -> State | None:
    """The object as a flat state_dict (a DataParallel `module.` prefix removed), or None."""
    if not isinstance(obj, dict) or not obj:
        return None
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        return None
    if all(k.startswith("module.") for k in obj):
        return {k[len("module."):]: v for k, v in obj.items()}
    return dict(obj)


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


def load_state_strict(module: nn.Module, state: State, what: str) -> None:
    """load_state_dict with an error that lists missing, unexpected and mis-shaped keys."""
    problems = describe_mismatch(module.state_dict(), state)
    if problems:
        raise CheckpointError(f"{what} does not match its architecture: {problems}")
    module.load_state_dict(state)


def registration_limit(tensor_count: int) -> int:
    """How many registrations a network rebuilt for a file of `tensor_count` tensors may make."""
    return BUILD_REGISTRATION_SLACK + 4 * tensor_count


@contextlib.contextmanager
def bounded_registrations(limit: int, what: str) -> Iterator[None]:
    """Raise CheckpointError once this thread registers more than `limit` modules, parameters
    and buffers (torch's global registration hooks; other threads are not counted)."""
    thread, count = threading.get_ident(), [0]

    def hook(*_args: Any) -> None:
        if threading.get_ident() == thread:
            count[0] += 1
            if count[0] > limit:
                raise CheckpointError(
                    f"{what}: its config describes a network of more than {limit} layers, "
                    f"parameters and buffers, far more than the file holds")

    mod = torch.nn.modules.module
    handles = [mod.register_module_module_registration_hook(hook),
               mod.register_module_parameter_registration_hook(hook),
               mod.register_module_buffer_registration_hook(hook)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def meta_build(make: Callable[[], Any], limit: int, what: str) -> Any:
    """`make()` on the meta device (nothing allocated, no random init) with at most `limit`
    registrations; a builder that rejects the config is a CheckpointError naming `what`."""
    try:
        with bounded_registrations(limit, what), torch.device("meta"):
            return make()
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - a config the builder rejects is a bad file
        raise CheckpointError(f"{what}: its config cannot be built "
                              f"({type(exc).__name__}: {str(exc)[:200]})") from None


def assign_state(template: nn.Module, state: State, what: str) -> nn.Module:
    """Give a meta-built `template` the file's tensors (converted to the template's dtypes)
    after checking key by key and shape by shape; refuses a network with tensors outside its
    state_dict, which no file could restore."""
    expected = template.state_dict()
    problems = describe_mismatch(expected, state)
    if problems:
        raise CheckpointError(f"{what} does not match its architecture: {problems}")
    template.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()},
                             strict=True, assign=True)
    left = [n for n, t in (*template.named_parameters(), *template.named_buffers()) if t.is_meta]
    if left:
        raise CheckpointError(f"{what}: the network keeps tensors outside its state_dict "
                              f"({', '.join(left[:4])}), which a file cannot restore")
    return template
