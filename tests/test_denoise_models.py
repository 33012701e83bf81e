"""Denoising networks (KAIR DnCNN, DPIR DRUNet): public key layouts, recognition of public
files, numerical equivalence with an independent reading of each original architecture, and
GANModel.denoise on awkward inputs.

The references below are written with torch.nn.functional on the module's own weights, as the
originals compute (DnCNN: x - net(x), zero-padded 3x3 convs;
DRUNet: ResBlocks x + conv(relu(conv(x))), 2x2 stride-2 convs down, 2x2 transposed convs up,
additive skips, the noise map as the last input channel), so a wrong layer order, skip or
residual shows up as a numerical difference, not only as a key mismatch.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import gan_core
from gan_core.images import to_gray
from gan_core.archs import get_arch
from gan_core.archs.dncnn.network import DnCNN, DnCNNConfig
from gan_core.archs.drunet.network import DRUNetConfig, UNetRes
from gan_core.archs.fast_neural_style.network import TransformerNet

SHAPES = json.loads((Path(__file__).parent / "data" / "public_key_shapes_denoise.json").read_text())
PUBLIC = {k: v for k, v in SHAPES.items() if not k.startswith("_")}
MAKE = {"dncnn": DnCNN, "drunet": UNetRes}
SMALL_DRUNET = {"nc": (4, 8, 8, 16), "nb": 2}


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _random_state(shapes: dict[str, list[int]], seed: int = 0, scale: float = 0.1):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(shape, generator=g) * scale for k, shape in shapes.items()}


def _randomise(net: torch.nn.Module, seed: int = 0, scale: float = 0.1) -> torch.nn.Module:
    net.load_state_dict(_random_state({k: list(v.shape) for k, v in net.state_dict().items()},
                                      seed, scale))
    return net.eval()


def _shapes(net: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in net.state_dict().items()]


def _plain(cfg) -> dict:
    """asdict with tuples as lists, to compare with the reference's JSON constructor args."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}


def _save(tmp_path: Path, state: dict, name: str) -> Path:
    path = tmp_path / name
    torch.save(state, path)
    return path


# --------------------------------------------------------------------------- public layouts


@pytest.mark.parametrize("label", sorted(PUBLIC))
def test_public_layout_built_from_config(label):
    """Built from the public constructor arguments: the file's keys in order, its shapes and
    the parameter count the reference states."""
    entry = PUBLIC[label]
    spec = get_arch(entry["arch"])
    assert spec.task == "denoise"
    cfg = spec.config_cls(**entry["ctor"])
    with torch.device("meta"):
        net = MAKE[spec.name](cfg)
    assert _shapes(net) == [(k, tuple(s)) for k, s in entry["keys"].items()]
    assert sum(p.numel() for p in net.parameters()) == entry["n_params"]


def test_registry_builders():
    entry = PUBLIC["KAIR dncnn_color_blind"]
    parts = get_arch("dncnn").build(DnCNNConfig(**entry["ctor"]))
    assert set(parts) == {"G"}
    assert _shapes(parts["G"]) == [(k, tuple(s)) for k, s in entry["keys"].items()]
    parts = get_arch("drunet").build(DRUNetConfig(in_nc=2, out_nc=1, **SMALL_DRUNET))
    assert set(parts) == {"G"} and isinstance(parts["G"], UNetRes)
    assert set(gan_core.list_archs("denoise")) >= {"dncnn", "drunet"}
    for bad in ({"in_nc": 3, "out_nc": 1}, {"in_nc": 2, "out_nc": 2}, {"act_mode": "BR"},
                {"nb": 1}):
        with pytest.raises(ValueError):
            DnCNNConfig(**bad)
    for bad in ({"in_nc": 3, "out_nc": 3}, {"nc": (8, 8, 8)}, {"nb": 0},
                {"downsample_mode": "avgpool"}):
        with pytest.raises(ValueError):
            DRUNetConfig(**bad)


@pytest.mark.slow
@pytest.mark.parametrize("label", sorted(PUBLIC))
def test_public_file_is_recognised(tmp_path, label):
    entry = PUBLIC[label]
    state = _random_state(entry["keys"])
    path = _save(tmp_path, state, "model.pth")
    m = gan_core.load(path)
    assert m.arch == entry["arch"] and m.task == "denoise" and m.source == str(path)
    cfg = _plain(m.config)
    assert {k: cfg[k] for k in entry["ctor"]} == entry["ctor"]
    assert _shapes(m.module) == [(k, tuple(s)) for k, s in entry["keys"].items()]
    loaded = m.module.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


# --------------------------------------------------------------------------- key variants


def test_other_widths_depths_and_bias_are_recognised(tmp_path):
    net = _randomise(DnCNN(DnCNNConfig(in_nc=3, out_nc=3, nc=8, nb=5)))
    m = gan_core.load(_save(tmp_path, net.state_dict(), "my_dncnn.pth"))
    assert (m.arch, m.config) == ("dncnn", net.cfg)
    for cfg in (DRUNetConfig(in_nc=2, out_nc=1, **SMALL_DRUNET),
                DRUNetConfig(nc=(4, 6, 8, 10), nb=1, bias=True)):  # KAIR's copy: bias=True
        net = _randomise(UNetRes(cfg))
        sd = {f"module.{k}": v for k, v in net.state_dict().items()}  # DataParallel prefix
        m = gan_core.load(_save(tmp_path, sd, "unet.pth"))
        assert (m.arch, m.config) == ("drunet", cfg)
        assert list(m.module.state_dict()) == list(net.state_dict())


def test_near_misses_are_not_claimed(tmp_path):
    sd = _randomise(DnCNN(DnCNNConfig(nc=8, nb=4))).state_dict()
    fdncnn = dict(sd, **{"model.0.weight": torch.zeros(8, 2, 3, 3)})  # FDnCNN: in 2, out 1
    gap = {k: v for k, v in sd.items() if not k.startswith("model.4.")}  # a missing conv
    training = dict(sd, **{"model.3.weight": torch.ones(8)})  # BN in the 'BR' training layout
    d = _randomise(UNetRes(DRUNetConfig(**SMALL_DRUNET))).state_dict()
    no_map = dict(d, **{"m_head.weight": torch.zeros(4, 3, 3, 3)})  # UNetRes without the map
    for name, state in (("fdncnn.pth", fdncnn), ("gap.pth", gap), ("train.pth", training),
                        ("unet.pth", no_map)):
        with pytest.raises(gan_core.CheckpointError, match=f"{name}.*recognises"):
            gan_core.load(_save(tmp_path, state, name))


def test_public_model_round_trips_through_our_format(tmp_path):
    net = _randomise(UNetRes(DRUNetConfig(**SMALL_DRUNET)))
    m = gan_core.load(_save(tmp_path, net.state_dict(), "drunet_color.pth"))
    back = gan_core.load(gan_core.save(m, tmp_path / "ours.safetensors"))
    assert back.arch == "drunet" and back.config == m.config and back.task == "denoise"
    x = torch.rand(1, 13, 17, 3)
    assert torch.equal(back.denoise(x, sigma=25), m.denoise(x, sigma=25))


# --------------------------------------------------------------------------- references


def _ref_dncnn(sd, x):
    n = sum(k.endswith(".weight") for k in sd)
    h = x
    for i in range(n):
        h = F.conv2d(h, sd[f"model.{2 * i}.weight"], sd[f"model.{2 * i}.bias"], padding=1)
        if i < n - 1:
            h = F.relu(h)
    return x - h  # the net predicts the noise


def _ref_drunet(sd, x, nb):
    def conv(h, key, **kw):
        return F.conv2d(h, sd[key + ".weight"], sd.get(key + ".bias"), **kw)

    def res(h, p):
        return h + conv(F.relu(conv(h, p + ".res.0", padding=1)), p + ".res.2", padding=1)

    x1 = conv(x, "m_head", padding=1)
    skips, h = [x1], x1
    for lvl in (1, 2, 3):
        for b in range(nb):
            h = res(h, f"m_down{lvl}.{b}")
        h = conv(h, f"m_down{lvl}.{nb}", stride=2)  # 2x2, stride 2, no padding
        skips.append(h)
    for b in range(nb):
        h = res(h, f"m_body.{b}")
    for lvl, skip in zip((3, 2, 1), (skips[3], skips[2], skips[1])):
        h = F.conv_transpose2d(h + skip, sd[f"m_up{lvl}.0.weight"], sd.get(f"m_up{lvl}.0.bias"),
                               stride=2)
        for b in range(1, nb + 1):
            h = res(h, f"m_up{lvl}.{b}")
    return conv(h + x1, "m_tail", padding=1)  # the clean image, no global residual


@pytest.mark.parametrize("channels,nb", [(1, 17), (3, 6)])
def test_dncnn_matches_reference(channels, nb):
    net = _randomise(DnCNN(DnCNNConfig(in_nc=channels, out_nc=channels, nc=16, nb=nb)))
    x = torch.rand(2, channels, 11, 14)
    with torch.no_grad():
        ours = net(x)
        assert ours.shape == x.shape
        assert (ours - _ref_dncnn(net.state_dict(), x)).abs().max() < 1e-5


@pytest.mark.parametrize("cfg", [DRUNetConfig(in_nc=2, out_nc=1, **SMALL_DRUNET),
                                 DRUNetConfig(nc=(4, 6, 8, 10), nb=1, bias=True)])
def test_drunet_matches_reference(cfg):
    net = _randomise(UNetRes(cfg))
    img = torch.rand(2, cfg.out_nc, 16, 24)
    x = torch.cat([img, torch.full((2, 1, 16, 24), 25 / 255)], 1)  # DPIR's noise-level map
    with torch.no_grad():
        ours = net(x)
        assert ours.shape == img.shape
        assert (ours - _ref_drunet(net.state_dict(), x, cfg.nb)).abs().max() < 1e-5


# --------------------------------------------------------------------------- denoise


def _model(arch: str, channels: int = 3, seed: int = 0) -> gan_core.GANModel:
    if arch == "dncnn":
        cfg = DnCNNConfig(in_nc=channels, out_nc=channels, nc=8, nb=4)
        net = DnCNN(cfg)
    else:
        cfg = DRUNetConfig(in_nc=channels + 1, out_nc=channels, **SMALL_DRUNET)
        net = UNetRes(cfg)
    return gan_core.GANModel(arch, cfg, {"G": _randomise(net, seed)})


CASES = [("dncnn", 1), ("dncnn", 3), ("drunet", 1), ("drunet", 3)]


@pytest.mark.parametrize("arch,channels", CASES)
def test_denoise_any_shape(arch, channels):
    m = _model(arch, channels)
    for shape in [(2, 37, 53, 3), (1, 1, 1, 3), (1, 9, 7, 1), (1, 12, 10, 4), (1, 8, 300, 3)]:
        x = torch.rand(shape)
        y = m.denoise(x, sigma=10)
        assert y.shape == x.shape and y.dtype == torch.float32
        assert 0.0 <= y.min() and y.max() <= 1.0
        if shape[-1] == 4:
            assert torch.equal(y[..., 3], x[..., 3])
        assert torch.equal(m.denoise(x, strength=0.0), x)


@pytest.mark.parametrize("arch,channels", CASES)
def test_denoise_equals_the_network_on_a_fitting_size(arch, channels):
    """No padding needed: the output is the original's forward pass, clipped."""
    m = _model(arch, channels)
    x = torch.rand(2, 16, 24, channels)
    net_in = x.permute(0, 3, 1, 2)
    if arch == "drunet":
        net_in = torch.cat([net_in, torch.full((2, 1, 16, 24), 30 / 255)], 1)
    with torch.no_grad():
        ref = m.module(net_in).clamp(0, 1).permute(0, 2, 3, 1)
    y = m.denoise(x, sigma=30)
    assert (y - ref).abs().max() < 1e-5
    assert (m.denoise(x, sigma=30, strength=0.25) - torch.lerp(x, y, 0.25)).abs().max() < 1e-6
    assert (m.denoise(x[1:], sigma=30) - y[1:]).abs().max() < 1e-6  # images are independent


def test_sigma_feeds_drunet_and_is_ignored_by_dncnn(caplog):
    x = torch.rand(1, 20, 20, 3)
    drunet, dncnn = _model("drunet"), _model("dncnn")
    with caplog.at_level(logging.INFO, logger="gan_core"):
        default = drunet.denoise(x)
    assert "sigma 15" in caplog.text
    assert torch.equal(default, drunet.denoise(x, sigma=15))
    assert (drunet.denoise(x, sigma=50) - drunet.denoise(x, sigma=5)).abs().max() > 1e-4
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="gan_core"):
        assert torch.equal(dncnn.denoise(x, sigma=50), dncnn.denoise(x))
    assert "ignored" in caplog.text


def test_channel_conversions():
    """Gray models denoise each RGB channel as its own image; colour models see gray as RGB
    and give back its luma."""
    gray = _model("dncnn", 1)
    x = torch.rand(1, 10, 12, 3)
    y = gray.denoise(x)
    for i in range(3):
        assert (y[..., i:i + 1] - gray.denoise(x[..., i:i + 1])).abs().max() < 1e-6
    colour = _model("drunet", 3)
    g = torch.rand(1, 10, 12, 1)
    ref = to_gray(colour.denoise(g.expand(-1, -1, -1, 3), sigma=20))
    assert (colour.denoise(g, sigma=20) - ref).abs().max() < 1e-6


def test_denoise_options_and_errors(caplog):
    m = _model("dncnn")
    x = torch.rand(1, 13, 11, 3)
    # a tile larger than the image: the whole image in one pass, as without tile
    assert torch.equal(m.denoise(x, tile=256), m.denoise(x))
    with pytest.raises(ValueError, match="strength"):
        m.denoise(x, strength=-0.1)
    with pytest.raises(ValueError, match="sigma"):
        _model("drunet").denoise(x, sigma=300)
    with pytest.raises(ValueError, match="IMAGE"):
        m.denoise(torch.rand(1, 8, 8, 2))
    with pytest.raises(ValueError, match="cannot style"):
        m.stylize(x)
    fns = gan_core.GANModel("transformer_net", get_arch("transformer_net").config_cls(),
                            {"G": TransformerNet()})
    with pytest.raises(ValueError, match="cannot denoise"):  # a style model
        fns.denoise(x)
