"""Style training (gan_core.train_style, a CycleGAN between content and style crops): the crop
sampler, the image pool, LSGAN, learning, resume, cancel, NaN, both directions in the
checkpoint, and the `train-style` / `stylize --direction` commands."""
from __future__ import annotations

import json
import warnings

import pytest
import torch
from PIL import Image

import gan_core
from gan_core.cli import main
from gan_core.data.crops import FEW_SCALE, MANY_SCALE, CropSource
from gan_core import losses
from gan_core.training.pool import ImagePool
from gan_core.training.style_trainer import StyleTrainer

pytestmark = pytest.mark.usefixtures("core_single_thread")

SIZE = 32
TINY_MODEL = {"ngf": 4, "ndf": 8, "n_blocks": 1}


@pytest.fixture(scope="module")
def sources() -> tuple[CropSource, CropSource]:
    content = gan_core.open_crop_source("builtin:blobs", max_side=64, count=8, what="content")
    style = gan_core.open_crop_source("builtin:painting", max_side=96, what="style")
    return content, style


def config(steps: int = 4, **overrides) -> gan_core.StyleTrainConfig:
    fields = dict(size=SIZE, steps=steps, batch=2, device="cpu", preview_every=0,
                  checkpoint_every=0, preview_count=2, model=dict(TINY_MODEL))
    fields.update(overrides)
    return gan_core.StyleTrainConfig(**fields)


def _states_equal(a: gan_core.GANModel, b: gan_core.GANModel) -> bool:
    if a.modules.keys() != b.modules.keys():
        return False
    for role in a.modules:
        sa, sb = a.modules[role].state_dict(), b.modules[role].state_dict()
        if sa.keys() != sb.keys() or not all(torch.equal(sa[k], sb[k]) for k in sa):
            return False
    return True


# --------------------------------------------------------------------------- crops

def test_crops_are_seeded_in_range_and_sized():
    pic = torch.arange(3 * 40 * 90, dtype=torch.float32).reshape(3, 40, 90)
    pic = (pic / pic.max() * 255).round().to(torch.uint8)
    src = CropSource([pic], "ramp", scale=(0.5, 1.0))
    a = src.sample(5, 16, torch.Generator().manual_seed(3))
    b = src.sample(5, 16, torch.Generator().manual_seed(3))
    c = src.sample(5, 16, torch.Generator().manual_seed(4))
    assert a.shape == (5, 3, 16, 16) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert -1.0 <= a.min() and a.max() <= 1.0
    views = src.views(4, 24)
    assert views.shape == (1, 3, 24, 24)  # one picture, its centre square


def test_crop_scale_bounds_the_crop_side():
    # A picture whose columns are numbered: a crop's column span shows its side in pixels.
    cols = torch.arange(200).view(1, 1, 200).expand(3, 200, 200).to(torch.uint8)
    g = torch.Generator().manual_seed(0)
    for scale in ((0.1, 0.1), (0.9, 0.9)):
        src = CropSource([cols], "cols", scale=scale, flip=False)
        x = (src.sample(8, 200, g) + 1.0) * 127.5  # no resampling for the 0.9 case's span check
        span = x[:, 0, 0, -1] - x[:, 0, 0, 0]
        side = scale[0] * 200
        assert torch.all((span - side).abs() <= 3), (scale, span)


def test_crop_source_validation():
    pic = torch.zeros(3, 8, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match="scale"):
        CropSource([pic], "x", scale=(0.9, 0.5))
    with pytest.raises(ValueError, match="uint8"):
        CropSource([pic.float()], "x", scale=(0.5, 1.0))
    with pytest.raises(gan_core.DatasetError, match="no pictures"):
        CropSource([], "empty", scale=(0.5, 1.0))


def test_open_crop_source_reads_files_folders_and_builtins(tmp_path):
    Image.new("RGB", (300, 120), (200, 30, 10)).save(tmp_path / "canvas.png")
    one = gan_core.open_crop_source(tmp_path / "canvas.png", max_side=150)
    assert len(one) == 1 and tuple(one.pictures[0].shape) == (3, 60, 150)  # aspect kept, capped
    assert one.scale == FEW_SCALE  # one painting: crops of its parts
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(5):
        Image.new("RGB", (40 + i, 50), (i * 40, 0, 0)).save(folder / f"{i}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        many = gan_core.open_crop_source(folder)
    assert len(many) == 5 and many.scale == MANY_SCALE
    assert any("broken.png" in str(w.message) for w in caught)
    images = torch.rand(2, 20, 30, 4)  # RGBA IMAGE batch
    from_batch = gan_core.crops_from_images(images)
    assert len(from_batch) == 2 and from_batch.pictures[0].shape == (3, 20, 30)
    with pytest.raises(gan_core.DatasetError, match="--style.*neither"):
        gan_core.open_crop_source(tmp_path / "missing", what="--style")
    with pytest.raises(gan_core.DatasetError, match="--style.*unknown built-in"):
        gan_core.open_crop_source("builtin:nope", what="--style")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(gan_core.DatasetError, match="not an image file"):
        gan_core.open_crop_source(tmp_path / "notes.txt")


# --------------------------------------------------------------------------- pool and losses

def test_image_pool_fills_then_swaps_and_round_trips():
    pool = ImagePool(3)
    g = torch.Generator().manual_seed(0)
    first = torch.arange(3.0).view(3, 1, 1, 1).expand(3, 1, 2, 2)
    assert torch.equal(pool.query(first, g), first)  # filling: the new images come back
    later = torch.full((40, 1, 2, 2), 9.0)
    out = pool.query(later, g)
    old = (out[:, 0, 0, 0] < 9).sum().item()
    assert 0 < old <= 3  # some swaps for stored images, at most one per stored image
    state = pool.state()
    assert state.shape == (3, 1, 2, 2)
    other = ImagePool(3)
    other.load(state, torch.device("cpu"))
    assert torch.equal(other.state(), state)
    with pytest.raises(ValueError, match="more than its size"):
        ImagePool(2).load(state, torch.device("cpu"))
    assert torch.equal(ImagePool(0).query(later, g), later)


def test_lsgan_losses():
    real, fake = torch.tensor([1.0, 0.5]), torch.tensor([0.0, 0.5])
    assert losses.d_loss("lsgan", real, fake).item() == pytest.approx(0.5 * (0.125 + 0.125))
    assert losses.g_loss("lsgan", fake).item() == pytest.approx((1.0 + 0.25) / 2)
    assert losses.d_loss("lsgan", torch.ones(3), torch.zeros(3)).item() == 0.0


def test_style_config_validation():
    assert config().validate().gan_loss == "lsgan"
    for bad, match in (({"size": 30}, "multiple of 4"), ({"arch": "dcgan"}, "cyclegan_resnet"),
                       ({"decay_start": 1.5}, "decay_start"), ({"pool_size": -1}, "pool_size"),
                       ({"cycle_weight": -1.0}, "cycle_weight"), ({"augment": "zoom"}, "zoom")):
        with pytest.raises(ValueError, match=match):
            config(**bad).validate()


# --------------------------------------------------------------------------- training

@pytest.mark.slow
def test_training_lowers_the_cycle_loss_and_keeps_both_directions(sources, tmp_path):
    content, style = sources
    path = tmp_path / "style.safetensors"
    model = gan_core.train_style(config(steps=60, lr=2e-3, decay_start=1.0,
                                        model={**TINY_MODEL, "ngf": 8}), content, style, out=path)
    cyc = model.resume.history["loss_cycle"]
    assert len(cyc) == 60 and sum(cyc[-20:]) / 20 < 0.85 * sum(cyc[:10]) / 10
    assert set(model.resume.history["lr"]) == {2e-3}
    assert set(model.modules) == {"G", "G_BA", "D", "D_A"} and model.directions == gan_core.DIRECTIONS

    loaded = gan_core.load(path)
    assert _states_equal(model, loaded) and loaded.task == "style"
    assert loaded.training["style"] == "builtin:painting" and loaded.resume.step == 60
    img = torch.rand(1, 20, 28, 3)
    ab, ba = loaded.stylize(img), loaded.stylize(img, direction="B->A")
    assert ab.shape == ba.shape == img.shape and not torch.allclose(ab, ba)
    with torch.no_grad():  # B->A is the G_BA network on [-1, 1] (20 x 28 needs no padding)
        ref = (loaded.modules["G_BA"](img.permute(0, 3, 1, 2) * 2 - 1) + 1) / 2
    torch.testing.assert_close(ba, ref.clamp(0, 1).permute(0, 2, 3, 1), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="direction must be"):
        loaded.stylize(img, direction="sideways")

    # An inference-only file keeps both generators, nothing else.
    small = tmp_path / "small.safetensors"
    gan_core.save(loaded, small, include_resume=False)
    slim = gan_core.load(small)
    assert set(slim.modules) == {"G", "G_BA"} and slim.resume is None
    torch.testing.assert_close(slim.stylize(img, direction="B->A"), ba)


def test_learning_rate_holds_then_falls_linearly_to_zero(sources):
    trainer = StyleTrainer(config(steps=10, lr=1e-3, decay_start=0.4), *sources)
    lrs = [trainer.learning_rate(s) for s in range(10)]
    assert lrs[:4] == [1e-3] * 4
    steps_down = [a - b for a, b in zip(lrs[3:], lrs[4:])]
    assert all(d == pytest.approx(steps_down[0]) and d > 0 for d in steps_down)
    assert 0 < lrs[-1] < 2e-4


def test_one_generator_models_name_the_missing_direction():
    spec = gan_core.archs.get_arch("cyclegan_resnet")
    cfg = spec.config_cls(ngf=4, n_blocks=1)
    model = gan_core.GANModel("cyclegan_resnet", cfg, {"G": spec.build(cfg)["G"]})
    assert model.directions == ("A->B",)
    with pytest.raises(ValueError, match="one generator"):
        model.stylize(torch.rand(1, 16, 16, 3), direction="B->A")


@pytest.mark.slow
def test_same_seed_same_run_and_resume_continues_exactly(sources, tmp_path):
    content, style = sources
    cfg = config(steps=6, pool_size=2, augment="color,translation")
    straight = gan_core.train_style(cfg, content, style)
    again = gan_core.train_style(cfg, content, style)
    assert straight.resume.history == again.resume.history and _states_equal(straight, again)

    # Stopped (as a cancel does) after 3 of the 6 steps: the lr schedule is the full run's.
    half = tmp_path / "half.safetensors"
    done = []
    gan_core.train_style(cfg, content, style, out=half, callbacks=gan_core.TrainCallbacks(
        on_step=lambda s, l: done.append(s), check_stop=lambda: len(done) >= 3))
    on_disk = gan_core.load(half)
    assert on_disk.resume.buffers["pool_fake_B"].shape[0] == 2  # the pools travel along
    resumed = gan_core.train_style(cfg, content, style, resume=on_disk)
    assert resumed.resume.history == straight.resume.history
    assert _states_equal(resumed, straight)


def test_cancel_saves_first_and_nan_leaves_the_file(sources, tmp_path):
    content, style = sources
    path = tmp_path / "run.safetensors"
    seen = []

    def stop():
        return len(seen) >= 3

    cb = gan_core.TrainCallbacks(on_step=lambda s, l: seen.append(s), check_stop=stop)
    model = gan_core.train_style(config(steps=50), content, style, out=path, callbacks=cb)
    assert model.resume.step == 3 and gan_core.load(path).resume.step == 3
    before = path.read_bytes()

    trainer = StyleTrainer(config(steps=50), content, style, out=path,
                           resume=gan_core.load(path))
    with torch.no_grad():
        trainer.nets["G"].model[1].weight.fill_(float("nan"))
    with pytest.raises(gan_core.NonFiniteLossError, match="step 4"):
        trainer.run()
    assert path.read_bytes() == before


def test_resume_refuses_other_models(sources, core_trained):
    content, style = sources
    with pytest.raises(ValueError, match="cannot resume"):
        gan_core.train_style(config(), content, style, resume=core_trained[0])


def test_preview_pairs_content_and_stylized(sources):
    content, style = sources
    grids = []
    cb = gan_core.TrainCallbacks(on_preview=lambda step, grid: grids.append((step, grid)))
    gan_core.train_style(config(steps=2, preview_every=1, preview_count=3), content, style,
                         callbacks=cb)
    assert [s for s, _ in grids] == [1, 2]
    assert grids[-1][1].shape == (1, 3 * (SIZE + 2) + 2, 2 * (SIZE + 2) + 2, 3)


# --------------------------------------------------------------------------- CLI

@pytest.mark.slow
def test_train_style_and_stylize_commands(tmp_path, capsys):
    out = tmp_path / "cli_style.safetensors"
    painting = tmp_path / "painting.png"
    gan_core.save_image(gan_core.make_builtin("painting", 1, 80), painting)
    args = ["train-style", "--content", "builtin:rings", "--style", str(painting), "--size", "32",
            "--steps", "3", "--ngf", "4", "--ndf", "8", "--blocks", "1", "--content-count", "4",
            "--out", str(out), "--threads", "1"]
    assert main(args) == 0
    assert "saved" in capsys.readouterr().out and out.with_suffix(".png").exists()
    model = gan_core.load(out)
    assert model.resume.step == 3 and model.config.ngf == 4 and model.config.n_blocks == 1
    assert model.training["content"] == "builtin:rings"
    assert model.training["style"] == "painting.png"

    # Resume finds the painting again (the run recorded it) and takes the rest from the
    # checkpoint, the output file included; once the painting is gone it says to give --style.
    assert main(["train-style", "--resume", str(out), "--steps", "4", "--threads", "1"]) == 0
    assert gan_core.load(out).resume.step == 4
    moved = painting.with_name("moved.png")
    painting.rename(moved)
    assert main(["train-style", "--resume", str(out), "--steps", "5"]) == 2
    assert "give --style again" in capsys.readouterr().err
    assert main(["train-style", "--resume", str(out), "--style", str(moved), "--steps", "5",
                 "--out", str(out), "--threads", "1"]) == 0
    assert gan_core.load(out).resume.step == 5
    moved.rename(painting)

    photo = tmp_path / "in" / "photo.png"
    photo.parent.mkdir()
    Image.new("RGB", (30, 22), (10, 120, 200)).save(photo)
    for direction in ("A->B", "B->A"):
        dest = tmp_path / direction.replace("->", "_")
        assert main(["stylize", str(out), str(photo), "--out", str(dest),
                     "--direction", direction]) == 0
        assert Image.open(dest / "photo.png").size == (30, 22)
    info = json.loads(_run_info(out, capsys))
    assert info["training"]["directions"]["B->A"] == "style -> content"


def _run_info(path, capsys) -> str:
    capsys.readouterr()
    assert main(["info", str(path)]) == 0
    return capsys.readouterr().out
