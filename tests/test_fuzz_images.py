"""Property-based fuzzing of image handling (issue 6): IMAGE conversions, PIL conversions, the
file reader on mutated files, stylize/denoise on any shape (the tiler's own property is in
tests/test_tiling.py).

Every property has the same shape: for any input, either a correct result or a clear error of
the promised type (ValueError / ImageError), never another exception, a crash or a wrong
picture. Example counts come from the hypothesis profile in conftest.py ("ci": 25 per test by
default; `HYPOTHESIS_PROFILE=long` for 5000):

    HYPOTHESIS_PROFILE=long OMP_NUM_THREADS=1 python -m pytest -o addopts="--import-mode=importlib" tests/test_fuzz_images.py
"""
from __future__ import annotations

import io
import sys
import warnings

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from PIL import Image

import gan_core
from gan_core import ImageError, read_image
from gan_core.images import (check_image_batch, comfy_to_signed, make_grid, pil_to_tensor,
                             signed_to_comfy, tensor_to_pil, to_gray, to_rgb)
from gan_core.archs import get_arch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.uint8, torch.int8,
          torch.int16, torch.int32, torch.int64, torch.bool, torch.complex64]
SPECIALS = [0.0, 1.0, -1.0, 0.5, 2.0, 255.0, 1e30, -1e30, float("nan"), float("inf"),
            -float("inf")]


@st.composite
def tensors(draw, max_dims: int = 5, max_side: int = 5):
    """Any tensor: 0-5 dims of 0-5 (the last 0-6), any of DTYPES, values from [0, 1] with
    specials (NaN, inf, huge, negative) sprinkled in."""
    dims = draw(st.integers(0, max_dims))
    shape = [draw(st.integers(0, max_side)) for _ in range(dims)]
    if dims:
        shape[-1] = draw(st.integers(0, 6))
    dtype = draw(st.sampled_from(DTYPES))
    seed = draw(st.integers(0, 2 ** 16))
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(shape, generator=g, dtype=torch.float64)
    n = base.numel()
    if n and draw(st.booleans()):
        for _ in range(draw(st.integers(1, 3))):
            base.view(-1)[draw(st.integers(0, n - 1))] = draw(st.sampled_from(SPECIALS))
    if dtype == torch.uint8 or dtype in (torch.int8, torch.int16, torch.int32, torch.int64):
        finite = torch.nan_to_num(base, nan=0.0, posinf=0.0, neginf=0.0).clamp(0, 1)
        return (finite * 255).round().to(dtype)
    if dtype == torch.bool:
        return base > 0.5
    return base.to(dtype)


def _expected_batch(t: torch.Tensor) -> torch.Tensor | None:
    """What check_image_batch must return for t, worked out independently (None: refuse)."""
    if t.dim() == 3:
        t = t.unsqueeze(0)
    if t.dim() != 4 or t.shape[-1] not in (1, 3, 4) or 0 in t.shape:
        return None
    if t.dtype == torch.uint8:
        f = t.double() / 255
    elif t.dtype == torch.bool or t.is_floating_point():
        f = t.double()
    else:
        return None
    f32 = f.float()
    if not torch.isfinite(f32).all():
        return None
    return f32


@given(tensors())
@example(torch.zeros(0, 4, 4, 3))
@example(torch.full((1, 2, 2, 3), float("nan"), dtype=torch.float16))
@example(torch.full((1, 2, 2, 3), 70000.0, dtype=torch.float32).half())  # inf in float16
def test_check_image_batch_is_correct_or_a_clear_error(t):
    want = _expected_batch(t)
    if want is None:
        with pytest.raises(ValueError, match="images: "):
            check_image_batch(t)
        return
    got = check_image_batch(t)
    assert got.dtype == torch.float32 and got.shape == want.shape
    assert torch.equal(got, want)


@given(tensors(max_dims=4))
def test_layout_helpers_are_correct_or_a_clear_error(t):
    """to_rgb, to_gray, comfy_to_signed / signed_to_comfy on anything check_image_batch passes;
    a wrong channel count is a ValueError, never a silently wrong shape."""
    try:
        img = check_image_batch(t)
    except ValueError:
        if t.dim() >= 3 and t.shape[-1] not in (1, 3, 4):
            with pytest.raises(ValueError, match="C in 1/3/4"):
                to_rgb(t.float())
        return
    c = img.shape[-1]
    rgb = to_rgb(img)
    assert rgb.shape == (*img.shape[:-1], 3)
    assert torch.equal(rgb, img.expand(*img.shape[:-1], 3) if c == 1 else img[..., :3])
    gray = to_gray(img)
    assert gray.shape == (*img.shape[:-1], 1)
    if c == 1:
        assert torch.equal(gray, img)
    for channels in (1, 3):
        x = comfy_to_signed(img, channels)
        assert x.shape == (img.shape[0], channels, *img.shape[1:3])
        back = signed_to_comfy(x)
        assert back.shape == (*img.shape[:-1], 3) and back.dtype == torch.float32
        assert float(back.min()) >= 0.0 and float(back.max()) <= 1.0
        if channels == 3 and bool((img >= 0).all() and (img <= 1).all()):
            assert torch.allclose(back, rgb, atol=1e-6)
    grid = make_grid(img, pad=1)
    assert grid.shape[0] == 1 and grid.shape[-1] == c


@given(st.integers(1, 6), st.integers(1, 6), st.sampled_from([1, 3, 4]), st.integers(0, 2 ** 16),
       st.booleans())
def test_tensor_to_pil_and_back_round_trips_at_8_bits(h, w, c, seed, specials):
    """Any values (NaN, inf, out of range) give an 8-bit picture; reading it back gives the
    clipped values (NaN 0, +inf 1) to 8 bits, alpha composited onto white."""
    g = torch.Generator().manual_seed(seed)
    img = torch.rand(h, w, c, generator=g) * 1.4 - 0.2
    if specials:
        img.view(-1)[0], img.view(-1)[-1] = float("nan"), float("inf")
    pil = tensor_to_pil(img)
    assert pil.size == (w, h) and pil.mode == {1: "L", 3: "RGB", 4: "RGBA"}[c]
    back = pil_to_tensor(pil)
    q = (torch.nan_to_num(img, nan=0.0, posinf=1.0, neginf=0.0).clamp(0, 1) * 255).round() / 255
    if c == 1:
        want = q.expand(h, w, 3)
    elif c == 3:
        want = q
    else:
        a = q[..., 3:]
        want = q[..., :3] * a + (1 - a)
    assert back.shape == (h, w, 3)
    assert (back - want).abs().max() <= 1.5 / 255


MODES = ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "I",
         "I;16", "F", "La", "RGBa"]


@given(st.sampled_from(MODES), st.integers(1, 5), st.integers(1, 5), st.integers(0, 2 ** 16),
       st.sampled_from([None, 0, 3, b"\x00\x80\xff"]))
def test_pil_to_tensor_takes_any_mode(mode, h, w, seed, transparency):
    """Every mode gives [H, W, 3] float32 in [0, 1] or a ValueError (a mode Pillow cannot
    convert); 16-bit values keep their level."""
    rng = np.random.default_rng(seed)
    bands = len(Image.new(mode, (1, 1)).getbands())
    if mode == "I;16":
        img = Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16))
    elif mode == "I":
        img = Image.fromarray(rng.integers(-100, 70000, (h, w)).astype(np.int32))
    elif mode == "F":
        img = Image.fromarray((rng.random((h, w)) * 300 - 10).astype(np.float32))
    else:
        raw = rng.integers(0, 256, (h, w, bands), dtype=np.uint8).tobytes()
        img = Image.frombytes(mode, (w, h), raw)
        if mode in ("P", "PA"):
            img.putpalette(rng.integers(0, 256, 768, dtype=np.uint8).tolist())
    if transparency is not None and mode == "P":
        img.info["transparency"] = transparency  # an index, or one alpha per palette entry
    elif transparency is not None and mode in ("L", "RGB"):
        img.info["transparency"] = 0 if mode == "L" else (0, 0, 0)
    try:
        t = pil_to_tensor(img)
    except ValueError as exc:
        assert "conversion" in str(exc) or "mode" in str(exc), exc
        return
    assert t.shape == (h, w, 3) and t.dtype == torch.float32
    assert torch.isfinite(t).all() and float(t.min()) >= 0 and float(t.max()) <= 1
    if mode == "I;16":
        assert torch.allclose(t[..., 0], torch.from_numpy(np.asarray(img, np.float32) / 65535))


# --------------------------------------------------------------- the file reader, mutated files

def _sample(fmt: str) -> bytes:
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    img = Image.fromarray(arr)
    buf = io.BytesIO()
    if fmt == "GIF":
        frames = [img.quantize(16), Image.fromarray(arr[::-1].copy()).quantize(16)]
        frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50)
    elif fmt == "PNG16":
        Image.fromarray(rng.integers(0, 65536, (12, 10), dtype=np.uint16)).save(buf, "PNG")
    elif fmt == "JPEG":
        exif = img.getexif()
        exif[0x0112] = 6
        img.save(buf, "JPEG", exif=exif, quality=90)
    elif fmt == "TIFF":
        img.convert("CMYK").save(buf, "TIFF")
    else:
        img.save(buf, fmt)
    return buf.getvalue()


SAMPLES = {fmt: _sample(fmt) for fmt in ("PNG", "PNG16", "JPEG", "GIF", "TIFF", "BMP", "WEBP")}


@st.composite
def mutated_files(draw):
    fmt = draw(st.sampled_from(sorted(SAMPLES)))
    data = bytearray(SAMPLES[fmt])
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "zero_run"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = bytes(draw(st.lists(st.integers(0, 255), max_size=8)))
        else:
            data[at:at + draw(st.integers(1, 16))] = b"\x00" * 4
    return fmt, bytes(data)


@given(mutated_files())
@example(("PNG", b""))
@example(("PNG", SAMPLES["PNG"][:40]))
def test_read_image_on_mutated_files_is_a_picture_or_an_image_error(tmp_path_factory, case):
    """Random byte flips, cuts and insertions in valid PNG (8 and 16 bit), JPEG (EXIF-rotated),
    animated GIF, CMYK TIFF, BMP and WebP files: read_image returns a finite [H, W, 3] picture in
    [0, 1] or raises ImageError naming the file, never another exception."""
    fmt, data = case
    path = tmp_path_factory.mktemp("fuzz") / f"case.{fmt.lower()[:4]}"
    path.write_bytes(data)
    # Pillow warns about some mutated EXIF blocks ("Corrupt EXIF data"): noise here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            img = read_image(path)
        except ImageError as exc:
            assert str(path) in str(exc)
            return
    assert img.dim() == 3 and img.shape[-1] == 3 and img.dtype == torch.float32
    assert torch.isfinite(img).all() and float(img.min()) >= 0 and float(img.max()) <= 1


# ------------------------------------------------------------------------------------ the tiler

# tiled == untiled for any sizes is tests/test_tiling.py::test_tiled_matches_untiled_property
# (hypothesis, same profiles); stylize/denoise keeping any shape is below.


def _tiny(arch: str, **cfg) -> gan_core.GANModel:
    spec = get_arch(arch)
    torch.manual_seed(0)
    config = spec.config_cls(**cfg)
    return gan_core.GANModel(arch, config, {"G": spec.build(config)["G"]})


MODELS = {"cyclegan": _tiny("cyclegan_resnet", ngf=4, n_blocks=1, ndf=4),
          "dncnn": _tiny("dncnn", in_nc=1, out_nc=1, nc=4, nb=3),
          "unet": _tiny("unet_denoiser", width=4, depth=3, noise_level_input=True)}


@given(name=st.sampled_from(sorted(MODELS)), h=st.integers(1, 70), w=st.integers(1, 70),
       c=st.sampled_from([1, 3, 4]), tile=st.one_of(st.none(), st.integers(16, 64)),
       strength=st.sampled_from([0.0, 0.4, 1.0]))
def test_stylize_and_denoise_keep_any_shape(name, h, w, c, tile, strength):
    """Any image size, channel count and tile: the result has the input's shape, is finite and
    in [0, 1]; alpha is untouched; strength 0 returns the input."""
    model = MODELS[name]
    img = torch.rand(1, h, w, c, generator=torch.Generator().manual_seed(h * 71 + w))
    run = model.stylize if model.task == "style" else model.denoise
    out = run(img, strength=strength, tile=tile)
    assert out.shape == img.shape and out.dtype == torch.float32
    assert torch.isfinite(out).all() and float(out.min()) >= 0 and float(out.max()) <= 1
    if c == 4:
        assert torch.equal(out[..., 3], img[..., 3])
    if strength == 0.0:
        assert torch.equal(out, img)


# ----------------------------------------------------------------------------- symlinked files

_ENTRY_KINDS = ["image", "link to an image inside", "link to an image outside",
                "link to a folder inside", "link to a folder outside", "broken link",
                "link to a link outside", "other file"]


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks")
@given(entries=st.lists(st.tuples(st.sampled_from(_ENTRY_KINDS), st.integers(0, 2)),
                        min_size=1, max_size=10))
def test_a_dataset_folder_lists_only_files_that_resolve_inside_it(tmp_path_factory, entries):
    """Symlinked files: any mix of images, links to images and folders inside and outside
    the dataset folder (at depth 0-2), broken links and links to links. list_image_files
    (behind Train, Train Style, Train Denoiser and IS_CHANGED) lists exactly the image files
    that resolve inside the folder, each once, and never one outside."""
    import os
    import warnings

    base = tmp_path_factory.mktemp("links")
    root, outside = base / "dataset", base / "outside"
    (outside / "dir").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(outside / "secret.png")
    Image.new("RGB", (4, 4)).save(outside / "dir" / "secret2.png")
    os.symlink(outside / "secret.png", outside / "hop.png")
    root.mkdir()
    Image.new("RGB", (4, 4)).save(root / "anchor.png")
    for i, (kind, depth) in enumerate(entries):
        folder = root.joinpath(*[f"d{j}" for j in range(depth)])
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"e{i}.png"
        if kind == "image":
            Image.new("RGB", (4, 4)).save(path)
        elif kind == "other file":
            (folder / f"e{i}.txt").write_text("x")
        elif kind == "link to an image inside":
            os.symlink(root / "anchor.png", path)
        elif kind == "link to an image outside":
            os.symlink(outside / "secret.png", path)
        elif kind == "link to a link outside":
            os.symlink(outside / "hop.png", path)
        elif kind == "link to a folder inside":
            os.symlink(root / "d0" if (root / "d0").exists() else root, folder / f"e{i}")
        elif kind == "link to a folder outside":
            os.symlink(outside / "dir", folder / f"e{i}")
        else:
            os.symlink(base / "missing.png", path)
    # The oracle: every regular file reached without following a folder link, that is an
    # image by name, exists, and whose real path is inside the root.
    real_root = os.path.realpath(root)
    expected = set()
    for top, _, files in os.walk(root):
        for name in files:
            p = os.path.join(top, name)
            if (os.path.splitext(name)[1] == ".png" and os.path.isfile(p)
                    and os.path.realpath(p).startswith(real_root + os.sep)):
                expected.add(p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        listed = gan_core.list_image_files(root)
    assert sorted(map(str, listed)) == sorted(expected)
    assert all(os.path.realpath(p).startswith(real_root + os.sep) for p in listed)
