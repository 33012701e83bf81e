"""Built-in procedural "art" datasets, so a GAN can be trained with no image files.

Each style is a small generator of abstract pictures (Mondrian grids, op-art rings,
Rothko-like colour fields, metaball blobs, diagonal stripes, a swirling brush-stroke
painting).  They exist so that the training loop, the UI and the tests can run end to end
anywhere, and so that a user can see a GAN learn a recognisable visual style in minutes.

Design rules that the rest of the package may rely on:

* **Deterministic.**  Image ``i`` of dataset ``(name, seed)`` depends only on
  ``(name, seed, i)``: every image gets its own ``numpy.random.Generator`` seeded with
  ``[seed, i, style_id]``.  Asking for 10 or 100 images gives the same first 10, and
  the random *parameters* of a picture do not depend on the resolution either.
* **Resolution independent.**  Every style is drawn analytically on a grid of pixel
  centres (vectorised numpy, no per-pixel Python), with edges anti-aliased by the
  size of one pixel.  The same image can be rendered at 8 px or 1024 px, and a small
  render looks like a downscaled large one.  Detail finer than a pixel fades to its
  average instead of aliasing into noise.  (One deliberate exception: below about
  45 px, rings and stripes are drawn wider than they would be, so that tiny images
  still show the pattern instead of a flat average colour.)
* **ComfyUI layout.**  :func:`make_builtin` returns float32 ``[N, H, W, C]`` in
  ``[0, 1]``, the layout of a ComfyUI ``IMAGE``.
"""

from __future__ import annotations

import colorsys
import math
import operator
from typing import Callable

import numpy as np
import torch

from ..images import LUMA

__all__ = [
    "BUILTIN_DATASETS",
    "MIN_SIZE",
    "draw_blobs",
    "draw_colorfields",
    "draw_mondrian",
    "draw_painting",
    "draw_rings",
    "draw_stripes",
    "make_builtin",
    "render_builtin",
]

#: Smallest side length accepted, in pixels; below this no style is recognisable.
MIN_SIZE = 8

_PIXELS = f"an integer >= {MIN_SIZE} (pixels)"  # what size/height must be, for messages

#: ITU-R BT.601 luma weights, used for ``channels=1``.
_LUMA_601 = np.array(LUMA, dtype=np.float32)

Colour = tuple[float, float, float]
StyleFn = Callable[[np.random.Generator, int, int], np.ndarray]


# --------------------------------------------------------------------------- helpers


def _centred_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Pixel-centre coordinates for the geometric styles.

    The shorter side spans [-0.5, 0.5] (so circles stay round on non-square images and
    a non-square image shows more of the same picture).  Returns ``u`` with shape
    ``(1, W)``, ``v`` with shape ``(H, 1)`` (they broadcast to the full grid) and the
    size of one pixel in these units, which sets the anti-aliasing width.
    """
    short = min(height, width)
    u = (np.arange(width) + 0.5 - width / 2.0) / short
    v = (np.arange(height) + 0.5 - height / 2.0) / short
    return u[None, :], v[:, None], 1.0 / short


def _interval_coverage(lo: float, hi: float, n: int) -> np.ndarray:
    """Fraction of each of ``n`` equal pixels on [0, 1] that lies inside [lo, hi].

    This is an exact box filter for axis-aligned edges, which is what keeps the
    Mondrian lines crisp at 1024 px yet still visible (as grey) at 8 px.
    """
    edges = np.arange(n + 1) / n
    overlap = np.minimum(hi, edges[1:]) - np.maximum(lo, edges[:-1])
    return np.clip(overlap * n, 0.0, 1.0)


def _pixel_span(lo: float, hi: float, n: int) -> slice:
    """The pixels an interval [lo, hi] on [0, 1] touches, to paint only that slice."""
    return slice(max(0, math.floor(lo * n)), min(n, math.ceil(hi * n)))


def _smoothstep(t: np.ndarray) -> np.ndarray:
    """Cubic ease of ``t`` clipped to [0, 1]: soft edges without a visible kink."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    """An RGB colour from HSV (hue wraps), as a float array for broadcasting."""
    return np.array(colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0)))


def _wave_noise(
    rng: np.random.Generator, u: np.ndarray, v: np.ndarray, waves: int, f_lo: float, f_hi: float
) -> np.ndarray:
    """Smooth, roughly unit-variance noise made of a few random plane waves.

    Its parameters are drawn from ``rng`` (not per pixel), so the noise is the same
    picture at every resolution, unlike pixel noise.
    """
    out = np.zeros(np.broadcast_shapes(u.shape, v.shape), dtype=np.result_type(u, v))
    for _ in range(waves):
        angle = rng.uniform(0.0, 2.0 * math.pi)
        freq = rng.uniform(f_lo, f_hi)
        phase = rng.uniform(0.0, 2.0 * math.pi)
        out += np.cos(2.0 * math.pi * freq * (u * math.cos(angle) + v * math.sin(angle)) + phase)
    return out * math.sqrt(2.0 / waves)


def _wave_noise_1d(
    rng: np.random.Generator, t: np.ndarray, waves: int, f_lo: float, f_hi: float
) -> np.ndarray:
    """One-dimensional version of :func:`_wave_noise`, for wobbly edges."""
    out = np.zeros(t.shape, dtype=t.dtype)
    for _ in range(waves):
        freq = rng.uniform(f_lo, f_hi)
        phase = rng.uniform(0.0, 2.0 * math.pi)
        out += np.cos(2.0 * math.pi * freq * t + phase)
    return out * math.sqrt(2.0 / waves)


# --------------------------------------------------------------------------- styles

_MONDRIAN_PRIMARIES: tuple[Colour, ...] = (
    (0.80, 0.12, 0.10),  # red
    (0.09, 0.20, 0.55),  # blue
    (0.97, 0.81, 0.10),  # yellow
    (0.07, 0.07, 0.07),  # black (rare)
)
_MONDRIAN_PRIMARY_ODDS = (0.36, 0.28, 0.28, 0.08)
_MONDRIAN_PAPERS: tuple[Colour, ...] = (
    (0.97, 0.96, 0.93),
    (0.94, 0.93, 0.88),
    (0.99, 0.99, 0.98),
    (0.95, 0.94, 0.90),
)
_MONDRIAN_GREY: Colour = (0.84, 0.84, 0.82)


def draw_mondrian(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A Mondrian-like grid: recursive rectangle splits, black lines, a few primaries.

    Layout is in canvas fractions, so a non-square request stretches the composition
    like a differently-shaped canvas.  Line width is a fraction of the shorter side (so
    it scales with size); lines are snapped to whole pixels once about a pixel wide, and
    kept at least 0.6 px (anti-aliased grey) below that, so they survive at 8 px.
    """
    min_side = 0.07
    rects: list[tuple[float, float, float, float]] = [(0.0, 0.0, 1.0, 1.0)]  # x0, y0, x1, y1
    splits: list[tuple[bool, float, float, float]] = []  # (vertical, at, from, to)
    for _ in range(int(rng.integers(4, 11))):
        areas = np.array([(x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in rects])
        k = int(rng.choice(len(rects), p=areas / areas.sum()))
        x0, y0, x1, y1 = rects[k]
        longer_is_x = (x1 - x0) >= (y1 - y0)
        vertical = longer_is_x if rng.random() < 0.75 else not longer_is_x
        lo, hi = (x0, x1) if vertical else (y0, y1)
        if hi - lo <= 2 * min_side:
            continue  # too narrow to split; try another rectangle
        at = rng.uniform(lo + min_side, hi - min_side)
        if vertical:
            rects[k : k + 1] = [(x0, y0, at, y1), (at, y0, x1, y1)]
            splits.append((True, at, y0, y1))
        else:
            rects[k : k + 1] = [(x0, y0, x1, at), (x0, at, x1, y1)]
            splits.append((False, at, x0, x1))

    paper = _MONDRIAN_PAPERS[int(rng.integers(len(_MONDRIAN_PAPERS)))]
    colours: list[Colour] = [_MONDRIAN_GREY if rng.random() < 0.08 else paper for _ in rects]
    n_coloured = int(rng.integers(1, min(4, len(rects)) + 1))
    for k in rng.choice(len(rects), size=n_coloured, replace=False):
        colours[int(k)] = _MONDRIAN_PRIMARIES[int(rng.choice(4, p=_MONDRIAN_PRIMARY_ODDS))]
    line_frac = rng.uniform(0.015, 0.032)  # of the shorter side
    ink = np.array(_MONDRIAN_PRIMARIES[3])

    # The leaves tile the canvas, so summing box-filtered coverages gives exact AA.
    img = np.zeros((height, width, 3))
    for (x0, y0, x1, y1), colour in zip(rects, colours):
        rows, cols = _pixel_span(y0, y1, height), _pixel_span(x0, x1, width)
        cover = _interval_coverage(y0, y1, height)[rows, None] * _interval_coverage(x0, x1, width)[None, cols]
        img[rows, cols] += cover[..., None] * np.array(colour)

    # From ~1 px up, lines are snapped to whole pixels (a shift of at most half a
    # pixel) so they stay crisp and black; thinner ones stay anti-aliased and grey.
    line_px = line_frac * min(height, width)
    snap = line_px >= 0.4
    line_px = max(1.0, float(round(line_px))) if snap else max(line_px, 0.6)

    def extent(at: float, n: int) -> tuple[float, float]:
        """Canvas-fraction extent of a line centred at ``at`` across an ``n``-pixel axis."""
        lo = at * n - 0.5 * line_px
        lo = round(lo) if snap else lo
        return lo / n, (lo + line_px) / n

    for vertical, at, start, stop in splits:
        # A line runs over the full width of the lines it meets, closing T-junctions.
        if vertical:
            (xa, xb), ya, yb = extent(at, width), extent(start, height)[0], extent(stop, height)[1]
        else:
            (ya, yb), xa, xb = extent(at, height), extent(start, width)[0], extent(stop, width)[1]
        rows, cols = _pixel_span(ya, yb, height), _pixel_span(xa, xb, width)
        alpha = _interval_coverage(ya, yb, height)[rows, None] * _interval_coverage(xa, xb, width)[None, cols]
        alpha = alpha[..., None]
        img[rows, cols] = img[rows, cols] * (1.0 - alpha) + ink * alpha
    return img


def _ring_pattern(
    rng: np.random.Generator, u: np.ndarray, v: np.ndarray, px: float, spread: float
) -> np.ndarray:
    """Anti-aliased 50/50 concentric rings around one random centre, values in [0, 1].

    The rings may be warped into a flower shape.  The local ring frequency (cycles per
    pixel) is known analytically, which gives a one-pixel AA ramp and lets rings that
    are finer than the pixel grid fade to mid-grey instead of aliasing.
    """
    cx, cy = rng.uniform(-spread, spread, size=2)
    freq = math.exp(rng.uniform(math.log(3.0), math.log(10.0)))  # rings per short side
    phase = rng.uniform(0.0, 2.0 * math.pi)
    warped = rng.random() < 0.35
    amp = rng.uniform(0.03, 0.12)
    lobes = int(rng.integers(3, 9))
    lobe_phase = rng.uniform(0.0, 2.0 * math.pi)

    # Tiny images get wider rings (at most ~0.22 cycles per pixel) so that they still
    # show rings rather than a grey average; from ~45 px up this never kicks in.
    freq = min(freq, 0.22 / px)

    dx, dy = u - cx, v - cy
    radius = np.hypot(dx, dy)
    if warped:
        theta = lobes * np.arctan2(dy, dx) + lobe_phase
        stretch = 1.0 + amp * np.sin(theta)
        radius = radius * stretch
        slope = np.hypot(stretch, amp * lobes * np.cos(theta))  # |grad of warped radius|
    else:
        slope = 1.0
    cycles_per_px = np.maximum(freq * px * slope, 1e-9)
    wave = np.sin(2.0 * math.pi * freq * radius + phase)
    ramp = np.clip(0.5 + wave / (2.0 * math.pi * cycles_per_px), 0.0, 1.0)
    contrast = np.clip((0.4 - cycles_per_px) / 0.2, 0.0, 1.0)  # fade out before Nyquist
    return 0.5 + (ramp - 0.5) * contrast


def draw_rings(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Op-art rings: one ring set, or two XOR-ed together for a moire pattern.

    Colours are black/white or a dark/light pair of roughly complementary hues.
    """
    u, v, px = _centred_grid(height, width)
    if rng.random() < 0.5:
        dark, light = np.array((0.04, 0.04, 0.05)), np.array((0.96, 0.95, 0.92))
    else:
        hue = rng.uniform()
        dark = _hsv(hue, rng.uniform(0.6, 0.95), rng.uniform(0.15, 0.4))
        light = _hsv(hue + rng.uniform(0.35, 0.65), rng.uniform(0.15, 0.55), rng.uniform(0.85, 1.0))
    two_centres = rng.random() < 0.5

    if two_centres:
        a = _ring_pattern(rng, u, v, px, spread=0.6)
        b = _ring_pattern(rng, u, v, px, spread=0.6)
        mix = a + b - 2.0 * a * b  # soft XOR: stays 0.5 where either set is faded
    else:
        mix = _ring_pattern(rng, u, v, px, spread=0.35)
    mix = mix[..., None]
    return dark * (1.0 - mix) + light * mix


def draw_colorfields(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Rothko-like colour fields: 2-3 stacked soft-edged blocks on a tinted ground.

    Blocks have wobbly feathered edges, vertical gradients, slight translucency, low
    frequency mottling and a little film grain.
    """
    base_hue = rng.uniform()
    dark_ground = rng.random() < 0.6
    if dark_ground:
        ground_sat, ground_val = rng.uniform(0.4, 0.85), rng.uniform(0.15, 0.35)
    else:
        ground_sat, ground_val = rng.uniform(0.25, 0.65), rng.uniform(0.6, 0.85)
    ground_top = _hsv(base_hue + rng.uniform(-0.05, 0.05), ground_sat, ground_val)
    ground_bottom = ground_top * rng.uniform(0.75, 1.1)

    n_blocks = int(rng.integers(2, 4))
    margin_x = rng.uniform(0.07, 0.14)
    margin_top, margin_bottom = rng.uniform(0.05, 0.1, size=2)
    gap = rng.uniform(0.025, 0.07)
    free = 1.0 - margin_top - margin_bottom - gap * (n_blocks - 1)
    heights = rng.dirichlet(np.full(n_blocks, 2.5)) * free
    # Sometimes one block takes the complementary hue, as in Rothko's sharper pieces.
    contrast_block = int(rng.integers(n_blocks)) if rng.random() < 0.4 else -1
    softness = rng.uniform(0.012, 0.04)  # edge feather, in shorter-side units

    blocks = []
    top = margin_top
    for k in range(n_blocks):
        hue = base_hue + rng.uniform(-0.09, 0.09)
        if k == contrast_block:
            hue += 0.5
        sat, val = rng.uniform(0.35, 0.9), rng.uniform(0.3, 0.95)
        col_top = _hsv(hue, sat, val)
        col_bottom = _hsv(
            hue + rng.uniform(-0.03, 0.03), sat + rng.uniform(-0.1, 0.1), val + rng.uniform(-0.15, 0.1)
        )
        opacity = rng.uniform(0.82, 0.97)
        wobble = rng.uniform(0.002, 0.007)
        blocks.append((top, top + heights[k], col_top, col_bottom, opacity, wobble, rng.integers(2**32)))
        top += heights[k] + gap

    # Per-pixel work in float32: half the memory traffic of float64, same look.
    f32 = np.float32
    short = min(height, width)
    yf = ((np.arange(height, dtype=f32) + 0.5) / height)[:, None]
    xf = ((np.arange(width, dtype=f32) + 0.5) / width)[None, :]
    soft_x = max(softness * short / width, 1.0 / width)
    soft_y = max(softness * short / height, 1.0 / height)

    img = (ground_top + (ground_bottom - ground_top) * yf[..., None]).astype(f32)
    img = np.broadcast_to(img, (height, width, 3)).copy()
    for top, bottom, col_top, col_bottom, opacity, wobble, edge_seed in blocks:
        edge_rng = np.random.default_rng(edge_seed)  # own stream: edges use fixed draws
        left = f32(margin_x) + f32(wobble) * _wave_noise_1d(edge_rng, yf, 3, 1.0, 6.0)
        right = f32(1.0 - margin_x) + f32(wobble) * _wave_noise_1d(edge_rng, yf, 3, 1.0, 6.0)
        upper = f32(top) + f32(wobble) * _wave_noise_1d(edge_rng, xf, 3, 1.0, 6.0)
        lower = f32(bottom) + f32(wobble) * _wave_noise_1d(edge_rng, xf, 3, 1.0, 6.0)
        alpha = (
            _smoothstep((xf - left) / f32(2 * soft_x) + 0.5)
            * _smoothstep((right - xf) / f32(2 * soft_x) + 0.5)
            * _smoothstep((yf - upper) / f32(2 * soft_y) + 0.5)
            * _smoothstep((lower - yf) / f32(2 * soft_y) + 0.5)
        )
        blend = np.clip((yf - f32(top)) / f32(bottom - top), 0.0, 1.0)[..., None]
        colour = (col_top + (col_bottom - col_top) * blend).astype(f32)  # one row per image row
        img += (colour - img) * (f32(opacity) * alpha)[..., None]

    u, v, _ = _centred_grid(height, width)
    mottle = _wave_noise(rng, u.astype(f32), v.astype(f32), 6, 0.5, 3.0)
    img *= (1.0 + 0.05 * mottle)[..., None]
    # Grain is the only per-pixel randomness; drawn last so every parameter above
    # is identical at every resolution.
    img += 0.012 * rng.standard_normal((height, width, 1), dtype=f32)
    return img


def draw_blobs(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Soft metaballs: 3-7 merging blobs with blended colours and a glossy centre.

    The iso-surface edge is anti-aliased with the analytic field gradient, widened to
    a random softness so some images look crisp and some dreamy.
    """
    u, v, px = _centred_grid(height, width)
    n = int(rng.integers(3, 8))
    centres: list[np.ndarray] = []
    radii: list[float] = []
    for _ in range(n):
        # Reject a blob centred inside another one: it would show as a stray dot of
        # its own colour.  Overlapping (merging) blobs are still allowed.
        for _attempt in range(20):
            centre, radius = rng.uniform(-0.4, 0.4, size=2), rng.uniform(0.07, 0.19)
            if all(np.hypot(*(centre - c)) > 0.7 * (radius + r) for c, r in zip(centres, radii)):
                break
        centres.append(centre)
        radii.append(radius)
    base_hue = rng.uniform()
    offsets = rng.choice([0.0, 0.06, 0.12, 0.5, 0.56, 0.33], size=n)
    colours = [_hsv(base_hue + o, rng.uniform(0.5, 0.9), rng.uniform(0.65, 1.0)) for o in offsets]
    ground_hue = base_hue + rng.uniform(0.3, 0.7)
    if rng.random() < 0.5:
        ground_a = _hsv(ground_hue, rng.uniform(0.2, 0.5), rng.uniform(0.12, 0.3))
    else:
        ground_a = _hsv(ground_hue, rng.uniform(0.05, 0.25), rng.uniform(0.85, 0.97))
    ground_b = ground_a * rng.uniform(0.8, 1.15)
    ground_angle = rng.uniform(0.0, 2.0 * math.pi)
    softness = rng.uniform(0.0, 0.025)

    # float32 and one weight plane per blob keep 1024 px renders fast.
    u, v = u.astype(np.float32), v.astype(np.float32)
    field = np.zeros((height, width), dtype=np.float32)
    grad_u = np.zeros_like(field)
    grad_v = np.zeros_like(field)
    weights = np.empty((n, height, width), dtype=np.float32)
    for j, ((cx, cy), r) in enumerate(zip(centres, radii)):
        du, dv = u - np.float32(cx), v - np.float32(cy)
        inv_d2 = 1.0 / (du * du + dv * dv + np.float32(1e-5))
        k = np.float32(r * r) * inv_d2
        field += k
        slope = 2.0 * k * inv_d2
        grad_u -= slope * du
        grad_v -= slope * dv
        np.multiply(k, k, out=weights[j])  # colour weight: each blob owns its core
    # One small contraction per channel is much faster than a tensordot over the blob axis.
    palette = np.array(colours, dtype=np.float32)
    total = weights.sum(axis=0)
    paint = np.stack([np.tensordot(palette[:, c], weights, axes=1) / total for c in range(3)], axis=-1)

    # Darken towards the rim and mix towards white at the core: a glossy, 3-D look.
    inside = np.clip(1.0 - 1.0 / np.maximum(field, 1e-9), 0.0, 1.0)  # 0 on the edge
    gloss = 0.35 * inside**3
    paint = paint * ((0.82 + 0.18 * inside) * (1.0 - gloss))[..., None] + gloss[..., None]

    # Anti-alias with g = 1 - 1/field (zero on the edge): its gradient is bounded near
    # the centres, where linearising the raw field would punch holes in the blobs.
    edge_width = max(px, softness)
    signed = (field - 1.0) * field / (np.hypot(grad_u, grad_v) * edge_width + 1e-12)
    alpha = np.clip(0.5 + signed, 0.0, 1.0)[..., None]

    t = np.clip(0.5 + (u * math.cos(ground_angle) + v * math.sin(ground_angle)), 0.0, 1.0)[..., None]
    ground_a, ground_b = ground_a.astype(np.float32), ground_b.astype(np.float32)
    img = ground_a + (ground_b - ground_a) * t
    img += (paint - img) * alpha
    return img


def draw_stripes(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Colour stripes, usually diagonal, with a repeating width rhythm and maybe a wave.

    Each pixel is the exact average of the stripe colours over its (projected)
    footprint, computed from the running integral of the colour profile, so stripes
    thinner than a pixel blend instead of flickering.
    """
    u, v, px = _centred_grid(height, width)
    if rng.random() < 0.65:
        angle = rng.choice([0.25, 0.75]) * math.pi + rng.uniform(-0.25, 0.25)
    else:
        angle = rng.uniform(0.0, math.pi)
    period = rng.uniform(0.15, 0.6)
    n_stripes = int(rng.integers(3, 8))
    widths = rng.dirichlet(np.full(n_stripes, 1.5)) * period
    base_hue = rng.uniform()
    n_colours = int(rng.integers(2, 5))
    # Spread brightness and hue across the palette so neighbouring stripes contrast.
    values = rng.permutation(np.linspace(0.3, 0.95, n_colours)) + rng.uniform(-0.05, 0.05, n_colours)
    hue_step = rng.uniform(0.1, 0.4)
    palette = [
        _hsv(base_hue + j * hue_step + rng.uniform(-0.03, 0.03), rng.uniform(0.3, 0.95), values[j])
        for j in range(n_colours)
    ]
    order = [0]
    for _ in range(1, n_stripes):  # never the same colour twice in a row
        order.append((order[-1] + int(rng.integers(1, n_colours))) % n_colours)
    colours = np.array([palette[i] for i in order])
    waving = rng.random() < 0.4
    wave_amp = rng.uniform(0.01, 0.05)
    wave_freq = rng.uniform(1.0, 4.0)
    wave_phase = rng.uniform(0.0, 2.0 * math.pi)
    offset = rng.uniform(0.0, period)
    # Tiny images get a wider rhythm (at least 5 px per repeat) so stripes stay visible.
    stretch = max(1.0, 5.0 * px / period)
    period, widths, offset = period * stretch, widths * stretch, offset * stretch

    cos_a, sin_a = math.cos(angle), math.sin(angle)
    s = u * cos_a + v * sin_a + offset  # across the stripes
    ds_du, ds_dv = cos_a, sin_a
    if waving:
        along = -u * sin_a + v * cos_a
        k = 2.0 * math.pi * wave_freq
        s = s + wave_amp * np.sin(k * along + wave_phase)
        slope = wave_amp * k * np.cos(k * along + wave_phase)
        ds_du, ds_dv = cos_a - slope * sin_a, sin_a + slope * cos_a
    footprint = px * (np.abs(ds_du) + np.abs(ds_dv))  # pixel width measured along s
    s, footprint = np.broadcast_arrays(s, footprint)

    bounds = np.concatenate([[0.0], np.cumsum(widths)])
    bounds[-1] = period
    cumulative = np.concatenate([np.zeros((1, 3)), np.cumsum(widths[:, None] * colours, axis=0)])
    per_period = cumulative[-1]

    def integral(x: np.ndarray, channel: int) -> np.ndarray:
        """Integral of the periodic colour profile from 0 to x, for one channel."""
        turns = np.floor(x / period)
        return turns * per_period[channel] + np.interp(x - turns * period, bounds, cumulative[:, channel])

    lo, hi = s - 0.5 * footprint, s + 0.5 * footprint
    img = np.empty((height, width, 3))
    for c in range(3):
        img[..., c] = (integral(hi, c) - integral(lo, c)) / footprint
    return img


def _lattice_noise(rng: np.random.Generator, cells: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Value noise on a fixed lattice of ``cells`` per unit of the short side, sampled
    bilinearly (wrapping) at any point: the brush-bristle texture of :func:`draw_painting`,
    the same picture at every resolution."""
    grid = rng.random((cells + 1, cells + 1)).astype(np.float32)

    def sample(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        gx, gy = np.mod((x + 0.5) * cells, cells), np.mod((y + 0.5) * cells, cells)
        x0, y0 = np.floor(gx).astype(np.int64), np.floor(gy).astype(np.int64)
        fx, fy = (gx - x0).astype(np.float32), (gy - y0).astype(np.float32)
        top = grid[y0, x0] * (1 - fx) + grid[y0, x0 + 1] * fx
        bottom = grid[y0 + 1, x0] * (1 - fx) + grid[y0 + 1, x0 + 1] * fx
        return top * (1 - fy) + bottom * fy

    return sample


def draw_painting(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A swirling, Van Gogh-like brush-stroke painting: a few soft colour regions from a
    two-hue palette, textured by bristle noise smeared along a flow field with 1-3 vortices
    (line-integral convolution), so strokes follow the flow.

    It is the built-in *style* for style training (one canvas is enough): its strokes are a
    texture that a CycleGAN can learn to paint onto other pictures.
    """
    u, v, _ = _centred_grid(height, width)
    u = np.broadcast_to(u, (height, width)).astype(np.float32)
    v = np.broadcast_to(v, (height, width)).astype(np.float32)
    waves = [(rng.uniform(0, 2 * math.pi), rng.uniform(0.6, 2.2), rng.uniform(0, 2 * math.pi))
             for _ in range(4)]
    swirls = [(rng.uniform(-0.45, 0.45, 2), rng.uniform(0.08, 0.2), float(rng.choice([-1, 1])))
              for _ in range(int(rng.integers(1, 4)))]
    base_angle = rng.uniform(0, math.pi)

    def flow_angle(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        a = np.full(x.shape, base_angle, np.float32)
        for direction, freq, phase in waves:
            a += 0.9 * np.cos(2 * math.pi * freq * (x * math.cos(direction) + y * math.sin(direction))
                              + phase).astype(np.float32)
        for (cx, cy), radius, spin in swirls:  # turn the flow around each vortex centre
            dx, dy = x - np.float32(cx), y - np.float32(cy)
            w = np.exp(-(dx * dx + dy * dy) / np.float32(2 * radius * radius))
            tangent = np.arctan2(dy, dx) + np.float32(spin * math.pi / 2)
            a = np.arctan2((1 - w) * np.sin(a) + w * np.sin(tangent),
                           (1 - w) * np.cos(a) + w * np.cos(tangent)).astype(np.float32)
        return a

    h0 = rng.uniform()
    h1 = h0 + rng.uniform(0.35, 0.65)
    palette = np.array(
        [_hsv(h0 + rng.uniform(-0.05, 0.05), rng.uniform(0.45, 0.85), rng.uniform(0.25, 0.95))
         for _ in range(3)]
        + [_hsv(h1 + rng.uniform(-0.05, 0.05), rng.uniform(0.45, 0.85), rng.uniform(0.5, 1.0))
           for _ in range(2)], dtype=np.float32)
    # Soft regions, stacked top to bottom like a landscape, with firm (posterised) borders.
    region = _wave_noise(rng, u, v, 5, 0.7, 2.5).astype(np.float32) + 1.5 * v
    t = (np.tanh(region * 0.9) * 0.5 + 0.5) * (len(palette) - 1)
    lo = np.clip(np.floor(t).astype(np.int64), 0, len(palette) - 2)
    f = _smoothstep(t - lo)[..., None]
    f = np.clip((f - 0.5) * 2.5 + 0.5, 0.0, 1.0)
    base = palette[lo] * (1 - f) + palette[lo + 1] * f

    bristles = _lattice_noise(rng, 90)
    acc, taps, step = bristles(u, v), 1, np.float32(0.006)
    for sign in (1, -1):  # follow the streamline both ways from each pixel
        x, y = u.copy(), v.copy()
        for _ in range(10):
            a = flow_angle(x, y)
            x += sign * step * np.cos(a)
            y += sign * step * np.sin(a)
            acc += bristles(x, y)
            taps += 1
    strokes = acc / taps
    strokes = (strokes - strokes.mean()) / (strokes.std() + 1e-6)
    return base * (1.0 + 0.18 * np.clip(strokes, -2.5, 2.5))[..., None]


# --------------------------------------------------------------------------- registry

# name -> (style id used in the seed, drawing function).  The ids are part of the
# determinism contract: never renumber them, only append new styles.
_STYLES: dict[str, tuple[int, StyleFn]] = {
    "mondrian": (0, draw_mondrian),
    "rings": (1, draw_rings),
    "colorfields": (2, draw_colorfields),
    "blobs": (3, draw_blobs),
    "stripes": (4, draw_stripes),
    "painting": (5, draw_painting),
}

#: Names of the built-in datasets, in a stable order (safe to show in a UI list).
BUILTIN_DATASETS: tuple[str, ...] = tuple(_STYLES)


def _style(name: object) -> tuple[int, StyleFn]:
    """Look a style up by name (case and surrounding spaces ignored)."""
    key = name.strip().lower() if isinstance(name, str) else None
    if key not in _STYLES:
        raise ValueError(
            f"unknown built-in dataset {name!r}; expected one of: {', '.join(BUILTIN_DATASETS)}"
        )
    return _STYLES[key]


def _int_arg(arg: str, value: object, minimum: int, expected: str) -> int:
    """Validate an integer argument, with a message that names it and says what's expected."""
    if isinstance(value, bool):
        raise TypeError(f"{arg} must be {expected}, got {value!r}")
    try:
        number = operator.index(value)  # accepts int and numpy integers, not floats
    except TypeError:
        raise TypeError(f"{arg} must be {expected}, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"{arg} must be {expected}, got {number}")
    return number


def render_builtin(name: str, index: int, size: int, seed: int = 0, height: int | None = None) -> np.ndarray:
    """Render image ``index`` of built-in dataset ``(name, seed)``.

    Returns float32 ``[H, W, 3]`` RGB in [0, 1], with ``W = size`` and ``H = height``
    (default ``size``).  The result depends only on ``(name, seed, index)`` and the
    requested size, so any image can be regenerated on its own, at any resolution.
    """
    style_id, draw = _style(name)
    index = _int_arg("index", index, 0, "a non-negative integer")
    width = _int_arg("size", size, MIN_SIZE, _PIXELS)
    rows = width if height is None else _int_arg("height", height, MIN_SIZE, _PIXELS)
    seed = _int_arg("seed", seed, 0, "a non-negative integer")
    rng = np.random.default_rng([seed, index, style_id])
    img = draw(rng, rows, width)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def make_builtin(
    name: str, count: int, size: int, seed: int = 0, channels: int = 3, *, height: int | None = None
) -> torch.Tensor:
    """Make the first ``count`` images of built-in dataset ``(name, seed)`` as one tensor.

    Returns float32 ``[count, H, W, channels]`` in [0, 1] (ComfyUI ``IMAGE`` layout),
    ``H = W = size`` unless ``height`` is given.  ``channels=3`` is RGB; ``channels=1``
    is ITU-R BT.601 luma, for grayscale GANs.  Image ``i`` is identical to
    ``render_builtin(name, i, size, seed, height)``, so a larger ``count`` only appends.
    Everything is rendered eagerly: ``count * H * W * channels * 4`` bytes.
    """
    _style(name)  # fail fast, before any rendering
    count = _int_arg("count", count, 1, "an integer >= 1")
    width = _int_arg("size", size, MIN_SIZE, _PIXELS)
    rows = width if height is None else _int_arg("height", height, MIN_SIZE, _PIXELS)
    if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    seed = _int_arg("seed", seed, 0, "a non-negative integer")

    out = np.empty((count, rows, width, int(channels)), dtype=np.float32)
    for i in range(count):
        img = render_builtin(name, i, width, seed, rows)
        out[i] = img if channels == 3 else (img @ _LUMA_601)[..., None]
    return torch.from_numpy(out)
