"""Audio features at the video frame rate: loudness, onsets, bass / mid / treble energy, tempo.

One short-time Fourier transform (numpy's FFT, Hann window of about 46 ms, hop a quarter
window, frames centred on multiples of the hop; input above 44 kHz is first averaged down to
about 22 kHz) gives, per hop, the mean-square level of the whole signal and of each band
(calibrated so a full-scale sine reads -3 dB) and the spectral flux (the summed rise of
log-compressed magnitudes against the previous frame's neighbourhood maximum, SuperFlux's
onset detector). Everything after that works on these few numbers per hop:

- per video frame i, covering [i / fps, (i + 1) / fps), the mean of the hops centred in it
  (frames finer than the hop interpolate) -> dB -> 0..1: the top is the song's 99th
  percentile, the floor `dynamic_range_db` below it, and anything under `gate_db` (dBFS) is
  0, so silence reads 0 whatever the song's level. Bands share the whole signal's floor and
  take their own top, but at least half the range above the floor: a band that is quieter
  than the rest by 20 dB still spans 0..1, one far under it (the treble of a bass tone, a
  tone's leakage) stays near 0 instead of being stretched to 1;
- attack / release smoothing (one-pole, separate time constants for rising and falling);
- onsets: flux peaks above an adaptive threshold, median + k * MAD over a sliding window plus
  a small fraction of the song's largest flux, at least `onset_min_gap` apart; each marks the
  frame its time falls in, with a strength (0..1);
- tempo: the autocorrelation of the flux, peaks weighted by a broad prior around 120 BPM and
  refined on the peaks at 2-4 beat periods, within `tempo_range`.

The analysis streams (`AudioAnalyzer.feed` takes blocks of any size and gives the same bytes
as one call on the whole signal), so a long song never needs to be in memory at once, and it
is deterministic: the same audio and settings give the same features.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field, fields
from typing import Any, Mapping, NamedTuple

import numpy as np
import torch

FEATURES = ("loudness", "onsets", "bass", "mid", "treble", "flux")
BANDS = ("bass", "mid", "treble")
MIN_SAMPLE_RATE = 1000
ANALYSIS_RATE = 22050  # higher rates are averaged down to about this
MAX_FPS = 1000.0
_FLUX_GAMMA = 100.0  # log1p(gamma * magnitude): linear under -40 dBFS, logarithmic above
_SILENT_DB = -200.0
_BATCH = 256  # STFT frames per FFT call
_TEMPO_KERNEL = np.exp(-0.5 * np.arange(-3, 4) ** 2) / np.exp(-0.5 * np.arange(-3, 4) ** 2).sum()


@dataclass(frozen=True)
class AnalysisSettings:
    """How features are measured. Times are in seconds, levels in dB.

    bands: the edges (Hz) of bass [b0, b1), mid [b1, b2) and treble [b2, Nyquist].
    window: the STFT window (rounded to a power of two samples; the hop is a quarter of it).
    attack / release: smoothing time constants of loudness and band energies.
    dynamic_range_db: the span below a feature's top that maps to 0..1; gate_db: absolute
    level (dBFS) under which a frame is silent (0, no onset).
    onset_k, onset_window, onset_delta, onset_min_gap: the onset threshold is median + k *
    MAD of the flux over onset_window seconds plus onset_delta times the song's largest flux;
    peaks closer than onset_min_gap keep the stronger; onset_floor is the least flux (the
    summed rise of log-compressed magnitudes) an onset needs at all: a steady tone's ripple
    stays under 0.04, a click at -46 dBFS gives about 1, at -26 dBFS about 10.
    tempo_range: the BPM range searched; tempo_prior: the centre (BPM) of the broad prior
    (one octave wide) that settles half / double tempo ambiguity."""

    bands: tuple[float, float, float] = (20.0, 250.0, 4000.0)
    window: float = 0.046
    attack: float = 0.02
    release: float = 0.25
    dynamic_range_db: float = 40.0
    gate_db: float = -70.0
    onset_k: float = 3.0
    onset_window: float = 1.0
    onset_delta: float = 0.05
    onset_min_gap: float = 0.1
    onset_floor: float = 0.1
    tempo_range: tuple[float, float] = (60.0, 180.0)
    tempo_prior: float = 120.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            values = value if isinstance(value, tuple) else (value,)
            if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
                raise ValueError(f"analysis setting {f.name}: expected finite numbers, got "
                                 f"{value!r}")
        b = self.bands
        if len(b) != 3 or not 0 <= b[0] < b[1] < b[2]:
            raise ValueError(f"bands: expected three increasing edges in Hz (bass from, "
                             f"bass/mid, mid/treble), e.g. (20, 250, 4000); got {b!r}")
        if not 0.005 <= self.window <= 0.5:
            raise ValueError(f"window must be between 0.005 and 0.5 s, got {self.window}")
        lo, hi = self.tempo_range if len(self.tempo_range) == 2 else (0, 0)
        if not 10 <= lo < hi <= 400:
            raise ValueError(f"tempo_range: expected (low, high) BPM within 10..400, got "
                             f"{self.tempo_range!r}")
        for name in ("attack", "release", "onset_k", "onset_delta", "onset_min_gap",
                     "onset_floor"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.dynamic_range_db <= 0 or self.onset_window <= 0 or self.tempo_prior <= 0:
            raise ValueError("dynamic_range_db, onset_window and tempo_prior must be positive")


@dataclass(frozen=True, eq=False)
class AudioFeatures:
    """One value per video frame (numpy float32 [frames], 0..1 unless stated).

    loudness, bass, mid, treble: smoothed levels; flux: the onset detector's output;
    onsets: bool, the frames where an onset falls; onset_strength: its strength (0 elsewhere);
    loudness_db: the unsmoothed level in dBFS (-200 for digital silence);
    onset_times: seconds of each onset (hop precision) from the segment's start;
    tempo_bpm: the tempo estimate (0.0 when no beat is found), tempo_confidence: the
    normalised autocorrelation at the chosen period (0..1)."""

    fps: float
    frames: int
    sample_rate: int
    samples: int
    loudness: np.ndarray
    onsets: np.ndarray
    onset_strength: np.ndarray
    bass: np.ndarray
    mid: np.ndarray
    treble: np.ndarray
    flux: np.ndarray
    loudness_db: np.ndarray
    onset_times: np.ndarray
    tempo_bpm: float = 0.0
    tempo_confidence: float = 0.0
    settings: AnalysisSettings = field(default_factory=AnalysisSettings)

    @property
    def duration(self) -> float:
        """Seconds of audio analysed (samples / sample_rate)."""
        return self.samples / self.sample_rate

    def feature(self, name: str) -> np.ndarray:
        """A per-frame feature by name (FEATURES); "onsets" gives the onset strengths."""
        if name not in FEATURES:
            raise ValueError(f"feature must be one of {FEATURES}, got {name!r}")
        return self.onset_strength if name == "onsets" else getattr(self, name)

    def bands(self) -> np.ndarray:
        """[frames, 3] float32: bass, mid, treble."""
        return np.stack([self.bass, self.mid, self.treble], 1)

    def summary(self) -> dict[str, Any]:
        return {"frames": self.frames, "fps": self.fps, "seconds": round(self.duration, 4),
                "sample_rate": self.sample_rate, "onsets": int(self.onsets.sum()),
                "tempo_bpm": round(self.tempo_bpm, 2),
                "tempo_confidence": round(self.tempo_confidence, 3)}

    @classmethod
    def from_curves(cls, fps: float, frames: int, sample_rate: int = 22050,
                    **curves: Any) -> "AudioFeatures":
        """Features from hand-made curves (arrays or scalars per name in FEATURES; missing
        ones are 0): for tests and for driving a walk without audio. `onsets` may be bool or
        strengths."""
        fps = check_fps(fps)
        frames = int(frames)
        if frames < 1:
            raise ValueError(f"frames must be at least 1, got {frames}")
        unknown = set(curves) - set(FEATURES) - {"tempo_bpm"}
        if unknown:
            raise ValueError(f"unknown feature curves {sorted(unknown)}; expected {FEATURES}")

        def curve(name: str) -> np.ndarray:
            v = np.broadcast_to(np.asarray(curves.get(name, 0.0), np.float32), (frames,))
            if not np.isfinite(v).all():
                raise ValueError(f"feature curve {name!r} has NaN or infinite values")
            return np.clip(v, 0.0, 1.0).astype(np.float32)

        strength = curve("onsets")
        return cls(fps, frames, int(sample_rate), frame_samples(frames, fps, sample_rate),
                   curve("loudness"), strength > 0, strength, curve("bass"), curve("mid"),
                   curve("treble"), curve("flux"),
                   np.where(curve("loudness") > 0, -20.0, _SILENT_DB).astype(np.float32),
                   (np.flatnonzero(strength > 0) / fps).astype(np.float64),
                   float(curves.get("tempo_bpm", 0.0)), 0.0)


# ----------------------------------------------------------------------------- checks


def check_fps(fps: float, what: str = "fps") -> float:
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number of frames per second, got {fps!r}") from None
    if not math.isfinite(value) or not 0 < value <= MAX_FPS:
        raise ValueError(f"{what} must be above 0 and at most {MAX_FPS:g}, got {fps!r}")
    return value


def check_sample_rate(sample_rate: Any, what: str = "sample_rate") -> int:
    try:
        value = float(sample_rate)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number of samples per second, got "
                         f"{sample_rate!r}") from None
    if not math.isfinite(value) or value != int(value) or value < MIN_SAMPLE_RATE:
        raise ValueError(f"{what} must be a whole number of Hz, at least {MIN_SAMPLE_RATE}; "
                         f"got {sample_rate!r}")
    return int(value)


def as_waveform(waveform: Any, what: str = "audio", finite: bool = True) -> torch.Tensor:
    """A waveform as float32 [C, T]: from [T], [C, T] or ComfyUI's [B, C, T] with B = 1 (a
    torch tensor or a numpy array). Refuses empty audio and (unless `finite` is False, for
    callers that check as they go) NaN / infinite samples, naming `what`."""
    if isinstance(waveform, np.ndarray):
        waveform = torch.from_numpy(np.ascontiguousarray(waveform))
    if not isinstance(waveform, torch.Tensor):
        raise ValueError(f"{what}: expected a waveform tensor, got {type(waveform).__name__}")
    if not (waveform.is_floating_point()):
        raise ValueError(f"{what}: expected float samples in [-1, 1], got {waveform.dtype}")
    x = waveform.detach()
    if x.dim() == 3:
        if x.shape[0] != 1:
            raise ValueError(f"{what}: a batch of {x.shape[0]} clips [B, C, T]; the analysis "
                             "takes one clip (B = 1)")
        x = x[0]
    elif x.dim() == 1:
        x = x.unsqueeze(0)
    if x.dim() != 2:
        raise ValueError(f"{what}: expected a waveform [C, T] or [B, C, T], got shape "
                         f"{tuple(waveform.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{what} is empty: shape {tuple(waveform.shape)} has no samples")
    if x.shape[0] > 64:
        raise ValueError(f"{what}: {x.shape[0]} channels; expected [C, T] with channels first "
                         f"(is it [T, C]? shape {tuple(waveform.shape)})")
    x = x.to("cpu", torch.float32)
    for i in range(0, x.shape[1] if finite else 0, 1 << 20):  # bounded temporaries for a long song
        if not torch.isfinite(x[:, i:i + (1 << 20)]).all():
            raise ValueError(f"{what} has NaN or infinite samples")
    return x


def audio_waveform(audio: Mapping[str, Any], what: str = "audio") -> tuple[torch.Tensor, int]:
    """ComfyUI's AUDIO (`{"waveform": [B, C, T], "sample_rate": int}`) -> ([C, T], rate)."""
    if not isinstance(audio, Mapping) or "waveform" not in audio or "sample_rate" not in audio:
        raise ValueError(f"{what}: expected an AUDIO value {{'waveform': [B, C, T], "
                         f"'sample_rate': int}}, got {type(audio).__name__}")
    rate = check_sample_rate(audio["sample_rate"], f"{what} sample_rate")
    return as_waveform(audio["waveform"], what), rate


# ----------------------------------------------------------------------------- segments


def frame_count(duration: float, fps: float) -> int:
    """round(duration * fps), halves rounded up: the frames of a segment."""
    return int(math.floor(float(duration) * check_fps(fps) + 0.5))


def frame_samples(frames: int, fps: float, sample_rate: int) -> int:
    """The audio samples that span `frames` video frames: round(frames * rate / fps)."""
    return int(math.floor(int(frames) * int(sample_rate) / float(fps) + 0.5))


def frame_sample(index: int, fps: float, sample_rate: int) -> int:
    """The first sample of video frame `index` (frame_samples of the frames before it)."""
    return frame_samples(index, fps, sample_rate)


class SegmentBounds(NamedTuple):
    start: int  # first sample
    samples: int  # samples in the segment, padding included
    frames: int  # video frames (0 without an fps)
    pad: int  # silent samples added at the end (under one frame's worth)


def segment_bounds(total: int, sample_rate: int, start: float = 0.0,
                   duration: float | None = None, fps: float | None = None,
                   what: str = "audio") -> SegmentBounds:
    """Where [start, start + duration) lies in `total` samples. With `fps` the segment is
    quantised to whole frames: frames = round(duration * fps) and samples =
    round(frames * rate / fps), so sound and picture end together (within half a sample);
    when that rounding reaches past the end (by less than a frame) the rest is silence
    (`pad`). Without a duration the segment runs to the end: as many whole frames as fit."""
    rate = check_sample_rate(sample_rate, f"{what} sample_rate")
    if fps is not None:
        fps = check_fps(fps)
    length = total / rate
    try:
        start = float(start)
    except (TypeError, ValueError):
        raise ValueError(f"start must be a number of seconds, got {start!r}") from None
    if not math.isfinite(start) or start < 0:
        raise ValueError(f"start must be 0 or more seconds, got {start!r}")
    s0 = int(math.floor(start * rate + 0.5))
    if s0 >= total:
        raise ValueError(f"start {start:g} s is at or past the end of the {what} "
                         f"({length:.3f} s long)")
    left = total - s0
    if duration is None:
        if fps is None:
            return SegmentBounds(s0, left, 0, 0)
        frames = int(math.floor(left * fps / rate + 1e-9))
        if frames < 1:
            raise ValueError(f"the {what} from {start:g} s is shorter than one frame at "
                             f"{fps:g} fps ({left} samples)")
        return SegmentBounds(s0, frame_samples(frames, fps, rate), frames, 0)
    try:
        duration = float(duration)
    except (TypeError, ValueError):
        raise ValueError(f"duration must be a number of seconds, got {duration!r}") from None
    if not math.isfinite(duration) or duration <= 0:
        raise ValueError(f"duration must be above 0 seconds, got {duration!r}")
    if duration * rate > left + 0.5:
        raise ValueError(f"duration {duration:g} s from start {start:g} s runs past the end of "
                         f"the {what} ({length:.3f} s long); at most {left / rate:.3f} s fit")
    if fps is None:
        n = min(left, int(math.floor(duration * rate + 0.5)))
        return SegmentBounds(s0, n, 0, 0)
    frames = frame_count(duration, fps)
    if frames < 1:
        raise ValueError(f"duration {duration:g} s is shorter than one frame at {fps:g} fps")
    n = frame_samples(frames, fps, rate)
    return SegmentBounds(s0, n, frames, max(0, n - left))


def segment(waveform: Any, sample_rate: int, start: float = 0.0, duration: float | None = None,
            fps: float | None = None) -> torch.Tensor:
    """The samples of [start, start + duration) (seconds; None: to the end) of a waveform
    [T], [C, T] or [B, C, T], the same layout and dtype. With `fps`, quantised to whole video
    frames as segment_bounds says, so `analyze(cut, rate, fps).frames` is round(duration *
    fps) and the cut lasts exactly that many frames (within half a sample)."""
    if isinstance(waveform, np.ndarray):
        waveform = torch.from_numpy(np.ascontiguousarray(waveform))
    as_waveform(waveform if waveform.dim() != 3 else waveform[:1], "audio")
    b = segment_bounds(int(waveform.shape[-1]), sample_rate, start, duration, fps)
    cut = waveform[..., b.start:b.start + b.samples - b.pad]
    if b.pad:
        cut = torch.cat([cut, cut.new_zeros((*cut.shape[:-1], b.pad))], -1)
    return cut


# ----------------------------------------------------------------------------- analysis


def fft_size(sample_rate: float, window: float) -> int:
    return int(2 ** max(6, round(math.log2(window * sample_rate))))


class AudioAnalyzer:
    """Streaming analysis: `feed` blocks of samples ([C, n] or [n], any sizes, float in
    [-1, 1]), then `finish()` for the AudioFeatures of everything fed. Memory stays at a few
    numbers per hop (about 86 hops per second), whatever the song's length.

    Rates of 44.1 kHz and up are analysed at about 22 kHz (the mean of each 2, 3, 4 ...
    samples: 44.1 and 48 kHz -> 22.05 and 24 kHz), which halves the work or better and keeps
    every band up to 11 kHz; `rate` is the analysis rate, `sample_rate` the input's."""

    def __init__(self, sample_rate: int, fps: float, settings: AnalysisSettings | None = None):
        self.sample_rate = check_sample_rate(sample_rate)
        self.fps = check_fps(fps)
        self.settings = settings or AnalysisSettings()
        self.factor = max(1, self.sample_rate // ANALYSIS_RATE)
        self.rate = self.sample_rate / self.factor
        self.n_fft = fft_size(self.rate, self.settings.window)
        self.hop = self.n_fft // 4
        window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(self.n_fft) / self.n_fft)
        self.window = window.astype(np.float32)  # spectra in float32: half the memory traffic
        self._ms_scale = 2.0 / (self.n_fft * float(np.sum(window ** 2)))
        self._flux_scale = np.float32(_FLUX_GAMMA * 2.0 / float(np.sum(window)))
        freqs = np.arange(self.n_fft // 2 + 1) * self.rate / self.n_fft
        self._edges = [int(np.searchsorted(freqs, b, "left")) for b in self.settings.bands]
        self.samples = 0  # at the input's rate
        self.analysed = 0  # at the analysis rate
        self.channels: int | None = None
        self._pending = np.zeros((0, 0))  # [C, r]: input samples short of a whole group
        # the centred STFT's padded signal: n_fft / 2 zeros, then the samples
        self._buf = np.zeros(self.n_fft // 2, np.float32)
        self._buf_start = 0  # padded index of _buf[0]
        self._next = 0  # next STFT frame
        self._prev: np.ndarray | None = None  # the last frame's flux reference
        self._ms: list[np.ndarray] = []  # per hop: [4] mean squares (all, bass, mid, treble)
        self._flux: list[np.ndarray] = []
        self._done = False

    def feed(self, block: Any) -> None:
        if self._done:
            raise RuntimeError("AudioAnalyzer: finish() was already called")
        if isinstance(block, torch.Tensor):
            block = block.detach().cpu().numpy()
        x = np.asarray(block)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2:
            raise ValueError(f"audio block: expected [C, n] samples, got {tuple(x.shape)}")
        if self.channels is None:
            self.channels = int(x.shape[0])
        elif x.shape[0] != self.channels:
            raise ValueError(f"audio block: {x.shape[0]} channels after {self.channels}")
        if x.shape[1] == 0:
            return
        self.samples += x.shape[1]
        q = self.factor
        if self._pending.shape[1]:  # whole groups of q, aligned on the input's first sample
            x = np.concatenate([self._pending, x.astype(np.float64)], 1)
        whole = x.shape[1] - x.shape[1] % q
        self._pending = x[:, whole:].astype(np.float64)
        # the mean over channels and each group of q samples, summed in one fixed order
        mono = np.zeros(whole // q)
        for c in range(x.shape[0]):
            for k in range(q):
                mono += x[c, k:whole:q]
        mono *= 1.0 / (x.shape[0] * q)
        if not np.isfinite(mono).all():
            raise ValueError("audio has NaN or infinite samples")
        self._append(mono)

    def _append(self, samples: np.ndarray) -> None:
        self.analysed += samples.shape[0]
        self._buf = np.concatenate([self._buf, samples.astype(np.float32)])
        self._run(final=False)

    def _run(self, final: bool) -> None:
        end = self._buf_start + len(self._buf)  # padded samples available
        last = (self.analysed - 1) // self.hop if self.analysed else -1  # frames centred < T
        while self._next <= last:
            first = self._next * self.hop
            ready = (end - self.n_fft - first) // self.hop + 1
            count = min(_BATCH, last - self._next + 1, ready)
            if count <= 0:
                break
            off = first - self._buf_start
            frames = np.lib.stride_tricks.sliding_window_view(
                self._buf[off:off + (count - 1) * self.hop + self.n_fft], self.n_fft)[::self.hop]
            self._spectra(frames)
            self._next += count
        keep = self._next * self.hop - self._buf_start
        if keep > 0 and not final:
            self._buf = self._buf[keep:].copy()
            self._buf_start += keep

    def _spectra(self, frames: np.ndarray) -> None:
        spec = np.fft.rfft(frames * self.window, axis=-1)
        power = spec.real ** 2
        power += spec.imag ** 2
        e0, e1, e2 = self._edges
        out = np.empty((len(frames), 4))
        out[:, 0] = power.sum(-1)  # float32 pairwise sums, stored as float64
        out[:, 1] = power[:, e0:e1].sum(-1)
        out[:, 2] = power[:, e1:e2].sum(-1)
        out[:, 3] = power[:, e2:].sum(-1)
        out *= self._ms_scale
        logmag = np.sqrt(power[:, e0:])
        logmag *= self._flux_scale
        np.log1p(logmag, out=logmag)
        # SuperFlux's reference: the previous frame's maximum over neighbouring bins, so the
        # slow ripple of a steady tone's leakage is no onset
        ref = logmag.copy()
        np.maximum(ref[:, 1:], logmag[:, :-1], out=ref[:, 1:])
        np.maximum(ref[:, :-1], logmag[:, 1:], out=ref[:, :-1])
        prev = np.concatenate([(ref[:1] if self._prev is None else self._prev), ref[:-1]])
        self._prev = ref[-1:].copy()
        self._ms.append(out)
        logmag -= prev
        np.maximum(logmag, np.float32(0.0), out=logmag)
        self._flux.append(logmag.sum(-1).astype(np.float64))

    def finish(self) -> AudioFeatures:
        """The features of everything fed (the analyzer cannot be fed after this)."""
        if self._done:
            raise RuntimeError("AudioAnalyzer: finish() was already called")
        if self.samples == 0:
            raise ValueError("audio is empty: no samples were given")
        frames = int(math.floor(self.samples * self.fps / self.sample_rate + 0.5))
        if frames < 1:
            raise ValueError(f"audio of {self.samples} samples at {self.sample_rate} Hz is "
                             f"shorter than half a frame at {self.fps:g} fps")
        if self._pending.size:  # the last, partial group
            self._append(np.array([self._pending.mean()]))
            self._pending = np.zeros((0, 0))
        self._buf = np.concatenate([self._buf, np.zeros(self.n_fft, np.float32)])
        self._run(final=True)
        self._done = True
        ms = np.concatenate(self._ms)
        flux = np.concatenate(self._flux)
        self._ms, self._flux, self._buf = [], [], np.zeros(0)
        return _features(self, ms, flux, frames)


def _features(an: AudioAnalyzer, ms: np.ndarray, flux: np.ndarray, frames: int) -> AudioFeatures:
    s = an.settings
    fps, rate, hop = an.fps, an.rate, an.hop
    hop_db = 10.0 * np.log10(ms[:, 0] + 1e-20)
    # silent hops and those whose window reaches past either end (the zero padding's edge
    # is no onset) cannot mark onsets
    centre = np.arange(len(flux)) * hop
    inside = (centre - hop >= an.n_fft // 2) & (centre + an.n_fft // 2 <= an.analysed)
    flux = np.where((hop_db >= s.gate_db) & inside, flux, 0.0)
    per_frame = frame_means(ms, hop, rate, fps, frames)
    db = np.maximum(10.0 * np.log10(per_frame + 1e-20), _SILENT_DB)
    top = level_top(db[:, 0], s.gate_db)
    r = s.dynamic_range_db
    levels = [normalise_db(db[:, 0], top, top - r if top is not None else None, s)]
    for k in range(1, 4):
        own = level_top(db[:, k], s.gate_db)
        if top is None or own is None:
            levels.append(np.zeros(frames))
            continue
        # floor: the whole signal's; top: the band's own, but at least half the range up,
        # so a band far under the rest (a tone's leakage) stays near 0, not stretched to 1
        levels.append(normalise_db(db[:, k], max(own, top - r / 2), top - r, s))
    smooth = [envelope(v, fps, s.attack, s.release) for v in levels]
    flux_frames = frame_means(flux[:, None], hop, rate, fps, frames)[:, 0]
    peak = float(np.percentile(flux_frames, 99)) if flux_frames.size else 0.0
    flux_norm = np.clip(flux_frames / peak, 0.0, 1.0) if peak > 0 else np.zeros(frames)
    times, strengths = pick_onsets(flux, rate / hop, s)
    onset_strength = np.zeros(frames, np.float32)
    idx = np.minimum(np.floor(times * fps + 1e-9).astype(np.int64), frames - 1)
    np.maximum.at(onset_strength, idx, strengths.astype(np.float32))
    bpm, confidence = estimate_tempo(flux, rate / hop, s.tempo_range, s.tempo_prior)

    def f32(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a, dtype=np.float32)

    return AudioFeatures(
        fps, frames, an.sample_rate, an.samples, f32(smooth[0]), onset_strength > 0, onset_strength,
        f32(smooth[1]), f32(smooth[2]), f32(smooth[3]), f32(flux_norm), f32(db[:, 0]),
        times.astype(np.float64), float(bpm), float(confidence), s)


def frame_means(hops: np.ndarray, hop: int, rate: float, fps: float, frames: int) -> np.ndarray:
    """[frames, K]: per video frame the mean of the hop values ([H, K]) centred in it; frames
    no hop centre falls in (frame rates above the hop rate) interpolate linearly."""
    n = len(hops)
    idx = np.floor(np.arange(n) * (hop * fps / rate) + 1e-9).astype(np.int64)
    inside = idx < frames
    counts = np.bincount(idx[inside], minlength=frames)[:frames].astype(np.float64)
    out = np.empty((frames, hops.shape[1]))
    for k in range(hops.shape[1]):
        out[:, k] = np.bincount(idx[inside], weights=hops[inside, k], minlength=frames)[:frames]
    empty = counts == 0
    out[~empty] /= counts[~empty, None]
    if empty.any() and n:
        centres = (np.flatnonzero(empty) + 0.5) / fps
        hop_t = np.arange(n) * hop / rate
        for k in range(hops.shape[1]):
            out[empty, k] = np.interp(centres, hop_t, hops[:, k])
    elif empty.any():
        out[empty] = 0.0
    return out


def level_top(db: np.ndarray, gate_db: float) -> float | None:
    """The 99th percentile of the frames above the gate (None when all are silent)."""
    live = db[db >= gate_db]
    return float(np.percentile(live, 99)) if live.size else None


def normalise_db(db: np.ndarray, top: float | None, floor: float | None,
                 s: AnalysisSettings) -> np.ndarray:
    """dB -> 0..1: top -> 1, floor -> 0, under the gate -> 0."""
    if top is None or floor is None:
        return np.zeros(len(db))
    out = np.clip((db - floor) / max(top - floor, 1e-6), 0.0, 1.0)
    return np.where(db >= s.gate_db, out, 0.0)


def envelope(x: np.ndarray, fps: float, attack: float, release: float) -> np.ndarray:
    """One-pole attack / release smoothing at the frame rate (time constants in seconds; 0
    follows at once). Starts from 0, so a silent start stays 0."""
    up = 1.0 - math.exp(-1.0 / (attack * fps)) if attack > 0 else 1.0
    down = 1.0 - math.exp(-1.0 / (release * fps)) if release > 0 else 1.0
    out = np.empty(len(x))
    y = 0.0
    for i, v in enumerate(np.asarray(x, np.float64).tolist()):
        y += (up if v > y else down) * (v - y)
        out[i] = y
    return out


def sliding_median(x: np.ndarray, width: int) -> np.ndarray:
    """The median of each centred window of `width` (odd) values, edges repeated."""
    half = width // 2
    padded = np.pad(x, half, mode="edge")
    out = np.empty(len(x))
    for i in range(0, len(x), 4096):  # bounded temporaries
        view = np.lib.stride_tricks.sliding_window_view(padded[i:i + 4096 + 2 * half], width)
        out[i:i + len(view)] = np.median(view, axis=1)
    return out


def pick_onsets(flux: np.ndarray, hop_rate: float,
                s: AnalysisSettings) -> tuple[np.ndarray, np.ndarray]:
    """(times in seconds, strengths 0..1) of the flux peaks above the adaptive threshold."""
    if len(flux) < 3 or not flux.max() > 0:
        return np.zeros(0), np.zeros(0)
    width = max(3, int(round(s.onset_window * hop_rate)) | 1)
    med = sliding_median(flux, width)
    mad = sliding_median(np.abs(flux - med), width)
    threshold = med + s.onset_k * mad + s.onset_delta * float(flux.max())
    near = max(1, int(round(0.03 * hop_rate)))
    padded = np.pad(flux, near, mode="constant", constant_values=-1.0)
    local = np.lib.stride_tricks.sliding_window_view(padded, 2 * near + 1).max(1)
    cand = np.flatnonzero((flux >= local) & (flux > threshold) & (flux > s.onset_floor))
    gap = s.onset_min_gap * hop_rate
    order = cand[np.lexsort((cand, -flux[cand]))]  # strongest first, earlier on ties
    kept: list[int] = []  # sorted
    for j in order.tolist():
        at = bisect.bisect_left(kept, j)
        if (at == 0 or j - kept[at - 1] >= gap) and (at == len(kept) or kept[at] - j >= gap):
            kept.insert(at, j)
    kept_arr = np.array(kept, dtype=np.int64)
    if not kept_arr.size:
        return np.zeros(0), np.zeros(0)
    ref = float(np.percentile(flux[kept_arr], 90))
    strengths = np.clip(flux[kept_arr] / ref, 0.0, 1.0) if ref > 0 else np.ones(len(kept_arr))
    # a flux peak marks the first hop whose window rose: the onset lies about half a hop on
    return (kept_arr + 0.5) / hop_rate, strengths


def _parabolic(r: np.ndarray, i: int) -> float:
    """The vertex of the parabola through r[i-1], r[i], r[i+1]."""
    if i <= 0 or i >= len(r) - 1:
        return float(i)
    a, b, c = r[i - 1], r[i], r[i + 1]
    den = a - 2 * b + c
    return float(i) if den >= 0 else i + 0.5 * (a - c) / den


def estimate_tempo(flux: np.ndarray, hop_rate: float, bpm_range: tuple[float, float] = (60, 180),
                   prior_bpm: float = 120.0) -> tuple[float, float]:
    """(BPM, confidence) from the autocorrelation of the onset envelope; (0, 0) without one."""
    x = np.asarray(flux, np.float64)
    if len(x) > 7:  # a Gaussian of one hop: a period between two hop counts keeps one peak
        x = np.convolve(x, _TEMPO_KERNEL, mode="same")
    x = x - float(np.mean(x)) if len(x) else x
    lo_lag = int(math.floor(hop_rate * 60.0 / bpm_range[1]))
    hi_lag = int(math.ceil(hop_rate * 60.0 / bpm_range[0]))
    max_lag = min(len(x) - 2, 4 * hi_lag + 4)
    if max_lag < max(2, lo_lag + 1) or not np.any(x):
        return 0.0, 0.0
    size = 1 << int(math.ceil(math.log2(2 * len(x))))
    spec = np.fft.rfft(x, size)
    r = np.fft.irfft(spec.real ** 2 + spec.imag ** 2, size)[:max_lag + 2]
    if not r[0] > 0:
        return 0.0, 0.0
    r = r / r[0]
    best, best_score = None, 0.0
    for lag in range(max(2, lo_lag), min(hi_lag, max_lag) + 1):
        if r[lag] > 0 and r[lag] >= r[lag - 1] and r[lag] >= r[lag + 1]:
            bpm = 60.0 * hop_rate / lag
            score = r[lag] * math.exp(-0.5 * math.log2(bpm / prior_bpm) ** 2)
            if score > best_score:
                best, best_score = lag, score
    if best is None:
        return 0.0, 0.0
    period = _parabolic(r, best)
    estimates, weights = [period], [1.0]
    for k in range(2, 5):
        centre = int(round(k * period))
        if centre + 3 > max_lag:
            break
        window = range(centre - 2, centre + 3)
        peak = max(window, key=lambda i: r[i])
        if r[peak] <= 0:
            break
        estimates.append(_parabolic(r, peak) / k)
        weights.append(float(k))
    period = float(np.average(estimates, weights=weights))
    bpm = 60.0 * hop_rate / period
    if not bpm_range[0] * 0.97 <= bpm <= bpm_range[1] * 1.03:
        return 0.0, 0.0
    return bpm, float(np.clip(r[best], 0.0, 1.0))


def analyze(waveform: Any, sample_rate: int, fps: float,
            settings: AnalysisSettings | None = None) -> AudioFeatures:
    """AudioFeatures of a whole waveform ([T], [C, T] or [1, C, T]; any rate, mono or
    stereo): round(seconds * fps) frames. Cut a segment first with `segment(..., fps=fps)`
    so the frame count is exactly round(duration * fps)."""
    rate = check_sample_rate(sample_rate)
    fps = check_fps(fps)
    x = as_waveform(waveform, finite=False)  # the analyzer checks each block
    analyzer = AudioAnalyzer(rate, fps, settings)
    for i in range(0, x.shape[1], 1 << 18):
        analyzer.feed(x[:, i:i + (1 << 18)].numpy())
    return analyzer.finish()


def analyze_audio(audio: Mapping[str, Any], fps: float, start: float = 0.0,
                  duration: float | None = None,
                  settings: AnalysisSettings | None = None) -> tuple[AudioFeatures, dict]:
    """For ComfyUI's AUDIO: the features of [start, start + duration) (None: to the end, in
    whole frames) and that segment as an AUDIO value ({"waveform": [1, C, n], "sample_rate"}),
    whose length matches the frames exactly (round(frames * rate / fps) samples)."""
    waveform, rate = audio_waveform(audio)
    cut = segment(waveform, rate, start, duration, fps)
    features = analyze(cut, rate, fps, settings)
    return features, {"waveform": cut.unsqueeze(0).contiguous(), "sample_rate": rate}
