"""Public CycleGAN ResNet generator files (junyanz/pytorch-CycleGAN-and-pix2pix:
`latest_net_G_A.pth`, style_monet, horse2zebra, ...): bare state_dicts read by their keys.

The block count comes from the residual-block keys, dropout from the index shift it causes
(conv_block.5 -> .6), the norm from which keys exist and the widths from the shapes; the
network that config builds must then have exactly the file's keys and shapes.
"""
from __future__ import annotations

import re

from ...statedict import State
from ..layers.keyed import LEGACY_STATS_NOTE, conv_weight, drop_instance_stats, keyed_format
from ..layers.patchgan import norm_kind
from .network import CycleGANResnetConfig, ResnetGenerator

_BLOCK = re.compile(r"^model\.(\d+)\.conv_block\.")


def _read_resnet(state: State) -> CycleGANResnetConfig | None:
    stem = conv_weight(state, "model.1.weight", 7)
    blocks = sorted({int(m.group(1)) for k in state if (m := _BLOCK.match(k))})
    if stem is None or not blocks or blocks != list(range(10, 10 + len(blocks))):
        return None
    n = len(blocks)
    # padding_type 'zero' has no pad layers, so the convs sit at .0 and .3 instead of .1 and
    # .5; 'replicate' has the same keys as 'reflect' (the original's default, assumed).
    zero_pad = conv_weight(state, "model.10.conv_block.0.weight", 3) is not None
    # Dropout sits between the two convs and shifts the second one by one index
    # (conv_block.5 -> .6 with reflect padding): the classic "Error(s) in loading state_dict".
    second_with_dropout = 4 if zero_pad else 6
    use_dropout = conv_weight(
        state, f"model.10.conv_block.{second_with_dropout}.weight", 3) is not None
    head = conv_weight(state, f"model.{10 + n + 7}.weight", 7)
    if head is None:
        return None
    try:
        return CycleGANResnetConfig(
            input_nc=stem[1], output_nc=head[0], ngf=stem[0],
            norm=norm_kind(state, "model.1.bias", "model.2.weight"), use_dropout=use_dropout,
            n_blocks=n, padding_type="zero" if zero_pad else "reflect")
    except ValueError:
        return None


FORMAT = keyed_format("CycleGAN ResNet generator", "cyclegan_resnet", _read_resnet,
                      ResnetGenerator, clean=drop_instance_stats,
                      dropped_note=LEGACY_STATS_NOTE)
