"""Public fast-neural-style files (pytorch/examples: candy, mosaic, udnie, rain_princess):
bare TransformerNet state_dicts; old ones (PyTorch <= 0.3) carry InstanceNorm running
statistics that are dropped, as the original's neural_style.py does."""
from __future__ import annotations

from ...statedict import State
from ..layers.keyed import LEGACY_STATS_NOTE, drop_instance_stats, keyed_format
from .network import TransformerNet, TransformerNetConfig


def _read_transformer(state: State) -> TransformerNetConfig | None:
    needed = ("conv1.conv2d.weight", "res1.conv1.conv2d.weight", "deconv3.conv2d.weight")
    return TransformerNetConfig() if all(k in state for k in needed) else None


FORMAT = keyed_format("fast-neural-style TransformerNet", "transformer_net", _read_transformer,
                      TransformerNet, clean=drop_instance_stats,
                      dropped_note=LEGACY_STATS_NOTE)
