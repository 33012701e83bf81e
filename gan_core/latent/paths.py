"""Paths through latent space: interpolation between two codes and looping walks over many.

z-space generators are interpolated spherically by default: a Gaussian z in many dimensions
lives near a sphere, and a straight line between two samples passes through the low-norm
middle, where images turn grey and bland. Generators with a mapping network are interpolated
linearly in w, as StyleGAN2 practice does (w is not Gaussian; the line stays on the manifold).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Sequence

import torch

from ..images import fill_batch
from .space import GANLatent, LatentSpace, check_noise

if TYPE_CHECKING:
    from ..model import GANModel

INTERPOLATION_MODES = ("auto", "spherical", "linear")
EASINGS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "linear": lambda t: t,
    "ease_in_out": lambda t: (1.0 - torch.cos(math.pi * t)) * 0.5,
    "ease_in": lambda t: 1.0 - torch.cos(0.5 * math.pi * t),
    "ease_out": lambda t: torch.sin(0.5 * math.pi * t),
}
MAX_FRAMES = 10_000


def _weights(t: float | torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """t as a tensor broadcastable against ref: a scalar, or one weight per batch row."""
    t = torch.as_tensor(t, dtype=ref.dtype, device=ref.device)
    if t.dim() == 0:
        return t
    if t.dim() != 1:
        raise ValueError(f"interpolation weights: expected a float or a 1-D tensor, got shape "
                         f"{tuple(t.shape)}")
    return t.view(-1, *([1] * max(1, ref.dim() - 1)))


def lerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Straight-line interpolation; a 1-D `t` gives one row per weight. Exact at t = 0 and 1."""
    w = _weights(t, a)
    shape = torch.broadcast_shapes(a.shape, b.shape, w.shape)
    return torch.lerp(a.expand(shape), b.expand(shape), w.expand(shape))


def slerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor,
          eps: float = 1e-4) -> torch.Tensor:
    """Spherical interpolation along the last dim (each w+ layer on its own), batched like
    lerp. Vectors that are (anti)parallel or zero-length have no unique great circle; those
    rows fall back to lerp. Exact at t = 0 and 1."""
    w = _weights(t, a)
    shape = torch.broadcast_shapes(a.shape, b.shape, w.shape)
    a, b, w = a.expand(shape), b.expand(shape), w.expand(shape)
    wv = w[..., :1]
    na, nb = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    cos = ((a * b).sum(-1, keepdim=True) / (na * nb).clamp_min(1e-30)).clamp(-1.0, 1.0)
    omega = torch.acos(cos)
    sin = torch.sin(omega)
    flat = (sin.abs() < eps) | (na == 0) | (nb == 0)
    sin = torch.where(flat, torch.ones_like(sin), sin)
    out = torch.sin((1.0 - wv) * omega) / sin * a + torch.sin(wv * omega) / sin * b
    return torch.where(flat, torch.lerp(a, b, w), out)


def _mix(mode: str, space: LatentSpace) -> Callable:
    if mode not in INTERPOLATION_MODES:
        raise ValueError(f"mode must be one of {INTERPOLATION_MODES}, got {mode!r}")
    if mode == "auto":
        mode = "linear" if space.mapped else "spherical"
    return slerp if mode == "spherical" else lerp


def callback_hooks(callbacks: Any) -> tuple[Callable | None, Callable | None]:
    if callbacks is None:
        return None, None
    return getattr(callbacks, "on_step", None), getattr(callbacks, "check_stop", None)


def keyframes(space: LatentSpace, items: Sequence[Any],
              truncation: float = 1.0) -> tuple[torch.Tensor, str]:
    """Seeds and GANLatents -> one batch of codes [K, ...] in a common space (w+ when any item
    is w+, else the render space); a GANLatent with B rows gives B keyframes. Seeds give the
    codes GANModel.generate renders for them."""
    parts: list[tuple[torch.Tensor, str]] = []
    for item in items:
        if isinstance(item, GANLatent):
            codes = space.truncate(space.codes_of(item), truncation)
            parts.append((codes, "w+" if item.space == "w+" else space.render_space))
        else:
            parts.append((space.seed_codes([int(item)], truncation), space.render_space))
    if not parts:
        raise ValueError("no seed or latent given")
    target = "w+" if any(s == "w+" for _, s in parts) else space.render_space
    return torch.cat([space.to_space(c, s, target) for c, s in parts]), target


def _render(space: LatentSpace, codes: torch.Tensor, noise: str, batch_size: int,
            callbacks: Any, alone: Sequence[int] = (),
            cameras: torch.Tensor | None = None) -> torch.Tensor:
    """Frames in chunks with progress and cancel between them; indices in `alone` are
    rendered in a batch of one, exactly as GANModel.generate renders a single seed.
    `cameras`: one (tx, ty, degrees) row per frame (StyleGAN3), or None."""
    on_step, check_stop = callback_hooks(callbacks)
    n = len(codes)
    groups: list[range] = []
    start = 0
    for i in sorted(set(i % n for i in alone)) + [n]:
        for s in range(start, i, max(1, batch_size)):
            groups.append(range(s, min(i, s + max(1, batch_size))))
        if i < n:
            groups.append(range(i, i + 1))
        start = i + 1
    # check_stop may raise (ComfyUI's interrupt): a path is all or nothing
    def render(g: range) -> torch.Tensor:
        camera = space.camera_matrices(cameras[g.start:g.stop]) if cameras is not None else None
        return space.render(codes[g.start:g.stop], noise=noise, camera=camera)

    return fill_batch(n, groups, render,
                      before=check_stop,
                      after=(lambda done: on_step(done, {})) if on_step is not None else None)


def _path_noise(noise: str) -> str:
    check_noise(noise)
    if noise == "random":
        raise ValueError("noise 'random' would make every frame flicker; a path takes 'fixed' "
                         "or 'none'")
    return noise


def _check_frames(frames: int, least: int) -> int:
    if not least <= int(frames) <= MAX_FRAMES:
        raise ValueError(f"frames must be between {least} and {MAX_FRAMES}, got {frames}")
    return int(frames)


@torch.no_grad()
def interpolate(model: "GANModel", a: int | GANLatent, b: int | GANLatent, frames: int,
                mode: str = "auto", truncation: float = 1.0, noise: str = "fixed",
                device: torch.device | str | None = None, batch_size: int = 16,
                callbacks: Any = None, class_index: int | None = None) -> torch.Tensor:
    """IMAGE [frames, H, W, 3] in [0, 1] from `a` to `b` (seeds or one-row GANLatents).

    The first and last frames equal model.generate(seed) (or generate_from_latent) exactly.
    mode "auto" is spherical in z for z-space models and linear in w for mapping models;
    "spherical" / "linear" force one. `callbacks.on_step(frames_done, {})` reports progress and
    `callbacks.check_stop()` runs between chunks and may raise to cancel."""
    space = LatentSpace(model, device, class_index=class_index)
    frames = _check_frames(frames, 2)
    noise = _path_noise(noise)
    mix = _mix(mode, space)
    for name, item in (("a", a), ("b", b)):
        if isinstance(item, GANLatent) and len(item) != 1:
            raise ValueError(f"{name}: expected a latent with one code, got {len(item)}")
    keys, _ = keyframes(space, [a, b], truncation)
    t = torch.linspace(0.0, 1.0, frames, dtype=torch.float64).to(keys.dtype)
    codes = mix(keys[:1], keys[1:], t.to(keys.device))
    codes[0], codes[-1] = keys[0], keys[1]
    return _render(space, codes, noise, batch_size, callbacks, alone=(0, frames - 1))


class WalkResult(NamedTuple):
    images: torch.Tensor  # IMAGE [frames, H, W, 3]
    fps: float  # a frame rate that shows each seed-to-seed move in about two seconds
    latents: GANLatent  # the frames' codes


def fps_hint(frames: int, segments: int, seconds_per_segment: float = 2.0) -> float:
    """A playback rate for a walk: about `seconds_per_segment` per move between keyframes,
    kept between 6 fps (slower looks like a slideshow) and 24 fps."""
    return float(min(24.0, max(6.0, round(frames / max(1, segments) / seconds_per_segment))))


def walk_positions(frames: int, keys: int, loop: bool, easing: str = "linear"
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(segment index, eased weight) per frame. A loop spaces frames evenly over keys
    segments, the last leading back to the first, so the frame after the last would be the
    first and no frame repeats at the seam; an open walk ends exactly on the last key."""
    if easing not in EASINGS:
        raise ValueError(f"easing must be one of {tuple(EASINGS)}, got {easing!r}")
    segments = keys if loop else keys - 1
    i = torch.arange(frames, dtype=torch.float64)
    pos = i * segments / (frames if loop else frames - 1)
    seg = pos.floor().clamp(max=segments - 1)
    t = pos - seg
    return seg.long(), EASINGS[easing](t)


def camera_path(frames: int, loop: bool, pan: tuple[float, float] = (0.0, 0.0),
                rotate: float = 0.0) -> torch.Tensor | None:
    """[frames, 3] camera rows (tx, ty, degrees) for a walk: the view travels `pan` (in image
    widths) and turns `rotate` degrees over the animation, eased in and out like NVIDIA's
    video scripts' smooth moves. A looped walk goes out and comes back (a cosine there and
    back), so its last frame leads into its first. None when the camera does not move."""
    for name, value in (("camera pan x", pan[0]), ("camera pan y", pan[1]),
                        ("camera rotation", rotate)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value}")
    if pan == (0.0, 0.0) and rotate == 0.0:
        return None
    i = torch.arange(frames, dtype=torch.float64)
    if loop:
        t = (1.0 - torch.cos(2.0 * math.pi * i / frames)) / 2.0
    else:
        t = EASINGS["ease_in_out"](i / max(frames - 1, 1))
    return torch.stack([t * pan[0], t * pan[1], t * rotate], dim=1).float()


@torch.no_grad()
def walk(model: "GANModel", seeds: Sequence[int | GANLatent] | str, frames: int,
         mode: str = "auto", easing: str = "linear", loop: bool = True, truncation: float = 1.0,
         noise: str = "fixed", device: torch.device | str | None = None, batch_size: int = 16,
         callbacks: Any = None, class_index: int | None = None,
         camera_pan: tuple[float, float] = (0.0, 0.0), camera_rotate: float = 0.0) -> WalkResult:
    """Frames visiting `seeds` in order (a "1,5,9" string, ints, or GANLatents, each of whose
    rows is a stop), `frames` in total, eased per segment; with `loop` the walk returns to
    the first seed so the animation repeats seamlessly. Progress and cancel as interpolate.
    `class_index`: a conditional model's class. `camera_pan` / `camera_rotate` (generators
    with a camera, StyleGAN3): the camera's travel over the walk, see camera_path."""
    from ..seeds import parse_seeds

    items = parse_seeds(seeds) if isinstance(seeds, str) else list(seeds)
    space = LatentSpace(model, device, class_index=class_index)
    noise = _path_noise(noise)
    mix = _mix(mode, space)
    keys, key_space = keyframes(space, items, truncation)
    if len(keys) < 2:
        raise ValueError(f"seeds: a walk needs at least two stops, got {len(keys)}")
    frames = _check_frames(frames, 2)
    seg, t = walk_positions(frames, len(keys), loop, easing)
    seg = seg.to(keys.device)
    codes = mix(keys[seg], keys[(seg + 1) % len(keys)], t.to(keys.dtype).to(keys.device))
    cameras = camera_path(frames, loop, (float(camera_pan[0]), float(camera_pan[1])),
                          float(camera_rotate))
    if cameras is not None:
        space.camera_matrices(cameras[:1])  # a model without a camera: refused up front
    images = _render(space, codes, noise, batch_size, callbacks, cameras=cameras)
    segments = len(keys) if loop else len(keys) - 1
    return WalkResult(images, fps_hint(frames, segments), space.latent(codes, key_space, noise))
