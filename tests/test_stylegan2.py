"""StyleGAN2 (rosinality/stylegan2-pytorch layout): public key layouts, numerical equivalence
with an independent reading of the architecture, the original call form, the latent protocol,
and recognition of rosinality's training, converted and bare files.

The reference below is written from the state dict alone with explicit per-sample weights
(modulate, demodulate, F.conv2d / F.conv_transpose2d), and its FIR resampling is done by hand
(zero insertion by interleaving, zero padding by concatenation, the filter as a sum of shifted
slices), so an error in the module's modulation, layer wiring, padding or kernel shows up as a
numerical difference, not only as a key mismatch. Models are tiny (base_channels 16) so every
test runs in well under a second on one CPU thread.
"""
from __future__ import annotations

import argparse
import collections
import json
import math
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import gan_core
from gan_core.archs.stylegan2.public import config_from_shapes
from gan_core.archs import get_arch
from gan_core.archs.stylegan2.network import StyleGAN2Config, StyleGAN2Generator, layer_resolution
from gan_core.archs.layers.upfirdn import upfirdn2d

SHAPES = json.loads((Path(__file__).parent / "data" / "public_key_shapes_stylegan2.json").read_text())
PUBLIC = {k: v for k, v in SHAPES.items() if not k.startswith("_")}
TINY = dict(image_size=64, style_dim=32, n_mlp=2, channel_multiplier=1, base_channels=16)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _config(**overrides) -> StyleGAN2Config:
    return StyleGAN2Config(**{**TINY, **overrides})


def _random_state(net: StyleGAN2Generator, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random values for every parameter and noise buffer (noise strengths and biases non-zero,
    modulation biases around 1 as trained ones are); FIR kernels stay as built."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for k, v in net.state_dict().items():
        if k.endswith("kernel"):
            state[k] = v.clone()
        elif k.endswith("modulation.bias"):
            state[k] = 1.0 + 0.2 * torch.randn(v.shape, generator=g)
        elif k.endswith("bias") or k.endswith("noise.weight"):
            state[k] = 0.3 * torch.randn(v.shape, generator=g)
        else:
            state[k] = torch.randn(v.shape, generator=g)
    return state


def _tiny(seed: int = 0, **overrides) -> StyleGAN2Generator:
    net = StyleGAN2Generator(_config(**overrides))
    net.load_state_dict(_random_state(net, seed))
    return net.eval()


# --------------------------------------------------------------------------- public layouts


@pytest.mark.parametrize("label", sorted(PUBLIC))
def test_public_layout_keys_shapes_and_parameter_count(label):
    """Built from the public constructor arguments (on the meta device: no memory), the
    generator has the file's keys in state_dict order, their shapes and parameter count;
    `kernel` and `noises.*` are buffers, as in the original."""
    entry = PUBLIC[label]
    ctor = entry["ctor"]
    cfg = StyleGAN2Config(image_size=ctor["size"], style_dim=ctor["style_dim"],
                          n_mlp=ctor["n_mlp"], channel_multiplier=ctor["channel_multiplier"])
    with torch.device("meta"):
        net = get_arch("stylegan2").build(cfg)["G"]
    assert [(k, list(v.shape)) for k, v in net.state_dict().items()] == list(entry["keys"].items())
    assert sum(p.numel() for p in net.parameters()) == entry["n_params"]
    buffers = {k for k, _ in net.named_buffers()}
    assert buffers == {k for k in entry["keys"] if k.endswith(".kernel") or k.startswith("noises.")}
    assert net.n_latent == 2 * int(math.log2(ctor["size"])) - 2
    # ... and the shapes alone give back the constructor arguments.
    state = {k: torch.empty(s, device="meta") for k, s in entry["keys"].items()}
    assert config_from_shapes(state) == cfg


def test_channel_multiplier_read_from_the_64px_layers():
    """cm 1 and cm 2 files differ from convs.6 on (rosinality #144); the reader tells them
    apart, and below 64 px no shape depends on cm."""
    for cm in (1, 2, 4):
        cfg = StyleGAN2Config(image_size=256, channel_multiplier=cm, n_mlp=3)
        with torch.device("meta"):
            state = StyleGAN2Generator(cfg).state_dict()
        assert state["convs.6.conv.weight"].shape[1] == 256 * cm
        assert config_from_shapes(state) == cfg
    with torch.device("meta"):
        small = StyleGAN2Generator(StyleGAN2Config(image_size=32, channel_multiplier=1)).state_dict()
    assert config_from_shapes(small).image_size == 32


def test_config_validation():
    with pytest.raises(ValueError, match="power of two"):
        StyleGAN2Config(image_size=48)
    with pytest.raises(ValueError, match="power of two"):
        StyleGAN2Config(image_size=4)
    cfg = StyleGAN2Config(image_size=128)
    assert cfg.latent_dim == cfg.style_dim == 512 and cfg.blur_kernel == (1, 3, 3, 1)
    assert not get_arch("stylegan2").trainable and get_arch("stylegan2").task == "generate"


# --------------------------------------------------------------------------- the reference


def _interleave_zeros(x: torch.Tensor, dim: int) -> torch.Tensor:
    """x0 0 x1 0 ... along `dim`: the 'up' of upfirdn by 2."""
    stacked = torch.stack([x, torch.zeros_like(x)], dim=dim + 1)
    shape = list(x.shape)
    shape[dim] *= 2
    return stacked.reshape(shape)


def _zero_pad(x: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """Zeros around both spatial axes, by concatenation."""
    n, c, h, w = x.shape
    x = torch.cat([x.new_zeros(n, c, h, before), x, x.new_zeros(n, c, h, after)], dim=3)
    w = x.shape[3]
    return torch.cat([x.new_zeros(n, c, before, w), x, x.new_zeros(n, c, after, w)], dim=2)


def _fir(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """'Valid' 2-D convolution (kernel flipped) as a sum of shifted slices."""
    kh, kw = k.shape
    oh, ow = x.shape[2] - kh + 1, x.shape[3] - kw + 1
    out = torch.zeros(x.shape[0], x.shape[1], oh, ow, dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            out += k[kh - 1 - i, kw - 1 - j] * x[:, :, i:i + oh, j:j + ow]
    return out


BLUR = torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64


def _lrelu(x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x + b.view(1, -1, *([1] * (x.dim() - 2))), 0.2) * math.sqrt(2)


def _ref_mapping(sd, z, n_mlp, lr_mlp=0.01):
    x = z / torch.sqrt((z ** 2).mean(dim=1, keepdim=True) + 1e-8)
    for i in range(1, n_mlp + 1):
        wgt, b = sd[f"style.{i}.weight"], sd[f"style.{i}.bias"]
        x = _lrelu(x @ (wgt * lr_mlp / math.sqrt(wgt.shape[1])).t(), b * lr_mlp)
    return x


def _ref_modconv(sd, prefix, x, w, demodulate=True, up=False):
    """Per-sample weights, as the paper writes it: w' = w * s, w'' = w' / ||w'||."""
    weight = sd[f"{prefix}.weight"][0]  # [out, in, k, k]
    k = weight.shape[-1]
    mod_w, mod_b = sd[f"{prefix}.modulation.weight"], sd[f"{prefix}.modulation.bias"]
    s = w @ (mod_w / math.sqrt(mod_w.shape[1])).t() + mod_b
    outs = []
    for i in range(x.shape[0]):
        wi = weight / math.sqrt(weight[0].numel()) * s[i].view(1, -1, 1, 1)
        if demodulate:
            wi = wi / torch.sqrt((wi ** 2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        xi = x[i:i + 1]
        if up:
            o = F.conv_transpose2d(xi, wi.transpose(0, 1), stride=2)
            o = _fir(_zero_pad(o, 1, 1), BLUR * 4)
        else:
            o = F.conv2d(xi, wi, padding=k // 2)
        outs.append(o)
    return torch.cat(outs)


def reference_image(sd: dict[str, torch.Tensor], latent: torch.Tensor) -> torch.Tensor:
    """rosinality's synthesis network on w+ `latent`, with the file's noise buffers."""
    n_blocks = len({k.split(".")[1] for k in sd if k.startswith("to_rgbs.")})
    batch = latent.shape[0]

    def styled(prefix, x, w, noise, up=False):
        x = _ref_modconv(sd, f"{prefix}.conv", x, w, up=up)
        x = x + sd[f"{prefix}.noise.weight"] * noise
        return _lrelu(x, sd[f"{prefix}.activate.bias"])

    def rgb(prefix, x, w):
        return _ref_modconv(sd, f"{prefix}.conv", x, w, demodulate=False) + sd[f"{prefix}.bias"]

    x = sd["input.input"].repeat(batch, 1, 1, 1)
    x = styled("conv1", x, latent[:, 0], sd["noises.noise_0"])
    image = rgb("to_rgb1", x, latent[:, 1])
    for b in range(n_blocks):
        x = styled(f"convs.{2 * b}", x, latent[:, 2 * b + 1], sd[f"noises.noise_{2 * b + 1}"], up=True)
        x = styled(f"convs.{2 * b + 1}", x, latent[:, 2 * b + 2], sd[f"noises.noise_{2 * b + 2}"])
        up = _fir(_zero_pad(_interleave_zeros(_interleave_zeros(image, 2), 3), 2, 1), BLUR * 4)
        image = rgb(f"to_rgbs.{b}", x, latent[:, 2 * b + 3]) + up
    return image


def test_upfirdn2d_matches_explicit_resampling():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 5, 6, generator=g)
    k = torch.rand(4, 4, generator=g)  # asymmetric: the flip matters
    spread = _interleave_zeros(_interleave_zeros(x, 2), 3)
    assert torch.allclose(upfirdn2d(x, k, up=2, pad=(2, 1)), _fir(_zero_pad(spread, 2, 1), k),
                          atol=1e-6)
    assert torch.allclose(upfirdn2d(x, k, pad=(1, 1)), _fir(_zero_pad(x, 1, 1), k), atol=1e-6)
    assert torch.allclose(upfirdn2d(x, k, down=2, pad=(1, 1)),
                          _fir(_zero_pad(x, 1, 1), k)[:, :, ::2, ::2], atol=1e-6)
    assert upfirdn2d(x, k, up=2, pad=(2, 1)).shape == (2, 3, 10, 12)


def test_module_equals_independent_reference():
    """Same image from the module (protocol and original call form) and from the reference,
    on random weights, fixed noise and truncation 1."""
    net = _tiny()
    sd = net.state_dict()
    assert torch.equal(sd["convs.0.conv.blur.kernel"], BLUR * 4)
    assert torch.equal(sd["to_rgbs.0.upsample.kernel"], BLUR * 4)
    z = torch.randn(3, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        w = _ref_mapping(sd, z, n_mlp=2)
        assert torch.allclose(net.map_z(z), w, atol=1e-5)
        want = reference_image(sd, w.unsqueeze(1).repeat(1, net.n_latent, 1))
        assert want.shape == (3, 3, 64, 64) and want.std() > 0.1
        assert torch.allclose(net.synthesize(net.map_z(z)), want, atol=1e-4)
        image, latent = net([z], randomize_noise=False)
        assert latent is None
        assert torch.allclose(image, want, atol=1e-4)
        # w+ with a different w per layer exercises which layer reads which index.
        wplus = net.map_z(torch.randn(3 * net.n_latent, 32)).view(3, net.n_latent, 32)
        assert torch.allclose(net.synthesize(wplus), reference_image(sd, wplus), atol=1e-4)
        assert torch.allclose(net([wplus], input_is_latent=True, randomize_noise=False)[0],
                              reference_image(sd, wplus), atol=1e-4)


def test_style_mixing_inject_index_and_mix_styles():
    net = _tiny(seed=2)
    g = torch.Generator().manual_seed(4)
    z1, z2 = torch.randn(2, 32, generator=g), torch.randn(2, 32, generator=g)
    with torch.no_grad():
        w1, w2 = net.map_z(z1), net.map_z(z2)
        image, latent = net([z1, z2], inject_index=3, randomize_noise=False, return_latents=True)
        assert torch.equal(latent[:, :3], w1.unsqueeze(1).expand(-1, 3, -1))
        assert torch.equal(latent[:, 3:], w2.unsqueeze(1).expand(-1, net.n_latent - 3, -1))
        assert torch.allclose(image, reference_image(net.state_dict(), latent), atol=1e-4)
        mixed = net.mix_styles(w1, w2, slice(3, None))
        assert torch.equal(mixed, latent)
        assert torch.allclose(net.synthesize(mixed), image, atol=1e-5)
        # inject_index None draws one in 1..n_latent-1: never all-w1 nor all-w2
        _, latent = net([z1, z2], randomize_noise=False, return_latents=True)
        assert not torch.equal(latent[:, 0], latent[:, -1])
        assert torch.equal(net.mix_styles(w1, w2, [0, 5]),
                           torch.stack([w2 if i in (0, 5) else w1
                                        for i in range(net.n_latent)], dim=1))


def test_named_style_ranges_follow_resolution():
    with torch.device("meta"):
        big = StyleGAN2Generator(StyleGAN2Config(image_size=256))
    assert big.style_layers("coarse") == [0, 1, 2, 3]
    assert big.style_layers("middle") == [4, 5, 6, 7]
    assert big.style_layers("fine") == list(range(8, 14))
    assert [layer_resolution(i) for i in (0, 1, 2, 3, 13)] == [4, 4, 8, 8, 256]
    net = _tiny(image_size=16)
    assert net.style_layers("middle") == [4, 5] and net.n_latent == 6
    with pytest.raises(ValueError, match="fine"):
        net.style_layers("fine")
    w_a, w_b = torch.zeros(2, 32), torch.ones(2, 32)
    mixed = net.mix_styles(w_a, w_b, "coarse")
    assert mixed[:, :4].eq(1).all() and mixed[:, 4:].eq(0).all()
    with pytest.raises(ValueError, match="outside"):
        net.mix_styles(w_a, w_b, [6])


def test_truncation():
    net = _tiny(seed=5)
    z = torch.randn(2, 32, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        center = net.mean_latent(512, generator=torch.Generator().manual_seed(0))
        assert center.shape == (1, 32)
        at_center = net([center], input_is_latent=True, randomize_noise=False)[0]
        psi0 = net([z], truncation=0, truncation_latent=center, randomize_noise=False)[0]
        assert torch.allclose(psi0, at_center.expand_as(psi0), atol=1e-5)
        half = net([z], truncation=0.5, truncation_latent=center, randomize_noise=False)[0]
        want = net.synthesize(center + 0.5 * (net.map_z(z) - center))
        assert torch.allclose(half, want, atol=1e-5)
        same = net([z], truncation=1, truncation_latent=center, randomize_noise=False)[0]
        assert torch.allclose(same, net([z], randomize_noise=False)[0])
        with pytest.raises(ValueError, match="truncation_latent"):
            net([z], truncation=0.7)
        net.latent_avg = center[0]  # a converted file's centre is the fallback
        assert torch.allclose(net([z], truncation=0, randomize_noise=False)[0],
                              at_center.expand_as(psi0), atol=1e-5)


def test_noise_modes():
    net = _tiny(seed=7)
    w = net.map_z(torch.randn(3, 32, generator=torch.Generator().manual_seed(8))).detach()
    with torch.no_grad():
        fixed = net.synthesize(w)
        alone = net.synthesize(w[1:2])
        assert torch.allclose(fixed[1:2], alone, atol=1e-5)  # independent of the batch
        r1 = net.synthesize(w, noise="random", generator=torch.Generator().manual_seed(9))
        r2 = net.synthesize(w, noise="random", generator=torch.Generator().manual_seed(9))
        assert torch.equal(r1, r2) and not torch.allclose(r1, fixed, atol=1e-3)
        # per-sample noise: two copies of one latent get different images
        twins = net.synthesize(w[:1].repeat(2, 1), noise="random",
                               generator=torch.Generator().manual_seed(10))
        assert not torch.allclose(twins[0], twins[1], atol=1e-3)
        none = net.synthesize(w, noise="none")
        for name, buf in net.noises.named_buffers():
            buf.zero_()
        assert torch.allclose(net.synthesize(w), none, atol=1e-6)
        with pytest.raises(ValueError, match="noise"):
            net.synthesize(w, noise="loud")
        with pytest.raises(ValueError, match=r"\[B, 32\]"):
            net.synthesize(torch.zeros(2, 31))


def test_latent_avg_moves_with_the_module():
    """latent_avg is no buffer (the state_dict stays the file's), yet .to()/.double() move it."""
    net = _tiny(seed=13)
    net.latent_avg = torch.randn(32)
    net.double()
    assert net.latent_avg.dtype == torch.float64 and "latent_avg" not in net.state_dict()
    z = torch.randn(2, 32, dtype=torch.float64)
    with torch.no_grad():
        image = net([z], truncation=0.5, randomize_noise=False)[0]
        assert image.dtype == torch.float64
        assert net.mean_latent(64).dtype == torch.float64
        noisy = net.synthesize(net.map_z(z), noise="random", generator=torch.Generator().manual_seed(0))
    assert noisy.dtype == torch.float64 and torch.isfinite(noisy).all()


def test_randomize_noise_follows_the_global_rng():
    net = _tiny(seed=11)
    z = torch.randn(2, 32)
    with torch.no_grad():
        torch.manual_seed(12)
        a = net([z])[0]
        torch.manual_seed(12)
        b = net([z])[0]
        c = net([z])[0]
    assert torch.equal(a, b) and not torch.allclose(a, c, atol=1e-3)


# --------------------------------------------------------------------------- files


def _adam_state(net: torch.nn.Module) -> dict:
    opt = torch.optim.Adam(list(net.parameters())[:2], lr=0.002, betas=(0.0, 0.99))
    for p in list(net.parameters())[:2]:
        p.grad = torch.ones_like(p)
    opt.step()
    return opt.state_dict()


def _image(model: gan_core.GANModel, z: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.module([z], randomize_noise=False)[0]


def test_training_checkpoint_loads_g_ema(tmp_path):
    g, g_ema = _tiny(seed=1), _tiny(seed=2)
    path = tmp_path / "010000.pt"
    args = argparse.Namespace(size=64, channel_multiplier=1, n_mlp=2, latent=32, batch=16,
                              r1=10.0, augment=False)
    torch.save({"g": g.state_dict(), "d": {"convs.0.0.weight": torch.randn(8, 3, 1, 1)},
                "g_ema": g_ema.state_dict(), "g_optim": _adam_state(g), "d_optim": _adam_state(g),
                "args": args, "ada_aug_p": 0.0}, path)
    model = gan_core.load(path)
    assert model.arch == "stylegan2" and model.task == "generate"
    assert model.config == _config() and model.image_size == 64 and model.latent_dim == 32
    assert model.discriminator is None
    for k, v in g_ema.state_dict().items():
        assert torch.equal(model.module.state_dict()[k], v), k
    z = torch.randn(2, 32)
    assert torch.allclose(_image(model, z), _image(gan_core.GANModel("stylegan2", _config(),
                                                                     {"G": g_ema}), z))


def test_args_that_contradict_the_weights_lose(tmp_path, caplog):
    """A file whose args say cm 2 but whose weights are cm 1 loads as the weights say."""
    net = _tiny()
    path = tmp_path / "odd.pt"
    torch.save({"g_ema": net.state_dict(), "args": argparse.Namespace(size=64, channel_multiplier=2)},
               path)
    with caplog.at_level("WARNING", logger="gan_core"):
        model = gan_core.load(path)
    assert model.config.channel_multiplier == 1
    assert "args say" in caplog.text


def test_converted_file_keeps_latent_avg(tmp_path):
    net = _tiny(seed=3, channel_multiplier=2)  # cm 2: the 64 px layers are twice as wide
    avg = torch.randn(32)
    path = tmp_path / "stylegan2-ffhq-config-f.pt"
    torch.save({"g_ema": net.state_dict(), "latent_avg": avg}, path)
    model = gan_core.load(path)
    assert model.config.channel_multiplier == 2
    assert torch.equal(model.module.latent_avg, avg)
    assert "latent_avg" not in model.module.state_dict()
    assert list(model.module.state_dict()) == list(net.state_dict())
    z = torch.randn(2, 32)
    with torch.no_grad():
        out = model.module([z], truncation=0, randomize_noise=False)[0]
        at_avg = model.module.synthesize(avg.view(1, 32))
    assert torch.allclose(out, at_avg.expand_as(out), atol=1e-5)


@pytest.mark.parametrize("cm", [1, 2])
def test_bare_state_dict_any_channel_multiplier(tmp_path, cm):
    net = _tiny(seed=cm, channel_multiplier=cm)
    path = tmp_path / "g.pth"
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, path)  # DataParallel
    model = gan_core.load(path)
    assert model.config == _config(channel_multiplier=cm)
    z = torch.randn(1, 32)
    assert torch.allclose(_image(model, z), _image(gan_core.GANModel("stylegan2", model.config,
                                                                     {"G": net}), z))


def test_mismatched_files_name_the_keys(tmp_path):
    state = _tiny().state_dict()
    missing = dict(state)
    del missing["convs.3.noise.weight"]
    torch.save({"g_ema": missing, "args": argparse.Namespace(size=64, channel_multiplier=1)},
               tmp_path / "missing.pt")
    with pytest.raises(gan_core.CheckpointError, match=r"convs\.3\.noise\.weight"):
        gan_core.load(tmp_path / "missing.pt")
    torch.save({k: v for k, v in state.items() if not k.startswith("noises.")},
               tmp_path / "no_noise.pt")
    with pytest.raises(gan_core.CheckpointError, match=r"noises\.noise_0"):
        gan_core.load(tmp_path / "no_noise.pt")
    bent = dict(state)
    bent["convs.7.conv.weight"] = torch.zeros(1, 8, 9, 3, 3)
    torch.save(bent, tmp_path / "bent.pt")
    with pytest.raises(gan_core.CheckpointError, match=r"convs\.7\.conv\.weight"):
        gan_core.load(tmp_path / "bent.pt")


class _Sneaky(collections.OrderedDict):
    pass


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_foreign_pickles_are_refused_without_running(tmp_path):
    state = _tiny().state_dict()
    sneaky = tmp_path / "sneaky.pt"
    torch.save({"g_ema": _Sneaky(state), "args": argparse.Namespace(size=64)}, sneaky)
    with pytest.raises(gan_core.CheckpointError, match="could not be read as plain weights"):
        gan_core.load(sneaky)
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pt"
    torch.save({"g_ema": state, "args": _Payload(marker)}, evil)
    with pytest.raises(gan_core.CheckpointError):
        gan_core.load(evil)
    assert not marker.exists()


def test_round_trip_in_our_format(tmp_path):
    net = _tiny(seed=4)
    src = tmp_path / "converted.pt"
    torch.save({"g_ema": net.state_dict(), "latent_avg": torch.randn(32)}, src)
    model = gan_core.load(src)
    out = gan_core.save(model, tmp_path / "sg2.safetensors")
    back = gan_core.load(out)
    assert back.arch == "stylegan2" and back.config == model.config
    for k, v in model.module.state_dict().items():
        assert torch.equal(back.module.state_dict()[k], v), k
    assert torch.equal(back.module.latent_avg, model.module.latent_avg)
    z = torch.randn(2, 32)
    assert torch.equal(_image(back, z), _image(model, z))
