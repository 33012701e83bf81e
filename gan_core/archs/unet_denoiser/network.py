"""`unet_denoiser`: our own conditional-GAN denoiser, trained from clean images
(gan_core.training.denoise_trainer).

The generator is a small U-Net: a 3x3 head, `depth` levels down (two 3x3 conv + ReLU, then a
2x2 stride-2 conv that doubles the width), a bottleneck, and the mirror image up (a 2x2
transposed conv, concatenation with the skip, two 3x3 conv + ReLU), then a 3x3 tail. It
predicts a residual that is added to the noisy input (out = x + net(x)); the tail starts at
zero, so an untrained model returns its input and training only ever has to learn the
correction. No normalisation layers: each output pixel depends on its neighbourhood alone, so
tiled denoising agrees with whole-image denoising away from tile borders.

With `noise_level_input` the input has one extra channel, sigma/255 everywhere (DRUNet's
convention, which gan_core.denoise feeds); the trainer fills it with the sigma each crop was
degraded with.

The discriminator is the pix2pix PatchGAN. Conditional (default): it sees the noisy image and a
candidate clean one concatenated (2*C channels) and scores whether the pair is real; otherwise
it sees the candidate alone (C channels).

The generator carries the attributes gan_core.denoise reads (`image_channels`,
`takes_noise_level`, `size_multiple` = 2**depth, `min_size`), so GANModel.denoise pads, converts
channels and tiles for it exactly as for DnCNN and DRUNet.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..layers.patchgan import NLayerDiscriminator, PatchGANConfig, init_normal


@dataclass(frozen=True)
class UNetDenoiserConfig:
    channels: int = 3  # image channels, 1 (gray) or 3 (RGB)
    width: int = 32  # filters at full resolution; doubled at each level down
    depth: int = 2  # number of 2x downsamplings; H and W are padded to multiples of 2**depth
    noise_level_input: bool = False  # one extra input channel holding sigma/255
    max_width: int = 256  # cap on the widths of the deeper levels
    conditional_d: bool = True  # the PatchGAN sees (noisy, clean) pairs
    ndf: int = 32  # discriminator base width
    d_layers: int = 2  # PatchGAN stride-2 layers: 2 -> 34 px patches, 3 -> 70 px
    d_norm: str = "instance"

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError(f"unet_denoiser channels must be 1 or 3, got {self.channels}")
        if self.width < 1 or self.max_width < 1:
            raise ValueError(f"unet_denoiser width must be positive, got {self.width}")
        if not 0 <= self.depth <= 6:
            raise ValueError(f"unet_denoiser depth must be 0..6, got {self.depth}")
        if self.ndf < 1 or self.d_layers < 1:
            raise ValueError("unet_denoiser ndf and d_layers must be positive")
        PatchGANConfig(input_nc=1, norm=self.d_norm)  # validates the norm name


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, 1, 1), nn.ReLU(inplace=True))


class UNetDenoiser(nn.Module):
    """[B, C(+1), H, W] noisy image in [0, 1] (plus the sigma/255 map) -> clean estimate
    [B, C, H, W], unclipped (callers clip). H and W must be multiples of 2**depth."""

    def __init__(self, cfg: UNetDenoiserConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or UNetDenoiserConfig()
        widths = [min(cfg.width * 2 ** i, cfg.max_width) for i in range(cfg.depth + 1)]
        self.head = nn.Sequential(
            nn.Conv2d(cfg.channels + int(cfg.noise_level_input), widths[0], 3, 1, 1),
            nn.ReLU(inplace=True))
        self.enc = nn.ModuleList(_double_conv(widths[i], widths[i]) for i in range(cfg.depth))
        self.down = nn.ModuleList(nn.Conv2d(widths[i], widths[i + 1], 2, 2)
                                  for i in range(cfg.depth))
        self.body = _double_conv(widths[-1], widths[-1])
        self.up = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, 2)
                                for i in range(cfg.depth))
        self.dec = nn.ModuleList(_double_conv(2 * widths[i], widths[i]) for i in range(cfg.depth))
        self.tail = nn.Conv2d(widths[0], cfg.channels, 3, 1, 1)
        with torch.no_grad():  # start near the identity (out = x): a small residual
            self.tail.weight.mul_(0.1)
            self.tail.bias.zero_()

    @property
    def image_channels(self) -> int:
        return self.cfg.channels

    @property
    def takes_noise_level(self) -> bool:
        return self.cfg.noise_level_input

    @property
    def size_multiple(self) -> int:
        return 2 ** self.cfg.depth

    @property
    def min_size(self) -> int:
        return 2 ** self.cfg.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        image = x[:, :self.cfg.channels]
        h = self.head(x)
        skips = []
        for enc, down in zip(self.enc, self.down):
            h = enc(h)
            skips.append(h)
            h = down(h)
        h = self.body(h)
        for i in reversed(range(self.cfg.depth)):
            h = self.dec[i](torch.cat([self.up[i](h), skips[i]], 1))
        return image + self.tail(h)


def build_unet_denoiser(cfg: UNetDenoiserConfig) -> dict[str, nn.Module]:
    """The U-Net generator (PyTorch's default init, zero tail) and a PatchGAN discriminator
    (pix2pix's normal(0, 0.02) init) over 2*C channels (conditional) or C."""
    d_in = cfg.channels * (2 if cfg.conditional_d else 1)
    d = NLayerDiscriminator(PatchGANConfig(input_nc=d_in, ndf=cfg.ndf, n_layers=cfg.d_layers,
                                           norm=cfg.d_norm))
    init_normal(d)
    return {"G": UNetDenoiser(cfg), "D": d}
