"""Public StyleGAN2 checkpoints in rosinality/stylegan2-pytorch's layout (bef283a).

Three kinds of file reach gan_core.load:
  * train.py's `checkpoint/NNNNNN.pt` = {'g', 'd', 'g_ema', 'g_optim', 'd_optim',
    'args' (argparse.Namespace: size, channel_multiplier, n_mlp, latent, ...), 'ada_aug_p'};
    generate.py samples from 'g_ema', and so do we;
  * convert_weight.py's output (official NVIDIA pickles) = {'g_ema', 'latent_avg' [512]}, plus
    'g' / 'd' with --gen / --disc; `latent_avg` is kept on the module as the truncation centre;
  * a bare generator state_dict (also with DataParallel's `module.` prefix).

The config comes from the training file's args when they describe the weights, else from the
shapes: style_dim from the mapping layers, n_mlp from their count, the size from the ToRGB
count and channel_multiplier from the 64 px layers (512 = cm 2, 256 = cm 1), the setting users
most often get wrong (rosinality #144: "size mismatch for convs.6..." with cm 1 on a cm 2
file). That config builds the network on the meta device, which must have exactly the file's
keys and shapes, the `kernel` and `noises.noise_i` buffers included (they are persistent in the
original; the noises are the "fixed" noise). Files that look like StyleGAN2 but differ are
refused with a CheckpointError naming the keys. Only the generator is read: no discriminator.
"""
from __future__ import annotations

import logging
import re
from typing import Any

import torch

from ...errors import CheckpointError
from ...registry import PublicFormat, PublicModel
from ...statedict import as_state, describe_mismatch, meta_build, registration_limit
from .network import StyleGAN2Config, StyleGAN2Generator

log = logging.getLogger("gan_core")

State = dict[str, torch.Tensor]
ARCH = "stylegan2"
# Keys every rosinality generator has, whatever its size: enough to claim the file, so that a
# file with wrong or missing keys elsewhere gets an error naming them.
_MARKS = ("input.input", "conv1.conv.weight", "to_rgb1.conv.weight")
_MLP = re.compile(r"^style\.(\d+)\.weight$")
_TO_RGB = re.compile(r"^to_rgbs\.(\d+)\.conv\.weight$")




def _is_generator(state: State | None) -> bool:
    return state is not None and all(k in state for k in _MARKS)


def _generator_entry(obj: dict[str, Any]) -> tuple[State | None, str]:
    """The generator state a file holds and where it was: 'g_ema' first (what generate.py
    samples from), then 'g', then the file itself."""
    for key in ("g_ema", "g"):
        if key in obj:
            state = as_state(obj[key])
            if _is_generator(state):
                return state, repr(key)
    return as_state(obj), "the state_dict"


def detect(obj: Any) -> bool:
    return isinstance(obj, dict) and _is_generator(_generator_entry(obj)[0])


# --------------------------------------------------------------------------- config

def _dim(state: State, key: str, axis: int) -> int | None:
    t = state.get(key)
    return int(t.shape[axis]) if t is not None and t.dim() > axis else None


def config_from_shapes(state: State) -> StyleGAN2Config | None:
    """The constructor arguments the tensors imply (None if they imply no valid config).
    lr_mlp and blur_kernel leave no trace in shapes: the original's defaults are taken."""
    base = _dim(state, "input.input", 1)
    style_dim = _dim(state, "conv1.conv.modulation.weight", 1)
    n_mlp = sum(1 for k in state if _MLP.match(k))
    n_rgb = sum(1 for k in state if _TO_RGB.match(k))
    if base is None or style_dim is None or n_rgb < 1:
        return None
    size = 2 ** (n_rgb + 2)
    cm = 2  # the original's default; no shape depends on it below 64 px
    if size >= 64:
        width = _dim(state, "convs.6.conv.weight", 1)  # the first 64 px conv
        if width is None or (2 * width) % base:
            return None
        cm = 2 * width // base  # width at 64 px = base * cm / 2
    try:
        return StyleGAN2Config(image_size=size, style_dim=style_dim, n_mlp=n_mlp,
                               channel_multiplier=cm, base_channels=base)
    except ValueError:
        return None


def config_from_args(args: Any, shaped: StyleGAN2Config | None) -> StyleGAN2Config | None:
    """train.py's Namespace as a config (its size / channel_multiplier / n_mlp / latent), the
    rest from the shapes; None without usable args."""
    fields = vars(args) if hasattr(args, "__dict__") else args
    if not isinstance(fields, dict) or "size" not in fields:
        return None
    base = shaped.base_channels if shaped is not None else 512
    try:
        return StyleGAN2Config(
            image_size=int(fields["size"]),
            style_dim=int(fields.get("latent", shaped.style_dim if shaped else 512)),
            n_mlp=int(fields.get("n_mlp", shaped.n_mlp if shaped else 8)),
            channel_multiplier=int(fields.get("channel_multiplier", 2)),
            base_channels=base)
    except (TypeError, ValueError):
        return None


def _mismatch(state: State, cfg: StyleGAN2Config, what: str) -> str:
    """What differs between the file's keys/shapes and the network `cfg` builds ("" when they
    are equal); the build is bounded by the file's tensor count, so a config that asks for
    100,000 mapping layers is refused at once."""
    net = meta_build(lambda: StyleGAN2Generator(cfg), registration_limit(len(state)), what)
    return describe_mismatch(net.state_dict(), state)


def _contradiction(state: State, cfg: StyleGAN2Config) -> str:
    """What `cfg` claims that the file's keys contradict, found without building anything
    ("" when nothing does): a config read from args must agree with the tensors before a
    network is built from it (6 KB of args saying n_mlp=100000 took 36 s and 770 MB to refuse
    when only the bounded build stopped them)."""
    n_mlp = sum(1 for k in state if _MLP.match(k))
    n_rgb = sum(1 for k in state if _TO_RGB.match(k))
    style_dim = _dim(state, "conv1.conv.modulation.weight", 1)
    if cfg.n_mlp != n_mlp:
        return f"n_mlp is {cfg.n_mlp} but the file holds {n_mlp} mapping layers (style.N)"
    if n_rgb and cfg.image_size != 2 ** (n_rgb + 2):
        return (f"size is {cfg.image_size} but the file's {n_rgb} to_rgbs layers make "
                f"{2 ** (n_rgb + 2)} px")
    if style_dim is not None and cfg.style_dim != style_dim:
        return f"latent is {cfg.style_dim} but the file's styles are {style_dim}-dimensional"
    return ""


def _describe(cfg: StyleGAN2Config) -> str:
    return (f"size {cfg.image_size}, channel_multiplier {cfg.channel_multiplier}, "
            f"n_mlp {cfg.n_mlp}, style_dim {cfg.style_dim}")


def resolve_config(state: State, args: Any, name: str) -> StyleGAN2Config:
    """The config whose network has exactly the file's keys and shapes: the args' when they
    fit, else the shapes'; otherwise a CheckpointError naming the differing keys."""
    shaped = config_from_shapes(state)
    from_args = config_from_args(args, shaped) if args is not None else None
    tried: list[tuple[str, StyleGAN2Config, str]] = []
    for source, cfg in (("its args", from_args), ("its tensor shapes", shaped)):
        if cfg is None or any(cfg == c for _, c, _ in tried):
            continue
        problems = _contradiction(state, cfg) or _mismatch(state, cfg, f"{name} ({source})")
        if not problems:
            if tried:
                log.warning("%s: the args say %s, but the weights are %s; using the weights",
                            name, _describe(tried[0][1]), _describe(cfg))
            return cfg
        tried.append((source, cfg, problems))
    if not tried:
        raise CheckpointError(
            f"{name} looks like a rosinality StyleGAN2 generator, but its shapes describe no "
            f"valid network (input.input, conv1.conv.modulation.weight, to_rgbs.N and, from "
            f"64 px, convs.6.conv.weight give the widths)")
    source, cfg, problems = tried[0]  # the args when the file has them, as the original
    raise CheckpointError(
        f"{name} looks like a rosinality StyleGAN2 generator, but does not match the network "
        f"{source} describe ({_describe(cfg)}): {problems}")


# --------------------------------------------------------------------------- loading

def _latent_avg(value: Any, w_dim: int, name: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.numel() != w_dim:
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise CheckpointError(f"{name}: 'latent_avg' should be a [{w_dim}] tensor (the mean w), "
                              f"got {shape}")
    return value.detach().float().reshape(w_dim).clone()


def read(obj: Any, name: str) -> PublicModel | None:
    if not detect(obj):
        return None
    state, where = _generator_entry(obj)
    cfg = resolve_config(state, obj.get("args"), f"{name} ({where})")
    extras = {}
    if "latent_avg" in obj:
        extras = {"G": {"latent_avg": _latent_avg(obj["latent_avg"], cfg.style_dim, name)}}
    return PublicModel(ARCH, cfg, {"G": state}, extras=extras)


FORMAT = PublicFormat("rosinality StyleGAN2 generator", read)
