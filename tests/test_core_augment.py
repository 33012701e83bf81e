"""DiffAugment: policies, shapes, gradients, determinism and what each transform does."""
from __future__ import annotations

import pytest
import torch

import gan_core
from gan_core.training import diff_augment, parse_policy

pytestmark = pytest.mark.usefixtures("core_single_thread")

ALL = tuple(gan_core.AUGMENTATIONS)


def _batch(channels: int = 3, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(6, channels, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("text,expected", [
    ("", ()), ("none", ()), ("color", ("color",)),
    ("color,translation,cutout", ALL), ("color + cutout", ("color", "cutout")),
    (" translation , ", ("translation",)),
])
def test_parse_policy(text, expected):
    assert parse_policy(text) == expected


@pytest.mark.parametrize("bad", ["zoom", "color,zoom", "Color", "none,color,blur"])
def test_unknown_policy_errors(bad):
    with pytest.raises(ValueError, match="unknown augmentation"):
        parse_policy(bad)
    with pytest.raises(ValueError, match="unknown augmentation"):
        gan_core.TrainConfig(augment=bad).validate()


@pytest.mark.parametrize("policy", [(p,) for p in ALL] + [ALL])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_preserved_and_gradient_flows(policy, channels):
    x = _batch(channels).requires_grad_(True)
    y = diff_augment(x, policy, torch.Generator().manual_seed(1))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.isfinite(y).all()
    weights = torch.randn(y.shape, generator=torch.Generator().manual_seed(2))
    (y * weights).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize("policy", [(p,) for p in ALL] + [ALL])
def test_deterministic_for_a_generator_seed(policy):
    x = _batch()
    a = diff_augment(x, policy, torch.Generator().manual_seed(3))
    b = diff_augment(x, policy, torch.Generator().manual_seed(3))
    c = diff_augment(x, policy, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a, x)


def test_empty_policy_is_identity():
    x = _batch()
    assert torch.equal(diff_augment(x, (), torch.Generator()), x)


def test_draws_advance_the_generator_only():
    """Randomness comes from the given generator, never torch's global RNG."""
    torch.manual_seed(123)
    before = torch.get_rng_state()
    g = torch.Generator().manual_seed(0)
    state = g.get_state()
    diff_augment(_batch(), ALL, g)
    assert torch.equal(torch.get_rng_state(), before)
    assert not torch.equal(g.get_state(), state)


def test_translation_moves_pixels_and_fills_with_zero():
    x = _batch(size=16) * 0.5 + 0.6  # strictly positive, so a zero can only be fill
    y = diff_augment(x, ("translation",), torch.Generator().manual_seed(5))
    for xi, yi in zip(x, y):
        filled = yi == 0
        kept = yi[~filled]
        # every non-fill output value is one of the input's values
        assert torch.isin(kept, xi).all()
        # a shift by (dy, dx) up to 1/8 of the size fills at most that many rows + columns
        rows_full = filled.all(dim=(0, 2)).sum().item()
        cols_full = filled.all(dim=(0, 1)).sum().item()
        assert rows_full <= 2 and cols_full <= 2
    assert (y == 0).any()  # at least one image moved


def test_cutout_zeroes_one_rectangle_per_image():
    x = _batch(size=16) * 0.5 + 0.6
    y = diff_augment(x, ("cutout",), torch.Generator().manual_seed(6))
    for xi, yi in zip(x, y):
        zero = (yi == 0).all(0)
        assert torch.equal(yi[:, ~zero], xi[:, ~zero])  # the rest is untouched
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        assert len(rows) > 0
        # the zeroed pixels form one solid rectangle of at most half the size per side
        assert zero[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()
        assert len(rows) <= 8 and len(cols) <= 8


def test_color_is_an_increasing_affine_map_per_image_on_gray_input():
    """Brightness (shift) and contrast (scale by 0.5-1.5 about the mean) keep the picture;
    saturation has nothing to act on in a gray image."""
    gray = _batch()[:, :1].expand(-1, 3, -1, -1).contiguous()
    y = diff_augment(gray, ("color",), torch.Generator().manual_seed(7))
    scales = []
    for xi, yi in zip(gray, y):
        assert torch.allclose(yi[0], yi[1]) and torch.allclose(yi[1], yi[2])  # still gray
        xs, ys = xi[0].flatten(), yi[0].flatten()
        a = ((xs - xs.mean()) * (ys - ys.mean())).sum() / (xs - xs.mean()).pow(2).sum()
        b = ys.mean() - a * xs.mean()
        assert torch.allclose(ys, a * xs + b, atol=1e-5)
        assert 0.5 - 1e-5 <= a.item() <= 1.5 + 1e-5
        scales.append(a.item())
    assert max(scales) - min(scales) > 0.01  # per-image parameters, not one for the batch
    colour = _batch()
    out = diff_augment(colour, ("color",), torch.Generator().manual_seed(7))
    assert not torch.allclose(out, colour)
