"""Loss curves as an image, drawn with Pillow (no plotting library): what a training run's
history looks like at a glance, for the loss-plot node and the CLI.

Losses share the left axis (each series a colour, smoothed by a moving average so the trend
shows through the step-to-step noise; the raw values faintly behind). Probabilities such as
ADA's augmentation strength p (names in PROBABILITY_SERIES) use a 0..1 axis on the right.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

PROBABILITY_SERIES = ("p", "ada_p", "r_t", "rt")
# Recorded alongside the losses but not losses: a learning rate (1e-4) or a PSNR (30 dB) on the
# loss axis flattens every real curve into a line, so the default plot leaves them out.
NOT_LOSSES = ("lr", "psnr", "ssim", "seconds")
PALETTE = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14),
           (23, 190, 207), (140, 86, 75), (227, 119, 194)]
P_COLOUR = (90, 90, 90)


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(values) < 3:
        return values
    window = min(window, len(values))
    kernel = np.ones(window) / window
    padded = np.concatenate([np.full(window - 1, values[0]), values])
    return np.convolve(padded, kernel, mode="valid")


def _finite(values: Sequence[float]) -> np.ndarray:
    arr = np.asarray([float(v) for v in values], dtype=np.float64)
    return arr[np.isfinite(arr)] if len(arr) else arr


def _range(arrays: list[np.ndarray]) -> tuple[float, float]:
    vals = np.concatenate([a for a in arrays if len(a)]) if arrays else np.zeros(1)
    lo, hi = (float(np.percentile(vals, 1)), float(np.percentile(vals, 99))) if len(vals) else (0, 1)
    if not math.isfinite(lo) or not math.isfinite(hi) or hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.05 * (hi - lo)
    return lo - pad, hi + pad


def pick_curves(history: Mapping[str, Sequence[float]], names: Sequence[str] = ()
                ) -> dict[str, Sequence[float]]:
    """The series to plot from a training history (a trainer's loss map). `names` picks them
    (a ValueError names any missing one and what there is); empty picks every
    loss and ADA p, leaving out the duplicate "loss" (core's Plot Loss Graph's copy of the main
    curve) and the non-loss metrics in NOT_LOSSES."""
    if names:
        missing = [n for n in names if n not in history]
        if missing:
            raise ValueError(f"curves: {missing} not in the loss map; it has {sorted(history)}")
        return {n: history[n] for n in names}
    picked = {k: v for k, v in history.items() if k != "loss" and k not in NOT_LOSSES}
    return picked or {k: v for k, v in history.items() if k == "loss"} or dict(history)


def plot_losses(series: Mapping[str, Sequence[float]], width: int = 768, height: int = 384,
                smoothing: float = 0.02, title: str = "") -> torch.Tensor:
    """IMAGE [1, height, width, 3] in [0, 1] with one curve per named series. `smoothing`:
    the moving-average window as a fraction of the run's length (0 = raw only)."""
    if width < 160 or height < 120:
        raise ValueError(f"plot size must be at least 160 x 120 px, got {width} x {height}")
    curves = {k: _finite(v) for k, v in series.items() if len(v)}
    curves = {k: v for k, v in curves.items() if len(v)}
    if not curves:
        raise ValueError("loss: the loss map holds no values to plot")
    img = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    left, right, top, bottom = 56, width - 44, 24, height - 28
    losses = {k: v for k, v in curves.items() if k not in PROBABILITY_SERIES}
    probs = {k: v for k, v in curves.items() if k in PROBABILITY_SERIES}
    lo, hi = _range(list(losses.values())) if losses else (0.0, 1.0)
    steps = max(len(v) for v in curves.values())

    def x_of(i: np.ndarray, n: int) -> np.ndarray:
        return left + (right - left) * (i / max(1, n - 1) if n > 1 else np.zeros_like(i))

    def y_of(v: np.ndarray, a: float, b: float) -> np.ndarray:
        return bottom - (bottom - top) * (np.clip(v, a, b) - a) / (b - a)

    # grid and axes
    for k in range(5):
        y = top + (bottom - top) * k / 4
        draw.line([(left, y), (right, y)], fill=(235, 235, 235))
        value = hi - (hi - lo) * k / 4
        draw.text((4, y - 6), f"{value:.3g}", fill=(80, 80, 80), font=font)
        if probs:
            draw.text((right + 4, y - 6), f"{1 - k / 4:.2f}", fill=P_COLOUR, font=font)
    draw.rectangle([left, top, right, bottom], outline=(120, 120, 120))
    draw.text((left, bottom + 8), "0", fill=(80, 80, 80), font=font)
    draw.text((right - 40, bottom + 8), f"{steps} steps", fill=(80, 80, 80), font=font)
    if title:
        draw.text((left, 6), title, fill=(0, 0, 0), font=font)

    window = max(1, int(round(smoothing * steps)))
    legend_x = left + 8
    for n, (name, values) in enumerate(list(losses.items()) + list(probs.items())):
        is_p = name in probs
        colour = P_COLOUR if is_p else PALETTE[n % len(PALETTE)]
        a, b = (0.0, 1.0) if is_p else (lo, hi)
        xs = x_of(np.arange(len(values), dtype=np.float64), len(values))
        if not is_p and window > 1:
            faint = tuple(int(c + (255 - c) * 0.75) for c in colour)
            draw.line(list(zip(xs, y_of(values, a, b))), fill=faint, width=1)
            values = _smooth(values, window)
        draw.line(list(zip(xs, y_of(values, a, b))), fill=colour, width=2)
        label = f"{name} ({values[-1]:.3g})"
        draw.line([(legend_x, top + 10), (legend_x + 14, top + 10)], fill=colour, width=3)
        draw.text((legend_x + 18, top + 4), label, fill=(0, 0, 0), font=font)
        legend_x += 24 + int(draw.textlength(label, font=font))
    pixels = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0)
    return pixels.unsqueeze(0)
