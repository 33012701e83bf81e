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

import contextlib
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn


from ..layers.patchgan import (NLayerDiscriminator, PatchGANConfig, check_norm, conv_bias,
                               init_normal, norm_layer)


# --------------------------------------------------------------------------- U-Net generator

TEST_MODES = ("train", "eval")


@dataclass(frozen=True)
class Pix2PixUnetConfig:
    input_nc: int = 3
    output_nc: int = 3
    num_downs: int = 8  # 8 = unet_256, 7 = unet_128; H, W must be multiples of 2**num_downs
    ngf: int = 64
    norm: str = "batch"
    use_dropout: bool = True  # pix2pix default; adds no key, so files cannot tell
    # How the generator runs when not training. "train" is what the original test.py does by
    # default (and the paper describes): BatchNorm with the test image's own statistics and
    # dropout on as the noise source. "eval" uses the running statistics and no dropout
    # (test.py --eval): deterministic.
    test_mode: str = "train"
    ndf: int = 64  # the PatchGAN the builder pairs with G (input_nc + output_nc channels)
    n_layers_d: int = 3

    def __post_init__(self) -> None:
        check_norm("pix2pix_unet", self.norm)
        if self.num_downs < 5:
            raise ValueError(f"pix2pix_unet num_downs must be >= 5, got {self.num_downs}")
        if self.test_mode not in TEST_MODES:
            raise ValueError(f"pix2pix_unet test_mode must be one of {TEST_MODES}, "
                             f"got {self.test_mode!r}")
        if min(self.input_nc, self.output_nc, self.ngf, self.ndf, self.n_layers_d) < 1:
            raise ValueError("pix2pix_unet channel counts and n_layers_d must be positive")


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: down, the inner levels, up, then concatenate [skip, up] (skip first).

    The skip carries LeakyReLU(x), not x: in the original the in-place LeakyReLU at .0 rewrites
    x before `torch.cat([x, self.model(x)], 1)` reads it. forward() makes that explicit.
    """

    def __init__(self, outer_nc: int, inner_nc: int, input_nc: int | None = None,
                 submodule: nn.Module | None = None, outermost: bool = False,
                 innermost: bool = False, norm: str = "batch", use_dropout: bool = False):
        super().__init__()
        self.outermost = outermost
        bias = conv_bias(norm)
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=bias)
        downrelu = nn.LeakyReLU(0.2, True)
        uprelu = nn.ReLU(True)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, 4, stride=2, padding=1, bias=bias)
            model = [downrelu, downconv, uprelu, upconv, norm_layer(norm, outer_nc)]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1, bias=bias)
            model = [downrelu, downconv, norm_layer(norm, inner_nc), submodule, uprelu, upconv,
                     norm_layer(norm, outer_nc)]
            if use_dropout:
                model.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        skip = self.model[0](x)  # LeakyReLU; the original's skip is this (in-place) result
        out = skip
        for layer in list(self.model)[1:]:
            out = layer(out)
        return torch.cat([skip, out], 1)


class UnetGenerator(nn.Module):
    """pix2pix's generator: [-1,1] in, tanh out, H and W multiples of 2**num_downs.

    `test_mode` ("train" | "eval") picks how it runs outside training; see Pix2PixUnetConfig.
    It is a plain attribute, so a loaded model can switch without reloading.
    """

    io_range = "signed"

    def __init__(self, cfg: Pix2PixUnetConfig):
        super().__init__()
        self.cfg = cfg
        self.test_mode = cfg.test_mode
        ngf, norm = cfg.ngf, cfg.norm
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, norm=norm, innermost=True)
        for _ in range(cfg.num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm=norm,
                                            use_dropout=cfg.use_dropout)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(cfg.output_nc, ngf, input_nc=cfg.input_nc,
                                             submodule=block, outermost=True, norm=norm)

    @property
    def size_multiple(self) -> int:
        return 2 ** self.cfg.num_downs

    @property
    def min_size(self) -> int:
        return self.size_multiple

    @property
    def in_channels(self) -> int:
        return self.cfg.input_nc

    @contextlib.contextmanager
    def _test_batch_statistics(self) -> Iterator[None]:
        """BatchNorm on the batch's own statistics (running stats neither used nor updated)
        and dropout on, restored afterwards: the original's default test-time behaviour."""
        saved = []
        for m in self.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                saved.append((m, m.training, m.track_running_stats))
                m.training, m.track_running_stats = True, False
            elif isinstance(m, nn.Dropout):
                saved.append((m, m.training, None))
                m.training = True
        try:
            yield
        finally:
            for m, training, track in saved:
                m.training = training
                if track is not None:
                    m.track_running_stats = track

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training and self.test_mode == "train":
            with self._test_batch_statistics():
                return self.model(x)
        return self.model(x)


def build_pix2pix_unet(cfg: Pix2PixUnetConfig) -> dict[str, nn.Module]:
    g = UnetGenerator(cfg)
    d = NLayerDiscriminator(PatchGANConfig(cfg.input_nc + cfg.output_nc, cfg.ndf,
                                           cfg.n_layers_d, cfg.norm))
    init_normal(g)
    init_normal(d)
    return {"G": g, "D": d}
