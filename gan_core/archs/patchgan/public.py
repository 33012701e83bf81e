"""Public CycleGAN / pix2pix PatchGAN discriminator files (`latest_net_D_A.pth`, ...): bare
state_dicts read by their keys."""
from __future__ import annotations

import re

from ...statedict import State
from ..layers.keyed import LEGACY_STATS_NOTE, conv_weight, drop_instance_stats, keyed_format
from ..layers.patchgan import NLayerDiscriminator, PatchGANConfig, norm_kind

_D_KEY = re.compile(r"^model\.(\d+)\.(weight|bias|running_mean|running_var|num_batches_tracked)$")


def _read_patchgan(state: State) -> PatchGANConfig | None:
    if not all(_D_KEY.match(k) for k in state):
        return None
    first = conv_weight(state, "model.0.weight", 4)
    convs = [k for k in state if k.endswith(".weight") and conv_weight(state, k, 4) is not None]
    if first is None or len(convs) < 3:
        return None
    try:
        return PatchGANConfig(input_nc=first[1], ndf=first[0], n_layers=len(convs) - 2,
                              norm=norm_kind(state, "model.2.bias", "model.3.weight"))
    except ValueError:
        return None


FORMAT = keyed_format("CycleGAN/pix2pix PatchGAN discriminator", "patchgan", _read_patchgan,
                      NLayerDiscriminator, clean=drop_instance_stats,
                      dropped_note=LEGACY_STATS_NOTE)
