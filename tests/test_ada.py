"""ADA (Karras et al. 2020): what each transform does to synthetic images, the identity at
p = 0, gradients, the p controller's rule and speed, exact resume through state_dict, and the
probabilities of the draws."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from gan_core.training import AdaptiveAugment, ada

pytestmark = pytest.mark.usefixtures("core_single_thread")


def _batch(n: int = 4, channels: int = 3, h: int = 16, w: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, channels, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _only(n: int, **values: float) -> ada._Params:
    """Identity parameters for n images with the named ones set, the same for every image."""
    base = ada._Params.identity(n)
    return dataclasses.replace(base, **{k: torch.full((n,), float(v)) for k, v in values.items()})


def _luma(x: torch.Tensor) -> torch.Tensor:
    """Projection on the luma axis (1, 1, 1) / sqrt(3), as the per-pixel RGB mean."""
    return x.mean(dim=1, keepdim=True)


# -- the identity, gradients, shapes -----------------------------------------------------------

def test_p_zero_returns_the_input_exactly():
    x = _batch()
    aug = AdaptiveAugment(p=0.0)
    y = aug(x)
    assert torch.equal(y, x)
    assert aug.p == 0.0


def test_identity_parameters_change_nothing():
    x = _batch(h=13, w=17)
    assert torch.allclose(ada._apply(x, ada._Params.identity(4)), x, atol=1e-6)


@pytest.mark.parametrize("groups", ["bgc", "bg", "c"])
def test_backward_gives_finite_nonzero_gradients(groups):
    x = _batch().requires_grad_(True)
    y = AdaptiveAugment(p=0.8, groups=groups, seed=3)(x)
    assert y.shape == x.shape and not torch.equal(y, x)
    (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_gradcheck_for_fixed_draws():
    """For fixed draws the pipeline is linear-affine in the pixels: autograd's Jacobian equals
    the numerical one."""
    x = _batch(n=2, h=4, w=5).double().requires_grad_(True)

    def f(images):
        return AdaptiveAugment(p=1.0, seed=7)(images)

    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("shape", [(3, 1, 16, 16), (2, 1, 30, 34), (2, 3, 30, 34), (2, 3, 7, 5)])
def test_grayscale_and_odd_sizes(shape):
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    y = AdaptiveAugment(p=1.0, seed=2)(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.isfinite(y).all() and not torch.allclose(y, x)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_output_keeps_the_input_dtype(dtype):
    x = _batch().to(dtype)
    y = AdaptiveAugment(p=1.0)(x)
    assert y.dtype == dtype and torch.isfinite(y.float()).all()


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="groups"):
        AdaptiveAugment(groups="xyz")
    with pytest.raises(ValueError, match="p must be"):
        AdaptiveAugment(p=1.5)
    with pytest.raises(ValueError, match="interval"):
        AdaptiveAugment(interval=0)
    with pytest.raises(ValueError, match="N, C, H, W"):
        AdaptiveAugment(p=0.5)(torch.zeros(3, 8, 8))


# -- each transform on synthetic images ---------------------------------------------------------

def test_xflip_mirrors():
    x = _batch()
    assert torch.allclose(ada._apply(x, _only(4, xflip=1)), x.flip(3), atol=1e-6)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_quarter_turns_equal_rot90(k):
    x = _batch()
    assert torch.allclose(ada._apply(x, _only(4, rot90=k)), torch.rot90(x, k, dims=(2, 3)),
                          atol=1e-6)


def test_integer_translation_shifts_pixels():
    x = _batch(h=16, w=16)
    # content 2 px right and 1 px up (translations are fractions of the image size)
    y = ada._apply(x, _only(4, int_tx=2 / 16, int_ty=-1 / 16))
    assert torch.allclose(y[..., :15, 2:], x[..., 1:, :14], atol=1e-6)
    # what came in from outside is the reflection of the border
    assert torch.allclose(y[..., :15, 0], x[..., 1:, 1], atol=1e-6)


def test_integer_translation_rounds_to_whole_pixels():
    x = _batch(h=16, w=16)
    a = ada._apply(x, _only(4, int_tx=2.3 / 16))
    b = ada._apply(x, _only(4, int_tx=2 / 16))
    assert torch.allclose(a, b, atol=1e-6)


def test_isotropic_scale_keeps_the_centre_and_scales_distances():
    """A point of light moves away from the centre by the scale factor."""
    x = torch.full((1, 1, 33, 33), -1.0)
    x[0, 0, 16, 20] = 1.0  # 4 px right of the centre pixel
    y = ada._apply(x, _only(1, iso_scale=2.0))
    row = y[0, 0, 16]
    assert int(row.argmax()) == 24  # 8 px right of the centre


def test_rotation_by_any_angle_matches_the_quarter_turn_at_90_degrees():
    x = _batch()
    for name in ("pre_rotate", "post_rotate"):
        y = ada._apply(x, _only(4, **{name: math.pi / 2}))
        assert torch.allclose(y, torch.rot90(x, 1, dims=(2, 3)), atol=1e-5)


def test_fractional_translation_interpolates():
    x = _batch(h=16, w=16)
    y = ada._apply(x, _only(4, frac_tx=0.5 / 16))
    expected = 0.5 * (x[..., 1:] + x[..., :-1])
    assert torch.allclose(y[..., 1:], expected, atol=1e-5)


def test_brightness_shifts_the_mean():
    x = _batch()
    y = ada._apply(x, _only(4, brightness=0.3))
    assert torch.allclose(y, x + 0.3, atol=1e-6)
    assert torch.allclose(y.mean(), x.mean() + 0.3, atol=1e-6)


def test_contrast_scales_about_the_mean_of_a_mid_grey_image():
    """The paper's contrast is a scaling of RGB in [-1, 1], i.e. about mid-grey: an image
    whose mean is mid-grey keeps its mean while its deviations grow."""
    x = _batch()
    x = x - x.mean(dim=(1, 2, 3), keepdim=True)
    y = ada._apply(x, _only(4, contrast=1.7))
    assert torch.allclose(y.mean(dim=(1, 2, 3)), torch.zeros(4), atol=1e-6)
    assert torch.allclose(y, 1.7 * x, atol=1e-6)


def test_saturation_zero_gives_grey():
    x = _batch()
    y = ada._apply(x, _only(4, saturation=0.0))
    assert torch.allclose(y, _luma(x).expand_as(x), atol=1e-6)


def test_saturation_scales_the_chroma():
    x = _batch()
    y = ada._apply(x, _only(4, saturation=2.0))
    assert torch.allclose(y - _luma(y), 2 * (x - _luma(x)), atol=1e-5)
    assert torch.allclose(_luma(y), _luma(x), atol=1e-6)


@pytest.mark.parametrize("angle", [0.7, math.pi / 2, -2.5])
def test_hue_rotation_keeps_luma_and_chroma_length(angle):
    x = _batch()
    y = ada._apply(x, _only(4, hue=angle))
    assert torch.allclose(_luma(y), _luma(x), atol=1e-6)
    chroma_x, chroma_y = x - _luma(x), y - _luma(y)
    assert torch.allclose(chroma_y.norm(dim=1), chroma_x.norm(dim=1), atol=1e-5)
    assert not torch.allclose(chroma_y, chroma_x, atol=1e-2)


def test_hue_full_turn_is_the_identity():
    x = _batch()
    assert torch.allclose(ada._apply(x, _only(4, hue=2 * math.pi)), x, atol=1e-5)


def test_luma_flip_inverts_luma_and_keeps_chroma():
    x = _batch()
    y = ada._apply(x, _only(4, luma_flip=1))
    assert torch.allclose(_luma(y), -_luma(x), atol=1e-6)
    assert torch.allclose(y - _luma(y), x - _luma(x), atol=1e-6)


def test_grayscale_gets_brightness_and_contrast_only():
    x = _batch(channels=1)
    y = ada._apply(x, _only(4, brightness=0.2, contrast=1.5, luma_flip=1, hue=1.0,
                            saturation=0.0))
    assert torch.allclose(y, 1.5 * (x + 0.2), atol=1e-6)


def test_colour_order_brightness_then_contrast():
    x = _batch()
    y = ada._apply(x, _only(4, brightness=0.2, contrast=1.5))
    assert torch.allclose(y, 1.5 * (x + 0.2), atol=1e-6)


def test_geometric_only_groups_leave_a_flat_image_flat():
    x = torch.full((8, 3, 12, 12), 0.25)
    y = AdaptiveAugment(p=1.0, groups="bg", seed=4)(x)
    assert torch.allclose(y, x, atol=1e-6)
    z = AdaptiveAugment(p=1.0, groups="bgc", seed=4)(x)
    assert not torch.allclose(z, x, atol=1e-3)


# -- the p controller ---------------------------------------------------------------------------

def _feed(aug: AdaptiveAugment, sign: float, steps: int, batch: int = 4):
    results = []
    for _ in range(steps):
        aug.accumulate(torch.full((batch, 1), sign))
        results.append(aug.update(batch))
    return results


def test_p_rises_on_overfitting_at_the_stated_speed():
    aug = AdaptiveAugment(p=0.0, target=0.6, speed_images=500_000, interval=4)
    results = _feed(aug, +1.0, 4)
    assert results[:3] == [None, None, None]
    assert results[3]["r_t"] == 1.0
    assert aug.p == pytest.approx(16 / 500_000, rel=1e-7)
    assert results[3]["p"] == aug.p
    _feed(aug, +2.5, 4)
    assert aug.p == pytest.approx(32 / 500_000, rel=1e-6)


def test_p_falls_when_r_t_is_below_target():
    aug = AdaptiveAugment(p=0.5, target=0.6, speed_images=500_000, interval=4)
    out = _feed(aug, -1.0, 4)[-1]
    assert out["r_t"] == -1.0
    assert aug.p == pytest.approx(0.5 - 16 / 500_000, rel=1e-7)


def test_r_t_is_the_mean_sign_over_the_interval():
    aug = AdaptiveAugment(p=0.5, target=0.6, interval=2)
    aug.accumulate(torch.tensor([1.0, -2.0, 3.0, 4.0]))     # signs sum 2 of 4
    assert aug.update(4) is None
    aug.accumulate(torch.tensor([[0.5], [-0.1]]))           # signs sum 0 of 2
    out = aug.update(2)
    assert out["r_t"] == pytest.approx(2 / 6)
    assert aug.p < 0.5
    assert aug.stats_tensor().tolist() == [0.0, 0.0]


def test_p_clamps_at_zero_and_one():
    low = AdaptiveAugment(p=0.0, speed_images=16, interval=4)
    _feed(low, -1.0, 8)
    assert low.p == 0.0
    high = AdaptiveAugment(p=0.0, speed_images=16, interval=4)  # one adjustment spans 0 -> 1
    _feed(high, +1.0, 4)
    assert high.p == 1.0
    _feed(high, +1.0, 8)
    assert high.p == 1.0


def test_fixed_never_changes_p():
    aug = AdaptiveAugment(p=0.3, speed_images=16, interval=1, fixed=True)
    assert all(r is None for r in _feed(aug, +1.0, 5) + _feed(aug, -1.0, 5))
    assert aug.p == pytest.approx(0.3)


def test_stats_tensor_round_trip_as_a_ddp_trainer_uses_it():
    aug = AdaptiveAugment(p=0.5, target=0.6, interval=1)
    aug.accumulate(torch.tensor([1.0, 1.0, -1.0, 1.0]))
    stats = aug.stats_tensor()
    assert stats.tolist() == [2.0, 4.0]
    other_rank = torch.tensor([-4.0, 4.0])
    aug.load_stats_tensor(stats + other_rank)                 # what all_reduce(SUM) gives
    out = aug.update(8)
    assert out["r_t"] == pytest.approx(-2 / 8)


# -- state, determinism -------------------------------------------------------------------------

def test_state_dict_round_trip_resumes_exactly():
    x = _batch()
    a = AdaptiveAugment(p=0.0, speed_images=1000, interval=3, seed=11)
    _feed(a, +1.0, 3)                     # one adjustment: p > 0
    _feed(a, +1.0, 2)                     # mid-interval: accumulators and call count matter
    a(x)                                  # advance the generator
    state = {k: v.clone() for k, v in a.state_dict().items()}
    assert {"probability", "sign_sum", "sign_count", "update_calls", "_extra_state"} <= set(state)

    b = AdaptiveAugment(p=0.9, seed=99, speed_images=1000, interval=3)
    b.load_state_dict(state)
    assert b.p == a.p and b.p > 0
    assert torch.equal(b.stats_tensor(), a.stats_tensor())
    assert torch.equal(b(x), a(x))
    ra, rb = _feed(a, +1.0, 1)[0], _feed(b, +1.0, 1)[0]
    assert ra == rb and ra is not None    # the adjustment falls on the same call
    assert b.p == a.p


def test_state_dict_is_flat_tensors_and_survives_safetensors():
    a = AdaptiveAugment(p=0.25, seed=5)
    a.accumulate(torch.tensor([1.0, -1.0, 1.0]))
    a(_batch())
    data = st_load(st_save({k: v.contiguous() for k, v in a.state_dict().items()}))
    b = AdaptiveAugment(seed=0)
    b.load_state_dict(data)
    x = _batch(seed=3)
    assert b.p == a.p and torch.equal(b.stats_tensor(), a.stats_tensor())
    assert torch.equal(b(x), a(x))


def test_state_loads_inside_a_parent_module():
    a = AdaptiveAugment(p=0.4, seed=1)
    parent = torch.nn.ModuleDict({"augment": AdaptiveAugment(seed=2)})
    parent.load_state_dict({f"augment.{k}": v for k, v in a.state_dict().items()})
    x = _batch()
    assert parent["augment"].p == a.p
    assert torch.equal(parent["augment"](x), a(x))


def test_an_earlier_state_dict_is_not_changed_by_later_steps():
    a = AdaptiveAugment(p=0.5)
    state = a.state_dict()
    _feed(a, 1.0, 3)
    assert float(state["sign_sum"]) == 0.0 and int(state["update_calls"]) == 0


def test_same_seed_same_output_and_different_seed_differs():
    x = _batch()
    a, b = AdaptiveAugment(p=0.7, seed=3), AdaptiveAugment(p=0.7, seed=3)
    c = AdaptiveAugment(p=0.7, seed=4)
    ya, yb, yc = a(x), b(x), c(x)
    assert torch.equal(ya, yb) and not torch.equal(ya, yc)
    assert torch.equal(a(x), b(x))      # and the next batch too
    assert not torch.equal(a(x), ya)    # draws move on between batches


def test_a_passed_generator_is_used_instead_of_the_own():
    x = _batch()
    aug = AdaptiveAugment(p=0.7, seed=0)
    own = aug.generator.get_state()
    y1 = aug(x, generator=torch.Generator().manual_seed(8))
    y2 = aug(x, generator=torch.Generator().manual_seed(8))
    assert torch.equal(y1, y2) and torch.equal(aug.generator.get_state(), own)


# -- the probabilities of the draws -------------------------------------------------------------

def test_flip_fraction_at_p_one_is_a_half():
    n = 4000
    params = ada._draw(n, 1.0, "bgc", torch.Generator().manual_seed(0))
    bound = 4 * math.sqrt(0.25 / n)     # four binomial standard deviations
    assert abs(float(params.xflip.mean()) - 0.5) < bound
    assert abs(float(params.luma_flip.mean()) - 0.5) < bound
    # at p = 1 every rotation, scale and colour change is on
    assert bool((params.pre_rotate != 0).all() and (params.saturation != 1).all())


def test_gate_probabilities_follow_p_and_the_rotation_split():
    n, p = 4000, 0.3
    params = ada._draw(n, p, "bgc", torch.Generator().manual_seed(1))

    def near(fraction: float, expected: float) -> bool:
        return abs(fraction - expected) < 4 * math.sqrt(expected * (1 - expected) / n)

    p_rot = 1 - math.sqrt(1 - p)
    assert near(float((params.brightness != 0).float().mean()), p)
    assert near(float((params.iso_scale != 1).float().mean()), p)
    assert near(float((params.pre_rotate != 0).float().mean()), p_rot)
    any_rotation = (params.pre_rotate != 0) | (params.post_rotate != 0)
    assert near(float(any_rotation.float().mean()), p)
    assert near(float(params.xflip.mean()), p / 2)


def test_parameter_distributions_have_the_papers_spreads():
    params = ada._draw(20000, 1.0, "bgc", torch.Generator().manual_seed(2))
    ln2 = math.log(2)
    assert float(params.iso_scale.log().std()) == pytest.approx(0.2 * ln2, rel=0.05)
    assert float(params.contrast.log().std()) == pytest.approx(0.5 * ln2, rel=0.05)
    assert float(params.saturation.log().std()) == pytest.approx(ln2, rel=0.05)
    assert float(params.brightness.std()) == pytest.approx(0.2, rel=0.05)
    assert float(params.frac_tx.std()) == pytest.approx(0.125, rel=0.05)
    assert float(params.int_tx.abs().max()) <= 0.125
    assert set(params.rot90.unique().tolist()) == {0.0, 1.0, 2.0, 3.0}
    assert float(params.hue.abs().max()) <= math.pi


def test_groups_switch_off_the_other_categories():
    g = torch.Generator().manual_seed(3)
    blit = ada._draw(500, 1.0, "b", g)
    assert bool((blit.iso_scale == 1).all() and (blit.brightness == 0).all())
    assert bool((blit.rot90 != 0).any())
    colour = ada._draw(500, 1.0, "c", g)
    assert bool((colour.xflip == 0).all() and (colour.pre_rotate == 0).all())
    assert bool((colour.hue != 0).all())
