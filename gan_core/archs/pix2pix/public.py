"""Public pix2pix U-Net generator files (junyanz/pytorch-CycleGAN-and-pix2pix: unet_128 /
unet_256, facades_label2photo, edges2shoes, ...): bare state_dicts read by their keys (the
depth from how the levels nest, the norm from which keys exist, widths from shapes)."""
from __future__ import annotations

from ...statedict import State
from ..layers.keyed import LEGACY_STATS_NOTE, conv_weight, drop_instance_stats, keyed_format
from ..layers.patchgan import norm_kind
from .network import Pix2PixUnetConfig, UnetGenerator


def _read_unet(state: State) -> Pix2PixUnetConfig | None:
    outer_down = conv_weight(state, "model.model.0.weight", 4)
    outer_up = conv_weight(state, "model.model.3.weight", 4)
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
            norm=norm_kind(state, "model.model.0.bias", "model.model.1.model.2.weight"))
    except ValueError:
        return None


FORMAT = keyed_format("pix2pix U-Net generator", "pix2pix_unet", _read_unet, UnetGenerator,
                      clean=drop_instance_stats,
                      dropped_note=LEGACY_STATS_NOTE)
