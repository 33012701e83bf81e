"""Datasets: image folders (formats, modes, broken files), IMAGE batches, fit modes, built-ins."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import gan_core
from gan_core.data import fit_square, list_image_files, load_image_folder, read_image

SIZE = 16


def _gradient(w: int, h: int) -> np.ndarray:
    """A smooth RGB uint8 image (compresses well, survives JPEG)."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // max(1, w - 1), y * 255 // max(1, h - 1),
                     np.full_like(x, 128)], -1).astype(np.uint8)


@pytest.fixture
def mixed_folder(tmp_path):
    """One image per format/mode that a user's folder commonly holds, plus non-images."""
    folder = tmp_path / "mixed"
    (folder / "nested").mkdir(parents=True)
    Image.fromarray(_gradient(40, 30)).save(folder / "a_rgb.png")
    Image.fromarray(_gradient(30, 40)).save(folder / "b_photo.jpg", quality=95)
    Image.fromarray(_gradient(20, 20)).save(folder / "c_lossless.webp", lossless=True)
    rgba = np.zeros((24, 24, 4), np.uint8)
    rgba[..., 0] = 255  # red, but fully transparent: composited onto white
    Image.fromarray(rgba, "RGBA").save(folder / "d_transparent.png")
    Image.fromarray(np.full((18, 18), 60, np.uint8), "L").save(folder / "e_gray.png")
    Image.fromarray(_gradient(16, 16)).convert("P", palette=Image.ADAPTIVE).save(folder / "f_pal.gif")
    Image.fromarray(_gradient(64, 32)).save(folder / "nested" / "g_deep.PNG")
    (folder / "notes.txt").write_text("not an image")
    return folder


def _write_corrupt(folder, name="broken.png"):
    path = folder / name
    good = folder / "_tmp_good.png"
    Image.fromarray(_gradient(32, 32)).save(good)
    path.write_bytes(good.read_bytes()[:60])  # a truncated PNG
    good.unlink()
    return path


# --------------------------------------------------------------------------- folders

def test_folder_formats_and_modes_become_rgb_uint8(mixed_folder):
    files = list_image_files(mixed_folder)
    assert [p.name for p in files] == ["a_rgb.png", "b_photo.jpg", "c_lossless.webp",
                                       "d_transparent.png", "e_gray.png", "f_pal.gif", "g_deep.PNG"]
    images = load_image_folder(mixed_folder, SIZE)
    assert images.shape == (7, 3, SIZE, SIZE)
    assert images.dtype == torch.uint8
    # the transparent image is white, the grayscale one is gray in all three channels
    assert torch.all(images[3] == 255)
    assert torch.all(images[4] == 60)
    # colour images keep their colour (blue channel constant 128 in the gradients)
    assert images[0, 2].float().mean().item() == pytest.approx(128, abs=1)


def test_open_dataset_on_a_folder(mixed_folder):
    data = gan_core.open_dataset(str(mixed_folder), SIZE, fit="pad")
    assert isinstance(data, gan_core.ImageDataset)
    assert len(data) == 7 and data.size == SIZE and data.name == "mixed"
    batch = data.sample(5, torch.Generator().manual_seed(0))
    assert batch.shape == (5, 3, SIZE, SIZE)
    assert batch.min() >= -1.0 and batch.max() <= 1.0
    gray = gan_core.open_dataset(str(mixed_folder), SIZE, channels=1)
    assert gray.sample(2, torch.Generator().manual_seed(0)).shape == (2, 1, SIZE, SIZE)
    preview = gray.preview(4)
    assert preview.shape == (4, SIZE, SIZE, 3)


def test_corrupt_file_is_skipped_with_a_warning_naming_it(mixed_folder):
    _write_corrupt(mixed_folder, "zz_broken.png")
    (mixed_folder / "zz_noise.jpg").write_bytes(b"\x00garbage" * 20)
    with pytest.warns(UserWarning) as record:
        images = load_image_folder(mixed_folder, SIZE)
    assert images.shape[0] == 7  # every readable image is kept
    messages = [str(w.message) for w in record]
    assert any("zz_broken.png" in m and "skipping" in m for m in messages)
    assert any("zz_noise.jpg" in m and "skipping" in m for m in messages)


def test_empty_folder(tmp_path):
    (tmp_path / "only_text.txt").write_text("hello")
    with pytest.raises(gan_core.DatasetError, match="has no image files") as info:
        load_image_folder(tmp_path, SIZE)
    assert str(tmp_path) in str(info.value)
    with pytest.raises(gan_core.DatasetError, match="no image files"):
        gan_core.open_dataset(str(tmp_path), SIZE)


def test_folder_of_only_corrupt_files(tmp_path):
    _write_corrupt(tmp_path, "one.png")
    (tmp_path / "two.webp").write_bytes(b"RIFF0000WEBPnope")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(gan_core.DatasetError, match="none of its 2 image files could be read") as info:
            load_image_folder(tmp_path, SIZE)
    assert "one.png" in str(info.value) and "two.webp" in str(info.value)


def test_missing_folder_and_bad_spec(tmp_path):
    with pytest.raises(gan_core.DatasetError, match="does not exist"):
        load_image_folder(tmp_path / "absent", SIZE)
    with pytest.raises(gan_core.DatasetError, match="neither a folder nor builtin:NAME"):
        gan_core.open_dataset(str(tmp_path / "absent"), SIZE)


@pytest.mark.parametrize("side", [16, 80])  # as is, and large enough to be reduced on read
def test_sixteen_bit_grayscale_png_keeps_its_levels(tmp_path, side):
    """16-bit PNGs (scans, renders) must not come out white (Pillow clips I;16 to 0..255) nor
    be skipped as unreadable (Image.reduce has no 16-bit mode)."""
    arr = np.full((side, side), 65535, np.uint16)
    arr[:, side // 2:] = 30000
    Image.fromarray(arr).save(tmp_path / "deep.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not skipped
        images = load_image_folder(tmp_path, SIZE, fit="stretch")
    assert images.shape == (1, 3, SIZE, SIZE)
    assert torch.all(images[0, :, :, :6] == 255)
    assert torch.all((images[0, :, :, 10:].float() - 30000 / 65535 * 255).abs() <= 1)


def test_exif_orientation_is_applied(tmp_path):
    """A phone photo stored sideways with an EXIF rotation tag is used upright."""
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)  # left half red
    arr[:, 20:] = (0, 0, 255)  # right half blue
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "phone.jpg"
    img.save(path, exif=exif, quality=95)
    upright = read_image(path)
    assert upright.shape == (40, 20, 3)  # H, W swapped
    top, bottom = upright[:15].mean((0, 1)), upright[25:].mean((0, 1))
    assert top[0] > 0.8 and top[2] < 0.2  # the left (red) half is now on top
    assert bottom[2] > 0.8 and bottom[0] < 0.2


def test_large_jpeg_is_reduced_while_reading(tmp_path):
    path = tmp_path / "big.jpg"
    Image.fromarray(_gradient(1600, 1200)).save(path, quality=90)
    small = read_image(path, hint_size=32)
    assert min(small.shape[:2]) >= 64  # never below twice the target
    assert small.shape[0] < 1200
    images = load_image_folder(tmp_path, 32)
    assert images.shape == (1, 3, 32, 32)
    ref = torch.from_numpy(_gradient(1600, 1200)).permute(2, 0, 1)[None].float() / 255
    expected = fit_square(ref, 32, "crop").mul(255)
    assert (images.float() - expected).abs().mean() < 4  # same picture


# --------------------------------------------------------------------------- IMAGE batches

@pytest.mark.parametrize("channels", [1, 3, 4])
def test_from_images(channels):
    gen = torch.Generator().manual_seed(0)
    batch = torch.rand(3, 20, 30, channels, generator=gen)
    data = gan_core.from_images(batch, SIZE, fit="stretch")
    assert data.images.shape == (3, 3, SIZE, SIZE) and data.images.dtype == torch.uint8
    if channels == 1:
        assert torch.equal(data.images[:, 0], data.images[:, 1])


def test_from_images_keeps_exact_pixels_at_the_same_size():
    gen = torch.Generator().manual_seed(1)
    batch = torch.randint(0, 256, (2, SIZE, SIZE, 3), generator=gen).float() / 255
    data = gan_core.from_images(batch, SIZE)
    assert torch.equal(data.images, (batch * 255).round().to(torch.uint8).permute(0, 3, 1, 2))


def test_from_images_works_on_inference_tensors():
    with torch.inference_mode():
        batch = torch.rand(2, 8, 8, 3)
        data = gan_core.from_images(batch, 8)
    assert len(data) == 2


@pytest.mark.parametrize("bad,match", [
    (torch.rand(2, 8, 8, 2), "shaped"),
    (torch.rand(8, 8), "shaped"),
    (torch.zeros(0, 8, 8, 3), "empty"),
    (torch.full((1, 8, 8, 3), float("nan")), "NaN"),
])
def test_from_images_rejects_bad_batches(bad, match):
    with pytest.raises(ValueError, match=match):
        gan_core.from_images(bad, SIZE, name="my_images")


def test_image_dataset_rejects_wrong_layout():
    with pytest.raises(ValueError, match="uint8"):
        gan_core.ImageDataset(torch.zeros(2, 3, 8, 8), "floats")
    with pytest.raises(gan_core.DatasetError, match="empty"):
        gan_core.ImageDataset(torch.zeros(0, 3, 8, 8, dtype=torch.uint8), "nothing")


# --------------------------------------------------------------------------- fit modes

def _two_tone(h: int, w: int) -> torch.Tensor:
    """[1,3,h,w] black with a red centre square of side min(h,w)/2."""
    x = torch.zeros(1, 3, h, w)
    s = min(h, w) // 4
    x[:, 0, h // 2 - s:h // 2 + s, w // 2 - s:w // 2 + s] = 1.0
    return x


@pytest.mark.parametrize("h,w", [(40, 20), (20, 40), (16, 16), (9, 33), (64, 64)])
@pytest.mark.parametrize("fit", gan_core.FIT_MODES)
def test_fit_modes_shapes_and_range(h, w, fit):
    x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(h * w))
    out = fit_square(x, SIZE, fit)
    assert out.shape == (2, 3, SIZE, SIZE)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_fit_crop_keeps_the_centre():
    out = fit_square(_two_tone(64, 32), SIZE, "crop")
    # a wide-enough crop of a tall image: the red centre square fills the middle half
    assert out[0, 0, 6:10, 6:10].min() > 0.9
    assert out[0, 0, 0, 0] < 0.1


def test_fit_pad_adds_white_bars_and_keeps_everything():
    out = fit_square(torch.zeros(1, 3, 40, 20), SIZE, "pad")  # black, tall
    assert torch.all(out[..., :, :4] == 1.0) and torch.all(out[..., :, 12:] == 1.0)  # side bars
    assert torch.all(out[..., :, 4:12] < 0.01)  # the image itself


def test_fit_stretch_uses_the_whole_image():
    x = torch.zeros(1, 3, 20, 40)
    x[..., :, :20] = 1.0  # left half white
    out = fit_square(x, SIZE, "stretch")
    assert out[..., :, :7].min() > 0.95 and out[..., :, 9:].max() < 0.05


def test_fit_unknown_mode():
    with pytest.raises(ValueError, match="fit must be one of"):
        fit_square(torch.zeros(1, 3, 8, 9), SIZE, "zoom")


# --------------------------------------------------------------------------- built-ins

def test_builtin_dataset(core_single_thread):
    data = gan_core.open_dataset("builtin:rings", SIZE, count=6, seed=3)
    assert len(data) == 6 and data.size == SIZE and data.name == "builtin:rings"
    again = gan_core.open_dataset("builtin:rings", SIZE, count=6, seed=3)
    assert torch.equal(data.images, again.images)
    other = gan_core.open_dataset("builtin:rings", SIZE, count=6, seed=4)
    assert not torch.equal(data.images, other.images)


def test_builtin_unknown_name():
    with pytest.raises(gan_core.DatasetError, match="unknown built-in dataset 'nope'.*mondrian"):
        gan_core.open_dataset("builtin:nope", SIZE)


def test_sampling_is_driven_by_the_generator(core_dataset):
    a = core_dataset.sample(6, torch.Generator().manual_seed(5))
    b = core_dataset.sample(6, torch.Generator().manual_seed(5))
    c = core_dataset.sample(6, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # every sample is a dataset image, possibly mirrored
    pool = core_dataset.images.float() / 127.5 - 1
    pool = torch.cat([pool, pool.flip(-1)])
    for img in a:
        assert ((pool - img).abs().flatten(1).max(1).values < 1e-5).any()
