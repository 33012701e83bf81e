"""NVIDIA network pickles used everywhere, as a user does: in models/gan, through the nodes
(Load lists and reads the .pkl, Generate with a class and a camera, Latent Walk with a camera
path, Invert, Generate From Latent, Style Mix) and the command line (info, convert with a
round trip that gives identical outputs, walk, invert). Tiny stand-in pickles written by the
tests (tests/nvidia_models.py), real tensor maths."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

if str(Path(__file__).resolve().parent) not in sys.path:  # the test helpers beside this file
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from nvidia_models import write_tiny_stylegan2_ada, write_tiny_stylegan3  # noqa: E402

import gan_core  # noqa: E402
from gan_core.cli import main as cli  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def gan_dir(node_env, tmp_path):
    fp, _, _ = node_env
    folder = Path(fp.get_folder_paths("gan")[0])
    folder.mkdir(parents=True, exist_ok=True)
    write_tiny_stylegan3(folder / "sg3-conditional.pkl", c_dim=3, seed=5, margin_size=10)
    write_tiny_stylegan2_ada(folder / "network-snapshot-000120.pkl", seed=6)
    return folder


def run(pack, node_id, **inputs):
    cls = pack.nodes.node_classes()[node_id]
    with torch.inference_mode():
        return cls().EXECUTE_NORMALIZED(**inputs)


def load(pack, name):
    return run(pack, "GANAtelierLoadModel", model_name=name)


def test_the_load_node_lists_and_reads_pickles(gan_dir, pack):
    assert {"sg3-conditional.pkl", "network-snapshot-000120.pkl"} <= set(
        pack.nodes.bridge.model_names())
    model, info = load(pack, "sg3-conditional.pkl")
    info = json.loads(info)
    assert model.arch == "stylegan3" and info["arch"] == "stylegan3"
    assert info["generator"] == {"resolution": 32, "z_dim": 16, "w_dim": 16, "num_ws": 6,
                                 "classes": 3, "camera": True, "seeds": "numpy"}
    assert info["training"]["augment_p"] == pytest.approx(0.3)
    assert "python -m gan_core convert sg3-conditional.pkl sg3-conditional.safetensors" in info["convert"]


def test_generate_takes_a_class_and_a_camera(gan_dir, pack):
    model, _ = load(pack, "sg3-conditional.pkl")
    base = dict(model=model, seed=7, count=2, truncation=0.7)
    by_class = [run(pack, "GANAtelierGenerate", **base, class_index=c)[0] for c in range(3)]
    assert all(img.shape == (2, 32, 32, 3) for img in by_class)
    assert not torch.equal(by_class[0], by_class[1])  # the class steers the picture
    # node == library: image i is seed + i, NVIDIA's seed convention, class 1
    torch.testing.assert_close(by_class[1], model.generate([7, 8], truncation=0.7, class_index=1))
    with pytest.raises(ValueError, match=r"class_index: this stylegan3 model is conditional"):
        run(pack, "GANAtelierGenerate", **base)
    with pytest.raises(ValueError, match=r"class_index 3 is out of range.*0\.\.2"):
        run(pack, "GANAtelierGenerate", **base, class_index=3)
    # a whole-pixel pan moves the picture by that many pixels
    k = 2
    (moved,) = run(pack, "GANAtelierGenerate", **base, class_index=1, camera_x=k / 32)
    torch.testing.assert_close(moved[:, :, k:], by_class[1][:, :, :-k], atol=1e-4, rtol=0)
    # StyleGAN2-ADA has no camera: refused, not ignored
    plain, _ = load(pack, "network-snapshot-000120.pkl")
    with pytest.raises(ValueError, match="has no camera"):
        run(pack, "GANAtelierGenerate", model=plain, seed=0, count=1, truncation=1.0,
            camera_rotate=10.0)
    with pytest.raises(ValueError, match="unconditional"):
        run(pack, "GANAtelierGenerate", model=plain, seed=0, count=1, truncation=1.0,
            class_index=0)


def test_a_walk_pans_the_camera_and_loops_seamlessly(gan_dir, pack):
    model, _ = load(pack, "sg3-conditional.pkl")
    walk = dict(model=model, seeds="3,9", frames=8, mode="auto", easing="linear", loop=True,
                truncation=1.0, class_index=2)
    still, fps = run(pack, "GANAtelierLatentWalk", **walk)
    panned, _ = run(pack, "GANAtelierLatentWalk", **walk, camera_pan_x=0.25, camera_rotate=20.0)
    assert panned.shape == still.shape == (8, 32, 32, 3) and fps > 0
    # frame 0 is seed 3's picture, the camera still at home; later frames have moved
    first = model.generate([3], class_index=2)
    torch.testing.assert_close(panned[:1], first, atol=1e-5, rtol=0)
    torch.testing.assert_close(still[:1], first, atol=1e-5, rtol=0)
    assert float((panned[4] - still[4]).abs().mean()) > 0.02
    # the camera path of a loop goes out and back: frames k and 8-k share a camera
    path = gan_core.latent.paths.camera_path(8, True, (0.25, 0.0), 20.0)
    torch.testing.assert_close(path[1], path[7]) and torch.testing.assert_close(path[0],
                                                                                torch.zeros(3))
    open_path = gan_core.latent.paths.camera_path(8, False, (0.25, 0.0), 20.0)
    torch.testing.assert_close(open_path[-1], torch.tensor([0.25, 0.0, 20.0]))
    plain, _ = load(pack, "network-snapshot-000120.pkl")
    with pytest.raises(ValueError, match="has no camera"):
        run(pack, "GANAtelierLatentWalk", **{**walk, "model": plain, "class_index": -1},
            camera_pan_y=0.1)


@pytest.mark.parametrize("name,class_index", [("network-snapshot-000120.pkl", -1),
                                              ("sg3-conditional.pkl", 1)])
def test_invert_generate_from_latent_and_style_mix(gan_dir, pack, name, class_index):
    model, _ = load(pack, name)
    target = model.generate([11], class_index=None if class_index < 0 else class_index)
    latent, recon, psnr = run(pack, "GANAtelierInvertImage", model=model, image=target,
                              steps=4, space="w+", seed=0, learning_rate=0.05,
                              class_index=class_index)
    assert latent.space == "w+" and recon.shape == (1, 32, 32, 3) and psnr > 5
    (again,) = run(pack, "GANAtelierGenerateFromLatent", model=model, latent=latent, count=3,
                   variation_strength=0.2, seed=0, truncation=1.0, class_index=class_index)
    assert again.shape == (3, 32, 32, 3)
    (mixed,) = run(pack, "GANAtelierStyleMix", model=model, seed=2, mix_seed=5, layers="coarse",
                   truncation=1.0, class_index=class_index)
    (plain,) = run(pack, "GANAtelierGenerate", model=model, seed=2, count=1, truncation=1.0,
                   class_index=class_index)
    assert mixed.shape == (1, 32, 32, 3) and not torch.equal(mixed, plain)


def test_convert_writes_our_format_with_identical_outputs(gan_dir, tmp_path, capsys):
    src = gan_dir / "sg3-conditional.pkl"
    out = tmp_path / "sg3.safetensors"
    assert cli(["convert", str(src), str(out)]) == 0
    assert "reads back identical" in capsys.readouterr().out
    original, converted = gan_core.load(src), gan_core.load(out)
    assert set(converted.modules) == set(original.modules) == {"G", "G_ema", "D"}
    for camera in (None, (0.1, -0.05, 15.0)):
        torch.testing.assert_close(
            converted.generate([0, 1, 2], truncation=0.6, class_index=2, camera=camera),
            original.generate([0, 1, 2], truncation=0.6, class_index=2, camera=camera),
            atol=0, rtol=0)
    torch.testing.assert_close(gan_core.LatentSpace(converted, class_index=0).mean_w(),
                               gan_core.LatentSpace(original, class_index=0).mean_w())
    assert converted.training["augment_p"] == pytest.approx(0.3)
    # never over a file, never onto itself
    assert cli(["convert", str(src), str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_cli_info_walk_and_invert_read_pickles(gan_dir, tmp_path, capsys):
    src = gan_dir / "network-snapshot-000120.pkl"
    assert cli(["info", str(src)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["arch"] == "stylegan2_ada" and info["generator"]["num_ws"] > 2
    assert info["training"]["augment_p"] == pytest.approx(0.125)
    assert "training_set_kwargs" in info["training"] and "convert" in info
    gif = tmp_path / "walk.gif"
    assert cli(["walk", str(src), "--seeds", "1,2", "--frames", "4", "--out", str(gif)]) == 0
    assert gif.is_file()
    target = tmp_path / "target.png"
    from PIL import Image

    Image.fromarray((gan_core.load(src).generate([4])[0].numpy() * 255).astype("uint8")).save(target)
    assert cli(["invert", str(src), str(target), "--steps", "3", "--out",
                str(tmp_path / "inverted")]) == 0
    assert (tmp_path / "inverted").is_dir() and any((tmp_path / "inverted").iterdir())
    # a conditional StyleGAN3: the class and a camera pan on the command line
    sg3 = gan_dir / "sg3-conditional.pkl"
    frames = tmp_path / "frames"
    assert cli(["walk", str(sg3), "--seeds", "1,2", "--frames", "4", "--class", "1",
                "--pan-x", "0.2", "--rotate", "10", "--out", str(frames)]) == 0
    assert len(list(frames.glob("frame_*.png"))) == 4
    assert cli(["walk", str(sg3), "--seeds", "1,2", "--frames", "4", "--out",
                str(tmp_path / "x.gif")]) == 2
    assert "conditional" in capsys.readouterr().err
    assert cli(["invert", str(sg3), str(target), "--steps", "2", "--class", "2",
                "--variations", "1", "--out", str(tmp_path / "inv3")]) == 0
