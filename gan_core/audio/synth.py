"""Test audio made here, so it is ours to ship: a click track at a known tempo, a bass tone,
hi-hat noise bursts, and a short "song" with quiet and loud sections built from them.

Everything is numpy, deterministic (the noise comes from numpy's PCG64 seeded by `seed`),
float32 [C, T] in [-1, 1]. `write_wav` (gan_core.audio.wav) saves a clip as a PCM WAV file:

    from gan_core.audio import demo_song, write_wav
    write_wav("song.wav", demo_song(), 22050)
"""
from __future__ import annotations

import math

import numpy as np


def _samples(duration: float, sample_rate: int) -> int:
    if not duration > 0 or not math.isfinite(duration):
        raise ValueError(f"duration must be a positive number of seconds, got {duration}")
    if int(sample_rate) < 1000:
        raise ValueError(f"sample_rate must be at least 1000 Hz, got {sample_rate}")
    return int(math.floor(duration * sample_rate + 0.5))


def beat_times(duration: float, bpm: float, offset: float = 0.0) -> np.ndarray:
    """Seconds of the beats at `bpm` from `offset`, before `duration`."""
    if not bpm > 0:
        raise ValueError(f"bpm must be positive, got {bpm}")
    period = 60.0 / bpm
    return offset + period * np.arange(max(0, math.ceil((duration - offset) / period)))


def place(length: int, sample_rate: int, times: np.ndarray, sound: np.ndarray,
          gains: np.ndarray | None = None) -> np.ndarray:
    """A [length] track with `sound` added at each time (seconds; the sample at or after it)."""
    out = np.zeros(length, np.float64)
    for k, t in enumerate(np.asarray(times, np.float64)):
        i = int(math.ceil(t * sample_rate - 1e-9))
        if 0 <= i < length:
            n = min(len(sound), length - i)
            out[i:i + n] += sound[:n] * (1.0 if gains is None else float(gains[k]))
    return out


def click(sample_rate: int, freq: float = 1500.0, decay: float = 0.006,
          length: float = 0.03) -> np.ndarray:
    """A click: a sine starting at full amplitude and decaying with time constant `decay`."""
    t = np.arange(int(length * sample_rate)) / sample_rate
    return np.sin(2 * np.pi * freq * t) * np.exp(-t / decay)


def hat(sample_rate: int, rng: np.random.Generator, decay: float = 0.015,
        length: float = 0.06) -> np.ndarray:
    """A hi-hat: white noise twice differenced (energy mostly above 4 kHz at 22.05 kHz and
    up), with a fast exponential decay, peak-normalised."""
    n = int(length * sample_rate)
    noise = np.diff(rng.standard_normal(n + 2), 2)
    burst = noise * np.exp(-np.arange(n) / sample_rate / decay)
    return burst / np.abs(burst).max()


def tone(duration: float, sample_rate: int, freq: float, amplitude: float = 0.5,
         fade: float = 0.01) -> np.ndarray:
    """A sine of `freq` Hz, [T] float32, with `fade` seconds of raised-cosine fade in and out."""
    n = _samples(duration, sample_rate)
    t = np.arange(n) / sample_rate
    x = amplitude * np.sin(2 * np.pi * freq * t)
    k = min(n // 2, int(fade * sample_rate))
    if k > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(k) / k)
        x[:k] *= ramp
        x[n - k:] *= ramp[::-1]
    return x.astype(np.float32)


def click_track(duration: float, sample_rate: int, bpm: float = 120.0, offset: float = 0.0,
                amplitude: float = 0.8) -> np.ndarray:
    """[T] float32: a click on every beat at `bpm`, the first at `offset` seconds."""
    n = _samples(duration, sample_rate)
    times = beat_times(duration, bpm, offset)
    return (amplitude * place(n, sample_rate, times, click(sample_rate))).astype(np.float32)


def synth_clip(duration: float = 8.0, sample_rate: int = 22050, bpm: float = 120.0,
               channels: int = 2, seed: int = 0, click_level: float = 0.5,
               bass_level: float = 0.3, hat_level: float = 0.25, bass_hz: float = 55.0,
               offset: float = 0.0) -> np.ndarray:
    """float32 [channels, T]: clicks on the beats, a bass note (`bass_hz`) on every other beat
    lasting half a beat, hi-hats on the off-beats (eighths between the beats), hats panned
    slightly right in stereo. Levels of 0 leave a part out."""
    if channels not in (1, 2):
        raise ValueError(f"channels must be 1 or 2, got {channels}")
    n = _samples(duration, sample_rate)
    rng = np.random.default_rng(seed)
    period = 60.0 / bpm
    beats = beat_times(duration, bpm, offset)
    clicks = click_level * place(n, sample_rate, beats, click(sample_rate))
    note = tone(period / 2, sample_rate, bass_hz, 1.0, fade=0.02).astype(np.float64)
    bass = bass_level * place(n, sample_rate, beats[::2], note)
    off = beats + period / 2
    off = off[off < duration]
    hats = np.zeros(n)
    for t in off:  # each burst its own noise
        hats += hat_level * place(n, sample_rate, np.array([t]), hat(sample_rate, rng))
    centre = clicks + bass
    if channels == 1:
        out = (centre + hats)[None]
    else:
        out = np.stack([centre + 0.8 * hats, centre + 1.2 * hats])
    return np.clip(out, -1.0, 1.0).astype(np.float32)


# a demo song's sections: (share of the duration, click, bass, hats)
SONG_SECTIONS = ((0.25, 0.0, 0.0, 0.12), (0.25, 0.35, 0.0, 0.2), (0.3, 0.6, 0.45, 0.3),
                 (0.2, 0.0, 0.25, 0.0))


def demo_song(duration: float = 12.0, sample_rate: int = 22050, bpm: float = 120.0,
              channels: int = 2, seed: int = 0) -> np.ndarray:
    """float32 [channels, T]: a short piece with a form, for examples and tests of loud
    against quiet: quiet hats, then clicks join, then a loud section with bass, then a
    breakdown on the bass alone (SONG_SECTIONS). Sections start on beats."""
    n = _samples(duration, sample_rate)
    period = 60.0 / bpm
    out = np.zeros((channels, n), np.float32)
    at = 0.0
    for k, (share, c, b, h) in enumerate(SONG_SECTIONS):
        end = duration if k == len(SONG_SECTIONS) - 1 else \
            at + max(period, round(share * duration / period) * period)
        end = min(end, duration)
        if end <= at:
            break
        part = synth_clip(end - at, sample_rate, bpm, channels, seed + k, c, b, h)
        i = int(math.floor(at * sample_rate + 0.5))
        out[:, i:i + part.shape[1]] += part[:, :n - i]
        at = end
    return np.clip(out, -1.0, 1.0)
