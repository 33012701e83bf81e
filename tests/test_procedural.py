"""Tests for the built-in procedural datasets (gan_core.data.procedural)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gan_core.data.procedural import BUILTIN_DATASETS, make_builtin, render_builtin

SIZES = (8, 28, 37, 64)


def _histogram(images: np.ndarray, bins: int = 16) -> np.ndarray:
    """Per-channel intensity histogram of a [N, H, W, 3] batch, normalised to sum 1."""
    per_channel = [np.histogram(images[..., c], bins=bins, range=(0.0, 1.0))[0] for c in range(3)]
    return np.stack(per_channel) / images[..., 0].size


def test_names_are_stable_and_unique():
    assert isinstance(BUILTIN_DATASETS, tuple)
    assert len(BUILTIN_DATASETS) >= 4
    assert len(set(BUILTIN_DATASETS)) == len(BUILTIN_DATASETS)
    # The order is part of the UI contract; new styles may only be appended.
    assert BUILTIN_DATASETS[:5] == ("mondrian", "rings", "colorfields", "blobs", "stripes")


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", BUILTIN_DATASETS)
def test_render_shape_dtype_range(name, size):
    img = render_builtin(name, 0, size)
    assert isinstance(img, np.ndarray)
    assert img.shape == (size, size, 3)
    assert img.dtype == np.float32
    assert np.isfinite(img).all()
    assert img.min() >= 0.0 and img.max() <= 1.0


@pytest.mark.parametrize("name", BUILTIN_DATASETS)
def test_make_builtin_layout(name):
    batch = make_builtin(name, 3, 37, seed=1)
    assert isinstance(batch, torch.Tensor)
    assert batch.shape == (3, 37, 37, 3)
    assert batch.dtype == torch.float32
    assert batch.is_contiguous()
    assert 0.0 <= batch.min().item() and batch.max().item() <= 1.0


@pytest.mark.parametrize("name", BUILTIN_DATASETS)
def test_non_square(name):
    assert render_builtin(name, 2, 40, height=24).shape == (24, 40, 3)
    assert render_builtin(name, 2, 24, height=40).shape == (40, 24, 3)
    assert make_builtin(name, 2, 16, height=12).shape == (2, 12, 16, 3)


@pytest.mark.parametrize("name", BUILTIN_DATASETS)
def test_images_have_content_and_vary(name):
    batch = make_builtin(name, 4, 48).numpy()
    assert all(img.std() > 0.02 for img in batch), "an image is nearly flat"
    for i in range(len(batch)):
        for j in range(i + 1, len(batch)):
            assert np.abs(batch[i] - batch[j]).mean() > 0.01, f"images {i} and {j} are alike"


@pytest.mark.parametrize("name", BUILTIN_DATASETS)
def test_deterministic(name):
    assert torch.equal(make_builtin(name, 3, 24, seed=5), make_builtin(name, 3, 24, seed=5))
    np.testing.assert_array_equal(render_builtin(name, 4, 24, seed=5), render_builtin(name, 4, 24, seed=5))


@pytest.mark.parametrize("name", BUILTIN_DATASETS)
def test_longer_request_extends_shorter(name):
    short = make_builtin(name, 3, 20, seed=2)
    long = make_builtin(name, 7, 20, seed=2)
    assert torch.equal(long[:3], short)
    # Any single image can be regenerated on its own.
    np.testing.assert_array_equal(render_builtin(name, 5, 20, seed=2), long[5].numpy())


@pytest.mark.parametrize("name", BUILTIN_DATASETS)
def test_seeds_differ(name):
    a = make_builtin(name, 2, 32, seed=0)
    b = make_builtin(name, 2, 32, seed=1)
    assert (a - b).abs().mean().item() > 0.01


@pytest.mark.parametrize("name", BUILTIN_DATASETS)
def test_same_picture_at_every_resolution(name):
    """A small render should look like a box-downscaled large one (parameters don't depend on size)."""
    for index in range(3):
        large = render_builtin(name, index, 128, seed=3).reshape(32, 4, 32, 4, 3).mean(axis=(1, 3))
        small = render_builtin(name, index, 32, seed=3)
        assert np.abs(large - small).mean() < 0.07


def test_styles_look_different():
    hists = {name: _histogram(make_builtin(name, 8, 32).numpy()) for name in BUILTIN_DATASETS}
    for i, a in enumerate(BUILTIN_DATASETS):
        for b in BUILTIN_DATASETS[i + 1 :]:
            distance = 0.5 * np.abs(hists[a] - hists[b]).sum() / 3  # mean total variation
            assert distance > 0.15, f"{a} and {b} have similar colour histograms ({distance:.3f})"


# Golden per-channel means of images 0 and 1 (16 px, seed 7).  They pin the
# determinism contract across machines and releases: if a style is changed on
# purpose, update these numbers in the same change.
GOLDEN_MEANS = {
    "mondrian": [[0.7014, 0.7014, 0.6942], [0.6372, 0.6498, 0.6845]],
    "rings": [[0.5206, 0.6101, 0.5402], [0.4978, 0.5171, 0.4293]],
    "colorfields": [[0.4241, 0.2812, 0.2228], [0.5401, 0.5011, 0.5634]],
    "blobs": [[0.3738, 0.278, 0.3025], [0.8379, 0.6185, 0.6554]],
    "stripes": [[0.1426, 0.5504, 0.3035], [0.4734, 0.57, 0.6984]],
    "painting": [[0.4032, 0.6232, 0.4623], [0.3857, 0.5577, 0.4169]],
}


@pytest.mark.parametrize("name", sorted(GOLDEN_MEANS))
def test_golden_means(name):
    means = [render_builtin(name, i, 16, seed=7).mean(axis=(0, 1)) for i in (0, 1)]
    np.testing.assert_allclose(means, GOLDEN_MEANS[name], atol=2e-3)


def test_grayscale_is_bt601_luma():
    rgb = make_builtin("mondrian", 2, 16, seed=4).numpy()
    gray = make_builtin("mondrian", 2, 16, seed=4, channels=1)
    assert gray.shape == (2, 16, 16, 1)
    assert gray.dtype == torch.float32
    expected = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    np.testing.assert_allclose(gray[..., 0].numpy(), expected, atol=1e-6)


def test_name_lookup_ignores_case_and_spaces():
    np.testing.assert_array_equal(render_builtin(" Rings ", 1, 16), render_builtin("rings", 1, 16))


def test_numpy_integers_are_accepted():
    batch = make_builtin("stripes", np.int64(2), np.int32(16), seed=np.uint8(3))
    assert batch.shape == (2, 16, 16, 3)


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError) as info:
        make_builtin("picasso", 2, 16)
    message = str(info.value)
    assert "picasso" in message
    assert all(name in message for name in BUILTIN_DATASETS)
    with pytest.raises(ValueError, match="picasso"):
        render_builtin("picasso", 0, 16)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"count": 0}, r"count must be an integer >= 1"),
        ({"count": -3}, r"count"),
        ({"size": 7}, r"size must be an integer >= 8"),
        ({"size": 0}, r"size"),
        ({"channels": 2}, r"channels must be 1 .* or 3"),
        ({"channels": 4}, r"channels"),
        ({"channels": 3.0}, r"channels"),
        ({"seed": -1}, r"seed must be a non-negative integer"),
        ({"height": 7}, r"height must be an integer >= 8"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, pattern):
    args = {"name": "rings", "count": 2, "size": 16} | kwargs
    with pytest.raises(ValueError, match=pattern):
        make_builtin(**args)


def test_render_builtin_bad_arguments():
    with pytest.raises(ValueError, match="index"):
        render_builtin("blobs", -1, 16)
    with pytest.raises(ValueError, match="size"):
        render_builtin("blobs", 0, 4)
    with pytest.raises(ValueError, match="height"):
        render_builtin("blobs", 0, 16, height=3)
    with pytest.raises(TypeError, match="size"):
        render_builtin("blobs", 0, 16.0)
