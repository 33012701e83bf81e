"""DPIR's DRUNet (`UNetRes`, cszn/DPIR models/network_unet.py) with the public files' layout.

The module tree follows the original because the public files (drunet_gray.pth,
drunet_color.pth) are bare state_dicts whose key names are positions in it: KAIR's
`B.sequential` returns a lone layer unwrapped (`m_head.weight`, `m_down1.4.weight`), and
ResBlocks keep their convs at `res.0` / `res.2`. DRUNet takes cat([image, noise map]) where the
map is sigma/255 everywhere, returns the clean image itself (no global residual), has no
biases, and needs H and W divisible by 8 (three stride-2 2x2 convs down, three 2x2 transposed
convs up, additive skips). Images in [0, 1]; the output is not clipped (callers clip).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

ACT_MODES = ("R",)  # the merged-BN layout of the public files; see the module docstring


# --------------------------------------------------------------------------- DRUNet


@dataclass(frozen=True)
class DRUNetConfig:
    """DPIR's UNetRes constructor arguments. Public files: drunet_color (in_nc 4, out_nc 3) and
    drunet_gray (in_nc 2, out_nc 1); the extra input channel is the noise-level map."""

    in_nc: int = 4
    out_nc: int = 3
    nc: tuple[int, int, int, int] = (64, 128, 256, 512)
    nb: int = 4  # ResBlocks per level
    act_mode: str = "R"
    downsample_mode: str = "strideconv"
    upsample_mode: str = "convtranspose"
    bias: bool = False  # DPIR hard-codes False; KAIR's copy defaults to True

    def __post_init__(self) -> None:
        object.__setattr__(self, "nc", tuple(int(c) for c in self.nc))  # JSON gives a list
        if len(self.nc) != 4 or min(self.nc) < 1:
            raise ValueError(f"drunet nc must be four positive widths, got {self.nc}")
        if self.out_nc not in (1, 3) or self.in_nc != self.out_nc + 1:
            raise ValueError(f"drunet takes the image plus one noise-level channel: out_nc 1 or "
                             f"3 and in_nc = out_nc + 1, got in_nc={self.in_nc}, "
                             f"out_nc={self.out_nc}")
        if self.nb < 1:
            raise ValueError(f"drunet nb must be >= 1, got {self.nb}")
        if self.act_mode not in ACT_MODES:
            raise ValueError(f"drunet act_mode must be one of {ACT_MODES}, got {self.act_mode!r}")
        if (self.downsample_mode, self.upsample_mode) != ("strideconv", "convtranspose"):
            raise ValueError("drunet supports downsample_mode 'strideconv' with upsample_mode "
                             "'convtranspose' (the public files' layout), got "
                             f"{self.downsample_mode!r} / {self.upsample_mode!r}")


class ResBlock(nn.Module):
    """KAIR's ResBlock with mode 'CRC': x + conv(relu(conv(x))), no activation after the add."""

    def __init__(self, channels: int, bias: bool):
        super().__init__()
        self.res = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1, bias=bias),
                                 nn.ReLU(inplace=True),
                                 nn.Conv2d(channels, channels, 3, 1, 1, bias=bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res(x)


class UNetRes(nn.Module):
    """DRUNet: cat([image, sigma/255 map]) [B, out_nc + 1, H, W] in [0, 1] -> clean image
    [B, out_nc, H, W]. H and W must be multiples of 8, as in the original (which would fail
    on a shape mismatch in the skips otherwise); gan_core.denoise pads for it."""

    size_multiple = 8
    min_size = 8
    takes_noise_level = True

    def __init__(self, cfg: DRUNetConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or DRUNetConfig()
        nc, nb, bias = cfg.nc, cfg.nb, cfg.bias

        def blocks(c: int) -> list[nn.Module]:
            return [ResBlock(c, bias) for _ in range(nb)]

        self.m_head = nn.Conv2d(cfg.in_nc, nc[0], 3, 1, 1, bias=bias)
        # Each level: ResBlocks, then a 2x2 stride-2 conv (no padding) to the next width.
        self.m_down1 = nn.Sequential(*blocks(nc[0]), nn.Conv2d(nc[0], nc[1], 2, 2, 0, bias=bias))
        self.m_down2 = nn.Sequential(*blocks(nc[1]), nn.Conv2d(nc[1], nc[2], 2, 2, 0, bias=bias))
        self.m_down3 = nn.Sequential(*blocks(nc[2]), nn.Conv2d(nc[2], nc[3], 2, 2, 0, bias=bias))
        self.m_body = nn.Sequential(*blocks(nc[3]))
        # Each level up: a 2x2 stride-2 transposed conv first, then the ResBlocks.
        self.m_up3 = nn.Sequential(nn.ConvTranspose2d(nc[3], nc[2], 2, 2, 0, bias=bias),
                                   *blocks(nc[2]))
        self.m_up2 = nn.Sequential(nn.ConvTranspose2d(nc[2], nc[1], 2, 2, 0, bias=bias),
                                   *blocks(nc[1]))
        self.m_up1 = nn.Sequential(nn.ConvTranspose2d(nc[1], nc[0], 2, 2, 0, bias=bias),
                                   *blocks(nc[0]))
        self.m_tail = nn.Conv2d(nc[0], cfg.out_nc, 3, 1, 1, bias=bias)

    @property
    def image_channels(self) -> int:
        return self.cfg.out_nc

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x1 = self.m_head(x0)
        x2 = self.m_down1(x1)
        x3 = self.m_down2(x2)
        x4 = self.m_down3(x3)
        x = self.m_body(x4)
        x = self.m_up3(x + x4)  # additive skips, not concatenation
        x = self.m_up2(x + x3)
        x = self.m_up1(x + x2)
        return self.m_tail(x + x1)


def build_drunet(cfg: DRUNetConfig) -> dict[str, nn.Module]:
    """Generator only, PyTorch's default init (see build_dncnn)."""
    return {"G": UNetRes(cfg)}
