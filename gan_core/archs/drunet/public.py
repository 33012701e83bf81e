"""Public DPIR DRUNet files (drunet_gray, drunet_color): bare state_dicts read by their keys
(the four widths, ResBlocks per level, channels, whether convs are biased)."""
from __future__ import annotations

import re

from ...statedict import State
from ..layers.keyed import conv_weight, keyed_format
from .network import DRUNetConfig, UNetRes

_RES_BLOCK = re.compile(r"^m_down1\.(\d+)\.res\.0\.weight$")


def _read_drunet(state: State) -> DRUNetConfig | None:
    head, tail = conv_weight(state, "m_head.weight", 3), conv_weight(state, "m_tail.weight", 3)
    nb = sum(1 for k in state if _RES_BLOCK.match(k))  # ResBlocks, then the stride-2 conv
    downs = [conv_weight(state, f"m_down{i}.{nb}.weight", 2) for i in (1, 2, 3)]
    if head is None or tail is None or nb < 1 or any(d is None for d in downs):
        return None
    try:
        return DRUNetConfig(in_nc=head[1], out_nc=tail[0],
                            nc=(head[0], downs[0][0], downs[1][0], downs[2][0]), nb=nb,
                            bias="m_head.bias" in state)
    except ValueError:
        return None


FORMAT = keyed_format("DPIR DRUNet", "drunet", _read_drunet, UNetRes)
