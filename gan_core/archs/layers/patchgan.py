"""Layers shared by the pytorch-CycleGAN-and-pix2pix families (CycleGAN, pix2pix, the
PatchGAN discriminator, GAN Atelier's U-Net denoiser): norm layers, the original's init, and
the N-layer PatchGAN, with the original's module trees so that public keys line up.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

NORMS = ("instance", "batch", "none")
PADDINGS = ("reflect", "replicate", "zero")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """The original's get_norm_layer: InstanceNorm without parameters or running stats, BatchNorm
    with both; 'none' is an Identity that still occupies its Sequential index."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    return nn.Identity()


def conv_bias(kind: str) -> bool:
    """The original gives convs a bias only under InstanceNorm (BatchNorm has its own shift;
    with no norm the original's type check is also False, so those convs are unbiased too)."""
    return kind == "instance"


def norm_kind(state: dict[str, torch.Tensor], biased_conv: str, norm_weight: str) -> str:
    """Which norm a public file's network used, from its keys: convs are biased only under
    InstanceNorm (which has no keys of its own); BatchNorm has a weight; with neither, 'none'."""
    if biased_conv in state:
        return "instance"
    return "batch" if norm_weight in state else "none"


def check_norm(name: str, norm: str) -> None:
    if norm not in NORMS:
        raise ValueError(f"{name} norm must be one of {NORMS}, got {norm!r}")


def init_normal(module: nn.Module, gain: float = 0.02) -> None:
    """The original's init_weights('normal', 0.02), used for training from scratch."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)


# --------------------------------------------------------------------------- PatchGAN


@dataclass(frozen=True)
class PatchGANConfig:
    input_nc: int = 3  # 3 for CycleGAN, 6 for pix2pix (cat of input and output)
    ndf: int = 64
    n_layers: int = 3  # 3 gives the 70x70 receptive field
    norm: str = "instance"

    def __post_init__(self) -> None:
        check_norm("patchgan", self.norm)
        if min(self.input_nc, self.ndf, self.n_layers) < 1:
            raise ValueError("patchgan input_nc, ndf and n_layers must be positive")


class NLayerDiscriminator(nn.Module):
    """PatchGAN: a map of real/fake logits, one per overlapping patch (30x30 for 256 px)."""

    def __init__(self, cfg: PatchGANConfig):
        super().__init__()
        self.cfg = cfg
        bias = conv_bias(cfg.norm)
        ndf = cfg.ndf
        seq: list[nn.Module] = [nn.Conv2d(cfg.input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, cfg.n_layers):
            prev, mult = mult, min(2 ** n, 8)
            seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=bias),
                    norm_layer(cfg.norm, ndf * mult), nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2 ** cfg.n_layers, 8)
        seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=bias),
                norm_layer(cfg.norm, ndf * mult), nn.LeakyReLU(0.2, True),
                nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
        self.model = nn.Sequential(*seq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def build_patchgan(cfg: PatchGANConfig) -> dict[str, nn.Module]:
    """A bare discriminator checkpoint is a model of its own; it sits in role "G" (the role
    every GANModel's main network has) so that save/load round-trips it like any model."""
    d = NLayerDiscriminator(cfg)
    init_normal(d)
    return {"G": d}
