"""A deliberately plain reading of the StyleGAN3 generator's maths, for equivalence tests and
the benchmark: the way the reference form computes it, with nothing clever.

Written from the paper ("Alias-Free Generative Adversarial Networks", Karras et al. 2021, and
its appendix) and the published layer facts (../shared/reference/NVIDIA_PKL.md), independently
of gan_core/archs/stylegan3 (nothing here imports it): the filtered leaky ReLU inserts zeros,
pads, convolves at the upsampled rate, activates there, convolves again at that rate and then
throws away the samples the decimation drops, exactly as the reference form does, so its
memory and time are the reference's too.

Entry points take a flat state_dict (NVIDIA's key names) and the per-layer attributes a
network pickle stores (`reference_geometry` computes them from the constructor arguments,
again independently), and return float32 results.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

# ----------------------------------------------------------------------------- geometry

def reference_geometry(img_resolution: int, img_channels: int = 3, channel_base: float = 32768,
                       channel_max: int = 512, num_layers: int = 14, num_critical: int = 2,
                       first_cutoff: float = 2, first_stopband: float = 2 ** 2.1,
                       last_stopband_rel: float = 2 ** 0.3, margin_size: int = 10,
                       num_fp16_res: int = 4, conv_kernel: int = 3, filter_size: int = 6,
                       lrelu_upsampling: int = 2, use_radial_filters: bool = False) -> dict:
    """The input's and every layer's attributes, as the paper's appendix F derives them:
    cutoffs and minimum stopbands grow geometrically from the first layer to the last
    non-critical one, sampling rates are the next power of two above twice the stopband
    (at most the image resolution), every layer has `margin_size` extra samples per side
    except the last two, channels fall as channel_base / 2 / cutoff."""
    n = num_layers
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    layers_geo = []
    exps = [min(i / (n - num_critical), 1.0) for i in range(n + 1)]
    cutoffs = np.array([first_cutoff * (last_cutoff / first_cutoff) ** e for e in exps])
    stops = np.array([first_stopband * (last_stopband / first_stopband) ** e for e in exps])
    rates = np.exp2(np.ceil(np.log2(np.minimum(stops * 2, img_resolution))))
    halfw = np.maximum(stops, rates / 2) - cutoffs
    sizes = rates + 2 * margin_size
    sizes[-2:] = img_resolution
    chans = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    chans[-1] = img_channels
    for i in range(n + 1):
        p = max(i - 1, 0)
        torgb = i == n
        k = 1 if torgb else conv_kernel
        tmp = max(int(rates[p]), int(rates[i])) * (1 if torgb else lrelu_upsampling)
        up = int(round(tmp / int(rates[p])))
        down = int(round(tmp / int(rates[i])))
        up_taps = filter_size * up if (up > 1 and not torgb) else 1
        down_taps = filter_size * down if (down > 1 and not torgb) else 1
        total = (int(sizes[i]) - 1) * down + 1 - (int(sizes[p]) + k - 1) * up \
            + up_taps + down_taps - 2
        lo = (total + up) // 2
        layers_geo.append(dict(
            name=f"L{i}_{int(sizes[i])}_{int(chans[i])}", is_torgb=torgb,
            is_critically_sampled=i >= n - num_critical,
            use_fp16=bool(rates[i] * 2 ** num_fp16_res > img_resolution),
            in_channels=int(chans[p]), out_channels=int(chans[i]),
            in_size=int(sizes[p]), out_size=int(sizes[i]),
            in_sampling_rate=int(rates[p]), out_sampling_rate=int(rates[i]),
            tmp_sampling_rate=tmp, in_cutoff=float(cutoffs[p]),
            out_cutoff=float(cutoffs[i]), in_half_width=float(halfw[p]),
            out_half_width=float(halfw[i]), conv_kernel=k, up_factor=up, down_factor=down,
            up_taps=up_taps, down_taps=down_taps,
            down_radial=bool(use_radial_filters and not i >= n - num_critical),
            padding=[int(lo), int(total - lo), int(lo), int(total - lo)]))
    return {"input": dict(channels=int(chans[0]), size=int(sizes[0]),
                          sampling_rate=float(rates[0]), bandwidth=float(cutoffs[0])),
            "layers": layers_geo}


# ----------------------------------------------------------------------------- the ops

def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, act: str = "linear",
             alpha: float = 0.2, gain: float | None = None,
             clamp: float | None = None) -> torch.Tensor:
    """Add a per-channel bias (dim 1), apply the activation, scale, clamp."""
    if b is not None:
        x = x + b.reshape([1, -1] + [1] * (x.dim() - 2))
    if act == "lrelu":
        x = torch.where(x >= 0, x, x * alpha)
        gain = math.sqrt(2) if gain is None else gain
    else:
        gain = 1.0 if gain is None else gain
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def upfirdn2d(x: torch.Tensor, f: torch.Tensor | None, up: int = 1, down: int = 1,
              padding=(0, 0, 0, 0), flip_filter: bool = False, gain: float = 1) -> torch.Tensor:
    """Zero insertion, pad/crop, FIR convolution (a 1-D f along x then y), decimation."""
    if f is None:
        f = torch.ones(1, 1)
    px0, px1, py0, py1 = padding
    n, c, h, w = x.shape
    # 1. insert up-1 zeros after every sample
    z = torch.zeros(n, c, h * up, w * up, dtype=x.dtype)
    z[:, :, ::up, ::up] = x
    # 2. pad (negative: crop)
    z = F.pad(z, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    z = z[:, :, max(-py0, 0): z.shape[2] - max(-py1, 0), max(-px0, 0): z.shape[3] - max(-px1, 0)]
    # 3. convolve (flip the taps: convolution, not correlation)
    f = f.to(x.dtype) * (gain ** (f.dim() / 2))
    if not flip_filter:
        f = f.flip(list(range(f.dim())))
    if f.dim() == 2:
        z = F.conv2d(z, f[None, None].repeat(c, 1, 1, 1), groups=c)
    else:
        z = F.conv2d(z, f[None, None, None, :].repeat(c, 1, 1, 1), groups=c)
        z = F.conv2d(z, f[None, None, :, None].repeat(c, 1, 1, 1), groups=c)
    # 4. keep every down-th sample
    return z[:, :, ::down, ::down]


def filtered_lrelu(x: torch.Tensor, fu, fd, b, up: int = 1, down: int = 1, padding=0,
                   gain: float = math.sqrt(2), slope: float = 0.2, clamp: float | None = None,
                   flip_filter: bool = False) -> torch.Tensor:
    """Bias, upsample (gain up**2), leaky ReLU * gain and clamp at the high rate, downsample."""
    if isinstance(padding, int):
        padding = [padding] * 4
    if len(padding) == 2:
        padding = [padding[0], padding[0], padding[1], padding[1]]
    x = bias_act(x, b)
    x = upfirdn2d(x, fu, up=up, padding=list(padding), gain=up ** 2, flip_filter=flip_filter)
    x = bias_act(x, act="lrelu", alpha=slope, gain=gain, clamp=clamp)
    return upfirdn2d(x, fd, down=down, flip_filter=flip_filter)


def modulated_conv2d(x: torch.Tensor, w: torch.Tensor, s: torch.Tensor, demodulate: bool = True,
                     padding: int = 0, input_gain: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample weights [N, O, I, k, k] and one grouped convolution."""
    batch = x.shape[0]
    out_ch, in_ch, kh, kw = w.shape
    if demodulate:
        w = w * w.square().mean([1, 2, 3], keepdim=True).rsqrt()
        s = s * s.square().mean().rsqrt()
    w = w.unsqueeze(0) * s.reshape(batch, 1, in_ch, 1, 1)
    if demodulate:
        d = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
        w = w * d.reshape(batch, out_ch, 1, 1, 1)
    if input_gain is not None:
        w = w * input_gain.expand(batch, in_ch).reshape(batch, 1, in_ch, 1, 1)
    y = F.conv2d(x.reshape(1, -1, *x.shape[2:]), w.reshape(-1, in_ch, kh, kw),
                 padding=padding, groups=batch)
    return y.reshape(batch, out_ch, *y.shape[2:])


def fully_connected(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                    lr_multiplier: float = 1.0, activation: str = "linear") -> torch.Tensor:
    w = weight * (lr_multiplier / math.sqrt(weight.shape[1]))
    y = x @ w.t()
    b = None if bias is None else bias * lr_multiplier
    return bias_act(y, b, act=activation)


# ----------------------------------------------------------------------------- networks

def mapping(state: dict, z: torch.Tensor, c: torch.Tensor | None, num_ws: int,
            truncation_psi: float = 1, truncation_cutoff: int | None = None,
            lr_multiplier: float = 0.01, prefix: str = "mapping.") -> torch.Tensor:
    """z (and c) -> ws [B, num_ws, w_dim]."""
    def norm(v):
        return v * (v.square().mean(1, keepdim=True) + 1e-8).rsqrt()
    x = norm(z.float())
    if prefix + "embed.weight" in state:
        y = fully_connected(c.float(), state[prefix + "embed.weight"],
                            state.get(prefix + "embed.bias"))
        x = torch.cat([x, norm(y)], dim=1)
    i = 0
    while f"{prefix}fc{i}.weight" in state:
        x = fully_connected(x, state[f"{prefix}fc{i}.weight"], state.get(f"{prefix}fc{i}.bias"),
                            lr_multiplier, "lrelu")
        i += 1
    ws = x.unsqueeze(1).repeat(1, num_ws, 1)
    if truncation_psi != 1:
        cut = num_ws if truncation_cutoff is None else truncation_cutoff
        avg = state[prefix + "w_avg"]
        ws[:, :cut] = avg + truncation_psi * (ws[:, :cut] - avg)
    return ws


def synthesis_input(state: dict, w: torch.Tensor, size: int, sampling_rate: float,
                    bandwidth: float, prefix: str = "synthesis.input.",
                    transform: torch.Tensor | None = None) -> torch.Tensor:
    """Fourier features: sin(2 pi (freqs . (A p) + phases)) over the sample grid p, where A is
    the learned rotation and translation (from the affine of w) times the user transform;
    frequencies the user transform pushes past the band are faded out; then a linear mix."""
    batch = w.shape[0]
    user = state[prefix + "transform"] if transform is None else transform
    freqs = state[prefix + "freqs"].unsqueeze(0)
    phases = state[prefix + "phases"].unsqueeze(0)
    t = fully_connected(w, state[prefix + "affine.weight"], state[prefix + "affine.bias"])
    t = t / t[:, :2].norm(dim=1, keepdim=True)
    rot = torch.eye(3).repeat(batch, 1, 1)
    rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1] = t[:, 0], -t[:, 1], t[:, 1], t[:, 0]
    tra = torch.eye(3).repeat(batch, 1, 1)
    tra[:, 0, 2], tra[:, 1, 2] = -t[:, 2], -t[:, 3]
    m = rot @ tra @ user.reshape(-1, 3, 3)
    phases = phases + (freqs @ m[:, :2, 2:]).squeeze(2)
    freqs = freqs @ m[:, :2, :2]
    amp = (1 - (freqs.norm(dim=2) - bandwidth) / (sampling_rate / 2 - bandwidth)).clamp(0, 1)
    theta = torch.eye(2, 3)
    theta[0, 0] = 0.5 * size / sampling_rate
    theta[1, 1] = 0.5 * size / sampling_rate
    grid = F.affine_grid(theta.unsqueeze(0), [1, 1, size, size], align_corners=False)
    x = (grid.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)
    x = torch.sin((x + phases.unsqueeze(1).unsqueeze(2)) * (2 * np.pi))
    x = x * amp.unsqueeze(1).unsqueeze(2)
    weight = state[prefix + "weight"]
    x = x @ (weight / np.sqrt(weight.shape[0])).t()
    return x.permute(0, 3, 1, 2)


def synthesis_layer(state: dict, x: torch.Tensor, w: torch.Tensor, attrs: dict,
                    prefix: str) -> torch.Tensor:
    torgb = attrs["is_torgb"]
    k = attrs["conv_kernel"]
    styles = fully_connected(w, state[prefix + "affine.weight"], state[prefix + "affine.bias"])
    if torgb:
        styles = styles / np.sqrt(attrs["in_channels"] * k * k)
    gain_in = state[prefix + "magnitude_ema"].rsqrt()
    x = modulated_conv2d(x, state[prefix + "weight"], styles, demodulate=not torgb,
                         padding=k - 1, input_gain=gain_in)
    return filtered_lrelu(x, state.get(prefix + "up_filter"), state.get(prefix + "down_filter"),
                          state[prefix + "bias"], up=attrs["up_factor"],
                          down=attrs["down_factor"], padding=attrs["padding"],
                          gain=1 if torgb else np.sqrt(2), slope=1 if torgb else 0.2,
                          clamp=attrs.get("conv_clamp", 256))


def synthesis(state: dict, ws: torch.Tensor, geometry: dict, output_scale: float = 0.25,
              conv_clamp: float | None = 256, transform: torch.Tensor | None = None,
              layer_hook=None) -> torch.Tensor:
    """ws [B, num_ws, w_dim] -> image; `geometry` as reference_geometry returns.
    `layer_hook(name, x)` sees every layer's output (for per-layer comparisons)."""
    ws = ws.float().unbind(1)
    g = geometry["input"]
    x = synthesis_input(state, ws[0], g["size"], g["sampling_rate"], g["bandwidth"],
                        transform=transform)
    for attrs, w in zip(geometry["layers"], ws[1:]):
        attrs = dict(attrs, conv_clamp=conv_clamp)
        x = synthesis_layer(state, x, w, attrs, f"synthesis.{attrs['name']}.")
        if layer_hook is not None:
            layer_hook(attrs["name"], x)
    return x * output_scale if output_scale != 1 else x


def generator(state: dict, z: torch.Tensor, c: torch.Tensor | None, geometry: dict,
              truncation_psi: float = 1, truncation_cutoff: int | None = None,
              output_scale: float = 0.25, conv_clamp: float | None = 256,
              lr_multiplier: float = 0.01, transform: torch.Tensor | None = None) -> torch.Tensor:
    num_ws = len(geometry["layers"]) + 1
    ws = mapping(state, z, c, num_ws, truncation_psi, truncation_cutoff, lr_multiplier)
    return synthesis(state, ws, geometry, output_scale, conv_clamp, transform)


def expected_shapes(geometry: dict, z_dim: int = 512, c_dim: int = 0, w_dim: int = 512,
                    mapping_layers: int = 2) -> list:
    """[key, shape] of the Generator's state_dict in NVIDIA's order (synthesis first: the
    input's parameter, then its buffers, then its affine; each layer's weight, bias,
    magnitude_ema, up/down filters (none for one tap; a 2-D down filter when radial), then
    its affine; then the mapping network's w_avg, embed and fc layers)."""
    g = geometry["input"]
    c0 = g["channels"]
    out = [["synthesis.input.weight", [c0, c0]], ["synthesis.input.transform", [3, 3]],
           ["synthesis.input.freqs", [c0, 2]], ["synthesis.input.phases", [c0]],
           ["synthesis.input.affine.weight", [4, w_dim]], ["synthesis.input.affine.bias", [4]]]
    for layer in geometry["layers"]:
        p = f"synthesis.{layer['name']}."
        k = layer["conv_kernel"]
        out += [[p + "weight", [layer["out_channels"], layer["in_channels"], k, k]],
                [p + "bias", [layer["out_channels"]]], [p + "magnitude_ema", []]]
        if layer["up_taps"] > 1:
            out.append([p + "up_filter", [layer["up_taps"]]])
        if layer["down_taps"] > 1:
            taps = layer["down_taps"]
            out.append([p + "down_filter", [taps, taps] if layer["down_radial"] else [taps]])
        out += [[p + "affine.weight", [layer["in_channels"], w_dim]],
                [p + "affine.bias", [layer["in_channels"]]]]
    out.append(["mapping.w_avg", [w_dim]])
    if c_dim:
        out += [["mapping.embed.weight", [w_dim, c_dim]], ["mapping.embed.bias", [w_dim]]]
    features = [z_dim + (w_dim if c_dim else 0)] + [w_dim] * mapping_layers
    for i in range(mapping_layers):
        out += [[f"mapping.fc{i}.weight", [features[i + 1], features[i]]],
                [f"mapping.fc{i}.bias", [features[i + 1]]]]
    return out
