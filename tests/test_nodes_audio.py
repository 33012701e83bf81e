"""The Audio-Reactive Walk node, run as ComfyUI runs it (fakes for ComfyUI's modules, real
torch): frames that match the audio segment exactly, progress and cancel per chunk, and a
clear refusal before rendering what would not fit in memory."""
from __future__ import annotations

import pytest
import torch

import gan_core

NODE = "GANAtelierAudioReactiveWalk"
INPUTS = dict(fps=12.0, seeds="1,5,9", start=0.5, duration=2.0, preset="pulse",
              loudness_speed=-1.0, beat_strength=-1.0, bass=-1.0, mids=-1.0, treble=-1.0,
              truncation=1.0, class_index=-1, camera="bass", camera_strength=1.0)


def _song(rate: int = 22050, seconds: float = 4.0, channels: int = 2) -> dict:
    wave = gan_core.audio.demo_song(seconds, rate)
    wave = torch.as_tensor(wave, dtype=torch.float32)
    if wave.dim() == 1:
        wave = wave.unsqueeze(0)
    wave = wave[:1].expand(channels, -1).clone()
    return {"waveform": wave.unsqueeze(0), "sample_rate": rate}


def run(pack, **inputs):
    cls = pack.nodes.node_classes()[NODE]
    with torch.inference_mode():
        return cls().EXECUTE_NORMALIZED(**inputs)


@pytest.mark.parametrize("rate,channels", [(22050, 1), (44100, 2), (48000, 2)])
def test_frames_fps_and_audio_line_up(node_env, pack, latent_models, rate, channels):
    _, _, calls = node_env
    model = latent_models.varied_dcgan()
    frames, fps, audio = run(pack, model=model, audio=_song(rate, channels=channels), **INPUTS)
    assert frames.shape == (24, 32, 32, 3) and 0 <= float(frames.min()) <= float(frames.max()) <= 1
    assert fps == 12.0
    wave = audio["waveform"]
    assert audio["sample_rate"] == rate and wave.shape[:2] == (1, channels)
    assert wave.shape[-1] == round(24 * rate / 12)  # exactly the frames' duration
    assert calls and calls[-1][:2] == (24, 24)
    again = run(pack, model=model, audio=_song(rate, channels=channels), **INPUTS)[0]
    assert torch.equal(frames, again)  # deterministic


def test_refuses_what_would_not_fit_before_rendering(node_env, pack, latent_models, monkeypatch):
    module = pack.nodes.audio
    monkeypatch.setattr(module, "_memory_budget", lambda: 32 * 32 * 3 * 4 * 10)  # 10 frames
    with pytest.raises(ValueError, match=r"24 frames .* fit"):
        run(pack, model=latent_models.varied_dcgan(), audio=_song(), **INPUTS)


def test_cancel_stops_between_chunks(node_env, pack, latent_models):
    _, mm, _ = node_env
    import comfy.utils

    def cancel(value, total, preview, node_id=None):
        mm.interrupt_current_processing(True)
        mm.throw_exception_if_processing_interrupted()

    comfy.utils.set_progress_bar_global_hook(cancel)
    with pytest.raises(mm.InterruptProcessingException):
        run(pack, model=latent_models.varied_dcgan(), audio=_song(), **INPUTS)


def test_wrong_inputs_are_named(node_env, pack, latent_models):
    cls = pack.nodes.node_classes()[NODE]
    assert "seeds" in cls.validate_inputs(seeds="one,two", fps=12.0)
    assert cls.validate_inputs(seeds="1,2", fps=12.0) is True
    with pytest.raises(ValueError, match="unconditional"):
        run(pack, model=latent_models.varied_dcgan(), audio=_song(), **{**INPUTS, "class_index": 3})


def test_example_song_is_audio_that_the_walk_takes(node_env, pack, latent_models):
    song = pack.nodes.node_classes()["GANAtelierExampleSong"]
    (audio,) = song().EXECUTE_NORMALIZED(seconds=3.0, bpm=120.0, seed=0)
    wave = audio["waveform"]
    assert audio["sample_rate"] == 22050 and wave.shape == (1, 2, 3 * 22050)
    assert wave.dtype == torch.float32 and float(wave.abs().max()) <= 1.0
    assert float(wave.abs().mean()) > 1e-3  # there is a song in it
    (again,) = song().EXECUTE_NORMALIZED(seconds=3.0, bpm=120.0, seed=0)
    (other,) = song().EXECUTE_NORMALIZED(seconds=3.0, bpm=120.0, seed=1)
    assert torch.equal(again["waveform"], wave) and not torch.equal(other["waveform"], wave)
    frames, fps, segment = run(pack, model=latent_models.varied_dcgan(), audio=audio,
                               **{**INPUTS, "start": 0.0, "duration": 0.0})
    assert len(frames) == 36 and segment["waveform"].shape[-1] == 3 * 22050
