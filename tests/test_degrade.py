"""Synthetic degradations (gan_core.degrade): recipe grammar, the statistics each kind claims,
determinism, alpha and shape handling."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gan_core.degrade import NOISE_KINDS, Recipe, Step, degrade, degrade_nchw, parse_recipe

pytestmark = pytest.mark.usefixtures("core_single_thread")

FULL = "blur:0.5-1.5,downscale:1-2,gaussian:5-30,poisson:20-80,grain:5-15/0.5-2,saltpepper:0.01,jpeg:30-90@0.5"


def _grey(b=4, h=64, w=64, c=3, v=0.5):
    return torch.full((b, h, w, c), v)


def _photo(b=2, h=48, w=40, c=3, seed=0):
    """Smooth gradients plus some texture: something JPEG and blur have work to do on."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = torch.stack([xx, yy, (xx + yy) / 2, 1 - xx][:c], dim=-1)
    tex = torch.rand(b, h // 4 + 1, w // 4 + 1, c, generator=g)
    tex = torch.nn.functional.interpolate(tex.permute(0, 3, 1, 2), size=(h, w), mode="bilinear")
    return (0.6 * base + 0.4 * tex.permute(0, 2, 3, 1)).clamp(0, 1)


def _psnr(a, b):
    return 10 * math.log10(1.0 / float(((a - b) ** 2).mean()))


def _neighbour_corr(noise):
    """Correlation of horizontally adjacent values of a [B,H,W,C] noise field."""
    a, b = noise[:, :, :-1].flatten(), noise[:, :, 1:].flatten()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).mean() / (a.std() * b.std()))


# ----------------------------------------------------------------------------- grammar


@pytest.mark.parametrize("text,canonical,params,prob", [
    ("gaussian:25", "gaussian:25", ((25, 25),), 1.0),
    ("gaussian:5-50", "gaussian:5-50", ((5, 50),), 1.0),
    ("gaussian:5-5", "gaussian:5", ((5, 5),), 1.0),
    ("gaussian:2.5e1", "gaussian:25", ((25, 25),), 1.0),
    ("poisson", "poisson:50", ((50, 50),), 1.0),
    ("poisson:10", "poisson:10", ((10, 10),), 1.0),
    ("poisson:5-40", "poisson:5-40", ((5, 40),), 1.0),
    ("saltpepper:0.02", "saltpepper:0.02", ((0.02, 0.02),), 1.0),
    ("saltpepper:0.01-0.05", "saltpepper:0.01-0.05", ((0.01, 0.05),), 1.0),
    ("jpeg:10-40", "jpeg:10-40", ((10, 40),), 1.0),
    ("jpeg:75", "jpeg:75", ((75, 75),), 1.0),
    ("grain", "grain:12/1", ((12, 12), (1, 1)), 1.0),
    ("grain:20", "grain:20/1", ((20, 20), (1, 1)), 1.0),
    ("grain:10-30/0.5-2", "grain:10-30/0.5-2", ((10, 30), (0.5, 2)), 1.0),
    ("blur:0.5-2", "blur:0.5-2", ((0.5, 2),), 1.0),
    ("downscale:2", "downscale:2", ((2, 2),), 1.0),
    ("downscale:1.5-4", "downscale:1.5-4", ((1.5, 4),), 1.0),
    ("jpeg:10-40@0.5", "jpeg:10-40@0.5", ((10, 40),), 0.5),
    ("blur:1@1", "blur:1", ((1, 1),), 1.0),
    ("blur:1@0", "blur:1@0", ((1, 1),), 0.0),
    ("  Gaussian : 25 @ 0.25 ", "gaussian:25@0.25", ((25, 25),), 0.25),
])
def test_parse_every_form(text, canonical, params, prob):
    recipe = parse_recipe(text)
    assert len(recipe) == 1
    (step,) = recipe
    assert step.kind == text.split(":")[0].strip().lower()
    assert step.params == params and step.prob == prob
    assert str(recipe) == canonical
    assert parse_recipe(canonical) == recipe


def test_mixture_keeps_written_order_and_round_trips():
    text = "blur:0.5-1.5, gaussian:5-30,,JPEG:30-90 ,"
    recipe = parse_recipe(text)
    assert [s.kind for s in recipe] == ["blur", "gaussian", "jpeg"]
    assert str(recipe) == "blur:0.5-1.5,gaussian:5-30,jpeg:30-90"
    assert parse_recipe(str(recipe)) == recipe
    assert parse_recipe(recipe) is recipe and Recipe.parse(text) == recipe
    assert hash(recipe) == hash(parse_recipe(str(recipe)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.steps = ()  # type: ignore[misc]
    assert set(NOISE_KINDS) == {"gaussian", "poisson", "saltpepper", "jpeg", "grain", "blur",
                                "downscale"}


def test_canonical_numbers_round_trip_exactly():
    recipe = Recipe((Step("gaussian", ((1e-05, 0.1234567891),)), Step("blur", ((1 / 3, 2.5),), 0.3)))
    assert parse_recipe(str(recipe)) == recipe


@pytest.mark.parametrize("kind,params,prob,why", [
    ("gausian", ((25, 25),), 1.0, "unknown kind 'gausian'"),
    ("gaussian", ((25, 25), (1, 1)), 1.0, "takes 1"),
    ("gaussian", ((30, 20),), 1.0, "low end above"),
    ("jpeg", ((0, 50),), 1.0, "quality 0 is out of range"),
    ("blur", ((1, 1),), 2.0, "probability 2.0 is out of range"),
])
def test_steps_built_in_code_are_checked_too(kind, params, prob, why):
    with pytest.raises(ValueError, match=why):
        Step(kind, params, prob)


@pytest.mark.parametrize("bad,part,why", [
    ("gausian:25", "gausian:25", "unknown kind 'gausian'.*expected one of gaussian, poisson, "
                                 "saltpepper, jpeg, grain, blur, downscale"),
    ("gaussian:25,jpeg:5,blurr:1", "blurr:1", "unknown kind 'blurr'"),
    ("", "", "empty"),
    (" , ,", " , ,", "empty"),
    ("gaussian", "gaussian", "needs its sigma.*gaussian:SIGMA"),
    ("jpeg:", "jpeg:", "nothing after ':'"),
    ("gaussian:abc", "gaussian:abc", "cannot read sigma 'abc'"),
    ("gaussian:-5", "gaussian:-5", "cannot read sigma '-5'"),
    ("gaussian:5-", "gaussian:5-", "cannot read sigma"),
    ("gaussian:nan", "gaussian:nan", "cannot read sigma"),
    ("gaussian:1e999", "gaussian:1e999", "not a finite number"),
    ("gaussian:50-5", "gaussian:50-5", "low end above its high end"),
    ("gaussian:300", "gaussian:300", "sigma 300 is out of range.*0..255"),
    ("jpeg:0", "jpeg:0", "quality 0 is out of range"),
    ("jpeg:10-101", "jpeg:10-101", "quality 101 is out of range"),
    ("jpeg:10.5", "jpeg:10.5", "not a whole number"),
    ("poisson:0", "poisson:0", "peak 0 is out of range"),
    ("saltpepper:1.5", "saltpepper:1.5", "rate 1.5 is out of range"),
    ("downscale:0.5", "downscale:0.5", "factor 0.5 is out of range"),
    ("blur:25", "blur:25", "sigma 25 is out of range"),
    ("grain:10/0.1", "grain:10/0.1", "size 0.1 is out of range"),
    ("grain:1/2/3", "grain:1/2/3", "at most 2 parameter"),
    ("blur:1@1.5", "blur:1@1.5", "probability 1.5 is out of range"),
    ("blur:1@x", "blur:1@x", "cannot read probability 'x'"),
    ("gaussian:5:6", "gaussian:5:6", "cannot read sigma '5:6'"),
])
def test_bad_recipes_name_the_part(bad, part, why):
    with pytest.raises(ValueError, match="noise recipe: .*" + why) as err:
        parse_recipe(bad)
    if part.strip(" ,"):
        assert repr(part.replace(" ", "")) in str(err.value)
    with pytest.raises(ValueError, match="noise recipe"):
        degrade(_grey(1, 4, 4), bad, seed=0)


def test_non_text_recipe_is_a_type_error():
    with pytest.raises(TypeError, match="noise recipe"):
        parse_recipe(25)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- statistics


def test_gaussian_std_matches_sigma():
    x = _grey(8, 64, 64, 3)
    y, sigma = degrade(x, "gaussian:25", seed=0, return_sigma=True)
    assert abs(float(y.std()) * 255 / 25 - 1) < 0.02
    assert abs(float(y.mean()) - 0.5) < 0.002
    assert torch.allclose(sigma, torch.full((8,), 25 / 255))


def test_gaussian_range_draws_a_sigma_per_image():
    x = _grey(16, 48, 48, 3)
    y, sigma = degrade(x, "gaussian:5-50", seed=1, return_sigma=True)
    measured = (y - 0.5).flatten(1).std(dim=1)
    assert ((sigma >= 5 / 255) & (sigma <= 50 / 255)).all()
    assert ((measured * 255 > 5 * 0.95) & (measured * 255 < 50 * 1.05)).all()
    assert torch.allclose(measured, sigma, rtol=0.05)
    assert float(sigma.max() - sigma.min()) > 15 / 255  # really drawn per image


def test_sigma_is_rss_of_gaussian_steps_and_zero_without_them():
    _, sigma = degrade(_grey(2, 8, 8), "gaussian:30,blur:1,gaussian:40", seed=0, return_sigma=True)
    assert torch.allclose(sigma, torch.full((2,), 50 / 255))
    _, sigma = degrade(_grey(3, 8, 8), "poisson,jpeg:50,grain", seed=0, return_sigma=True)
    assert torch.equal(sigma, torch.zeros(3))
    _, sigma = degrade(_grey(64, 4, 4), "gaussian:25@0.5", seed=0, return_sigma=True)
    assert ((sigma == 0) | torch.isclose(sigma, torch.tensor(25 / 255))).all()
    assert 0 < int((sigma == 0).sum()) < 64


def test_poisson_variance_grows_with_intensity():
    levels = torch.tensor([0.0, 0.05, 0.2, 0.4])  # far enough from 1 that clipping is rare
    x = levels.view(4, 1, 1, 1).expand(4, 64, 64, 3).contiguous()
    y = degrade(x, "poisson:50", seed=0)
    var = (y - x).flatten(1).var(dim=1)
    assert float(var[0]) == 0.0  # no light, no shot noise
    assert (var[1:].diff() > 0).all()
    assert torch.allclose(var[1:], levels[1:] / 50, rtol=0.08)  # Var = x / PEAK
    assert torch.allclose(y.flatten(1).mean(dim=1), levels, atol=0.005)  # unbiased


def test_poisson_lower_peak_is_noisier():
    x = _grey(2, 32, 32)
    lo = (degrade(x, "poisson:10", seed=0) - x).std()
    hi = (degrade(x, "poisson:200", seed=0) - x).std()
    assert lo > 3 * hi


def test_saltpepper_fraction_and_values():
    x = _grey(4, 64, 64, 3)
    y = degrade(x, "saltpepper:0.02", seed=0)
    hit = (y != 0.5).any(dim=-1)
    assert abs(float(hit.float().mean()) / 0.02 - 1) < 0.2
    values = y[hit]
    assert ((values == 0) | (values == 1)).all()
    assert (values == values[:, :1]).all()  # whole pixels: all channels together
    salt = float((values[:, 0] == 1).float().mean())
    assert 0.35 < salt < 0.65
    assert torch.equal(y[~hit], x[~hit])


def test_jpeg_low_quality_costs_more_psnr():
    x = _photo(2, 64, 64)
    low, high = degrade(x, "jpeg:10", seed=0), degrade(x, "jpeg:90", seed=0)
    assert _psnr(x, low) + 6 < _psnr(x, high)
    assert _psnr(x, high) < 60  # it really went through the codec
    # the quality comes from the generator: a range gives different results per seed
    assert not torch.equal(degrade(x, "jpeg:5-95", seed=1), degrade(x, "jpeg:5-95", seed=2))


def test_blur_removes_high_frequencies_and_keeps_the_mean():
    x = torch.rand(2, 40, 40, 3, generator=torch.Generator().manual_seed(0))
    y = degrade(x, "blur:1.5", seed=0)

    def hf(img):
        return float((img[:, 1:] - img[:, :-1]).pow(2).mean() + (img[:, :, 1:] - img[:, :, :-1]).pow(2).mean())

    assert hf(y) < 0.1 * hf(x)
    assert torch.allclose(y.mean(dim=(1, 2)), x.mean(dim=(1, 2)), atol=0.01)
    assert torch.equal(degrade(x, "blur:0", seed=0), x)
    # a constant stays constant: normalised kernel, reflect padding (no dark borders)
    assert torch.allclose(degrade(_grey(1, 5, 7), "blur:3", seed=0), _grey(1, 5, 7), atol=1e-6)


def test_downscale_destroys_a_one_pixel_checkerboard():
    yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    board = ((yy + xx) % 2).float().view(1, 32, 32, 1).expand(2, 32, 32, 3).contiguous()
    y = degrade(board, "downscale:2", seed=0)
    assert y.shape == board.shape
    assert float(y.std()) < 0.02 and abs(float(y.mean()) - 0.5) < 0.01
    smooth = _photo(1, 32, 32)
    assert _psnr(smooth, degrade(smooth, "downscale:2", seed=0)) > 25  # low frequencies survive
    assert torch.equal(degrade(board, "downscale:1", seed=0), board)


def test_grain_is_correlated_and_gaussian_is_not():
    x = _grey(4, 64, 64, 1)
    grain = degrade(x, "grain:20/1", seed=0) - 0.5
    white = degrade(x, "gaussian:20", seed=0) - 0.5
    assert _neighbour_corr(grain) > 0.3
    assert abs(_neighbour_corr(white)) < 0.1
    assert abs(float(grain.std()) * 255 / 20 - 1) < 0.1  # STRENGTH is its std at mid-grey


def test_grain_is_monochrome_and_follows_luminance():
    y = degrade(_grey(2, 16, 16, 3), "grain:20", seed=0)
    assert torch.equal(y[..., 0], y[..., 1]) and torch.equal(y[..., 1], y[..., 2])
    levels = torch.tensor([0.0, 0.15, 0.5, 1.0]).view(4, 1, 1, 1).expand(4, 32, 32, 1)
    spread = (degrade(levels.contiguous(), "grain:20", seed=0) - levels).flatten(1).std(dim=1)
    assert spread[0] == 0 and spread[3] == 0  # nothing to add in pure black / white
    assert spread[2] > spread[1] > 0


def test_order_is_as_written():
    x = _grey(2, 32, 32)
    impulses_last = degrade(x, "blur:1,saltpepper:0.05", seed=0)
    impulses_first = degrade(x, "saltpepper:0.05,blur:1", seed=0)
    extreme = lambda y: float(((y == 0) | (y == 1)).float().mean())  # noqa: E731
    assert extreme(impulses_last) > 0.03
    assert extreme(impulses_first) < 0.005


def test_probability_applies_a_step_to_about_that_share_of_images():
    x = _grey(64, 8, 8)
    y = degrade(x, "gaussian:25@0.5", seed=0)
    changed = (y != x).flatten(1).any(dim=1).float().mean()
    assert 0.3 < float(changed) < 0.7
    assert torch.equal(degrade(x, "gaussian:25@0", seed=0), x)


# ----------------------------------------------------------------------------- determinism


def test_seed_and_generator_are_deterministic():
    x = _photo(3, 24, 20)
    a = degrade(x, FULL, seed=5)
    assert torch.equal(a, degrade(x, FULL, seed=5))
    assert not torch.equal(a, degrade(x, FULL, seed=6))
    assert torch.equal(a, degrade(x, FULL, generator=torch.Generator().manual_seed(5)))
    torch.manual_seed(123)
    b = degrade(x, FULL)
    torch.manual_seed(123)
    assert torch.equal(b, degrade(x, FULL))
    with pytest.raises(ValueError, match="not both"):
        degrade(x, FULL, generator=torch.Generator(), seed=1)
    with pytest.raises(ValueError, match="seed"):
        degrade(x, FULL, seed=-1)
    degrade(x, "gaussian:1", seed=0xFFFFFFFFFFFFFFFF)  # ComfyUI's largest seed


def test_nchw_is_the_same_operation():
    x = _photo(2, 20, 16, c=4)
    a = degrade(x, FULL, seed=3)
    b = degrade_nchw(x.permute(0, 3, 1, 2).contiguous(), FULL, torch.Generator().manual_seed(3))
    assert torch.equal(a, b.permute(0, 2, 3, 1))


# ----------------------------------------------------------------------------- shapes, alpha


def test_alpha_passes_through_untouched():
    x = _photo(2, 24, 24, c=4)
    x[..., 3] = torch.rand(2, 24, 24, generator=torch.Generator().manual_seed(9)) * 1.5 - 0.2
    y = degrade(x, FULL, seed=0)
    assert torch.equal(y[..., 3], x[..., 3])
    assert not torch.equal(y[..., :3], x[..., :3])


@pytest.mark.parametrize("shape", [(1, 1, 1, 3), (1, 1, 1, 1), (2, 7, 5, 3), (1, 1, 9, 4),
                                   (3, 13, 2, 1), (2, 3, 3, 4)])
@pytest.mark.parametrize("kind", [
    "gaussian:10", "poisson:5-50", "saltpepper:0.3", "jpeg:5-50", "grain:30/0.5-4", "blur:0.5-5",
    "downscale:1-8", FULL])
def test_any_shape_and_channel_count(shape, kind):
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    y = degrade(x, kind, seed=1)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert float(y[..., :3].min()) >= 0.0 and float(y[..., :3].max()) <= 1.0


def test_batch_of_mixed_content_and_other_dtypes():
    x = torch.stack([_grey(1, 16, 16)[0], torch.zeros(16, 16, 3), torch.ones(16, 16, 3),
                     _photo(1, 16, 16)[0]])
    y = degrade(x.double(), FULL, seed=0)
    assert y.dtype == torch.float64 and y.shape == x.shape
    assert 0.0 <= float(y.min()) and float(y.max()) <= 1.0
    y16 = degrade(x.half(), "gaussian:10", seed=0)
    assert y16.dtype == torch.float16


def test_bad_images_are_refused():
    with pytest.raises(ValueError, match="C in 1/3/4"):
        degrade(torch.rand(1, 8, 8, 2), "gaussian:5", seed=0)
    with pytest.raises(ValueError, match="C in 1/3/4"):
        degrade(torch.rand(8, 8, 3), "gaussian:5", seed=0)
    with pytest.raises(TypeError, match="floating"):
        degrade(torch.zeros(1, 8, 8, 3, dtype=torch.uint8), "gaussian:5", seed=0)
    with pytest.raises(ValueError, match="NaN"):
        degrade(torch.full((1, 4, 4, 3), float("nan")), "gaussian:5", seed=0)


# ----------------------------------------------------------------------------- property


def _number(lo, hi, integer=False):
    if integer:
        return st.integers(int(lo), int(hi)).map(float)
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False).map(lambda v: round(v, 3))


def _param(lo, hi, integer=False):
    return st.tuples(_number(lo, hi, integer), _number(lo, hi, integer)).map(
        lambda t: (min(t), max(t)))


_STEPS = {
    "gaussian": st.tuples(_param(0, 60)),
    "poisson": st.tuples(_param(1, 500)),
    "saltpepper": st.tuples(_param(0, 0.2)),
    "jpeg": st.tuples(_param(1, 100, integer=True)),
    "grain": st.tuples(_param(0, 40), _param(0.25, 4)),
    "blur": st.tuples(_param(0, 4)),
    "downscale": st.tuples(_param(1, 6)),
}
_step = st.sampled_from(sorted(_STEPS)).flatmap(
    lambda k: st.builds(Step, st.just(k), _STEPS[k], st.sampled_from([1.0, 0.5, 0.0])))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(_step, min_size=1, max_size=4),
       shape=st.tuples(st.integers(1, 3), st.integers(1, 17), st.integers(1, 17),
                       st.sampled_from([1, 3, 4])),
       seed=st.integers(0, 2**32))
def test_property_shape_dtype_range(steps, shape, seed):
    recipe = Recipe(tuple(steps))
    assert parse_recipe(str(recipe)) == recipe
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(seed))
    y, sigma = degrade(x, str(recipe), seed=seed, return_sigma=True)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert torch.isfinite(y).all() and float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert sigma.shape == (shape[0],) and (sigma >= 0).all()
    if shape[3] == 4:
        assert torch.equal(y[..., 3], x[..., 3])
    assert torch.equal(y, degrade(x, recipe, seed=seed))
