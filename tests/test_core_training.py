"""The trainer: determinism, learning, resume, cancel, non-finite losses, callbacks."""
from __future__ import annotations

import math

import pytest
import torch

import gan_core
from gan_core.model import GANModel
from gan_core.training import objective as objective_module
from gan_core.training import trainer as trainer_module

pytestmark = pytest.mark.usefixtures("core_single_thread")

ROLES = ("G", "G_ema", "D")


class InterruptProcessingException(Exception):
    """Stands in for comfy.model_management.InterruptProcessingException."""


def _weights_equal(a: GANModel, b: GANModel) -> bool:
    for role in ROLES:
        sa, sb = a.modules[role].state_dict(), b.modules[role].state_dict()
        if sa.keys() != sb.keys() or not all(torch.equal(sa[k], sb[k]) for k in sa):
            return False
    return True


def _history_close(a: dict[str, list[float]], b: dict[str, list[float]], tol: float = 1e-6) -> bool:
    return a.keys() == b.keys() and all(
        len(a[k]) == len(b[k]) and all(abs(x - y) <= tol for x, y in zip(a[k], b[k])) for k in a)


# --------------------------------------------------------------------------- determinism

def test_same_seed_same_run_different_seed_different_run(core_dataset, core_config):
    cfg = dict(steps=4, augment="color,translation,cutout", r1_gamma=1.0, r1_every=2)
    a = gan_core.train(core_config(seed=1, **cfg), core_dataset)
    b = gan_core.train(core_config(seed=1, **cfg), core_dataset)
    c = gan_core.train(core_config(seed=2, **cfg), core_dataset)
    assert a.resume.history == b.resume.history
    assert len(a.resume.history["loss_d"]) == 4 and len(a.resume.history["r1"]) == 2
    assert _weights_equal(a, b)
    assert torch.equal(a.generate("0-3"), b.generate("0-3"))
    assert a.resume.history["loss_d"] != c.resume.history["loss_d"]
    assert not _weights_equal(a, c)


def test_training_does_not_touch_the_global_rng(core_dataset, core_config):
    torch.manual_seed(99)
    state = torch.get_rng_state()
    gan_core.train(core_config(steps=2, augment="color"), core_dataset)
    assert torch.equal(torch.get_rng_state(), state)


def test_result_and_history(core_dataset, core_config):
    seen = []
    callbacks = gan_core.TrainCallbacks(on_step=lambda step, losses: seen.append((step, losses)))
    model = gan_core.train(core_config(steps=5, loss="hinge"), core_dataset, callbacks=callbacks)
    assert [s for s, _ in seen] == [1, 2, 3, 4, 5]
    hist = model.resume.history
    assert [losses["loss_d"] for _, losses in seen] == hist["loss_d"]
    assert [losses["loss_g"] for _, losses in seen] == hist["loss_g"]
    assert all(math.isfinite(v) for v in hist["loss_d"] + hist["loss_g"])
    assert model.training["steps"] == 5 and model.training["loss"] == "hinge"
    assert model.training["final_losses"] == {k: v[-1] for k, v in hist.items()}
    assert model.resume.ema_count == 5
    assert all(not m.training for m in model.modules.values())  # eval mode for sampling


def test_previews_use_generate_seeds(core_dataset, core_config):
    grids = []
    callbacks = gan_core.TrainCallbacks(on_preview=lambda step, grid: grids.append((step, grid)))
    model = gan_core.train(core_config(steps=4, preview_every=2, preview_count=4), core_dataset,
                           callbacks=callbacks)
    assert [s for s, _ in grids] == [2, 4]
    last = grids[-1][1]
    assert last.shape[0] == 1 and last.shape[-1] == 3
    expected = gan_core.make_grid(model.generate("0-3"))
    assert torch.allclose(last, expected, atol=1e-6)


def test_dataset_size_mismatch(core_dataset, core_config):
    with pytest.raises(ValueError, match="32 px but the model makes 64 px"):
        gan_core.train(core_config(size=64), core_dataset)


@pytest.mark.parametrize("field,value", [("steps", 0), ("batch", 0), ("lr_g", 0.0), ("lr_d", 1.5),
                                         ("loss", "wasserstein"), ("r1_gamma", -1.0),
                                         ("channels", 2), ("arch", "nope"),
                                         ("checkpoint_every", -1)])
def test_train_config_validation(field, value):
    with pytest.raises(ValueError, match=field if field != "arch" else "arch must be"):
        gan_core.TrainConfig(**{field: value}).validate()


def test_train_config_dict_round_trip():
    cfg = gan_core.TrainConfig(size=32, augment="color", model={"ngf": 4})
    assert gan_core.TrainConfig.from_dict({**cfg.to_dict(), "future_option": 1}) == cfg


def test_mlp_trains_on_grayscale(core_config):
    data = gan_core.open_dataset("builtin:blobs", 12, channels=1, count=8)
    cfg = core_config(arch="mlp", size=12, steps=3, batch=4,
                      model={"g_hidden": [16, 32], "d_hidden": [16]})
    model = gan_core.train(cfg, data)
    assert model.arch == "mlp" and model.config.channels == 1
    assert model.generate("0-1").shape == (2, 12, 12, 3)


def test_training_inside_inference_mode(core_dataset, core_config, tmp_path):
    """ComfyUI runs nodes under torch.inference_mode(): training and resuming must still work."""
    path = tmp_path / "im.safetensors"
    with torch.inference_mode():
        data = gan_core.open_dataset("builtin:mondrian", 32, count=16, seed=0)
        gan_core.train(core_config(steps=2), data, out=path)
        loaded = gan_core.load(path)
        model = gan_core.train(core_config(steps=4), data, out=path, resume=loaded)
    straight = gan_core.train(core_config(steps=4), core_dataset)
    assert model.resume.history == straight.resume.history
    assert _weights_equal(model, straight)


# --------------------------------------------------------------------------- learning

def _colour_distance(images: torch.Tensor, reference: torch.Tensor, bins: int = 32) -> float:
    """Earth mover's distance between per-channel colour histograms, averaged over R, G, B.

    For 1-D histograms on [0, 1] it is the area between the cumulative histograms.
    """
    total = 0.0
    for c in range(3):
        ha = torch.histc(images[..., c].float(), bins=bins, min=0.0, max=1.0)
        hb = torch.histc(reference[..., c].float(), bins=bins, min=0.0, max=1.0)
        cdf_a, cdf_b = (ha / ha.sum()).cumsum(0), (hb / hb.sum()).cumsum(0)
        total += (cdf_a - cdf_b).abs().sum().item() / bins
    return total / 3


@pytest.mark.slow
def test_short_training_moves_colours_toward_the_data(core_config):
    """Mondrian pictures are mostly white with black lines and saturated primaries; an
    untrained DCGAN paints flat mid-gray. A few seconds of training must move the colour
    distribution of the samples toward the data's."""
    data = gan_core.open_dataset("builtin:mondrian", 32, count=128, seed=0)
    real = data.images.permute(0, 2, 3, 1).float() / 255.0
    cfg = core_config(steps=150, batch=16, lr_g=2e-3, lr_d=2e-3, seed=0,
                      model={"ngf": 16, "ndf": 16})

    initial = trainer_module.Trainer(cfg, data).model()  # the run's weights before step 1
    trained = gan_core.train(cfg, data)
    assert not torch.equal(initial.module.main[0].weight, trained.module.main[0].weight)

    seeds = "1000-1063"  # not the latents seen in training
    before = _colour_distance(initial.generate(seeds), real)
    after = _colour_distance(trained.generate(seeds), real)
    assert after < 0.85 * before, (before, after)
    # and the samples are no longer near-constant gray
    assert trained.generate(seeds).std() > 1.5 * initial.generate(seeds).std()


# --------------------------------------------------------------------------- resume

def test_resume_continues_the_same_curve(core_dataset, core_config, tmp_path):
    opts = dict(augment="color,translation,cutout", r1_gamma=0.5, r1_every=3, seed=5)
    straight = gan_core.train(core_config(steps=8, **opts), core_dataset)

    path = tmp_path / "half.safetensors"
    half = gan_core.train(core_config(steps=4, **opts), core_dataset, out=path)
    assert half.training["steps"] == 4
    loaded = gan_core.load(path)
    assert loaded.resume.step == 4
    steps_seen = []
    callbacks = gan_core.TrainCallbacks(on_step=lambda step, losses: steps_seen.append(step))
    resumed = gan_core.train(core_config(steps=8, **opts), core_dataset, out=path, resume=loaded,
                             callbacks=callbacks)
    assert steps_seen == [5, 6, 7, 8]  # the step count continues
    assert resumed.training["steps"] == 8
    assert _history_close(resumed.resume.history, straight.resume.history)
    assert _weights_equal(resumed, straight)
    assert resumed.resume.ema_count == straight.resume.ema_count == 8
    final = gan_core.load(path)
    assert final.resume.step == 8
    assert torch.equal(final.generate("0-3"), straight.generate("0-3"))


def test_resume_of_a_finished_run_does_nothing(core_trained, core_dataset, core_config):
    model, path = core_trained
    again = gan_core.train(core_config(steps=3, seed=7), core_dataset, resume=gan_core.load(path))
    assert again.training["steps"] == 3
    assert _weights_equal(again, model)


def test_resume_refuses_another_arch(core_trained, core_config):
    _, path = core_trained
    data = gan_core.open_dataset("builtin:mondrian", 28, count=4)
    with pytest.raises(ValueError, match="dcgan model but arch 'mlp'"):
        gan_core.train(core_config(arch="mlp", size=28, steps=5), data, resume=gan_core.load(path))


# --------------------------------------------------------------------------- cancel

def test_interrupt_leaves_a_checkpoint_at_the_last_completed_step(core_dataset, core_config,
                                                                  tmp_path):
    path = tmp_path / "cancel.safetensors"
    completed = []

    def check_stop():
        if len(completed) == 3:
            raise InterruptProcessingException()
        return False

    callbacks = gan_core.TrainCallbacks(on_step=lambda step, losses: completed.append(step),
                                        check_stop=check_stop)
    with pytest.raises(InterruptProcessingException):
        gan_core.train(core_config(steps=10, seed=3), core_dataset, out=path, callbacks=callbacks)
    loaded = gan_core.load(path)
    assert loaded.resume.step == 3 == loaded.training["steps"]
    assert len(loaded.resume.history["loss_d"]) == 3

    # Resuming the cancelled run ends exactly where an uninterrupted one does.
    resumed = gan_core.train(core_config(steps=6, seed=3), core_dataset, resume=loaded)
    straight = gan_core.train(core_config(steps=6, seed=3), core_dataset)
    assert _history_close(resumed.resume.history, straight.resume.history)
    assert _weights_equal(resumed, straight)


def test_interrupt_raised_from_a_progress_callback(core_dataset, core_config, tmp_path):
    """ComfyUI's ProgressBar.update_absolute also checks for interruption: a raise from
    on_step after step k must save step k."""
    path = tmp_path / "cancel2.safetensors"

    def on_step(step, losses):
        if step == 2:
            raise InterruptProcessingException()

    with pytest.raises(InterruptProcessingException):
        gan_core.train(core_config(steps=10, checkpoint_every=1), core_dataset, out=path,
                       callbacks=gan_core.TrainCallbacks(on_step=on_step))
    assert gan_core.load(path).resume.step == 2


def test_check_stop_true_stops_gracefully_and_saves(core_dataset, core_config, tmp_path):
    path = tmp_path / "stop.safetensors"
    saved = []
    done = []
    callbacks = gan_core.TrainCallbacks(
        on_step=lambda step, losses: done.append(step),
        check_stop=lambda: len(done) >= 2,
        on_checkpoint=lambda step, p: saved.append((step, p)),
    )
    model = gan_core.train(core_config(steps=10), core_dataset, out=path, callbacks=callbacks)
    assert model.training["steps"] == 2
    assert saved == [(2, str(path))]
    assert gan_core.load(path).resume.step == 2


def test_periodic_checkpoints(core_dataset, core_config, tmp_path):
    path = tmp_path / "periodic.safetensors"
    saved = []
    gan_core.train(core_config(steps=5, checkpoint_every=2), core_dataset, out=path,
                   callbacks=gan_core.TrainCallbacks(on_checkpoint=lambda step, p: saved.append(step)))
    assert saved == [2, 4, 5]  # every 2 steps, and at the end
    assert gan_core.load(path).resume.step == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["periodic.safetensors"]


# --------------------------------------------------------------------------- non-finite loss

@pytest.mark.parametrize("which", ["g_loss", "d_loss"])
def test_non_finite_loss_stops_and_keeps_the_last_checkpoint(core_dataset, core_config, tmp_path,
                                                              monkeypatch, which):
    path = tmp_path / "nan.safetensors"
    real_loss = getattr(objective_module, which)
    calls = []

    def poisoned(*args, **kwargs):
        calls.append(1)
        value = real_loss(*args, **kwargs)
        return value * float("nan") if len(calls) == 5 else value

    monkeypatch.setattr(objective_module, which, poisoned)
    snapshot = {}

    def on_checkpoint(step, p):
        snapshot.update(step=step, data=path.read_bytes(), mtime=path.stat().st_mtime_ns)

    with pytest.raises(gan_core.NonFiniteLossError) as info:
        gan_core.train(core_config(steps=10, checkpoint_every=2), core_dataset, out=path,
                       callbacks=gan_core.TrainCallbacks(on_checkpoint=on_checkpoint))
    err = info.value
    assert err.step == 5
    assert "step 5" in str(err) and "nan" in str(err)
    assert isinstance(err, FloatingPointError)
    assert snapshot["step"] == 4
    assert path.read_bytes() == snapshot["data"]
    assert path.stat().st_mtime_ns == snapshot["mtime"]
    loaded = gan_core.load(path)
    assert loaded.resume.step == 4
    assert all(math.isfinite(v) for vs in loaded.resume.history.values() for v in vs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.safetensors"]


def test_non_finite_loss_on_the_first_step_writes_nothing(core_dataset, core_config, tmp_path,
                                                          monkeypatch):
    path = tmp_path / "never.safetensors"
    monkeypatch.setattr(objective_module, "d_loss", lambda *a, **k: torch.tensor(float("inf")))
    with pytest.raises(gan_core.NonFiniteLossError, match="step 1"):
        gan_core.train(core_config(steps=3), core_dataset, out=path)
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []



@pytest.mark.parametrize("make", [gan_core.TrainConfig, gan_core.DenoiseTrainConfig,
                                  gan_core.StyleTrainConfig])
def test_speed_options_are_validated_not_guessed(make):
    """A typo in amp or channels_last is an error naming the choices, never a silent bf16."""
    with pytest.raises(ValueError, match="amp must be one of"):
        make(amp="fp8").validate()
    with pytest.raises(ValueError, match="channels_last must be one of"):
        make(channels_last="yes").validate()
    make(amp="off", channels_last="off").validate()
