"""Style-transfer networks (CycleGAN / pix2pix / PatchGAN / fast-neural-style): public key
layouts, recognition of public files, numerical equivalence with an independent reading of each
original architecture, and GANModel.stylize on awkward inputs.

The references below are written with torch.nn.functional on the module's own weights, layer by
layer as the original projects build them (reflection vs zero padding, x + block(x),
[skip, up] concatenation, nearest upsampling), so a wrong layer order, padding or skip in the
modules shows up as a numerical difference, not only as a key mismatch.
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
from gan_core.archs import get_arch
from gan_core.archs.cyclegan.network import CycleGANResnetConfig, ResnetGenerator
from gan_core.archs.layers.patchgan import NLayerDiscriminator, PatchGANConfig
from gan_core.archs.pix2pix.network import Pix2PixUnetConfig, UnetGenerator
from gan_core.archs.fast_neural_style.network import TransformerNet

SHAPES = json.loads((Path(__file__).parent / "data" / "public_key_shapes_style.json").read_text())
PUBLIC = {k: v for k, v in SHAPES.items() if not k.startswith("_")}
ARCH_OF_TAG = {"patchgan_d": "patchgan"}  # the reference's tag for a bare D; our registry name


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _random_state(shapes: dict[str, list[int]], seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for k, shape in shapes.items():
        if k.endswith("num_batches_tracked"):
            state[k] = torch.tensor(7, dtype=torch.int64)
        elif k.endswith("running_var"):
            state[k] = torch.rand(shape, generator=g) + 0.5
        else:
            state[k] = torch.randn(shape, generator=g) * 0.1
    return state


def _randomise(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights and BN statistics, so that every parameter matters to the output."""
    sd = _random_state({k: list(v.shape) for k, v in net.state_dict().items()}, seed)
    net.load_state_dict(sd)
    return net.eval()


def _shapes(net: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in net.state_dict().items()]


def _save(tmp_path: Path, state: dict, name: str = "latest_net_G_A.pth") -> Path:
    path = tmp_path / name
    torch.save(state, path)
    return path


# --------------------------------------------------------------------------- public layouts


@pytest.mark.parametrize("label", sorted(PUBLIC))
def test_public_layout_built_from_config(label):
    """Our module built from the public constructor arguments has the file's keys, in order,
    and shapes, and the parameter count the reference states."""
    entry = PUBLIC[label]
    spec = get_arch(ARCH_OF_TAG.get(entry["arch"], entry["arch"]))
    assert spec.task == "style"
    cfg = spec.config_cls(**entry["ctor"])
    with torch.device("meta"):  # same classes as the builder, without 54 M random inits
        net = _make(spec.name, cfg)
    assert _shapes(net) == [(k, tuple(s)) for k, s in entry["keys"].items()]
    assert sum(p.numel() for p in net.parameters()) == entry["n_params"]


def _make(arch: str, cfg) -> torch.nn.Module:
    return {"cyclegan_resnet": ResnetGenerator, "pix2pix_unet": UnetGenerator,
            "patchgan": NLayerDiscriminator, "transformer_net": TransformerNet}[arch](cfg)


def test_registry_builders_return_the_public_layouts():
    """The registry's builders (what our own checkpoints are rebuilt with) give the same G."""
    for label in ("cyclegan PatchGAN D (basic, instance)",
                  "fast_neural_style TransformerNet (candy/mosaic/udnie/rain_princess)"):
        entry = PUBLIC[label]
        spec = get_arch(ARCH_OF_TAG.get(entry["arch"], entry["arch"]))
        parts = spec.build(spec.config_cls(**entry["ctor"]))
        assert _shapes(parts["G"]) == [(k, tuple(s)) for k, s in entry["keys"].items()]
    small = get_arch("cyclegan_resnet").build(CycleGANResnetConfig(ngf=4, n_blocks=1, ndf=4))
    assert set(small) == {"G", "D"} and small["D"].model[0].in_channels == 3
    p2p = get_arch("pix2pix_unet").build(Pix2PixUnetConfig(num_downs=5, ngf=4, ndf=4))
    assert p2p["D"].model[0].in_channels == 6  # D sees cat(input, output)


@pytest.mark.slow
@pytest.mark.parametrize("label", sorted(PUBLIC))
def test_public_file_is_recognised(tmp_path, label):
    entry = PUBLIC[label]
    path = _save(tmp_path, _random_state(entry["keys"]))
    m = gan_core.load(path)
    assert m.arch == ARCH_OF_TAG.get(entry["arch"], entry["arch"])
    assert m.task == "style"
    cfg = dataclasses.asdict(m.config)
    assert {k: cfg[k] for k in entry["ctor"]} == entry["ctor"]
    assert _shapes(m.module) == [(k, tuple(s)) for k, s in entry["keys"].items()]
    assert m.source == str(path)


# --------------------------------------------------------------------------- key variants


def _load_module_of(tmp_path, net, name="latest_net_G.pth"):
    sd = _randomise(net).state_dict()
    m = gan_core.load(_save(tmp_path, sd, name))
    assert list(m.module.state_dict()) == list(sd)
    for k, v in sd.items():
        assert torch.equal(m.module.state_dict()[k], v), k
    return m


def test_dropout_key_shift_is_recognised(tmp_path):
    cfg = CycleGANResnetConfig(ngf=8, n_blocks=9, use_dropout=True)
    sd = ResnetGenerator(cfg).state_dict()
    assert "model.10.conv_block.6.weight" in sd and "model.10.conv_block.5.weight" not in sd
    m = _load_module_of(tmp_path, ResnetGenerator(cfg))
    assert m.config.use_dropout and m.config.n_blocks == 9 and m.config.ngf == 8


@pytest.mark.parametrize("padding_type,dropout", [("zero", False), ("zero", True)])
def test_zero_padded_blocks_are_recognised(tmp_path, padding_type, dropout):
    cfg = CycleGANResnetConfig(ngf=4, n_blocks=2, padding_type=padding_type, use_dropout=dropout)
    m = _load_module_of(tmp_path, ResnetGenerator(cfg))
    assert (m.config.padding_type, m.config.use_dropout) == (padding_type, dropout)


def test_batch_norm_six_block_generator(tmp_path):
    cfg = CycleGANResnetConfig(ngf=8, n_blocks=6, norm="batch")
    sd = ResnetGenerator(cfg).state_dict()
    # The original's key layout: blocks at 10-15, ConvTransposes at 16 and 19, last conv at 23, only
    # that conv biased under BatchNorm, BN keys at 2, 5, 8, 17, 20 and conv_block.2/.6.
    assert sd["model.16.weight"].shape == (32, 16, 3, 3) and "model.23.bias" in sd
    assert "model.1.bias" not in sd and "model.15.conv_block.6.running_var" in sd
    m = _load_module_of(tmp_path, ResnetGenerator(cfg))
    assert (m.config.norm, m.config.n_blocks, m.config.use_dropout) == ("batch", 6, False)


def test_unet_128_and_instance_norm_unet(tmp_path):
    m = _load_module_of(tmp_path, UnetGenerator(Pix2PixUnetConfig(num_downs=7, ngf=4)))
    assert (m.config.num_downs, m.config.norm) == (7, "batch")
    m = _load_module_of(tmp_path, UnetGenerator(Pix2PixUnetConfig(num_downs=5, ngf=4,
                                                                  norm="instance", input_nc=1)))
    assert (m.config.num_downs, m.config.norm, m.config.input_nc) == (5, "instance", 1)


def test_legacy_instance_norm_running_stats_are_dropped(tmp_path, caplog):
    sd = _randomise(TransformerNet()).state_dict()
    legacy = dict(sd)
    for name in [f"in{i}" for i in range(1, 6)] + [f"res{r}.in{i}" for r in range(1, 6)
                                                   for i in (1, 2)]:
        c = sd[f"{name}.weight"].shape[0]
        legacy[f"{name}.running_mean"] = torch.zeros(c)
        legacy[f"{name}.running_var"] = torch.ones(c)
    with caplog.at_level(logging.INFO, logger="gan_core"):
        m = gan_core.load(_save(tmp_path, legacy, "candy.pth"))
    assert m.arch == "transformer_net" and list(m.module.state_dict()) == list(sd)
    assert "candy.pth" in caplog.text and "30 legacy InstanceNorm" in caplog.text

    cyc = _randomise(ResnetGenerator(CycleGANResnetConfig(ngf=4, n_blocks=2))).state_dict()
    old = dict(cyc)
    for name in ["model.2", "model.5", "model.8", "model.13", "model.16",
                 "model.10.conv_block.2", "model.11.conv_block.6"]:
        old[f"{name}.running_mean"] = torch.zeros(1)
        old[f"{name}.running_var"] = torch.ones(1)
        old[f"{name}.num_batches_tracked"] = torch.tensor(0)
    m = gan_core.load(_save(tmp_path, old, "style_monet.pth"))
    assert m.arch == "cyclegan_resnet" and list(m.module.state_dict()) == list(cyc)


def test_prefixed_and_unknown_files(tmp_path):
    sd = _randomise(NLayerDiscriminator(PatchGANConfig(ndf=4, norm="batch"))).state_dict()
    m = gan_core.load(_save(tmp_path, {f"module.{k}": v for k, v in sd.items()}, "net_D.pth"))
    assert m.arch == "patchgan" and m.config.norm == "batch"
    with pytest.raises(ValueError, match="cannot stylize"):
        m.stylize(torch.rand(1, 8, 8, 3))
    broken = dict(sd)
    broken["model.0.weight"] = torch.zeros(4, 3, 3, 3)  # right names, wrong kernel
    with pytest.raises(gan_core.CheckpointError, match="broken.pth.*recognises"):
        gan_core.load(_save(tmp_path, broken, "broken.pth"))


def test_public_model_round_trips_through_our_format(tmp_path):
    m = _load_module_of(tmp_path, ResnetGenerator(CycleGANResnetConfig(ngf=4, n_blocks=2)))
    back = gan_core.load(gan_core.save(m, tmp_path / "ours.safetensors"))
    assert back.arch == m.arch and back.config == m.config
    x = torch.rand(1, 16, 16, 3)
    assert torch.equal(back.stylize(x), m.stylize(x))


# --------------------------------------------------------------------------- references


def _pad(x, p, mode):
    return F.pad(x, (p,) * 4, mode=mode) if mode != "zeros" else F.pad(x, (p,) * 4)


def _ref_resnet(sd, x, n_blocks, norm="instance", dropout=False, stem_pad="reflect"):
    def nrm(h, key):
        if norm == "instance":
            return F.instance_norm(h)
        return F.batch_norm(h, sd[key + ".running_mean"], sd[key + ".running_var"],
                            sd[key + ".weight"], sd[key + ".bias"], training=False)

    def conv(h, key, **kw):
        return F.conv2d(h, sd[key + ".weight"], sd.get(key + ".bias"), **kw)

    h = F.relu(nrm(conv(_pad(x, 3, stem_pad), "model.1"), "model.2"))
    h = F.relu(nrm(conv(h, "model.4", stride=2, padding=1), "model.5"))  # zero padding
    h = F.relu(nrm(conv(h, "model.7", stride=2, padding=1), "model.8"))
    second = 6 if dropout else 5
    for i in range(n_blocks):
        p = f"model.{10 + i}.conv_block."
        r = F.relu(nrm(conv(_pad(h, 1, "reflect"), p + "1"), p + "2"))
        r = nrm(conv(_pad(r, 1, "reflect"), p + str(second)), p + str(second + 1))
        h = h + r  # residual, no activation after the add
    j = 10 + n_blocks
    for a in (j, j + 3):
        h = F.conv_transpose2d(h, sd[f"model.{a}.weight"], sd.get(f"model.{a}.bias"), stride=2,
                               padding=1, output_padding=1)
        h = F.relu(nrm(h, f"model.{a + 1}"))
    return torch.tanh(conv(_pad(h, 3, stem_pad), f"model.{j + 7}"))


@pytest.mark.parametrize("norm,dropout", [("instance", False), ("batch", True)])
def test_resnet_generator_matches_reference(norm, dropout):
    net = _randomise(ResnetGenerator(CycleGANResnetConfig(ngf=4, n_blocks=3, norm=norm,
                                                          use_dropout=dropout)))
    sd = net.state_dict()
    x = torch.randn(2, 3, 20, 12)
    with torch.no_grad():
        ours, ref = net(x), _ref_resnet(sd, x, 3, norm, dropout)
        assert ours.shape == x.shape
        assert (ours - ref).abs().max() < 1e-5
        # the check can tell reflection from zero padding in the 7x7 stem/head
        assert (ours - _ref_resnet(sd, x, 3, norm, dropout, "zeros")).abs().max() > 1e-3


def _ref_unet(sd, x, num_downs, train=False, dropout_levels=()):
    def bn(h, key):
        if train:
            return F.batch_norm(h, None, None, sd[key + ".weight"], sd[key + ".bias"], True)
        return F.batch_norm(h, sd[key + ".running_mean"], sd[key + ".running_var"],
                            sd[key + ".weight"], sd[key + ".bias"], False)

    def level(h, p, depth):
        skip = F.leaky_relu(h, 0.2)  # the original's in-place LeakyReLU also rewrites the skip
        d = F.conv2d(skip, sd[p + ".1.weight"], stride=2, padding=1)
        if depth == num_downs - 1:  # innermost: no down norm
            u = bn(F.conv_transpose2d(F.relu(d), sd[p + ".3.weight"], stride=2, padding=1), p + ".4")
        else:
            inner = level(bn(d, p + ".2"), p + ".3.model", depth + 1)
            u = bn(F.conv_transpose2d(F.relu(inner), sd[p + ".5.weight"], stride=2, padding=1),
                   p + ".6")
            if depth in dropout_levels:
                u = F.dropout(u, 0.5, training=True)
        return torch.cat([skip, u], 1)  # skip first

    h = F.conv2d(x, sd["model.model.0.weight"], stride=2, padding=1)
    h = level(h, "model.model.1.model", 1)
    return torch.tanh(F.conv_transpose2d(F.relu(h), sd["model.model.3.weight"],
                                         sd["model.model.3.bias"], stride=2, padding=1))


def test_unet_matches_reference_in_eval_and_train_mode():
    net = _randomise(UnetGenerator(Pix2PixUnetConfig(num_downs=6, ngf=4, test_mode="eval")))
    sd = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert (net(x) - _ref_unet(sd, x, 6)).abs().max() < 1e-5
        net.test_mode = "train"  # batch statistics, dropout on (the ngf*8 middle level 4)
        torch.manual_seed(3)
        ours = net(x)
        torch.manual_seed(3)
        ref = _ref_unet(sd, x, 6, train=True, dropout_levels=(4,))
        assert (ours - ref).abs().max() < 1e-5
    assert not net.training and all(not m.training for m in net.modules())
    for k, v in net.state_dict().items():  # running statistics neither used nor updated
        assert torch.equal(v, sd[k]), k


def test_patchgan_matches_reference():
    net = _randomise(NLayerDiscriminator(PatchGANConfig(input_nc=6, ndf=4, norm="instance")))
    sd = net.state_dict()
    x = torch.randn(1, 6, 64, 64)
    h = F.leaky_relu(F.conv2d(x, sd["model.0.weight"], sd["model.0.bias"], 2, 1), 0.2)
    for i, stride in ((2, 2), (5, 2), (8, 1)):
        h = F.conv2d(h, sd[f"model.{i}.weight"], sd[f"model.{i}.bias"], stride, 1)
        h = F.leaky_relu(F.instance_norm(h), 0.2)
    ref = F.conv2d(h, sd["model.11.weight"], sd["model.11.bias"], 1, 1)
    with torch.no_grad():
        ours = net(x)
    assert ours.shape == (1, 1, 6, 6)  # the original PatchGAN: 6x6 for a 64 px input
    assert (ours - ref).abs().max() < 1e-5


def _ref_transformer(sd, x):
    def conv(h, key, stride=1):
        w = sd[key + ".conv2d.weight"]
        return F.conv2d(F.pad(h, (w.shape[-1] // 2,) * 4, mode="reflect"), w,
                        sd[key + ".conv2d.bias"], stride)

    def inorm(h, key):
        return F.instance_norm(h, weight=sd[key + ".weight"], bias=sd[key + ".bias"])

    def up2(h):  # nearest neighbour x2, written without F.interpolate
        return h.repeat_interleave(2, dim=-1).repeat_interleave(2, dim=-2)

    y = F.relu(inorm(conv(x, "conv1"), "in1"))
    y = F.relu(inorm(conv(y, "conv2", 2), "in2"))
    y = F.relu(inorm(conv(y, "conv3", 2), "in3"))
    for r in range(1, 6):
        p = f"res{r}."
        y = y + inorm(conv(F.relu(inorm(conv(y, p + "conv1"), p + "in1")), p + "conv2"), p + "in2")
    y = F.relu(inorm(conv(up2(y), "deconv1"), "in4"))
    y = F.relu(inorm(conv(up2(y), "deconv2"), "in5"))
    return conv(y, "deconv3")


def test_transformer_net_matches_reference():
    net = _randomise(TransformerNet())
    x = torch.rand(1, 3, 16, 20) * 255.0
    with torch.no_grad():
        ours = net(x)
        assert ours.shape == x.shape
        assert (ours - _ref_transformer(net.state_dict(), x)).abs().max() < 1e-5


# --------------------------------------------------------------------------- stylize


def _model(arch: str) -> gan_core.GANModel:
    torch.manual_seed(0)
    if arch == "cyclegan_resnet":
        cfg = CycleGANResnetConfig(ngf=4, n_blocks=2)
        net = ResnetGenerator(cfg)
    elif arch == "pix2pix_unet":
        cfg = Pix2PixUnetConfig(num_downs=5, ngf=4, test_mode="eval")
        net = UnetGenerator(cfg)
    else:
        cfg = get_arch(arch).config_cls()
        net = TransformerNet(cfg)
    return gan_core.GANModel(arch, cfg, {"G": _randomise(net)})


STYLE_ARCHS = ["cyclegan_resnet", "pix2pix_unet", "transformer_net"]


@pytest.mark.parametrize("arch", STYLE_ARCHS)
def test_stylize_any_shape(arch):
    m = _model(arch)
    for shape in [(2, 37, 53, 3), (1, 1, 1, 3), (1, 9, 7, 1), (1, 12, 10, 4), (1, 8, 300, 3)]:
        x = torch.rand(shape)
        y = m.stylize(x)
        assert y.shape == x.shape and y.dtype == torch.float32
        assert 0.0 <= y.min() and y.max() <= 1.0
        if shape[-1] == 4:
            assert torch.equal(y[..., 3], x[..., 3])
        assert torch.equal(m.stylize(x, strength=0.0), x)


@pytest.mark.parametrize("arch", STYLE_ARCHS)
def test_stylize_equals_the_network_on_a_fitting_size(arch):
    """No padding needed: the output is exactly the original's forward pass and range map."""
    m = _model(arch)
    side = 32 if arch == "pix2pix_unet" else 16
    x = torch.rand(2, side, side + 8 * (arch != "pix2pix_unet"), 3)
    net_in = x.permute(0, 3, 1, 2)
    with torch.no_grad():
        if arch == "transformer_net":
            ref = m.module(net_in * 255).clamp(0, 255) / 255
        else:
            ref = ((m.module(net_in * 2 - 1) + 1) / 2).clamp(0, 1)
    y = m.stylize(x)
    assert (y - ref.permute(0, 2, 3, 1)).abs().max() < 1e-5
    half = m.stylize(x, strength=0.5)
    assert (half - (x + y) / 2).abs().max() < 1e-6
    # images are independent: a batch gives what each image gives alone
    assert (m.stylize(x[1:]) - y[1:]).abs().max() < 1e-6


def test_stylize_options_and_errors(caplog):
    m = _model("cyclegan_resnet")
    x = torch.rand(1, 13, 11, 3)
    # a tile larger than the image: the whole image in one pass, as without tile
    assert torch.equal(m.stylize(x, tile=256), m.stylize(x))
    with pytest.raises(ValueError, match="strength"):
        m.stylize(x, strength=1.5)
    with pytest.raises(ValueError, match="IMAGE"):
        m.stylize(torch.rand(1, 8, 8, 2))
    p2p = _model("pix2pix_unet")
    p2p.module.test_mode = "train"  # the original's default: runs, output still in range
    y = p2p.stylize(torch.rand(1, 20, 20, 3))
    assert y.shape == (1, 20, 20, 3) and 0 <= y.min() and y.max() <= 1
