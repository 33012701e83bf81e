"""StyleGAN3 (T and R) in NVIDIA's pickle layout: shape tables of the public configs,
numerical equivalence with the plain reading of the maths in tests/nvidia_reference_sg3.py
(whole generators, single layers, the filtered leaky ReLU alone over random shapes, factors,
paddings and filters), truncation, conditioning, the camera (whole-pixel translations shift
the image, 90-degree rotations of an R model rotate it, per-call transforms leave the buffer
alone), the latent protocol, training-mode EMA updates, and stand-in NVIDIA pickles written
from our modules with NVIDIA's class names and attributes. Models are tiny (32-64 px)."""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_core.archs import get_arch
from gan_core.archs.stylegan3 import filters, ops
from gan_core.archs.stylegan3.network import (
    Generator,
    StyleGAN3Config,
    build_stylegan3,
    camera_matrix,
    synthesis_geometry,
)
from gan_core.archs.stylegan3.public import FORMAT, read
from gan_core.errors import CheckpointError
from gan_core.io.nvidia_pickle import read_nvidia_pickle
from gan_core.registry import config_from_json, config_to_json
from gan_core.statedict import meta_build

if str(Path(__file__).resolve().parent) not in sys.path:  # the test helpers beside this file
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import nvidia_reference_sg3 as ref
from nvidia_models import SG3_TINY, sg3_g_kwargs, sg3_randomise, sg3_top
from nvidia_pickles import FakeModule, write_nvidia_pickle

SHAPES = json.loads((Path(__file__).parent / "data" / "nvidia_shapes_stylegan3.json")
                    .read_text())
TINY = SG3_TINY
TINY_R = dict(TINY, channel_base=1024, channel_max=64, conv_kernel=1, use_radial_filters=True)
TOL = 1e-4


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _cfg(radial: bool = False, **overrides) -> StyleGAN3Config:
    return StyleGAN3Config(**{**(TINY_R if radial else TINY), **overrides})


def _generator(seed: int = 0, radial: bool = False, **overrides) -> tuple[StyleGAN3Config,
                                                                           Generator]:
    cfg = _cfg(radial, **overrides)
    torch.manual_seed(seed)
    return cfg, sg3_randomise(Generator(cfg), seed)


def _ref_geometry(cfg: StyleGAN3Config) -> dict:
    return ref.reference_geometry(
        cfg.img_resolution, cfg.img_channels, cfg.channel_base, cfg.channel_max,
        cfg.num_layers, cfg.num_critical, cfg.first_cutoff, cfg.first_stopband,
        cfg.last_stopband_rel, cfg.margin_size, cfg.num_fp16_res, cfg.conv_kernel,
        cfg.filter_size, cfg.lrelu_upsampling, cfg.use_radial_filters)


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = TOL) -> None:
    assert a.shape == b.shape
    diff = float((a - b).detach().abs().max())
    assert diff <= tol, f"max abs diff {diff:.3g} > {tol}"


def _labels(n: int, c_dim: int) -> torch.Tensor | None:
    return torch.eye(c_dim)[torch.arange(n) % c_dim] if c_dim else None


# --------------------------------------------------------------------------- config, geometry

def test_config_round_trips_json_and_rejects_bad_values():
    spec = get_arch("stylegan3")
    for cfg in (_cfg(), _cfg(radial=True, c_dim=5, conv_clamp=None, w_avg_beta=None),
                StyleGAN3Config.stylegan3_r(512)):
        assert config_from_json(spec, config_to_json(cfg)) == cfg
    assert StyleGAN3Config.stylegan3_r().variant == "R" and StyleGAN3Config().variant == "T"
    for bad in (dict(img_resolution=48), dict(img_resolution=4), dict(num_critical=4),
                dict(channel_base=0), dict(z_dim=0), dict(first_stopband=0.5),
                dict(conv_clamp=-1), dict(mapping_layers=0), dict(num_layers=10 ** 6)):
        with pytest.raises(ValueError):
            _cfg(**bad)


@pytest.mark.parametrize("label", sorted(SHAPES["configs"]))
def test_public_configurations_have_nvidias_keys_shapes_and_geometry(label):
    entry = SHAPES["configs"][label]
    cfg = StyleGAN3Config(**entry["config"])
    G = meta_build(lambda: Generator(cfg), 100_000, label)
    assert [[k, list(v.shape)] for k, v in G.state_dict().items()] == entry["G"]
    assert G.num_ws == entry["num_ws"] == 16
    geo = synthesis_geometry(cfg)
    assert dataclasses.asdict(geo.input) == entry["input"]
    for ours, theirs in zip(geo.layers, entry["layers"], strict=True):
        got = dataclasses.asdict(ours)
        got["padding"] = list(got["padding"])
        assert got == theirs, ours.name
    if label == "stylegan3-t-1024":
        names = [layer.name for layer in geo.layers]
        assert names[0] == "L0_36_512" and names[-1] == "L14_1024_3" and len(names) == 15


def test_every_buffer_is_persistent_and_filters_are_designed():
    cfg, G = _generator(radial=True)
    assert not any(m._non_persistent_buffers_set for m in G.modules())
    layer = G.synthesis.L0_24_64
    assert layer.up_filter.shape == (12,) and layer.down_filter.shape == (12, 12)
    assert float(layer.up_filter.sum()) == pytest.approx(1, abs=1e-6)
    assert float(layer.down_filter.sum()) == pytest.approx(1, abs=1e-6)
    torch.testing.assert_close(layer.up_filter, layer.up_filter.flip(0))
    torch.testing.assert_close(layer.down_filter, layer.down_filter.t())
    last = getattr(G.synthesis, G.synthesis.layer_names[-1])
    assert last.up_filter is None and last.down_filter is None  # ToRGB: no resampling


def test_filter_design_from_the_maths():
    # J1 against tabulated values
    xs = np.array([0.5, 1.0, 2.5, 10.0, 30.0])
    want = np.array([0.24226845767487387, 0.44005058574493355, 0.4970941024642741,
                     0.04347274616886141, -0.11875106261662305])
    np.testing.assert_allclose(filters.bessel_j1(xs), want, rtol=0, atol=1e-13)
    # a Kaiser-windowed sinc: symmetric, unit DC gain, passes the band and stops the stopband
    taps = filters.lowpass_1d(24, cutoff=5.04, width=2 * 4.5, fs=64)
    np.testing.assert_allclose(taps, taps[::-1])
    response = np.abs(np.fft.rfft(taps, 4096))
    freqs = np.fft.rfftfreq(4096, 1 / 64)
    assert response[0] == pytest.approx(1, abs=1e-12)
    assert response[np.argmin(np.abs(freqs - 5.04))] == pytest.approx(0.5, abs=0.03)
    assert response[freqs < 0.5].min() > 0.98 and response[freqs > 5.04 + 4.5].max() < 0.03
    assert filters.design_lowpass(1, 1, 1, 1) is None
    assert filters.kaiser_beta(10) == 0 and filters.kaiser_beta(60) == pytest.approx(0.1102 * 51.3)
    if importlib.util.find_spec("scipy") is None:  # the same design as scipy's firwin
        return
    import scipy.signal
    np.testing.assert_allclose(
        taps, scipy.signal.firwin(numtaps=24, cutoff=5.04, width=9.0, fs=64), atol=1e-12)


# --------------------------------------------------------------------------- the filtered lrelu

def _random_filter(kind: str, rng: np.random.Generator) -> torch.Tensor | None:
    if kind == "none":
        return None
    if kind == "1d":
        return torch.from_numpy(rng.standard_normal(int(rng.integers(1, 9)))).float()
    return torch.from_numpy(rng.standard_normal((int(rng.integers(1, 8)),
                                                 int(rng.integers(1, 8))))).float()


@pytest.mark.parametrize("seed", range(6))
def test_filtered_lrelu_equals_the_reference_form(seed):
    """Random sizes (odd ones too), up 1/2/4, down 1/2, separable / 2-D / no filters,
    asymmetric taps, paddings of both signs, gains, slopes, clamps, flips and band sizes."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < 25:
        up, down = int(rng.choice([1, 2, 4])), int(rng.choice([1, 2]))
        fu = _random_filter(str(rng.choice(["none", "1d", "2d"], p=[0.2, 0.6, 0.2])), rng)
        fd = _random_filter(str(rng.choice(["none", "1d", "2d"])), rng)
        pad = [int(v) for v in rng.integers(-3, 9, size=4)]
        x = torch.from_numpy(rng.standard_normal((int(rng.integers(1, 3)), int(rng.integers(1, 6)),
                                                  int(rng.integers(3, 18)),
                                                  int(rng.integers(3, 18))))).float()
        b = torch.from_numpy(rng.standard_normal(x.shape[1])).float()
        gain = float(rng.choice([1.0, math.sqrt(2), 0.7]))
        slope = float(rng.choice([0.2, 1.0, 0.0]))
        clamp = [None, 0.5, 256.0][int(rng.integers(3))]
        flip = bool(rng.integers(2))
        try:
            want = ref.filtered_lrelu(x, fu, fd, b, up, down, pad, gain, slope, clamp, flip)
        except (RuntimeError, ValueError):  # a configuration with no output
            continue
        if want.numel() == 0:
            continue
        band = [None, 1, 64, 500][int(rng.integers(4))]
        got = ops.filtered_lrelu(x, fu, fd, b, up, down, pad, gain, slope, clamp, flip,
                                 band_elements=band)
        assert got.shape == want.shape
        scale = max(1.0, float(want.abs().max()))
        _close(got / scale, want / scale, tol=1e-5)
        done += 1


def test_filtered_lrelu_on_real_layer_geometry_and_bands():
    """Each layer of a tiny T and R network alone, with bands down to one output row, against
    the reference; the band size changes no value."""
    for radial in (False, True):
        cfg, G = _generator(seed=3, radial=radial)
        g = torch.Generator().manual_seed(4)
        for name in G.synthesis.layer_names:
            layer = getattr(G.synthesis, name)
            size = int(layer.in_size[0]) + layer.conv_kernel - 1
            x = torch.randn(2, layer.out_channels, size, size, generator=g) * 3
            kw = dict(up=layer.up_factor, down=layer.down_factor, padding=layer.padding,
                      gain=1 if layer.is_torgb else math.sqrt(2),
                      slope=1 if layer.is_torgb else 0.2, clamp=layer.conv_clamp)
            want = ref.filtered_lrelu(x, layer.up_filter, layer.down_filter, layer.bias, **kw)
            assert want.shape[2:] == (int(layer.out_size[1]), int(layer.out_size[0]))
            whole = ops.filtered_lrelu(x, layer.up_filter, layer.down_filter, layer.bias, **kw)
            _close(whole, want, tol=1e-5)
            banded = ops.filtered_lrelu(x, layer.up_filter, layer.down_filter, layer.bias,
                                        band_elements=1, **kw)
            _close(banded, whole, tol=1e-6)
        # gradients (inversion optimises through these layers) equal the reference's too
        x = x.detach().requires_grad_(True)
        probe = torch.randn(want.shape, generator=g)
        ours = torch.autograd.grad((ops.filtered_lrelu(x, layer.up_filter, layer.down_filter,
                                                       layer.bias, **kw) * probe).sum(), x)[0]
        theirs = torch.autograd.grad((ref.filtered_lrelu(x, layer.up_filter, layer.down_filter,
                                                         layer.bias, **kw) * probe).sum(), x)[0]
        _close(ours, theirs, tol=1e-4)


# --------------------------------------------------------------------------- whole networks

@pytest.mark.parametrize("radial,c_dim", [(False, 0), (True, 0), (False, 3)])
def test_generator_equals_reference(radial, c_dim):
    cfg, G = _generator(seed=1 + c_dim, radial=radial, c_dim=c_dim)
    geo = _ref_geometry(cfg)
    state = G.state_dict()
    z = torch.randn(3, cfg.z_dim, generator=torch.Generator().manual_seed(5))
    c = _labels(3, c_dim)
    with torch.no_grad():
        for psi, cutoff in ((1, None), (0.6, None), (0.5, 2)):
            want = ref.generator(state, z, c, geo, psi, cutoff, cfg.output_scale,
                                 cfg.conv_clamp, cfg.mapping_lr_multiplier)
            got = G(z, c, truncation_psi=psi, truncation_cutoff=cutoff, noise_mode="const")
            _close(got, want)
        # layer by layer, as NVIDIA's synthesis runs them
        ws = G.mapping(z, c)
        seen = {}
        ref.synthesis(state, ws, geo, cfg.output_scale, cfg.conv_clamp,
                      layer_hook=lambda name, x: seen.__setitem__(name, x))
        x = G.synthesis.input(ws[:, 0])
        for i, name in enumerate(G.synthesis.layer_names):
            x = getattr(G.synthesis, name)(x, ws[:, i + 1])
            _close(x, seen[name], tol=TOL * max(1.0, float(seen[name].abs().max())))


def test_clamp_that_bites_and_no_clamp():
    for clamp in (0.05, None):
        cfg, G = _generator(seed=7, conv_clamp=clamp)
        z = torch.randn(2, cfg.z_dim, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            want = ref.generator(G.state_dict(), z, None, _ref_geometry(cfg),
                                 conv_clamp=clamp)
            _close(G(z, None), want)
    assert float(want.abs().max()) > 0


def test_mapping_truncation_follows_nvidia():
    cfg, G = _generator(seed=8)
    z = torch.randn(4, cfg.z_dim)
    with torch.no_grad():
        full = G.mapping(z, None)
        cut = G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=3)
        avg = G.mapping.w_avg
        assert full.shape == (4, G.num_ws, cfg.w_dim)
        _close(cut[:, :3], avg + 0.5 * (full[:, :3] - avg), tol=1e-6)
        _close(cut[:, 3:], full[:, 3:], tol=0)
        _close(G.map_z(z), full[:, 0], tol=0)
    assert G.latent_avg is G.mapping.w_avg


def test_conditional_models_need_a_label_of_the_right_size():
    cfg, G = _generator(seed=9, c_dim=4)
    z = torch.randn(2, cfg.z_dim)
    with pytest.raises(ValueError, match="conditional on 4 classes"):
        G.map_z(z)
    with pytest.raises(ValueError, match=r"\[2, 4\]"):
        G(z, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="unconditional"):
        _generator(seed=9)[1].map_z(z, torch.zeros(2, 4))
    out = _generator(seed=9)[1].map_z(z, torch.zeros(2, 0))  # NVIDIA's empty label is fine
    assert out.shape == (2, cfg.w_dim)
    with torch.no_grad():
        a, b = G.map_z(z, _labels(2, 4)), G.map_z(z, _labels(2, 4).roll(1, 1))
    assert not torch.allclose(a, b)


# --------------------------------------------------------------------------- camera

def test_whole_pixel_translations_shift_the_image():
    """A shift of a whole number of samples at every layer's rate (res/16 px here: the input
    runs at 16 samples per image) moves the image exactly; content moves +x right, +y down.
    With NVIDIA's 10-sample margins the zero padding at the canvas edges stays outside the
    image, so the whole image (less the strip that moved in) agrees."""
    for res in (32, 64):
        cfg, G = _generator(seed=10, img_resolution=res, num_layers=4 if res == 32 else 5,
                            margin_size=10)
        w = G.map_z(torch.randn(2, cfg.z_dim, generator=torch.Generator().manual_seed(1)))
        k = res // 16
        with torch.no_grad():
            base = G.synthesize(w)
            right = G.synthesize(w, transform=G.camera(translate_px=(k, 0)))
            down = G.synthesize(w, transform=G.camera(translate_px=(0, 2 * k)))
            left = G.synthesize(w, transform=camera_matrix((-k / res, 0)))
        _close(right[..., :, k:], base[..., :, :-k])
        _close(down[..., 2 * k:, :], base[..., :-2 * k, :])
        _close(left[..., :, :-k], base[..., :, k:])
        assert float((right - base).abs().max()) > 1e-2  # it did move


def test_rotation_zero_is_identity_and_transforms_do_not_stick():
    cfg, G = _generator(seed=11)
    w = G.map_z(torch.randn(3, cfg.z_dim))
    buffer = G.synthesis.input.transform.clone()
    torch.testing.assert_close(camera_matrix((0, 0), 0), torch.eye(3))
    with torch.no_grad():
        base = G.synthesize(w)
        _close(G.synthesize(w, transform=camera_matrix((0.0, 0.0), 0.0)), base, tol=0)
        moved = G.synthesize(w, transform=G.camera((1, 2), 30))
        per_image = torch.stack([torch.eye(3), G.camera((1, 2), 30), G.camera((3, 0), -10)])
        batch = G.synthesize(w, transform=per_image)
        _close(batch[1:2], G.synthesize(w[1:2], transform=G.camera((1, 2), 30)), tol=1e-5)
        _close(batch[0:1], base[0:1], tol=1e-5)
    assert not torch.allclose(moved, base)
    assert torch.equal(G.synthesis.input.transform, buffer)  # the buffer is untouched
    with pytest.raises(ValueError, match="transform"):
        G.synthesize(w, transform=torch.eye(4))
    # the camera matrix is the inverse of NVIDIA's make_transform
    a = math.radians(30)
    m = np.array([[math.cos(a), math.sin(a), 0.1], [-math.sin(a), math.cos(a), -0.2], [0, 0, 1]])
    np.testing.assert_allclose(camera_matrix((0.1, -0.2), 30).numpy() @ m, np.eye(3), atol=1e-6)


def test_r_models_rotate_by_quarter_turns():
    """StyleGAN3-R (1x1 convolutions, radial and symmetric filters) is exactly equivariant to
    90-degree turns: a camera rotation of +90 degrees turns the image counter-clockwise."""
    cfg, G = _generator(seed=12, radial=True)
    w = G.map_z(torch.randn(1, cfg.z_dim))
    with torch.no_grad():
        base = G.synthesize(w)
        turned = G.synthesize(w, transform=G.camera(rotate_degrees=90))
    _close(turned, torch.rot90(base, 1, dims=(2, 3)), tol=1e-5)


# --------------------------------------------------------------------------- protocol, training

def test_latent_protocol_and_style_mixing():
    cfg, G = _generator(seed=13, img_resolution=64, num_layers=5)
    spec = get_arch("stylegan3")
    io = spec.latent_io(cfg)
    assert (io.z_dim, io.code_dim, io.n_latent, io.mapped, io.synthesis) == (16, 16, 7, True,
                                                                            True)
    w = G.map_z(torch.randn(2, cfg.z_dim))
    with torch.no_grad():
        a = G.synthesize(w)
        for noise in ("fixed", "random", "none"):  # StyleGAN3 has no noise: all the same
            _close(G.synthesize(w, noise=noise, generator=torch.Generator()), a, tol=0)
        _close(G.synthesize(G.to_w_plus(w)), a, tol=0)
        _close(G.synthesis(G.to_w_plus(w)), a, tol=0)
    with pytest.raises(ValueError, match="noise"):
        G.synthesize(w, noise="const")
    with pytest.raises(ValueError, match="w\\+"):
        G.synthesize(torch.randn(2, 5, cfg.w_dim))
    groups = [G.style_layers(n) for n in ("coarse", "middle", "fine")]
    assert sorted(i for g in groups for i in g) == list(range(G.num_ws))
    w2 = G.map_z(torch.randn(2, cfg.z_dim))
    mixed = G.mix_styles(w, w2, "fine")
    fine = groups[2]
    assert torch.equal(mixed[:, fine], G.to_w_plus(w2)[:, fine])
    assert torch.equal(mixed[:, groups[0]], G.to_w_plus(w)[:, groups[0]])
    with pytest.raises(ValueError, match="outside"):
        G.mix_styles(w, w2, [99])


def test_training_mode_updates_the_emas_as_nvidia():
    cfg, G = _generator(seed=14)
    z = torch.randn(4, cfg.z_dim)
    layer = G.synthesis.L0_24_32
    seen = {}

    def keep_input(module, args):
        seen.setdefault("x", args[0].detach())

    layer.register_forward_pre_hook(keep_input)
    before_m, before_w = layer.magnitude_ema.clone(), G.mapping.w_avg.clone()
    with torch.no_grad():
        w = G.mapping.map(z)
        G(z, None, update_emas=True)
    cur = seen["x"].float().square().mean()
    torch.testing.assert_close(layer.magnitude_ema, cur.lerp(before_m, layer.magnitude_ema_beta))
    torch.testing.assert_close(G.mapping.w_avg, w.mean(0).lerp(before_w, cfg.w_avg_beta))
    after = layer.magnitude_ema.clone()
    with torch.no_grad():
        G(z, None)  # no update unless asked, as NVIDIA's default
    assert torch.equal(layer.magnitude_ema, after)


def test_builds_d_and_runs_it():
    cfg = _cfg()
    nets = build_stylegan3(cfg)
    assert set(nets) == {"G", "D"}
    with torch.no_grad():
        img = nets["G"].eval()(torch.randn(2, cfg.z_dim), None)
        assert nets["D"](img, None).shape == (2, 1)


# --------------------------------------------------------------------------- NVIDIA pickles

@pytest.mark.parametrize("radial,c_dim", [(False, 0), (True, 3)])
def test_pickle_round_trip(tmp_path, radial, c_dim):
    cfg, G = _generator(seed=20, radial=radial, c_dim=c_dim, magnitude_ema_beta=0.5 ** (32 / 2e4))
    D = build_stylegan3(cfg)["D"].eval()
    path = write_nvidia_pickle(tmp_path / "network-snapshot-000200.pkl", sg3_top(cfg, G, D),
                               protocol=4, numpy_module="numpy._core" if c_dim else "numpy.core")
    obj = read_nvidia_pickle(path)
    found = read(obj, path.name)
    assert found is not None and found.arch == "stylegan3"
    assert found.config == cfg
    assert set(found.states) == {"G", "G_ema", "D"}
    assert found.info["augment_p"] == pytest.approx(0.3)
    assert found.info["variant"] == ("StyleGAN3-R" if radial else "StyleGAN3-T")
    assert found.info["training_set_kwargs"]["resolution"] == cfg.img_resolution
    json.dumps(found.info)
    nets = build_stylegan3(found.config)
    nets["G"].load_state_dict(found.states["G_ema"], strict=True)
    nets["D"].load_state_dict(found.states["D"], strict=True)
    z = torch.randn(2, cfg.z_dim)
    c = _labels(2, c_dim)
    with torch.no_grad():
        _close(nets["G"].eval()(z, c, truncation_psi=0.7), G(z, c, truncation_psi=0.7), tol=0)
        img = torch.randn(2, 3, 32, 32)
        _close(nets["D"].eval()(img, c), D(img, c), tol=0)
    # the stored filters are used as stored (here: any values, not the designed ones)
    assert torch.equal(found.states["G"]["synthesis.L1_40_" + str(
        G.synthesis.L1_40_32.out_channels if not radial else 64) + ".up_filter"],
        getattr(G.synthesis, G.synthesis.layer_names[1]).up_filter)


def test_pickle_loads_as_a_gan_model_and_renders(tmp_path):
    from gan_core.io.public import load_public
    from gan_core.latent.space import LatentSpace
    cfg, G = _generator(seed=21, margin_size=10)
    path = write_nvidia_pickle(tmp_path / "stylegan3-t-tiny.pkl", sg3_top(cfg, G, with_d=False))
    model = load_public(path, read_nvidia_pickle(path), container="nvidia_pickle")
    assert model.arch == "stylegan3" and model.training["augment_p"] == pytest.approx(0.3)
    space = LatentSpace(model)
    codes = space.seed_codes([1, 2], truncation=0.7)
    images = space.render(codes, noise="random", seeds=[1, 2])
    assert images.shape == (2, 32, 32, 3) and 0 <= float(images.min()) <= float(images.max()) <= 1
    torch.testing.assert_close(space.mean_w()[0], G.mapping.w_avg)
    # NVIDIA's seed convention: z = RandomState(seed).randn(1, z_dim), as gen_images.py
    z = torch.from_numpy(np.random.RandomState(7).randn(1, cfg.z_dim)).float()
    with torch.no_grad():
        want = G(z, None, truncation_psi=0.5, truncation_cutoff=2)
    got = model.generate([7], truncation=0.5, truncation_cutoff=2)
    _close(got[0].permute(2, 0, 1), ((want[0] + 1) / 2).clamp(0, 1), tol=1e-5)
    # the camera: (tx, ty, degrees) in image widths, as NVIDIA's --translate / --rotate
    k = cfg.img_resolution // 16
    moved = model.generate([7], truncation=0.5, truncation_cutoff=2,
                           camera=(k / cfg.img_resolution, 0.0, 0.0))
    _close(moved[:, :, k:], got[:, :, :-k], tol=1e-4)
    with pytest.raises(ValueError, match="unconditional"):
        model.generate([7], class_index=1)


def test_foreign_and_inconsistent_files(tmp_path):
    cfg, G = _generator(seed=22)
    # a StyleGAN2 generator (b4 ... blocks) is the stylegan2_ada family's
    sg2 = FakeModule("Generator", modules={
        "synthesis": FakeModule("SynthesisNetwork", modules={"b4": FakeModule("SynthesisBlock")}),
        "mapping": FakeModule("MappingNetwork")})
    path = write_nvidia_pickle(tmp_path / "sg2.pkl", {"G": sg2, "G_ema": sg2, "D": None})
    assert read(read_nvidia_pickle(path), path.name) is None
    assert read({"G_ema": 3}, "x") is None and read((1, 2), "x") is None
    # a stored layer attribute the config cannot produce
    top = sg3_top(cfg, G, with_d=False)
    for role in ("G", "G_ema"):
        top[role].modules["synthesis"].modules["L2_40_16"].attributes["padding"] = [1, 2, 3, 4]
    path = write_nvidia_pickle(tmp_path / "pad.pkl", top)
    with pytest.raises(CheckpointError, match="L2_40_16.padding"):
        read(read_nvidia_pickle(path), path.name)
    # a missing tensor
    top = sg3_top(cfg, G, with_d=False)
    del top["G_ema"].modules["synthesis"].modules["L1_40_32"].parameters["bias"]
    path = write_nvidia_pickle(tmp_path / "cut.pkl", top)
    with pytest.raises(CheckpointError, match="L1_40_32.bias"):
        read(read_nvidia_pickle(path), path.name)
    # kwargs that contradict the tensors
    path = write_nvidia_pickle(tmp_path / "kw.pkl", sg3_top(cfg, G, with_d=False,
                                                         g_kwargs={**sg3_g_kwargs(cfg), "w_dim": 512}))
    with pytest.raises(CheckpointError, match="w_dim=512"):
        read(read_nvidia_pickle(path), path.name)
    # G and G_ema of different sizes
    other = _generator(seed=23, channel_max=16)[1]
    top = sg3_top(cfg, G, with_d=False)
    top["G"] = sg3_top(_cfg(channel_max=16), other, with_d=False)["G"]
    path = write_nvidia_pickle(tmp_path / "pair.pkl", top)
    with pytest.raises(CheckpointError, match="different networks"):
        read(read_nvidia_pickle(path), path.name)
    # a diagnosis for a synthesis network with an input but no layers
    odd = FakeModule("Generator", modules={
        "synthesis": FakeModule("SynthesisNetwork", modules={"input": FakeModule("X")}),
        "mapping": FakeModule("MappingNetwork")})
    path = write_nvidia_pickle(tmp_path / "odd.pkl", {"G_ema": odd})
    obj = read_nvidia_pickle(path)
    assert read(obj, path.name) is None and "no L{i}" in FORMAT.diagnose(obj)
