"""Public denoiser checkpoints: KAIR's DnCNN (dncnn_15/25/50, dncnn_gray_blind, dncnn3,
dncnn_color_blind) and DPIR's DRUNet (drunet_gray, drunet_color).

Like the style formats, these are bare state_dicts, so the key names and shapes are the only
evidence: each reader infers the constructor arguments (DnCNN: conv count, width, channels;
DRUNet: the four widths, ResBlocks per level, channels, whether convs are biased), builds that
network on the meta device and claims the file only if key set and every shape agree exactly.
File names play no part (users rename them), and dncnn_25 vs dncnn_50 cannot be told apart
from keys anyway: they differ only in the sigma they were trained for.
"""
from __future__ import annotations

import re

import torch

from ..models.denoisers import DnCNN, DnCNNConfig, DRUNetConfig, UNetRes
from . import register_format
from .by_keys import State, keyed_format



def _conv(state: State, key: str, kernel: int) -> torch.Size | None:
    t = state.get(key)
    if t is None or t.dim() != 4 or tuple(t.shape[2:]) != (kernel, kernel):
        return None
    return t.shape


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
    first, last = _conv(state, "model.0.weight", 3), _conv(state, f"model.{2 * nb - 2}.weight", 3)
    if sorted(indices) != list(range(0, 2 * nb, 2)) or first is None or last is None:
        return None
    try:
        return DnCNNConfig(in_nc=first[1], out_nc=last[0], nc=first[0], nb=nb, act_mode="R")
    except ValueError:
        return None


_RES_BLOCK = re.compile(r"^m_down1\.(\d+)\.res\.0\.weight$")


def _read_drunet(state: State) -> DRUNetConfig | None:
    head, tail = _conv(state, "m_head.weight", 3), _conv(state, "m_tail.weight", 3)
    nb = sum(1 for k in state if _RES_BLOCK.match(k))  # ResBlocks, then the stride-2 conv
    downs = [_conv(state, f"m_down{i}.{nb}.weight", 2) for i in (1, 2, 3)]
    if head is None or tail is None or nb < 1 or any(d is None for d in downs):
        return None
    try:
        return DRUNetConfig(in_nc=head[1], out_nc=tail[0],
                            nc=(head[0], downs[0][0], downs[1][0], downs[2][0]), nb=nb,
                            bias="m_head.bias" in state)
    except ValueError:
        return None


for _fmt in (
    keyed_format("KAIR DnCNN", "dncnn", _read_dncnn, DnCNN),
    keyed_format("DPIR DRUNet", "drunet", _read_drunet, UNetRes),
):
    register_format(_fmt)
