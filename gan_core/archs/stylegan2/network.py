"""StyleGAN2 generator (Karras et al. 2020, config-f) laid out as rosinality/stylegan2-pytorch.

The module tree, parameter and buffer names, shapes and state_dict order equal rosinality's
`Generator` (commit bef283a), so its training checkpoints (`g_ema`) and converted NVIDIA
models load unchanged, and its outputs equal the original's on the same weights and noise.
Everything is plain PyTorch: the original's CUDA extensions (fused leaky ReLU, upfirdn2d)
are replaced by `leaky_relu(x + b, 0.2) * sqrt(2)` and `gan_core.models.upfirdn.upfirdn2d`.

Generation is load-only here (`trainable=False`): no StyleGAN2 trainer and no discriminator.

Latents. `z` [B, style_dim] is mapped by `style` (pixel norm + MLP) to `w` [B, style_dim].
The synthesis network reads one w per layer, a "w+" code [B, n_latent, style_dim] with
n_latent = 2*log2(size) - 2. Which layers latent index i drives (this is the original's wiring):

    i = 0            conv1 (4 px)
    i = 1            to_rgb1 (4 px) and convs.0 (the upsampling conv to 8 px)
    i = 2k + 2       convs.(2k+1), the second conv at 2**(k+3) px
    i = 2k + 3       to_rgbs.k (2**(k+3) px) and convs.(2k+2) (upsampling to 2**(k+4) px)

Style-mixing ranges follow the StyleGAN papers' convention, resolution(i) = 2**(i // 2 + 2):
"coarse" = 4-8 px (i 0-3), "middle" = 16-32 px (i 4-7), "fine" = 64 px and up (i >= 8).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.upfirdn import upfirdn2d

NOISE_MODES = ("fixed", "random", "none")
# name -> (lowest, highest) resolution in px; None = no upper bound
STYLE_RANGES: dict[str, tuple[int, int | None]] = {
    "coarse": (4, 8), "middle": (16, 32), "fine": (64, None)}
_SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True)
class StyleGAN2Config:
    """rosinality's `Generator(size, style_dim, n_mlp, channel_multiplier, blur_kernel, lr_mlp)`.

    `base_channels` is not in the original, which hard-codes 512: the width of every layer up
    to 32 px; from 64 px on a layer has base_channels * channel_multiplier * 32 / res channels
    (256*cm at 64 px, ..., 16*cm at 1024 px with the default). Smaller values only serve tiny
    test models; public files always have 512.
    """

    image_size: int = 256
    style_dim: int = 512
    n_mlp: int = 8
    channel_multiplier: int = 2
    lr_mlp: float = 0.01
    blur_kernel: tuple[int, ...] = (1, 3, 3, 1)
    base_channels: int = 512

    def __post_init__(self) -> None:
        s = self.image_size
        if not isinstance(s, int) or s < 8 or s & (s - 1):
            raise ValueError(f"stylegan2 image_size must be a power of two >= 8, got {s!r}")
        if self.style_dim < 1 or self.n_mlp < 0 or self.channel_multiplier < 1:
            raise ValueError("stylegan2 style_dim and channel_multiplier must be positive and "
                             f"n_mlp >= 0, got style_dim={self.style_dim}, n_mlp={self.n_mlp}, "
                             f"channel_multiplier={self.channel_multiplier}")
        if not self.lr_mlp > 0:
            raise ValueError(f"stylegan2 lr_mlp must be positive, got {self.lr_mlp}")
        if len(self.blur_kernel) < 2 or sum(self.blur_kernel) == 0:
            raise ValueError(f"stylegan2 blur_kernel needs >= 2 taps with a non-zero sum, "
                             f"got {self.blur_kernel!r}")
        if self.base_channels < 1 or self.width(s) < 1:
            raise ValueError(f"stylegan2 base_channels={self.base_channels} leaves no channels "
                             f"at {s} px (channel_multiplier {self.channel_multiplier})")

    @property
    def latent_dim(self) -> int:
        """The z size GANModel samples (z and w have the same size in StyleGAN2)."""
        return self.style_dim

    @property
    def log_size(self) -> int:
        return self.image_size.bit_length() - 1

    @property
    def n_latent(self) -> int:
        return 2 * self.log_size - 2

    @property
    def num_layers(self) -> int:
        """StyledConvs, hence noise inputs: one at 4 px, two per resolution after it."""
        return 2 * self.log_size - 3

    def width(self, res: int) -> int:
        if res <= 32:
            return self.base_channels
        return self.base_channels * self.channel_multiplier * 32 // res


def layer_resolution(index: int) -> int:
    """The resolution (px) latent index `index` is attributed to for style mixing."""
    return 2 ** (index // 2 + 2)


def _fir(taps: Sequence[int], gain: float = 1.0) -> torch.Tensor:
    """A separable 2-D FIR kernel from 1-D taps, normalised to sum `gain`."""
    t = torch.tensor([float(v) for v in taps])
    k = torch.outer(t, t)
    return k * (gain / k.sum())


def _leaky(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The original's FusedLeakyReLU: bias per channel (dim 1), slope 0.2, gain sqrt(2)."""
    shape = (1, -1) + (1,) * (x.dim() - 2)
    return F.leaky_relu(x + bias.view(shape), 0.2) * _SQRT2


# --------------------------------------------------------------------------- building blocks


class PixelNorm(nn.Module):
    """Scale each vector to unit RMS (over dim 1): z's length stops mattering."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with equalized learning rate: weights are stored at unit scale (divided by
    lr_mul) and scaled by lr_mul / sqrt(in) at run time; the bias by lr_mul. `activate` adds
    the fused leaky ReLU after the bias."""

    def __init__(self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activate: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activate:
            return _leaky(F.linear(x, self.weight * self.scale), self.bias * self.lr_mul)
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class Blur(nn.Module):
    """FIR low-pass after the transposed conv; `kernel` is a persistent buffer, as in the
    original (files carry it)."""

    def __init__(self, taps: Sequence[int], pad: tuple[int, int], gain: float = 1.0):
        super().__init__()
        self.register_buffer("kernel", _fir(taps, gain))
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """2x FIR upsampling of the RGB skip path (kernel gain 4 keeps the mean)."""

    def __init__(self, taps: Sequence[int], factor: int = 2):
        super().__init__()
        self.register_buffer("kernel", _fir(taps, factor * factor))
        self.factor = factor
        extra = len(taps) - factor
        self.pad = ((extra + 1) // 2 + factor - 1, extra // 2)  # (2, 1) for 4 taps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class ModulatedConv2d(nn.Module):
    """Conv whose input channels are scaled per sample by a style, then (optionally)
    demodulated so each output channel has unit expected variance.

    The weight is shared by the batch and the style applied to the activations instead
    (x * s, conv, then * demod per output channel), which is the same linear map as scaling
    a per-sample weight but needs no grouped conv. `upsample` is a stride-2 transposed conv
    followed by the blur, as in the original.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, upsample: bool = False,
                 blur_kernel: Sequence[int] = (1, 3, 3, 1)):
        super().__init__()
        self.in_ch, self.out_ch, self.kernel_size = in_ch, out_ch, kernel_size
        self.upsample = upsample
        self.demodulate = demodulate
        if upsample:  # registered before weight/modulation: the original's key order
            extra = (len(blur_kernel) - 2) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((extra + 1) // 2 + 1, extra // 2 + 1), gain=4.0)
        self.scale = 1.0 / math.sqrt(in_ch * kernel_size ** 2)
        self.weight = nn.Parameter(torch.randn(1, out_ch, in_ch, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_ch, bias_init=1.0)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        s = self.modulation(w)  # [B, in]
        weight = self.weight[0] * self.scale  # [out, in, k, k]
        x = x * s.view(b, -1, 1, 1)
        if self.upsample:
            out = self.blur(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2))
        else:
            out = F.conv2d(x, weight, padding=self.kernel_size // 2)
        if self.demodulate:
            # sum over in, kh, kw of (weight * s)^2 == (s^2) @ (sum over kh, kw of weight^2)
            energy = F.linear(s.square(), weight.square().sum(dim=(2, 3)))  # [B, out]
            out = out * torch.rsqrt(energy + 1e-8).view(b, -1, 1, 1)
        return out


class NoiseInjection(nn.Module):
    """Adds learned-strength single-channel noise; None draws fresh noise from the global RNG
    (the original's randomize_noise)."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            noise = x.new_empty(x.shape[0], 1, x.shape[2], x.shape[3]).normal_()
        return x + self.weight * noise


class ConstantInput(nn.Module):
    """The learned 4x4 starting tensor, repeated over the batch of its argument."""

    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, like: torch.Tensor) -> torch.Tensor:
        return self.input.repeat(like.shape[0], 1, 1, 1)


class FusedLeakyReLU(nn.Module):
    """Per-channel bias, then leaky ReLU (0.2) scaled by sqrt(2) (keeps the variance)."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _leaky(x, self.bias)


class StyledConv(nn.Module):
    """One synthesis layer: modulated 3x3 conv (optionally upsampling), noise, activation."""

    def __init__(self, in_ch: int, out_ch: int, style_dim: int, upsample: bool = False,
                 blur_kernel: Sequence[int] = (1, 3, 3, 1)):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, 3, style_dim, upsample=upsample,
                                    blur_kernel=blur_kernel)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_ch)

    def forward(self, x: torch.Tensor, w: torch.Tensor,
                noise: torch.Tensor | None = None) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, w), noise))


class ToRGB(nn.Module):
    """1x1 modulated conv (not demodulated) to RGB plus bias, added to the upsampled skip."""

    def __init__(self, in_ch: int, style_dim: int, upsample: bool = True,
                 blur_kernel: Sequence[int] = (1, 3, 3, 1)):
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_ch, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, w: torch.Tensor,
                skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, w) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


# --------------------------------------------------------------------------- the generator


class StyleGAN2Generator(nn.Module):
    """rosinality's Generator, plus the library's latent protocol.

    Original call form: `G([z], truncation=1, truncation_latent=None, randomize_noise=True,
    input_is_latent=False, inject_index=None, return_latents=False, noise=None)` ->
    (image [B,3,H,W] roughly in [-1,1], w+ or None). Protocol: `z_dim`, `w_dim`, `n_latent`,
    `map_z`, `synthesize`, `mean_latent`, `mix_styles`. `latent_avg` ([w_dim], plain
    attribute, not in the state_dict) holds the average w a converted NVIDIA file ships.
    """

    def __init__(self, cfg: StyleGAN2Config):
        super().__init__()
        self.cfg = cfg
        self.size = cfg.image_size
        self.style_dim = cfg.style_dim
        self.log_size = cfg.log_size
        self.num_layers = cfg.num_layers
        self.n_latent = cfg.n_latent
        self.latent_avg: torch.Tensor | None = None
        blur = tuple(cfg.blur_kernel)

        self.style = nn.Sequential(PixelNorm(), *[
            EqualLinear(cfg.style_dim, cfg.style_dim, lr_mul=cfg.lr_mlp, activate=True)
            for _ in range(cfg.n_mlp)])
        base = cfg.width(4)
        self.input = ConstantInput(base)
        self.conv1 = StyledConv(base, base, cfg.style_dim, blur_kernel=blur)
        self.to_rgb1 = ToRGB(base, cfg.style_dim, upsample=False, blur_kernel=blur)
        self.convs = nn.ModuleList()
        self.upsamples = nn.ModuleList()  # empty, as in the original (no keys)
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for i in range(self.num_layers):
            res = layer_resolution(i + 1)  # noise_0 at 4 px, then two per resolution
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, res, res))
        in_ch = base
        for log_res in range(3, self.log_size + 1):
            out_ch = cfg.width(2 ** log_res)
            self.convs.append(StyledConv(in_ch, out_ch, cfg.style_dim, upsample=True,
                                         blur_kernel=blur))
            self.convs.append(StyledConv(out_ch, out_ch, cfg.style_dim, blur_kernel=blur))
            self.to_rgbs.append(ToRGB(out_ch, cfg.style_dim, blur_kernel=blur))
            in_ch = out_ch

    # ------------------------------------------------------------------ housekeeping

    def _apply(self, fn, *args, **kwargs):
        """Move/cast `latent_avg` with the module (.to, .cuda, .half), though it is no buffer."""
        out = super()._apply(fn, *args, **kwargs)
        if isinstance(self.latent_avg, torch.Tensor):
            self.latent_avg = fn(self.latent_avg)
        return out

    @property
    def z_dim(self) -> int:
        return self.style_dim

    @property
    def w_dim(self) -> int:
        return self.style_dim

    def fixed_noise(self) -> list[torch.Tensor]:
        """The file's `noises.noise_i` buffers, [1,1,r,r] each, in layer order."""
        return [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]

    def make_noise(self, batch: int = 1,
                   generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Fresh standard-normal noise per layer, [batch,1,r,r], from `generator` (global RNG
        when None). Drawn on the generator's device and moved to the module's."""
        ref = self.input.input
        out = []
        for i in range(self.num_layers):
            r = layer_resolution(i + 1)
            dev = generator.device if generator is not None else ref.device
            n = torch.randn(batch, 1, r, r, generator=generator, device=dev, dtype=ref.dtype)
            out.append(n.to(ref.device))
        return out

    # ------------------------------------------------------------------ latent protocol

    def map_z(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, z_dim] -> w [B, w_dim] (pixel norm + mapping MLP)."""
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"map_z expects z as [B, {self.z_dim}], got {tuple(z.shape)}")
        return self.style(z)

    get_latent = map_z  # the original's name

    @torch.no_grad()
    def mean_latent(self, n: int = 4096,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean of map_z over `n` standard-normal z: the truncation centre, [1, w_dim].

        z is drawn in one call, as the original does (same seed, same z); the mapping runs in
        chunks and the mean accumulates in float64.
        """
        if n < 1:
            raise ValueError(f"mean_latent needs n >= 1, got {n}")
        ref = self.input.input
        dev = generator.device if generator is not None else ref.device
        z = torch.randn(n, self.z_dim, generator=generator, device=dev).to(ref)
        total = torch.zeros(1, self.w_dim, device=ref.device, dtype=torch.float64)
        for chunk in z.split(1024):
            total += self.map_z(chunk).double().sum(0, keepdim=True)
        return (total / n).to(ref.dtype)

    def to_w_plus(self, w: torch.Tensor) -> torch.Tensor:
        """w [B, w_dim] broadcast to every layer, or w+ [B, n_latent, w_dim] as it is."""
        if w.dim() == 2 and w.shape[1] == self.w_dim:
            return w.unsqueeze(1).expand(-1, self.n_latent, -1)
        if w.dim() == 3 and tuple(w.shape[1:]) == (self.n_latent, self.w_dim):
            return w
        raise ValueError(f"expected w as [B, {self.w_dim}] or w+ as [B, {self.n_latent}, "
                         f"{self.w_dim}], got {tuple(w.shape)}")

    def synthesize(self, w: torch.Tensor, noise: str = "fixed",
                   generator: torch.Generator | None = None) -> torch.Tensor:
        """Image [B,3,H,W] (roughly [-1,1]) from w [B, w_dim] or w+ [B, n_latent, w_dim].

        noise "fixed": the `noises.*` buffers, shared by the batch, so an image depends on its
        latent alone; "random": drawn per sample from `generator` (global RNG when None);
        "none": no noise.
        """
        latent = self.to_w_plus(w)
        if noise == "fixed":
            noises: list[torch.Tensor | None] = list(self.fixed_noise())
        elif noise == "random":
            noises = self.make_noise(latent.shape[0], generator)
        elif noise == "none":
            noises = [torch.zeros_like(n) for n in self.fixed_noise()]
        else:
            raise ValueError(f"noise must be one of {NOISE_MODES}, got {noise!r}")
        return self._synthesis(latent, noises)

    def style_layers(self, name: str) -> list[int]:
        """Latent indices of a named range ("coarse", "middle", "fine") at this resolution."""
        if name not in STYLE_RANGES:
            raise ValueError(f"unknown style range {name!r}; expected one of "
                             f"{', '.join(STYLE_RANGES)}")
        lo, hi = STYLE_RANGES[name]
        found = [i for i in range(self.n_latent)
                 if lo <= layer_resolution(i) and (hi is None or layer_resolution(i) <= hi)]
        if not found:
            raise ValueError(f"a {self.size} px StyleGAN2 has no {name!r} layers "
                             f"({lo}{f'-{hi}' if hi else '+'} px)")
        return found

    def mix_styles(self, w_a: torch.Tensor, w_b: torch.Tensor,
                   layers: str | slice | Iterable[int]) -> torch.Tensor:
        """w+ [B, n_latent, w_dim] taking `layers` from w_b and every other layer from w_a.

        w_a and w_b are w [B, w_dim] or w+ [B, n_latent, w_dim] (broadcast over each other's
        batch). `layers` is a named range ("coarse" 4-8 px, "middle" 16-32 px, "fine" 64 px+),
        a slice, or latent indices; see the module docstring for index <-> resolution.
        """
        a, b = self.to_w_plus(w_a), self.to_w_plus(w_b)
        if isinstance(layers, str):
            picked = self.style_layers(layers)
        elif isinstance(layers, slice):
            picked = list(range(self.n_latent))[layers]
        else:
            picked = [int(i) for i in layers]
            bad = [i for i in picked if not 0 <= i < self.n_latent]
            if bad:
                raise ValueError(f"layer indices {bad} are outside 0..{self.n_latent - 1}")
        mask = torch.zeros(self.n_latent, 1, dtype=torch.bool, device=a.device)
        mask[picked] = True
        return torch.where(mask, b, a)

    # ------------------------------------------------------------------ synthesis

    def _synthesis(self, latent: torch.Tensor,
                   noises: Sequence[torch.Tensor | None]) -> torch.Tensor:
        """The synthesis network on w+ `latent` with one noise (or None: random) per layer."""
        if len(noises) != self.num_layers:
            raise ValueError(f"noise must hold {self.num_layers} entries (one per layer), "
                             f"got {len(noises)}")
        x = self.conv1(self.input(latent), latent[:, 0], noises[0])
        skip = self.to_rgb1(x, latent[:, 1])
        for k, to_rgb in enumerate(self.to_rgbs):
            x = self.convs[2 * k](x, latent[:, 2 * k + 1], noises[2 * k + 1])
            x = self.convs[2 * k + 1](x, latent[:, 2 * k + 2], noises[2 * k + 2])
            skip = to_rgb(x, latent[:, 2 * k + 3], skip)
        return skip

    def forward(self, styles: Sequence[torch.Tensor] | torch.Tensor,
                return_latents: bool = False, inject_index: int | None = None,
                truncation: float = 1, truncation_latent: torch.Tensor | None = None,
                input_is_latent: bool = False, noise: Sequence[torch.Tensor | None] | None = None,
                randomize_noise: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The original's call: a list of one or two z (or w with input_is_latent) -> (image,
        w+ if return_latents else None). Two styles mix at `inject_index` (random in
        1..n_latent-1 when None, from Python's `random`, as in the original). Truncation
        applies only below 1, like the original; without `truncation_latent` it falls back to
        `latent_avg` when the file shipped one."""
        if isinstance(styles, torch.Tensor):
            styles = [styles]
        if not input_is_latent:
            styles = [self.style(s) for s in styles]
        if noise is None:
            noise = [None] * self.num_layers if randomize_noise else self.fixed_noise()
        if truncation < 1:
            center = truncation_latent if truncation_latent is not None else self.latent_avg
            if center is None:
                raise ValueError("truncation < 1 needs truncation_latent (e.g. "
                                 "G.mean_latent(4096)); this model ships no latent_avg")
            styles = [center + truncation * (s - center) for s in styles]
        if len(styles) < 2:
            s = styles[0]
            latent = s.unsqueeze(1).repeat(1, self.n_latent, 1) if s.dim() < 3 else s
        else:
            if inject_index is None:
                inject_index = random.randint(1, self.n_latent - 1)
            latent = torch.cat([
                styles[0].unsqueeze(1).repeat(1, inject_index, 1),
                styles[1].unsqueeze(1).repeat(1, self.n_latent - inject_index, 1)], dim=1)
        image = self._synthesis(latent, noise)
        return (image, latent) if return_latents else (image, None)


def build_stylegan2(cfg: StyleGAN2Config) -> dict[str, nn.Module]:
    return {"G": StyleGAN2Generator(cfg)}
