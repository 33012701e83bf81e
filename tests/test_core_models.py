"""Architectures: layer layout, parameter counts, output shapes/ranges, config errors."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import gan_core
from gan_core.archs import get_arch
from gan_core.registry import config_from_json, config_to_json
from gan_core.archs.dcgan.network import DCGANConfig
from gan_core.archs.mlp.network import MLPConfig

pytestmark = pytest.mark.usefixtures("core_single_thread")


def _build(arch: str, seed: int = 0, **config):
    spec = get_arch(arch)
    cfg = spec.config_cls(**config)
    torch.manual_seed(seed)
    parts = spec.build(cfg)
    return cfg, parts["G"].eval(), parts["D"].eval()


def _linear_param_count(widths: list[int]) -> int:
    return sum(a * b + b for a, b in zip(widths, widths[1:]))


# --------------------------------------------------------------------------- registry

def test_registry_lists_generators():
    archs = gan_core.list_archs()
    assert {"mlp", "dcgan"} <= set(archs)
    assert set(gan_core.list_archs("generate")) >= {"mlp", "dcgan"}
    assert gan_core.list_archs("no-such-task") == []
    for name in archs:
        assert get_arch(name).name == name


def test_unknown_arch_error_lists_known():
    with pytest.raises(ValueError, match="unknown architecture 'nope'.*dcgan"):
        get_arch("nope")


@pytest.mark.parametrize("arch,config", [("mlp", MLPConfig(image_size=16, g_hidden=(8, 16))),
                                         ("dcgan", DCGANConfig(image_size=128, ngf=4, channels=1))])
def test_config_json_round_trip(arch, config):
    assert config_from_json(get_arch(arch), config_to_json(config)) == config


def test_config_json_rejects_unknown_fields_and_bad_values():
    with pytest.raises(gan_core.CheckpointError, match="does not know.*'wings'"):
        config_from_json(get_arch("dcgan"), '{"image_size": 32, "wings": 2}')
    with pytest.raises(gan_core.CheckpointError, match="invalid"):
        config_from_json(get_arch("dcgan"), '{"image_size": 48}')
    with pytest.raises(gan_core.CheckpointError, match="not valid JSON"):
        config_from_json(get_arch("dcgan"), "{image_size")


# --------------------------------------------------------------------------- mlp

def test_mlp_layout_matches_the_textbook_gan():
    cfg, g, d = _build("mlp")
    assert (cfg.image_size, cfg.channels, cfg.latent_dim) == (28, 1, 100)

    g_layers = list(g.main)
    linears = [m for m in g_layers if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (100, 256), (256, 512), (512, 1024), (1024, 784)]
    # Each hidden Linear is followed by BatchNorm1d then ReLU; the output by tanh.
    for i, m in enumerate(g_layers[:-2]):
        if isinstance(m, nn.Linear):
            assert isinstance(g_layers[i + 1], nn.BatchNorm1d)
            assert g_layers[i + 1].num_features == m.out_features
            assert isinstance(g_layers[i + 2], nn.ReLU)
    assert isinstance(g_layers[-2], nn.Linear) and isinstance(g_layers[-1], nn.Tanh)

    d_linears = [m for m in d.main if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in d_linears] == [(784, 512), (512, 256), (256, 1)]
    assert not any(isinstance(m, (nn.Sigmoid, nn.BatchNorm1d)) for m in d.modules())  # raw logits


def test_mlp_parameter_counts():
    _, g, d = _build("mlp")
    g_widths = [100, 256, 512, 1024, 784]
    bn = sum(2 * w for w in (256, 512, 1024))  # BatchNorm1d weight + bias
    assert sum(p.numel() for p in g.parameters()) == _linear_param_count(g_widths) + bn
    assert sum(p.numel() for p in d.parameters()) == _linear_param_count([784, 512, 256, 1])


@pytest.mark.parametrize("size,channels", [(28, 1), (16, 3), (8, 1)])
def test_mlp_shapes_and_range(size, channels):
    cfg, g, d = _build("mlp", image_size=size, channels=channels)
    z = torch.randn(5, cfg.latent_dim) * 3.0
    x = g(z)
    assert x.shape == (5, channels, size, size)
    assert x.dtype == torch.float32
    assert x.min() >= -1.0 and x.max() <= 1.0
    assert d(x).shape == (5,)


@pytest.mark.parametrize("bad", [dict(image_size=3), dict(channels=2), dict(channels=4)])
def test_mlp_bad_config(bad):
    with pytest.raises(ValueError, match="mlp"):
        MLPConfig(**bad)


# --------------------------------------------------------------------------- dcgan

@pytest.mark.parametrize("size,ngf", [(32, 8), (64, 8), (128, 4), (256, 2)])
@pytest.mark.parametrize("channels", [3, 1])
def test_dcgan_shapes_and_range(size, ngf, channels):
    cfg, g, d = _build("dcgan", image_size=size, channels=channels, ngf=ngf, ndf=ngf)
    z = torch.randn(2, cfg.latent_dim) * 3.0
    with torch.no_grad():
        x = g(z)
        logits = d(x)
    assert x.shape == (2, channels, size, size)
    assert x.min() >= -1.0 and x.max() <= 1.0
    assert x.std() > 0  # not a constant image
    assert logits.shape == (2,)
    assert torch.isfinite(logits).all()
    # One stride-2 stage per doubling from the 4x4 base: log2(size) - 2 transposed convs.
    n_convt = sum(isinstance(m, nn.ConvTranspose2d) for m in g.modules())
    assert n_convt == size.bit_length() - 3 + 1


def test_dcgan_64_matches_pytorch_examples_layout():
    """At 64 px with default widths the keys/shapes equal pytorch/examples' dcgan
    (nz=100, ngf=ndf=64, nc=3), so its generators and discriminators load unchanged."""
    nz, ngf, ndf, nc = 100, 64, 64, 3
    _, g, d = _build("dcgan")
    expected_g = {
        "main.0.weight": (nz, ngf * 8, 4, 4), "main.1.weight": (ngf * 8,),
        "main.3.weight": (ngf * 8, ngf * 4, 4, 4), "main.4.weight": (ngf * 4,),
        "main.6.weight": (ngf * 4, ngf * 2, 4, 4), "main.7.weight": (ngf * 2,),
        "main.9.weight": (ngf * 2, ngf, 4, 4), "main.10.weight": (ngf,),
        "main.12.weight": (ngf, nc, 4, 4),
    }
    g_state = g.state_dict()
    for key, shape in expected_g.items():
        assert tuple(g_state[key].shape) == shape, key
    g_convs = {k for k in g_state if k.endswith(".weight") and g_state[k].dim() == 4}
    assert g_convs == {k for k, s in expected_g.items() if len(s) == 4}
    expected_d = {
        "main.0.weight": (ndf, nc, 4, 4), "main.2.weight": (ndf * 2, ndf, 4, 4),
        "main.3.weight": (ndf * 2,), "main.5.weight": (ndf * 4, ndf * 2, 4, 4),
        "main.6.weight": (ndf * 4,), "main.8.weight": (ndf * 8, ndf * 4, 4, 4),
        "main.9.weight": (ndf * 8,), "main.11.weight": (1, ndf * 8, 4, 4),
    }
    d_state = d.state_dict()
    for key, shape in expected_d.items():
        assert tuple(d_state[key].shape) == shape, key
    d_convs = {k for k in d_state if k.endswith(".weight") and d_state[k].dim() == 4}
    assert d_convs == {k for k, s in expected_d.items() if len(s) == 4}
    # No bias in any convolution, as in the reference implementation.
    convs = [m for net in (g, d) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert convs and all(m.bias is None for m in convs)


def test_dcgan_max_mult_caps_width():
    cfg, g, _ = _build("dcgan", image_size=256, ngf=2, ndf=2, max_mult=4)
    widths = [m.out_channels for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert max(widths) == cfg.ngf * 4
    assert widths[-1] == cfg.channels


def test_dcgan_init_follows_the_paper():
    _, g, d = _build("dcgan", image_size=64)
    for net in (g, d):
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.weight.numel() > 1000:
                assert abs(m.weight.mean().item()) < 0.005
                assert m.weight.std().item() == pytest.approx(0.02, rel=0.1)
            if isinstance(m, nn.BatchNorm2d):
                assert m.weight.mean().item() == pytest.approx(1.0, abs=0.01)
                assert torch.count_nonzero(m.bias) == 0


@pytest.mark.parametrize("bad,match", [
    (dict(image_size=48), "power of two"),
    (dict(image_size=96), "power of two"),
    (dict(image_size=16), "32 to 256"),
    (dict(image_size=512), "32 to 256"),
    (dict(channels=2), "channels"),
    (dict(ngf=0), "positive"),
])
def test_dcgan_bad_config(bad, match):
    with pytest.raises(ValueError, match=match):
        DCGANConfig(**bad)


def test_bad_size_through_train_config(core_dataset, core_config):
    with pytest.raises(ValueError, match="power of two"):
        gan_core.train(core_config(size=48), core_dataset)
