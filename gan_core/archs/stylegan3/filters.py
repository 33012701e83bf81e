"""Low-pass filter design for StyleGAN3 layers, from the paper's maths, in numpy only.

"Alias-Free Generative Adversarial Networks" (Karras et al. 2021), section 3 and appendix C:
every layer's up- and downsampling filter is an ideal low-pass (a sinc, or for radially
symmetric 2-D filters a jinc) of the layer's cutoff frequency, windowed by a Kaiser window
whose shape parameter follows Kaiser's empirical formulas for the layer's transition band
(the half width f_h on each side of the cutoff, so a transition band of 2 f_h), and
normalised to unit DC gain.

Network files store these filters as tensors, so loading a file never designs a filter; this
module is used only when a network is built from a config (new weights). No scipy: the Bessel
function J1 of the jinc is evaluated by the trapezoidal rule on its integral representation,
which is exact to double precision for the arguments a layer needs.
"""
from __future__ import annotations

import math

import numpy as np


def kaiser_attenuation(numtaps: int, width: float) -> float:
    """Kaiser's estimate of the stopband attenuation (dB) a `numtaps` filter reaches with a
    transition band of `width` (a fraction of the Nyquist frequency)."""
    return 2.285 * (numtaps - 1) * math.pi * width + 7.95


def kaiser_beta(attenuation: float) -> float:
    """Kaiser's shape parameter for a stopband attenuation in dB."""
    a = attenuation
    if a > 50:
        return 0.1102 * (a - 8.7)
    if a > 21:
        return 0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21)
    return 0.0


def bessel_j1(x: np.ndarray, points: int = 512) -> np.ndarray:
    """J1(x) = (1/2pi) * integral over one period of cos(t - x sin t) dt, by the trapezoidal
    rule (spectrally accurate for a smooth periodic integrand; |x| < ~200 is exact to double
    precision with 512 points)."""
    x = np.asarray(x, dtype=np.float64)
    t = np.arange(points, dtype=np.float64) * (2 * np.pi / points)
    return np.cos(t - x[..., None] * np.sin(t)).mean(axis=-1)


def lowpass_1d(numtaps: int, cutoff: float, width: float, fs: float) -> np.ndarray:
    """Kaiser-windowed sinc low-pass: `numtaps` taps, cutoff `cutoff` and transition band
    `width` (both in the units of the sampling rate `fs`), unit sum. float64."""
    nyquist = fs / 2
    beta = kaiser_beta(kaiser_attenuation(numtaps, width / nyquist))
    c = cutoff / nyquist  # cutoff as a fraction of Nyquist
    m = np.arange(numtaps, dtype=np.float64) - (numtaps - 1) / 2
    taps = c * np.sinc(c * m) * np.kaiser(numtaps, beta)
    return taps / taps.sum()


def lowpass_radial(numtaps: int, cutoff: float, width: float, fs: float) -> np.ndarray:
    """Radially symmetric 2-D low-pass [numtaps, numtaps]: the jinc of `cutoff`
    (J1(2 pi fc r) / (pi r)), times the outer product of the same Kaiser window as the 1-D
    design, unit sum. float64."""
    nyquist = fs / 2
    beta = kaiser_beta(kaiser_attenuation(numtaps, width / nyquist))
    x = (np.arange(numtaps, dtype=np.float64) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    with np.errstate(divide="ignore", invalid="ignore"):
        taps = bessel_j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
    taps = np.where(r == 0, cutoff, taps)  # the limit at r = 0 (odd tap counts only)
    window = np.kaiser(numtaps, beta)
    taps = taps * np.outer(window, window)
    return taps / taps.sum()


def design_lowpass(numtaps: int, cutoff: float, width: float, fs: float,
                   radial: bool = False) -> np.ndarray | None:
    """A layer's filter as the paper designs it, or None for the identity (one tap)."""
    if numtaps < 1:
        raise ValueError(f"a filter needs at least one tap, got {numtaps}")
    if numtaps == 1:
        return None
    if radial:
        return lowpass_radial(numtaps, cutoff, width, fs)
    return lowpass_1d(numtaps, cutoff, width, fs)
