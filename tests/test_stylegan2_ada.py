"""StyleGAN2-ADA in NVIDIA's pickle layout: public key tables, numerical equivalence with the
independent reading of the maths in tests/nvidia_reference_sg2.py (orig / skip / resnet,
conditional, noise modes, truncation, clamping, odd and asymmetric filters, D logits), fused vs
non-fused modulated convolution, the library's latent protocol and style mixing, and NVIDIA
files: stand-in PyTorch-era pickles written from our own modules with NVIDIA's class names and
constructor kwargs, and TensorFlow-era (G, D, Gs) tuples converted and checked against the
reference's TensorFlow arithmetic. Models are tiny (32 px, a few channels)."""
from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_core.archs import get_arch
from gan_core.archs.stylegan2_ada import network as N
from gan_core.archs.stylegan2_ada.network import (Discriminator, Generator,
                                                  StyleGAN2ADAConfig, build_stylegan2_ada)
from gan_core.archs.stylegan2_ada.public import FORMAT, read
from gan_core.errors import CheckpointError
from gan_core.io.nvidia_pickle import read_nvidia_pickle
from gan_core.registry import config_from_json, config_to_json
from gan_core.statedict import meta_build

if str(Path(__file__).resolve().parent) not in sys.path:  # the test helpers beside this file
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import nvidia_reference_sg2 as ref  # noqa: E402
from nvidia_models import (SG2ADA_TINY, sg2ada_attributes, sg2ada_g_kwargs,  # noqa: E402
                           sg2ada_random_state, write_sg2ada_pickle)
from nvidia_pickles import (FakeModule, FakeTFNetwork, fake_from_module,  # noqa: E402
                            write_nvidia_pickle, write_tf_pickle)

SHAPES = json.loads((Path(__file__).parent / "data" / "nvidia_shapes_stylegan2_ada.json")
                    .read_text())
TINY = SG2ADA_TINY
TOL = 1e-4


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _cfg(**overrides) -> StyleGAN2ADAConfig:
    return StyleGAN2ADAConfig(**{**TINY, **overrides})


def _nets(seed: int = 0, **overrides) -> tuple[StyleGAN2ADAConfig, Generator, Discriminator]:
    cfg = _cfg(**overrides)
    nets = build_stylegan2_ada(cfg)
    G, D = nets["G"].eval(), nets["D"].eval()
    G.load_state_dict(sg2ada_random_state(G, seed))
    D.load_state_dict(sg2ada_random_state(D, seed + 1))
    return cfg, G, D


def _labels(n: int, c_dim: int):
    return torch.eye(c_dim)[torch.arange(n) % c_dim] if c_dim else None


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = TOL) -> None:
    scale = max(1.0, float(b.abs().max()))
    err = float((a - b).abs().max())
    assert a.shape == b.shape and err <= tol * scale, f"max error {err} (scale {scale})"


# --------------------------------------------------------------------------- config


def test_config_round_trips_json_and_rejects_bad_values():
    spec = get_arch("stylegan2_ada")
    cfg = _cfg(c_dim=3, conv_clamp=256, resample_filter=(1, 2, 1), w_avg_beta=None,
               mbstd_group_size=None, cmap_dim=8)
    assert config_from_json(spec, config_to_json(cfg)) == cfg
    assert spec.latent_io(cfg).n_latent == cfg.num_ws == 8
    for bad in (dict(img_resolution=48), dict(img_resolution=4), dict(architecture="wide"),
                dict(channel_base=0), dict(conv_clamp=-1), dict(resample_filter=(1, -1)),
                dict(mapping_lr_multiplier=0), dict(activation="gelu"), dict(z_dim=True),
                dict(mbstd_num_channels=3), dict(w_avg_beta=2.0), dict(use_noise=1)):
        with pytest.raises(ValueError):
            _cfg(**bad)


def test_every_buffer_is_persistent_and_registration_matches_nvidia_order():
    cfg = _cfg(c_dim=4, architecture="resnet")
    nets = meta_build(lambda: build_stylegan2_ada(cfg), 100_000, "test")
    for net in nets.values():
        assert not any(m._non_persistent_buffers_set for m in net.modules())
    tables = ref.expected_shapes(z_dim=16, c_dim=4, w_dim=16, img_resolution=32,
                                 mapping_layers=2, channel_base=256, channel_max=32,
                                 architecture="resnet", d_channel_base=256, d_channel_max=32,
                                 d_mapping_layers=2)
    for role in ("G", "D"):
        got = [(k, list(v.shape)) for k, v in nets[role].state_dict().items()]
        assert got == list(tables[role].items())


# --------------------------------------------------------------------------- public tables


@pytest.mark.parametrize("label", sorted(SHAPES["configs"]))
def test_public_configurations_have_nvidias_keys_and_shapes(label):
    entry = SHAPES["configs"][label]
    cfg = StyleGAN2ADAConfig(**entry["config"])
    nets = meta_build(lambda: build_stylegan2_ada(cfg), 100_000, label)
    for role in ("G", "D"):
        got = [[k, list(v.shape)] for k, v in nets[role].state_dict().items()]
        assert got == entry[role], f"{label} {role}"
    kw = {k: v for k, v in entry["config"].items()}
    tables = ref.expected_shapes(**kw)
    assert [[k, v] for k, v in tables["G"].items()] == entry["G"]


def test_module_sizes_equal_nvidias_printed_summaries():
    counts = SHAPES["published_module_counts"]
    cfg = StyleGAN2ADAConfig(**SHAPES["configs"]["ffhq-1024-config-f"]["config"])
    nets = meta_build(lambda: build_stylegan2_ada(cfg), 100_000, "ffhq")
    for role in ("G", "D"):
        net = nets[role]
        for module, (params, buffers) in counts[role].items():
            sub = net.get_submodule(module)
            assert sum(p.numel() for p in sub.parameters()) == params, module
            assert sum(b.numel() for b in sub.buffers()) == buffers, module
    G = nets["G"]
    assert G.num_ws == 18 and tuple(G.synthesis.b1024.torgb.weight.shape) == (3, 32, 1, 1)


# --------------------------------------------------------------------------- equivalence


@pytest.mark.parametrize("arch", ["skip", "orig", "resnet"])
@pytest.mark.parametrize("c_dim", [0, 5])
def test_generator_equals_reference(arch, c_dim):
    cfg, G, _ = _nets(architecture=arch, c_dim=c_dim, conv_clamp=3.0 if arch == "resnet" else None)
    z = torch.randn(3, cfg.z_dim, generator=torch.Generator().manual_seed(1))
    c = _labels(3, c_dim)
    with torch.no_grad():
        want = ref.generator(G.state_dict(), cfg, z, c, psi=0.7, cutoff=3)
        for fused in (None, True, False):
            _close(G(z, c, truncation_psi=0.7, truncation_cutoff=3, fused_modconv=fused), want)
        # the reference's own two forms agree too
        _close(ref.generator(G.state_dict(), cfg, z, c, psi=0.7, cutoff=3, fused=True), want)


def test_generator_64px_and_clamp_that_bites():
    cfg, G, _ = _nets(img_resolution=64, channel_base=512, conv_clamp=0.5)
    z = torch.randn(2, cfg.z_dim, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = G(z)
        want = ref.generator(G.state_dict(), cfg, z)
        unclamped = ref.generator(G.state_dict(), dataclasses.replace(cfg, conv_clamp=None), z)
    _close(out, want)
    assert float((want - unclamped).abs().max()) > 0.1  # the clamp changed the image


@pytest.mark.parametrize("taps", [(1, 2, 4, 3), (1, 2, 1), (1, 1), (1, 2, 3, 4, 4, 3, 2, 1, 1)])
def test_odd_and_asymmetric_filters_equal_reference(taps):
    """Filter flips, odd lengths and the separable >= 8-tap buffer, in G and D."""
    cfg, G, D = _nets(resample_filter=taps, d_resample_filter=taps, architecture="resnet",
                      d_architecture="skip")
    z = torch.randn(2, cfg.z_dim, generator=torch.Generator().manual_seed(3))
    img = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        _close(G(z), ref.generator(G.state_dict(), cfg, z))
        _close(D(img), ref.discriminator(D.state_dict(), cfg, img))
    if len(taps) >= 8:
        assert G.synthesis.b8.resample_filter.dim() == 1


def test_noise_modes_equal_reference():
    cfg, G, _ = _nets(seed=5)
    z = torch.randn(2, cfg.z_dim, generator=torch.Generator().manual_seed(5))
    st = G.state_dict()
    with torch.no_grad():
        _close(G(z, noise_mode="none"), ref.generator(st, cfg, z, noise_mode="none"))
        torch.manual_seed(123)
        ours = G(z, noise_mode="random")
        torch.manual_seed(123)  # NVIDIA's draw order: one randn per conv layer, in order
        _close(ours, ref.generator(st, cfg, z, noise_mode="random"))
        # the protocol's random noise from a generator is the same draws, made explicit
        w = G.map_z(z)
        g = torch.Generator().manual_seed(9)
        noises = [torch.randn(2, 1, r, r, generator=g) for _, r in G.synthesis.noise_shapes()]
        want = ref.synthesis(st, cfg, w[:, None].repeat(1, G.num_ws, 1), noises=noises)
        _close(G.synthesize(w, noise="random", generator=torch.Generator().manual_seed(9)), want)
        assert not torch.allclose(ours, G(z, noise_mode="const"))


def test_use_noise_off():
    cfg, G, _ = _nets(use_noise=False)
    assert not any("noise" in k for k in G.state_dict())
    z = torch.randn(2, cfg.z_dim)
    with torch.no_grad():
        _close(G(z, noise_mode="random"), ref.generator(G.state_dict(), cfg, z))


@pytest.mark.parametrize("arch", ["resnet", "orig", "skip"])
@pytest.mark.parametrize("c_dim", [0, 4])
def test_discriminator_equals_reference(arch, c_dim):
    cfg, _, D = _nets(d_architecture=arch, c_dim=c_dim, d_conv_clamp=2.0,
                      cmap_dim=8 if c_dim else None, mbstd_group_size=2, mbstd_num_channels=2)
    img = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(6))
    c = _labels(4, c_dim)
    with torch.no_grad():
        _close(D(img, c), ref.discriminator(D.state_dict(), cfg, img, c))
    with pytest.raises(ValueError, match="divisible"):
        D(img[:3], c[:3] if c is not None else None)


def test_mbstd_whole_batch_and_off():
    cfg, _, D = _nets(mbstd_group_size=None)
    img = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        _close(D(img), ref.discriminator(D.state_dict(), cfg, img))
    cfg, _, D = _nets(mbstd_num_channels=0)
    assert D.b4.mbstd is None and D.b4.conv.weight.shape[1] == 32
    with torch.no_grad():
        _close(D(img), ref.discriminator(D.state_dict(), cfg, img))


def test_fp16_path_matches_float32_closely(monkeypatch):
    """The half-precision path (CUDA only in use; exercised here on the CPU) stays near the
    float32 result, returns float32 and clamps."""
    monkeypatch.setattr(N, "FP16_DEVICES", ("cpu",))
    cfg, G, D = _nets(num_fp16_res=2, d_num_fp16_res=2, conv_clamp=256, d_conv_clamp=256)
    z = torch.randn(2, cfg.z_dim)
    with torch.no_grad():
        full = G(z)
        assert G.synthesis.b32.use_fp16 and G.synthesis.b16.use_fp16 and not G.synthesis.b8.use_fp16
        half = G.enable_fp16()(z)
        assert half.dtype == torch.float32
        assert 0 < float((half - full).abs().max()) < 0.05 * float(full.abs().max())
        img = torch.randn(2, 3, 32, 32)
        d32 = D(img)
        d16 = D.enable_fp16()(img)
    assert d16.dtype == torch.float32 and float((d16 - d32).abs().max()) < 0.05
    G.enable_fp16(False)
    with torch.no_grad():
        _close(G(z), full, tol=0)


def test_autograd_runs_through_both_networks():
    cfg, G, D = _nets(architecture="resnet", c_dim=3)
    G.train()
    z = torch.randn(2, cfg.z_dim)
    c = _labels(2, 3)
    loss = D(G(z, c, noise_mode="random"), c).sum()
    loss.backward()
    assert G.synthesis.b8.conv0.weight.grad is not None
    assert G.mapping.fc0.weight.grad is not None and D.b32.conv0.weight.grad is not None


# --------------------------------------------------------------------------- protocol


def test_mapping_truncation_and_protocol_methods():
    cfg, G, _ = _nets(seed=7)
    z = torch.randn(3, cfg.z_dim)
    with torch.no_grad():
        ws = G.mapping(z, None)
        w = G.map_z(z)
        assert ws.shape == (3, G.num_ws, cfg.w_dim)
        _close(ws[:, 0], w, tol=0)
        avg = G.mapping.w_avg
        assert G.latent_avg is avg
        t = G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=4)
        _close(t[:, :4], avg + 0.5 * (ws[:, :4] - avg), tol=1e-6)
        _close(t[:, 4:], ws[:, 4:], tol=0)
        _close(G.mapping(z, None, truncation_psi=0.5), avg + 0.5 * (ws - avg), tol=1e-6)
        _close(G.synthesize(w), G(z), tol=1e-6)
        _close(G.synthesize(ws, noise="none"), G(z, noise_mode="none"), tol=1e-6)
    for bad in (torch.randn(2, 5), torch.randn(2, G.num_ws + 1, cfg.w_dim)):
        with pytest.raises(ValueError):
            G.synthesize(bad)
    with pytest.raises(ValueError):
        G.synthesize(w, noise="const")
    with pytest.raises(ValueError):
        G.map_z(torch.randn(2, cfg.z_dim + 1))


def test_style_mixing_layers():
    cfg, G, _ = _nets(img_resolution=64, channel_base=512)
    assert G.num_ws == 10
    assert G.style_layers("coarse") == [0, 1, 2, 3]
    assert G.style_layers("middle") == [4, 5, 6, 7]
    assert G.style_layers("fine") == [8, 9]
    a, b = torch.zeros(2, cfg.w_dim), torch.ones(1, cfg.w_dim)
    mixed = G.mix_styles(a, b, "middle")
    assert mixed.shape == (2, 10, cfg.w_dim)
    assert mixed[:, 4:8].eq(1).all() and mixed[:, :4].eq(0).all() and mixed[:, 8:].eq(0).all()
    assert G.mix_styles(a, b, slice(8, None))[:, 8:].eq(1).all()
    with pytest.raises(ValueError):
        G.mix_styles(a, b, [10])
    with pytest.raises(ValueError):
        _nets(img_resolution=32)[1].style_layers("fine")


def test_conditional_models_need_a_label_of_the_right_size():
    cfg, G, D = _nets(c_dim=3)
    z = torch.randn(2, cfg.z_dim)
    with pytest.raises(ValueError, match="conditional"):
        G.map_z(z)
    with pytest.raises(ValueError, match=r"\[B, 3\]"):
        G(z, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="conditional"):
        D(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match="rows"):
        G.map_z(z, torch.zeros(3, 3))
    assert G.map_z(z, _labels(2, 3)).shape == (2, cfg.w_dim)


# --------------------------------------------------------------------------- PyTorch pickles


def _loaded(found):
    nets = build_stylegan2_ada(found.config)
    out = {}
    for role, state in found.states.items():
        net = nets["D" if role == "D" else "G"] if role != "G_ema" else build_stylegan2_ada(
            found.config)["G"]
        net.load_state_dict(state, strict=True)
        out[role] = net.eval()
    return out


@pytest.mark.parametrize("c_dim", [0, 3])
def test_pytorch_pickle_round_trip(tmp_path, c_dim):
    cfg, G, D = _nets(seed=11, c_dim=c_dim, architecture="resnet" if c_dim else "skip",
                      conv_clamp=256, d_conv_clamp=256, mbstd_group_size=2,
                      resample_filter=(1, 2, 1) if c_dim else (1, 3, 3, 1))
    path = write_sg2ada_pickle(tmp_path / "network-snapshot-000100.pkl", cfg, G, D,
                     protocol=3 if c_dim else 4,
                     numpy_module="numpy._core" if c_dim else "numpy.core")
    found = read(read_nvidia_pickle(path), path.name)
    assert found is not None and found.arch == "stylegan2_ada"
    assert found.config == cfg
    assert set(found.states) == {"G", "G_ema", "D"}
    assert found.info["augment_p"] == pytest.approx(0.125)
    assert found.info["c_dim"] == c_dim
    assert found.info["training_set_kwargs"]["resolution"] == 32
    json.dumps(found.info)  # GANModel.training is saved as JSON
    nets = _loaded(found)
    z = torch.randn(2, cfg.z_dim)
    c = _labels(2, c_dim)
    img = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        _close(nets["G_ema"](z, c), G(z, c), tol=0)
        _close(nets["D"](img, c), D(img, c), tol=0)


def test_stylegan3_repository_layout_and_fp16_flags(tmp_path):
    """The stylegan3 repository's StyleGAN2: synthesis kwargs at the Generator's top level,
    conv_clamp 256 and num_fp16_res 4 as stored attributes."""
    cfg, G, D = _nets(seed=12, num_fp16_res=4, conv_clamp=256, d_num_fp16_res=4,
                      d_conv_clamp=256, img_resolution=64, channel_base=512)
    path = write_sg2ada_pickle(tmp_path / "sg3-stylegan2.pkl", cfg, G, D,
                     g_kwargs=sg2ada_g_kwargs(cfg, sg3_layout=True))
    found = read(read_nvidia_pickle(path), path.name)
    assert found.config == cfg
    assert any("float16" in n for n in found.notes)


def test_init_kwargs_that_contradict_the_tensors_are_refused(tmp_path):
    cfg, G, D = _nets(seed=13)
    for wrong, needle in ((dict(mapping_kwargs=dict(num_layers=8)), "num_layers=8"),
                          (dict(w_dim=512), "w_dim=512"),
                          (dict(synthesis_kwargs=dict(channel_base=32768)), "channel_base")):
        kw = {**sg2ada_g_kwargs(cfg), **wrong}
        path = write_sg2ada_pickle(tmp_path / "bad.pkl", cfg, G, D, g_kwargs=kw)
        with pytest.raises(CheckpointError, match=needle):
            read(read_nvidia_pickle(path), path.name)
    # what does not change the network (fp16 count, clamp default) is no error
    kw = sg2ada_g_kwargs(cfg)
    kw["synthesis_kwargs"] = {**kw["synthesis_kwargs"], "num_fp16_res": 4}
    path = write_sg2ada_pickle(tmp_path / "ok.pkl", cfg, G, D, g_kwargs=kw)
    assert read(read_nvidia_pickle(path), path.name).config == cfg


def test_foreign_and_damaged_files(tmp_path):
    cfg, G, D = _nets(seed=14)
    # a StyleGAN3 generator is another family's file
    sg3 = FakeModule("Generator", init_kwargs=dict(z_dim=16), modules={
        "synthesis": FakeModule("SynthesisNetwork", modules={
            "input": FakeModule("SynthesisInput", parameters={"weight": torch.zeros(4, 4)}),
            "L0_36_512": FakeModule("SynthesisLayer")}),
        "mapping": FakeModule("MappingNetwork")})
    path = write_nvidia_pickle(tmp_path / "sg3.pkl", {"G": sg3, "G_ema": sg3, "D": None,
                                                      "augment_pipe": None,
                                                      "training_set_kwargs": None})
    obj = read_nvidia_pickle(path)
    assert read(obj, path.name) is None
    assert "no b4" in FORMAT.diagnose(obj)
    assert read({"g_ema": {}}, "x") is None and read(42, "x") is None
    # a G whose tensors were tampered with (one layer missing)
    fg = fake_from_module(G, init_kwargs=sg2ada_g_kwargs(cfg), attributes=sg2ada_attributes)
    del fg.modules["synthesis"].modules["b16"].modules["conv1"].parameters["bias"]
    path = write_nvidia_pickle(tmp_path / "cut.pkl", {"G_ema": fg})
    with pytest.raises(CheckpointError, match="b16.conv1.bias"):
        read(read_nvidia_pickle(path), path.name)
    # absurd claims: a block far beyond any resolution, a mapping network 100 layers deep
    fg = fake_from_module(G, init_kwargs=sg2ada_g_kwargs(cfg), attributes=sg2ada_attributes)
    fg.modules["synthesis"].modules["b1048576"] = FakeModule("SynthesisBlock")
    path = write_nvidia_pickle(tmp_path / "huge.pkl", {"G_ema": fg})
    with pytest.raises(CheckpointError, match="b1048576"):
        read(read_nvidia_pickle(path), path.name)
    fg = fake_from_module(G, init_kwargs={**sg2ada_g_kwargs(cfg), "mapping_kwargs": {}},
                          attributes=sg2ada_attributes)
    for i in range(2, 100):
        fg.modules["mapping"].modules[f"fc{i}"] = FakeModule(
            "FullyConnectedLayer", parameters={"weight": torch.zeros(1, 1), "bias": torch.zeros(1)})
    path = write_nvidia_pickle(tmp_path / "deep.pkl", {"G_ema": fg})
    with pytest.raises(CheckpointError, match="mapping_layers"):
        read(read_nvidia_pickle(path), path.name)


def test_pickle_loads_as_a_gan_model_and_renders(tmp_path):
    from gan_core.io.public import load_public
    from gan_core.latent.space import LatentSpace
    cfg, G, D = _nets(seed=15)
    path = write_sg2ada_pickle(tmp_path / "model.pkl", cfg, G, D)
    model = load_public(path, read_nvidia_pickle(path), container="nvidia_pickle")
    assert model.arch == "stylegan2_ada" and model.training["augment_p"] == pytest.approx(0.125)
    space = LatentSpace(model)
    codes = space.seed_codes([1, 2], truncation=0.7)
    images = space.render(codes, noise="random", seeds=[1, 2])
    assert images.shape == (2, 32, 32, 3) and 0 <= float(images.min()) <= float(images.max()) <= 1
    avg = G.mapping.w_avg
    with torch.no_grad():
        # NVIDIA's seed convention: gen_images.py's np.random.RandomState(seed).randn(z_dim)
        z = torch.stack([torch.from_numpy(np.random.RandomState(s).randn(cfg.z_dim)).float()
                         for s in (1, 2)])
        _close(codes, avg + 0.7 * (G.map_z(z) - avg), tol=1e-5)


# --------------------------------------------------------------------------- TensorFlow pickles


def _tf_var(g: torch.Generator, *shape: int, scale: float = 1.0, shift: float = 0.0):
    return (torch.randn(shape, generator=g) * scale + shift).numpy().astype(np.float32)


def _tf_networks(seed=0, resolution=32, fmap_base=128, fmap_max=32, latent=16, dlatent=16,
                 mapping_layers=2, g_arch="skip", d_arch="resnet", label_size=0, ada=False,
                 **extra):
    """Random TF-era (G, D, Gs) for NVlabs/stylegan2 (ada=False) or stylegan2-ada's TF code."""
    g = torch.Generator().manual_seed(seed)
    nf = lambda stage: int(min(max(fmap_base // 2 ** stage, 1), fmap_max))  # noqa: E731
    log2 = int(math.log2(resolution))
    kw = dict(resolution=resolution, num_channels=3, label_size=label_size, fmap_base=fmap_base,
              fmap_max=fmap_max, latent_size=latent, dlatent_size=dlatent,
              mapping_layers=mapping_layers, mapping_fmaps=dlatent, **extra)
    mapping = []
    inp = latent
    if label_size:
        mapping += [("LabelEmbed/weight", _tf_var(g, label_size, latent)),
                    ("LabelEmbed/bias", _tf_var(g, latent, scale=0.3))]
        inp += latent
    for i in range(mapping_layers):
        mapping += [(f"Dense{i}/weight", _tf_var(g, inp, dlatent, scale=100.0)),
                    (f"Dense{i}/bias", _tf_var(g, dlatent, scale=0.3))]
        inp = dlatent

    def mod(scope, cin, cout, k):
        return [(f"{scope}/weight", _tf_var(g, k, k, cin, cout)),
                (f"{scope}/mod_weight", _tf_var(g, dlatent, cin)),
                (f"{scope}/mod_bias", _tf_var(g, cin, scale=0.3)),
                (f"{scope}/bias", _tf_var(g, cout, scale=0.3))]

    syn = [("4x4/Const/const", _tf_var(g, 1, nf(1), 4, 4))]
    syn += mod("4x4/Conv", nf(1), nf(1), 3) + [("4x4/Conv/noise_strength", _tf_var(g, scale=0.3))]
    if g_arch == "skip":
        syn += mod("4x4/ToRGB", nf(1), 3, 1)
    for k in range(3, log2 + 1):
        r = f"{2 ** k}x{2 ** k}"
        syn += mod(f"{r}/Conv0_up", nf(k - 2), nf(k - 1), 3)
        syn += [(f"{r}/Conv0_up/noise_strength", _tf_var(g, scale=0.3))]
        syn += mod(f"{r}/Conv1", nf(k - 1), nf(k - 1), 3)
        syn += [(f"{r}/Conv1/noise_strength", _tf_var(g, scale=0.3))]
        if g_arch == "resnet":
            syn += [(f"{r}/Skip/weight", _tf_var(g, 1, 1, nf(k - 2), nf(k - 1)))]
        if g_arch == "skip" or k == log2:
            syn += mod(f"{r}/ToRGB", nf(k - 1), 3, 1)
    for i in range(2 * log2 - 3):
        res = 2 ** ((i + 5) // 2)
        syn.append((f"noise{i}", _tf_var(g, 1, 1, res, res)))
    gen_kw = dict(kw, architecture=g_arch)
    synthesis = FakeTFNetwork("G_synthesis", gen_kw, variables=syn,
                              build_func_name="G_synthesis" if ada else "G_synthesis_stylegan2")
    mapnet = FakeTFNetwork("G_mapping", gen_kw, variables=mapping, build_func_name="G_mapping")
    Gs = FakeTFNetwork("G", gen_kw, components={"mapping": mapnet, "synthesis": synthesis},
                       variables=[("lod", np.zeros((), np.float32)),
                                  ("dlatent_avg", _tf_var(g, dlatent))], build_func_name="G_main")
    dvars = []
    for k in range(log2, 2, -1):
        r = f"{2 ** k}x{2 ** k}"
        if d_arch == "skip" or k == log2:
            dvars += [(f"{r}/FromRGB/weight", _tf_var(g, 1, 1, 3, nf(k - 1))),
                      (f"{r}/FromRGB/bias", _tf_var(g, nf(k - 1), scale=0.3))]
        dvars += [(f"{r}/Conv0/weight", _tf_var(g, 3, 3, nf(k - 1), nf(k - 1))),
                  (f"{r}/Conv0/bias", _tf_var(g, nf(k - 1), scale=0.3)),
                  (f"{r}/Conv1_down/weight", _tf_var(g, 3, 3, nf(k - 1), nf(k - 2))),
                  (f"{r}/Conv1_down/bias", _tf_var(g, nf(k - 2), scale=0.3))]
        if d_arch == "resnet":
            dvars += [(f"{r}/Skip/weight", _tf_var(g, 1, 1, nf(k - 1), nf(k - 2)))]
    cmap = nf(0) if label_size else 1
    if d_arch == "skip":
        dvars += [("4x4/FromRGB/weight", _tf_var(g, 1, 1, 3, nf(1))),
                  ("4x4/FromRGB/bias", _tf_var(g, nf(1), scale=0.3))]
    dvars += [("4x4/Conv/weight", _tf_var(g, 3, 3, nf(1) + 1, nf(1))),
              ("4x4/Conv/bias", _tf_var(g, nf(1), scale=0.3)),
              ("4x4/Dense0/weight", _tf_var(g, nf(1) * 16, nf(0))),
              ("4x4/Dense0/bias", _tf_var(g, nf(0), scale=0.3)),
              ("Output/weight", _tf_var(g, nf(0), cmap)), ("Output/bias", _tf_var(g, cmap))]
    if label_size:
        dvars += [("LabelEmbed/weight", _tf_var(g, label_size, nf(0))),
                  ("LabelEmbed/bias", _tf_var(g, nf(0), scale=0.3)),
                  ("Mapping0/weight", _tf_var(g, nf(0), nf(0), scale=10.0)),
                  ("Mapping0/bias", _tf_var(g, nf(0), scale=0.3))]
    d_kw = dict(resolution=resolution, num_channels=3, label_size=label_size,
                fmap_base=fmap_base, fmap_max=fmap_max, architecture=d_arch, **extra)
    if ada:
        d_kw.update(mbstd_group_size=2, mapping_layers=1 if label_size else 0)
    D = FakeTFNetwork("D", d_kw, variables=dvars,
                      build_func_name="D_main" if ada else "D_stylegan2")
    return Gs, D, Gs


@pytest.mark.parametrize("g_arch,d_arch", [("skip", "resnet"), ("resnet", "skip"),
                                           ("orig", "orig")])
def test_tensorflow_pickle_converts_to_the_same_maths(tmp_path, g_arch, d_arch):
    G_tf, D_tf, Gs_tf = _tf_networks(seed=21, g_arch=g_arch, d_arch=d_arch)
    path = write_tf_pickle(tmp_path / "stylegan2-tiny-config-f.pkl", (G_tf, D_tf, Gs_tf))
    obj = read_nvidia_pickle(path)
    found = read(obj, path.name)
    assert found.config.channel_base == 256 and found.config.architecture == g_arch
    assert found.config.d_architecture == d_arch and found.config.mbstd_group_size == 4
    nets = _loaded(found)
    z = torch.randn(4, 16, generator=torch.Generator().manual_seed(22))
    img = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(23))
    with torch.no_grad():
        _close(nets["G_ema"](z, truncation_psi=0.6, truncation_cutoff=2),
               ref.tf_generator(obj[2], z, psi=0.6, cutoff=2))
        _close(nets["G_ema"](z, noise_mode="none"), ref.tf_generator(obj[2], z, noise_mode="none"))
        _close(nets["D"](img), ref.tf_discriminator(obj[1], img))
    assert any("TensorFlow" in n for n in found.notes)


def test_tensorflow_ada_conditional_converts(tmp_path):
    G_tf, D_tf, Gs_tf = _tf_networks(seed=24, label_size=3, ada=True, conv_clamp=2.0)
    path = write_tf_pickle(tmp_path / "ada-tf.pkl", (G_tf, D_tf, Gs_tf))
    obj = read_nvidia_pickle(path)
    found = read(obj, path.name)
    cfg = found.config
    assert (cfg.c_dim, cfg.conv_clamp, cfg.d_mapping_layers, cfg.d_mapping_lr_multiplier) == \
        (3, 2.0, 1, 0.1)
    nets = _loaded(found)
    z = torch.randn(2, 16, generator=torch.Generator().manual_seed(25))
    c = _labels(2, 3)
    img = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(26))
    with torch.no_grad():
        _close(nets["G_ema"](z, c), ref.tf_generator(obj[2], z, c))
        _close(nets["D"](img, c), ref.tf_discriminator(obj[1], img, c))


def test_tensorflow_files_that_cannot_be_converted(tmp_path):
    cases = []
    G_tf, D_tf, Gs_tf = _tf_networks(seed=27)
    Gs_tf.components["mapping"].variables.append(("LabelConcat/weight", np.zeros((3, 16),
                                                                                np.float32)))
    cases.append(((G_tf, D_tf, Gs_tf), "conditional NVlabs/stylegan2"))
    cases.append((_tf_networks(seed=28, fmap_decay=0.5), "fmap_decay"))
    cases.append((_tf_networks(seed=31, fmap_min=16), "fmap_min"))
    cases.append((_tf_networks(seed=32, g_arch="wide"), "wide"))
    G_tf, D_tf, Gs_tf = _tf_networks(seed=29)
    syn = Gs_tf.components["synthesis"]
    syn.variables = [(n.replace("Conv/mod_weight", "Conv/StyleMod/weight"), a)
                     for n, a in syn.variables]
    cases.append(((G_tf, D_tf, Gs_tf), "StyleGAN \\(v1\\)"))
    G_tf, D_tf, Gs_tf = _tf_networks(seed=30)
    D_tf.variables.append(("Extra/weight", np.zeros((2, 2), np.float32)))
    cases.append(((G_tf, D_tf, Gs_tf), "no place"))
    for i, (nets, needle) in enumerate(cases):
        path = write_tf_pickle(tmp_path / f"tf{i}.pkl", nets)
        with pytest.raises(CheckpointError, match=needle):
            read(read_nvidia_pickle(path), path.name)
