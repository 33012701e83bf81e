"""Bad images get clear errors or sane handling (issue 6): odd files through the one reader
(gan_core.read_image, behind the CLI, image folders and crop sources) and odd IMAGE tensors
through stylize, denoise, the training-data builders and the nodes.

Policy, as SECURITY.md states it: an image is either used correctly (upright, its real
levels, transparency on white) or refused with an ImageError (a ValueError) that names the file
or input and what was expected; a folder or a CLI run skips a bad file, names it and goes on.
NaN/inf pixels in an IMAGE are refused (never silently replaced): they mean an upstream node is
broken, and any replacement value would be a guess. All tiny, CPU, real tensors.
"""
from __future__ import annotations

import logging
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gan_core
import gan_core.cli
from gan_core import ImageError, read_image
from gan_core.data import load_image_folder
from gan_core.archs import get_arch
from gan_core.infer.tiling import AUTO_TILE, MAX_UNTILED_SIDE

STYLE = [("cyclegan_resnet", dict(ngf=4, n_blocks=1, ndf=4)), ("transformer_net", {})]
DENOISE = [("dncnn", dict(in_nc=3, out_nc=3, nc=4, nb=3)),
           ("unet_denoiser", dict(width=4, depth=2, noise_level_input=True))]
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


@pytest.fixture(autouse=True)
def _one_thread(core_single_thread):
    yield


def _model(arch: str, **cfg) -> gan_core.GANModel:
    spec = get_arch(arch)
    torch.manual_seed(0)
    config = spec.config_cls(**cfg)
    return gan_core.GANModel(arch, config, {"G": spec.build(config)["G"]})


def _apply(model: gan_core.GANModel, images: torch.Tensor, **kw) -> torch.Tensor:
    return model.stylize(images, **kw) if model.task == "style" else model.denoise(images, **kw)


ALL_MODELS = [pytest.param(a, c, id=a) for a, c in STYLE + DENOISE]


def _png(width: int, height: int, bit_depth: int, color_type: int, raw: bytes) -> bytes:
    """A PNG written by hand, so a test can make what Pillow will not write (16-bit RGB) or
    a header that lies about the size (a decompression bomb)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def _two_colour(h: int = 16, w: int = 32, left=RED, right=BLUE) -> Image.Image:
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:, : w // 2], arr[:, w // 2:] = left, right
    return Image.fromarray(arr)


def _close(pixel: torch.Tensor, rgb, tol: float) -> bool:
    return bool((pixel - torch.tensor(rgb, dtype=torch.float32) / 255).abs().max() <= tol)


# ------------------------------------------------------------------------ empty IMAGE batches

@pytest.mark.parametrize("arch,cfg", ALL_MODELS)
def test_empty_batch_is_refused_by_stylize_and_denoise(arch, cfg):
    with pytest.raises(ImageError, match=r"images: the image batch is empty.*\(0, 8, 8, 3\)"):
        _apply(_model(arch, **cfg), torch.zeros(0, 8, 8, 3))


def test_empty_batch_and_zero_size_images_are_refused_as_training_data():
    with pytest.raises(ImageError, match="my_photos: the image batch is empty"):
        gan_core.from_images(torch.zeros(0, 8, 8, 3), 8, name="my_photos")
    with pytest.raises(ImageError, match="style: the image batch is empty"):
        gan_core.crops_from_images(torch.zeros(0, 8, 8, 3), "style")
    with pytest.raises(ImageError, match=r"images: the images have no pixels.*\(1, 0, 5, 3\)"):
        gan_core.check_image_batch(torch.zeros(1, 0, 5, 3))


# -------------------------------------------------------------------------------- 1x1 images

@pytest.mark.parametrize("arch,cfg", ALL_MODELS)
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_one_pixel_images_are_processed(arch, cfg, channels):
    img = torch.rand(2, 1, 1, channels, generator=torch.Generator().manual_seed(0))
    out = _apply(_model(arch, **cfg), img)
    assert out.shape == img.shape and torch.isfinite(out).all()
    assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    if channels == 4:
        assert torch.equal(out[..., 3], img[..., 3])  # alpha passes through
    half = _apply(_model(arch, **cfg), img, strength=0.5)
    assert torch.allclose(half, 0.5 * out + 0.5 * img, atol=1e-6)


@pytest.mark.slow
def test_one_pixel_images_as_training_data(tmp_path, core_config):
    one = torch.tensor([[[[0.2, 0.4, 0.6]]]])
    data = gan_core.from_images(one.expand(4, 1, 1, 3), 8)
    assert data.images.shape == (4, 3, 8, 8)
    assert torch.all(data.images[:, 0] == round(0.2 * 255))  # a flat image of that colour
    crops = gan_core.crops_from_images(one, "one pixel")
    sample = crops.sample(3, 8, torch.Generator().manual_seed(0))
    assert sample.shape == (3, 3, 8, 8)
    assert torch.allclose(sample, (one.permute(0, 3, 1, 2) * 255).round() / 127.5 - 1, atol=1e-5)
    Image.new("RGB", (1, 1), (51, 102, 153)).save(tmp_path / "dot.png")
    folder = load_image_folder(tmp_path, 8)
    assert folder.shape == (1, 3, 8, 8) and torch.all(folder[0, 2] == 153)
    # and a model trains on them (two steps at 32 px, finite losses)
    data = gan_core.from_images(one.expand(4, 1, 1, 3), 32)
    model = gan_core.train(core_config(steps=2, model=dict(ngf=4, ndf=4)), data)
    assert all(np.isfinite(v).all() for v in model.resume.history.values())


# -------------------------------------------------------------------------------- 16-bit PNGs

def test_16_bit_gray_png_keeps_its_levels(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 8).astype(np.uint16).reshape(8, 64)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I;16")
    img = read_image(tmp_path / "deep.png")
    want = torch.from_numpy(ramp.astype(np.float32) / 65535)
    assert img.shape == (8, 64, 3)
    assert torch.allclose(img[..., 0], want, atol=1e-6)  # scaled, not clipped to white
    assert torch.equal(img[..., 0], img[..., 2])
    assert float((img > 0.999).float().mean()) < 0.01


def test_16_bit_rgb_png_is_read_at_its_levels(tmp_path):
    """Pillow keeps the high byte of 16-bit RGB: within 1/255 of value / 65535."""
    values = [(40000, 1000, 65535), (0, 30000, 12345)]
    rows = b"".join(b"\x00" + struct.pack(">" + "H" * 6, *values[0], *values[1]) for _ in range(3))
    (tmp_path / "rgb48.png").write_bytes(_png(2, 3, 16, 2, rows))
    img = read_image(tmp_path / "rgb48.png")
    assert img.shape == (3, 2, 3)
    for x, rgb in enumerate(values):
        want = torch.tensor(rgb, dtype=torch.float32) / 65535
        assert (img[1, x] - want).abs().max() <= 1 / 255 + 1e-6


def test_16_bit_tiff_and_float_tiff(tmp_path):
    Image.fromarray(np.full((4, 4), 20000, np.uint16)).save(tmp_path / "deep.tif")
    assert torch.allclose(read_image(tmp_path / "deep.tif"), torch.tensor(20000 / 65535), atol=1e-6)
    Image.fromarray(np.full((4, 4), 0.25, np.float32)).save(tmp_path / "float.tif")
    assert torch.allclose(read_image(tmp_path / "float.tif"), torch.tensor(0.25))


# ----------------------------------------------------------------------- CMYK and palette files

@pytest.mark.parametrize("suffix,tol", [(".jpg", 0.12), (".tif", 0.0)])
def test_cmyk_files_become_rgb(tmp_path, suffix, tol):
    path = tmp_path / f"print{suffix}"
    _two_colour().convert("CMYK").save(path, quality=95) if suffix == ".jpg" else \
        _two_colour().convert("CMYK").save(path)
    assert Image.open(path).mode == "CMYK"
    img = read_image(path)
    assert img.shape == (16, 32, 3)
    assert _close(img[8, 4], RED, tol) and _close(img[8, 28], BLUE, tol)


def _palette_image() -> Image.Image:
    img = Image.new("P", (4, 2))
    img.putpalette(list(RED + GREEN + BLUE + (0, 0, 0)) + [0] * (256 - 4) * 3)
    img.putdata([0, 1, 2, 3, 3, 2, 1, 0])
    return img


def test_palette_image_without_transparency(tmp_path):
    _palette_image().save(tmp_path / "pal.png")
    img = read_image(tmp_path / "pal.png")
    assert [tuple(round(v * 255) for v in img[0, x].tolist()) for x in range(4)] == \
        [RED, GREEN, BLUE, (0, 0, 0)]


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_palette_transparency_is_composited_onto_white(tmp_path, suffix):
    path = tmp_path / f"pal{suffix}"
    _palette_image().save(path, transparency=3)  # index 3 (black) is fully transparent
    img = read_image(path)
    assert _close(img[0, 3], (255, 255, 255), 1e-6) and _close(img[0, 0], RED, 1e-6)


def test_palette_partial_alpha_is_blended_onto_white(tmp_path):
    """PNG tRNS with one alpha per palette entry: black at alpha 128 becomes mid gray."""
    _palette_image().save(tmp_path / "pal.png", transparency=bytes([255, 255, 255, 128]))
    img = read_image(tmp_path / "pal.png")
    assert _close(img[0, 3], (127, 127, 127), 1.5 / 255)
    assert _close(img[0, 1], GREEN, 1e-6)


def test_large_palette_image_in_a_training_folder_is_not_skipped(tmp_path):
    """The folder reader shrinks big images with Image.reduce, which has no palette mode: the
    image is made RGB first instead of being skipped as unreadable."""
    big = _palette_image().resize((256, 128), Image.NEAREST)
    big.save(tmp_path / "pal.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "skipping unreadable image"
        images = load_image_folder(tmp_path, 16, fit="stretch")
    assert images.shape == (1, 3, 16, 16)
    assert tuple(images[0, :, 4, 2].tolist()) == RED  # inside the top-left cell


# ------------------------------------------------------------------------- EXIF orientation

@pytest.mark.parametrize("orientation,top_left", [(1, RED), (3, BLUE), (6, RED), (8, BLUE)])
def test_exif_orientation_is_applied_everywhere(tmp_path, orientation, top_left):
    """Stored as red | blue; each tag turns it upright as a photo viewer does."""
    img = _two_colour(20, 40)
    exif = img.getexif()
    exif[0x0112] = orientation
    path = tmp_path / "phone.jpg"
    img.save(path, exif=exif, quality=95)
    upright = read_image(path)
    assert upright.shape == ((40, 20, 3) if orientation in (6, 8) else (20, 40, 3))
    assert _close(upright[2, 2], top_left, 0.15)
    crops = gan_core.open_crop_source(path, max_side=64)
    assert tuple(crops.pictures[0].shape) == (3, *upright.shape[:2])
    folder = load_image_folder(tmp_path, 20, fit="stretch")
    assert _close(folder[0, :, 1, 1].float() * (1 / 255), top_left, 0.15)


def test_a_damaged_exif_block_does_not_lose_the_picture(tmp_path):
    """An EXIF block with an unknown byte order: its orientation cannot be read, so the
    picture is used as stored (not rotated), not refused."""
    img = _two_colour()
    exif = img.getexif()
    exif[0x0112] = 6
    path = tmp_path / "odd.jpg"
    img.save(path, exif=exif)
    data = bytearray(path.read_bytes())
    at = data.find(b"Exif\x00\x00")
    data[at + 6:at + 14] = b"XX\x00\x2a\xff\xff\xff\xff"
    path.write_bytes(bytes(data))
    out = read_image(path)
    assert out.shape == (16, 32, 3) and _close(out[8, 4], RED, 0.15)


# ------------------------------------------------------------------------------ animated GIFs

def test_animated_gif_gives_its_first_frame_and_says_so(tmp_path, caplog):
    frames = [Image.new("RGB", (8, 8), c) for c in (RED, GREEN, BLUE)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with caplog.at_level(logging.WARNING, logger="gan_core"):
        img = read_image(path)
    assert _close(img[4, 4], RED, 1e-6)
    assert "anim.gif" in caplog.text and "3 frames" in caplog.text
    assert "first frame only" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gan_core"):
        data = load_image_folder(tmp_path, 8)
    assert data.shape == (1, 3, 8, 8) and tuple(data[0, :, 4, 4].tolist()) == RED
    assert "first frame only" in caplog.text


# ---------------------------------------------------------------- broken and unreadable files

def _broken_files(folder: Path) -> dict[str, str]:
    """name -> the words the error must contain."""
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.jpg").write_text("not a picture")
    good = _png(64, 64, 8, 2, b"".join(b"\x00" + bytes(range(192)) for _ in range(64)))
    (folder / "cut.png").write_bytes(good[: len(good) // 2])
    # a 40,000 x 40,000 px header over a few bytes: 1.6 G px claimed, nothing behind it
    (folder / "bomb.png").write_bytes(_png(40_000, 40_000, 8, 2, b"\x00" * 16))
    return {"empty.png": "empty (0 bytes)", "notes.jpg": "cannot be read as an image",
            "cut.png": "truncated or corrupt", "bomb.png": "decompression-bomb limit"}


def test_broken_files_are_clear_errors_naming_the_file(tmp_path):
    for name, words in _broken_files(tmp_path).items():
        with pytest.raises(ImageError) as info:
            read_image(tmp_path / name)
        assert name in str(info.value) and words in str(info.value), str(info.value)


def test_a_decompression_bomb_is_refused_before_decoding_and_names_the_limit(tmp_path):
    (tmp_path / "bomb.png").write_bytes(_png(40_000, 40_000, 8, 2, b"\x00" * 16))
    limit = 2 * Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageError) as info:
        read_image(tmp_path / "bomb.png")
    text = str(info.value)
    assert "1,600,000,000 px" in text and f"{limit:,} px" in text
    assert "PIL.Image.MAX_IMAGE_PIXELS" in text


def test_a_folder_skips_bad_files_by_name_and_keeps_the_good_ones(tmp_path):
    expected = _broken_files(tmp_path)
    _two_colour().save(tmp_path / "good.png")
    with pytest.warns(UserWarning) as record:
        data = load_image_folder(tmp_path, 8)
    assert data.shape == (1, 3, 8, 8)
    text = "\n".join(str(w.message) for w in record)
    for name, words in expected.items():
        assert name in text and words in text
    with pytest.warns(UserWarning) as record:
        crops = gan_core.open_crop_source(tmp_path, max_side=64)  # the crop reader too
    assert len(crops) == 1 and len(record) == len(expected)


def test_a_folder_of_only_bad_files_is_one_clear_error(tmp_path):
    _broken_files(tmp_path)
    with pytest.warns(UserWarning), pytest.raises(gan_core.DatasetError, match="none of its 4"):
        load_image_folder(tmp_path, 8)


def test_cli_skips_bad_inputs_names_them_and_writes_the_rest(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    expected = _broken_files(src)
    _two_colour().save(src / "good.png")
    model_path = tmp_path / "style.safetensors"
    gan_core.save(_model(STYLE[0][0], **STYLE[0][1]), model_path)
    rc = gan_core.cli.main(["stylize", str(model_path), str(src), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["good.png"]
    for name, words in expected.items():
        assert f"skipped {src / name}" in err and words in err
    assert "4 of 5 input images could not be read" in err
    rc = gan_core.cli.main(["stylize", str(model_path), str(src / "bomb.png"),
                            "--out", str(tmp_path / "out2")])
    assert rc == 2 and "none of the 1 input images" in capsys.readouterr().err


# --------------------------------------------------------------- larger than 10,000 px a side

@pytest.mark.parametrize("arch,cfg", [ALL_MODELS[0], ALL_MODELS[2], ALL_MODELS[3]])
def test_images_over_the_untiled_limit_are_tiled_and_the_log_says_so(arch, cfg, caplog):
    """10,008 x 8 px (80 k px: cheap) is longer than MAX_UNTILED_SIDE, so even with tile None
    it runs in AUTO_TILE tiles, never as one whole-image call, with the same result as asking
    for those tiles."""
    model = _model(arch, **cfg)
    img = gan_core.make_builtin("blobs", 1, 64, seed=0)[:, :8, :8].repeat(1, 1251, 1, 1)
    assert img.shape == (1, 10_008, 8, 3)
    calls = []
    hook = model.module.register_forward_hook(lambda m, i, o: calls.append(tuple(i[0].shape)))
    with caplog.at_level(logging.WARNING, logger="gan_core"):
        out = _apply(model, img)
    hook.remove()
    assert out.shape == img.shape and torch.isfinite(out).all()
    assert max(max(s[-2:]) for s in calls) <= AUTO_TILE + 8  # tiles, not the 10,008 px image
    assert f"larger than {MAX_UNTILED_SIDE} px a side" in caplog.text
    assert f"{AUTO_TILE} px tiles" in caplog.text
    assert torch.equal(out, _apply(model, img, tile=AUTO_TILE))


def test_a_file_over_10000_px_a_side_under_the_pixel_limit_is_read(tmp_path):
    Image.fromarray(np.full((3, 10_001), 200, np.uint8)).save(tmp_path / "strip.png")
    img = read_image(tmp_path / "strip.png")
    assert img.shape == (3, 10_001, 3) and torch.allclose(img, torch.tensor(200 / 255))


# --------------------------------------------------------------------- NaN / inf in an IMAGE

@pytest.mark.parametrize("arch,cfg", ALL_MODELS)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_pixels_are_refused_naming_the_input_and_image(arch, cfg, bad):
    img = torch.rand(3, 8, 8, 3)
    img[1, 2, 3, 0] = bad
    with pytest.raises(ImageError, match=r"images: image 1 of the batch of 3 has") as info:
        _apply(_model(arch, **cfg), img)
    assert ("1 NaN" if bad != bad else "1 infinite") in str(info.value)


def test_non_finite_training_images_are_refused():
    img = torch.rand(2, 8, 8, 3)
    img[0, 0, 0, 0] = float("nan")
    with pytest.raises(ImageError, match="content: image 0 of the batch of 2 has 1 NaN"):
        gan_core.crops_from_images(img, "content")
    with pytest.raises(ImageError, match="my_images: image 0"):
        gan_core.from_images(img, 8, name="my_images")


def test_previews_of_non_finite_tensors_do_not_fail():
    """tensor_to_pil is for display (training previews): NaN shows as black, inf as white."""
    img = torch.tensor([[[float("nan")] * 3, [float("inf")] * 3, [-float("inf")] * 3]])
    arr = np.asarray(gan_core.tensor_to_pil(img))
    assert arr[0].tolist() == [[0, 0, 0], [255, 255, 255], [0, 0, 0]]


# ------------------------------------------------------------------ dtypes of IMAGE tensors

def test_uint8_images_are_read_as_0_255_and_other_integers_refused():
    model = _model(DENOISE[0][0], **DENOISE[0][1])
    img8 = torch.randint(0, 256, (1, 8, 8, 3), dtype=torch.uint8)
    assert torch.allclose(model.denoise(img8), model.denoise(img8.float() / 255), atol=1e-6)
    with pytest.raises(ImageError, match="images: expected float pixels.*torch.int64"):
        model.denoise(img8.long())


# ------------------------------------------------------------------------------ the nodes

@pytest.fixture
def nodes(comfy, pack, tmp_path):
    comfy[0].configure(str(tmp_path))
    return pack


def _node(pack, node_id, **inputs):
    obj = pack.nodes.node_classes()[node_id]()
    with torch.inference_mode():
        return getattr(obj, obj.FUNCTION)(**inputs)


@pytest.mark.parametrize("node_id,arch,cfg,extra", [
    ("GANAtelierStyleTransfer", *STYLE[0], {}),
    ("GANAtelierDenoise", *DENOISE[1], {"sigma": 15.0}),
])
def test_nodes_handle_bad_images(nodes, node_id, arch, cfg, extra):
    """The pack imports its own copy of gan_core (as ComfyUI does), so its classes are used."""
    spec = nodes.gan_core.archs.get_arch(arch)
    config = spec.config_cls(**cfg)
    model = nodes.gan_core.GANModel(arch, config, {"G": spec.build(config)["G"]})
    args = dict(model=model, strength=1.0, tile=0, **extra)
    bad = nodes.gan_core.ImageError
    with pytest.raises(bad, match="images: the image batch is empty"):
        _node(nodes, node_id, images=torch.zeros(0, 8, 8, 3), **args)
    nan = torch.rand(2, 8, 8, 3)
    nan[1, 0, 0, 1] = float("nan")
    with pytest.raises(bad, match="images: image 1 of the batch of 2 has 1 NaN"):
        _node(nodes, node_id, images=nan, **args)
    (one,) = _node(nodes, node_id, images=torch.rand(3, 1, 1, 4), **args)
    assert one.shape == (3, 1, 1, 4) and torch.isfinite(one).all()
