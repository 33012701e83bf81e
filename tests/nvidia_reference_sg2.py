"""An independent, deliberately plain reading of NVIDIA's StyleGAN2(-ADA) maths, for tests.

It takes a state_dict named as NVIDIA's G / D (or a TensorFlow-era variable list) and a few
constructor values, and computes G's image and D's logits the slow, obvious way: per-sample
weights in a Python loop, up-sampling by explicit zero insertion (a zero tensor with the
samples written into every second row and column), padding, the FIR filter as a depthwise
convolution, decimation by slicing, and the generic convolution order of NVIDIA's
conv2d_resample reference path (filter-pad-convolve for up-sampling, convolve-then-filter for
down-sampling). Bias, activation, gain and clamp are applied one after another.

Nothing here imports gan_core's StyleGAN2-ADA code: a wiring, padding, flip or gain mistake in
the network shows up as a numerical difference against this file.

`expected_shapes(...)` lists the keys and shapes NVIDIA's networks have for given constructor
values, in state_dict order, from the architecture description alone.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

SQRT2 = math.sqrt(2.0)


def _get(cfg: Any, name: str, default=None):
    if isinstance(cfg, dict):
        return cfg.get(name, default)
    return getattr(cfg, name, default)


# --------------------------------------------------------------------------- primitives


def zero_insert(x: torch.Tensor, up: int) -> torch.Tensor:
    """[N, C, H, W] -> [N, C, H*up, W*up] with x at every up-th row and column, zeros elsewhere."""
    n, c, h, w = x.shape
    out = torch.zeros(n, c, h * up, w * up, dtype=x.dtype)
    out[:, :, ::up, ::up] = x
    return out


def pad_or_crop(x: torch.Tensor, x0: int, x1: int, y0: int, y1: int) -> torch.Tensor:
    """Zero padding by concatenation; a negative amount crops."""
    def side(t, amount, dim, front):
        if amount > 0:
            shape = list(t.shape)
            shape[dim] = amount
            z = torch.zeros(shape, dtype=t.dtype)
            return torch.cat([z, t] if front else [t, z], dim=dim)
        if amount < 0:
            size = t.shape[dim]
            start = -amount if front else 0
            return t.narrow(dim, start, size + amount)
        return t
    x = side(x, x0, 3, True)
    x = side(x, x1, 3, False)
    x = side(x, y0, 2, True)
    return side(x, y1, 2, False)


def fir(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """True 2-D convolution of every channel with the 2-D filter f, no padding ('valid')."""
    c = x.shape[1]
    k = torch.flip(f, [0, 1])
    return F.conv2d(x, k.view(1, 1, *k.shape).repeat(c, 1, 1, 1), groups=c)


def upfirdn(x: torch.Tensor, f: torch.Tensor, up: int = 1, down: int = 1,
            pad=(0, 0, 0, 0), gain: float = 1.0) -> torch.Tensor:
    """The definition: zero insertion, pad (x0, x1, y0, y1), filter * gain, decimate."""
    if f.dim() == 1:
        f = torch.outer(f, f)
    if up > 1:
        x = zero_insert(x, up)
    x = pad_or_crop(x, *pad)
    x = fir(x, f * gain)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def filter_taps(taps) -> torch.Tensor:
    f = torch.tensor([float(t) for t in taps])
    if f.numel() < 8:
        f = torch.outer(f, f)
    return f / f.sum()


def lrelu(x):
    return torch.where(x >= 0, x, 0.2 * x)


ACTS = {"linear": (lambda x: x, 1.0), "relu": (torch.relu, SQRT2), "lrelu": (lrelu, SQRT2)}


def bias_act(x, b=None, act="linear", gain=1.0, clamp=None):
    if b is not None:
        x = x + b.view(1, -1, *([1] * (x.dim() - 2)))
    fn, g = ACTS[act]
    x = fn(x) * (g * gain)
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def dense(state, prefix, x, lr=1.0, act="linear"):
    w = state[prefix + ".weight"].float()
    b = state.get(prefix + ".bias")
    y = x @ (w * (lr / math.sqrt(w.shape[1]))).t()
    return bias_act(y, None if b is None else b.float() * lr, act)


def normalize(x):
    return x / torch.sqrt((x * x).mean(dim=1, keepdim=True) + 1e-8)


def conv_resample(x, w, f, up=1, down=1, padding=0, flip_weight=True):
    """NVIDIA's conv2d_resample by its generic reference order: up-sampling = upfirdn (zero
    insertion, pad, filter, gain up^2) then the convolution on the padded result; otherwise the
    convolution on the padded input, then filter and decimate. flip_weight=True: correlation
    (F.conv2d), False: true convolution."""
    fw = f.shape[-1] if f is not None else 1
    px0 = px1 = padding
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
    if not flip_weight:
        w = torch.flip(w, [2, 3])
    if up > 1:
        x = upfirdn(x, f, up=up, pad=(px0, px1, px0, px1), gain=up * up)
    else:
        x = pad_or_crop(x, px0, px1, px0, px1)
    x = F.conv2d(x, w)
    if down > 1:
        x = upfirdn(x, f, down=down)
    return x


# --------------------------------------------------------------------------- generator


def mapping(state, cfg, z, c=None, prefix="mapping", num_layers=None, lr=None, act=None,
            z_dim=None):
    c_dim = _get(cfg, "c_dim", 0)
    z_dim = _get(cfg, "z_dim") if z_dim is None else z_dim
    num_layers = _get(cfg, "mapping_layers", 8) if num_layers is None else num_layers
    lr = _get(cfg, "mapping_lr_multiplier", 0.01) if lr is None else lr
    act = _get(cfg, "mapping_activation", "lrelu") if act is None else act
    parts = []
    if z_dim:
        parts.append(normalize(z.float()))
    if c_dim:
        parts.append(normalize(dense(state, prefix + ".embed", c.float())))
    x = torch.cat(parts, dim=1)
    for i in range(num_layers):
        x = dense(state, f"{prefix}.fc{i}", x, lr=lr, act=act)
    return x


def num_ws_of(resolution: int) -> int:
    return 2 * int(math.log2(resolution)) - 2


def ws_from_z(state, cfg, z, c=None, psi=1.0, cutoff=None):
    w = mapping(state, cfg, z, c)
    n = num_ws_of(_get(cfg, "img_resolution"))
    ws = w[:, None, :].repeat(1, n, 1)
    if psi != 1:
        avg = state["mapping.w_avg"].float()
        trunc = avg + psi * (ws - avg)
        if cutoff is None:
            ws = trunc
        else:
            layer = torch.arange(n).view(1, n, 1)
            ws = torch.where(layer < cutoff, trunc, ws)
    return ws


def modulated_conv(x, weight, styles, demodulate=True, up=1, f=None, padding=0,
                   flip_weight=True, fused=False):
    """Per sample, the weight modulated by that sample's styles (and demodulated), in a loop.
    fused: convolve with the per-sample weight; otherwise scale the activations before and the
    output after the shared weight's convolution (NVIDIA's two forms)."""
    out = []
    for b in range(x.shape[0]):
        wb = weight * styles[b].view(1, -1, 1, 1)
        d = torch.rsqrt((wb * wb).sum(dim=[1, 2, 3]) + 1e-8) if demodulate else None
        if fused:
            if d is not None:
                wb = wb * d.view(-1, 1, 1, 1)
            y = conv_resample(x[b:b + 1], wb, f, up=up, padding=padding, flip_weight=flip_weight)
        else:
            xb = x[b:b + 1] * styles[b].view(1, -1, 1, 1)
            y = conv_resample(xb, weight, f, up=up, padding=padding, flip_weight=flip_weight)
            if d is not None:
                y = y * d.view(1, -1, 1, 1)
        out.append(y)
    return torch.cat(out)


def synthesis_layer(state, p, x, w, cfg, up=1, gain=1.0, noise_mode="const", noise=None,
                    fused=False):
    weight = state[p + ".weight"].float()
    styles = dense(state, p + ".affine", w)
    f = state.get(p + ".resample_filter", filter_taps(_get(cfg, "resample_filter", (1, 3, 3, 1))))
    y = modulated_conv(x, weight, styles, up=up, f=f.float(), padding=weight.shape[-1] // 2,
                       flip_weight=(up == 1), fused=fused)
    if p + ".noise_strength" in state:
        strength = state[p + ".noise_strength"].float()
        if noise is not None:
            y = y + noise * strength
        elif noise_mode == "const":
            y = y + state[p + ".noise_const"].float() * strength
        elif noise_mode == "random":
            y = y + torch.randn(y.shape[0], 1, y.shape[2], y.shape[3]) * strength
    clamp = _get(cfg, "conv_clamp")
    return bias_act(y, state[p + ".bias"].float(), _get(cfg, "activation", "lrelu"), gain=gain,
                    clamp=None if clamp is None else clamp * gain)


def torgb(state, p, x, w, cfg, fused=False):
    weight = state[p + ".weight"].float()
    styles = dense(state, p + ".affine", w) / math.sqrt(weight[0].numel())
    y = modulated_conv(x, weight, styles, demodulate=False, fused=fused)
    return bias_act(y, state[p + ".bias"].float(), clamp=_get(cfg, "conv_clamp"))


def synthesis(state, cfg, ws, noise_mode="const", noises=None, fused=False):
    """ws [B, num_ws, w_dim] -> image. noises: a list of tensors (one per conv layer, in
    order) replacing the noise mode's noise."""
    res_log2 = int(math.log2(_get(cfg, "img_resolution")))
    arch = _get(cfg, "architecture", "skip")
    f = filter_taps(_get(cfg, "resample_filter", (1, 3, 3, 1)))
    noise_iter = iter(noises) if noises is not None else None
    nxt = (lambda: next(noise_iter)) if noise_iter is not None else (lambda: None)
    x = state["synthesis.b4.const"].float()[None].repeat(ws.shape[0], 1, 1, 1)
    x = synthesis_layer(state, "synthesis.b4.conv1", x, ws[:, 0], cfg, noise_mode=noise_mode,
                        noise=nxt(), fused=fused)
    img = None
    if arch == "skip" or res_log2 == 2:
        img = torgb(state, "synthesis.b4.torgb", x, ws[:, 1], cfg, fused=fused)
    for k in range(3, res_log2 + 1):
        r = 2 ** k
        p = f"synthesis.b{r}"
        i0 = 2 * k - 5
        if arch == "resnet":
            ws_ = state[p + ".skip.weight"].float()
            skip = conv_resample(x, ws_ / math.sqrt(ws_[0].numel()), f, up=2,
                                 flip_weight=False)
            skip = skip * math.sqrt(0.5)
            x = synthesis_layer(state, p + ".conv0", x, ws[:, i0], cfg, up=2,
                                noise_mode=noise_mode, noise=nxt(), fused=fused)
            x = synthesis_layer(state, p + ".conv1", x, ws[:, i0 + 1], cfg,
                                gain=math.sqrt(0.5), noise_mode=noise_mode, noise=nxt(),
                                fused=fused)
            x = skip + x
        else:
            x = synthesis_layer(state, p + ".conv0", x, ws[:, i0], cfg, up=2,
                                noise_mode=noise_mode, noise=nxt(), fused=fused)
            x = synthesis_layer(state, p + ".conv1", x, ws[:, i0 + 1], cfg,
                                noise_mode=noise_mode, noise=nxt(), fused=fused)
        if img is not None:
            fw = f.shape[-1]  # NVIDIA's upsample2d padding
            img = upfirdn(img, f, up=2, pad=((fw + 1) // 2, (fw - 2) // 2) * 2, gain=4)
        if arch == "skip" or k == res_log2:
            y = torgb(state, p + ".torgb", x, ws[:, i0 + 2], cfg, fused=fused)
            img = y if img is None else img + y
    return img


def generator(state, cfg, z, c=None, psi=1.0, cutoff=None, noise_mode="const", noises=None,
              fused=False):
    return synthesis(state, cfg, ws_from_z(state, cfg, z, c, psi, cutoff), noise_mode, noises,
                     fused)


# --------------------------------------------------------------------------- discriminator


def d_conv(state, p, x, cfg, down=1, act=None, gain=1.0, clamp="cfg"):
    w = state[p + ".weight"].float()
    w = w / math.sqrt(w[0].numel())
    f = state.get(p + ".resample_filter",
                  filter_taps(_get(cfg, "d_resample_filter", (1, 3, 3, 1)))).float()
    y = conv_resample(x, w, f, down=down, padding=w.shape[-1] // 2)
    b = state.get(p + ".bias")
    act = act or _get(cfg, "d_activation", "lrelu")
    if clamp == "cfg":
        clamp = _get(cfg, "d_conv_clamp")
    return bias_act(y, None if b is None else b.float(), act, gain=gain,
                    clamp=None if clamp is None else clamp * gain)


def minibatch_std(x, group_size, num_channels):
    n, c, h, w = x.shape
    g = n if group_size is None else min(group_size, n)
    m = n // g
    feats = torch.zeros(n, num_channels)
    step = c // num_channels
    for j in range(m):  # samples j, j + m, j + 2m, ... form a group
        idx = [j + m * t for t in range(g)]
        grp = x[idx]
        for q in range(num_channels):
            part = grp[:, q * step:(q + 1) * step]
            std = torch.sqrt(((part - part.mean(dim=0)) ** 2).mean(dim=0) + 1e-8)
            feats[idx, q] = std.mean()
    return torch.cat([x, feats.view(n, num_channels, 1, 1).expand(n, num_channels, h, w)], 1)


def discriminator(state, cfg, img, c=None):
    res_log2 = int(math.log2(_get(cfg, "img_resolution")))
    arch = _get(cfg, "d_architecture", "resnet")
    f = filter_taps(_get(cfg, "d_resample_filter", (1, 3, 3, 1)))
    x = None
    img = img.float()
    for k in range(res_log2, 2, -1):
        p = f"b{2 ** k}"
        if arch == "skip" or k == res_log2:
            y = d_conv(state, p + ".fromrgb", img, cfg)
            x = y if x is None else x + y
            if arch == "skip":
                fw = f.shape[-1]  # NVIDIA's downsample2d padding
                img = upfirdn(img, f, down=2, pad=((fw - 1) // 2, (fw - 2) // 2) * 2)
        if arch == "resnet":
            skip = d_conv(state, p + ".skip", x, cfg, down=2, act="linear", gain=math.sqrt(0.5),
                          clamp=None)
            x = d_conv(state, p + ".conv0", x, cfg)
            x = d_conv(state, p + ".conv1", x, cfg, down=2, gain=math.sqrt(0.5))
            x = skip + x
        else:
            x = d_conv(state, p + ".conv0", x, cfg)
            x = d_conv(state, p + ".conv1", x, cfg, down=2)
    if arch == "skip":
        x = x + d_conv(state, "b4.fromrgb", img, cfg, clamp=None)
    nmb = _get(cfg, "mbstd_num_channels", 1)
    if nmb:
        x = minibatch_std(x, _get(cfg, "mbstd_group_size", 4), nmb)
    x = d_conv(state, "b4.conv", x, cfg)
    x = dense(state, "b4.fc", x.flatten(1), act=_get(cfg, "d_activation", "lrelu"))
    x = dense(state, "b4.out", x)
    if _get(cfg, "c_dim", 0):
        cmap = mapping(state, cfg, None, c, prefix="mapping",
                       num_layers=_get(cfg, "d_mapping_layers", 8),
                       lr=_get(cfg, "d_mapping_lr_multiplier", 0.01),
                       act=_get(cfg, "d_mapping_activation", "lrelu"), z_dim=0)
        x = (x * cmap).sum(dim=1, keepdim=True) / math.sqrt(cmap.shape[1])
    return x


# --------------------------------------------------------------------------- TensorFlow era


def _t(a) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).float()


def tf_variables(network) -> dict[str, np.ndarray]:
    """Variables of a TF-era network and its components ('mapping/Dense0/weight', ...)."""
    out = {}
    for name, value in network.variables:
        out[name] = value
    for comp_name, comp in network.components.items():
        for name, value in comp.variables:
            out[f"{comp_name}/{name}"] = value
    return out


def _tf_dense(v, p, x, lrmul=1.0, act="linear"):
    w = _t(v[p + "/weight"])  # [in, out]
    y = x @ (w * (lrmul / math.sqrt(w.shape[0])))
    b = v.get(p + "/bias")
    return bias_act(y, None if b is None else _t(b) * lrmul, act)


def _tf_conv(x, w_hwio, up=False, down=False, f=None):
    """TF's conv2d_layer semantics: weights [kh, kw, in, out] (a correlation, tf.nn.conv2d);
    up = TF's fused upsample_conv_2d: zero insertion, ONE padding (2 + k//2, 1 + k//2), the FIR
    (gain 4), then a 'VALID' correlation (padding only once at the beginning, so the filter's
    tails reach the convolution; an up-sampling followed by a 'SAME' conv would differ at the
    borders); down = FIR (pad 2) then a stride-2 'VALID' correlation (1x1: FIR pad 1,
    decimate, 1x1)."""
    w = _t(w_hwio).permute(3, 2, 0, 1)  # layout only: [out, in, kh, kw]
    k = w.shape[-1]
    if up:
        p = k // 2
        return F.conv2d(upfirdn(x, f, up=2, pad=(2 + p, 1 + p, 2 + p, 1 + p), gain=4), w)
    if down:
        if k == 1:
            return F.conv2d(upfirdn(x, f, down=2, pad=(1, 1, 1, 1)), w)
        x = upfirdn(x, f, pad=(2, 2, 2, 2))
        return F.conv2d(x, w, stride=2)
    return F.conv2d(x, w, padding=k // 2)


def _tf_modconv(x, v, p, dlatent, demodulate=True, up=False, f=None):
    w = _t(v[p + "/weight"])  # [kh, kw, in, out]
    w = w / math.sqrt(w.shape[0] * w.shape[1] * w.shape[2])
    mw = _t(v[p + "/mod_weight"])
    s = dlatent @ (mw / math.sqrt(mw.shape[0])) + _t(v[p + "/mod_bias"]) + 1
    out = []
    for b in range(x.shape[0]):
        ww = w * s[b].view(1, 1, -1, 1)
        if demodulate:
            ww = ww * torch.rsqrt((ww * ww).sum(dim=[0, 1, 2]) + 1e-8).view(1, 1, 1, -1)
        wo = ww.permute(3, 2, 0, 1)
        xb = x[b:b + 1]
        p = wo.shape[-1] // 2
        if up:  # fused upsample_conv_2d: one padding, FIR, 'VALID' correlation
            out.append(F.conv2d(upfirdn(xb, f, up=2, pad=(2 + p, 1 + p, 2 + p, 1 + p), gain=4),
                                wo))
        else:
            out.append(F.conv2d(xb, wo, padding=p))
    return torch.cat(out)


def tf_generator(G, z, c=None, psi=1.0, cutoff=None, noise_mode="const"):
    """A TF-era G_main (NVlabs/stylegan2 G_mapping + G_synthesis_stylegan2, or the
    stylegan2-ada TF G_synthesis with LabelEmbed) run from its variables."""
    v = tf_variables(G)
    kw = dict(G.static_kwargs)
    for comp in G.components.values():
        kw = {**comp.static_kwargs, **kw}
    res_log2 = int(math.log2(kw.get("resolution", 1024)))
    arch = kw.get("architecture", "skip")
    lrmul = kw.get("mapping_lrmul", 0.01)
    act = kw.get("mapping_nonlinearity", "lrelu")
    f = filter_taps(kw.get("resample_kernel", (1, 3, 3, 1)))
    x = normalize(z.float())
    if "mapping/LabelEmbed/weight" in v:
        y = normalize(_tf_dense(v, "mapping/LabelEmbed", c.float()))
        x = torch.cat([x, y], dim=1)
    i = 0
    while f"mapping/Dense{i}/weight" in v:
        x = _tf_dense(v, f"mapping/Dense{i}", x, lrmul=lrmul, act=act)
        i += 1
    n = 2 * res_log2 - 2
    dl = x[:, None].repeat(1, n, 1)
    if psi != 1:
        avg = _t(v["dlatent_avg"])
        t = avg + psi * (dl - avg)
        dl = t if cutoff is None else torch.where(torch.arange(n).view(1, n, 1) < cutoff, t, dl)
    clamp = kw.get("conv_clamp")

    def layer(x, scope, idx, up=False):
        y = _tf_modconv(x, v, f"synthesis/{scope}", dl[:, idx], up=up, f=f)
        if f"synthesis/{scope}/noise_strength" in v:
            if noise_mode == "const":
                y = y + _t(v[f"synthesis/noise{idx}"]) * _t(v[f"synthesis/{scope}/noise_strength"])
        return bias_act(y, _t(v[f"synthesis/{scope}/bias"]), "lrelu", clamp=clamp)

    def rgb(x, scope, idx):
        y = _tf_modconv(x, v, f"synthesis/{scope}", dl[:, idx], demodulate=False)
        return bias_act(y, _t(v[f"synthesis/{scope}/bias"]), clamp=clamp)

    x = _t(v["synthesis/4x4/Const/const"]).repeat(z.shape[0], 1, 1, 1)
    x = layer(x, "4x4/Conv", 0)
    img = rgb(x, "4x4/ToRGB", 1) if arch == "skip" or res_log2 == 2 else None
    for k in range(3, res_log2 + 1):
        r = f"{2 ** k}x{2 ** k}"
        t = x
        x = layer(x, f"{r}/Conv0_up", 2 * k - 5, up=True)
        x = layer(x, f"{r}/Conv1", 2 * k - 4)
        if arch == "resnet":
            w = _t(v[f"synthesis/{r}/Skip/weight"])
            t = _tf_conv(t, v[f"synthesis/{r}/Skip/weight"], up=True, f=f) \
                / math.sqrt(w.shape[0] * w.shape[1] * w.shape[2])
            x = (x + t) / SQRT2
        if img is not None:
            img = upfirdn(img, f, up=2, pad=(2, 1, 2, 1), gain=4)
        if arch == "skip" or k == res_log2:
            y = rgb(x, f"{r}/ToRGB", 2 * k - 3)
            img = y if img is None else img + y
    return img


def tf_discriminator(D, img, c=None):
    """A TF-era D_stylegan2 / stylegan2-ada D_main run from its variables."""
    v = tf_variables(D)
    kw = dict(D.static_kwargs)
    res_log2 = int(math.log2(kw.get("resolution", 1024)))
    arch = kw.get("architecture", "resnet")
    f = filter_taps(kw.get("resample_kernel", (1, 3, 3, 1)))
    ada = D.build_func_name == "D_main"
    clamp = kw.get("conv_clamp")

    def conv(x, p, down=False, act="lrelu", bias=True):
        w = v[p + "/weight"]
        y = _tf_conv(x, w, down=down, f=f) / math.sqrt(np.prod(w.shape[:-1]))
        return bias_act(y, _t(v[p + "/bias"]) if bias else None, act, clamp=clamp)

    x = None
    y = img.float()
    for k in range(res_log2, 2, -1):
        r = f"{2 ** k}x{2 ** k}"
        if arch == "skip" or k == res_log2:
            t = conv(y, f"{r}/FromRGB")
            x = t if x is None else x + t
        t = x
        x = conv(x, f"{r}/Conv0")
        x = conv(x, f"{r}/Conv1_down", down=True)
        if arch == "resnet":
            w = v[f"{r}/Skip/weight"]
            t = _tf_conv(t, w, down=True, f=f) / math.sqrt(np.prod(w.shape[:-1]))
            x = (x + t) / SQRT2
        if arch == "skip":
            y = upfirdn(y, f, down=2, pad=(1, 1, 1, 1))
    if arch == "skip":
        x = x + conv(y, "4x4/FromRGB")
    group = kw.get("mbstd_group_size", None if ada else 4)
    feats = kw.get("mbstd_num_features", 1)
    if (ada and feats > 0) or (not ada and group is not None and group > 1):
        x = minibatch_std(x, group, feats)
    x = conv(x, "4x4/Conv")
    x = _tf_dense(v, "4x4/Dense0", x.flatten(1), act="lrelu")
    x = _tf_dense(v, "Output", x)
    if "LabelEmbed/weight" in v:
        y = normalize(_tf_dense(v, "LabelEmbed", c.float()))
        i = 0
        while f"Mapping{i}/weight" in v:
            y = _tf_dense(v, f"Mapping{i}", y, lrmul=kw.get("mapping_lrmul", 0.1), act="lrelu")
            i += 1
        x = (x * y).sum(dim=1, keepdim=True) / math.sqrt(y.shape[1])
    return x


# --------------------------------------------------------------------------- key tables


def expected_shapes(z_dim=512, c_dim=0, w_dim=512, img_resolution=1024, img_channels=3,
                    mapping_layers=8, channel_base=32768, channel_max=512, architecture="skip",
                    d_architecture="resnet", d_channel_base=32768, d_channel_max=512,
                    mbstd_num_channels=1, cmap_dim=None, d_mapping_layers=8, filter_taps=4,
                    use_noise=True) -> dict[str, dict[str, list[int]]]:
    """{"G": {key: shape}, "D": {key: shape}} in state_dict order, from the description:
    channels min(channel_base // r, channel_max); G = synthesis (b4 ... b{res}) then mapping;
    D = blocks b{res} ... b8, the label mapping (conditional), then the b4 epilogue."""
    filt = [filter_taps, filter_taps] if filter_taps < 8 else [filter_taps]
    log2 = int(math.log2(img_resolution))
    ch = lambda r: min(channel_base // r, channel_max)  # noqa: E731
    dch = lambda r: min(d_channel_base // r, d_channel_max)  # noqa: E731
    G: dict[str, list[int]] = {}

    def syn_layer(p, cin, cout, r):
        G[p + ".weight"] = [cout, cin, 3, 3]
        if use_noise:
            G[p + ".noise_strength"] = []
        G[p + ".bias"] = [cout]
        G[p + ".resample_filter"] = filt
        if use_noise:
            G[p + ".noise_const"] = [r, r]
        G[p + ".affine.weight"] = [cin, w_dim]
        G[p + ".affine.bias"] = [cin]

    def rgb(p, cin):
        G[p + ".weight"] = [img_channels, cin, 1, 1]
        G[p + ".bias"] = [img_channels]
        G[p + ".affine.weight"] = [cin, w_dim]
        G[p + ".affine.bias"] = [cin]

    for k in range(2, log2 + 1):
        r = 2 ** k
        p = f"synthesis.b{r}"
        if k == 2:
            G[p + ".const"] = [ch(4), 4, 4]
        G[p + ".resample_filter"] = filt
        if k > 2:
            syn_layer(p + ".conv0", ch(r // 2), ch(r), r)
        syn_layer(p + ".conv1", ch(r), ch(r), r)
        if architecture == "skip" or k == log2:
            rgb(p + ".torgb", ch(r))
        if k > 2 and architecture == "resnet":
            G[p + ".skip.weight"] = [ch(r), ch(r // 2), 1, 1]
            G[p + ".skip.resample_filter"] = filt
    G["mapping.w_avg"] = [w_dim]
    embed = w_dim if c_dim else 0
    if c_dim:
        G["mapping.embed.weight"] = [embed, c_dim]
        G["mapping.embed.bias"] = [embed]
    feats = [z_dim + embed] + [w_dim] * mapping_layers
    for i in range(mapping_layers):
        G[f"mapping.fc{i}.weight"] = [feats[i + 1], feats[i]]
        G[f"mapping.fc{i}.bias"] = [feats[i + 1]]

    D: dict[str, list[int]] = {}

    def conv(p, cin, cout, k, bias=True):
        D[p + ".weight"] = [cout, cin, k, k]
        if bias:
            D[p + ".bias"] = [cout]
        D[p + ".resample_filter"] = filt

    for k in range(log2, 2, -1):
        r = 2 ** k
        p = f"b{r}"
        D[p + ".resample_filter"] = filt
        if k == log2 or d_architecture == "skip":
            conv(p + ".fromrgb", img_channels, dch(r), 1)
        conv(p + ".conv0", dch(r), dch(r), 3)
        conv(p + ".conv1", dch(r), dch(r // 2), 3)
        if d_architecture == "resnet":
            conv(p + ".skip", dch(r), dch(r // 2), 1, bias=False)
    cmap = (cmap_dim or dch(4)) if c_dim else 0
    if c_dim:
        D["mapping.embed.weight"] = [cmap, c_dim]
        D["mapping.embed.bias"] = [cmap]
        for i in range(d_mapping_layers):
            D[f"mapping.fc{i}.weight"] = [cmap, cmap]
            D[f"mapping.fc{i}.bias"] = [cmap]
    if d_architecture == "skip":
        conv("b4.fromrgb", img_channels, dch(4), 1)
    conv("b4.conv", dch(4) + mbstd_num_channels, dch(4), 3)
    D["b4.fc.weight"] = [dch(4), dch(4) * 16]
    D["b4.fc.bias"] = [dch(4)]
    D["b4.out.weight"] = [cmap or 1, dch(4)]
    D["b4.out.bias"] = [cmap or 1]
    return {"G": G, "D": D}


# --------------------------------------------------------------------------- benchmark

_BENCH_CHILD = r'''
import json, resource, sys, time
import torch
torch.set_num_threads(1)
which, reps = sys.argv[1], int(sys.argv[2])
sys.path.insert(0, sys.argv[3])
from gan_core.archs.stylegan2_ada.network import StyleGAN2ADAConfig, Generator
import nvidia_reference_sg2 as ref
torch.manual_seed(0)
cfg = StyleGAN2ADAConfig()  # FFHQ config F, 1024 px
with torch.inference_mode():
    G = Generator(cfg).eval()
    state = G.state_dict()
    z = torch.randn(1, cfg.z_dim)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        img = G(z) if which == "ours" else ref.generator(state, cfg, z, fused=True)
        times.append(time.perf_counter() - t)
print(json.dumps({"which": which, "seconds": [round(t, 2) for t in times],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))
'''


def benchmark(reps: int = 2) -> None:
    """One 1024 px config-F image on one CPU thread: gan_core's network vs this reference
    (per-sample weights = the grouped-conv arithmetic at batch 1, zero-insertion upfirdn), each
    in a child process (seconds per image, peak RSS of the process)."""
    import os
    import subprocess
    import sys
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([os.path.dirname(here), here,
                                           os.environ.get("PYTHONPATH", "")]))
    for which in ("ours", "reference"):
        out = subprocess.run([sys.executable, "-c", _BENCH_CHILD, which, str(reps), here],
                             env=env, capture_output=True, text=True, check=True)
        print(out.stdout.strip())


if __name__ == "__main__":
    benchmark()
