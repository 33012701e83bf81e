"""KAIR's DnCNN (cszn/KAIR models/network_dncnn.py) with the public files' layout.

The module tree follows the original line for line because the public files (dncnn_25.pth,
dncnn_color_blind.pth, ...) are bare state_dicts whose key names are positions in it: KAIR's
`B.sequential` flattens nested Sequentials into one index space (`model.0`, `model.2`, ...,
ReLUs at the odd indices). Images in [0, 1]; 3x3 convs with zero padding; the output is not
clipped (callers clip). DnCNN predicts the noise and returns x - net(x). Public files have
BatchNorm merged into the convs (act_mode 'R': conv + ReLU, every conv biased); the training
layout 'BR' is not built.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

ACT_MODES = ("R",)  # the merged-BN layout of the public files; see the module docstring


# --------------------------------------------------------------------------- DnCNN


@dataclass(frozen=True)
class DnCNNConfig:
    """KAIR's DnCNN constructor arguments. Public files: nb 17 (dncnn_15/25/50, gray, one
    sigma each), nb 20 (dncnn_gray_blind, dncnn3, dncnn_color_blind); nc 64 for all."""

    in_nc: int = 1
    out_nc: int = 1
    nc: int = 64
    nb: int = 17  # total conv count: head + (nb - 2) body + tail
    act_mode: str = "R"

    def __post_init__(self) -> None:
        if self.act_mode not in ACT_MODES:
            raise ValueError(f"dncnn act_mode must be one of {ACT_MODES} (BatchNorm merged, as "
                             f"in the public files), got {self.act_mode!r}")
        if self.in_nc not in (1, 3) or self.out_nc != self.in_nc:
            # x - net(x) needs as many output channels as input ones
            raise ValueError(f"dncnn in_nc and out_nc must both be 1 or both be 3, "
                             f"got {self.in_nc} and {self.out_nc}")
        if self.nc < 1 or self.nb < 2:
            raise ValueError(f"dncnn needs nc >= 1 and nb >= 2, got nc={self.nc}, nb={self.nb}")


class DnCNN(nn.Module):
    """[B, C, H, W] noisy image in [0, 1] -> x - predicted noise (C = in_nc, any H, W)."""

    size_multiple = 1
    min_size = 1
    takes_noise_level = False  # blind (or trained for one sigma): no noise-level input

    def __init__(self, cfg: DnCNNConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or DnCNNConfig()
        layers: list[nn.Module] = [nn.Conv2d(cfg.in_nc, cfg.nc, 3, 1, 1, bias=True),
                                   nn.ReLU(inplace=True)]
        for _ in range(cfg.nb - 2):
            layers += [nn.Conv2d(cfg.nc, cfg.nc, 3, 1, 1, bias=True), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(cfg.nc, cfg.out_nc, 3, 1, 1, bias=True))
        self.model = nn.Sequential(*layers)

    @property
    def image_channels(self) -> int:
        return self.cfg.in_nc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.model(x)


def build_dncnn(cfg: DnCNNConfig) -> dict[str, nn.Module]:
    """Generator only (PyTorch's default conv init); a discriminator, if a trainer wants one,
    is the trainer's choice, not part of the public architecture."""
    return {"G": DnCNN(cfg)}
