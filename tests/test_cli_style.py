"""`python -m gan_core stylize`: files and folders in, one PNG per input out."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

import gan_core
from gan_core.cli import main
from gan_core.archs import get_arch


@pytest.fixture
def candy(tmp_path):
    spec = get_arch("transformer_net")
    torch.manual_seed(0)
    path = tmp_path / "candy.pth"
    torch.save(spec.build(spec.config_cls())["G"].state_dict(), path)
    return path


def test_stylize_writes_one_png_per_input_at_the_input_size(tmp_path, candy):
    src = tmp_path / "in"
    src.mkdir()
    Image.new("RGB", (41, 30), (200, 40, 40)).save(src / "red.png")
    Image.new("RGB", (16, 16), (20, 40, 200)).save(tmp_path / "blue.jpg")
    out = tmp_path / "out"
    assert main(["stylize", str(candy), str(src), str(tmp_path / "blue.jpg"), "--out", str(out),
                 "--strength", "0.7"]) == 0
    with Image.open(out / "red.png") as a, Image.open(out / "blue.png") as b:
        assert a.size == (41, 30) and b.size == (16, 16)
    direct = gan_core.load(candy).stylize(gan_core.read_image(src / "red.png")[None], strength=0.7)
    written = gan_core.read_image(out / "red.png")
    assert (written - direct[0]).abs().max() <= 1 / 255 + 1e-6


def test_stylize_refuses_a_generator_and_missing_inputs(tmp_path, candy, capsys):
    model = gan_core.GANModel("dcgan", get_arch("dcgan").config_cls(image_size=32),
                              get_arch("dcgan").build(get_arch("dcgan").config_cls(image_size=32)))
    gen = gan_core.save(model, tmp_path / "g.safetensors")
    assert main(["stylize", str(gen), str(candy), "--out", str(tmp_path / "o")]) == 2
    assert "not a style model" in capsys.readouterr().err
    assert main(["stylize", str(candy), str(tmp_path / "nope.png"), "--out", str(tmp_path / "o")]) == 2
    assert "neither an image file nor a folder" in capsys.readouterr().err


def test_denoise_command_writes_denoised_pngs(tmp_path):
    spec = get_arch("dncnn")
    torch.manual_seed(0)
    path = tmp_path / "dncnn.pth"
    torch.save(spec.build(spec.config_cls(in_nc=3, out_nc=3, nc=8, nb=4))["G"].state_dict(), path)
    Image.new("RGB", (23, 17), (120, 130, 140)).save(tmp_path / "n.png")
    assert main(["denoise", str(path), str(tmp_path / "n.png"), "--out", str(tmp_path / "o"),
                 "--sigma", "25", "--tile", "16"]) == 0
    with Image.open(tmp_path / "o" / "n.png") as img:
        assert img.size == (23, 17)
