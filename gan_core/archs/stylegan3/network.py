"""StyleGAN3 generators (Karras et al. 2021, "Alias-Free Generative Adversarial Networks"),
configs T (translation equivariant) and R (rotation equivariant), laid out as NVIDIA's network
pickles: the module tree, parameter and buffer names, shapes and state_dict order equal the
original's (`mapping.fc{i}.*`, `mapping.w_avg`, `mapping.embed.*` when conditional,
`synthesis.input.{weight, transform, freqs, phases, affine.*}`, layers
`synthesis.L{i}_{size}_{channels}.{weight, bias, magnitude_ema, up_filter, down_filter,
affine.*}`), and so do its outputs (float32) on the same weights. Plain PyTorch on any device:
no compiled extension.

Latents. z [B, z_dim] (and a one-hot c [B, c_dim] for conditional models) is mapped to w
[B, w_dim]; the synthesis network takes one w per layer, ws [B, num_ws, w_dim] with
num_ws = num_layers + 2: ws[:, 0] drives the Fourier-feature input's learned rotation and
translation, ws[:, i] (i >= 1) the modulation of layer L{i-1}. StyleGAN3 has no noise inputs.

The per-layer geometry (sampling rates, cutoffs, transition bands, sizes, up/down factors,
filter lengths, padding) follows the paper's appendix F, computed as the original computes it
(`synthesis_geometry`), so it equals the attributes its pickles store.

Camera. The Fourier features are sin(2 pi (f . p + phase)) over sample positions p in units of
the image width (the image spans [-0.5, 0.5]). A user transform T (the input's `transform`
buffer, or the `transform` argument of `synthesize`) samples the features at T p: the content
at p appears at T^-1 p. `camera_matrix(translate, rotate_degrees)` is the inverse of
[[cos a, sin a, tx], [-sin a, cos a, ty], [0, 0, 1]], as NVIDIA's gen_images / gen_video /
visualizer set it, so the content moves by (tx, ty) image widths (+x right, +y down): a
translation of k / img_resolution moves the image k pixels (exactly where k is a whole number
of samples at every layer's rate, up to the borders' zero padding).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..stylegan2_ada.network import Discriminator, StyleGAN2ADAConfig
from .filters import design_lowpass
from .ops import SQRT2, filtered_lrelu, modulated_conv2d

MAX_RESOLUTION = 1 << 15
MAX_FEATURES = 1 << 16
NOISE_MODES = ("fixed", "random", "none")
NVIDIA_NOISE_MODES = ("const", "random", "none")
# Named style-mixing ranges by a layer's "resolution" 2 * cutoff, the StyleGAN papers' bands:
# coarse 4-8 px, middle 16-32 px, fine 64 px and up (borders at the geometric midpoints).
STYLE_RANGES: dict[str, tuple[float, float]] = {
    "coarse": (0.0, 8 * math.sqrt(2)), "middle": (8 * math.sqrt(2), 32 * math.sqrt(2)),
    "fine": (32 * math.sqrt(2), math.inf)}


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class StyleGAN3Config:
    """NVIDIA's `Generator(z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs,
    **synthesis_kwargs)` as flat fields (JSON round-trippable).

    Mapping: `mapping_layers`, `mapping_lr_multiplier`, `w_avg_beta`. Synthesis:
    `channel_base`, `channel_max`, `num_layers` (excluding the input and ToRGB),
    `num_critical`, `first_cutoff`, `first_stopband`, `last_stopband_rel`, `margin_size`,
    `output_scale`, `num_fp16_res`. Layers: `conv_kernel` (1 for R), `filter_size` (taps per
    factor of up/downsampling), `lrelu_upsampling`, `use_radial_filters` (R),
    `conv_clamp` (None: no clamp), `magnitude_ema_beta`. `stylegan3_t` / `stylegan3_r` give
    the published configs (R: channel_base and channel_max doubled, 1x1 convs, radial
    downsampling filters)."""

    z_dim: int = 512
    c_dim: int = 0
    w_dim: int = 512
    img_resolution: int = 1024
    img_channels: int = 3
    mapping_layers: int = 2
    mapping_lr_multiplier: float = 0.01
    w_avg_beta: float | None = 0.998
    channel_base: int = 32768
    channel_max: int = 512
    num_layers: int = 14
    num_critical: int = 2
    first_cutoff: float = 2.0
    first_stopband: float = 2 ** 2.1
    last_stopband_rel: float = 2 ** 0.3
    margin_size: int = 10
    output_scale: float = 0.25
    num_fp16_res: int = 4
    conv_kernel: int = 3
    filter_size: int = 6
    lrelu_upsampling: int = 2
    use_radial_filters: bool = False
    conv_clamp: float | None = 256
    magnitude_ema_beta: float = 0.999
    # D: the StyleGAN2 Discriminator the stylegan3 repository trains with (its defaults
    # there: channel_base / channel_max as G's T config, 4 fp16 resolutions, clamp 256)
    d_architecture: str = "resnet"
    d_channel_base: int = 32768
    d_channel_max: int = 512
    d_num_fp16_res: int = 4
    d_conv_clamp: float | None = 256
    d_resample_filter: tuple[float, ...] = (1, 3, 3, 1)
    d_activation: str = "lrelu"
    mbstd_group_size: int | None = 4
    mbstd_num_channels: int = 1
    cmap_dim: int | None = None
    d_mapping_layers: int = 8
    d_mapping_embed_features: int | None = None
    d_mapping_layer_features: int | None = None
    d_mapping_activation: str = "lrelu"
    d_mapping_lr_multiplier: float = 0.01

    def __post_init__(self) -> None:
        r = self.img_resolution
        if not isinstance(r, int) or r < 8 or r > MAX_RESOLUTION or r & (r - 1):
            raise ValueError(f"stylegan3 img_resolution must be a power of two between 8 and "
                             f"{MAX_RESOLUTION}, got {r!r}")
        if isinstance(self.d_resample_filter, list):
            object.__setattr__(self, "d_resample_filter", tuple(self.d_resample_filter))
        for name in ("z_dim", "w_dim", "img_channels", "channel_max", "conv_kernel",
                     "filter_size", "lrelu_upsampling"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"stylegan3 {name} must be a positive integer, "
                                 f"got {getattr(self, name)!r}")
        if not isinstance(self.c_dim, int) or self.c_dim < 0:
            raise ValueError(f"stylegan3 c_dim must be >= 0, got {self.c_dim!r}")
        if not isinstance(self.mapping_layers, int) or self.mapping_layers < 1:
            raise ValueError(f"stylegan3 mapping_layers must be >= 1, got {self.mapping_layers!r}")
        if not (isinstance(self.num_layers, int) and isinstance(self.num_critical, int)
                and 0 <= self.num_critical < self.num_layers):
            raise ValueError(f"stylegan3 needs 0 <= num_critical < num_layers, got "
                             f"num_layers={self.num_layers!r}, num_critical={self.num_critical!r}")
        if not isinstance(self.margin_size, int) or self.margin_size < 0:
            raise ValueError(f"stylegan3 margin_size must be >= 0, got {self.margin_size!r}")
        if not isinstance(self.num_fp16_res, int) or self.num_fp16_res < 0:
            raise ValueError(f"stylegan3 num_fp16_res must be >= 0, got {self.num_fp16_res!r}")
        for name in ("channel_base", "first_cutoff", "first_stopband", "last_stopband_rel",
                     "mapping_lr_multiplier"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"stylegan3 {name} must be a positive number, got {value!r}")
        if not 0 < self.first_cutoff < self.img_resolution / 2 + 1e-9:
            raise ValueError(f"stylegan3 first_cutoff must lie in (0, img_resolution/2], got "
                             f"{self.first_cutoff}")
        if self.conv_clamp is not None and not self.conv_clamp >= 0:
            raise ValueError(f"stylegan3 conv_clamp must be >= 0 or None, got {self.conv_clamp}")
        for name in ("z_dim", "w_dim", "channel_max", "num_layers", "mapping_layers"):
            if getattr(self, name) > MAX_FEATURES:
                raise ValueError(f"stylegan3 {name}={getattr(self, name)} is beyond any "
                                 f"StyleGAN3 ({MAX_FEATURES})")
        if self.filter_size * self.lrelu_upsampling > 64 or self.conv_kernel > 16:
            raise ValueError("stylegan3 filter_size * lrelu_upsampling must be <= 64 and "
                             "conv_kernel <= 16")
        synthesis_geometry(self)  # raises ValueError for a config with no valid layers
        discriminator_config(self)  # and D's fields (checked by the StyleGAN2-ADA config)

    @property
    def num_ws(self) -> int:
        return self.num_layers + 2

    @property
    def variant(self) -> str:
        """"R" for the rotation-equivariant config (radial filters), else "T"."""
        return "R" if self.use_radial_filters else "T"

    @classmethod
    def stylegan3_t(cls, img_resolution: int = 1024, **kwargs) -> StyleGAN3Config:
        return cls(img_resolution=img_resolution, **kwargs)

    @classmethod
    def stylegan3_r(cls, img_resolution: int = 1024, **kwargs) -> StyleGAN3Config:
        base = dict(channel_base=65536, channel_max=1024, conv_kernel=1,
                    use_radial_filters=True)
        base.update(kwargs)
        return cls(img_resolution=img_resolution, **base)


# --------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class LayerGeometry:
    """One synthesis layer's attributes, named as the original stores them."""

    name: str
    is_torgb: bool
    is_critically_sampled: bool
    use_fp16: bool
    in_channels: int
    out_channels: int
    in_size: int
    out_size: int
    in_sampling_rate: int
    out_sampling_rate: int
    tmp_sampling_rate: int
    in_cutoff: float
    out_cutoff: float
    in_half_width: float
    out_half_width: float
    conv_kernel: int
    up_factor: int
    up_taps: int
    down_factor: int
    down_taps: int
    down_radial: bool
    padding: tuple[int, int, int, int]


@dataclass(frozen=True)
class InputGeometry:
    channels: int
    size: int
    sampling_rate: float
    bandwidth: float


@dataclass(frozen=True)
class Geometry:
    input: InputGeometry
    layers: tuple[LayerGeometry, ...]


_GEOMETRY_CACHE: dict[tuple, Geometry] = {}


def synthesis_geometry(cfg: StyleGAN3Config) -> Geometry:
    """Every layer's sampling rate, cutoff, transition band, size, channels, resampling
    factors, filter lengths and padding (appendix F; the same float64 arithmetic as the
    original, so the values equal its stored attributes)."""
    key = (cfg.img_resolution, cfg.img_channels, cfg.channel_base, cfg.channel_max,
           cfg.num_layers, cfg.num_critical, cfg.first_cutoff, cfg.first_stopband,
           cfg.last_stopband_rel, cfg.margin_size, cfg.num_fp16_res, cfg.conv_kernel,
           cfg.filter_size, cfg.lrelu_upsampling, cfg.use_radial_filters)
    if key in _GEOMETRY_CACHE:
        return _GEOMETRY_CACHE[key]
    res, n = cfg.img_resolution, cfg.num_layers
    last_cutoff = res / 2
    last_stopband = last_cutoff * cfg.last_stopband_rel
    exponents = np.minimum(np.arange(n + 1) / (n - cfg.num_critical), 1)
    cutoffs = cfg.first_cutoff * (last_cutoff / cfg.first_cutoff) ** exponents
    stopbands = cfg.first_stopband * (last_stopband / cfg.first_stopband) ** exponents
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, res))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + cfg.margin_size * 2
    sizes[-2:] = res
    channels = np.rint(np.minimum((cfg.channel_base / 2) / cutoffs, cfg.channel_max))
    channels[-1] = cfg.img_channels
    if (channels < 1).any():
        raise ValueError(f"stylegan3 channel_base={cfg.channel_base} leaves a layer with no "
                         f"channels at {res} px")
    if not (half_widths > 0).all():
        raise ValueError("stylegan3: a layer's transition band is empty (stopband below the "
                         "cutoff); check first_stopband / last_stopband_rel")
    layers = []
    for idx in range(n + 1):
        prev = max(idx - 1, 0)
        torgb = idx == n
        in_rate, out_rate = int(rates[prev]), int(rates[idx])
        tmp_rate = max(in_rate, out_rate) * (1 if torgb else cfg.lrelu_upsampling)
        kernel = 1 if torgb else cfg.conv_kernel
        up = int(np.rint(tmp_rate / in_rate))
        down = int(np.rint(tmp_rate / out_rate))
        if in_rate * up != tmp_rate or out_rate * down != tmp_rate:
            raise ValueError(f"stylegan3 layer {idx}: sampling rates {in_rate} -> {out_rate} "
                             f"are not integer factors of {tmp_rate}")
        up_taps = cfg.filter_size * up if up > 1 and not torgb else 1
        down_taps = cfg.filter_size * down if down > 1 and not torgb else 1
        critical = idx >= n - cfg.num_critical
        in_size, out_size = int(sizes[prev]), int(sizes[idx])
        pad_total = (out_size - 1) * down + 1
        pad_total -= (in_size + kernel - 1) * up
        pad_total += up_taps + down_taps - 2
        pad_lo = (pad_total + up) // 2  # the symmetric interpretation (appendix C.3)
        pad_hi = pad_total - pad_lo
        layers.append(LayerGeometry(
            name=f"L{idx}_{out_size}_{int(channels[idx])}", is_torgb=torgb,
            is_critically_sampled=bool(critical),
            use_fp16=bool(rates[idx] * (2 ** cfg.num_fp16_res) > res),
            in_channels=int(channels[prev]), out_channels=int(channels[idx]),
            in_size=in_size, out_size=out_size, in_sampling_rate=in_rate,
            out_sampling_rate=out_rate, tmp_sampling_rate=tmp_rate,
            in_cutoff=float(cutoffs[prev]), out_cutoff=float(cutoffs[idx]),
            in_half_width=float(half_widths[prev]), out_half_width=float(half_widths[idx]),
            conv_kernel=kernel, up_factor=up, up_taps=up_taps, down_factor=down,
            down_taps=down_taps, down_radial=bool(cfg.use_radial_filters and not critical),
            padding=(int(pad_lo), int(pad_hi), int(pad_lo), int(pad_hi))))
    geometry = Geometry(
        InputGeometry(int(channels[0]), int(sizes[0]), float(rates[0]), float(cutoffs[0])),
        tuple(layers))
    if len(_GEOMETRY_CACHE) < 256:
        _GEOMETRY_CACHE[key] = geometry
    return geometry


def camera_matrix(translate: Sequence[float] = (0.0, 0.0),
                  rotate_degrees: float = 0.0) -> torch.Tensor:
    """The synthesis input's `transform` [3, 3] (float32) that shows the image translated by
    (tx, ty) image widths (+x right, +y down) and rotated by `rotate_degrees`: the inverse of
    [[cos, sin, tx], [-sin, cos, ty], [0, 0, 1]], as NVIDIA's tools set it."""
    tx, ty = (float(v) for v in translate)
    a = float(rotate_degrees) / 360.0 * 2 * math.pi
    s, c = math.sin(a), math.cos(a)
    m = np.array([[c, s, tx], [-s, c, ty], [0.0, 0.0, 1.0]])
    return torch.from_numpy(np.linalg.inv(m)).float()


# --------------------------------------------------------------------------- modules


def _lrelu(x: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    if b is not None:
        x = x + b
    return F.leaky_relu(x, 0.2) * SQRT2


class FullyConnectedLayer(nn.Module):
    """Linear layer with equalized learning rate: weight stored / lr_multiplier and used
    * lr_multiplier / sqrt(in); bias used * lr_multiplier; 'lrelu' adds the activation."""

    def __init__(self, in_features: int, out_features: int, activation: str = "linear",
                 bias: bool = True, lr_multiplier: float = 1.0, weight_init: float = 1.0,
                 bias_init: float | Sequence[float] = 0.0):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.activation = activation
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.weight = nn.Parameter(torch.randn(out_features, in_features)
                                   * (weight_init / lr_multiplier))
        if bias:
            init = torch.as_tensor(np.broadcast_to(np.asarray(bias_init, dtype=np.float32),
                                                   [out_features]).copy())
            self.bias = nn.Parameter(init / lr_multiplier)
        else:
            self.bias = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear":
            return torch.addmm(b.unsqueeze(0), x, w.t()) if b is not None else x @ w.t()
        return _lrelu(x @ w.t(), b)


def _normalize_2nd_moment(x: torch.Tensor) -> torch.Tensor:
    return x * (x.square().mean(1, keepdim=True) + 1e-8).rsqrt()


class MappingNetwork(nn.Module):
    """z (and the embedded, normalised c) -> w through `num_layers` lrelu layers; broadcast to
    num_ws; `w_avg` is the running mean of w (the truncation centre)."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int, num_layers: int = 2,
                 lr_multiplier: float = 0.01, w_avg_beta: float | None = 0.998):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        self.embed = FullyConnectedLayer(c_dim, w_dim) if c_dim > 0 else None
        features = [z_dim + (w_dim if c_dim > 0 else 0)] + [w_dim] * num_layers
        for idx, (fin, fout) in enumerate(zip(features[:-1], features[1:])):
            setattr(self, f"fc{idx}", FullyConnectedLayer(fin, fout, activation="lrelu",
                                                          lr_multiplier=lr_multiplier))
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def check_c(self, c: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        """The class input as the model needs it, or a ValueError saying what is expected."""
        if self.c_dim == 0:
            if c is not None and c.numel() != 0:
                raise ValueError(f"this StyleGAN3 model is unconditional: it takes no c, got "
                                 f"a c of shape {tuple(c.shape)}")
            return None
        if c is None:
            raise ValueError(f"this StyleGAN3 model is conditional on {self.c_dim} classes: "
                             f"pass c as a [B, {self.c_dim}] one-hot tensor")
        if c.dim() != 2 or tuple(c.shape) != (batch, self.c_dim):
            raise ValueError(f"c must be [B, c_dim] = [{batch}, {self.c_dim}] (one-hot), got "
                             f"{tuple(c.shape)}")
        return c

    def map(self, z: torch.Tensor, c: torch.Tensor | None = None,
            update_emas: bool = False) -> torch.Tensor:
        """z [B, z_dim] (and c) -> w [B, w_dim]."""
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must be [B, {self.z_dim}], got {tuple(z.shape)}")
        c = self.check_c(c, z.shape[0])
        x = _normalize_2nd_moment(z.to(torch.float32))
        if self.embed is not None:
            y = _normalize_2nd_moment(self.embed(c.to(device=x.device, dtype=torch.float32)))
            x = torch.cat([x, y], dim=1)
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if update_emas and self.w_avg_beta is not None:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        return x

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None,
                truncation_psi: float = 1, truncation_cutoff: int | None = None,
                update_emas: bool = False) -> torch.Tensor:
        """NVIDIA's call: -> ws [B, num_ws, w_dim], truncated towards w_avg on the first
        `truncation_cutoff` ws (all when None) when truncation_psi != 1."""
        x = self.map(z, c, update_emas).unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            cut = self.num_ws if truncation_cutoff is None else truncation_cutoff
            x[:, :cut] = self.w_avg.lerp(x[:, :cut], truncation_psi)
        return x


class SynthesisInput(nn.Module):
    """Fourier features of `channels` frequencies (drawn in the disc of radius `bandwidth`),
    rotated and translated by an affine of w and by the user `transform`, sampled on a
    size x size grid at `sampling_rate`, then mixed by a learned [C, C] matrix."""

    def __init__(self, w_dim: int, channels: int, size: int, sampling_rate: float,
                 bandwidth: float):
        super().__init__()
        self.w_dim, self.channels = w_dim, channels
        self.size = np.broadcast_to(np.asarray(size), [2])
        self.sampling_rate, self.bandwidth = sampling_rate, bandwidth
        freqs = torch.randn([channels, 2])
        phases = torch.rand([channels])
        if not freqs.is_meta:  # a file's network (meta device) gets the file's values
            # frequencies drawn in the disc of radius `bandwidth`, phases uniform
            radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
            freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
            phases = phases - 0.5
        self.weight = nn.Parameter(torch.randn([channels, channels]))
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0, bias_init=[1, 0, 0, 0])
        self.register_buffer("transform", torch.eye(3, 3))
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", phases)

    def forward(self, w: torch.Tensor, transform: torch.Tensor | None = None) -> torch.Tensor:
        """[B, C, H, W] (channels-last memory: the features are computed pixel-major).
        `transform` ([3, 3] or [B, 3, 3]) replaces the buffer for this call only."""
        batch = w.shape[0]
        user = self.transform if transform is None else transform.to(self.transform)
        if user.shape not in ((3, 3), (batch, 3, 3)):
            raise ValueError(f"transform must be [3, 3] or [{batch}, 3, 3], got "
                             f"{tuple(user.shape)}")
        transforms = user.reshape(-1, 3, 3)
        freqs = self.freqs.unsqueeze(0)
        phases = self.phases.unsqueeze(0)
        t = self.affine(w)  # (r_c, r_s, t_x, t_y)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        eye = torch.eye(3, device=w.device, dtype=t.dtype)
        m_r = eye.repeat(batch, 1, 1)  # the inverse rotation of the image
        m_r[:, 0, 0], m_r[:, 0, 1] = t[:, 0], -t[:, 1]
        m_r[:, 1, 0], m_r[:, 1, 1] = t[:, 1], t[:, 0]
        m_t = eye.repeat(batch, 1, 1)  # the inverse translation
        m_t[:, 0, 2], m_t[:, 1, 2] = -t[:, 2], -t[:, 3]
        transforms = m_r @ m_t @ transforms
        phases = phases + (freqs @ transforms[:, :2, 2:]).squeeze(2)
        freqs = freqs @ transforms[:, :2, :2]
        # fade frequencies a user transform pushes beyond the band
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth)
                      / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        theta = torch.eye(2, 3, device=w.device)
        theta[0, 0] = 0.5 * float(self.size[0]) / self.sampling_rate
        theta[1, 1] = 0.5 * float(self.size[1]) / self.sampling_rate
        grids = F.affine_grid(theta.unsqueeze(0), [1, 1, int(self.size[1]), int(self.size[0])],
                              align_corners=False)
        x = (grids.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)
        x = x + phases.unsqueeze(1).unsqueeze(2)
        x = torch.sin(x * (np.pi * 2))
        x = x * amplitudes.unsqueeze(1).unsqueeze(2)
        weight = self.weight / np.sqrt(self.channels)
        x = x @ weight.t()
        return x.permute(0, 3, 1, 2)  # [B, C, H, W]


class SynthesisLayer(nn.Module):
    """Modulated convolution (demodulated except in ToRGB, input gain from the running
    magnitude `magnitude_ema`), then the filtered leaky ReLU: bias, upsample by up_factor,
    lrelu * sqrt 2 and clamp at the high rate, downsample by down_factor."""

    def __init__(self, w_dim: int, geo: LayerGeometry, conv_clamp: float | None = 256,
                 magnitude_ema_beta: float = 0.999):
        super().__init__()
        self.w_dim = w_dim
        self.is_torgb = geo.is_torgb
        self.is_critically_sampled = geo.is_critically_sampled
        self.use_fp16 = geo.use_fp16
        self.in_channels, self.out_channels = geo.in_channels, geo.out_channels
        self.in_size = np.broadcast_to(np.asarray(geo.in_size), [2])
        self.out_size = np.broadcast_to(np.asarray(geo.out_size), [2])
        self.in_sampling_rate = geo.in_sampling_rate
        self.out_sampling_rate = geo.out_sampling_rate
        self.tmp_sampling_rate = geo.tmp_sampling_rate
        self.in_cutoff, self.out_cutoff = geo.in_cutoff, geo.out_cutoff
        self.in_half_width, self.out_half_width = geo.in_half_width, geo.out_half_width
        self.conv_kernel = geo.conv_kernel
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta
        self.affine = FullyConnectedLayer(w_dim, geo.in_channels, bias_init=1)
        k = geo.conv_kernel
        self.weight = nn.Parameter(torch.randn([geo.out_channels, geo.in_channels, k, k]))
        self.bias = nn.Parameter(torch.zeros([geo.out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))
        self.up_factor, self.up_taps = geo.up_factor, geo.up_taps
        self.down_factor, self.down_taps = geo.down_factor, geo.down_taps
        self.down_radial = geo.down_radial
        self.register_buffer("up_filter", _filter(
            geo.up_taps, geo.in_cutoff, geo.in_half_width * 2, geo.tmp_sampling_rate))
        self.register_buffer("down_filter", _filter(
            geo.down_taps, geo.out_cutoff, geo.out_half_width * 2, geo.tmp_sampling_rate,
            radial=geo.down_radial))
        self.padding = list(geo.padding)

    def forward(self, x: torch.Tensor, w: torch.Tensor, update_emas: bool = False,
                force_fp32: bool = True) -> torch.Tensor:
        if x.shape[1:] != (self.in_channels, int(self.in_size[1]), int(self.in_size[0])):
            raise ValueError(f"synthesis layer expects [B, {self.in_channels}, "
                             f"{int(self.in_size[1])}, {int(self.in_size[0])}], got "
                             f"{tuple(x.shape)}")
        if update_emas:
            with torch.no_grad():
                current = x.detach().to(torch.float32).square().mean()
                self.magnitude_ema.copy_(current.lerp(self.magnitude_ema,
                                                      self.magnitude_ema_beta))
        input_gain = self.magnitude_ema.rsqrt()
        styles = self.affine(w)
        if self.is_torgb:
            styles = styles * (1 / np.sqrt(self.in_channels * self.conv_kernel ** 2))
        dtype = (torch.float16 if self.use_fp16 and not force_fp32 and x.device.type == "cuda"
                 else torch.float32)
        x = modulated_conv2d(x.to(dtype), self.weight, styles, demodulate=not self.is_torgb,
                             padding=self.conv_kernel - 1, input_gain=input_gain)
        gain = 1 if self.is_torgb else SQRT2
        slope = 1 if self.is_torgb else 0.2
        return filtered_lrelu(x, self.up_filter, self.down_filter, self.bias.to(x.dtype),
                              up=self.up_factor, down=self.down_factor, padding=self.padding,
                              gain=gain, slope=slope, clamp=self.conv_clamp)


def _filter(numtaps: int, cutoff: float, width: float, fs: float,
            radial: bool = False) -> torch.Tensor | None:
    """A designed filter as a float32 buffer (allocated on the current default device: the
    meta device when a file's network is built, where only its shape matters)."""
    if numtaps == 1:
        return None
    if torch.empty(0).is_meta:
        return torch.empty([numtaps, numtaps] if radial else [numtaps])
    return torch.as_tensor(design_lowpass(numtaps, cutoff, width, fs, radial),
                           dtype=torch.float32)


class SynthesisNetwork(nn.Module):
    """ws [B, num_ws, w_dim] -> image [B, img_channels, res, res] * output_scale."""

    def __init__(self, cfg: StyleGAN3Config):
        super().__init__()
        geo = synthesis_geometry(cfg)
        self.w_dim = cfg.w_dim
        self.num_ws = cfg.num_ws
        self.img_resolution, self.img_channels = cfg.img_resolution, cfg.img_channels
        self.num_layers, self.num_critical = cfg.num_layers, cfg.num_critical
        self.margin_size = cfg.margin_size
        self.output_scale = cfg.output_scale
        self.num_fp16_res = cfg.num_fp16_res
        self.geometry = geo
        gi = geo.input
        self.input = SynthesisInput(cfg.w_dim, gi.channels, gi.size, gi.sampling_rate,
                                    gi.bandwidth)
        self.layer_names: list[str] = []
        for layer in geo.layers:
            setattr(self, layer.name, SynthesisLayer(cfg.w_dim, layer, cfg.conv_clamp,
                                                     cfg.magnitude_ema_beta))
            self.layer_names.append(layer.name)

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", force_fp32: bool = True,
                update_emas: bool = False, transform: torch.Tensor | None = None,
                **_ignored) -> torch.Tensor:
        """NVIDIA's call form; `noise_mode` is accepted and ignored (no noise inputs).
        `force_fp32` False runs the use_fp16 layers in float16 on CUDA, as the original
        does by default there; here float32 is the default everywhere."""
        if noise_mode not in NVIDIA_NOISE_MODES + NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NVIDIA_NOISE_MODES}, got "
                             f"{noise_mode!r}")
        if ws.dim() != 3 or tuple(ws.shape[1:]) != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be [B, {self.num_ws}, {self.w_dim}], got "
                             f"{tuple(ws.shape)}")
        ws = ws.to(torch.float32).unbind(dim=1)
        x = self.input(ws[0], transform=transform)
        if x.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        for name, w in zip(self.layer_names, ws[1:]):
            x = getattr(self, name)(x, w, update_emas=update_emas, force_fp32=force_fp32)
        if self.output_scale != 1:
            x = x * self.output_scale
        return x.to(torch.float32).contiguous()


class Generator(nn.Module):
    """NVIDIA's StyleGAN3 Generator, plus the library's latent protocol and camera.

    Original call forms: `G(z, c, truncation_psi=1, truncation_cutoff=None,
    noise_mode='const')` -> [B, 3, H, W] in about [-1, 1]; `G.mapping(z, c, truncation_psi,
    truncation_cutoff)` -> ws; `G.synthesis(ws, noise_mode=...)`; `G.mapping.w_avg`.
    Protocol: `map_z(z, c=None)` -> w, `synthesize(w | w+, noise=, generator=, transform=)`,
    `latent_avg`, `style_layers`, `mix_styles`, `camera`."""

    def __init__(self, cfg: StyleGAN3Config):
        super().__init__()
        self.cfg = cfg
        self.z_dim, self.c_dim, self.w_dim = cfg.z_dim, cfg.c_dim, cfg.w_dim
        self.img_resolution, self.img_channels = cfg.img_resolution, cfg.img_channels
        self.synthesis = SynthesisNetwork(cfg)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(cfg.z_dim, cfg.c_dim, cfg.w_dim, self.num_ws,
                                      num_layers=cfg.mapping_layers,
                                      lr_multiplier=cfg.mapping_lr_multiplier,
                                      w_avg_beta=cfg.w_avg_beta)

    # ------------------------------------------------------------------ original call form
    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, update_emas: bool = False,
                **synthesis_kwargs) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi,
                          truncation_cutoff=truncation_cutoff, update_emas=update_emas)
        return self.synthesis(ws, update_emas=update_emas, **synthesis_kwargs)

    # ------------------------------------------------------------------ latent protocol
    @property
    def n_latent(self) -> int:
        return self.num_ws

    @property
    def latent_avg(self) -> torch.Tensor:
        """The truncation centre: the mapping network's running mean of w."""
        return self.mapping.w_avg

    def map_z(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """z [B, z_dim] (and a one-hot c [B, c_dim] for a conditional model) -> w [B, w_dim]."""
        return self.mapping.map(z, c)

    def to_w_plus(self, w: torch.Tensor) -> torch.Tensor:
        """w [B, w_dim] broadcast to every layer, or w+ [B, num_ws, w_dim] as it is."""
        if w.dim() == 2 and w.shape[1] == self.w_dim:
            return w.unsqueeze(1).expand(-1, self.num_ws, -1)
        if w.dim() == 3 and tuple(w.shape[1:]) == (self.num_ws, self.w_dim):
            return w
        raise ValueError(f"expected w as [B, {self.w_dim}] or w+ as [B, {self.num_ws}, "
                         f"{self.w_dim}], got {tuple(w.shape)}")

    def synthesize(self, w: torch.Tensor, noise: str = "fixed",
                   generator: torch.Generator | None = None,
                   transform: torch.Tensor | None = None) -> torch.Tensor:
        """Image [B, C, H, W] (about [-1, 1]) from w [B, w_dim] or w+ [B, num_ws, w_dim].
        StyleGAN3 has no noise inputs: `noise` is checked and ignored, like `generator`.
        `transform` (see `camera` / `camera_matrix`; [3, 3] or [B, 3, 3]) applies to this
        call only; None uses the module's `synthesis.input.transform` buffer."""
        if noise not in NOISE_MODES:
            raise ValueError(f"noise must be one of {NOISE_MODES}, got {noise!r}")
        return self.synthesis(self.to_w_plus(w), transform=transform)

    def camera_matrix(self, translate: Sequence[float] = (0.0, 0.0),
                      rotate_degrees: float = 0.0) -> torch.Tensor:
        """The `transform` showing the image moved by (tx, ty) image widths (+x right, +y down)
        and turned by `rotate_degrees` (see the module's `camera_matrix`), on this module's
        device."""
        return camera_matrix(translate, rotate_degrees).to(self.synthesis.input.transform)

    def camera(self, translate_px: Sequence[float] = (0.0, 0.0),
               rotate_degrees: float = 0.0) -> torch.Tensor:
        """The `transform` that moves the image by (dx, dy) output pixels (+x right, +y down)
        and rotates it by `rotate_degrees`."""
        dx, dy = (float(v) / self.img_resolution for v in translate_px)
        return camera_matrix((dx, dy), rotate_degrees).to(self.synthesis.input.transform)

    # ------------------------------------------------------------------ style mixing
    def layer_resolution(self, index: int) -> float:
        """The "resolution" (2 x cutoff) of the layer ws[:, index] drives."""
        geo = self.synthesis.geometry
        if index == 0:
            return 2 * geo.input.bandwidth
        return 2 * geo.layers[index - 1].out_cutoff

    def style_layers(self, name: str) -> list[int]:
        """ws indices of a named range ("coarse", "middle", "fine")."""
        if name not in STYLE_RANGES:
            raise ValueError(f"unknown style range {name!r}; expected one of "
                             f"{', '.join(STYLE_RANGES)}")
        lo, hi = STYLE_RANGES[name]
        found = [i for i in range(self.num_ws) if lo <= self.layer_resolution(i) < hi]
        if not found:
            raise ValueError(f"this {self.img_resolution} px StyleGAN3 has no {name!r} layers")
        return found

    def mix_styles(self, w_a: torch.Tensor, w_b: torch.Tensor,
                   layers: str | slice | Iterable[int]) -> torch.Tensor:
        """w+ taking `layers` (a named range, a slice or ws indices) from w_b, the rest from
        w_a; w_a and w_b are w or w+ (broadcast over each other's batch)."""
        a, b = self.to_w_plus(w_a), self.to_w_plus(w_b)
        if isinstance(layers, str):
            picked = self.style_layers(layers)
        elif isinstance(layers, slice):
            picked = list(range(self.num_ws))[layers]
        else:
            picked = [int(i) for i in layers]
            bad = [i for i in picked if not 0 <= i < self.num_ws]
            if bad:
                raise ValueError(f"layer indices {bad} are outside 0..{self.num_ws - 1}")
        mask = torch.zeros(self.num_ws, 1, dtype=torch.bool, device=a.device)
        mask[picked] = True
        return torch.where(mask, b, a)


D_FIELDS = ("d_architecture", "d_channel_base", "d_channel_max", "d_num_fp16_res",
            "d_conv_clamp", "d_resample_filter", "d_activation", "mbstd_group_size",
            "mbstd_num_channels", "cmap_dim", "d_mapping_layers", "d_mapping_embed_features",
            "d_mapping_layer_features", "d_mapping_activation", "d_mapping_lr_multiplier")


def discriminator_config(cfg: StyleGAN3Config) -> StyleGAN2ADAConfig:
    """The StyleGAN2-ADA config whose Discriminator is this model's D (NVIDIA's stylegan3
    repository trains with the StyleGAN2 Discriminator)."""
    return StyleGAN2ADAConfig(z_dim=cfg.z_dim, c_dim=cfg.c_dim, w_dim=cfg.w_dim,
                              img_resolution=cfg.img_resolution,
                              img_channels=cfg.img_channels,
                              **{name: getattr(cfg, name) for name in D_FIELDS})


def build_stylegan3(cfg: StyleGAN3Config) -> dict[str, nn.Module]:
    """{"G": Generator, "D": the StyleGAN2 Discriminator}."""
    return {"G": Generator(cfg), "D": Discriminator(discriminator_config(cfg))}
