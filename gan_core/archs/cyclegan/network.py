"""CycleGAN / pix2pix networks (junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py).

Module trees, layer order and use_bias rules follow the original line for line, because the
public checkpoints (style_monet, horse2zebra, facades_label2photo, ...) are bare state_dicts
whose key names are positions in those trees (`model.10.conv_block.5.weight`,
`model.model.1.model.3...`). Any deviation in layer order would shift the keys and break loading.

Conventions the public files expect: input and output in [-1, 1] (tanh head), reflection
padding in the 7x7 stem/head and inside residual blocks, zero padding in the stride-2 convs,
the PatchGAN and the U-Net.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


from ..layers.patchgan import (PADDINGS, NLayerDiscriminator, PatchGANConfig, check_norm,
                               conv_bias, init_normal, norm_layer)


# --------------------------------------------------------------------------- ResNet generator


@dataclass(frozen=True)
class CycleGANResnetConfig:
    input_nc: int = 3
    output_nc: int = 3
    ngf: int = 64
    norm: str = "instance"
    use_dropout: bool = False
    n_blocks: int = 9  # 9 for 256 px training (resnet_9blocks), 6 for 128 px (resnet_6blocks)
    padding_type: str = "reflect"  # inside the residual blocks
    ndf: int = 64  # the PatchGAN the builder pairs with G (for training)
    n_layers_d: int = 3

    def __post_init__(self) -> None:
        check_norm("cyclegan_resnet", self.norm)
        if self.padding_type not in PADDINGS:
            raise ValueError(f"cyclegan_resnet padding_type must be one of {PADDINGS}, "
                             f"got {self.padding_type!r}")
        if min(self.input_nc, self.output_nc, self.ngf, self.ndf, self.n_layers_d) < 1:
            raise ValueError("cyclegan_resnet channel counts and n_layers_d must be positive")
        if self.n_blocks < 0:
            raise ValueError(f"cyclegan_resnet n_blocks must be >= 0, got {self.n_blocks}")


class ResnetBlock(nn.Module):
    """x + conv_block(x), no activation after the add. Keys sit at conv_block.1 and .5 (.6
    with dropout, which inserts Dropout at index 4)."""

    def __init__(self, dim: int, padding_type: str, norm: str, use_dropout: bool, bias: bool):
        super().__init__()
        layers: list[nn.Module] = []
        for second in (False, True):
            p = 0
            if padding_type == "reflect":
                layers.append(nn.ReflectionPad2d(1))
            elif padding_type == "replicate":
                layers.append(nn.ReplicationPad2d(1))
            else:
                p = 1
            layers += [nn.Conv2d(dim, dim, 3, padding=p, bias=bias), norm_layer(norm, dim)]
            if not second:
                layers.append(nn.ReLU(True))
                if use_dropout:
                    layers.append(nn.Dropout(0.5))
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """CycleGAN's generator: [-1,1] RGB in, tanh out; H and W must be multiples of 4."""

    io_range = "signed"  # what gan_core.stylize feeds it: [-1, 1]
    size_multiple = 4
    min_size = 8  # the residual blocks reflect-pad the 1/4 scale map by 1, which needs >= 2 px

    def __init__(self, cfg: CycleGANResnetConfig):
        super().__init__()
        self.cfg = cfg
        bias = conv_bias(cfg.norm)
        ngf = cfg.ngf
        model: list[nn.Module] = [nn.ReflectionPad2d(3),
                                  nn.Conv2d(cfg.input_nc, ngf, 7, padding=0, bias=bias),
                                  norm_layer(cfg.norm, ngf), nn.ReLU(True)]
        for i in range(2):  # stride-2 downsampling with zero padding
            mult = 2 ** i
            model += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=bias),
                      norm_layer(cfg.norm, ngf * mult * 2), nn.ReLU(True)]
        for _ in range(cfg.n_blocks):
            model.append(ResnetBlock(ngf * 4, cfg.padding_type, cfg.norm, cfg.use_dropout, bias))
        for i in range(2):
            mult = 2 ** (2 - i)
            model += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1,
                                         output_padding=1, bias=bias),
                      norm_layer(cfg.norm, ngf * mult // 2), nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, cfg.output_nc, 7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*model)

    @property
    def in_channels(self) -> int:
        return self.cfg.input_nc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def build_cyclegan_resnet(cfg: CycleGANResnetConfig) -> dict[str, nn.Module]:
    g = ResnetGenerator(cfg)
    d = NLayerDiscriminator(PatchGANConfig(cfg.output_nc, cfg.ndf, cfg.n_layers_d, cfg.norm))
    init_normal(g)
    init_normal(d)
    return {"G": g, "D": d}
