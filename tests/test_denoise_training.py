"""The denoiser trainer (gan_core.train_denoiser), the unet_denoiser model and the
`train-denoise` command: learning, adversarial on/off, determinism, resume, cancel, NaN,
noise-level conditioning, previews."""
from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

import gan_core
from gan_core.cli import main
from gan_core.training import denoise_trainer as dt_module

pytestmark = pytest.mark.usefixtures("core_single_thread")

SIZE = 32
TINY_MODEL = {"width": 8, "depth": 2, "ndf": 8}


class InterruptProcessingException(Exception):
    """Stands in for comfy.model_management.InterruptProcessingException."""


@pytest.fixture(scope="module")
def data() -> gan_core.ImageDataset:
    return gan_core.open_dataset("builtin:mondrian", SIZE, count=16, seed=0)


def config(steps: int = 4, **overrides) -> gan_core.DenoiseTrainConfig:
    fields = dict(size=SIZE, noise="gaussian:25", steps=steps, batch=4, device="cpu",
                  preview_every=0, checkpoint_every=0, adv_weight=0.05, model=dict(TINY_MODEL))
    fields.update(overrides)
    return gan_core.DenoiseTrainConfig(**fields)


def _states_equal(a: gan_core.GANModel, b: gan_core.GANModel) -> bool:
    if a.modules.keys() != b.modules.keys():
        return False
    for role in a.modules:
        sa, sb = a.modules[role].state_dict(), b.modules[role].state_dict()
        if sa.keys() != sb.keys() or not all(torch.equal(sa[k], sb[k]) for k in sa):
            return False
    return True


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10.0 * math.log10(1.0 / float((a - b).pow(2).mean()))


# --------------------------------------------------------------------------- the model

def test_unet_denoiser_follows_the_denoise_protocol():
    spec = gan_core.archs.get_arch("unet_denoiser")
    assert spec.task == "denoise" and "unet_denoiser" in gan_core.list_archs("denoise")
    parts = spec.build(spec.config_cls(channels=1, width=4, depth=3, noise_level_input=True))
    g, d = parts["G"], parts["D"]
    assert (g.image_channels, g.takes_noise_level, g.size_multiple, g.min_size) == (1, True, 8, 8)
    assert d.cfg.input_nc == 2  # conditional: noisy + clean
    x = torch.rand(2, 2, 16, 24)
    assert g(x).shape == (2, 1, 16, 24)
    assert spec.build(spec.config_cls(conditional_d=False))["D"].cfg.input_nc == 3
    with pytest.raises(ValueError, match="channels"):
        spec.config_cls(channels=2)


# --------------------------------------------------------------------------- learning

@pytest.mark.slow
def test_short_training_lowers_the_loss_and_denoises_held_out_images():
    """A few seconds on built-in Mondrians with gaussian:25 must beat the noisy input on
    pictures the model never saw (another seed of the dataset)."""
    train_set = gan_core.open_dataset("builtin:mondrian", SIZE, count=64, seed=0)
    cfg = config(steps=120, batch=8, adv_weight=0.0, lr_g=1e-3, seed=0,
                 model={"width": 16, "depth": 2})
    model = gan_core.train_denoiser(cfg, train_set)
    rec = model.resume.history["loss_rec"]
    assert sum(rec[-10:]) / 10 < 0.85 * sum(rec[:10]) / 10, (rec[:10], rec[-10:])

    held_out = gan_core.make_builtin("mondrian", 6, 40, seed=123)  # any size: 40 px
    noisy = gan_core.degrade(held_out, "gaussian:25", seed=5)
    denoised = model.denoise(noisy)
    assert denoised.shape == noisy.shape
    before, after = _psnr(noisy, held_out), _psnr(denoised, held_out)
    assert after > before + 1.0, (before, after)


@pytest.mark.parametrize("adv", [0.0, 0.1])
def test_adversarial_weight_zero_and_positive(data, adv):
    trainer = dt_module.DenoiseTrainer(config(steps=3, adv_weight=adv, loss="charbonnier"), data)
    d_before = {k: v.clone() for k, v in trainer.D.state_dict().items()}
    model = trainer.run()
    hist = model.resume.history
    assert len(hist["loss_rec"]) == len(hist["psnr"]) == 3
    d_after = model.modules["D"].state_dict()
    d_moved = any(not torch.equal(d_before[k], d_after[k]) for k in d_before)
    if adv == 0.0:
        assert "loss_d" not in hist and "loss_adv" not in hist
        assert not d_moved  # plain regression: the discriminator is never stepped
    else:
        assert len(hist["loss_d"]) == len(hist["loss_adv"]) == 3
        assert d_moved
    assert all(math.isfinite(v) for vs in hist.values() for v in vs)
    assert model.task == "denoise" and model.training["adv_weight"] == adv


def test_same_seed_same_run_different_seed_different_run(data):
    opts = dict(noise="gaussian:5-50,jpeg:30-90@0.5", adv_weight=0.1)
    a = gan_core.train_denoiser(config(seed=1, **opts), data)
    b = gan_core.train_denoiser(config(seed=1, **opts), data)
    c = gan_core.train_denoiser(config(seed=2, **opts), data)
    assert a.resume.history == b.resume.history and _states_equal(a, b)
    assert a.resume.history["loss_rec"] != c.resume.history["loss_rec"]
    assert not _states_equal(a, c)


def test_training_does_not_touch_the_global_rng(data):
    torch.manual_seed(3)
    state = torch.get_rng_state()
    gan_core.train_denoiser(config(steps=2, preview_every=1), data)
    assert torch.equal(torch.get_rng_state(), state)


# --------------------------------------------------------------------------- resume, cancel, NaN

def test_resume_continues_the_same_loss_curve(tmp_path):
    # Larger dataset images than the crops (random crop positions), a noise range and the
    # noise-level input: every random stream must be restored.
    big = gan_core.open_dataset("builtin:blobs", 40, count=8, seed=0)
    opts = dict(noise="gaussian:5-50", adv_weight=0.1, seed=4, preview_every=2,
                model={**TINY_MODEL, "noise_level_input": True})
    straight = gan_core.train_denoiser(config(steps=6, **opts), big)
    path = tmp_path / "half.safetensors"
    gan_core.train_denoiser(config(steps=3, **opts), big, out=path)
    loaded = gan_core.load(path)
    assert loaded.resume.step == 3 and loaded.arch == "unet_denoiser"
    seen = []
    resumed = gan_core.train_denoiser(
        config(steps=6, **opts), big, out=path, resume=loaded,
        callbacks=gan_core.TrainCallbacks(on_step=lambda step, losses: seen.append(step)))
    assert seen == [4, 5, 6]
    assert resumed.resume.history == straight.resume.history
    assert _states_equal(resumed, straight)
    assert resumed.resume.ema_count == 6
    final = gan_core.load(path)
    noisy = gan_core.degrade(gan_core.make_builtin("blobs", 1, 24, seed=9), "gaussian:20", seed=1)
    assert torch.equal(final.denoise(noisy, sigma=20), straight.denoise(noisy, sigma=20))


def test_resume_refuses_another_arch(core_trained, data):
    _, path = core_trained  # a dcgan checkpoint
    # a GAN model: named as such (which trainer continues it), not a mismatch of sizes
    with pytest.raises(ValueError, match=r"it is a generate model \(dcgan\), which Train "
                                         r"Denoiser / `train-denoise` does not train"):
        gan_core.train_denoiser(config(), data, resume=gan_core.load(path))


def test_cancel_leaves_a_loadable_checkpoint_at_the_completed_step(data, tmp_path):
    path = tmp_path / "cancel.safetensors"
    done = []

    def check_stop():
        if len(done) == 3:
            raise InterruptProcessingException()

    callbacks = gan_core.TrainCallbacks(on_step=lambda step, losses: done.append(step),
                                        check_stop=check_stop)
    with pytest.raises(InterruptProcessingException):
        gan_core.train_denoiser(config(steps=10, seed=3), data, out=path, callbacks=callbacks)
    loaded = gan_core.load(path)
    assert loaded.resume.step == 3 == loaded.training["steps"]
    assert len(loaded.resume.history["loss_rec"]) == 3
    resumed = gan_core.train_denoiser(config(steps=5, seed=3), data, resume=loaded)
    straight = gan_core.train_denoiser(config(steps=5, seed=3), data)
    assert resumed.resume.history == straight.resume.history and _states_equal(resumed, straight)


@pytest.mark.parametrize("which", ["recon_loss", "d_loss"])
def test_non_finite_loss_names_the_step_and_keeps_the_checkpoint(data, tmp_path, monkeypatch,
                                                                 which):
    path = tmp_path / "nan.safetensors"
    real = getattr(dt_module, which)
    calls = []

    def poisoned(*args, **kwargs):
        calls.append(1)
        value = real(*args, **kwargs)
        return value * float("nan") if len(calls) == 5 else value

    monkeypatch.setattr(dt_module, which, poisoned)
    snapshot = {}

    def on_checkpoint(step, p):
        snapshot.update(step=step, data=path.read_bytes())

    with pytest.raises(gan_core.NonFiniteLossError, match="step 5") as info:
        gan_core.train_denoiser(config(steps=10, checkpoint_every=2), data, out=path,
                                callbacks=gan_core.TrainCallbacks(on_checkpoint=on_checkpoint))
    assert info.value.step == 5
    assert snapshot["step"] == 4 and path.read_bytes() == snapshot["data"]
    assert gan_core.load(path).resume.step == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.safetensors"]


# --------------------------------------------------------------------------- conditioning, previews

def test_noise_level_model_gets_the_sigma_map(data):
    cfg = config(steps=2, noise="gaussian:25", model={**TINY_MODEL, "noise_level_input": True})
    trainer = dt_module.DenoiseTrainer(cfg, data)
    inputs = []
    trainer.G.register_forward_pre_hook(lambda mod, args: inputs.append(args[0].detach().clone()))
    model = trainer.run()
    assert inputs and all(x.shape[1] == 4 for x in inputs)
    for x in inputs:
        torch.testing.assert_close(x[:, 3], torch.full_like(x[:, 3], 25 / 255))
    # a recipe with no Gaussian step has sigma 0
    trainer = dt_module.DenoiseTrainer(config(steps=1, noise="jpeg:30", model=cfg.model), data)
    inputs.clear()
    trainer.G.register_forward_pre_hook(lambda mod, args: inputs.append(args[0].detach().clone()))
    trainer.run()
    assert inputs[0].shape[1] == 4 and float(inputs[0][:, 3].abs().max()) == 0.0
    assert model.module.takes_noise_level
    out = model.denoise(torch.rand(1, 20, 28, 3), sigma=25)
    assert out.shape == (1, 20, 28, 3)


def test_preview_grid_shows_noisy_denoised_clean_triplets(data):
    grids = []
    cfg = config(steps=4, preview_every=2, preview_count=3)
    model = gan_core.train_denoiser(cfg, data, callbacks=gan_core.TrainCallbacks(
        on_preview=lambda step, grid: grids.append((step, grid))))
    assert [s for s, _ in grids] == [2, 4]
    grid = grids[-1][1]
    pad = 2
    assert grid.shape == (1, 3 * (SIZE + pad) + pad, 3 * (SIZE + pad) + pad, 3)
    clean = data.images[0].permute(1, 2, 0).float() / 255.0
    torch.testing.assert_close(grid[0, pad:pad + SIZE, 2 * (SIZE + pad) + pad:][:, :SIZE], clean,
                               atol=1e-6, rtol=0)
    noisy = grid[0, pad:pad + SIZE, pad:pad + SIZE]
    assert (noisy - clean).abs().mean() > 0.03  # the left column is the degraded crop
    assert model.training["noise"] == "gaussian:25"


def test_gray_model_and_config_validation(data):
    model = gan_core.train_denoiser(config(steps=2, channels=1), data)
    assert model.module.image_channels == 1
    assert model.denoise(torch.rand(1, 17, 19, 3)).shape == (1, 17, 19, 3)
    for bad in (dict(loss="l2"), dict(noise="gausian:25"), dict(adv_weight=-1.0),
                dict(arch="dcgan"), dict(steps=0)):
        with pytest.raises(ValueError):
            gan_core.DenoiseTrainConfig(**bad).validate()
    with pytest.raises(ValueError, match="multiple of 4"):
        gan_core.train_denoiser(config(size=30), gan_core.open_dataset("builtin:blobs", 30, count=2))
    with pytest.raises(ValueError, match="smaller than"):
        gan_core.train_denoiser(config(size=64), data)


def test_channels_last_trains_the_same_model_and_hands_back_contiguous_weights(data):
    on = gan_core.train_denoiser(config(steps=3, channels_last="on"), data)
    off = gan_core.train_denoiser(config(steps=3, channels_last="off"), data)
    for a, b in zip(on.resume.history["loss_rec"], off.resume.history["loss_rec"]):
        assert abs(a - b) < 1e-4
    assert all(p.is_contiguous() for m in on.modules.values() for p in m.parameters())
    with pytest.raises(ValueError, match="channels_last"):
        config(channels_last="yes").validate()


def test_public_architectures_train_as_plain_regression(data, tmp_path):
    for arch, model in (("dncnn", {"nc": 8, "nb": 3}), ("drunet", {"nc": (4, 8, 8, 8), "nb": 1})):
        cfg = config(steps=2, arch=arch, adv_weight=0.0, model=model)
        trained = gan_core.train_denoiser(cfg, data, out=tmp_path / f"{arch}.safetensors")
        loaded = gan_core.load(tmp_path / f"{arch}.safetensors")
        assert loaded.arch == arch and set(loaded.modules) == {"G", "G_ema"}
        assert loaded.module.image_channels == 3
        noisy = torch.rand(1, 20, 20, 3)
        torch.testing.assert_close(loaded.denoise(noisy, sigma=25), trained.denoise(noisy, sigma=25))
        with pytest.raises(ValueError, match="adv_weight 0"):
            gan_core.train_denoiser(config(steps=1, arch=arch, model=model), data)


def test_training_inside_inference_mode(tmp_path):
    """ComfyUI runs nodes under torch.inference_mode(); training and resuming still work."""
    path = tmp_path / "im.safetensors"
    with torch.inference_mode():
        data = gan_core.open_dataset("builtin:mondrian", SIZE, count=8, seed=0)
        gan_core.train_denoiser(config(steps=2), data, out=path)
        model = gan_core.train_denoiser(config(steps=3), data, out=path, resume=gan_core.load(path))
    assert model.resume.step == 3


# --------------------------------------------------------------------------- CLI

def test_cli_train_denoise_writes_a_checkpoint_and_a_preview(tmp_path, capsys):
    out = tmp_path / "d.safetensors"
    tiny = ["--size", "32", "--batch", "4", "--count", "8", "--threads", "1", "--width", "8",
            "--device", "cpu", "--noise", "gaussian:25", "--preview-every", "2"]
    threads = torch.get_num_threads()
    try:
        assert main(["train-denoise", "--steps", "3", "--out", str(out), *tiny]) == 0
        model = gan_core.load(out)
        assert model.arch == "unet_denoiser" and model.task == "denoise"
        assert model.training["steps"] == 3 and model.training["noise"] == "gaussian:25"
        assert model.training["dataset"] == "builtin:mondrian"
        # the README's recommended default: plain L1 with the noise-level input
        assert model.module.takes_noise_level and "loss_d" not in model.resume.history
        with Image.open(out.with_suffix(".png")) as img:
            assert img.mode == "RGB" and img.size == (3 * 34 + 2, 4 * 34 + 2)
        assert "saved" in capsys.readouterr().out
        # resume with the saved options, then a plain-regression run
        assert main(["train-denoise", "--steps", "5", "--resume", str(out), "--out", str(out),
                     "--threads", "1"]) == 0
        resumed = gan_core.load(out)
        assert resumed.resume.step == 5 and resumed.resume.train_config["noise"] == "gaussian:25"
        assert main(["train-denoise", "--steps", "2", "--adv-weight", "0", "--loss",
                     "charbonnier", "--out", str(tmp_path / "r.safetensors"), *tiny]) == 0
        assert "loss_d" not in gan_core.load(tmp_path / "r.safetensors").resume.history
        assert main(["train-denoise", "--out", str(out), *tiny, "--noise", "gausian:25"]) == 2
        assert "gausian" in capsys.readouterr().err
    finally:
        torch.set_num_threads(threads)


def test_cli_train_denoise_ctrl_c_saves_the_completed_step(tmp_path, monkeypatch, capsys):
    """The first Ctrl-C stops after the current step: exit code 130 and a checkpoint that
    holds the completed steps (the SIGINT handler's flag is simulated after two steps)."""
    import gan_core.cli as cli

    polls = []

    def requested(self):
        polls.append(1)
        if len(polls) > 2:
            self.pressed = True
        return self.pressed

    monkeypatch.setattr(cli.runner.StopOnCtrlC, "requested", requested)
    out = tmp_path / "c.safetensors"
    threads = torch.get_num_threads()
    try:
        rc = main(["train-denoise", "--steps", "20", "--out", str(out), "--size", "32", "--batch",
                   "2", "--count", "4", "--width", "4", "--threads", "1", "--device", "cpu"])
    finally:
        torch.set_num_threads(threads)
    assert rc == 130 and "--resume" in capsys.readouterr().err
    assert gan_core.load(out).resume.step == 2
