"""NVIDIA's StyleGAN2(-ADA) network pickles, read as data.

Two eras reach this reader, already unpickled by gan_core's restricted reader (nothing from
the file is executed; this module only sees plain data):

* PyTorch (stylegan2-ada-pytorch, and the StyleGAN2 config of the stylegan3 repository): a
  dict {'G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs'} whose networks are
  persistent objects seen as PickledModule-like records (class_name, init_kwargs, attributes,
  parameters, buffers, modules, state_dict()). Their state_dicts are our networks' exactly.
* TensorFlow (NVlabs/stylegan2 configs E/F, NVlabs/stylegan2-ada's TF networks): a tuple
  (G, D, Gs) of TFNetwork-like records (static_kwargs, components, variables,
  build_func_name). Their variables are mapped onto the PyTorch layout below.

The config is rebuilt from the stored tensors (shapes are authoritative: widths, depth, label
size, architecture), then from the objects' stored attributes (conv_clamp, lr multipliers,
activations, fp16 flags: what NVIDIA's code actually runs with), then from the constructor
kwargs. Constructor kwargs that contradict the tensors in a way that changes the network are a
CheckpointError naming the field. The result is checked by building the networks on the meta
device (bounded by the file's tensor count) and comparing every key and shape.

TensorFlow layout -> PyTorch (HWIO conv weights become OIHW, dense [in, out] becomes
[out, in]):
  dlatent_avg -> mapping.w_avg; mapping/Dense{i} -> mapping.fc{i}; mapping/LabelEmbed ->
  mapping.embed; synthesis/4x4/Const/const [1, C, 4, 4] -> synthesis.b4.const [C, 4, 4];
  synthesis/{r}x{r}/Conv0_up, Conv1 (4x4/Conv) -> b{r}.conv0, conv1: mod_weight^T ->
  affine.weight, mod_bias + 1 -> affine.bias (TF adds the 1 at run time), noise_strength,
  bias; synthesis/noise{i} [1, 1, r, r] -> the i-th conv layer's noise_const [r, r];
  ToRGB -> torgb; Skip -> skip. Conv0_up and Skip weights are also flipped in space: TF's
  up-sampling conv is a correlation of the up-sampled input, NVIDIA's PyTorch one a true
  convolution (a transposed convolution). D: {r}x{r}/FromRGB, Conv0, Conv1_down, Skip ->
  b{r}.fromrgb, conv0, conv1, skip (correlations in both, no flip); 4x4/Conv, Dense0, Output
  -> b4.conv, fc, out; LabelEmbed, Mapping{i} -> mapping.embed, fc{i} (stylegan2-ada TF).
  channel_base = 2 * fmap_base (TF's nf(stage) = fmap_base / 2^stage at resolution 2^(stage+1)).
Refused: conditional NVlabs/stylegan2 TF models (their label embedding is concatenated to z
before the normalisation, which the PyTorch layout cannot express), fmap_decay other than 1,
fmap_min or fmap_const that change widths, architectures other than orig/skip/resnet,
progressive-growing (StyleGAN 1) synthesis networks, and variables the layout has no place for.
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable

import numpy as np
import torch

from ...errors import CheckpointError
from ...registry import PublicFormat, PublicModel
from ...statedict import describe_mismatch, meta_build, registration_limit
from .network import (ARCHITECTURES, ACTIVATION_GAINS, Discriminator, Generator,
                      StyleGAN2ADAConfig, setup_filter)

ARCH = "stylegan2_ada"
State = dict[str, torch.Tensor]
_BLOCK = re.compile(r"^b(\d+)$")
_FC = re.compile(r"^fc(\d+)$")
# A stored filter is taken as the taps its outer product came from when they agree this well.
_FILTER_RTOL = 1e-5
# Synthesis kwargs the stylegan3 repository passes at the Generator's top level.
_SYNTHESIS_KEYS = ("channel_base", "channel_max", "num_fp16_res", "conv_clamp", "architecture",
                   "resample_filter", "use_noise", "activation")


# --------------------------------------------------------------------------- duck typing

def _is_module(obj: Any) -> bool:
    """A persistent network record: a class name, children and a state_dict."""
    return isinstance(getattr(obj, "class_name", None), str) \
        and isinstance(getattr(obj, "modules", None), dict) \
        and callable(getattr(obj, "state_dict", None))


def _is_tf_network(obj: Any) -> bool:
    return isinstance(getattr(obj, "static_kwargs", None), dict) \
        and isinstance(getattr(obj, "variables", None), list) \
        and isinstance(getattr(obj, "components", None), dict)


def _child(module: Any, name: str) -> Any:
    child = module.modules.get(name) if _is_module(module) else None
    return child if _is_module(child) else None


def _attr(module: Any, name: str, default: Any = None) -> Any:
    attrs = getattr(module, "attributes", None)
    return attrs.get(name, default) if isinstance(attrs, dict) else default


def _kwargs(module: Any) -> dict:
    kw = getattr(module, "init_kwargs", None)
    return kw if isinstance(kw, dict) else {}


def _sub(kw: dict, name: str) -> dict:
    value = kw.get(name)
    return value if isinstance(value, dict) else {}


def is_stylegan2_generator(module: Any) -> bool:
    """NVIDIA's StyleGAN2 Generator: mapping + a synthesis network of b4 ... blocks (a
    StyleGAN3 one has `input` and L{i}_{size}_{ch} layers instead)."""
    if not _is_module(module) or module.class_name != "Generator":
        return False
    synthesis = _child(module, "synthesis")
    return synthesis is not None and _child(module, "mapping") is not None \
        and _child(synthesis, "b4") is not None


# --------------------------------------------------------------------------- small helpers

def _shape(state: State, key: str) -> tuple[int, ...] | None:
    t = state.get(key)
    return tuple(int(n) for n in t.shape) if isinstance(t, torch.Tensor) else None


def _need(state: State, key: str, dims: int, what: str) -> tuple[int, ...]:
    shape = _shape(state, key)
    if shape is None or len(shape) != dims:
        raise CheckpointError(f"{what}: {key!r} is {'missing' if shape is None else shape}, "
                              f"expected a {dims}-d tensor")
    return shape


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _plain(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of simple file data (training_set_kwargs): numbers, strings, lists
    and dicts of them; anything else becomes its type name."""
    if depth > 6:
        return "..."
    if value is None or isinstance(value, (bool, int, str)):
        return value if not isinstance(value, str) else value[:500]
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in list(value)[:64]]
    if isinstance(value, dict):
        return {str(k)[:100]: _plain(v, depth + 1) for k, v in list(value.items())[:64]}
    return type(value).__name__


def _taps_of(f: torch.Tensor | None, hint: Any) -> tuple[tuple[float, ...], bool]:
    """1-D taps whose normalised outer product is the stored filter `f` ([n, n], or [n] for
    the separable >= 8-tap form), preferring the constructor's list when it gives `f`; the
    bool says whether `f` is such a product (otherwise only its size is matched: the stored
    values are loaded and used as they are)."""
    if f is None:
        return (1.0, 3.0, 3.0, 1.0), True
    f = f.detach().double()
    candidates = []
    if isinstance(hint, (list, tuple)) and hint and all(_number(t) is not None for t in hint):
        candidates.append(tuple(float(t) for t in hint))
    candidates.append((1.0, 3.0, 3.0, 1.0))
    if f.dim() == 1:
        candidates.append(tuple(float(t) for t in f / f.sum()))
    elif f.dim() == 2 and f.shape[0] == f.shape[1]:
        taps = f.sum(dim=0)
        lo = float(taps.abs().min())
        if lo > 0:
            scaled = taps / lo
            rounded = scaled.round()
            if torch.allclose(scaled, rounded, rtol=0, atol=1e-4):
                candidates.append(tuple(float(t) for t in rounded))
        candidates.append(tuple(float(t) for t in taps))
    for taps in candidates:
        try:
            built = setup_filter(taps).double()
        except (ValueError, RuntimeError, ZeroDivisionError):
            continue
        if built.shape == f.shape and torch.allclose(built, f, rtol=_FILTER_RTOL, atol=1e-7):
            return taps, True
    n = int(f.shape[0])
    return tuple([1.0] * n), False


def solve_channels(counts: dict[int, int], hints: tuple[Any, Any],
                   what: str) -> tuple[int, int]:
    """(channel_base, channel_max) with min(channel_base // r, channel_max) == counts[r] for
    every resolution; the constructor's values first when they fit."""
    hint_base, hint_max = (_number(h) for h in hints)
    bases = [int(hint_base) if hint_base and hint_base == int(hint_base) else None,
             32768, 16384, 65536, 8192]
    bases += [c * r for r, c in sorted(counts.items())]
    maxes = [int(hint_max) if hint_max and hint_max == int(hint_max) else None, 512,
             max(counts.values())]
    for m in maxes:
        for b in bases:
            if b is None or m is None or b < 1 or m < 1:
                continue
            if all(min(b // r, m) == c for r, c in counts.items()):
                return b, m
    shown = ", ".join(f"{r} px: {c}" for r, c in sorted(counts.items()))
    raise CheckpointError(f"{what}: its channel counts ({shown}) follow no "
                          f"min(channel_base // resolution, channel_max) rule")


def _resolutions(module: Any, what: str) -> list[int]:
    """The b{r} blocks of a synthesis network / D, checked to be 4 (or 8) ... R in steps of 2."""
    found = sorted(int(m.group(1)) for name in module.modules
                   if (m := _BLOCK.match(name)) and _is_module(module.modules[name]))
    if not found:
        raise CheckpointError(f"{what} has no b4 ... blocks")
    top = found[-1]
    if top & (top - 1) or top > (1 << 15) or top < 4:
        raise CheckpointError(f"{what}: its largest block b{top} is not a power-of-two "
                              f"resolution between 4 and 32768")
    return found


def _count(value: Any, default: int) -> int:
    """A constructor's layer count when it is a sensible integer, else the default."""
    n = _number(value)
    return int(n) if n is not None and n == int(n) and 0 <= n <= 64 else default


def _fp16_count(flags: list, res: list[int], claimed: Any) -> int:
    """num_fp16_res from the blocks' stored use_fp16 flags (the constructor's value when it
    gives the same flags, or when no block stores one)."""
    n = _number(claimed)
    n = int(n) if n is not None and n >= 0 and n == int(n) else None
    if all(f is None for f in flags):
        return n or 0
    on = [r for r, f in zip(res, flags) if f is True]
    top = max(res)
    if n is not None and [r for r in res if r >= max(2 * top // 2 ** n, 8)] == on:
        return n
    return len(on)


# --------------------------------------------------------------------------- config from a G

def _mapping_values(state: State, prefix: str, mapping: Any, kw: dict,
                    what: str) -> dict[str, Any]:
    """num_layers, embed/layer features, lr multiplier, activation of a mapping network."""
    layers = sum(1 for k in state if re.fullmatch(re.escape(prefix) + r"fc\d+\.weight", k))
    embed = _shape(state, prefix + "embed.weight")
    out: dict[str, Any] = {"layers": layers, "c_dim": embed[1] if embed else 0,
                           "embed_features": embed[0] if embed else None}
    if layers > 1:
        out["layer_features"] = _need(state, prefix + "fc0.weight", 2, what)[0]
    fc0 = _child(mapping, "fc0") if mapping is not None else None
    lr = _number(_attr(fc0, "bias_gain")) if fc0 is not None else None
    if lr is None and fc0 is not None:
        gain, fan_in = _number(_attr(fc0, "weight_gain")), _shape(state, prefix + "fc0.weight")
        if gain and fan_in:
            lr = gain * math.sqrt(fan_in[1])
    if lr is None:
        lr = _number(kw.get("lr_multiplier"))
    out["lr"] = lr
    act = _attr(fc0, "activation") if fc0 is not None else None
    out["activation"] = act if act is not None else kw.get("activation")
    return out


def generator_values(G: Any, state: State, what: str) -> dict[str, Any]:
    """StyleGAN2ADAConfig fields (G's) from a Generator record's tensors and attributes."""
    kw = _kwargs(G)
    syn_kw = {**{k: kw[k] for k in _SYNTHESIS_KEYS if k in kw}, **_sub(kw, "synthesis_kwargs")}
    map_kw = _sub(kw, "mapping_kwargs")
    synthesis, mapping = _child(G, "synthesis"), _child(G, "mapping")
    res = _resolutions(synthesis, f"{what}: the synthesis network")
    top = res[-1]
    expected = [2 ** i for i in range(2, top.bit_length())]
    if res != expected:
        raise CheckpointError(f"{what}: the synthesis network has blocks "
                              f"{['b%d' % r for r in res]}, expected b4 ... b{top}")
    counts = {4: _need(state, "synthesis.b4.const", 3, what)[0]}
    for r in res[1:]:
        counts[r] = _need(state, f"synthesis.b{r}.conv1.weight", 4, what)[0]
    base, cmax = solve_channels(counts, (syn_kw.get("channel_base"), syn_kw.get("channel_max")),
                                f"{what} (synthesis)")
    w_dim = _need(state, "synthesis.b4.conv1.affine.weight", 2, what)[1]
    rgb = _need(state, f"synthesis.b{top}.torgb.weight", 4, what)
    b4 = _child(synthesis, "b4")
    if top > 4:
        if f"synthesis.b{top // 2}.torgb.weight" in state:
            arch = "skip"
        elif f"synthesis.b{top}.skip.weight" in state:
            arch = "resnet"
        else:
            arch = "orig"
    else:
        arch = _attr(b4, "architecture", syn_kw.get("architecture", "skip"))
    m = _mapping_values(state, "mapping.", mapping, map_kw, what)
    fc0 = _need(state, "mapping.fc0.weight", 2, what) if m["layers"] else None
    if fc0 is None:
        raise CheckpointError(f"{what}: the mapping network has no fc0 layer")
    embed = m["embed_features"] or 0
    z_dim = fc0[1] - embed
    layer = _child(b4, "conv1")
    num_fp16 = _fp16_count([_attr(_child(synthesis, f"b{r}"), "use_fp16") for r in res], res,
                           syn_kw.get("num_fp16_res"))
    w_avg_beta = _attr(mapping, "w_avg_beta", map_kw.get("w_avg_beta", 0.995))
    if "mapping.w_avg" not in state:
        w_avg_beta = None
    elif _number(w_avg_beta) is None:
        w_avg_beta = 0.995
    taps, _ = _taps_of(state.get("synthesis.b4.resample_filter"), syn_kw.get("resample_filter"))
    clamp = _attr(layer, "conv_clamp", syn_kw.get("conv_clamp"))
    values = dict(
        z_dim=z_dim, c_dim=m["c_dim"], w_dim=w_dim, img_resolution=top, img_channels=rgb[0],
        mapping_layers=m["layers"], mapping_embed_features=m["embed_features"],
        mapping_layer_features=m.get("layer_features"),
        mapping_activation=m["activation"] or "lrelu",
        mapping_lr_multiplier=m["lr"] if m["lr"] is not None else 0.01,
        w_avg_beta=_number(w_avg_beta), channel_base=base, channel_max=cmax,
        architecture=arch, num_fp16_res=int(num_fp16),
        conv_clamp=_number(clamp), resample_filter=taps,
        use_noise="synthesis.b4.conv1.noise_const" in state,
        activation=_attr(layer, "activation", syn_kw.get("activation", "lrelu")))
    _drop_defaults(values, w_dim, embed_key="mapping_embed_features",
                   layer_key="mapping_layer_features")
    _check_claims(kw, syn_kw, map_kw, values, counts, what)
    return values


def _drop_defaults(values: dict, width: int, embed_key: str, layer_key: str) -> None:
    """None for mapping widths equal to their defaults (w_dim / cmap_dim)."""
    if values.get(embed_key) == width:
        values[embed_key] = None
    if values.get(layer_key) in (width, None):
        values[layer_key] = None


def _check_claims(kw: dict, syn_kw: dict, map_kw: dict, values: dict, counts: dict[int, int],
                  what: str) -> None:
    """The constructor kwargs must not contradict the tensors where it changes the network."""
    problems = []
    for key in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"):
        claimed = kw.get(key)
        if _number(claimed) is not None and int(claimed) != values[key]:
            problems.append(f"{key}={claimed} but the tensors give {values[key]}")
    claimed = map_kw.get("num_layers")
    if _number(claimed) is not None and int(claimed) != values["mapping_layers"]:
        problems.append(f"mapping_kwargs.num_layers={claimed} but the file has "
                        f"{values['mapping_layers']} mapping layers")
    base, cmax = _number(syn_kw.get("channel_base")), _number(syn_kw.get("channel_max"))
    if base is not None or cmax is not None:
        b = int(base) if base is not None else 32768
        m = int(cmax) if cmax is not None else 512
        wrong = [(r, min(b // r, m), c) for r, c in sorted(counts.items())
                 if b >= 1 and m >= 1 and min(b // r, m) != c]
        if wrong:
            r, want, have = wrong[0]
            problems.append(f"channel_base={base and int(base)}, channel_max={cmax and int(cmax)} "
                            f"give {want} channels at {r} px but the tensors have {have}")
    arch = syn_kw.get("architecture")
    if isinstance(arch, str) and arch != values["architecture"]:
        problems.append(f"architecture={arch!r} but the blocks are {values['architecture']!r}")
    noise = syn_kw.get("use_noise")
    if isinstance(noise, bool) and noise != values["use_noise"]:
        has = "has" if values["use_noise"] else "has no"
        problems.append(f"use_noise={noise} but the file {has} noise buffers")
    if problems:
        raise CheckpointError(f"{what}: its constructor arguments (init_kwargs) disagree with "
                              f"its tensors: {'; '.join(problems)}")


# --------------------------------------------------------------------------- config from a D

def discriminator_values(D: Any, state: State, what: str) -> dict[str, Any]:
    """StyleGAN2ADAConfig fields (D's, plus c_dim / img_resolution / img_channels) from a
    Discriminator record."""
    kw = _kwargs(D)
    res = [r for r in _resolutions(D, what) if r > 4]
    if not res:
        raise CheckpointError(f"{what} has no b8 ... blocks before its b4 epilogue")
    top = res[-1]
    if res != [2 ** i for i in range(3, top.bit_length())]:
        raise CheckpointError(f"{what} has blocks {['b%d' % r for r in res]}, expected "
                              f"b{top} ... b8")
    counts = {r: _need(state, f"b{r}.conv0.weight", 4, what)[0] for r in res}
    counts[4] = _need(state, "b4.conv.weight", 4, what)[0]
    base, cmax = solve_channels(counts, (kw.get("channel_base"), kw.get("channel_max")),
                                what)
    rgb = _need(state, f"b{top}.fromrgb.weight", 4, what)
    if f"b{top // 2}.fromrgb.weight" in state or "b4.fromrgb.weight" in state:
        arch = "skip"
    elif f"b{top}.skip.weight" in state:
        arch = "resnet"
    else:
        arch = "orig"
    epilogue = _child(D, "b4")
    mbstd = _child(epilogue, "mbstd")
    conv_in = _need(state, "b4.conv.weight", 4, what)[1]
    mb_channels = conv_in - counts[4]
    epi_kw = _sub(kw, "epilogue_kwargs")
    group = _attr(mbstd, "group_size", epi_kw.get("mbstd_group_size", 4)) if mbstd is not None \
        else epi_kw.get("mbstd_group_size", 4)
    out = _need(state, "b4.out.weight", 2, what)[0]
    map_kw = _sub(kw, "mapping_kwargs")
    m = _mapping_values(state, "mapping.", _child(D, "mapping"), map_kw, what)
    c_dim = m["c_dim"]
    cmap = out if c_dim else None
    block = _child(D, f"b{top}")
    conv0 = _child(block, "conv0")
    num_fp16 = _fp16_count([_attr(_child(D, f"b{r}"), "use_fp16") for r in res], res,
                           kw.get("num_fp16_res"))
    taps, _ = _taps_of(state.get(f"b{top}.resample_filter"),
                       _sub(kw, "block_kwargs").get("resample_filter"))
    values = dict(
        c_dim=c_dim, img_resolution=top, img_channels=rgb[1], d_architecture=arch,
        d_channel_base=base, d_channel_max=cmax, d_num_fp16_res=int(num_fp16),
        d_conv_clamp=_number(_attr(conv0, "conv_clamp", kw.get("conv_clamp"))),
        d_resample_filter=taps,
        d_activation=_attr(conv0, "activation", _sub(kw, "block_kwargs").get("activation",
                                                                             "lrelu")),
        mbstd_group_size=int(group) if _number(group) is not None else None,
        mbstd_num_channels=mb_channels, cmap_dim=cmap,
        d_mapping_layers=m["layers"] if c_dim else _count(map_kw.get("num_layers"), 8),
        d_mapping_embed_features=m["embed_features"] if c_dim else None,
        d_mapping_layer_features=m.get("layer_features") if c_dim else None,
        d_mapping_activation=(m["activation"] or "lrelu") if c_dim else "lrelu",
        d_mapping_lr_multiplier=m["lr"] if c_dim and m["lr"] is not None else 0.01)
    if c_dim and cmap is not None:
        if values["d_mapping_embed_features"] == cmap:
            values["d_mapping_embed_features"] = None
        if values["d_mapping_layer_features"] == cmap:
            values["d_mapping_layer_features"] = None
    if cmap is not None and cmap == counts[4]:
        values["cmap_dim"] = None
    problems = []
    for key in ("c_dim", "img_resolution", "img_channels"):
        claimed = kw.get(key)
        if _number(claimed) is not None and int(claimed) != values[key]:
            problems.append(f"{key}={claimed} but the tensors give {values[key]}")
    claimed = kw.get("architecture")
    if isinstance(claimed, str) and claimed != arch:
        problems.append(f"architecture={claimed!r} but the blocks are {arch!r}")
    claimed = map_kw.get("num_layers")
    if c_dim and _number(claimed) is not None and int(claimed) != m["layers"]:
        problems.append(f"mapping_kwargs.num_layers={claimed} but the file has {m['layers']} "
                        f"label mapping layers")
    claimed = epi_kw.get("mbstd_num_channels")
    if _number(claimed) is not None and int(claimed) != mb_channels:
        problems.append(f"epilogue_kwargs.mbstd_num_channels={claimed} but b4.conv takes "
                        f"{mb_channels} extra channels")
    if problems:
        raise CheckpointError(f"{what}: its constructor arguments (init_kwargs) disagree with "
                              f"its tensors: {'; '.join(problems)}")
    return values


# --------------------------------------------------------------------------- the config

def make_config(g_values: dict | None, d_values: dict | None, name: str) -> StyleGAN2ADAConfig:
    """One config from G's and D's fields (they must agree on label size, resolution and
    image channels); D's fields default to G's widths when the file has no D."""
    fields: dict[str, Any] = {}
    if g_values:
        fields.update(g_values)
        fields.update(d_channel_base=g_values["channel_base"],
                      d_channel_max=g_values["channel_max"])
    if d_values:
        if g_values:
            clash = [f"{k}: G {g_values[k]}, D {d_values[k]}"
                     for k in ("c_dim", "img_resolution", "img_channels")
                     if g_values[k] != d_values[k]]
            if clash:
                raise CheckpointError(f"{name}: its G and D do not belong together "
                                      f"({'; '.join(clash)})")
        fields.update(d_values)
    for key in ("mapping_activation", "activation", "d_activation", "d_mapping_activation"):
        if key in fields and fields[key] not in ACTIVATION_GAINS:
            raise CheckpointError(f"{name}: activation {fields[key]!r} ({key}) is not supported "
                                  f"(only {', '.join(ACTIVATION_GAINS)})")
    for key in ("architecture", "d_architecture"):
        if key in fields and fields[key] not in ARCHITECTURES:
            raise CheckpointError(f"{name}: architecture {fields[key]!r} is not one of "
                                  f"{ARCHITECTURES}")
    try:
        return StyleGAN2ADAConfig(**fields)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{name}: the networks it describes are not a valid "
                              f"StyleGAN2-ADA config ({exc})") from None


def check_states(cfg: StyleGAN2ADAConfig, states: dict[str, State], name: str) -> None:
    """Every role's keys and shapes equal the network cfg builds (built on the meta device,
    bounded by the file's tensor count)."""
    count = sum(len(s) for s in states.values())
    for role, state in states.items():
        make: Callable[[], Any] = (lambda: Discriminator(cfg)) if role == "D" \
            else (lambda: Generator(cfg))
        net = meta_build(make, registration_limit(count), f"{name} ({role})")
        problems = describe_mismatch(net.state_dict(), state)
        if problems:
            raise CheckpointError(f"{name}: its {role} does not match the StyleGAN2-ADA network "
                                  f"its shapes describe: {problems}")


# --------------------------------------------------------------------------- PyTorch era

def _augment_p(pipe: Any) -> float | None:
    if not _is_module(pipe):
        return None
    p = getattr(pipe, "buffers", {}).get("p") if isinstance(getattr(pipe, "buffers", None),
                                                            dict) else None
    if isinstance(p, torch.Tensor) and p.numel() == 1:
        value = float(p.reshape(()))
        return value if math.isfinite(value) else None
    return None


def read_pytorch(obj: dict, name: str) -> PublicModel | None:
    generators = {role: obj.get(role) for role in ("G_ema", "G")
                  if is_stylegan2_generator(obj.get(role))}
    if not generators:
        return None
    for role in ("G_ema", "G"):
        if role not in generators and _is_module(obj.get(role)):
            raise CheckpointError(f"{name}: its {role} is a {obj[role].class_name} that is not "
                                  f"a StyleGAN2 generator, unlike its "
                                  f"{', '.join(generators)}")
    states: dict[str, State] = {}
    g_values = None
    for role, G in generators.items():
        state = dict(G.state_dict())
        values = generator_values(G, state, f"{name} ({role})")
        if g_values is not None and values != g_values:
            diff = sorted(k for k in values if values[k] != g_values.get(k))
            raise CheckpointError(f"{name}: its G and G_ema are different networks "
                                  f"(they differ in {', '.join(diff)})")
        g_values = values
        states[role] = state
    D = obj.get("D")
    d_values = None
    if _is_module(D) and D.class_name == "Discriminator" and _child(D, "b4") is not None:
        d_state = dict(D.state_dict())
        d_values = discriminator_values(D, d_state, f"{name} (D)")
        states["D"] = d_state
    cfg = make_config(g_values, d_values, name)
    check_states(cfg, states, name)
    info: dict[str, Any] = {"source_format": "NVIDIA PyTorch network pickle",
                            "c_dim": cfg.c_dim}
    p = _augment_p(obj.get("augment_pipe"))
    if p is not None:
        info["augment_p"] = p
    tsk = obj.get("training_set_kwargs")
    if isinstance(tsk, dict):
        info["training_set_kwargs"] = _plain(tsk)
    notes = []
    if cfg.num_fp16_res or cfg.d_num_fp16_res:
        notes.append(f"the file trained its top {cfg.num_fp16_res} resolutions in float16; "
                     f"they run in float32 unless enable_fp16() is called (CUDA only)")
    return PublicModel(ARCH, cfg, {k: states[k] for k in ("G", "G_ema", "D") if k in states},
                       info=info, notes=notes)


# --------------------------------------------------------------------------- TensorFlow era

def tf_variables(net: Any) -> dict[str, np.ndarray]:
    """A TF-era network's variables with its components' under 'component/'."""
    out: dict[str, np.ndarray] = {}

    def take(record: Any, prefix: str, depth: int) -> None:
        if depth > 4:
            raise CheckpointError("a TensorFlow network nests its components too deep")
        for entry in record.variables:
            if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str)
                    and isinstance(entry[1], np.ndarray)):
                raise CheckpointError("a TensorFlow network's variables are not (name, array) "
                                      "pairs")
            out[prefix + entry[0]] = entry[1]
        for comp_name, comp in record.components.items():
            if _is_tf_network(comp):
                take(comp, f"{prefix}{comp_name}/", depth + 1)

    take(net, "", 0)
    return out


def _tf_kwargs(net: Any) -> dict:
    kw: dict = {}
    for comp in net.components.values():
        if _is_tf_network(comp):
            kw.update(comp.static_kwargs)
    kw.update(net.static_kwargs)
    return kw


class _TFMapper:
    """Moves TF variables into a PyTorch state_dict, tracking which were used."""

    def __init__(self, variables: dict[str, np.ndarray], what: str):
        self.vars = variables
        self.what = what
        self.used: set[str] = set()
        self.state: State = {}

    def has(self, name: str) -> bool:
        return name in self.vars

    def get(self, name: str, dims: int | None = None) -> torch.Tensor:
        if name not in self.vars:
            raise CheckpointError(f"{self.what}: TensorFlow variable {name!r} is missing")
        value = self.vars[name]
        if value.dtype.kind != "f" or (dims is not None and value.ndim != dims):
            raise CheckpointError(f"{self.what}: TensorFlow variable {name!r} is "
                                  f"{value.dtype} {tuple(value.shape)}, expected a "
                                  f"{dims}-d float array")
        self.used.add(name)
        return torch.from_numpy(np.array(value, dtype=np.float32, copy=True))

    def dense(self, tf: str, pt: str, bias: bool = True) -> None:
        self.state[pt + ".weight"] = self.get(tf + "/weight", 2).t().contiguous()
        if bias:
            self.state[pt + ".bias"] = self.get(tf + "/bias", 1)

    def conv(self, tf: str, pt: str, flip: bool = False, bias: bool = True) -> None:
        w = self.get(tf + "/weight", 4)  # [kh, kw, in, out]
        if flip:
            w = w.flip([0, 1])
        self.state[pt + ".weight"] = w.permute(3, 2, 0, 1).contiguous()
        if bias:
            self.state[pt + ".bias"] = self.get(tf + "/bias", 1)

    def modconv(self, tf: str, pt: str, flip: bool = False, noise: str | None = None) -> None:
        self.conv(tf, pt, flip=flip)
        self.state[pt + ".affine.weight"] = self.get(tf + "/mod_weight", 2).t().contiguous()
        self.state[pt + ".affine.bias"] = self.get(tf + "/mod_bias", 1) + 1
        if noise is not None and self.has(tf + "/noise_strength"):
            self.state[pt + ".noise_strength"] = self.get(tf + "/noise_strength", 0)
            self.state[pt + ".noise_const"] = self.get(noise, 4)[0, 0].contiguous()

    def unused(self, ignore: tuple[str, ...] = ()) -> list[str]:
        return sorted(k for k in self.vars if k not in self.used and k not in ignore)


def _tf_resolutions(names, prefix: str) -> list[int]:
    pat = re.compile(re.escape(prefix) + r"(\d+)x\1/")
    return sorted({int(m.group(1)) for n in names if (m := pat.match(n))})


def _check_tf_kwargs(kw: dict, what: str) -> None:
    decay = _number(kw.get("fmap_decay", 1))
    if decay is None or decay != 1:
        raise CheckpointError(f"{what}: fmap_decay={kw.get('fmap_decay')!r}; only the standard "
                              f"1.0 (channels halve when the resolution doubles) can be "
                              f"converted")
    arch = kw.get("architecture")
    if arch is not None and arch not in ARCHITECTURES:
        raise CheckpointError(f"{what}: architecture {arch!r} cannot be converted (only "
                              f"{', '.join(ARCHITECTURES)})")
    for key in ("nonlinearity", "mapping_nonlinearity"):
        act = kw.get(key)
        if act is not None and act not in ACTIVATION_GAINS:
            raise CheckpointError(f"{what}: {key}={act!r} cannot be converted (only "
                                  f"{', '.join(ACTIVATION_GAINS)})")
    base, low, high = (_number(kw.get(k, d)) for k, d in
                       (("fmap_base", 16384), ("fmap_min", 1), ("fmap_max", 512)))
    res = _number(kw.get("resolution", 1024)) or 1024
    if base and low and high and low > 1:
        stages = range(0, max(int(res).bit_length() - 1, 1))
        if any(int(base / 2.0 ** s) < low <= high for s in stages):
            raise CheckpointError(f"{what}: fmap_min={kw.get('fmap_min')} widens some layers "
                                  f"beyond fmap_base / 2^stage, which the PyTorch layout's "
                                  f"min(channel_base // res, channel_max) cannot express")
    if kw.get("fmap_const") is not None:
        raise CheckpointError(f"{what}: fmap_const={kw['fmap_const']!r}: a constant input "
                              f"wider than the 4 px layers has no place in the PyTorch layout")


def tf_generator_state(net: Any, what: str) -> tuple[State, dict]:
    """A TF-era G_main (Gs or G) as a PyTorch Generator state_dict, and its kwargs."""
    if not {"mapping", "synthesis"} <= set(net.components):
        raise CheckpointError(f"{what}: a TensorFlow generator without mapping and synthesis "
                              f"components")
    v = tf_variables(net)
    kw = _tf_kwargs(net)
    _check_tf_kwargs(kw, what)
    if "synthesis/4x4/Conv/mod_weight" not in v:
        kind = "StyleGAN (v1)" if any("StyleMod" in k for k in v) else "non-StyleGAN2"
        raise CheckpointError(f"{what}: a {kind} TensorFlow synthesis network "
                              f"(no 4x4/Conv/mod_weight); only StyleGAN2 can be converted")
    if "mapping/LabelConcat/weight" in v:
        raise CheckpointError(f"{what}: a conditional NVlabs/stylegan2 TensorFlow model; its "
                              f"label embedding is joined to z before the normalisation, "
                              f"which NVIDIA's PyTorch layout cannot express")
    t = _TFMapper(v, what)
    if t.has("dlatent_avg"):
        t.state["mapping.w_avg"] = t.get("dlatent_avg", 1)
    if t.has("mapping/LabelEmbed/weight"):
        t.dense("mapping/LabelEmbed", "mapping.embed")
    i = 0
    while t.has(f"mapping/Dense{i}/weight"):
        t.dense(f"mapping/Dense{i}", f"mapping.fc{i}")
        i += 1
    res = _tf_resolutions(v, "synthesis/")
    top = res[-1] if res else 4
    if not res or res != [2 ** k for k in range(2, top.bit_length())]:
        raise CheckpointError(f"{what}: synthesis blocks {res} are not 4 ... {top} px")
    const = t.get("synthesis/4x4/Const/const", 4)
    if const.shape[0] != 1:
        raise CheckpointError(f"{what}: 4x4/Const/const is {tuple(const.shape)}, expected "
                              f"[1, C, 4, 4]")
    t.state["synthesis.b4.const"] = const[0].contiguous()
    t.modconv("synthesis/4x4/Conv", "synthesis.b4.conv1", noise="synthesis/noise0")
    arch = kw.get("architecture", "skip")
    if t.has("synthesis/4x4/ToRGB/weight"):
        t.modconv("synthesis/4x4/ToRGB", "synthesis.b4.torgb")
    for r in res[1:]:
        k = r.bit_length() - 1
        s = f"synthesis/{r}x{r}"
        t.modconv(f"{s}/Conv0_up", f"synthesis.b{r}.conv0", flip=True,
                  noise=f"synthesis/noise{2 * k - 5}")
        t.modconv(f"{s}/Conv1", f"synthesis.b{r}.conv1", noise=f"synthesis/noise{2 * k - 4}")
        if t.has(f"{s}/ToRGB/weight"):
            t.modconv(f"{s}/ToRGB", f"synthesis.b{r}.torgb")
        if t.has(f"{s}/Skip/weight"):
            t.conv(f"{s}/Skip", f"synthesis.b{r}.skip", flip=True, bias=False)
    left = t.unused(ignore=("lod", "synthesis/lod"))
    if left:
        raise CheckpointError(f"{what}: TensorFlow variables the StyleGAN2 layout has no place "
                              f"for: {left[:8]}{' ...' if len(left) > 8 else ''}")
    # The resample filters are no TF variables: they come from resample_kernel.
    taps = kw.get("resample_kernel") or [1, 3, 3, 1]
    try:
        f = setup_filter(taps)
    except (TypeError, ValueError, RuntimeError):
        raise CheckpointError(f"{what}: resample_kernel {taps!r} is not a list of "
                              f"taps") from None
    state = t.state
    for r in res:
        state[f"synthesis.b{r}.resample_filter"] = f.clone()
        for layer in ("conv0", "conv1"):
            if f"synthesis.b{r}.{layer}.weight" in state:
                state[f"synthesis.b{r}.{layer}.resample_filter"] = f.clone()
        if f"synthesis.b{r}.skip.weight" in state:
            state[f"synthesis.b{r}.skip.resample_filter"] = f.clone()
    kw = {**kw, "architecture": arch}
    return state, kw


def tf_discriminator_state(net: Any, what: str) -> tuple[State, dict]:
    """A TF-era D_stylegan2 / D_main as a PyTorch Discriminator state_dict, and its kwargs."""
    v = tf_variables(net)
    kw = dict(net.static_kwargs)
    _check_tf_kwargs(kw, what)
    ada = getattr(net, "build_func_name", None) == "D_main"
    label = _number(kw.get("label_size", 0)) or 0
    if label and not any(k.startswith("LabelEmbed/") for k in v):
        raise CheckpointError(f"{what}: a conditional NVlabs/stylegan2 TensorFlow "
                              f"discriminator (labels projected without a mapping), which "
                              f"NVIDIA's PyTorch layout cannot express")
    t = _TFMapper(v, what)
    res = _tf_resolutions(v, "")
    top = res[-1] if res else 0
    if 4 not in res or res != [2 ** k for k in range(2, top.bit_length())] or top < 8:
        raise CheckpointError(f"{what}: discriminator blocks {res} are not {top} ... 4 px")
    for r in res[:0:-1]:
        s = f"{r}x{r}"
        if t.has(f"{s}/FromRGB/weight"):
            t.conv(f"{s}/FromRGB", f"b{r}.fromrgb")
        t.conv(f"{s}/Conv0", f"b{r}.conv0")
        t.conv(f"{s}/Conv1_down", f"b{r}.conv1")
        if t.has(f"{s}/Skip/weight"):
            t.conv(f"{s}/Skip", f"b{r}.skip", bias=False)
    if t.has("LabelEmbed/weight"):
        t.dense("LabelEmbed", "mapping.embed")
        i = 0
        while t.has(f"Mapping{i}/weight"):
            t.dense(f"Mapping{i}", f"mapping.fc{i}")
            i += 1
    if t.has("4x4/FromRGB/weight"):
        t.conv("4x4/FromRGB", "b4.fromrgb")
    t.conv("4x4/Conv", "b4.conv")
    t.dense("4x4/Dense0", "b4.fc")
    t.dense("Output", "b4.out")
    left = t.unused(ignore=("lod",))
    if left:
        raise CheckpointError(f"{what}: TensorFlow variables the StyleGAN2 layout has no place "
                              f"for: {left[:8]}{' ...' if len(left) > 8 else ''}")
    taps = kw.get("resample_kernel") or [1, 3, 3, 1]
    try:
        f = setup_filter(taps)
    except (TypeError, ValueError, RuntimeError):
        raise CheckpointError(f"{what}: resample_kernel {taps!r} is not a list of "
                              f"taps") from None
    state = t.state
    convs = ("fromrgb", "conv0", "conv1", "skip", "conv")  # D's Conv2dLayers
    for key in [k for k in state if k.endswith(".weight") and k.count(".") == 2
                and k.startswith("b") and k.split(".")[1] in convs]:
        state[key.rsplit(".", 1)[0] + ".resample_filter"] = f.clone()
    for r in res[1:]:
        state[f"b{r}.resample_filter"] = f.clone()
    # mbstd: NVlabs/stylegan2 disables it with group size <= 1, stylegan2-ada with 0 features
    feats = int(_number(kw.get("mbstd_num_features", 1)) or 0)
    group = kw.get("mbstd_group_size", None if ada else 4)
    if not ada and (group is None or (_number(group) or 0) <= 1):
        feats = 0
    kw = {**kw, "mbstd_num_features": feats, "mbstd_group_size": group,
          "architecture": kw.get("architecture", "resnet")}
    return _ordered_d(state), kw


def _ordered_d(state: State) -> State:
    """D's keys in the PyTorch state_dict order (blocks from the top, mapping, epilogue)."""
    def rank(key: str) -> tuple:
        head = key.split(".", 1)[0]
        if head == "mapping":
            return (1, 0, key)
        m = _BLOCK.match(head)
        r = int(m.group(1)) if m else 0
        return (2, 0, key) if r == 4 else (0, -r, key)
    return dict(sorted(state.items(), key=lambda kv: rank(kv[0])))


class _TFRecord:
    """A converted TF network dressed as the PyTorch-era record generator_values reads (its
    modules from the key names, its constructor kwargs from the TF static kwargs)."""

    def __init__(self, state: State, kw: dict, role: str):
        self.class_name = "Generator" if role == "G" else "Discriminator"
        self._state = state
        claims = {"img_resolution": kw.get("resolution"), "img_channels": kw.get("num_channels"),
                  "c_dim": kw.get("label_size")}
        if role == "G":
            fmap_base = _number(kw.get("fmap_base", 16384))
            claims.update(z_dim=kw.get("latent_size"), w_dim=kw.get("dlatent_size"))
            self.init_kwargs = {
                **claims,
                "synthesis_kwargs": {
                    "channel_base": int(2 * fmap_base) if fmap_base else None,
                    "channel_max": kw.get("fmap_max", 512),
                    "architecture": kw.get("architecture", "skip"),
                    "conv_clamp": kw.get("conv_clamp"),
                    "num_fp16_res": kw.get("num_fp16_res", 0),
                    "resample_filter": kw.get("resample_kernel") or [1, 3, 3, 1],
                    "activation": kw.get("nonlinearity", "lrelu")},
                "mapping_kwargs": {
                    "num_layers": kw.get("mapping_layers"),
                    "lr_multiplier": kw.get("mapping_lrmul", 0.01),
                    "activation": kw.get("mapping_nonlinearity", "lrelu"),
                    "w_avg_beta": kw.get("dlatent_avg_beta", 0.995)}}
        else:
            fmap_base = _number(kw.get("fmap_base", 16384))
            group = kw.get("mbstd_group_size")
            self.init_kwargs = {
                **claims,
                "channel_base": int(2 * fmap_base) if fmap_base else None,
                "channel_max": kw.get("fmap_max", 512),
                "architecture": kw.get("architecture", "resnet"),
                "conv_clamp": kw.get("conv_clamp"),
                "num_fp16_res": kw.get("num_fp16_res", 0),
                "block_kwargs": {"resample_filter": kw.get("resample_kernel") or [1, 3, 3, 1],
                                 "activation": kw.get("nonlinearity", "lrelu")},
                "epilogue_kwargs": {"mbstd_group_size": int(group) if _number(group) else None},
                "mapping_kwargs": {"lr_multiplier": kw.get("mapping_lrmul", 0.1),
                                   "activation": kw.get("nonlinearity", "lrelu")}}
        self.attributes: dict = {}
        self.modules = _tree(state)

    def state_dict(self) -> State:
        return self._state


class _Node:
    def __init__(self):
        self.class_name = "Module"
        self.modules: dict[str, _Node] = {}
        self.attributes: dict = {}
        self.init_kwargs: dict = {}

    def state_dict(self) -> State:
        return {}


def _tree(state: State) -> dict:
    """Children implied by dotted key names (enough for _child / _resolutions)."""
    root = _Node()
    for key in state:
        node = root
        for part in key.split(".")[:-1]:
            node = node.modules.setdefault(part, _Node())
    return root.modules


def read_tensorflow(obj: tuple, name: str) -> PublicModel | None:
    if len(obj) != 3 or not all(_is_tf_network(n) for n in obj):
        return None
    G, D, Gs = obj
    if not {"mapping", "synthesis"} <= set(Gs.components):
        return None
    states: dict[str, State] = {}
    g_values = None
    for role, net in (("G_ema", Gs), ("G", G)):
        state, kw = tf_generator_state(net, f"{name} ({'Gs' if role == 'G_ema' else 'G'})")
        values = generator_values(_TFRecord(state, kw, "G"), state, f"{name} ({role})")
        if g_values is not None and values != g_values:
            diff = sorted(k for k in values if values[k] != g_values.get(k))
            raise CheckpointError(f"{name}: its G and Gs are different networks (they differ "
                                  f"in {', '.join(diff)})")
        g_values = values
        states[role] = state
    d_state, d_kw = tf_discriminator_state(D, f"{name} (D)")
    d_values = discriminator_values(_TFRecord(d_state, d_kw, "D"), d_state, f"{name} (D)")
    if _need(d_state, "b4.fc.weight", 2, name)[0] != _need(d_state, "b4.conv.weight", 4,
                                                              name)[0]:
        raise CheckpointError(f"{name} (D): 4x4/Dense0 has "
                              f"{_shape(d_state, 'b4.fc.weight')[0]} features but the PyTorch "
                              f"layout needs as many as 4x4/Conv's "
                              f"{_shape(d_state, 'b4.conv.weight')[0]}")
    states["D"] = d_state
    cfg = make_config(g_values, d_values, name)
    check_states(cfg, states, name)
    info = {"source_format": "NVIDIA TensorFlow network pickle", "c_dim": cfg.c_dim}
    psi = _number(_tf_kwargs(Gs).get("truncation_psi"))
    notes = ["converted from TensorFlow: weights transposed, Conv0_up / Skip kernels flipped, "
             "mod_bias + 1"]
    if psi is not None and psi != 1:
        notes.append(f"the TensorFlow Gs defaulted to truncation_psi={psi}; NVIDIA's PyTorch "
                     f"code (and this model) default to 1")
    return PublicModel(ARCH, cfg, {k: states[k] for k in ("G", "G_ema", "D")}, info=info,
                       notes=notes)


# --------------------------------------------------------------------------- the format

def read(obj: Any, name: str) -> PublicModel | None:
    """A PublicModel for an NVIDIA StyleGAN2(-ADA) file, None for anything else (StyleGAN3
    files included), CheckpointError for one of ours that cannot be used."""
    if isinstance(obj, dict):
        return read_pytorch(obj, name)
    if isinstance(obj, tuple):
        return read_tensorflow(obj, name)
    return None


def diagnose(obj: Any) -> str | None:
    """What an NVIDIA-style file with a Generator that is not StyleGAN2 holds."""
    if not isinstance(obj, dict):
        return None
    G = obj.get("G_ema", obj.get("G"))
    if _is_module(G) and G.class_name == "Generator" and not is_stylegan2_generator(G):
        synthesis = _child(G, "synthesis")
        mods = sorted(synthesis.modules)[:6] if synthesis is not None else []
        return f"a Generator whose synthesis network has modules {mods} (no b4 block)"
    return None


FORMAT = PublicFormat("NVIDIA StyleGAN2-ADA network pickle", read, diagnose=diagnose,
                      container="nvidia_pickle")
