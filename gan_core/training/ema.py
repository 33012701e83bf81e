"""EMA generator on top of torch.optim.swa_utils.AveragedModel.

The decay warms up as min(decay, (1 + n) / (10 + n)) over the n updates so far, so that a
short run (a few hundred steps on a CPU) samples from a trained average rather than from
the random initial weights a constant 0.999 would still remember. Buffers (BatchNorm running
statistics) are copied from the live generator, not averaged.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


def make_ema(generator: nn.Module, decay: float) -> AveragedModel:
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1), got {decay}")

    @torch.no_grad()
    def update(ema_params: list[torch.Tensor], live_params: list[torch.Tensor],
               n_averaged: torch.Tensor) -> None:
        n = float(n_averaged)
        beta = min(decay, (1.0 + n) / (10.0 + n))
        torch._foreach_lerp_(ema_params, live_params, 1.0 - beta)

    ema = AveragedModel(generator, multi_avg_fn=update, use_buffers=False)
    ema.module.eval().requires_grad_(False)
    return ema
