"""Public FastGAN checkpoints (odegeasslbc/FastGAN-pytorch, 1a848e5).

train.py writes two kinds of file, always with DataParallel's `module.` key prefix:
  * `models/<it>.pth`     = {'g': G state (the EMA weights, copied in before saving), 'd': D state}
  * `models/all_<it>.pth` = {'g': raw G, 'd', 'g_ema': list of tensors in `G.parameters()` order
    (parameters only, no buffers), 'opt_g', 'opt_d'}
and people also pass around bare generator state_dicts. Keys use the old spectral-norm API
(`weight_orig`, `weight_u`, `weight_v`); `public_key` / `native_key` map them onto our
parametrized modules.

Released models come with per-dataset widths (FastGAN-pytorch #12: `to_big.weight_orig`
[3,16,3,3] in one file, [3,8,3,3] in another), so nothing is assumed: nz and ngf are read off
the first layer, the size off which blocks exist, ndf off D's head, and every key and shape must
then equal the network that config builds. A file that looks like FastGAN but differs is
refused with a CheckpointError naming the keys, never half-loaded.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...errors import CheckpointError
from ...registry import PublicFormat, PublicModel
from ...statedict import describe_mismatch, meta_build, registration_limit
from .network import FastGANConfig, build_fastgan, native_key, public_key

State = dict[str, torch.Tensor]

# Module-name prefixes that together only FastGAN has; exact keys are checked in build(), so a
# file with a missing or mis-shaped key is still claimed and the error can name the key.
_G_MARKS = ("init.init.", "feat_8.", "se_64.main.")
_D_MARKS = ("down_from_big.", "down_from_small.", "decoder_part.main.")


def public_state(state: dict[str, Any]) -> State | None:
    """A state_dict with `module.` prefixes removed and keys in the original's names (a file
    saved from our modules also reads); None when it is not a flat dict of tensors."""
    if not isinstance(state, dict) or not state:
        return None
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        return None
    # The original strips the prefix wherever it occurs (k.replace('module.', '')).
    return {public_key(k[len("module."):] if k.startswith("module.") else k): v
            for k, v in state.items()}


def _is(state: State | None, marks: tuple[str, ...]) -> bool:
    return state is not None and all(any(k.startswith(m) for k in state) for m in marks)


def detect(obj: Any) -> bool:
    if not isinstance(obj, dict):
        return False
    if "g" in obj:
        return _is(public_state(obj["g"]), _G_MARKS)
    state = public_state(obj)
    return _is(state, _G_MARKS) or _is(state, _D_MARKS)


# --------------------------------------------------------------------------- config from shapes

def _shape(state: State, key: str, what: str, dims: int) -> torch.Size:
    t = state.get(key)
    if t is None or t.dim() != dims:
        found = "missing" if t is None else f"shaped {tuple(t.shape)}"
        raise CheckpointError(f"{what}: key {key!r} is {found}; a FastGAN file needs it as a "
                              f"{dims}-d tensor to read the network's widths")
    return t.shape


def _g_config(g: State, what: str) -> dict[str, int]:
    nz, init_out = _shape(g, "init.init.0.weight_orig", what, 4)[:2]  # [nz, 2*16*ngf, 4, 4]
    if init_out % 32:
        raise CheckpointError(f"{what}: init.init.0.weight_orig has {init_out} output channels; "
                              "FastGAN's first layer has 32*ngf")
    size = 1024 if any(k.startswith("feat_1024.") for k in g) else (
        512 if any(k.startswith("feat_512.") for k in g) else 256)
    channels = _shape(g, "to_128.weight_orig", what, 4)[0]
    return {"image_size": size, "latent_dim": int(nz), "ngf": int(init_out) // 32,
            "channels": int(channels)}


def _d_config(d: State, what: str) -> dict[str, int]:
    head = _shape(d, "rf_big.0.weight_orig", what, 4)[0]  # [16*ndf, 8*ndf, 1, 1]
    if head % 16:
        raise CheckpointError(f"{what}: rf_big.0.weight_orig has {head} output channels; "
                              "FastGAN's discriminator head has 16*ndf")
    stem = _shape(d, "down_from_big.0.weight_orig", what, 4)
    size = 1024 if "down_from_big.2.weight_orig" in d else (256 if stem[2] == 3 else 512)
    return {"image_size": size, "ndf": int(head) // 16, "channels": int(stem[1])}


def _config(g: State, d: State | None, name: str) -> FastGANConfig:
    fields = _g_config(g, f"{name} (generator)")
    if d is not None:
        dfields = _d_config(d, f"{name} (discriminator)")
        for key in ("image_size", "channels"):
            if dfields[key] != fields[key]:
                raise CheckpointError(
                    f"{name}: the generator is for {key} {fields[key]} but the discriminator "
                    f"for {dfields[key]}")
        fields["ndf"] = dfields["ndf"]
    try:
        return FastGANConfig(**fields)
    except ValueError as exc:
        raise CheckpointError(f"{name}: the FastGAN shapes read from the file are not a "
                              f"buildable network ({exc})") from None


# --------------------------------------------------------------------------- loading

def _check_keys(module: nn.Module, state: State, what: str) -> None:
    """Key set and shapes equal to `module`'s (both in public names), else an error naming
    the missing, unexpected and mis-shaped keys."""
    expected = {public_key(k): v for k, v in module.state_dict().items()}
    problems = describe_mismatch(expected, state)
    if problems:
        raise CheckpointError(f"{what} does not match the FastGAN network its shapes describe "
                              f"(per-dataset variants with other layer widths are not "
                              f"supported): {problems}")


def _native(state: State) -> State:
    return {native_key(k): v for k, v in state.items()}


def parameter_keys(generator: nn.Module) -> list[str]:
    """The original's names of G's parameters in `G.parameters()` order: the order of the
    'g_ema' list in all_<it>.pth (our parameter order equals the original's)."""
    return [public_key(k) for k, _ in generator.named_parameters()]


def _ema_from_list(g: nn.Module, g_state: State, tensors: Any, name: str) -> State:
    """G's state with the list's tensors as its parameters (buffers from G, as the original's
    load_params keeps them), in native names."""
    keys = parameter_keys(g)
    if not isinstance(tensors, (list, tuple)) or not all(isinstance(t, torch.Tensor) for t in tensors):
        raise CheckpointError(f"{name}: 'g_ema' is not a list of tensors")
    if len(tensors) != len(keys):
        raise CheckpointError(f"{name}: 'g_ema' holds {len(tensors)} tensors but the generator "
                              f"has {len(keys)} parameters")
    bad = [f"#{i} {k}: file {tuple(t.shape)} vs {tuple(p.shape)}"
           for i, (k, t, p) in enumerate(zip(keys, tensors, g.parameters())) if t.shape != p.shape]
    if bad:
        raise CheckpointError(f"{name}: 'g_ema' entries do not match the generator's "
                              f"parameters: {bad[:5]}{' ...' if len(bad) > 5 else ''}")
    ema = dict(g_state)
    ema.update(zip(keys, tensors))
    return _native(ema)


def read(obj: Any, name: str) -> PublicModel | None:
    if not detect(obj):
        return None
    g_ema = None
    if "g" in obj:
        g_state = public_state(obj["g"])
        if g_state is None:
            raise CheckpointError(f"{name}: 'g' is not a state_dict of tensors")
        d_state = None
        if obj.get("d") is not None:
            d_state = public_state(obj["d"])
            if d_state is None:
                raise CheckpointError(f"{name}: 'd' is not a state_dict of tensors")
        g_ema = obj.get("g_ema")
    else:
        g_state, d_state = public_state(obj), None
        if not _is(g_state, _G_MARKS):
            raise CheckpointError(
                f"{name} holds a FastGAN discriminator only; generating needs the generator "
                "(the 'g' of <it>.pth / all_<it>.pth, or a generator state_dict)")
    cfg = _config(g_state, d_state, name)
    count = len(g_state) + len(d_state or {})
    parts = meta_build(lambda: build_fastgan(cfg), registration_limit(count), f"model file {name!r}")
    _check_keys(parts["G"], g_state, f"{name} (generator 'g')")
    states = {"G": _native(g_state)}
    if d_state is not None:
        _check_keys(parts["D"], d_state, f"{name} (discriminator 'd')")
        states["D"] = _native(d_state)
    if g_ema is not None:
        states["G_ema"] = _ema_from_list(parts["G"], g_state, g_ema, name)
    return PublicModel("fastgan", cfg, states)


# --------------------------------------------------------------------------- writing

def export_public(model: Any, data_parallel: bool = True) -> dict[str, State]:
    """A FastGAN GANModel in the `<it>.pth` layout: {'g': its sampling generator (the EMA one
    when there is one, as train.py saves it), 'd': its discriminator when it has one},
    old-API spectral-norm names, with DataParallel's `module.` prefix unless `data_parallel`
    is False."""
    if model.arch != "fastgan":
        raise ValueError(f"export_public writes FastGAN files; this is a {model.arch} model")
    prefix = "module." if data_parallel else ""

    def state(m: nn.Module) -> State:
        return {prefix + public_key(k): v.detach().cpu().clone() for k, v in m.state_dict().items()}
    out = {"g": state(model.module)}
    if model.discriminator is not None:
        out["d"] = state(model.discriminator)
    return out


FORMAT = PublicFormat("FastGAN (odegeasslbc/FastGAN-pytorch)", read)
