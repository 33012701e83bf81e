"""gan_core.audio's analysis on synthetic audio (gan_core.audio.synth): onsets at the clicks'
frames, tempo, band energies, silence, frame counts that agree with the audio exactly, the
streaming analyzer, determinism, and the errors that name their input."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gan_core.audio import (AnalysisSettings, AudioAnalyzer, AudioFeatures, analyze,
                            analyze_audio, beat_times, click_track, demo_song, frame_count,
                            frame_samples, read_wav, segment, segment_bounds, synth_clip, tone,
                            write_wav)
from gan_core.audio.analysis import envelope


def _bytes(f: AudioFeatures) -> bytes:
    arrays = (f.loudness, f.onsets, f.onset_strength, f.bass, f.mid, f.treble, f.flux,
              f.loudness_db, f.onset_times)
    return b"".join(np.ascontiguousarray(a).tobytes() for a in arrays) + \
        np.float64([f.tempo_bpm, f.tempo_confidence]).tobytes()


# ----------------------------------------------------------------------------- onsets, tempo


@pytest.mark.parametrize("rate", [22050, 44100, 48000])
@pytest.mark.parametrize("fps", [24.0, 30.0])
def test_a_click_track_gives_an_onset_at_each_clicks_frame(rate, fps):
    x = click_track(6.0, rate, bpm=120, offset=0.25)
    f = analyze(x, rate, fps)
    clicks = np.floor(beat_times(6.0, 120, 0.25) * fps).astype(int)
    found = np.flatnonzero(f.onsets)
    assert len(found) == len(clicks)
    assert np.abs(found - clicks).max() <= 1
    assert np.abs(f.onset_times - beat_times(6.0, 120, 0.25)).max() < 0.015  # seconds
    assert f.onset_strength[found].min() > 0.5 and (f.onset_strength[~f.onsets] == 0).all()


@pytest.mark.parametrize("bpm", [72, 90, 120, 128, 150, 174])
def test_the_tempo_of_a_click_track_is_found_within_two_percent(bpm):
    f = analyze(click_track(10.0, 22050, bpm=bpm, offset=0.1), 22050, 24)
    assert f.tempo_bpm == pytest.approx(bpm, rel=0.02)
    assert f.tempo_confidence > 0.5


def test_the_synthetic_clip_marks_beats_and_offbeats_and_its_tempo():
    """Clicks on the beats, bass on every other beat, hi-hats on the off-beats."""
    clip = synth_clip(8.0, 44100, bpm=120, channels=2, offset=0.25)
    f = analyze(clip, 44100, 25)
    events = np.sort(np.concatenate([beat_times(8.0, 120, 0.25), beat_times(8.0, 120, 0.5)]))
    events = events[events < 8.0 - 0.05]
    found = np.flatnonzero(f.onsets)
    want = np.floor(events * 25).astype(int)
    assert len(found) == len(want) and np.abs(found - want).max() <= 1
    assert f.tempo_bpm == pytest.approx(120, rel=0.02)


def test_silence_has_no_onsets_no_level_and_no_tempo():
    for x in (np.zeros((2, 3 * 44100), np.float32),
              (np.random.default_rng(0).standard_normal((1, 3 * 44100)) * 3e-5)
              .astype(np.float32)):  # noise at about -90 dBFS: under the gate
        f = analyze(x, 44100, 30)
        assert f.frames == 90
        assert not f.onsets.any() and f.onset_times.size == 0
        for curve in (f.loudness, f.bass, f.mid, f.treble, f.flux, f.onset_strength):
            assert not curve.any()
        assert f.tempo_bpm == 0.0


def test_a_steady_tone_has_no_onsets():
    for hz in (60, 1000, 8000):
        assert not analyze(tone(3.0, 44100, hz, 0.5), 44100, 25).onsets.any(), hz


# ----------------------------------------------------------------------------- levels


@pytest.mark.parametrize("hz,band", [(60, "bass"), (1000, "mid"), (8000, "treble")])
def test_a_tone_raises_its_own_band_only(hz, band):
    f = analyze(tone(2.0, 44100, hz, 0.3), 44100, 25)
    inner = slice(5, -5)
    levels = {b: float(getattr(f, b)[inner].mean()) for b in ("bass", "mid", "treble")}
    assert levels[band] > 0.9, levels
    assert all(v < 0.05 for b, v in levels.items() if b != band), levels
    assert f.loudness[inner].min() > 0.9


def test_the_bass_band_edges_are_configurable():
    x = tone(2.0, 22050, 400, 0.3)
    assert analyze(x, 22050, 25).mid[10:-10].mean() > 0.9
    wide = analyze(x, 22050, 25, AnalysisSettings(bands=(20.0, 500.0, 4000.0)))
    assert wide.bass[10:-10].mean() > 0.9 and wide.mid[10:-10].mean() < 0.05


def test_loudness_follows_the_song_and_stays_in_0_1():
    song = demo_song(12.0, 22050)
    f = analyze(song, 22050, 24)
    quiet, loud = f.loudness[24:6 * 24 - 24], f.loudness[6 * 24 + 12:int(9.6 * 24)]
    assert loud.mean() > quiet.mean() + 0.3
    for curve in (f.loudness, f.bass, f.mid, f.treble, f.flux, f.onset_strength):
        assert curve.dtype == np.float32 and curve.min() >= 0 and curve.max() <= 1
    assert f.bass[:5 * 24].max() < 0.2 < f.bass[7 * 24:9 * 24].mean()  # bass joins at 7.2 s


def test_attack_is_fast_and_release_slow():
    step = np.r_[np.zeros(10), np.ones(20), np.zeros(40)]
    y = envelope(step, 25.0, attack=0.02, release=0.5)
    assert y[10] > 0.8 and y[12] > 0.99  # up within a frame or two
    assert 0.9 > y[31] > 0.85 and y[30 + 12] == pytest.approx(math.exp(-12 / 12.5), abs=0.03)
    assert (envelope(np.zeros(5), 25, 0.02, 0.5) == 0).all()


# ----------------------------------------------------------------------------- frame counts


@pytest.mark.parametrize("fps", [24.0, 25.0, 29.97, 30.0, 30000 / 1001])
@pytest.mark.parametrize("rate", [22050, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_frame_count_and_audio_length_agree_exactly(fps, rate, channels):
    x = torch.from_numpy(synth_clip(4.0, rate, channels=channels))
    for start, duration in ((0.0, 1.0), (0.37, 2.345), (1.0, 3.0)):
        cut = segment(x, rate, start, duration, fps)
        frames = frame_count(duration, fps)
        assert frames == math.floor(duration * fps + 0.5)
        assert cut.shape == (channels, frame_samples(frames, fps, rate))
        assert abs(cut.shape[1] / rate - frames / fps) <= 0.5 / rate
        f = analyze(cut, rate, fps)
        assert f.frames == frames and f.samples == cut.shape[1] and f.sample_rate == rate
        assert f.duration == cut.shape[1] / rate
        for curve in (f.loudness, f.onsets, f.bass, f.mid, f.treble, f.flux):
            assert curve.shape == (frames,)
        s0 = math.floor(start * rate + 0.5)
        assert torch.equal(cut[:, :min(cut.shape[1], x.shape[1] - s0)],
                           x[:, s0:s0 + cut.shape[1]])


def test_to_the_end_takes_the_whole_frames_that_fit():
    rate, fps = 44100, 29.97
    x = torch.zeros(2, 10 * rate)
    cut = segment(x, rate, 2.0, None, fps)
    frames = math.floor(8.0 * fps)  # 239 whole frames fit in the 8 s left
    assert cut.shape[1] == frame_samples(frames, fps, rate) <= 8 * rate
    b = segment_bounds(10 * rate, rate, 2.0, 8.0, fps)  # round(239.76) = 240 frames: padded
    assert b.frames == 240 and b.pad == b.samples - 8 * rate > 0
    padded = segment(torch.ones(1, 10 * rate), rate, 2.0, 8.0, fps)
    assert padded.shape[1] == b.samples and padded[0, -b.pad:].abs().sum() == 0


def test_comfy_audio_in_and_out():
    rate = 22050
    wave = torch.from_numpy(synth_clip(3.0, rate, channels=2)).unsqueeze(0)  # [1, 2, T]
    features, cut = analyze_audio({"waveform": wave, "sample_rate": rate}, 24.0, 0.5, 2.0)
    assert features.frames == 48
    assert cut["sample_rate"] == rate and cut["waveform"].shape == (1, 2, 2 * rate)
    assert torch.equal(cut["waveform"][0], wave[0, :, rate // 2:rate // 2 + 2 * rate])


# ----------------------------------------------------------------------------- determinism


def test_the_same_audio_gives_the_same_bytes_and_streaming_changes_nothing():
    clip = synth_clip(5.0, 44100, channels=2)
    one = analyze(clip, 44100, 24)
    assert _bytes(one) == _bytes(analyze(clip.copy(), 44100, 24))
    streamed = AudioAnalyzer(44100, 24)
    rng = np.random.default_rng(1)
    at = 0
    while at < clip.shape[1]:  # irregular blocks, one of a single sample
        n = int(rng.integers(1, 30000)) if at else 1
        streamed.feed(clip[:, at:at + n])
        at += n
    assert _bytes(streamed.finish()) == _bytes(one)
    assert _bytes(analyze(torch.from_numpy(clip), 44100, 24)) == _bytes(one)


def test_mono_and_stereo_of_the_same_sound_agree():
    mono = synth_clip(3.0, 22050, channels=1)
    a = analyze(mono, 22050, 25)
    b = analyze(np.concatenate([mono, mono]), 22050, 25)
    assert _bytes(a) == _bytes(b)


# ----------------------------------------------------------------------------- wav files


@pytest.mark.parametrize("bits", [8, 16, 24, 32])
@pytest.mark.parametrize("channels", [1, 2])
def test_wav_round_trip(tmp_path, bits, channels):
    x = synth_clip(0.5, 22050, channels=channels) * 0.9
    path = write_wav(tmp_path / "a.wav", x, 22050, bits=bits)
    back, rate = read_wav(path)
    assert rate == 22050 and back.shape == x.shape and back.dtype == torch.float32
    assert (back.numpy() - x).__abs__().max() <= 2.0 / 2 ** (bits - 1)
    part, _ = read_wav(path, start=100, count=50)
    assert torch.equal(part, back[:, 100:150])


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("bad,message", [
    (torch.zeros(2, 0), "audio is empty"),
    (torch.zeros(0, 100), "audio is empty"),
    (torch.tensor([[0.0, float("nan"), 0.0] * 1000]), "NaN"),
    (torch.zeros(2, 2, 1000), "batch of 2"),
    (torch.zeros(1000, 2), "channels first"),
    (torch.zeros(2, 1000, dtype=torch.int16), "float samples"),
    ("not audio", "expected a waveform"),
])
def test_bad_waveforms_are_refused_by_name(bad, message):
    with pytest.raises(ValueError, match=message):
        analyze(bad, 22050, 24)


def test_bad_rates_segments_and_settings_are_refused():
    x = torch.zeros(1, 22050)
    for fps in (0, -1, float("nan"), float("inf"), "x"):
        with pytest.raises(ValueError, match="fps"):
            analyze(x, 22050, fps)
    for rate in (0, 22050.5, None, 100):
        with pytest.raises(ValueError, match="sample_rate"):
            analyze(x, rate, 24)
    with pytest.raises(ValueError, match=r"runs past the end of the audio \(1.000 s long\)"):
        segment(x, 22050, 0.5, 0.8, 24)
    with pytest.raises(ValueError, match="start 2 s is at or past the end"):
        segment(x, 22050, 2.0, 0.1)
    with pytest.raises(ValueError, match="duration must be above 0"):
        segment(x, 22050, 0.0, 0.0, 24)
    with pytest.raises(ValueError, match="start must be 0 or more"):
        segment(x, 22050, -1.0, 0.5)
    with pytest.raises(ValueError, match="shorter than"):
        analyze(torch.zeros(1, 100), 22050, 24)
    with pytest.raises(ValueError, match="bands"):
        AnalysisSettings(bands=(250.0, 20.0, 4000.0))
    with pytest.raises(ValueError, match="tempo_range"):
        AnalysisSettings(tempo_range=(180.0, 60.0))
    with pytest.raises(ValueError, match="AUDIO"):
        analyze_audio({"samples": x}, 24)
