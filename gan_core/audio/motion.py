"""The audio-reactive walk: per-frame latent codes (and a camera path) driven by AudioFeatures.

Four motions add up, each with its own strength in ReactiveSettings:

- the walk: a looping path through keyframes (seeds, after an optional start latent) whose
  position advances `base_speed + loudness_gain * loudness` keyframe segments per second,
  linear in w for mapping models and spherical in z for the others (as gan_core.walk);
- onsets: each one sets a pulse envelope to its strength, which decays with time constant
  `pulse_decay`; the pulse jumps the walk forward (`onset_jump` of a segment in all, spread
  over the decay) and pushes the code along a fixed random direction (`onset_push`);
- bands: for generators with per-layer styles (n_latent > 1, w+) bass moves the coarse
  layers, mid the middle ones and treble the fine ones, each along its own fixed random
  direction by `<band>_gain * energy`; a model with one latent (z-only) takes the bands as
  the amplitude of one displacement;
- the camera (generators whose LatentIO has a camera, StyleGAN3): per frame (tx, ty, degrees),
  translation in image widths, `pan_x`, `pan_y`, `rotate` times the chosen feature, turning
  direction slowly (`camera_rate` Hz), at rest when the feature is 0.

Displacements are in units of the codes' spread (the per-element standard deviation of w
over 256 seeds for mapping models, 1 for a Gaussian z), with directions of unit RMS, so a
strength of 1 moves about as far as from one typical image toward another. Silence gives the
base drift alone, and the same features and settings give the same codes.

Codes are made on demand for any frame range (`ReactiveMotion.codes(start, count)`) and
`iter_frames` / `render_frames` render them in chunks, so memory stays flat whatever the
song's length.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np
import torch

from ..latent.edit import style_layer_indices
from ..latent.paths import callback_hooks, lerp, slerp
from ..latent.space import GANLatent
from ..seeds import latents_for_seeds, parse_seeds
from .analysis import FEATURES, AudioFeatures, check_fps

if TYPE_CHECKING:
    from ..latent.space import LatentSpace

log = logging.getLogger("gan_core")

CAMERA_FEATURES = ("none",) + FEATURES
INTERPOLATIONS = ("auto", "linear", "spherical")
LAYER_GROUPS = ("coarse", "middle", "fine")
BAND_LAYERS = {"bass": "coarse", "mid": "middle", "treble": "fine"}
SPREAD_SAMPLES = 256
PATH_NOISE = ("fixed", "none")
CameraFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ReactiveSettings:
    """Every strength of the reactive walk. Speeds are in keyframe segments per second;
    displacements in units of the codes' spread; camera pans in image widths, rotation in
    degrees, at full feature (1.0)."""

    base_speed: float = 0.05  # the drift in silence: one keyframe every 20 s
    loudness_gain: float = 0.25  # + at full loudness: one keyframe every ~3.3 s in all
    onset_jump: float = 0.1  # an onset of strength 1 advances the walk this much of a segment
    onset_push: float = 0.5  # and pushes the code this far along the pulse direction
    pulse_decay: float = 0.2  # seconds for a pulse to fall to 1/e
    bass_gain: float = 0.6  # coarse layers (pose, shape)
    mid_gain: float = 0.4  # middle layers (features)
    treble_gain: float = 0.3  # fine layers (colour, texture)
    camera_feature: str = "bass"  # one of CAMERA_FEATURES ("onsets" follows the pulse)
    pan_x: float = 0.03
    pan_y: float = 0.02
    rotate: float = 2.0
    camera_rate: float = 0.05  # Hz: the camera's direction turns once in 20 s
    direction_seed: int = 0  # the random directions of pulses and bands
    interpolation: str = "auto"  # auto: linear in w for mapping models, spherical in z

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("camera_feature", "interpolation"):
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not math.isfinite(value):
                raise ValueError(f"reactive setting {f.name}: expected a finite number, got "
                                 f"{value!r}")
        for name in ("base_speed", "loudness_gain", "onset_jump", "pulse_decay", "camera_rate"):
            value = getattr(self, name)
            if not 0 <= value <= 100:
                raise ValueError(f"reactive setting {name} must be between 0 and 100, got {value}")
        for name in ("onset_push", "bass_gain", "mid_gain", "treble_gain"):
            if abs(getattr(self, name)) > 10:
                raise ValueError(f"reactive setting {name} must be between -10 and 10 (code "
                                 f"spreads), got {getattr(self, name)}")
        if self.camera_feature not in CAMERA_FEATURES:
            raise ValueError(f"camera_feature must be one of {CAMERA_FEATURES}, got "
                             f"{self.camera_feature!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got "
                             f"{self.interpolation!r}")
        if not isinstance(self.direction_seed, int) or self.direction_seed < 0:
            raise ValueError(f"direction_seed must be an integer >= 0, got {self.direction_seed!r}")


PRESETS: dict[str, ReactiveSettings] = {
    # beats first: a slow walk that jumps and flashes on every onset, bands strong, the
    # camera kicked by the onsets
    "pulse": ReactiveSettings(base_speed=0.03, loudness_gain=0.2, onset_jump=0.25,
                              onset_push=0.9, pulse_decay=0.15, bass_gain=0.8, mid_gain=0.5,
                              treble_gain=0.4, camera_feature="onsets", pan_x=0.04, pan_y=0.03,
                              rotate=3.0, camera_rate=0.1),
    # flow first: the walk glides with loudness, onsets barely show, the camera sways with
    # the loudness
    "drift": ReactiveSettings(base_speed=0.08, loudness_gain=0.3, onset_jump=0.0,
                              onset_push=0.15, pulse_decay=0.6, bass_gain=0.3, mid_gain=0.2,
                              treble_gain=0.15, camera_feature="loudness", pan_x=0.05,
                              pan_y=0.03, rotate=2.0, camera_rate=0.03),
}


def preset(name: str | ReactiveSettings | None, **overrides: Any) -> ReactiveSettings:
    """A preset by name (or settings as they are; None: the defaults) with some fields
    replaced, e.g. preset("pulse", bass_gain=1.2)."""
    import dataclasses

    if name is None:
        base = ReactiveSettings()
    elif isinstance(name, ReactiveSettings):
        base = name
    elif name in PRESETS:
        base = PRESETS[name]
    else:
        raise ValueError(f"preset must be one of {tuple(PRESETS)}, got {name!r}")
    unknown = set(overrides) - {f.name for f in fields(ReactiveSettings)}
    if unknown:
        raise ValueError(f"unknown reactive settings {sorted(unknown)}")
    return dataclasses.replace(base, **overrides) if overrides else base


# ----------------------------------------------------------------------------- the plan


@dataclass(eq=False)
class ReactiveMotion:
    """A reactive walk's plan: per-frame scalars (numpy [frames]) from which `codes` makes
    the latent codes of any frame range. `space` is the codes' space: "w+" ([n, n_latent,
    w_dim]) for mapping models with per-layer styles, else the render space ("w" or "z",
    [n, dim]). `camera` is [frames, 3] float32 (tx, ty in image widths, degrees) or None."""

    fps: float
    frames: int
    space: str
    keys: torch.Tensor  # [K, ...] keyframe codes in `space` (CPU, float32)
    position: np.ndarray  # [F] float64: keyframe segments from the first keyframe
    pulse: np.ndarray  # [F] float64: the decaying onset envelope, 0..1
    bands: np.ndarray  # [F, 3] float64: bass, mid, treble energies
    camera: np.ndarray | None
    settings: ReactiveSettings
    scale: float  # the codes' spread
    directions: dict[str, torch.Tensor]  # unit-RMS directions, one code's shape
    groups: dict[str, list[int]]  # w+ rows of coarse / middle / fine
    interpolation: str  # "linear" or "spherical"

    def __len__(self) -> int:
        return self.frames

    def _range(self, start: int, count: int | None) -> tuple[int, int]:
        start = int(start)
        stop = self.frames if count is None else start + int(count)
        if not 0 <= start <= stop <= self.frames:
            raise ValueError(f"frames [{start}, {stop}) are outside this motion's "
                             f"0..{self.frames}")
        return start, stop

    @torch.no_grad()
    def codes(self, start: int = 0, count: int | None = None) -> torch.Tensor:
        """Codes of frames [start, start + count) (default: to the end), CPU float32."""
        start, stop = self._range(start, count)
        pos = torch.from_numpy(self.position[start:stop])
        seg = torch.floor(pos)
        t = (pos - seg).to(torch.float32)
        k = len(self.keys)
        a = seg.long() % k
        b = (a + 1) % k
        mix = slerp if self.interpolation == "spherical" else lerp
        codes = mix(self.keys[a], self.keys[b], t).contiguous()
        s = self.scale
        pulse = torch.from_numpy(self.pulse[start:stop]).to(torch.float32)
        bands = torch.from_numpy(self.bands[start:stop]).to(torch.float32)
        st = self.settings
        gains = (st.bass_gain, st.mid_gain, st.treble_gain)
        if st.onset_push:
            push = self.directions["pulse"] * (st.onset_push * s)
            codes += pulse.view(-1, *([1] * (codes.dim() - 1))) * push
        if self.space == "w+":
            for k_band, (band, group) in enumerate(BAND_LAYERS.items()):
                rows = self.groups.get(group, [])
                if not rows or not gains[k_band]:
                    continue
                move = self.directions[band] * (gains[k_band] * s)
                codes[:, rows] += bands[:, k_band].view(-1, 1, 1) * move
        else:
            amp = sum(bands[:, k] * g for k, g in enumerate(gains) if g)
            if isinstance(amp, torch.Tensor):
                codes += amp.view(-1, *([1] * (codes.dim() - 1))) * (self.directions["bands"] * s)
        return codes

    def camera_rows(self, start: int = 0, count: int | None = None) -> torch.Tensor | None:
        """[n, 3] float32 (tx, ty, degrees) of frames [start, start + count), or None."""
        if self.camera is None:
            return None
        start, stop = self._range(start, count)
        return torch.from_numpy(self.camera[start:stop].copy())


def layer_groups(space: "LatentSpace") -> dict[str, list[int]]:
    """w+ rows of the coarse / middle / fine groups: the module's own ranges when it states
    them (style_layers), else gan_core's (style_layer_indices). A small model lacking one
    group (a 16 px generator has no fine layers) is split into three equal parts instead,
    so every band drives something. {} for one latent."""
    n = int(space.n_latent)
    if n < 2:
        return {}
    own = bool(getattr(getattr(space, "io", None), "style_mixing", False))
    groups: dict[str, list[int]] = {}
    for name in LAYER_GROUPS:
        try:
            rows = space.module.style_layers(name) if own else style_layer_indices(n, name)
        except ValueError:
            rows = []
        groups[name] = sorted(int(i) for i in rows)
    if not all(groups.values()):
        groups = {name: part.tolist() for name, part in
                  zip(LAYER_GROUPS, np.array_split(np.arange(n), 3))}
    return groups


def code_spread(space: "LatentSpace") -> float:
    """The per-element standard deviation of the render-space codes: 1 for a Gaussian z, the
    spread of w over SPREAD_SAMPLES seeds for mapping models."""
    if not space.mapped:
        return 1.0
    z = latents_for_seeds(range(SPREAD_SAMPLES), space.z_dim)
    with torch.no_grad():
        w = space.map_z(z.to(space.device)).detach().to("cpu", torch.float64)
    spread = float(w.var(0, unbiased=True).mean().sqrt())
    return spread if math.isfinite(spread) and spread > 0 else 1.0


def _direction(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    d = torch.randn(shape, generator=generator, dtype=torch.float64)
    return (d / d.pow(2).mean().sqrt()).to(torch.float32)


def _keyframes(space: "LatentSpace", seeds: Sequence[int], start: Any,
               truncation: float) -> tuple[torch.Tensor, str]:
    parts: list[tuple[torch.Tensor, str]] = []
    render = space.render_space
    if start is not None:
        if isinstance(start, GANLatent):
            codes = space.codes_of(start)
            parts.append((codes, "w+" if start.space == "w+" else render))
        elif isinstance(start, torch.Tensor):
            dim = space.w_dim if space.mapped else space.z_dim
            if start.dim() == 2 and start.shape[1] == dim and len(start):
                parts.append((start.detach().to(space.device, torch.float32), render))
            elif start.dim() == 3 and tuple(start.shape[1:]) == (space.n_latent, space.w_dim) \
                    and space.mapped and len(start):
                parts.append((start.detach().to(space.device, torch.float32), "w+"))
            else:
                want = f"[n, {dim}]" + (f" or w+ [n, {space.n_latent}, {space.w_dim}]"
                                        if space.mapped else "")
                raise ValueError(f"start: expected render-space codes {want}, got "
                                 f"{tuple(start.shape)}")
        else:
            raise ValueError(f"start: expected a tensor of codes or a GANLatent, got "
                             f"{type(start).__name__}")
    if seeds:
        parts.append((space.seed_codes(list(seeds), truncation), render))
    if not parts:
        raise ValueError("seeds: a reactive walk needs at least one keyframe (a seed or a "
                         "start latent)")
    target = "w+" if any(s == "w+" for _, s in parts) else render
    keys = torch.cat([space.to_space(c, s, target) for c, s in parts])
    if not torch.isfinite(keys).all():
        raise ValueError("keyframes: the codes have NaN or infinite values")
    return keys.detach().to("cpu", torch.float32), target


def pulse_envelope(strength: np.ndarray, fps: float, decay_seconds: float) -> tuple[np.ndarray, float]:
    """(envelope, per-frame decay factor): env[i] = max(strength[i], env[i-1] * decay)."""
    decay = math.exp(-1.0 / (decay_seconds * fps)) if decay_seconds > 0 else 0.0
    env = np.zeros(len(strength))
    y = 0.0
    for i, v in enumerate(np.asarray(strength, np.float64).tolist()):
        y = max(v, y * decay)
        env[i] = y
    return env, decay


@torch.no_grad()
def reactive_motion(space: "LatentSpace", features: AudioFeatures,
                    seeds: Sequence[int] | str = (0, 1, 2, 3),
                    settings: ReactiveSettings | str | None = None, *, start: Any = None,
                    truncation: float = 1.0, camera: bool | None = None) -> ReactiveMotion:
    """The reactive walk for `features` through keyframes: `start` (render-space codes
    [n, dim] / w+ [n, n_latent, w_dim], or a GANLatent, e.g. an inverted image) then
    `seeds` (codes as GANModel.generate renders them at `truncation`). `settings` is a
    ReactiveSettings or a preset name. `camera` None: a camera path when the generator has a
    camera (its LatentIO says so: StyleGAN3) and the camera feature is not "none"; True /
    False force it."""
    if not isinstance(features, AudioFeatures):
        raise ValueError(f"features: expected AudioFeatures, got {type(features).__name__}")
    st = preset(settings) if not isinstance(settings, ReactiveSettings) else settings
    fps = check_fps(features.fps)
    frames = int(features.frames)
    items = parse_seeds(seeds) if isinstance(seeds, (str, int)) else [int(s) for s in seeds]
    keys, key_space = _keyframes(space, items, start, truncation)
    multi = int(space.n_latent) > 1 and bool(space.mapped)
    out_space = "w+" if (multi or key_space == "w+") else space.render_space
    groups = layer_groups(space) if out_space == "w+" else {}
    if out_space == "w+" and keys.dim() == 2:
        keys = keys.unsqueeze(1).expand(-1, int(space.n_latent), -1).contiguous()
    mode = st.interpolation
    if mode == "auto":
        mode = "linear" if space.mapped else "spherical"

    loud = features.loudness.astype(np.float64)
    env, decay = pulse_envelope(features.onset_strength, fps, st.pulse_decay)
    advance = (st.base_speed + st.loudness_gain * loud) / fps + st.onset_jump * env * (1 - decay)
    position = np.concatenate([[0.0], np.cumsum(advance)[:-1]])
    bands = features.bands().astype(np.float64)

    g = torch.Generator().manual_seed(int(st.direction_seed))
    one = tuple(keys.shape[1:])
    row = (one[-1],)
    directions = {"pulse": _direction(row, g)}
    for band in BAND_LAYERS:
        directions[band] = _direction(row, g)
    directions["bands"] = _direction(row, g)
    if out_space == "w+":  # the pulse moves every layer alike; a band direction its rows
        directions["pulse"] = directions["pulse"].expand(one).contiguous()

    io = getattr(space, "io", None)
    use_camera = camera if camera is not None else bool(io is not None and io.camera)
    cam = None
    if use_camera and st.camera_feature != "none":
        f = env if st.camera_feature == "onsets" else \
            features.feature(st.camera_feature).astype(np.float64)
        phase = 2 * np.pi * st.camera_rate * np.arange(frames) / fps
        cam = np.stack([st.pan_x * f * np.cos(phase), st.pan_y * f * np.sin(phase),
                        st.rotate * f * np.cos(0.5 * phase)], 1).astype(np.float32)
    return ReactiveMotion(fps, frames, out_space, keys, position, env, bands, cam, st,
                          code_spread(space), directions, groups, mode)


# ----------------------------------------------------------------------------- rendering


def _check_noise(noise: str) -> str:
    if noise not in PATH_NOISE:
        raise ValueError(f"noise must be one of {PATH_NOISE} for a video (random noise would "
                         f"flicker), got {noise!r}")
    return noise


@torch.no_grad()
def iter_frames(space: "LatentSpace", motion: ReactiveMotion, start: int = 0,
                count: int | None = None, noise: str = "fixed",
                camera_fn: CameraFn | None = None, batch_size: int = 8,
                callbacks: Any = None) -> Iterator[tuple[int, torch.Tensor]]:
    """(first frame index, IMAGE [n, H, W, 3] in [0, 1]) chunks of frames [start, start +
    count), `batch_size` at a time. With a camera path and `camera_fn(codes, camera_rows)
    -> IMAGE` the camera is applied; without camera_fn the frames render without it.
    Without camera_fn, a camera path goes to LatentSpace.render (the generator's own camera).
    `callbacks.on_step(frames_done, {})` after each chunk, `callbacks.check_stop()` before
    each (it may raise to cancel)."""
    _check_noise(noise)
    first, stop = motion._range(start, count)
    on_step, check_stop = callback_hooks(callbacks)
    step = max(1, int(batch_size))
    for i in range(first, stop, step):
        if check_stop is not None:
            check_stop()
        n = min(step, stop - i)
        codes = motion.codes(i, n).to(space.device)
        if motion.camera is not None and camera_fn is not None:
            images = camera_fn(codes, motion.camera_rows(i, n))
        elif motion.camera is not None:  # the generator's own camera (LatentSpace.render)
            images = space.render(codes, noise=noise, camera=motion.camera_rows(i, n))
        else:
            images = space.render(codes, noise=noise)
        if on_step is not None:
            on_step(i + n - first, {})
        yield i, images


@torch.no_grad()
def render_frames(space: "LatentSpace", motion: ReactiveMotion, start: int = 0,
                  count: int | None = None, noise: str = "fixed",
                  camera_fn: CameraFn | None = None, batch_size: int = 8,
                  callbacks: Any = None) -> torch.Tensor:
    """IMAGE [count, H, W, 3] of frames [start, start + count), rendered `batch_size` at a
    time into one result (see iter_frames)."""
    first, stop = motion._range(start, count)
    out: torch.Tensor | None = None
    for i, images in iter_frames(space, motion, first, stop - first, noise, camera_fn,
                                 batch_size, callbacks):
        if out is None:
            out = images.new_empty((stop - first, *images.shape[1:]))
        out[i - first:i - first + len(images)] = images
    if out is None:
        raise ValueError("render_frames: no frames asked for (count 0)")
    return out


# ----------------------------------------------------------------------------- memory


def frames_nbytes(frames: int, height: int, width: int, channels: int = 3) -> int:
    """Bytes of an IMAGE batch of `frames` float32 [frames, height, width, channels]."""
    return int(frames) * int(height) * int(width) * int(channels) * 4


def fit_duration(bytes_budget: int, fps: float, height: int, width: int,
                 channels: int = 3) -> float:
    """The longest duration (seconds, whole frames) whose IMAGE frames fit in the budget."""
    per = frames_nbytes(1, height, width, channels)
    return max(0, int(bytes_budget) // per) / check_fps(fps)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def check_frames_fit(frames: int, height: int, width: int, bytes_budget: int, fps: float,
                     what: str = "the frames") -> int:
    """Refuse (ValueError) when `frames` IMAGE frames would not fit in `bytes_budget`; the
    message says what it would take and the duration that fits. Returns the bytes needed."""
    need = frames_nbytes(frames, height, width)
    if need > bytes_budget:
        fits = fit_duration(bytes_budget, fps, height, width)
        raise ValueError(
            f"{what}: {frames} frames of {width}x{height} px take {_size(need)} as float32 "
            f"IMAGE, over the {_size(bytes_budget)} available; at {fps:g} fps "
            f"{fits:.2f} s ({int(round(fits * fps))} frames) fit. Shorten the duration, "
            "lower the fps, or render to a video file with `python -m gan_core audio-walk`, "
            "which streams frames and needs no such memory")
    return need
