"""gan_core.latent: interpolation, walks, truncation and the mean latent, inversion, variations,
style mixing and the latent value, on a varied random-weight DCGAN, the MLP GAN and a toy
generator that implements the latent protocol with a mapping network and w+ synthesis."""
from __future__ import annotations

import logging

import pytest
import torch

import gan_core
from gan_core.archs import get_arch

pytestmark = pytest.mark.usefixtures("core_single_thread")


@pytest.fixture(scope="module")
def dcgan(latent_models):
    return latent_models.varied_dcgan()


@pytest.fixture
def toy(latent_models):
    return latent_models.toy_model()


def _mlp():
    spec = get_arch("mlp")
    cfg = spec.config_cls(image_size=12, latent_dim=10, g_hidden=(16,), d_hidden=(16,))
    torch.manual_seed(0)
    return gan_core.GANModel("mlp", cfg, {"G": spec.build(cfg)["G"]})


# --------------------------------------------------------------------------- lerp / slerp

def test_lerp_and_slerp_are_exact_at_the_ends_and_batch():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 7, generator=g), torch.randn(3, 7, generator=g)
    for fn in (gan_core.lerp, gan_core.slerp):
        assert torch.equal(fn(a, b, 0.0), a) and torch.equal(fn(a, b, 1.0), b)
        per_row = fn(a, b, torch.tensor([0.0, 0.5, 1.0]))
        assert per_row.shape == (3, 7)
        assert torch.equal(per_row[0], a[0]) and torch.equal(per_row[2], b[2])
        path = fn(a[:1], b[:1], torch.linspace(0, 1, 5))  # one pair, five weights
        assert path.shape == (5, 7)
        wplus = fn(a.view(1, 3, 7), b.view(1, 3, 7), torch.linspace(0, 1, 4))
        assert wplus.shape == (4, 3, 7)


def test_slerp_follows_the_great_circle_and_falls_back_for_parallel_vectors():
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    mid = gan_core.slerp(a, b, 0.5)
    assert torch.allclose(mid, torch.tensor([[2 ** -0.5, 2 ** -0.5]]), atol=1e-6)
    assert torch.allclose(gan_core.slerp(a, b, torch.rand(9)).norm(dim=-1), torch.ones(9), atol=1e-5)
    # same direction (different lengths) and zero vectors: lerp, no NaN
    par = gan_core.slerp(a, 3 * a, 0.5)
    assert torch.allclose(par, 2 * a)
    zero = gan_core.slerp(torch.zeros(1, 2), b, 0.25)
    assert torch.isfinite(zero).all() and torch.allclose(zero, 0.25 * b)


# --------------------------------------------------------------------------- interpolate

@pytest.mark.parametrize("mode", ["auto", "spherical", "linear"])
def test_interpolation_endpoints_equal_the_seeds_images(dcgan, toy, mode):
    for model in (dcgan, _mlp(), toy):
        frames = gan_core.interpolate(model, 3, 11, frames=6, mode=mode)
        assert frames.shape == (6, model.image_size, model.image_size, 3)
        assert frames.dtype == torch.float32 and 0 <= frames.min() and frames.max() <= 1
        assert torch.equal(frames[0], model.generate(3)[0])
        assert torch.equal(frames[-1], model.generate(11)[0])
        assert not torch.equal(frames[2], frames[3])


def test_interpolation_with_truncation_and_from_a_latent(dcgan, toy):
    frames = gan_core.interpolate(dcgan, 1, 2, frames=3, truncation=0.5)
    assert torch.equal(frames[0], dcgan.generate(1, truncation=0.5)[0])
    for model in (dcgan, toy):
        latent = gan_core.seed_latent(model, 5)
        shifted = gan_core.variations(model, latent, 1, 0.4, seed=9)
        frames = gan_core.interpolate(model, shifted, 7, frames=4)
        assert torch.equal(frames[0], gan_core.generate_from_latent(model, shifted)[0])
        assert torch.equal(frames[-1], model.generate(7)[0])


def test_mapping_models_interpolate_linearly_in_w(toy):
    space = gan_core.LatentSpace(toy)
    assert space.mapped and space.render_space == "w"
    walk = gan_core.walk(toy, [1, 2], frames=5, loop=False)
    wa, wb = gan_core.seed_latent(toy, [1, 2]).tensor
    assert walk.latents.space == "w"
    assert torch.allclose(walk.latents.tensor[2], (wa + wb) / 2, atol=1e-6)


# --------------------------------------------------------------------------- walk

def test_a_looping_walk_is_seamless(dcgan):
    seeds, n = [4, 9, 2], 12
    walk = gan_core.walk(dcgan, seeds, frames=n, mode="linear", easing="linear", loop=True)
    assert walk.images.shape == (n, 32, 32, 3) and isinstance(walk.fps, float)
    lat = walk.latents.tensor
    keys = gan_core.seed_latent(dcgan, seeds).tensor
    assert torch.equal(lat[0], keys[0]) and torch.equal(lat[4], keys[1]) and torch.equal(lat[8], keys[2])
    steps = (lat.roll(-1, 0) - lat).norm(dim=1)  # the last entry is the seam: last -> first
    assert not torch.equal(lat[-1], lat[0])  # no duplicate frame at the seam
    # within a segment every step is the same length, and the seam step is one of them
    assert torch.allclose(steps[8:], steps[8].expand(4), rtol=1e-4)
    # the frame after the last would be the first: a walk of twice the frames puts its last
    # frame half-way between our last frame and our first
    double = gan_core.walk(dcgan, seeds, frames=2 * n, mode="linear", loop=True).latents.tensor
    assert torch.equal(double[::2], lat)
    assert torch.allclose(double[-1], (lat[-1] + lat[0]) / 2, atol=1e-5)
    assert torch.equal(walk.images[0], dcgan.generate(4)[0])


def test_open_walk_ends_on_the_last_seed_and_easing_slows_at_the_stops(dcgan):
    walk = gan_core.walk(dcgan, "1,5,9", frames=9, loop=False, mode="linear", easing="ease_in_out")
    lat = walk.latents.tensor
    keys = gan_core.seed_latent(dcgan, [1, 5, 9]).tensor
    assert torch.equal(lat[0], keys[0]) and torch.equal(lat[-1], keys[2])
    assert torch.allclose(lat[4], keys[1], atol=1e-6)
    steps = (lat[1:] - lat[:-1]).norm(dim=1)
    assert steps[0] < steps[1]  # eased: leaves a stop slowly
    assert gan_core.fps_hint(60, 3) == 10.0 and 6.0 <= gan_core.fps_hint(5, 5) <= 24.0


def test_walk_errors_name_the_input(dcgan):
    with pytest.raises(ValueError, match="at least two"):
        gan_core.walk(dcgan, [3], frames=8)
    with pytest.raises(ValueError, match="easing"):
        gan_core.walk(dcgan, [1, 2], frames=8, easing="bounce")
    with pytest.raises(ValueError, match="mode"):
        gan_core.walk(dcgan, [1, 2], frames=8, mode="cubic")
    with pytest.raises(ValueError, match="frames"):
        gan_core.walk(dcgan, [1, 2], frames=1)
    with pytest.raises(ValueError, match="flicker"):
        gan_core.walk(dcgan, [1, 2], frames=4, noise="random")


def test_walk_reports_progress_and_can_be_cancelled(dcgan):
    seen = []

    class Stop(Exception):
        pass

    class Hooks:
        on_step = staticmethod(lambda done, losses: seen.append(done))

        @staticmethod
        def check_stop():
            if len(seen) == 2:
                raise Stop

    with pytest.raises(Stop):
        gan_core.walk(dcgan, [1, 2], frames=40, batch_size=8, callbacks=Hooks)
    assert seen == [8, 16]


# --------------------------------------------------------------------------- truncation

def test_mean_latent_is_computed_once_per_model(toy):
    module = toy.module
    first = gan_core.mean_latent(toy)
    calls = module.map_calls
    assert first.shape == (1, 8) and calls == 4  # 4096 z in chunks of 1024
    assert torch.equal(gan_core.mean_latent(toy), first)
    toy.generate("0-3", truncation=0.5)
    toy.generate("0-3", truncation=0.7)
    assert module.map_calls == calls + 2  # the seeds' own mappings only
    # z-space models: the prior's mean
    assert torch.equal(gan_core.mean_latent(_mlp()), torch.zeros(1, 10))


def test_a_files_latent_avg_is_the_mean(toy):
    toy.module.latent_avg = torch.full((8,), 0.25)
    assert torch.equal(gan_core.mean_latent(toy), torch.full((1, 8), 0.25))
    assert toy.module.map_calls == 0


def test_truncation_is_checked_by_every_latent_tool(dcgan, toy):
    lat = gan_core.seed_latent(toy, 1)
    calls = [lambda: gan_core.walk(dcgan, [1, 2], frames=3, truncation=-0.5),
             lambda: gan_core.walk(toy, [lat, lat], frames=3, truncation=2.5),
             lambda: gan_core.interpolate(dcgan, 1, 2, frames=3, truncation=3.0),
             lambda: gan_core.seed_latent(dcgan, 1, truncation=-1.0),
             lambda: gan_core.generate_from_latent(toy, lat, truncation=5.0),
             lambda: gan_core.style_mix(toy, lat, 2, "coarse", truncation=-2.0)]
    for call in calls:
        with pytest.raises(ValueError, match="truncation must be between 0 and 2"):
            call()


def test_truncation_zero_gives_the_mean_latents_image(toy):
    images = toy.generate("0-3", truncation=0.0)
    with torch.no_grad():
        expected = toy.module.synthesize(gan_core.mean_latent(toy))
    expected = expected.add(1).mul(0.5).clamp(0, 1).permute(0, 2, 3, 1)
    for img in images:
        assert torch.allclose(img, expected[0], atol=1e-6)
    # truncation moves w toward the mean: halfway at 0.5
    w = gan_core.seed_latent(toy, 2).tensor
    half = gan_core.seed_latent(toy, 2, truncation=0.5).tensor
    assert torch.allclose(half, (w + gan_core.mean_latent(toy)) / 2, atol=1e-6)


def test_generate_noise_modes_on_a_generator_with_noise(toy):
    # (the toy's batched matmuls round differently from a batch of one: compare closely)
    fixed = toy.generate([1, 2])
    assert torch.allclose(toy.generate(2)[0], fixed[1], atol=1e-6)
    rnd = toy.generate([1, 2], noise="random")
    alone = toy.generate(2, noise="random")[0]
    assert torch.allclose(alone, rnd[1], atol=1e-6)  # seeded by the image's seed
    assert not torch.allclose(rnd[1], fixed[1], atol=1e-3)
    assert not torch.equal(toy.generate(2, noise="none")[0], fixed[1])
    with pytest.raises(ValueError, match="noise"):
        toy.generate(1, noise="loud")


# --------------------------------------------------------------------------- variations

def test_variations_at_strength_zero_equal_the_source(dcgan, toy):
    for model, latent in ((dcgan, gan_core.seed_latent(dcgan, [3, 4])),
                          (toy, gan_core.seed_latent(toy, 3)),
                          (toy, gan_core.GANLatent("w+", gan_core.seed_latent(toy, 3).tensor
                                                   .unsqueeze(1).repeat(1, 6, 1), "toy"))):
        same = gan_core.variations(model, latent, count=3, strength=0.0, seed=5)
        assert len(same) == 3 * len(latent) and same.space == latent.space
        assert torch.equal(same.tensor, latent.tensor.repeat_interleave(3, 0))
        src = gan_core.generate_from_latent(model, latent)
        # (equal codes; the toy's batched matmuls may round a batch of 3 differently)
        assert torch.allclose(gan_core.generate_from_latent(model, same)[0], src[0], atol=1e-6)
        moved = gan_core.variations(model, latent, count=2, strength=0.5, seed=5)
        imgs = gan_core.generate_from_latent(model, moved)
        assert not torch.equal(imgs[0], imgs[1]) and not torch.equal(imgs[0], src[0])
    # z variations keep a typical norm (great circle), at any strength
    z = gan_core.seed_latent(dcgan, 3)
    far = gan_core.variations(dcgan, z, count=8, strength=0.5, seed=0).tensor.norm(dim=1)
    assert ((far / z.tensor.norm()) > 0.6).all()


def test_generate_from_a_seed_latent_matches_generate(dcgan, toy):
    for model in (dcgan, toy):
        assert torch.equal(gan_core.generate_from_latent(model, gan_core.seed_latent(model, "2-4")),
                           model.generate("2-4"))


# --------------------------------------------------------------------------- style mixing

def test_style_mixing_takes_the_chosen_layers_from_the_mix_seed(toy):
    w_a = gan_core.seed_latent(toy, 1).tensor
    w_b = gan_core.seed_latent(toy, 2).tensor
    mixed = gan_core.style_mix(toy, 1, 2, layers="coarse")
    wplus = w_a.unsqueeze(1).repeat(1, 6, 1)
    wplus[:, :4] = w_b
    with torch.no_grad():
        expected = toy.module.synthesize(wplus).add(1).mul(0.5).clamp(0, 1).permute(0, 2, 3, 1)
    assert torch.allclose(mixed, expected, atol=1e-6)
    assert not torch.allclose(mixed, toy.generate(1)) and not torch.allclose(mixed, toy.generate(2))
    middle = gan_core.style_mix(toy, gan_core.seed_latent(toy, [1, 3]), 2, layers="middle")
    assert middle.shape == (2, 16, 16, 3)
    with pytest.raises(ValueError, match="none of them fine.*coarse, middle"):
        gan_core.style_mix(toy, 1, 2, layers="fine")


def test_style_mixing_errors_clearly_on_dcgan(dcgan):
    with pytest.raises(ValueError, match="per-layer styles.*dcgan"):
        gan_core.style_mix(dcgan, 1, 2, layers="coarse")


# --------------------------------------------------------------------------- inversion

def test_inverting_the_models_own_image_reaches_a_high_psnr(dcgan):
    """Threshold: 35 dB after 100 steps (the best seeded start is about 12 dB; about 2 s)."""
    weights = {k: v.clone() for k, v in dcgan.module.state_dict().items()}
    target = dcgan.generate(123)
    with torch.inference_mode():  # as ComfyUI calls it
        result = gan_core.invert(dcgan, target, steps=100, seed=0)
    assert result.steps == 100 and not result.stopped
    assert result.history["psnr"][0] < 20 and result.psnr > 35
    assert result.latent.space == "z" and result.latent.tensor.shape == (1, 16)
    assert result.image.shape == (1, 32, 32, 3)
    again = gan_core.generate_from_latent(dcgan, result.latent)
    assert gan_core.metrics.psnr(again, target) > 35
    assert all(torch.equal(weights[k], v) for k, v in dcgan.module.state_dict().items())
    assert all(p.grad is None for p in dcgan.module.parameters())


def test_inversion_of_a_model_loaded_in_inference_mode(tmp_path, dcgan):
    gan_core.save(dcgan, tmp_path / "g.safetensors")
    with torch.inference_mode():
        loaded = gan_core.load(tmp_path / "g.safetensors")
        target = loaded.generate(7)
        result = gan_core.invert(loaded, target, steps=5, space="w+")
    assert result.latent.space == "w+" and result.latent.tensor.shape == (1, 1, 16)
    assert len(result.history["loss"]) == 5


def test_inversion_in_w_and_w_plus_on_a_mapping_model(toy):
    target = toy.generate(21)
    for space in ("w", "w+", "z"):
        result = gan_core.invert(toy, target, steps=30, space=space, seed=0)
        assert result.latent.space == space
        assert result.psnr >= result.history["psnr"][0] - 1e-6
        again = gan_core.generate_from_latent(toy, result.latent)
        assert torch.allclose(again, result.image, atol=1e-5)
    assert "prior" in result.history and "prior" not in gan_core.invert(toy, target, 2, "w").history


def test_inversion_resizes_other_sizes_and_says_so(dcgan, caplog):
    picture = torch.rand(1, 40, 60, 4)
    with caplog.at_level(logging.INFO, logger="gan_core"):
        result = gan_core.invert(dcgan, picture, steps=2)
    assert result.target.shape == (1, 32, 32, 3) and result.image.shape == (1, 32, 32, 3)
    text = caplog.text
    assert "cropped to its centre 40x40" in text and "resized from 40x40 to the generator's 32x32" in text


def test_inversion_stops_early_or_raises_on_cancel(dcgan):
    target = dcgan.generate(3)
    steps = []

    class Soft:
        on_step = staticmethod(lambda step, losses: steps.append(step))
        check_stop = staticmethod(lambda: len(steps) >= 3)

    result = gan_core.invert(dcgan, target, steps=50, callbacks=Soft)
    assert result.stopped and result.steps == 3 and len(result.history["loss"]) == 3

    class Interrupted(Exception):
        pass

    def hard():
        if steps:
            raise Interrupted

    steps.clear()
    hooks = gan_core.TrainCallbacks(on_step=lambda s, l: steps.append(s), check_stop=hard)
    with pytest.raises(Interrupted):
        gan_core.invert(dcgan, target, steps=50, callbacks=hooks)
    assert steps == [1]


def test_inversion_errors_name_the_input(dcgan):
    with pytest.raises(ValueError, match="one image at a time"):
        gan_core.invert(dcgan, torch.rand(2, 32, 32, 3), steps=1)
    with pytest.raises(ValueError, match="space"):
        gan_core.invert(dcgan, torch.rand(1, 32, 32, 3), steps=1, space="s")


def test_pyramid_ssim_is_one_for_equal_images_and_drops_with_noise():
    from gan_core.metrics import pyramid_ssim as ms_ssim

    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(ms_ssim(x, x), torch.ones(2), atol=1e-5)
    noisy = (x + 0.3 * torch.randn_like(x)).clamp(0, 1)
    assert (ms_ssim(x, noisy) < 0.9).all()
    assert ms_ssim(torch.rand(1, 1, 5, 5), torch.rand(1, 1, 5, 5)).shape == (1,)


# --------------------------------------------------------------------------- the latent value

def test_latent_value_round_trips_and_checks_shapes(tmp_path, dcgan, toy):
    lat = gan_core.seed_latent(toy, "1-3")
    assert lat.space == "w" and lat.arch == "toy" and len(lat) == 3 and len(lat[1]) == 1
    path = lat.save(tmp_path / "l.safetensors")
    back = gan_core.GANLatent.load(path)
    assert back.space == "w" and back.arch == "toy" and torch.equal(back.tensor, lat.tensor)
    assert len(gan_core.GANLatent.cat([lat, back])) == 6
    with pytest.raises(ValueError, match="shaped"):
        gan_core.GANLatent("w+", torch.zeros(2, 8))
    with pytest.raises(ValueError, match="space"):
        gan_core.GANLatent("q", torch.zeros(2, 8))
    with pytest.raises(ValueError, match=r"does not fit this dcgan generator.*\[B, 16\]"):
        gan_core.generate_from_latent(dcgan, lat)
    (tmp_path / "x.safetensors").write_bytes(b"nope")
    with pytest.raises(ValueError, match="latent file"):
        gan_core.GANLatent.load(tmp_path / "x.safetensors")


def test_latent_value_indexes_like_a_sequence_and_errors_name_the_input(tmp_path, dcgan):
    lat = gan_core.seed_latent(dcgan, "1-3")
    assert torch.equal(lat[-1].tensor, lat.tensor[2:]) and torch.equal(lat[-3].tensor, lat.tensor[:1])
    for bad in (3, -4):
        with pytest.raises(IndexError, match=f"latent index {bad}.*3 codes"):
            lat[bad]
    with pytest.raises(ValueError, match="at least one latent"):
        gan_core.GANLatent.cat([])
    from safetensors.torch import save_file
    meta = {"format": "gan_atelier_latent", "space": "w+"}
    save_file({"latent": torch.zeros(1, 16)}, str(tmp_path / "flat.safetensors"), metadata=meta)
    with pytest.raises(ValueError, match=r"latent file .*flat\.safetensors.*\[B, n_latent, w_dim\]"):
        gan_core.GANLatent.load(tmp_path / "flat.safetensors")


def test_gray_models_invert_and_walk(latent_models):
    gray = latent_models.varied_dcgan(channels=1)
    frames = gan_core.walk(gray, [0, 1], frames=4).images
    assert frames.shape == (4, 32, 32, 3)
    result = gan_core.invert(gray, torch.rand(1, 32, 32, 3), steps=3)
    assert result.target.shape == (1, 32, 32, 3)
    assert torch.equal(result.target[..., 0], result.target[..., 2])  # compared as gray


# --------------------------------------------------------------------------- StyleGAN2 / FastGAN

def _arch_model(name: str, **config):
    if name not in gan_core.list_archs():
        pytest.skip(f"{name} is not registered in this checkout")
    spec = get_arch(name)
    cfg = spec.config_cls(**config)
    torch.manual_seed(0)
    return gan_core.GANModel(name, cfg, {"G": spec.build(cfg)["G"]})


@pytest.fixture(scope="module")
def stylegan2():
    model = _arch_model("stylegan2", image_size=64, style_dim=16, n_mlp=2, channel_multiplier=1,
                        base_channels=16)
    with torch.no_grad():  # noise strengths start at 0 (as in the original); make noise matter
        for name, p in model.module.named_parameters():
            if name.endswith("noise.weight"):
                p.fill_(0.5)
    return model


@pytest.fixture(scope="module")
def fastgan():
    return _arch_model("fastgan", image_size=256, latent_dim=16, ngf=4, ndf=4)


def test_stylegan2_through_the_protocol(stylegan2):
    space = gan_core.LatentSpace(stylegan2)
    assert space.mapped and space.n_latent == 10 and space.w_dim == 16
    frames = gan_core.interpolate(stylegan2, 2, 6, frames=4)
    assert torch.equal(frames[0], stylegan2.generate(2)[0])
    assert torch.equal(frames[-1], stylegan2.generate(6)[0])
    walk = gan_core.walk(stylegan2, [1, 2, 3], frames=6)
    assert walk.images.shape == (6, 64, 64, 3) and walk.latents.space == "w"
    # truncation in w toward the mean latent (a converted file's latent_avg wins)
    mean = gan_core.mean_latent(stylegan2)
    zero = stylegan2.generate([4, 5], truncation=0.0)
    assert torch.allclose(zero[0], zero[1], atol=1e-6)
    with torch.no_grad():
        expected = stylegan2.module.synthesize(mean).add(1).mul(0.5).clamp(0, 1).permute(0, 2, 3, 1)
    assert torch.allclose(zero[0], expected[0], atol=1e-5)
    # noise: fixed by default, random seeded per image
    assert not torch.allclose(stylegan2.generate(3, noise="random"), stylegan2.generate(3))
    torch.testing.assert_close(stylegan2.generate(3, noise="random"),
                               stylegan2.generate([9, 3], noise="random")[1:], atol=1e-5, rtol=0)


def test_stylegan2_style_mixing_uses_its_layer_ranges(stylegan2):
    module = stylegan2.module
    w1, w2 = (gan_core.seed_latent(stylegan2, s).tensor for s in (1, 2))
    for layers in ("coarse", "middle", "fine"):
        mixed = gan_core.style_mix(stylegan2, 1, 2, layers=layers)
        with torch.no_grad():
            ref = module.synthesize(module.mix_styles(w1, w2, layers))
        assert torch.allclose(mixed, ref.add(1).mul(0.5).clamp(0, 1).permute(0, 2, 3, 1), atol=1e-6)
    assert module.style_layers("fine") == [8, 9]


def test_stylegan2_inversion_in_w_plus(stylegan2):
    result = gan_core.invert(stylegan2, stylegan2.generate(11), steps=8, space="w+")
    assert result.latent.tensor.shape == (1, 10, 16)
    assert result.psnr > result.history["psnr"][0]
    assert all(p.grad is None for p in stylegan2.module.parameters())


def test_fastgan_through_the_protocol(fastgan):
    space = gan_core.LatentSpace(fastgan)
    assert not space.mapped and space.n_latent == 1 and space.render_space == "z"
    frames = gan_core.interpolate(fastgan, 1, 2, frames=3)
    assert frames.shape == (3, 256, 256, 3)
    assert torch.equal(frames[0], fastgan.generate(1)[0])
    assert torch.equal(frames[-1], fastgan.generate(2)[0])
    with pytest.raises(ValueError, match="per-layer styles.*fastgan"):
        gan_core.style_mix(fastgan, 1, 2)
    result = gan_core.invert(fastgan, torch.rand(1, 64, 64, 3), steps=2)
    assert result.latent.space == "z" and result.image.shape == (1, 256, 256, 3)


def test_a_latent_from_another_family_runs_with_a_warning(dcgan, caplog):
    """Same shape, another arch: used (it is a valid code) but the log says it will not look
    like its source; a latent of the same arch stays quiet."""
    own = gan_core.seed_latent(dcgan, "1")
    foreign = gan_core.GANLatent("z", own.tensor.clone(), arch="stylegan2")
    with caplog.at_level("WARNING", logger="gan_core"):
        gan_core.generate_from_latent(dcgan, own)
        assert not [r for r in caplog.records if "made by" in r.getMessage()]
        images = gan_core.generate_from_latent(dcgan, foreign)
    assert images.shape[0] == 1
    assert any("made by a stylegan2 model is used with a dcgan model" in r.getMessage()
               for r in caplog.records)
