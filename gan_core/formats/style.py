"""Public style-transfer checkpoints: CycleGAN / pix2pix (ResNet and U-Net generators, PatchGAN
discriminators) and fast-neural-style TransformerNet.

These files are bare state_dicts with no metadata, so the only evidence is the key names and
shapes. Each family first reads its constructor options off the keys (block count and the
dropout index shift, norm from which keys exist, widths from shapes), then builds that network
on the meta device (no memory, no init) and claims the file only if the key sets and every shape
agree exactly. A file is thus never half-claimed by the wrong family, and file names
(`latest_net_G_A.pth`, `candy.pth`) play no part.

Legacy files (CycleGAN files from early 2018, fast-neural-style files from PyTorch <= 0.3)
carry running_mean/running_var/num_batches_tracked for InstanceNorm layers that, as in the
original code today, keep no running statistics. Those keys are dropped with a logged note,
exactly what the original projects do when they load such a file.
"""
from __future__ import annotations

import re
from typing import Any, Callable

import torch
from torch import nn

from ..models.cyclegan import (CycleGANResnetConfig, NLayerDiscriminator, PatchGANConfig,
                               Pix2PixUnetConfig, ResnetGenerator, UnetGenerator)
from ..models.transformer_net import TransformerNet, TransformerNetConfig
from . import PublicFormat, register_format
from .by_keys import State, keyed_format

_STAT_LEAVES = ("running_mean", "running_var", "num_batches_tracked")


def _conv_weight(state: State, key: str, kernel: int | None = None) -> torch.Size | None:
    t = state.get(key)
    if t is None or t.dim() != 4 or (kernel is not None and tuple(t.shape[2:]) != (kernel, kernel)):
        return None
    return t.shape


def _norm_kind(state: State, biased_conv: str, norm_weight: str) -> str:
    """Which get_norm_layer the original used: convs are biased only under InstanceNorm (which
    has no keys of its own); BatchNorm has a weight; with neither it is 'none'."""
    if biased_conv in state:
        return "instance"
    return "batch" if norm_weight in state else "none"


# --------------------------------------------------------------------------- readers

_BLOCK = re.compile(r"^model\.(\d+)\.conv_block\.")


def _read_resnet(state: State) -> CycleGANResnetConfig | None:
    stem = _conv_weight(state, "model.1.weight", 7)
    blocks = sorted({int(m.group(1)) for k in state if (m := _BLOCK.match(k))})
    if stem is None or not blocks or blocks != list(range(10, 10 + len(blocks))):
        return None
    n = len(blocks)
    # padding_type 'zero' has no pad layers, so the convs sit at .0 and .3 instead of .1 and
    # .5; 'replicate' has the same keys as 'reflect' (the original's default, assumed).
    zero_pad = _conv_weight(state, "model.10.conv_block.0.weight", 3) is not None
    # Dropout sits between the two convs and shifts the second one by one index
    # (conv_block.5 -> .6 with reflect padding): the classic "Error(s) in loading state_dict".
    second_with_dropout = 4 if zero_pad else 6
    use_dropout = _conv_weight(
        state, f"model.10.conv_block.{second_with_dropout}.weight", 3) is not None
    head = _conv_weight(state, f"model.{10 + n + 7}.weight", 7)
    if head is None:
        return None
    try:
        return CycleGANResnetConfig(
            input_nc=stem[1], output_nc=head[0], ngf=stem[0],
            norm=_norm_kind(state, "model.1.bias", "model.2.weight"), use_dropout=use_dropout,
            n_blocks=n, padding_type="zero" if zero_pad else "reflect")
    except ValueError:
        return None


def _read_unet(state: State) -> Pix2PixUnetConfig | None:
    outer_down = _conv_weight(state, "model.model.0.weight", 4)
    outer_up = _conv_weight(state, "model.model.3.weight", 4)
    if outer_down is None or outer_up is None:
        return None
    levels, prefix = 0, "model.model.1.model"
    while f"{prefix}.1.weight" in state:  # level k+1 nests at `.3.model` of level k
        levels += 1
        prefix += ".3.model"
    try:
        # use_dropout adds no key; files are taken to follow pix2pix's default (on).
        return Pix2PixUnetConfig(
            input_nc=outer_down[1], output_nc=outer_up[1], num_downs=levels + 1,
            ngf=outer_down[0],
            norm=_norm_kind(state, "model.model.0.bias", "model.model.1.model.2.weight"))
    except ValueError:
        return None


_D_KEY = re.compile(r"^model\.(\d+)\.(weight|bias|running_mean|running_var|num_batches_tracked)$")


def _read_patchgan(state: State) -> PatchGANConfig | None:
    if not all(_D_KEY.match(k) for k in state):
        return None
    first = _conv_weight(state, "model.0.weight", 4)
    convs = [k for k in state if k.endswith(".weight") and _conv_weight(state, k, 4) is not None]
    if first is None or len(convs) < 3:
        return None
    try:
        return PatchGANConfig(input_nc=first[1], ndf=first[0], n_layers=len(convs) - 2,
                              norm=_norm_kind(state, "model.2.bias", "model.3.weight"))
    except ValueError:
        return None


def _read_transformer(state: State) -> TransformerNetConfig | None:
    needed = ("conv1.conv2d.weight", "res1.conv1.conv2d.weight", "deconv3.conv2d.weight")
    return TransformerNetConfig() if all(k in state for k in needed) else None


# --------------------------------------------------------------------------- matching


def _drop_instance_stats(state: State, net: nn.Module) -> tuple[State, list[str]]:
    """Remove running-stat keys the file has for InstanceNorm layers that keep none."""
    expected = net.state_dict()
    legacy = {f"{name}.{leaf}" for name, m in net.named_modules()
              if isinstance(m, nn.InstanceNorm2d) for leaf in _STAT_LEAVES}
    dropped = [k for k in state if k in legacy and k not in expected]
    return {k: v for k, v in state.items() if k not in dropped}, dropped


def _style_format(name: str, arch: str, read: Callable[[State], Any],
                  make: Callable[[Any], nn.Module]) -> PublicFormat:
    return keyed_format(name, arch, read, make, clean=_drop_instance_stats,
                        dropped_note="legacy InstanceNorm running-stat keys (InstanceNorm here "
                                     "keeps no running statistics, as in the original code)")


for _fmt in (
    _style_format("CycleGAN ResNet generator", "cyclegan_resnet", _read_resnet, ResnetGenerator),
    _style_format("pix2pix U-Net generator", "pix2pix_unet", _read_unet, UnetGenerator),
    _style_format("CycleGAN/pix2pix PatchGAN discriminator", "patchgan", _read_patchgan,
                  NLayerDiscriminator),
    _style_format("fast-neural-style TransformerNet", "transformer_net", _read_transformer,
                  TransformerNet),
):
    register_format(_fmt)
