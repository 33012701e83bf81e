"""Public KAIR DnCNN files (dncnn_15/25/50, dncnn_gray_blind, dncnn3, dncnn_color_blind):
bare state_dicts read by their keys (conv count, width and channels from the shapes). File
names play no part (users rename them), and dncnn_25 vs dncnn_50 cannot be told apart from keys
anyway: they differ only in the sigma they were trained for."""
from __future__ import annotations

import re

from ...statedict import State
from ..layers.keyed import conv_weight, keyed_format
from .network import DnCNN, DnCNNConfig

_DNCNN_KEY = re.compile(r"^model\.(\d+)\.(weight|bias)$")


def _read_dncnn(state: State) -> DnCNNConfig | None:
    """Convs at model.0, 2, 4, ... (merged-BN layout, ReLUs at the odd indices hold no keys)."""
    indices = set()
    for k in state:
        m = _DNCNN_KEY.match(k)
        if m is None:
            return None
        indices.add(int(m.group(1)))
    nb = len(indices)
    first, last = conv_weight(state, "model.0.weight", 3), conv_weight(state, f"model.{2 * nb - 2}.weight", 3)
    if sorted(indices) != list(range(0, 2 * nb, 2)) or first is None or last is None:
        return None
    try:
        return DnCNNConfig(in_nc=first[1], out_nc=last[0], nc=first[0], nb=nb, act_mode="R")
    except ValueError:
        return None


FORMAT = keyed_format("KAIR DnCNN", "dncnn", _read_dncnn, DnCNN)
