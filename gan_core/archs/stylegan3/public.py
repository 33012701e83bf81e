"""NVIDIA's StyleGAN3 network pickles (`stylegan3-{t,r}-*.pkl`, `network-snapshot-*.pkl` of the
stylegan3 repository), read as data.

gan_core's restricted reader has already unpickled the file without running anything from it:
this module sees a dict {'G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs'} whose
networks are persistent-object records (duck-typed here: `class_name`, `init_kwargs`,
`attributes`, `modules`, `state_dict()`). A file is StyleGAN3's when its generator's synthesis
network has a Fourier-feature `input` and `L{i}_{size}_{channels}` layers (a StyleGAN2 one has
b4 ... blocks and belongs to the stylegan2_ada family).

The config is rebuilt from the stored state: shapes give the widths, depths and label size;
the objects' stored attributes (output_scale, conv_clamp, margin, cutoffs, sampling rates,
magnitude_ema_beta, ...) are what NVIDIA's code actually ran with; the constructor kwargs
fill what neither records. The rebuilt config's per-layer geometry (sizes, sampling rates,
cutoffs, transition bands, up/down factors, filter lengths, padding) must equal every stored
per-layer attribute, and the networks it builds (on the meta device, bounded by the file's
tensor count) must have exactly the file's keys and shapes; otherwise a CheckpointError says
what differs. Stored filters are used as stored. The discriminator (the StyleGAN2 one, as the
stylegan3 repository trains with) is read by the stylegan2_ada family's rules.
"""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import numpy as np
import torch

from ...errors import CheckpointError
from ...registry import PublicFormat, PublicModel
from ...statedict import describe_mismatch, meta_build, registration_limit
from ..stylegan2_ada.network import Discriminator
from ..stylegan2_ada.public import discriminator_values
from .network import (
    D_FIELDS,
    Generator,
    StyleGAN3Config,
    discriminator_config,
    synthesis_geometry,
)

ARCH = "stylegan3"
State = dict[str, torch.Tensor]
_LAYER = re.compile(r"^L(\d+)_(\d+)_(\d+)$")
_FC = re.compile(r"^fc(\d+)$")
# Stored float attributes (cutoffs, transition bands) are compared this closely with ours.
_REL_TOL = 1e-6
# Channel bases tried before solving for one (T, R and the 256 px ablations).
_CHANNEL_GUESSES = ((32768, 512), (65536, 1024), (16384, 512), (32768, 1024))


# --------------------------------------------------------------------------- duck typing

def _is_module(obj: Any) -> bool:
    return isinstance(getattr(obj, "class_name", None), str) \
        and isinstance(getattr(obj, "modules", None), dict) \
        and callable(getattr(obj, "state_dict", None))


def _child(module: Any, name: str) -> Any:
    child = module.modules.get(name) if _is_module(module) else None
    return child if _is_module(child) else None


def _attrs(module: Any) -> dict:
    found = getattr(module, "attributes", None)
    return found if isinstance(found, dict) else {}


def _kwargs(module: Any) -> dict:
    found = getattr(module, "init_kwargs", None)
    return found if isinstance(found, dict) else {}


def _layer_names(synthesis: Any) -> list[str]:
    """The L{i}_{size}_{channels} children in index order (the stored layer_names when they
    name exactly those children)."""
    found = {}
    for name, child in synthesis.modules.items():
        match = _LAYER.match(name) if isinstance(name, str) else None
        if match and _is_module(child):
            found[int(match.group(1))] = name
    return [found[i] for i in sorted(found)]


def is_stylegan3_generator(module: Any) -> bool:
    """NVIDIA's StyleGAN3 Generator: mapping + a synthesis network with a Fourier `input`
    and L{i}_{size}_{ch} layers."""
    if not _is_module(module) or module.class_name != "Generator":
        return False
    synthesis = _child(module, "synthesis")
    return synthesis is not None and _child(module, "mapping") is not None \
        and _child(synthesis, "input") is not None and bool(_layer_names(synthesis))


# --------------------------------------------------------------------------- small helpers

def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _int(value: Any) -> int | None:
    """An integer attribute (also a size stored as a [2] array of equal values)."""
    if isinstance(value, (np.ndarray, list, tuple)):
        flat = np.asarray(value).reshape(-1).tolist() if not isinstance(value, np.ndarray) \
            else value.reshape(-1).tolist()
        if not flat or any(v != flat[0] for v in flat):
            return None
        value = flat[0]
    number = _number(value)
    return int(number) if number is not None and number == int(number) else None


def _first(*candidates: Any) -> Any:
    for value in candidates:
        if value is not None:
            return value
    return None


def _shape(state: State, key: str) -> tuple[int, ...] | None:
    t = state.get(key)
    return tuple(t.shape) if isinstance(t, torch.Tensor) else None


def _need(state: State, key: str, dims: int, what: str) -> tuple[int, ...]:
    shape = _shape(state, key)
    if shape is None or len(shape) != dims:
        raise CheckpointError(f"{what}: expected a {dims}-d tensor {key!r}, found "
                              f"{'none' if shape is None else list(shape)}")
    return shape


def _plain(value: Any, depth: int = 0) -> Any:
    """JSON-friendly copy of training_set_kwargs (numbers, strings, lists, dicts)."""
    if depth > 8:
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in list(value.items())[:64]}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in list(value)[:64]]
    if isinstance(value, (bool, str)) or value is None:
        return value if not isinstance(value, str) else value[:500]
    number = _number(value)
    if number is not None:
        return int(number) if isinstance(value, (int, np.integer)) else number
    return None


# --------------------------------------------------------------------------- the config

def _channels_for(base: float, cmax: int, geometry_cfg: StyleGAN3Config) -> list[int]:
    cfg = _replace(geometry_cfg, channel_base=base, channel_max=cmax)
    return [layer.out_channels for layer in synthesis_geometry(cfg).layers]


def _replace(cfg: StyleGAN3Config, **changes: Any) -> StyleGAN3Config:
    return dataclasses.replace(cfg, **changes)


def _solve_channels(counts: list[int], base_cfg: StyleGAN3Config, claimed: tuple[Any, Any],
                    what: str) -> tuple[float, int]:
    """channel_base and channel_max whose per-layer widths rint(min(base / 2 / cutoff, max))
    are the file's: the constructor kwargs' when they fit, else a known config, else solved
    from the unclamped layers."""
    tried = []
    if _number(claimed[0]) is not None and _int(claimed[1]) is not None:
        tried.append((claimed[0], _int(claimed[1])))
    tried.extend(_CHANNEL_GUESSES)
    for base, cmax in tried:
        base = int(base) if float(base) == int(base) else float(base)
        try:
            if _channels_for(base, cmax, base_cfg) == counts:
                return base, cmax
        except ValueError:
            continue
    cutoffs = [layer.out_cutoff for layer in synthesis_geometry(base_cfg).layers]
    cmax = max(counts[:-1])
    lo, hi = 0.0, math.inf
    for count, cutoff in zip(counts[:-1], cutoffs[:-1]):
        if count < cmax:  # unclamped: base / 2 / cutoff rounds to count
            lo, hi = max(lo, (count - 0.5) * cutoff), min(hi, (count + 0.5) * cutoff)
    if hi == math.inf:
        hi = lo = cmax * cutoffs[0]
    for base in sorted({2 ** round(math.log2(2 * max(lo, 1e-9))), round(lo + hi)}):
        try:
            if _channels_for(base, cmax, base_cfg) == counts:
                return base, cmax
        except ValueError:
            continue
    raise CheckpointError(f"{what}: its layer widths {counts} follow no channel_base / "
                          f"channel_max (widths are rint(min(channel_base / 2 / cutoff, "
                          f"channel_max)))")


def generator_values(G: Any, state: State, what: str) -> dict[str, Any]:
    """StyleGAN3Config fields (G's) from a Generator record and its state_dict."""
    kw = _kwargs(G)
    map_kw = kw.get("mapping_kwargs") if isinstance(kw.get("mapping_kwargs"), dict) else {}
    synthesis, mapping = _child(G, "synthesis"), _child(G, "mapping")
    inp = _child(synthesis, "input")
    syn_attrs, map_attrs, in_attrs = _attrs(synthesis), _attrs(mapping), _attrs(inp)
    names = _layer_names(synthesis)
    indices = [int(_LAYER.match(n).group(1)) for n in names]
    if indices != list(range(len(names))) or len(names) < 2:
        raise CheckpointError(f"{what}: its synthesis layers {names[:6]} are not L0 ... LN")
    stored_names = syn_attrs.get("layer_names")
    if isinstance(stored_names, (list, tuple)) and list(stored_names) != names:
        raise CheckpointError(f"{what}: its synthesis network lists layers "
                              f"{list(stored_names)[:4]}... but holds {names[:4]}...")
    layers = [_child(synthesis, n) for n in names]
    first, last = _attrs(layers[0]), _attrs(layers[-1])

    # widths and depths from the tensors
    w_avg = _need(state, "mapping.w_avg", 1, what)
    w_dim = w_avg[0]
    fcs = sorted(int(m.group(1)) for m in (_FC.match(n) for n in mapping.modules) if m)
    if fcs != list(range(len(fcs))) or not fcs:
        raise CheckpointError(f"{what}: its mapping network has layers {fcs}, expected fc0 ...")
    c_dim = _need(state, "mapping.embed.weight", 2, what)[1] \
        if "mapping.embed.weight" in state else 0
    fc0 = _need(state, "mapping.fc0.weight", 2, what)
    z_dim = fc0[1] - (w_dim if c_dim else 0)
    counts = [_need(state, f"synthesis.{n}.weight", 4, what)[0] for n in names]
    kernel = _need(state, f"synthesis.{names[0]}.weight", 4, what)[3]
    img_channels = counts[-1]
    size_of_last = int(_LAYER.match(names[-1]).group(2))
    img_resolution = _int(_first(_attrs(G).get("img_resolution"),
                                 syn_attrs.get("img_resolution"), kw.get("img_resolution"),
                                 size_of_last))
    if img_resolution != size_of_last:
        raise CheckpointError(f"{what}: img_resolution {img_resolution} but its last layer is "
                              f"{names[-1]}")
    for key, value in (("z_dim", z_dim), ("c_dim", c_dim), ("w_dim", w_dim),
                       ("img_channels", img_channels)):
        claimed = _int(kw.get(key))
        if kw.get(key) is not None and claimed != value:
            raise CheckpointError(f"{what}: its constructor arguments say {key}={kw.get(key)} "
                                  f"but its tensors give {value}")

    # what the code ran with: stored attributes, then kwargs, then NVIDIA's defaults
    fc0_attrs = _attrs(_child(mapping, "fc0"))
    lr = _number(_first(fc0_attrs.get("bias_gain"), map_kw.get("lr_multiplier"), 0.01))
    beta_raw = map_attrs["w_avg_beta"] if "w_avg_beta" in map_attrs else \
        map_kw.get("w_avg_beta", 0.998)
    beta = None if beta_raw is None else _number(beta_raw)
    critical = [bool(_attrs(m).get("is_critically_sampled")) for m in layers]
    num_critical = _int(_first(syn_attrs.get("num_critical"),
                               sum(critical) if any("is_critically_sampled" in _attrs(m)
                                                    for m in layers) else None,
                               kw.get("num_critical"), 2))
    up_factor = _int(first.get("up_factor"))
    up_taps = _shape(state, f"synthesis.{names[0]}.up_filter")
    filter_size = kw.get("filter_size", 6)
    if up_factor and up_taps:
        filter_size = up_taps[0] // up_factor
    tmp_rate, in_rate = _number(first.get("tmp_sampling_rate")), \
        _number(first.get("in_sampling_rate"))
    out_rate = _number(first.get("out_sampling_rate"))
    lrelu_up = kw.get("lrelu_upsampling", 2)
    if tmp_rate and in_rate and out_rate:
        lrelu_up = tmp_rate / max(in_rate, out_rate)
    # radial filters show in the non-critical layers' down filters (2-D); with none of those
    # the flag changes nothing and the kwargs' value is kept
    shapes = [_shape(state, f"synthesis.{n}.down_filter")
              for n in names[:max(0, len(names) - 1 - (num_critical or 0))]]
    shapes = [s for s in shapes if s is not None]
    radial = any(len(s) == 2 for s in shapes) if shapes else bool(kw.get("use_radial_filters"))
    clamp_raw = first["conv_clamp"] if "conv_clamp" in first else kw.get("conv_clamp", 256)
    values: dict[str, Any] = dict(
        z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
        img_channels=img_channels, mapping_layers=len(fcs),
        mapping_lr_multiplier=lr if lr is not None else 0.01, w_avg_beta=beta,
        num_layers=len(names) - 1, num_critical=num_critical,
        first_cutoff=_number(_first(in_attrs.get("bandwidth"), first.get("in_cutoff"),
                                    kw.get("first_cutoff"), 2.0)),
        first_stopband=_number(kw.get("first_stopband", 2 ** 2.1)),
        last_stopband_rel=_number(kw.get("last_stopband_rel", 2 ** 0.3)),
        margin_size=_int(_first(syn_attrs.get("margin_size"), kw.get("margin_size"), 10)),
        output_scale=_number(_first(syn_attrs.get("output_scale"), kw.get("output_scale"),
                                    0.25)),
        num_fp16_res=_int(_first(syn_attrs.get("num_fp16_res"), kw.get("num_fp16_res"), 4)),
        conv_kernel=kernel, filter_size=_int(filter_size),
        lrelu_upsampling=_int(lrelu_up), use_radial_filters=bool(radial),
        conv_clamp=None if clamp_raw is None else _number(clamp_raw),
        magnitude_ema_beta=_number(_first(first.get("magnitude_ema_beta"),
                                          kw.get("magnitude_ema_beta"), 0.999)))
    missing = [k for k, v in values.items() if v is None and k not in ("w_avg_beta",
                                                                        "conv_clamp")]
    if missing:
        raise CheckpointError(f"{what}: its stored attributes give no usable {missing}")
    if "conv_clamp" in last and last.get("conv_clamp") != clamp_raw:
        raise CheckpointError(f"{what}: its layers clamp at different values "
                              f"({clamp_raw} and {last.get('conv_clamp')})")
    try:
        base_cfg = StyleGAN3Config(**values)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{what}: its stored state describes no valid StyleGAN3 "
                              f"({exc})") from None
    values["channel_base"], values["channel_max"] = _solve_channels(
        counts, base_cfg, (kw.get("channel_base"), kw.get("channel_max")), what)
    values["_layers"] = names
    return values


def _check_geometry(cfg: StyleGAN3Config, G: Any, what: str) -> None:
    """Every stored per-layer attribute equals the geometry the config computes."""
    geo = synthesis_geometry(cfg)
    synthesis = _child(G, "synthesis")
    names = _layer_names(synthesis)
    if names != [layer.name for layer in geo.layers]:
        raise CheckpointError(f"{what}: its layers {names} are not the ones its config "
                              f"gives ({[layer.name for layer in geo.layers]})")
    problems = []

    def compare(where: str, attrs: dict, key: str, ours: Any) -> None:
        if key not in attrs:
            return
        stored = attrs[key]
        if isinstance(ours, bool):
            same = bool(stored) == ours
        elif isinstance(ours, int):
            same = _int(stored) == ours
        elif isinstance(ours, float):
            value = _number(stored) if not isinstance(stored, (np.ndarray, list, tuple)) \
                else _number(_int(stored))
            same = value is not None and math.isclose(value, ours, rel_tol=_REL_TOL,
                                                      abs_tol=1e-9)
        else:
            try:
                same = [int(v) for v in stored] == [int(v) for v in ours]
            except (TypeError, ValueError):
                same = False
        if not same:
            problems.append(f"{where}.{key}: file {stored!r}, config {ours!r}")

    inp = _attrs(_child(synthesis, "input"))
    g = geo.input
    for key, ours in (("channels", g.channels), ("size", g.size),
                      ("sampling_rate", g.sampling_rate), ("bandwidth", g.bandwidth)):
        compare("input", inp, key, ours)
    for layer in geo.layers:
        attrs = _attrs(_child(synthesis, layer.name))
        for key in ("is_torgb", "is_critically_sampled", "in_channels", "out_channels",
                    "in_size", "out_size", "in_sampling_rate", "out_sampling_rate",
                    "tmp_sampling_rate", "in_cutoff", "out_cutoff", "in_half_width",
                    "out_half_width", "conv_kernel", "up_factor", "up_taps", "down_factor",
                    "down_taps", "down_radial", "padding"):
            ours = getattr(layer, key)
            if key in ("tmp_sampling_rate", "in_sampling_rate", "out_sampling_rate"):
                ours = float(ours)
            compare(layer.name, attrs, key, list(ours) if key == "padding" else ours)
        if "conv_clamp" in attrs and attrs["conv_clamp"] != cfg.conv_clamp \
                and _number(attrs["conv_clamp"]) != cfg.conv_clamp:
            problems.append(f"{layer.name}.conv_clamp: file {attrs['conv_clamp']!r}, "
                            f"config {cfg.conv_clamp!r}")
    if problems:
        raise CheckpointError(f"{what}: its stored layer geometry differs from the StyleGAN3 "
                              f"geometry its config computes ({'; '.join(problems[:6])}"
                              f"{' ...' if len(problems) > 6 else ''}); this is not a network "
                              f"NVIDIA's StyleGAN3 code builds")


def _check_states(cfg: StyleGAN3Config, states: dict[str, State], name: str) -> None:
    count = sum(len(s) for s in states.values())
    for role, state in states.items():
        if role == "D":
            make = lambda: Discriminator(discriminator_config(cfg))
        else:
            make = lambda: Generator(cfg)
        net = meta_build(make, registration_limit(count), f"{name} ({role})")
        problems = describe_mismatch(net.state_dict(), state)
        if problems:
            raise CheckpointError(f"{name}: its {role} does not match the StyleGAN3 network "
                                  f"its stored state describes: {problems}")


def _augment_p(pipe: Any) -> float | None:
    buffers = getattr(pipe, "buffers", None) if _is_module(pipe) else None
    p = buffers.get("p") if isinstance(buffers, dict) else None
    if isinstance(p, torch.Tensor) and p.numel() == 1:
        value = float(p.reshape(()))
        return value if math.isfinite(value) else None
    return None


# --------------------------------------------------------------------------- the reader

def read(obj: Any, name: str) -> PublicModel | None:
    """A PublicModel for an NVIDIA StyleGAN3 pickle; None for anything else (StyleGAN2-ADA
    pickles included); CheckpointError for a StyleGAN3 file that cannot be used."""
    if not isinstance(obj, dict):
        return None
    generators = {role: obj.get(role) for role in ("G_ema", "G")
                  if is_stylegan3_generator(obj.get(role))}
    if not generators:
        return None
    for role in ("G_ema", "G"):
        if role not in generators and _is_module(obj.get(role)):
            raise CheckpointError(f"{name}: its {role} is a {obj[role].class_name} that is not "
                                  f"a StyleGAN3 generator, unlike its {', '.join(generators)}")
    states: dict[str, State] = {}
    g_values: dict[str, Any] | None = None
    for role, G in generators.items():
        state = dict(G.state_dict())
        values = generator_values(G, state, f"{name} ({role})")
        if g_values is not None and values != g_values:
            diff = sorted(k for k in values if values[k] != g_values.get(k))
            raise CheckpointError(f"{name}: its G and G_ema are different networks (they "
                                  f"differ in {', '.join(diff)})")
        g_values = values
        states[role] = state
    fields = {k: v for k, v in g_values.items() if not k.startswith("_")}
    D = obj.get("D")
    if _is_module(D) and D.class_name == "Discriminator" and _child(D, "b4") is not None:
        d_state = dict(D.state_dict())
        d_values = discriminator_values(D, d_state, f"{name} (D)")
        clash = [f"{k}: G {fields[k]}, D {d_values[k]}"
                 for k in ("c_dim", "img_resolution", "img_channels")
                 if d_values.get(k) != fields[k]]
        if clash:
            raise CheckpointError(f"{name}: its G and D do not belong together "
                                  f"({'; '.join(clash)})")
        fields.update({k: d_values[k] for k in D_FIELDS if k in d_values})
        states["D"] = d_state
    else:  # no D: the stylegan3 repository's D widths (R doubles G's, not D's)
        halve = 2 if fields["use_radial_filters"] else 1
        fields.update(d_channel_base=max(1, int(fields["channel_base"]) // halve),
                      d_channel_max=max(1, fields["channel_max"] // halve))
    try:
        cfg = StyleGAN3Config(**fields)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{name}: the networks it describes are not a valid StyleGAN3 "
                              f"config ({exc})") from None
    for role, G in generators.items():
        _check_geometry(cfg, G, f"{name} ({role})")
    _check_states(cfg, states, name)
    info: dict[str, Any] = {"source_format": "NVIDIA StyleGAN3 network pickle",
                            "variant": f"StyleGAN3-{cfg.variant}", "c_dim": cfg.c_dim}
    p = _augment_p(obj.get("augment_pipe"))
    if p is not None:
        info["augment_p"] = p
    tsk = obj.get("training_set_kwargs")
    if isinstance(tsk, dict):
        info["training_set_kwargs"] = _plain(tsk)
    notes = []
    if cfg.num_fp16_res:
        notes.append(f"the file trained its top {cfg.num_fp16_res} resolutions in float16; "
                     f"they run in float32 unless force_fp32=False is passed (CUDA only)")
    notes.extend(_kwargs_notes(generators, cfg))
    return PublicModel(ARCH, cfg, {k: states[k] for k in ("G", "G_ema", "D") if k in states},
                       info=info, notes=notes)


def _kwargs_notes(generators: dict[str, Any], cfg: StyleGAN3Config) -> list[str]:
    """Constructor kwargs that the stored state overrules (the state is what ran)."""
    notes = []
    kw = _kwargs(next(iter(generators.values())))
    for key in ("channel_base", "channel_max", "conv_kernel", "use_radial_filters",
                "magnitude_ema_beta", "conv_clamp", "num_fp16_res", "margin_size",
                "output_scale"):
        if key in kw and kw[key] != getattr(cfg, key) \
                and _number(kw[key]) != _number(getattr(cfg, key)):
            notes.append(f"init_kwargs say {key}={kw[key]!r}; the stored state gives "
                         f"{getattr(cfg, key)!r}, which is used")
    return notes


def diagnose(obj: Any) -> str | None:
    """For an NVIDIA-style dict whose generator is neither StyleGAN2 nor StyleGAN3."""
    if not isinstance(obj, dict):
        return None
    G = obj.get("G_ema", obj.get("G"))
    if _is_module(G) and G.class_name == "Generator" and not is_stylegan3_generator(G):
        synthesis = _child(G, "synthesis")
        if synthesis is not None and _child(synthesis, "input") is not None:
            return "a synthesis network with an input but no L{i}_{size}_{channels} layers"
    return None


FORMAT = PublicFormat("NVIDIA StyleGAN3 network pickle", read, diagnose=diagnose,
                      container="nvidia_pickle")
