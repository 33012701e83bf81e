"""The audio-reactive walk (gan_core.audio.motion) on real tiny generators: the toy
StyleGAN-like model with a mapping network and six w+ layers, a calibrated random DCGAN (z
only) and a small StyleGAN2 whose module states its own layer ranges."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import gan_core
from gan_core.archs import get_arch
from gan_core.audio import (PRESETS, AudioFeatures, ReactiveSettings, analyze,
                            check_frames_fit, click_track, code_spread, fit_duration,
                            frames_nbytes, iter_frames, layer_groups, preset, reactive_motion,
                            render_frames, synth_clip)

pytestmark = pytest.mark.usefixtures("core_single_thread")
FPS = 12.0


@pytest.fixture(scope="module")
def toy(latent_models):
    return gan_core.LatentSpace(latent_models.toy_model())


@pytest.fixture(scope="module")
def dcgan(latent_models):
    return gan_core.LatentSpace(latent_models.varied_dcgan())


@pytest.fixture(scope="module")
def quiet_then_loud():
    """4 s of the synthetic clip at -26 dB, then 4 s at full level."""
    clip = synth_clip(8.0, 22050, bpm=120, channels=1)
    clip[:, :4 * 22050] *= 0.05
    return analyze(clip, 22050, FPS)


def _silent(frames: int = 48) -> AudioFeatures:
    return analyze(np.zeros((1, int(frames / FPS * 22050))), 22050, FPS)


def _step(x: torch.Tensor) -> np.ndarray:
    """The size of each frame-to-frame change: [F - 1]."""
    return (x[1:] - x[:-1]).flatten(1).norm(dim=1).numpy()


# ----------------------------------------------------------------------------- silence


@pytest.mark.parametrize("name", ["toy", "dcgan"])
def test_silence_gives_the_base_drift_and_nothing_else(name, request):
    space = request.getfixturevalue(name)
    silent = _silent()
    motion = reactive_motion(space, silent, [1, 5, 9], camera=True)
    assert not silent.onsets.any() and not motion.pulse.any() and not motion.bands.any()
    base = motion.settings.base_speed / FPS
    assert np.allclose(np.diff(motion.position), base, rtol=0, atol=1e-12)
    assert not motion.camera.any()  # the camera rests
    # the same walk with every reaction off: the codes are the drift's, exactly
    drift = reactive_motion(space, AudioFeatures.from_curves(FPS, silent.frames), [1, 5, 9],
                            preset(None, loudness_gain=0, onset_jump=0, onset_push=0,
                                   bass_gain=0, mid_gain=0, treble_gain=0))
    assert torch.equal(motion.codes(), drift.codes())
    # and the drift is the keyframe path: frame 0 is the first seed's code (up to the
    # rounding of a batch of one against the three keyframes mapped together)
    first = space.seed_codes([1]).detach()
    if motion.space == "w+":
        first = first.unsqueeze(1).expand(-1, space.n_latent, -1)
    torch.testing.assert_close(motion.codes(0, 1), first.cpu(), rtol=0, atol=1e-6)


# ----------------------------------------------------------------------------- loudness


def test_speed_follows_loudness(toy, quiet_then_loud):
    st = PRESETS["drift"]  # no onset jumps: the position moves with loudness alone
    motion = reactive_motion(toy, quiet_then_loud, [1, 5, 9], st)
    want = (st.base_speed + st.loudness_gain * quiet_then_loud.loudness.astype(np.float64)) / FPS
    assert np.allclose(np.diff(motion.position), want[:-1], rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", ["toy", "dcgan"])
def test_frames_change_more_on_loud_parts_than_quiet_ones(name, request, quiet_then_loud):
    space = request.getfixturevalue(name)
    motion = reactive_motion(space, quiet_then_loud, [1, 5, 9])
    frames = render_frames(space, motion)
    assert frames.shape[0] == 96
    change = (frames[1:] - frames[:-1]).abs().mean((1, 2, 3)).numpy()
    quiet, loud = change[6:42].mean(), change[54:90].mean()
    assert loud > 1.5 * quiet, (quiet, loud)


# ----------------------------------------------------------------------------- onsets


@pytest.mark.parametrize("name", ["toy", "dcgan"])
def test_onsets_pulse(name, request):
    space = request.getfixturevalue(name)
    features = analyze(click_track(6.0, 22050, bpm=90, offset=0.3), 22050, FPS)
    onsets = np.flatnonzero(features.onsets)
    assert len(onsets) == 9
    motion = reactive_motion(space, features, [1, 5, 9], "pulse")
    assert (motion.pulse[onsets] == features.onset_strength[onsets]).all()
    step = _step(motion.codes())  # step[i - 1]: from frame i - 1 to frame i
    at = step[onsets - 1]
    others = np.delete(step, np.r_[onsets - 1, onsets])
    assert at.min() > 3 * np.median(others), (at, np.median(others))
    # the pulse decays: three frames on it is under half of the onset's push
    assert (motion.pulse[onsets + 3] < 0.5 * motion.pulse[onsets]).all()


# ----------------------------------------------------------------------------- bands


@pytest.fixture(scope="module")
def stylegan2():
    spec = get_arch("stylegan2")
    config = spec.config_cls(image_size=64, style_dim=16, n_mlp=2, channel_multiplier=1,
                             base_channels=16)
    torch.manual_seed(0)
    return gan_core.LatentSpace(gan_core.GANModel("stylegan2", config,
                                                  {"G": spec.build(config)["G"]}))


def test_layer_groups(toy, stylegan2):
    # the module's own ranges (4-8 px, 16-32 px, 64 px and up)
    assert layer_groups(stylegan2) == {"coarse": [0, 1, 2, 3], "middle": [4, 5, 6, 7],
                                       "fine": [8, 9]}
    assert layer_groups(stylegan2)["coarse"] == stylegan2.module.style_layers("coarse")
    # the 16 px toy has no fine layers: its six are split in three
    assert layer_groups(toy) == {"coarse": [0, 1], "middle": [2, 3], "fine": [4, 5]}


@pytest.mark.parametrize("name", ["toy", "stylegan2"])
@pytest.mark.parametrize("band,group", [("bass", "coarse"), ("mid", "middle"),
                                        ("treble", "fine")])
def test_a_band_moves_only_its_layer_group(name, band, group, request):
    space = request.getfixturevalue(name)
    curve = np.r_[np.zeros(6), np.linspace(0, 1, 18)]
    active = reactive_motion(space, AudioFeatures.from_curves(FPS, 24, **{band: curve}), [3, 4])
    still = reactive_motion(space, AudioFeatures.from_curves(FPS, 24), [3, 4])
    moved = (active.codes() - still.codes()).abs().amax(dim=(0, 2))  # per w+ row
    rows = layer_groups(space)[group]
    assert torch.equal(torch.nonzero(moved).flatten(), torch.tensor(rows))
    # scaled by the band's energy: none at 0, the gain times the spread at 1
    diff = active.codes() - still.codes()
    assert not diff[:6].any()
    setting = {"bass": "bass_gain", "mid": "mid_gain", "treble": "treble_gain"}[band]
    gain = getattr(active.settings, setting) * code_spread(space)
    rms = diff[-1, rows].pow(2).mean().sqrt().item()
    assert rms == pytest.approx(gain, rel=1e-4)


def test_the_bands_move_a_z_only_model_by_amplitude(dcgan):
    assert dcgan.n_latent == 1 and not dcgan.mapped
    still = reactive_motion(dcgan, AudioFeatures.from_curves(FPS, 12), [3, 4])
    assert still.space == "z" and still.codes().shape == (12, 16)
    moves = {}
    for band in ("bass", "mid", "treble"):
        m = reactive_motion(dcgan, AudioFeatures.from_curves(FPS, 12, **{band: 1.0}), [3, 4],
                            preset(None, bass_gain=0.5, mid_gain=0.5, treble_gain=0.5))
        moves[band] = m.codes() - still.codes()
    # one direction for all bands: equal gains give equal displacements, of that size
    assert torch.allclose(moves["bass"], moves["treble"]) and torch.allclose(moves["bass"],
                                                                              moves["mid"])
    assert moves["bass"].pow(2).mean(1).sqrt().numpy() == pytest.approx(0.5, rel=1e-5)


# ----------------------------------------------------------------------------- camera


def test_a_camera_path_follows_its_feature_and_reaches_camera_fn(toy):
    curve = np.r_[np.zeros(12), np.ones(12)]
    features = AudioFeatures.from_curves(FPS, 24, bass=curve)
    assert reactive_motion(toy, features, [1, 2]).camera is None  # the toy has no camera
    st = preset(None, pan_x=0.1, pan_y=0.05, rotate=4.0, camera_rate=0.5)
    motion = reactive_motion(toy, features, [1, 2], st, camera=True)
    cam = motion.camera
    assert cam.shape == (24, 3) and cam.dtype == np.float32
    assert not cam[:12].any()
    assert (np.abs(cam[12:]).max(0) <= np.float32([0.1, 0.05, 4.0])).all()
    assert np.abs(cam[12:]).sum(1).min() > 0
    seen = []

    def camera_fn(codes, rows):
        seen.append(rows.clone())
        return toy.render(codes)

    frames = render_frames(toy, motion, camera_fn=camera_fn, batch_size=5)
    assert torch.equal(torch.cat(seen), torch.from_numpy(cam))
    assert frames.shape[0] == 24
    # Without camera_fn the path goes to the generator's own camera, which the toy lacks.
    with pytest.raises(ValueError, match="camera"):
        render_frames(toy, motion, batch_size=5)
    off = reactive_motion(toy, features, [1, 2], preset(st, camera_feature="none"), camera=True)
    assert off.camera is None


# ----------------------------------------------------------------------------- rendering


@pytest.mark.parametrize("name", ["toy", "dcgan"])
def test_rendering_in_chunks_equals_one_render(name, request, quiet_then_loud):
    space = request.getfixturevalue(name)
    motion = reactive_motion(space, quiet_then_loud, [2, 7, 1])
    whole = render_frames(space, motion, batch_size=motion.frames)
    torch.testing.assert_close(render_frames(space, motion, batch_size=7), whole,
                               rtol=0, atol=1e-6)
    part = render_frames(space, motion, start=30, count=11, batch_size=4)
    torch.testing.assert_close(part, whole[30:41], rtol=0, atol=1e-6)
    starts = [i for i, _ in iter_frames(space, motion, 10, 20, batch_size=8)]
    assert starts == [10, 18, 26]
    progress = []
    cb = gan_core.TrainCallbacks(on_step=lambda done, _: progress.append(done))
    render_frames(space, motion, 0, 20, batch_size=8, callbacks=cb)
    assert progress == [8, 16, 20]


def test_the_same_audio_and_settings_give_the_same_frames(toy, dcgan):
    for space in (toy, dcgan):
        clip = synth_clip(3.0, 22050, channels=2)
        frames = [render_frames(space, reactive_motion(space, analyze(clip, 22050, FPS),
                                                       [4, 8], "pulse")) for _ in range(2)]
        assert frames[0].numpy().tobytes() == frames[1].numpy().tobytes()


def test_cancel_between_chunks(toy, quiet_then_loud):
    motion = reactive_motion(toy, quiet_then_loud, [1, 2])
    calls = []

    def check_stop():
        calls.append(1)
        if len(calls) == 3:
            raise InterruptedError("cancelled")

    with pytest.raises(InterruptedError):
        render_frames(toy, motion, batch_size=8,
                      callbacks=gan_core.TrainCallbacks(check_stop=check_stop))
    assert len(calls) == 3


def test_a_start_latent_is_the_first_keyframe(toy):
    w_plus = toy.to_space(toy.seed_codes([11]), "w", "w+") + 0.1
    latent = gan_core.GANLatent("w+", w_plus, toy.arch)
    features = AudioFeatures.from_curves(FPS, 12)
    for start in (latent, w_plus):
        motion = reactive_motion(toy, features, [5], start=start)
        assert motion.keys.shape == (2, 6, 8)
        assert torch.allclose(motion.codes(0, 1)[0], w_plus[0].cpu())
    with pytest.raises(ValueError, match="start: expected render-space codes"):
        reactive_motion(toy, features, [5], start=torch.zeros(1, 3))
    with pytest.raises(ValueError, match="at least one keyframe"):
        reactive_motion(toy, features, [])


# ----------------------------------------------------------------------------- settings


def test_presets_and_settings():
    assert set(PRESETS) == {"pulse", "drift"}
    assert all(isinstance(p, ReactiveSettings) for p in PRESETS.values())
    assert PRESETS["pulse"].onset_push > PRESETS["drift"].onset_push
    assert PRESETS["drift"].base_speed > PRESETS["pulse"].base_speed
    assert preset("pulse", bass_gain=1.5).bass_gain == 1.5
    assert preset("pulse", bass_gain=1.5).onset_push == PRESETS["pulse"].onset_push
    for bad in ({"base_speed": -1}, {"onset_push": float("nan")}, {"camera_feature": "x"},
                {"interpolation": "cubic"}, {"bass_gain": 50}):
        with pytest.raises(ValueError):
            ReactiveSettings(**bad)
    with pytest.raises(ValueError, match="preset must be one of"):
        preset("wobble")
    with pytest.raises(ValueError, match="unknown reactive settings"):
        preset("pulse", speed=2)


def test_bad_render_requests_are_refused(toy):
    motion = reactive_motion(toy, AudioFeatures.from_curves(FPS, 10), [1, 2])
    with pytest.raises(ValueError, match="flicker"):
        render_frames(toy, motion, noise="random")
    with pytest.raises(ValueError, match="outside this motion's 0..10"):
        render_frames(toy, motion, start=5, count=6)
    with pytest.raises(ValueError, match="features: expected AudioFeatures"):
        reactive_motion(toy, {"loudness": 1}, [1])


# ----------------------------------------------------------------------------- memory


def test_memory_estimate_and_the_refusal_message():
    assert frames_nbytes(240, 256, 256) == 240 * 256 * 256 * 3 * 4
    budget = 2 * 1024 ** 3
    seconds = fit_duration(budget, 24, 256, 256)
    frames = int(round(seconds * 24))
    assert frames_nbytes(frames, 256, 256) <= budget < frames_nbytes(frames + 1, 256, 256)
    assert check_frames_fit(frames, 256, 256, budget, 24) == frames_nbytes(frames, 256, 256)
    with pytest.raises(ValueError) as err:
        check_frames_fit(7200, 256, 256, budget, 24, what="Audio-Reactive Walk")
    text = str(err.value)
    assert "Audio-Reactive Walk: 7200 frames of 256x256 px take 5.3 GiB" in text
    assert f"{seconds:.2f} s ({frames} frames) fit" in text and "audio-walk" in text
