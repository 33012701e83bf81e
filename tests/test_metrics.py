"""Sliced Wasserstein distance: orders image sets by how alike they are."""
import pytest
import torch

from gan_core.data.procedural import make_builtin
from gan_core.metrics import laplacian_pyramid, sliced_wasserstein

SMALL = dict(patches_per_image=32, directions=64, repeats=2)


@pytest.fixture(scope="module")
def sets():
    return {
        "painting0": make_builtin("painting", 24, 32, seed=0),
        "painting1": make_builtin("painting", 24, 32, seed=1),
        "blobs": make_builtin("blobs", 24, 32, seed=0),
    }


def test_same_distribution_is_closer_than_another_dataset(sets):
    same = sliced_wasserstein(sets["painting0"], sets["painting1"], **SMALL)
    other = sliced_wasserstein(sets["painting0"], sets["blobs"], **SMALL)
    assert set(same) == {"32px", "16px", "mean"}
    assert same["mean"] * 1.5 < other["mean"]


def test_noise_shows_in_the_fine_level():
    clean = make_builtin("mondrian", 24, 32, seed=0)  # flat fields: noise changes their patches
    other = make_builtin("mondrian", 24, 32, seed=1)
    noisy = (clean + 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    base = sliced_wasserstein(clean, other, **SMALL)
    hurt = sliced_wasserstein(noisy, other, **SMALL)
    assert hurt["32px"] > 1.25 * base["32px"]


def test_deterministic_for_a_seed(sets):
    a = sliced_wasserstein(sets["painting0"], sets["blobs"], seed=3, **SMALL)
    b = sliced_wasserstein(sets["painting0"], sets["blobs"], seed=3, **SMALL)
    assert a == b


def test_pyramid_bands_sum_back_to_the_image():
    x = torch.rand(2, 3, 32, 32)
    bands = laplacian_pyramid(x, 3)
    assert [b.shape[-1] for b in bands] == [32, 16, 8]
    rebuilt = bands[-1]
    for band in reversed(bands[:-1]):
        rebuilt = torch.nn.functional.interpolate(rebuilt, size=band.shape[-2:], mode="bilinear",
                                                  align_corners=False) + band
    assert torch.allclose(rebuilt, x, atol=1e-6)


def test_mismatched_sets_are_refused(sets):
    with pytest.raises(ValueError, match="same size"):
        sliced_wasserstein(sets["painting0"], make_builtin("painting", 4, 64, seed=0))
    with pytest.raises(ValueError, match="at least 16 px"):
        sliced_wasserstein(torch.rand(2, 8, 8, 3), torch.rand(2, 8, 8, 3))
