"""DCGAN (Radford et al. 2015) generalised to any power-of-two size from 32 to 256 px.

At 64 px with default widths the module names and shapes equal pytorch/examples' dcgan
(`main.N.weight`), so its saved generators load here unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn



@dataclass(frozen=True)
class DCGANConfig:
    image_size: int = 64
    channels: int = 3
    latent_dim: int = 100
    ngf: int = 64
    ndf: int = 64
    max_mult: int = 8  # widest layer is ngf*max_mult channels, whatever the size

    def __post_init__(self) -> None:
        s = self.image_size
        if s < 32 or s > 256 or s & (s - 1):
            raise ValueError(f"dcgan image_size must be a power of two from 32 to 256, got {s}")
        if self.channels not in (1, 3):
            raise ValueError(f"dcgan channels must be 1 or 3, got {self.channels}")
        if min(self.latent_dim, self.ngf, self.ndf, self.max_mult) < 1:
            raise ValueError("dcgan latent_dim, ngf, ndf and max_mult must be positive")

    @property
    def n_up(self) -> int:
        """Stride-2 stages between the 4x4 base and the output."""
        return self.image_size.bit_length() - 3


def _mults(cfg: DCGANConfig) -> list[int]:
    """Channel multipliers from the 4x4 base outward, e.g. [8, 4, 2, 1] at 64 px."""
    return [min(2 ** i, cfg.max_mult) for i in reversed(range(cfg.n_up))]


class DCGANGenerator(nn.Module):
    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        self.cfg = cfg
        mults = _mults(cfg)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(cfg.latent_dim, cfg.ngf * mults[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(cfg.ngf * mults[0]),
            nn.ReLU(True),
        ]
        for a, b in zip(mults, mults[1:]):
            layers += [
                nn.ConvTranspose2d(cfg.ngf * a, cfg.ngf * b, 4, 2, 1, bias=False),
                nn.BatchNorm2d(cfg.ngf * b),
                nn.ReLU(True),
            ]
        layers += [nn.ConvTranspose2d(cfg.ngf * mults[-1], cfg.channels, 4, 2, 1, bias=False),
                   nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.view(z.shape[0], -1, 1, 1))


class DCGANDiscriminator(nn.Module):
    """Returns raw logits; the loss decides how to squash them."""

    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        mults = list(reversed(_mults(cfg)))  # [1, 2, 4, 8] at 64 px
        layers: list[nn.Module] = [
            nn.Conv2d(cfg.channels, cfg.ndf * mults[0], 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        for a, b in zip(mults, mults[1:]):
            layers += [
                nn.Conv2d(cfg.ndf * a, cfg.ndf * b, 4, 2, 1, bias=False),
                nn.BatchNorm2d(cfg.ndf * b),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        layers.append(nn.Conv2d(cfg.ndf * mults[-1], 1, 4, 1, 0, bias=False))
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).view(-1)


def _init_weights(module: nn.Module) -> None:
    """The DCGAN paper's init: N(0, 0.02) convs, N(1, 0.02) norm scales."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def build_dcgan(cfg: DCGANConfig) -> dict[str, nn.Module]:
    g, d = DCGANGenerator(cfg), DCGANDiscriminator(cfg)
    _init_weights(g)
    _init_weights(d)
    return {"G": g, "D": d}
