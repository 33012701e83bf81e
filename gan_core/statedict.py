"""State-dict helpers shared by every reader of model files: one key-mismatch report, flat
state_dict recognition, and building a network on the meta device with a bound on how much a
file's config may make the builder register.

Readers (gan_core/archs/*/public.py) and the checkpoint loader (gan_core/io) use these, so a
file of any format is matched and reported the same way, and no config read from a file can
make a builder loop for minutes or allocate gigabytes before its tensors are compared.
"""
from __future__ import annotations

import argparse
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


def layout_problem(t: torch.Tensor) -> str | None:
    """What makes `t` unfit to be a network's weight from a file, or None.

    Refused: meta tensors (a shape with no data: loading one fails later with "Cannot copy
    out of meta tensor"), sparse / quantized / other non-strided layouts (no saved GAN has
    them), a view that reaches past its storage's bytes, and a view whose elements overlap
    (`zeros(1).expand(...)`: a 2.5 KB file can claim 760M parameters that any later copy or
    dtype conversion materialises: 3 GB for that file). Overlap is tested the way the NVIDIA
    reader does: ordered by stride, each dimension must step past everything the smaller
    ones span (sufficient for no overlap; permuted, sliced and transposed views pass)."""
    if t.is_meta:
        return "is a meta tensor (a shape without data)"
    if t.layout != torch.strided or t.is_quantized:
        return f"has the {t.layout} layout{' (quantized)' if t.is_quantized else ''}, not a " \
               "plain dense tensor"
    size, stride = tuple(t.shape), tuple(t.stride())
    numel = t.numel()
    storage_bytes = t.untyped_storage().nbytes()
    item = t.element_size()
    offset = t.storage_offset()
    if numel == 0:
        return None if offset * item <= storage_bytes else \
            f"starts at element {offset}, past its storage of {storage_bytes} bytes"
    if any(s < 0 for s in stride):
        return f"has negative strides {list(stride)}"
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if (last + 1) * item > storage_bytes:
        return (f"(shape {list(size)}, strides {list(stride)}, offset {offset}) reaches byte "
                f"{(last + 1) * item} of a storage of {storage_bytes} bytes")
    span = 1
    for s, n in sorted((s, n) for n, s in zip(size, stride) if n > 1):
        if s < span:
            return (f"(shape {list(size)}, strides {list(stride)}) repeats elements of its "
                    f"storage of {storage_bytes} bytes: an expanded or overlapping view, "
                    f"claiming {numel * item} bytes, which a saved network never has")
        span = s * n
    return None


def check_layout(t: torch.Tensor, what: str) -> None:
    """CheckpointError naming `what` when layout_problem(t) finds something."""
    problem = layout_problem(t)
    if problem:
        raise CheckpointError(f"{what} {problem}; refused")


def check_file_tensors(obj: Any, what: str, max_bytes: int) -> int:
    """Walk what a file unpickled (dicts, lists, tuples, sets, argparse.Namespace attributes;
    no recursion, each object once) and refuse, before any reader copies a tensor, one that
    layout_problem() rejects, or tensors claiming together more than `max_bytes` (views of
    one storage can repeat it). Returns the bytes the tensors claim."""
    seen: set[int] = set()
    todo: list[tuple[Any, str]] = [(obj, "")]
    total = 0
    while todo:
        value, where = todo.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, torch.Tensor):
            name = f"{what}: tensor {where or '(top level)'}"
            check_layout(value, name)
            total += value.numel() * value.element_size()
            if total > max_bytes:
                raise CheckpointError(
                    f"{what}: its tensors claim more than {max_bytes} bytes (at {where}), far "
                    "more than the file holds: views repeating the same storage; refused")
        elif isinstance(value, dict):
            for k, v in value.items():
                todo.append((v, f"{where}.{k}" if where else str(k)[:80]))
                todo.append((k, f"{where} (a key)"))
        elif isinstance(value, (list, tuple, set, frozenset)):
            todo.extend((v, f"{where}[{i}]") for i, v in enumerate(value))
        elif isinstance(value, argparse.Namespace):
            todo.extend((v, f"{where}.{k}" if where else k) for k, v in vars(value).items())
    return total


def assign_state(template: nn.Module, state: State, what: str) -> nn.Module:
    """Give a meta-built `template` the file's tensors (converted to the template's dtypes)
    after checking key by key and shape by shape and each tensor's layout (no meta tensors,
    no views repeating or reaching past their storage: see layout_problem); refuses a network
    with tensors outside its state_dict, which no file could restore."""
    expected = template.state_dict()
    problems = describe_mismatch(expected, state)
    if problems:
        raise CheckpointError(f"{what} does not match its architecture: {problems}")
    for key, value in state.items():
        check_layout(value, f"{what}: tensor {key!r}")
    template.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()},
                             strict=True, assign=True)
    left = [n for n, t in (*template.named_parameters(), *template.named_buffers()) if t.is_meta]
    if left:
        raise CheckpointError(f"{what}: the network keeps tensors outside its state_dict "
                              f"({', '.join(left[:4])}), which a file cannot restore")
    return template
