"""Small generators for the latent tests: a DCGAN whose random weights still make varied
images, and a toy that implements the latent protocol the way StyleGAN2 does (mapping
network, w+ synthesis with one style per layer, fixed / random / no noise)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

import gan_core
from gan_core.archs import get_arch


def varied_dcgan(latent_dim: int = 16, size: int = 32, width: int = 8,
                 channels: int = 3) -> gan_core.GANModel:
    """A random-weight DCGAN whose images differ clearly from seed to seed.

    Straight from its N(0, 0.02) init a DCGAN makes near-uniform grey for every z (pixel std
    ~0.001), which would make every latent test pass trivially. Here the BatchNorm running
    statistics are calibrated on 256 latents and the last layer is rescaled so its output
    spans tanh's range; the weights stay random."""
    spec = get_arch("dcgan")
    cfg = spec.config_cls(image_size=size, ngf=width, ndf=width, latent_dim=latent_dim,
                          channels=channels)
    torch.manual_seed(0)
    g = spec.build(cfg)["G"]
    for m in g.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # a plain average over the calibration batch
    z = torch.randn(256, latent_dim, 1, 1, generator=torch.Generator().manual_seed(1))
    g.train()
    with torch.no_grad():
        g(z)
        g.eval()
        pre = g.main[:-1](z)
        g.main[-2].weight.div_(pre.std())
    return gan_core.GANModel("dcgan", cfg, {"G": g})


@dataclass(frozen=True)
class ToyConfig:
    image_size: int = 16
    latent_dim: int = 8
    channels: int = 3


class ToyStyleGenerator(nn.Module):
    """z [B, 8] -> mapping -> w; w+ [B, 6, 8] drives six layers at 4, 4, 8, 8, 16, 16 px."""

    def __init__(self, cfg: ToyConfig = ToyConfig(), width: int = 8):
        super().__init__()
        self.z_dim = self.w_dim = cfg.latent_dim
        self.n_latent = 6
        self.map_calls = 0
        self.mapping = nn.Sequential(nn.Linear(self.z_dim, 16), nn.LeakyReLU(0.2),
                                     nn.Linear(16, self.w_dim))
        self.const = nn.Parameter(torch.randn(1, width, 4, 4))
        self.convs = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1) for _ in range(6))
        self.styles = nn.ModuleList(nn.Linear(self.w_dim, width) for _ in range(6))
        self.to_rgb = nn.Conv2d(width, cfg.channels, 1)
        for i in range(6):
            self.register_buffer(f"noise_{i}", torch.randn(1, 1, *(2 * [4 * 2 ** (i // 2)])))

    def map_z(self, z: torch.Tensor) -> torch.Tensor:
        self.map_calls += 1
        z = z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + 1e-8)
        return self.mapping(z)

    @torch.no_grad()
    def mean_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.map_z(torch.randn(n, self.z_dim, generator=generator)).mean(0, keepdim=True)

    def synthesize(self, w: torch.Tensor, noise: str = "fixed",
                   generator: torch.Generator | None = None) -> torch.Tensor:
        if w.dim() == 2:
            w = w.unsqueeze(1).expand(-1, self.n_latent, -1)
        x = self.const.expand(w.shape[0], -1, -1, -1)
        for i, (conv, style) in enumerate(zip(self.convs, self.styles)):
            if i in (2, 4):
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            fixed = getattr(self, f"noise_{i}")
            if noise == "fixed":
                n = fixed
            elif noise == "none":
                n = torch.zeros_like(fixed)
            else:
                dev = generator.device if generator is not None else fixed.device
                n = torch.randn(w.shape[0], 1, *fixed.shape[-2:], generator=generator, device=dev)
            x = F.leaky_relu(conv(x) * (1 + style(w[:, i]))[..., None, None] + 0.3 * n, 0.2)
        return torch.tanh(self.to_rgb(x))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.synthesize(self.map_z(z))


class ToyModel(gan_core.GANModel):
    """A GANModel around the toy (not a registered architecture, so the task and the latent
    protocol that a family's ArchSpec would state are set here)."""

    task = "generate"
    latent_io = gan_core.LatentIO(z_dim=8, w_dim=8, n_latent=6, mapped=True, synthesis=True)


def toy_model() -> ToyModel:
    torch.manual_seed(3)
    return ToyModel("toy", ToyConfig(), {"G": ToyStyleGenerator().eval()})
