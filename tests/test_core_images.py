"""Image helpers: IMAGE validation, layout/range conversions, grids, files."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import gan_core
from gan_core.images import comfy_to_signed, pil_to_tensor, signed_to_comfy, to_gray, to_rgb


def _image(b=2, h=5, w=7, c=3, seed=0) -> torch.Tensor:
    return torch.rand(b, h, w, c, generator=torch.Generator().manual_seed(seed))


def test_check_image_batch():
    single = gan_core.check_image_batch(_image(1)[0].double())
    assert single.shape == (1, 5, 7, 3) and single.dtype == torch.float32
    with pytest.raises(TypeError, match="my_input"):
        gan_core.check_image_batch(np.zeros((1, 4, 4, 3)), "my_input")
    with pytest.raises(ValueError, match=r"my_input.*\(1, 4, 4, 5\)"):
        gan_core.check_image_batch(torch.zeros(1, 4, 4, 5), "my_input")


def test_to_rgb_and_gray():
    gray = _image(c=1)
    assert torch.equal(to_rgb(gray), gray.expand(-1, -1, -1, 3))
    rgba = _image(c=4)
    assert torch.equal(to_rgb(rgba), rgba[..., :3])
    rgb = _image()
    luma = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    assert torch.allclose(to_gray(rgb)[..., 0], luma)
    # the same weights as Pillow's "L" conversion (up to 8-bit rounding)
    rgb8 = (rgb[0] * 255).round()
    pil = Image.fromarray(rgb8.numpy().astype(np.uint8)).convert("L")
    ours = to_gray(rgb8[None] / 255)[0, ..., 0] * 255
    assert (torch.tensor(np.array(pil), dtype=torch.float32) - ours).abs().max() <= 1.0

def test_layout_round_trip():
    images = _image()
    x = comfy_to_signed(images)
    assert x.shape == (2, 3, 5, 7) and x.min() >= -1 and x.max() <= 1
    assert torch.allclose(signed_to_comfy(x), images, atol=1e-6)
    g = comfy_to_signed(images, channels=1)
    assert g.shape == (2, 1, 5, 7)
    back = signed_to_comfy(torch.full((1, 3, 2, 2), 5.0))  # out of range -> clamped
    assert torch.all(back == 1.0)


@pytest.mark.parametrize("b,nrow,cells", [(4, None, (2, 2)), (5, None, (2, 3)), (6, 2, (3, 2)),
                                          (1, None, (1, 1)), (3, 5, (1, 5))])
def test_make_grid_layout(b, nrow, cells):
    images = _image(b, 4, 6)
    grid = gan_core.make_grid(images, nrow=nrow, pad=1, pad_value=0.5)
    rows, cols = cells
    assert grid.shape == (1, rows * 5 + 1, cols * 7 + 1, 3)
    for i in range(b):
        r, c = divmod(i, cols)
        assert torch.equal(grid[0, 1 + r * 5:1 + r * 5 + 4, 1 + c * 7:1 + c * 7 + 6], images[i])
    assert torch.all(grid[0, 0] == 0.5) and torch.all(grid[0, :, 0] == 0.5)


@pytest.mark.parametrize("suffix", [".png", ".webp", ".jpg"])
def test_save_image_round_trip(tmp_path, suffix):
    img = torch.zeros(1, 8, 8, 3)
    img[..., 0] = torch.linspace(0, 1, 8)
    img[..., 2] = 0.25
    path = gan_core.save_image(img, tmp_path / "deep" / f"x{suffix}")
    back = pil_to_tensor(Image.open(path))
    tol = 1 / 255 + 1e-6 if suffix == ".png" else 0.08  # lossy formats
    assert back.shape == (8, 8, 3)
    assert (back - img[0]).abs().max() <= tol


def test_tensor_to_pil_modes():
    assert gan_core.tensor_to_pil(_image(1, c=1)).mode == "L"
    assert gan_core.tensor_to_pil(_image(1, c=4)[0]).mode == "RGBA"
    pil = gan_core.tensor_to_pil(torch.full((2, 2, 3), 0.5))
    assert pil.mode == "RGB" and np.asarray(pil)[0, 0, 0] == 128  # rounds, not truncates


def test_pil_to_tensor_composites_alpha_on_white():
    rgba = Image.new("RGBA", (2, 2), (0, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 0, 0, 255))
    t = pil_to_tensor(rgba)
    assert torch.all(t[0, 1] == 1.0) and torch.all(t[0, 0] == 0.0)
    la = Image.new("LA", (2, 2), (0, 128))
    assert torch.allclose(pil_to_tensor(la), torch.full((2, 2, 3), 1 - 128 / 255), atol=1 / 255)
