"""StyleGAN2-ADA networks (Karras et al. 2020, "Training Generative Adversarial Networks with
Limited Data") laid out as NVIDIA's PyTorch pickles hold them, in plain PyTorch.

Module tree, parameter and buffer names, shapes, persistence and state_dict order equal those
of NVIDIA's stylegan2-ada-pytorch networks (and the identical StyleGAN2 of the stylegan3
repository), so `G.state_dict()` / `D.state_dict()` of their files load unchanged, and the
outputs equal theirs on the same weights. Written from the published maths and the files'
layout; no NVIDIA code. No custom CUDA ops: FIR resampling is a depthwise (transposed)
convolution, bias + activation are ordinary tensor ops; the networks run on CPU, CUDA and MPS.

The maths, as the original defines it:

* Equalized learning rate: every weight is stored at unit scale and multiplied at run time by
  `weight_gain` = lr_multiplier / sqrt(fan_in); biases by `bias_gain` = lr_multiplier.
* bias_act: x + b, activation (lrelu: slope 0.2), times the activation's gain (sqrt 2 for
  lrelu / relu) times the layer gain, then clamp to +-conv_clamp * layer gain when set.
* Modulated convolution: styles s = affine(w) (bias initialised to 1); per sample the weight is
  W * s over input channels, demodulated by rsqrt(sum((W * s)^2) + 1e-8) per output channel
  (not for ToRGB, whose styles are scaled by 1 / sqrt(fan_in) instead). "Fused" runs it as one
  grouped convolution with per-sample weights, "not fused" scales the activations before and
  after a shared-weight convolution: the same linear map. Noise (const buffer, fresh N(0, 1) or
  none, times `noise_strength`) is added before bias_act.
* Up-sampling convolution (`up=2`): a stride-2 transposed convolution with the weight as stored
  (a true convolution of the zero-inserted input), then the FIR `resample_filter` with gain 4
  and padding 1. FIR up-sampling of the RGB skip path: zero insertion, pad (2, 1), gain 4.
  Down-sampling (D): FIR with padding 2, then a stride-2 3x3 correlation; the 1x1 skip and the
  RGB path filter with padding 1 and keep every other sample. upfirdn2d is NVIDIA's: zero
  insertion, padding, a true convolution with the filter, decimation; it is computed here by a
  depthwise transposed convolution (zero insertion and filtering in one op, no zero-filled
  tensor) or a strided depthwise convolution.

Latent wiring (num_ws = 2 * log2(res) - 2): ws[0] drives b4.conv1, ws[1] b4.torgb and
b8.conv0, ws[2] b8.conv1, ws[3] b8.torgb and b16.conv0, ... The last block's ToRGB takes the
last w. Style-mixing ranges use resolution(i) = 2 ** (i // 2 + 2): "coarse" 4-8 px, "middle"
16-32 px, "fine" 64 px and up.

float16: the top `num_fp16_res` resolutions run in half precision only when asked for
(`enable_fp16()`) and on CUDA (NVIDIA's stylegan3 rule; their stylegan2-ada code also did it on
CPU, where its outputs then differ by ~1e-3). By default everything is float32.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

ARCHITECTURES = ("orig", "skip", "resnet")
# NVIDIA's bias_act activations we support, with their default gains (all the public files use
# lrelu); each is positively homogeneous, which lets a gain fold into the convolution.
ACTIVATION_GAINS = {"linear": 1.0, "relu": math.sqrt(2.0), "lrelu": math.sqrt(2.0)}
LRELU_SLOPE = 0.2
NOISE_MODES = ("const", "random", "none")
PROTOCOL_NOISE = {"fixed": "const", "random": "random", "none": "none"}
STYLE_RANGES: dict[str, tuple[int, int | None]] = {
    "coarse": (4, 8), "middle": (16, 32), "fine": (64, None)}
# Device types on which enable_fp16() takes effect (NVIDIA's stylegan3 runs fp16 on CUDA only).
FP16_DEVICES = ("cuda",)
# On the CPU the 3x3 convolutions are faster in channels_last from this resolution on.
CPU_CHANNELS_LAST_MIN_RES = 32
MAX_RESOLUTION = 1 << 15
MAX_FEATURES = 1 << 16


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(name: str, value, lo: int, hi: int | None = None, none_ok: bool = False) -> None:
    if value is None and none_ok:
        return
    if not _is_int(value) or value < lo or (hi is not None and value > hi):
        span = f">= {lo}" if hi is None else f"between {lo} and {hi}"
        extra = " or None" if none_ok else ""
        raise ValueError(f"stylegan2_ada {name} must be an integer {span}{extra}, got {value!r}")


def _check_number(name: str, value, positive: bool = True, none_ok: bool = False) -> float | None:
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or (positive and not value > 0):
        extra = " or None" if none_ok else ""
        raise ValueError(f"stylegan2_ada {name} must be a {'positive ' if positive else ''}"
                         f"finite number{extra}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class StyleGAN2ADAConfig:
    """What rebuilds NVIDIA's StyleGAN2-ADA G and D (their constructor arguments, flattened).

    G: `Generator(z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs,
    synthesis_kwargs)`: the `mapping_*` fields and `w_avg_beta` are its mapping_kwargs,
    `channel_base` ... `activation` its synthesis_kwargs. D: `Discriminator(c_dim,
    img_resolution, img_channels, architecture, channel_base, channel_max, num_fp16_res,
    conv_clamp, cmap_dim, block_kwargs, mapping_kwargs, epilogue_kwargs)`: the `d_*`,
    `mbstd_*` and `cmap_dim` fields. Channels at resolution r are min(channel_base // r,
    channel_max). `fused_modconv`: how G runs its modulated convolutions (None: the fastest for
    the device and batch; True: grouped convolution; False: activation scaling); no effect on
    the results beyond float rounding.
    """

    z_dim: int = 512
    c_dim: int = 0
    w_dim: int = 512
    img_resolution: int = 1024
    img_channels: int = 3
    # G mapping network
    mapping_layers: int = 8
    mapping_embed_features: int | None = None  # None: w_dim
    mapping_layer_features: int | None = None  # None: w_dim
    mapping_activation: str = "lrelu"
    mapping_lr_multiplier: float = 0.01
    w_avg_beta: float | None = 0.995  # None: no w_avg buffer (no truncation)
    # G synthesis network
    channel_base: int = 32768
    channel_max: int = 512
    architecture: str = "skip"
    num_fp16_res: int = 0
    conv_clamp: float | None = None
    resample_filter: tuple[float, ...] = (1, 3, 3, 1)
    use_noise: bool = True
    activation: str = "lrelu"
    fused_modconv: bool | None = None
    # D
    d_architecture: str = "resnet"
    d_channel_base: int = 32768
    d_channel_max: int = 512
    d_num_fp16_res: int = 0
    d_conv_clamp: float | None = None
    d_resample_filter: tuple[float, ...] = (1, 3, 3, 1)
    d_activation: str = "lrelu"
    mbstd_group_size: int | None = 4  # None: the whole minibatch
    mbstd_num_channels: int = 1  # 0: no minibatch-stddev layer
    cmap_dim: int | None = None  # None: D's channels at 4 px
    d_mapping_layers: int = 8
    d_mapping_embed_features: int | None = None
    d_mapping_layer_features: int | None = None
    d_mapping_activation: str = "lrelu"
    d_mapping_lr_multiplier: float = 0.01

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - frozen dataclass
        r = self.img_resolution
        if not _is_int(r) or r < 8 or r > MAX_RESOLUTION or r & (r - 1):
            raise ValueError(f"stylegan2_ada img_resolution must be a power of two between 8 "
                             f"and {MAX_RESOLUTION}, got {r!r}")
        _check_int("z_dim", self.z_dim, 1, MAX_FEATURES)
        _check_int("c_dim", self.c_dim, 0, MAX_FEATURES)
        _check_int("w_dim", self.w_dim, 1, MAX_FEATURES)
        _check_int("img_channels", self.img_channels, 1, 64)
        _check_int("mapping_layers", self.mapping_layers, 1, 64)
        _check_int("d_mapping_layers", self.d_mapping_layers, 0, 64)
        for name in ("mapping_embed_features", "mapping_layer_features", "cmap_dim",
                     "d_mapping_embed_features", "d_mapping_layer_features"):
            _check_int(name, getattr(self, name), 1, MAX_FEATURES, none_ok=True)
        for name in ("channel_base", "d_channel_base"):
            _check_int(name, getattr(self, name), 1, MAX_FEATURES * MAX_RESOLUTION)
        for name in ("channel_max", "d_channel_max"):
            _check_int(name, getattr(self, name), 1, MAX_FEATURES)
        for name in ("num_fp16_res", "d_num_fp16_res"):
            _check_int(name, getattr(self, name), 0, 64)
        for name in ("architecture", "d_architecture"):
            if getattr(self, name) not in ARCHITECTURES:
                raise ValueError(f"stylegan2_ada {name} must be one of {ARCHITECTURES}, "
                                 f"got {getattr(self, name)!r}")
        for name in ("mapping_activation", "activation", "d_activation", "d_mapping_activation"):
            if getattr(self, name) not in ACTIVATION_GAINS:
                raise ValueError(f"stylegan2_ada {name} must be one of "
                                 f"{tuple(ACTIVATION_GAINS)}, got {getattr(self, name)!r}")
        for name in ("mapping_lr_multiplier", "d_mapping_lr_multiplier"):
            set_(name, _check_number(name, getattr(self, name)))
        for name in ("conv_clamp", "d_conv_clamp"):
            set_(name, _check_number(name, getattr(self, name), none_ok=True))
        beta = self.w_avg_beta
        if beta is not None:
            beta = _check_number("w_avg_beta", beta, positive=False)
            if not 0.0 <= beta <= 1.0:
                raise ValueError(f"stylegan2_ada w_avg_beta must be between 0 and 1 or None, "
                                 f"got {self.w_avg_beta!r}")
        set_("w_avg_beta", beta)
        for name in ("resample_filter", "d_resample_filter"):
            taps = getattr(self, name)
            if isinstance(taps, (list, tuple)) and taps and all(
                    not isinstance(t, bool) and isinstance(t, (int, float)) and math.isfinite(t)
                    for t in taps) and 1 <= len(taps) <= 16 and sum(taps) != 0:
                set_(name, tuple(float(t) for t in taps))
            else:
                raise ValueError(f"stylegan2_ada {name} must be 1-16 finite taps with a "
                                 f"non-zero sum, got {taps!r}")
        for name in ("use_noise",):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"stylegan2_ada {name} must be true or false, "
                                 f"got {getattr(self, name)!r}")
        if self.fused_modconv not in (None, True, False):
            raise ValueError(f"stylegan2_ada fused_modconv must be true, false or None, got "
                             f"{self.fused_modconv!r}")
        _check_int("mbstd_group_size", self.mbstd_group_size, 1, 1 << 20, none_ok=True)
        _check_int("mbstd_num_channels", self.mbstd_num_channels, 0, MAX_FEATURES)
        d4 = self.d_channels(4)
        if self.mbstd_num_channels and d4 % self.mbstd_num_channels:
            raise ValueError(f"stylegan2_ada mbstd_num_channels={self.mbstd_num_channels} must "
                             f"divide D's {d4} channels at 4 px")

    # ------------------------------------------------------------------ derived values
    @property
    def log2_resolution(self) -> int:
        return self.img_resolution.bit_length() - 1

    @property
    def num_ws(self) -> int:
        """w vectors synthesis takes: one per conv layer plus the last ToRGB."""
        return 2 * self.log2_resolution - 2

    @property
    def latent_dim(self) -> int:
        return self.z_dim

    def channels(self, res: int) -> int:
        """G's channels at resolution `res`."""
        return min(self.channel_base // res, self.channel_max)

    def d_channels(self, res: int) -> int:
        return min(self.d_channel_base // res, self.d_channel_max)

    @property
    def resolved_cmap_dim(self) -> int:
        if self.c_dim == 0:
            return 0
        return self.cmap_dim if self.cmap_dim is not None else self.d_channels(4)


def layer_resolution(index: int) -> int:
    """The resolution (px) w index `index` is attributed to for style mixing."""
    return 2 ** (index // 2 + 2)


# --------------------------------------------------------------------------- primitives


def setup_filter(taps: Sequence[float]) -> torch.Tensor:
    """NVIDIA's resample_filter buffer: the taps' outer product normalised to sum 1 ([n, n]);
    eight or more taps stay 1-D (applied separably), as their setup_filter stores them."""
    f = torch.tensor([float(t) for t in taps], dtype=torch.float32)
    if f.numel() < 8:
        f = torch.outer(f, f)
    return f / f.sum()


def _filter_2d(f: torch.Tensor) -> torch.Tensor:
    """A stored filter as 2-D taps (a 1-D buffer is separable: its outer product, gains per
    axis multiply to the same total)."""
    return torch.outer(f, f) if f.dim() == 1 else f


def _filter_size(f: torch.Tensor) -> tuple[int, int]:
    """(fw, fh) of a stored filter."""
    return (int(f.shape[-1]), int(f.shape[0]))


def upfirdn2d(x: torch.Tensor, f: torch.Tensor, up: int = 1, down: int = 1,
              pad: tuple[int, int, int, int] = (0, 0, 0, 0), gain: float = 1.0,
              bias: torch.Tensor | None = None) -> torch.Tensor:
    """NVIDIA's upfirdn2d on [N, C, H, W]: insert up-1 zeros after each sample, pad
    (x0, x1, y0, y1) (negative crops), convolve (a true convolution) with the filter times
    `gain`, keep every `down`-th sample; `bias` [C] is added to the result.

    Up-sampling runs as a depthwise transposed convolution (zero insertion and filter at once),
    everything else as a (strided) depthwise convolution."""
    c = x.shape[1]
    taps = (_filter_2d(f).to(device=x.device, dtype=torch.float32) * gain).to(x.dtype)
    fh, fw = taps.shape
    px0, px1, py0, py1 = pad
    if up > 1:
        h, w = x.shape[2], x.shape[3]
        # y[m] = z[m + f - 1 - p0] where z = conv_transpose(x, taps, stride=up) (full length
        # (n - 1) * up + f) and y has n * up + p0 + p1 - f + 1 samples.
        sy, sx = fh - 1 - py0, fw - 1 - px0
        ey = (h - 1) * up + fh - (sy + h * up + py0 + py1 - fh + 1)
        ex = (w - 1) * up + fw - (sx + w * up + px0 + px1 - fw + 1)
        ph, pw = max(0, min(sy, ey)), max(0, min(sx, ex))
        weight = taps[None, None].expand(c, 1, fh, fw).contiguous()
        x = F.conv_transpose2d(x, weight, stride=up, padding=(ph, pw), groups=c)
        rest = (pw - sx, pw - ex, ph - sy, ph - ey)
        if any(rest):
            x = F.pad(x, rest)
        if bias is not None:
            x = x + bias.to(x.dtype).view(1, -1, 1, 1)
        if down > 1:
            x = x[:, :, ::down, ::down]
        return x
    weight = taps.flip([0, 1])[None, None].expand(c, 1, fh, fw).contiguous()
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        padding = (py0, px0)
    else:
        x = F.pad(x, (px0, px1, py0, py1))
        padding = (0, 0)
    b = bias.to(x.dtype) if bias is not None else None
    return F.conv2d(x, weight, b, stride=down, padding=padding, groups=c)


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2) -> torch.Tensor:
    """NVIDIA's upsample2d: upfirdn2d with padding ((f + up - 1) // 2, (f - up) // 2), gain up^2."""
    fw, fh = _filter_size(f)
    return upfirdn2d(x, f, up=up, pad=((fw + up - 1) // 2, (fw - up) // 2,
                                       (fh + up - 1) // 2, (fh - up) // 2), gain=up * up)


def downsample2d(x: torch.Tensor, f: torch.Tensor, down: int = 2) -> torch.Tensor:
    """NVIDIA's downsample2d: upfirdn2d with padding ((f - down + 1) // 2, (f - down) // 2)."""
    fw, fh = _filter_size(f)
    return upfirdn2d(x, f, down=down, pad=((fw - down + 1) // 2, (fw - down) // 2,
                                           (fh - down + 1) // 2, (fh - down) // 2))


def _up_conv_pads(kernel: int, f: torch.Tensor, up: int, padding: int) -> tuple[int, tuple]:
    """The transposed convolution's padding and the FIR padding that follow it for an
    up-sampling conv (NVIDIA's conv2d_resample arithmetic)."""
    fw, fh = _filter_size(f)
    px0 = padding + (fw + up - 1) // 2 - (kernel - 1)
    px1 = padding + (fw - up) // 2 - (kernel - up)
    py0 = padding + (fh + up - 1) // 2 - (kernel - 1)
    py1 = padding + (fh - up) // 2 - (kernel - up)
    pxt = max(min(-px0, -px1), 0)
    pyt = max(min(-py0, -py1), 0)
    return (pyt, pxt), (px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt)


def _grad_free(*tensors: torch.Tensor) -> bool:
    """In-place activation is safe: nothing here is recorded for autograd."""
    return not torch.is_grad_enabled() or not any(t.requires_grad for t in tensors)


def _finish(x: torch.Tensor, act: str, clamp: float | None, noise: torch.Tensor | None = None,
            inplace: bool = True) -> torch.Tensor:
    """x (+ noise), then the activation and clamp of bias_act, for a pre-scaled x (the gain and
    bias are already in it: the activations are positively homogeneous)."""
    if inplace:
        if noise is not None:
            x.add_(noise)
        if act == "lrelu":
            F.leaky_relu_(x, LRELU_SLOPE)
        elif act == "relu":
            x.relu_()
        if clamp is not None:
            x.clamp_(-clamp, clamp)
        return x
    if noise is not None:
        x = x + noise
    if act == "lrelu":
        x = F.leaky_relu(x, LRELU_SLOPE)
    elif act == "relu":
        x = F.relu(x)
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def bias_act(x: torch.Tensor, b: torch.Tensor | None, act: str = "linear", gain: float = 1.0,
             clamp: float | None = None) -> torch.Tensor:
    """NVIDIA's bias_act: x + b (over dim 1), activation, times its default gain and `gain`,
    clamp to +-clamp."""
    if b is not None:
        x = x + b.to(x.dtype).view(1, -1, *([1] * (x.dim() - 2)))
    if act == "lrelu":
        x = F.leaky_relu(x, LRELU_SLOPE)
    elif act == "relu":
        x = F.relu(x)
    g = ACTIVATION_GAINS[act] * gain
    if g != 1:
        x = x * g
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


# --------------------------------------------------------------------------- layers


class FullyConnectedLayer(nn.Module):
    """Dense layer with equalized learning rate: weight [out, in] (stored / lr_multiplier),
    bias [out] (or none); y = bias_act(x W^T * weight_gain, b * bias_gain)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 activation: str = "linear", lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear":
            return F.linear(x, w, b)
        return bias_act(F.linear(x, w), b, act=self.activation)


class Conv2dLayer(nn.Module):
    """Convolution with equalized learning rate, optional FIR up/down-sampling by 2 and
    bias_act (D's layers, G's resnet skip). `forward(x, gain)` multiplies the activation gain
    and the clamp by `gain`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, down: int = 1,
                 resample_filter: Sequence[float] = (1, 3, 3, 1), conv_clamp: float | None = None):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size ** 2)
        self.act_gain = ACTIVATION_GAINS[activation]
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size,
                                                kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        g = self.act_gain * gain
        w = (self.weight * (self.weight_gain * g)).to(x.dtype)
        b = (self.bias * g).to(x.dtype) if self.bias is not None else None
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        f = self.resample_filter
        k = w.shape[-1]
        fw, fh = _filter_size(f)
        p = self.padding
        if self.down > 1:
            d = self.down
            pad = (p + (fw - d + 1) // 2, p + (fw - d) // 2,
                   p + (fh - d + 1) // 2, p + (fh - d) // 2)
            if k == 1:  # filter and decimate first, then the 1x1 conv
                x = F.conv2d(upfirdn2d(x, f, down=d, pad=pad), w, b)
            else:
                x = F.conv2d(upfirdn2d(x, f, pad=pad), w, b, stride=d)
        elif self.up > 1:
            u = self.up
            if k == 1:  # the 1x1 conv first, then up-sample (bias after the filter)
                pad = (p + (fw + u - 1) // 2, p + (fw - u) // 2,
                       p + (fh + u - 1) // 2, p + (fh - u) // 2)
                x = upfirdn2d(F.conv2d(x, w), f, up=u, pad=pad, gain=u * u, bias=b)
            else:
                tpad, fpad = _up_conv_pads(k, f, u, p)
                x = F.conv_transpose2d(x, w.transpose(0, 1), stride=u, padding=tpad)
                x = upfirdn2d(x, f, pad=fpad, gain=u * u, bias=b)
        else:
            x = F.conv2d(x, w, b, padding=p)
        return _finish(x, self.activation, clamp, inplace=_grad_free(x))


class MinibatchStdLayer(nn.Module):
    """Appends the mean (over channels and pixels) of the standard deviation over groups of
    `group_size` samples (sample i is in group i mod N/G), `num_channels` features."""

    def __init__(self, group_size: int | None, num_channels: int = 1):
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        f = self.num_channels
        if n % g:
            raise ValueError(f"the minibatch-stddev layer takes batches divisible by its group "
                             f"size {g}, got a batch of {n}")
        y = x.reshape(g, -1, f, c // f, h, w)
        y = y - y.mean(dim=0)
        y = y.square().mean(dim=0)
        y = (y + 1e-8).sqrt()
        y = y.mean(dim=[2, 3, 4])
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


# --------------------------------------------------------------------------- mapping


class MappingNetwork(nn.Module):
    """z (and a label c through `embed`) -> w: 2nd-moment normalisation, `num_layers` dense
    layers; `w_avg` tracks the mean w (the truncation centre). D uses one (z_dim 0, no
    broadcast, no w_avg) to map its label to `cmap`."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int | None,
                 num_layers: int = 8, embed_features: int | None = None,
                 layer_features: int | None = None, activation: str = "lrelu",
                 lr_multiplier: float = 0.01, w_avg_beta: float | None = 0.995):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            setattr(self, f"fc{idx}", FullyConnectedLayer(
                features[idx], features[idx + 1], activation=activation,
                lr_multiplier=lr_multiplier))
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def check_inputs(self, z: torch.Tensor | None, c: torch.Tensor | None) -> None:
        if self.z_dim > 0:
            if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != self.z_dim:
                shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
                raise ValueError(f"expected z as [B, {self.z_dim}], got {shape}")
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"this is a conditional model: it needs a label c of shape "
                                 f"[B, {self.c_dim}] (one-hot for class-conditional models)")
            if not isinstance(c, torch.Tensor) or c.dim() != 2 or c.shape[1] != self.c_dim:
                shape = tuple(c.shape) if isinstance(c, torch.Tensor) else type(c).__name__
                raise ValueError(f"expected the label c as [B, {self.c_dim}], got {shape}")
            if self.z_dim > 0 and c.shape[0] != z.shape[0]:
                raise ValueError(f"z has {z.shape[0]} rows but c has {c.shape[0]}")

    def embed_inputs(self, z: torch.Tensor | None, c: torch.Tensor | None) -> torch.Tensor:
        """The untruncated, unbroadcast w [B, w_dim]."""
        self.check_inputs(z, c)
        x = None
        if self.z_dim > 0:
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        return x

    def forward(self, z: torch.Tensor | None, c: torch.Tensor | None = None,
                truncation_psi: float = 1, truncation_cutoff: int | None = None,
                update_emas: bool = False) -> torch.Tensor:
        x = self.embed_inputs(z, c)
        if update_emas and self.w_avg_beta is not None and self.num_ws is not None:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            if self.w_avg_beta is None or self.num_ws is None:
                raise ValueError("truncation needs the mapping network's w_avg, which this "
                                 "model does not track (w_avg_beta None)")
            avg = self.w_avg.to(x.dtype)
            if truncation_cutoff is None:
                x = avg.lerp(x, truncation_psi)
            else:
                x[:, :truncation_cutoff] = avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x


# --------------------------------------------------------------------------- synthesis


def _cpu_channels_last(x: torch.Tensor, res: int) -> bool:
    return x.device.type == "cpu" and res >= CPU_CHANNELS_LAST_MIN_RES


class SynthesisLayer(nn.Module):
    """One modulated 3x3 convolution (optionally up-sampling by 2), noise, bias_act."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 kernel_size: int = 3, up: int = 1, use_noise: bool = True,
                 activation: str = "lrelu", resample_filter: Sequence[float] = (1, 3, 3, 1),
                 conv_clamp: float | None = None):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = ACTIVATION_GAINS[activation]
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size,
                                                kernel_size]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random",
                fused_modconv: bool | None = None, gain: float = 1.0,
                noise: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, in, r/up, r/up], w [B, w_dim] -> [B, out, r, r]. `noise` ([B or 1, 1, r, r])
        replaces the noise_mode's noise when given."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        batch, dtype = x.shape[0], x.dtype
        r = self.resolution
        styles = self.affine(w)  # [B, I] float32
        weight = self.weight
        o, i, kh, kw = weight.shape
        if dtype == torch.float16:  # pre-normalise (demodulation undoes it) against overflow
            weight = weight * (1 / math.sqrt(i * kh * kw)
                               / weight.abs().amax(dim=[1, 2, 3], keepdim=True))
            styles = styles / styles.abs().amax(dim=1, keepdim=True)
        g = self.act_gain * gain
        # demodulation: sum over in, kh, kw of (W s)^2 = s^2 @ (sum over kh, kw of W^2)
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()
        scale = dcoefs * g  # [B, O]: demodulation and activation gain (lrelu is homogeneous)
        bias = self.bias * g
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None

        if self.use_noise and noise is None:
            if noise_mode == "random":
                noise = torch.randn([batch, 1, r, r], device=x.device)
            elif noise_mode == "const":
                noise = self.noise_const
        if self.use_noise and noise is not None:
            noise = (noise * (self.noise_strength * g)).to(dtype)
        else:
            noise = None

        if fused_modconv is None:
            fused_modconv = batch == 1 or (x.device.type != "cpu" and dtype == torch.float32)
        f = self.resample_filter
        if fused_modconv:
            wb = weight.unsqueeze(0) * styles.reshape(batch, 1, -1, 1, 1) \
                * scale.reshape(batch, -1, 1, 1, 1)  # [B, O, I, k, k]
            wb = wb.to(dtype)
            # (batch 1: x itself; a reshape would lose its channels_last strides' meaning)
            xg = x if batch == 1 else x.reshape(1, batch * i, *x.shape[2:])
            bb = bias.to(dtype).repeat(batch)
            if self.up > 1:
                tpad, fpad = _up_conv_pads(kw, f, self.up, self.padding)
                wt = wb.transpose(1, 2).reshape(batch * i, o, kh, kw)
                y = F.conv_transpose2d(xg, wt, stride=self.up, padding=tpad, groups=batch)
                y = upfirdn2d(y, f, pad=fpad, gain=self.up ** 2, bias=bb)
            else:
                y = F.conv2d(xg, wb.reshape(batch * o, i, kh, kw), bb, padding=self.padding,
                             groups=batch)
            if batch > 1:
                y = y.reshape(batch, o, *y.shape[2:])
        else:
            xs = x * styles.to(dtype).reshape(batch, -1, 1, 1)
            wd = weight.to(dtype)
            if self.up > 1:
                tpad, fpad = _up_conv_pads(kw, f, self.up, self.padding)
                y = F.conv_transpose2d(xs, wd.transpose(0, 1), stride=self.up, padding=tpad)
                y = upfirdn2d(y, f, pad=fpad, gain=self.up ** 2)
            else:
                y = F.conv2d(xs, wd, padding=self.padding)
            sb = scale.to(dtype).reshape(batch, -1, 1, 1)
            bb = bias.to(dtype).reshape(1, -1, 1, 1)
            if _grad_free(y):
                y.mul_(sb).add_(bb)
            else:
                y = torch.addcmul(bb, y, sb)
        return _finish(y, self.activation, clamp, noise, inplace=_grad_free(y))


class ToRGBLayer(nn.Module):
    """1x1 modulated convolution (no demodulation; styles scaled by 1/sqrt(fan_in)) + bias,
    clamped to +-conv_clamp."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp: float | None = None):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size,
                                                kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size ** 2)

    def forward(self, x: torch.Tensor, w: torch.Tensor,
                fused_modconv: bool | None = None) -> torch.Tensor:
        batch, dtype = x.shape[0], x.dtype
        styles = self.affine(w) * self.weight_gain  # [B, I]
        o, i, kh, kw = self.weight.shape
        wb = (self.weight.unsqueeze(0) * styles.reshape(batch, 1, -1, 1, 1)).to(dtype)
        h, wd = x.shape[2], x.shape[3]
        if kh == 1 and kw == 1:
            mats = wb.reshape(batch, o, i)
            if x.is_contiguous():  # [B, I, HW] -> [B, O, HW]
                y = torch.bmm(mats, x.reshape(batch, i, h * wd)).reshape(batch, o, h, wd)
            elif x.is_contiguous(memory_format=torch.channels_last):  # [B, HW, I] @ [B, I, O]
                y = torch.bmm(x.permute(0, 2, 3, 1).reshape(batch, h * wd, i),
                              mats.transpose(1, 2)).reshape(batch, h, wd, o).permute(0, 3, 1, 2)
            else:
                y = torch.einsum("boi,bihw->bohw", mats, x)
        else:
            y = F.conv2d(x.reshape(1, batch * i, h, wd), wb.reshape(batch * o, i, kh, kw),
                         padding=kh // 2, groups=batch).reshape(batch, o, h, wd)
        y = y + self.bias.to(dtype).view(1, -1, 1, 1)
        if self.conv_clamp is not None:
            y = y.clamp(-self.conv_clamp, self.conv_clamp)
        return y


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network: the learned constant (4 px) or an up-sampling
    conv0, conv1, ToRGB (every block for 'skip', the last for 'orig' / 'resnet'), and the 1x1
    up-sampling skip for 'resnet'."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 img_channels: int, is_last: bool, architecture: str = "skip",
                 resample_filter: Sequence[float] = (1, 3, 3, 1),
                 conv_clamp: float | None = None, use_fp16: bool = False,
                 use_noise: bool = True, activation: str = "lrelu"):
        super().__init__()
        self.in_channels = in_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0
        layer = dict(w_dim=w_dim, resolution=resolution, use_noise=use_noise,
                     activation=activation, conv_clamp=conv_clamp)
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=2,
                                        resample_filter=resample_filter, **layer)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, **layer)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim,
                                    conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor,
                noise_mode: str = "random", fused_modconv: bool | None = None,
                fp16: bool = False, noises: Sequence[torch.Tensor | None] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        w_iter = iter(ws.unbind(dim=1))
        noise_iter = iter(noises if noises is not None else [None] * self.num_conv)
        dtype = torch.float16 if fp16 and self.use_fp16 else torch.float32
        if self.in_channels == 0:
            x = self.const.to(dtype).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
        else:
            x = x.to(dtype)
        if _cpu_channels_last(x, self.resolution):
            # CPU convolutions are faster in channels_last; a batch > 1 then scales the
            # activations (a grouped conv would need the channels-first layout back)
            if fused_modconv is None and x.shape[0] > 1:
                fused_modconv = False
            if not fused_modconv or x.shape[0] == 1:
                x = x.contiguous(memory_format=torch.channels_last)
        kw = dict(noise_mode=noise_mode, fused_modconv=fused_modconv)
        if self.in_channels == 0:
            x = self.conv1(x, next(w_iter), noise=next(noise_iter), **kw)
        elif self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_iter), noise=next(noise_iter), **kw)
            x = self.conv1(x, next(w_iter), gain=math.sqrt(0.5), noise=next(noise_iter), **kw)
            x = y.add_(x) if _grad_free(x, y) else y + x
        else:
            x = self.conv0(x, next(w_iter), noise=next(noise_iter), **kw)
            x = self.conv1(x, next(w_iter), noise=next(noise_iter), **kw)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=kw["fused_modconv"])
            y = y.to(dtype=torch.float32).contiguous()
            img = y if img is None else (img.add_(y) if _grad_free(img, y) else img + y)
        return x, img


class SynthesisNetwork(nn.Module):
    """ws [B, num_ws, w_dim] -> image [B, img_channels, res, res] in about [-1, 1]."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int,
                 channel_base: int = 32768, channel_max: int = 512, num_fp16_res: int = 0,
                 architecture: str = "skip", resample_filter: Sequence[float] = (1, 3, 3, 1),
                 conv_clamp: float | None = None, use_noise: bool = True,
                 activation: str = "lrelu"):
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = img_resolution.bit_length() - 1
        self.img_channels = img_channels
        self.num_fp16_res = num_fp16_res
        self.block_resolutions = [2 ** i for i in range(2, self.img_resolution_log2 + 1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(
                channels[res // 2] if res > 4 else 0, channels[res], w_dim=w_dim,
                resolution=res, img_channels=img_channels, is_last=res == img_resolution,
                architecture=architecture, resample_filter=resample_filter,
                conv_clamp=conv_clamp, use_fp16=res >= fp16_resolution, use_noise=use_noise,
                activation=activation)
            self.num_ws += block.num_conv + (block.num_torgb if res == img_resolution else 0)
            setattr(self, f"b{res}", block)
        self.fp16_enabled = False

    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def noise_shapes(self) -> list[tuple[int, int]]:
        """(block index, resolution) of every noise input, in the order layers draw them."""
        return [(k, b.resolution) for k, b in enumerate(self.blocks())
                for _ in range(b.num_conv)]

    def forward(self, ws: torch.Tensor, noise_mode: str = "random",
                fused_modconv: bool | None = None, force_fp32: bool | None = None,
                noises: Sequence[torch.Tensor | None] | None = None) -> torch.Tensor:
        """`noises`: one tensor ([B or 1, 1, r, r]) or None per conv layer, in order; a tensor
        replaces that layer's noise_mode noise."""
        if ws.dim() != 3 or tuple(ws.shape[1:]) != (self.num_ws, self.w_dim):
            raise ValueError(f"expected ws as [B, {self.num_ws}, {self.w_dim}], "
                             f"got {tuple(ws.shape)}")
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        if force_fp32 is None:
            force_fp32 = not self.fp16_enabled
        fp16 = not force_fp32 and ws.device.type in FP16_DEVICES
        ws = ws.to(torch.float32)
        noise_list = list(noises) if noises is not None else None
        if noise_list is not None and len(noise_list) != len(self.noise_shapes()):
            raise ValueError(f"noises must hold {len(self.noise_shapes())} entries (one per "
                             f"conv layer), got {len(noise_list)}")
        x = img = None
        w_idx = n_idx = 0
        for block in self.blocks():
            cur = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            part = noise_list[n_idx:n_idx + block.num_conv] if noise_list is not None else None
            x, img = block(x, img, cur, noise_mode=noise_mode, fused_modconv=fused_modconv,
                           fp16=fp16, noises=part)
            w_idx += block.num_conv
            n_idx += block.num_conv
        return img


class Generator(nn.Module):
    """NVIDIA's Generator: `G(z, c, truncation_psi, truncation_cutoff, noise_mode)` -> image
    NCHW in about [-1, 1]; `G.mapping(z, c, ...)` -> ws [B, num_ws, w_dim];
    `G.synthesis(ws, noise_mode=...)`. Plus the library's latent protocol (map_z, synthesize,
    latent_avg, style_layers, mix_styles)."""

    def __init__(self, cfg: StyleGAN2ADAConfig):
        super().__init__()
        self.cfg = cfg
        self.z_dim = cfg.z_dim
        self.c_dim = cfg.c_dim
        self.w_dim = cfg.w_dim
        self.img_resolution = cfg.img_resolution
        self.img_channels = cfg.img_channels
        self.synthesis = SynthesisNetwork(
            w_dim=cfg.w_dim, img_resolution=cfg.img_resolution, img_channels=cfg.img_channels,
            channel_base=cfg.channel_base, channel_max=cfg.channel_max,
            num_fp16_res=cfg.num_fp16_res, architecture=cfg.architecture,
            resample_filter=cfg.resample_filter, conv_clamp=cfg.conv_clamp,
            use_noise=cfg.use_noise, activation=cfg.activation)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            z_dim=cfg.z_dim, c_dim=cfg.c_dim, w_dim=cfg.w_dim, num_ws=self.num_ws,
            num_layers=cfg.mapping_layers, embed_features=cfg.mapping_embed_features,
            layer_features=cfg.mapping_layer_features, activation=cfg.mapping_activation,
            lr_multiplier=cfg.mapping_lr_multiplier, w_avg_beta=cfg.w_avg_beta)

    def enable_fp16(self, enabled: bool = True) -> "Generator":
        """Run the top num_fp16_res resolutions in float16 on CUDA (off by default)."""
        self.synthesis.fp16_enabled = bool(enabled)
        return self

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, noise_mode: str = "const",
                fused_modconv: bool | None = None, force_fp32: bool | None = None,
                update_emas: bool = False) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi,
                          truncation_cutoff=truncation_cutoff, update_emas=update_emas)
        return self.synthesis(ws, noise_mode=noise_mode, fused_modconv=self._fused(fused_modconv),
                              force_fp32=force_fp32)

    def _fused(self, fused_modconv: bool | None) -> bool | None:
        return self.cfg.fused_modconv if fused_modconv is None else fused_modconv

    # ------------------------------------------------------------------ latent protocol
    @property
    def n_latent(self) -> int:
        return self.num_ws

    @property
    def latent_avg(self) -> torch.Tensor | None:
        """The file's tracked mean w (`mapping.w_avg`), the truncation centre."""
        return getattr(self.mapping, "w_avg", None)

    def map_z(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """z [B, z_dim] (and the label c [B, c_dim] of a conditional model) -> w [B, w_dim],
        the mapping's output for one layer, untruncated."""
        return self.mapping.embed_inputs(z, c)

    def to_w_plus(self, w: torch.Tensor) -> torch.Tensor:
        """w [B, w_dim] broadcast to every layer, or w+ [B, num_ws, w_dim] as it is."""
        if w.dim() == 2 and w.shape[1] == self.w_dim:
            return w.unsqueeze(1).expand(-1, self.num_ws, -1)
        if w.dim() == 3 and tuple(w.shape[1:]) == (self.num_ws, self.w_dim):
            return w
        raise ValueError(f"expected w as [B, {self.w_dim}] or w+ as [B, {self.num_ws}, "
                         f"{self.w_dim}], got {tuple(w.shape)}")

    def make_noise(self, batch: int = 1,
                   generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Standard-normal noise for every conv layer, [batch, 1, r, r] each, drawn in layer
        order from `generator` (the global RNG when None) on its device, moved to G's."""
        ref = self.synthesis.b4.const
        dev = generator.device if generator is not None else ref.device
        return [torch.randn(batch, 1, r, r, generator=generator, device=dev).to(ref.device)
                for _, r in self.synthesis.noise_shapes()]

    def synthesize(self, w: torch.Tensor, noise: str = "fixed",
                   generator: torch.Generator | None = None) -> torch.Tensor:
        """Image [B, C, H, W] (about [-1, 1]) from w [B, w_dim] or w+ [B, num_ws, w_dim].
        noise "fixed": the file's noise_const buffers (NVIDIA's noise_mode 'const');
        "random": fresh per sample, from `generator` when given; "none": no noise."""
        if noise not in PROTOCOL_NOISE:
            raise ValueError(f"noise must be one of {tuple(PROTOCOL_NOISE)}, got {noise!r}")
        ws = self.to_w_plus(w)
        noises = None
        if noise == "random" and generator is not None:
            noises = self.make_noise(ws.shape[0], generator)
        return self.synthesis(ws, noise_mode=PROTOCOL_NOISE[noise],
                              fused_modconv=self._fused(None), noises=noises)

    def style_layers(self, name: str) -> list[int]:
        """w indices of a named range ("coarse", "middle", "fine") at this resolution."""
        if name not in STYLE_RANGES:
            raise ValueError(f"unknown style range {name!r}; expected one of "
                             f"{', '.join(STYLE_RANGES)}")
        lo, hi = STYLE_RANGES[name]
        found = [i for i in range(self.num_ws)
                 if lo <= layer_resolution(i) and (hi is None or layer_resolution(i) <= hi)]
        if not found:
            raise ValueError(f"a {self.img_resolution} px StyleGAN2-ADA has no {name!r} layers "
                             f"({lo}{f'-{hi}' if hi else '+'} px)")
        return found

    def mix_styles(self, w_a: torch.Tensor, w_b: torch.Tensor,
                   layers: str | slice | Iterable[int]) -> torch.Tensor:
        """w+ [B, num_ws, w_dim] taking `layers` from w_b and every other layer from w_a (w or
        w+ each, broadcast over each other's batch). `layers`: a named range, a slice or
        indices."""
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


# --------------------------------------------------------------------------- discriminator


class DiscriminatorBlock(nn.Module):
    """One resolution of D: fromrgb (first block, or every block for 'skip'), conv0, the
    down-sampling conv1 and, for 'resnet', the 1x1 down-sampling skip."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, resolution: int,
                 img_channels: int, first_layer_idx: int, architecture: str = "resnet",
                 activation: str = "lrelu", resample_filter: Sequence[float] = (1, 3, 3, 1),
                 conv_clamp: float | None = None, use_fp16: bool = False):
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.first_layer_idx = first_layer_idx
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.num_layers = 0
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1,
                                       activation=activation, conv_clamp=conv_clamp)
            self.num_layers += 1
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3,
                                 activation=activation, conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3,
                                 activation=activation, down=2,
                                 resample_filter=resample_filter, conv_clamp=conv_clamp)
        self.num_layers += 2
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    resample_filter=resample_filter)
            self.num_layers += 1

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None,
                fp16: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        dtype = torch.float16 if fp16 and self.use_fp16 else torch.float32
        if x is not None:
            x = x.to(dtype)
        if self.in_channels == 0 or self.architecture == "skip":
            img = img.to(dtype)
            y = self.fromrgb(img)
            x = y if x is None else x + y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        if self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv1(self.conv0(x), gain=math.sqrt(0.5))
            x = y.add_(x) if _grad_free(x, y) else y + x
        else:
            x = self.conv1(self.conv0(x))
        return x, img


class DiscriminatorEpilogue(nn.Module):
    """D at 4 px: (fromrgb for 'skip'), minibatch stddev, conv, fc, out, and the projection
    onto the mapped label cmap for conditional models."""

    def __init__(self, in_channels: int, cmap_dim: int, resolution: int, img_channels: int,
                 architecture: str = "resnet", mbstd_group_size: int | None = 4,
                 mbstd_num_channels: int = 1, activation: str = "lrelu",
                 conv_clamp: float | None = None):
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = architecture
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1,
                                       activation=activation)
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) \
            if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3,
                                activation=activation, conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution ** 2, in_channels,
                                      activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x: torch.Tensor, img: torch.Tensor | None,
                cmap: torch.Tensor | None) -> torch.Tensor:
        x = x.to(torch.float32)
        if self.architecture == "skip":
            x = x + self.fromrgb(img.to(torch.float32))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.out(self.fc(x.flatten(1)))
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    """NVIDIA's Discriminator: `D(img, c)` -> logits [B, 1]."""

    def __init__(self, cfg: StyleGAN2ADAConfig):
        super().__init__()
        self.cfg = cfg
        self.c_dim = cfg.c_dim
        self.img_resolution = cfg.img_resolution
        self.img_resolution_log2 = cfg.log2_resolution
        self.img_channels = cfg.img_channels
        self.block_resolutions = [2 ** i for i in range(self.img_resolution_log2, 2, -1)]
        channels = {res: cfg.d_channels(res) for res in self.block_resolutions + [4]}
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - cfg.d_num_fp16_res), 8)
        cmap_dim = cfg.resolved_cmap_dim
        common = dict(img_channels=cfg.img_channels, architecture=cfg.d_architecture,
                      conv_clamp=cfg.d_conv_clamp)
        layer_idx = 0
        for res in self.block_resolutions:
            block = DiscriminatorBlock(
                channels[res] if res < cfg.img_resolution else 0, channels[res],
                channels[res // 2], resolution=res, first_layer_idx=layer_idx,
                activation=cfg.d_activation, resample_filter=cfg.d_resample_filter,
                use_fp16=res >= fp16_resolution, **common)
            setattr(self, f"b{res}", block)
            layer_idx += block.num_layers
        if cfg.c_dim > 0:
            self.mapping = MappingNetwork(
                z_dim=0, c_dim=cfg.c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None,
                num_layers=cfg.d_mapping_layers, embed_features=cfg.d_mapping_embed_features,
                layer_features=cfg.d_mapping_layer_features,
                activation=cfg.d_mapping_activation,
                lr_multiplier=cfg.d_mapping_lr_multiplier)
        self.b4 = DiscriminatorEpilogue(
            channels[4], cmap_dim=cmap_dim, resolution=4, mbstd_group_size=cfg.mbstd_group_size,
            mbstd_num_channels=cfg.mbstd_num_channels, activation=cfg.d_activation, **common)
        self.fp16_enabled = False

    def enable_fp16(self, enabled: bool = True) -> "Discriminator":
        """Run the top d_num_fp16_res resolutions in float16 on CUDA (off by default)."""
        self.fp16_enabled = bool(enabled)
        return self

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None,
                force_fp32: bool | None = None, update_emas: bool = False) -> torch.Tensor:
        del update_emas  # NVIDIA's signature; D tracks nothing
        shape = (self.img_channels, self.img_resolution, self.img_resolution)
        if img.dim() != 4 or tuple(img.shape[1:]) != shape:
            raise ValueError(f"expected images as [B, {', '.join(map(str, shape))}], "
                             f"got {tuple(img.shape)}")
        if force_fp32 is None:
            force_fp32 = not self.fp16_enabled
        fp16 = not force_fp32 and img.device.type in FP16_DEVICES
        cmap = None
        if self.c_dim > 0:
            self.mapping.check_inputs(None, c)
            if c.shape[0] != img.shape[0]:
                raise ValueError(f"img has {img.shape[0]} rows but c has {c.shape[0]}")
            cmap = self.mapping(None, c)
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img, fp16=fp16)
        return self.b4(x, img, cmap)


def build_stylegan2_ada(cfg: StyleGAN2ADAConfig) -> dict[str, nn.Module]:
    """{"G": Generator, "D": Discriminator} with NVIDIA's initialisation (unit-normal weights
    stored / lr_multiplier, zero biases, affine biases 1, zero noise strengths)."""
    return {"G": Generator(cfg), "D": Discriminator(cfg)}
