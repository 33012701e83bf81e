"""The textbook fully connected GAN (Goodfellow et al. 2014 as usually taught) for small
grayscale images: a fast baseline whose cost is dominated by per-op overhead, not FLOPs."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn



@dataclass(frozen=True)
class MLPConfig:
    image_size: int = 28
    channels: int = 1
    latent_dim: int = 100
    g_hidden: tuple[int, ...] = (256, 512, 1024)
    d_hidden: tuple[int, ...] = (512, 256)

    def __post_init__(self) -> None:
        if self.image_size < 4:
            raise ValueError(f"mlp image_size must be at least 4, got {self.image_size}")
        if self.channels not in (1, 3):
            raise ValueError(f"mlp channels must be 1 or 3, got {self.channels}")


class MLPGenerator(nn.Module):
    """z [B, latent] -> image [B, C, S, S] in [-1, 1]."""

    def __init__(self, cfg: MLPConfig):
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        width = cfg.latent_dim
        for hidden in cfg.g_hidden:
            layers += [nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)]
            width = hidden
        layers += [nn.Linear(width, cfg.channels * cfg.image_size**2), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        c, s = self.cfg.channels, self.cfg.image_size
        return self.main(z.flatten(1)).view(-1, c, s, s)


class MLPDiscriminator(nn.Module):
    """image [B, C, S, S] -> one logit per image."""

    def __init__(self, cfg: MLPConfig):
        super().__init__()
        layers: list[nn.Module] = []
        width = cfg.channels * cfg.image_size**2
        for hidden in cfg.d_hidden:
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(0.2, inplace=True)]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x.flatten(1)).view(-1)


def build_mlp(cfg: MLPConfig) -> dict[str, nn.Module]:
    return {"G": MLPGenerator(cfg), "D": MLPDiscriminator(cfg)}
