"""fast-neural-style TransformerNet (Johnson et al. 2016; pytorch/examples
fast_neural_style/neural_style/transformer_net.py).

Attribute names equal the original's, so candy.pth, mosaic.pth, udnie.pth, rain_princess.pth
and files saved by the example's training script load with their own keys
(`conv1.conv2d.weight`, `res3.in2.bias`, ...). The network takes RGB in 0..255 (no mean
subtraction) and returns unbounded values that the original clamps to 0..255 when saving.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn



@dataclass(frozen=True)
class TransformerNetConfig:
    """The original TransformerNet() takes no constructor arguments; nothing to configure."""


class ConvLayer(nn.Module):
    """Reflection pad by k//2, then conv: keeps borders free of the dark zero-padding rim."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int):
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_ch, out_ch, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2d(self.reflection_pad(x))


class ResidualBlock(nn.Module):
    """x + IN(conv(ReLU(IN(conv(x))))), with no ReLU after the add."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3, 1)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, 3, 1)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.in1(self.conv1(x)))
        return self.in2(self.conv2(out)) + x


class UpsampleConvLayer(nn.Module):
    """Nearest-neighbour upsampling then a reflection-padded conv: the original's fix for the
    checkerboard artefacts a ConvTranspose leaves."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int,
                 upsample: int | None = None):
        super().__init__()
        self.upsample = upsample
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_ch, out_ch, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, mode="nearest", scale_factor=self.upsample)
        return self.conv2d(self.reflection_pad(x))


class TransformerNet(nn.Module):
    """RGB [B,3,H,W] in 0..255 -> stylised RGB, unbounded (clamp to 0..255 to view)."""

    io_range = "byte"  # what gan_core.stylize feeds it: 0..255
    size_multiple = 4
    min_size = 8  # the 1/4 scale map is reflect-padded by 1, which needs >= 2 px
    in_channels = 3

    def __init__(self, cfg: TransformerNetConfig | None = None):
        super().__init__()
        self.cfg = cfg or TransformerNetConfig()
        self.conv1 = ConvLayer(3, 32, 9, 1)
        self.in1 = nn.InstanceNorm2d(32, affine=True)
        self.conv2 = ConvLayer(32, 64, 3, 2)
        self.in2 = nn.InstanceNorm2d(64, affine=True)
        self.conv3 = ConvLayer(64, 128, 3, 2)
        self.in3 = nn.InstanceNorm2d(128, affine=True)
        self.res1 = ResidualBlock(128)
        self.res2 = ResidualBlock(128)
        self.res3 = ResidualBlock(128)
        self.res4 = ResidualBlock(128)
        self.res5 = ResidualBlock(128)
        self.deconv1 = UpsampleConvLayer(128, 64, 3, 1, upsample=2)
        self.in4 = nn.InstanceNorm2d(64, affine=True)
        self.deconv2 = UpsampleConvLayer(64, 32, 3, 1, upsample=2)
        self.in5 = nn.InstanceNorm2d(32, affine=True)
        self.deconv3 = ConvLayer(32, 3, 9, 1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.in1(self.conv1(x)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        y = self.res5(self.res4(self.res3(self.res2(self.res1(y)))))
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)


def build_transformer_net(cfg: TransformerNetConfig) -> dict[str, nn.Module]:
    """Generator only: it is trained against a fixed VGG loss, not a discriminator."""
    return {"G": TransformerNet(cfg)}
