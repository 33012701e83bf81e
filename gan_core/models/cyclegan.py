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

from .registry import ArchSpec, register

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


def _check_norm(name: str, norm: str) -> None:
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
        _check_norm("patchgan", self.norm)
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
        _check_norm("cyclegan_resnet", self.norm)
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
        _check_norm("pix2pix_unet", self.norm)
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


register(ArchSpec("cyclegan_resnet", "style", CycleGANResnetConfig, build_cyclegan_resnet,
                  "CycleGAN ResNet generator (public style_monet, horse2zebra, ... files)"))
register(ArchSpec("pix2pix_unet", "style", Pix2PixUnetConfig, build_pix2pix_unet,
                  "pix2pix U-Net generator, unet_128 / unet_256"))
register(ArchSpec("patchgan", "style", PatchGANConfig, build_patchgan,
                  "N-layer PatchGAN discriminator of CycleGAN / pix2pix (scores, cannot stylize)"))
