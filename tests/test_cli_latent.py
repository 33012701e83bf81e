"""`python -m gan_core walk` and `invert` on a tiny random-weight DCGAN saved with gan_core.save."""
from __future__ import annotations

import signal

import pytest
from PIL import Image

import gan_core
from gan_core.cli import main

pytestmark = pytest.mark.usefixtures("core_single_thread")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, latent_models):
    path = tmp_path_factory.mktemp("cli_latent") / "g.safetensors"
    gan_core.save(latent_models.varied_dcgan(), path)
    return path


def test_walk_writes_a_looping_gif(tmp_path, model_file, capsys):
    out = tmp_path / "anim" / "walk.gif"
    assert main(["walk", str(model_file), "--seeds", "1,5,9", "--frames", "12", "--out", str(out),
                 "--fps", "10", "--easing", "ease_in_out"]) == 0
    with Image.open(out) as gif:
        assert gif.format == "GIF" and gif.n_frames == 12 and gif.size == (32, 32)
        assert gif.info.get("loop") == 0 and gif.info.get("duration") == 100  # GIF counts in 10 ms
    assert "12 frames at 10 fps" in capsys.readouterr().out


def test_walk_writes_png_frames_to_a_folder(tmp_path, model_file):
    out = tmp_path / "frames"
    assert main(["walk", str(model_file), "--seeds", "3,4", "--frames", "5", "--out", str(out),
                 "--no-loop", "--mode", "linear"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"frame_{i:04d}.png" for i in range(5)]
    model = gan_core.load(model_file)
    first = gan_core.read_image(out / "frame_0000.png")
    last = gan_core.read_image(out / "frame_0004.png")
    assert (first - model.generate(3)[0]).abs().max() <= 1 / 255 + 1e-6  # 8-bit rounding
    assert (last - model.generate(4)[0]).abs().max() <= 1 / 255 + 1e-6
    assert main(["walk", str(model_file), "--out", str(tmp_path / "w.png")]) == 2


def test_invert_writes_reconstruction_latent_and_variations(tmp_path, model_file, capsys):
    model = gan_core.load(model_file)
    picture = tmp_path / "target.png"
    gan_core.save_image(model.generate(77)[0], picture)
    out = tmp_path / "inv"
    assert main(["invert", str(model_file), str(picture), "--steps", "40", "--out", str(out),
                 "--variations", "3"]) == 0
    printed = capsys.readouterr().out
    assert "PSNR" in printed and "after 40 steps" in printed
    psnr = float(printed.split("PSNR ")[1].split(" dB")[0])
    assert psnr > 25  # from about 12 dB at the best seeded start
    for name in ("reconstruction.png", "target.png", "latent.safetensors", "variation_00.png",
                 "variation_02.png"):
        assert (out / name).is_file(), name
    latent = gan_core.GANLatent.load(out / "latent.safetensors")
    assert latent.space == "z" and latent.arch == "dcgan" and latent.tensor.shape == (1, 16)
    again = gan_core.generate_from_latent(model, latent)
    written = gan_core.read_image(out / "reconstruction.png")
    assert (written - again[0]).abs().max() <= 1 / 255 + 1e-6


def test_invert_stops_cleanly_on_ctrl_c(tmp_path, model_file, monkeypatch, capsys):
    """A Ctrl-C (a real SIGINT, raised on the third progress update) stops after the current
    step; the best latent so far is still written and the exit code is 130."""
    import tqdm

    original = tqdm.tqdm.update
    calls = []

    def update(self, n=1):
        calls.append(n)
        if len(calls) == 3:
            signal.raise_signal(signal.SIGINT)
        return original(self, n)

    monkeypatch.setattr(tqdm.tqdm, "update", update)
    picture = tmp_path / "p.png"
    Image.new("RGB", (50, 40), (200, 60, 30)).save(picture)
    out = tmp_path / "inv"
    assert main(["invert", str(model_file), str(picture), "--steps", "500", "--out", str(out),
                 "--variations", "0"]) == 130
    err = capsys.readouterr()
    assert "after 3 steps" in err.out and "stopped early" in err.err
    assert (out / "latent.safetensors").is_file() and (out / "reconstruction.png").is_file()


def test_invert_refuses_a_style_model(tmp_path):
    from gan_core.archs import get_arch

    spec = get_arch("transformer_net")
    style = gan_core.GANModel("transformer_net", spec.config_cls(), spec.build(spec.config_cls()))
    path = gan_core.save(style, tmp_path / "s.safetensors")
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    assert main(["invert", str(path), str(tmp_path / "x.png"), "--out", str(tmp_path / "o")]) == 2


def test_invert_refuses_a_bad_strength_before_the_search(tmp_path, model_file, capsys):
    """--strength is checked up front: not after minutes of inversion with half the files written."""
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    out = tmp_path / "o"
    assert main(["invert", str(model_file), str(tmp_path / "x.png"), "--steps", "5",
                 "--out", str(out), "--strength", "1.5"]) == 2
    assert "strength" in capsys.readouterr().err and not out.exists()
    assert main(["walk", str(model_file), "--out", str(tmp_path / "w.gif"),
                 "--truncation", "3"]) == 2
    assert not (tmp_path / "w.gif").exists()
