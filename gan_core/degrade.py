"""Synthetic degradations of clean images, for self-supervised denoiser training.

A denoiser (or detail enhancer) learns the inverse of whatever is done to its inputs, so the
degradations here are the whole definition of what a model trained on clean images will be
able to remove. The trainer applies them on the fly to clean crops (``degrade_nchw``) and the
"Add Noise" node applies the very same code to an IMAGE (``degrade``), so users see exactly
what their model trains against.

Recipe grammar (a comma-separated mixture, applied left to right in the order written)::

    recipe := step ("," step)*
    step   := KIND [":" param ("/" param)*] ["@" PROB]
    param  := NUMBER | NUMBER "-" NUMBER        (a range: drawn uniformly, per image)

    gaussian:SIGMA          additive white Gaussian noise, independent per channel; SIGMA in
                            0..255 pixel units (gaussian:25 adds noise with std 25/255)
    poisson[:PEAK]          shot noise: out = Poisson(x * PEAK) / PEAK, per channel, where PEAK
                            is the photon count of a white (1.0) pixel; the variance at
                            intensity x is x / PEAK, so lower PEAK = noisier (default 50: at
                            mid-grey about as strong as gaussian:25)
    saltpepper:RATE         impulse noise: a fraction RATE (0..1) of pixels becomes pure black
                            or pure white (half each, all colour channels of a pixel together)
    jpeg:QUALITY            JPEG encode/decode through Pillow; QUALITY a whole number 1..100
    grain[:STRENGTH[/SIZE]] film grain: monochrome Gaussian noise blurred with a Gaussian of
                            SIZE px (spatially correlated clumps), rescaled so its std is
                            STRENGTH/255 at mid-grey and weighted by sqrt(4*y*(1-y)) of the
                            pixel's luma y (strongest in mid-tones, none in pure black/white,
                            as with real film); defaults 12 and 1
    blur:SIGMA              Gaussian blur, SIGMA in px (0..20; 0 is no blur)
    downscale:FACTOR        resolution loss: area-downscale by FACTOR (1..32) then bicubic
                            upscale back to the same size

Any number may be a range ``LO-HI`` (``gaussian:5-50``, ``jpeg:10-40``); each image in a batch
draws its own value uniformly from it (JPEG quality: a whole number, ends included). A step
may end with ``@PROB`` (0..1): each image gets that step with probability PROB, otherwise it
passes through the step unchanged (``jpeg:10-40@0.5``). Kinds are case-insensitive, spaces are
ignored, empty items are skipped. ``str(recipe)`` is the canonical text: lower case, every
parameter written out (``poisson`` -> ``poisson:50``), single values for equal ends, ``@PROB``
only when below 1; parsing it gives an equal ``Recipe``.

Every random draw (noise, per-image values, ``@PROB`` coin flips, JPEG qualities) comes from one
``torch.Generator``, so a seed reproduces a degradation exactly. Pixels are clamped to [0, 1]
after every step, as a real pipeline (sensor, file) would clip them before the next one.
"""
from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .images import luma_nchw
from .seeds import MAX_SEED

__all__ = ["NOISE_KINDS", "Recipe", "Step", "degrade", "degrade_nchw", "parse_recipe"]


# ----------------------------------------------------------------------------- grammar


@dataclass(frozen=True)
class _Param:
    """One numeric parameter of a kind: its name, allowed interval and default."""

    name: str
    lo: float
    hi: float
    default: float | None = None  # None: the parameter must be written
    integer: bool = False
    open_lo: bool = False  # lo itself is not allowed (poisson's PEAK > 0)


@dataclass(frozen=True)
class _Kind:
    params: tuple[_Param, ...]
    form: str  # how it is written, for error messages
    unit: str


# The smallest photon count at white a poisson step accepts (see _KINDS).
MIN_POISSON_PEAK = 1e-3

_KINDS: dict[str, _Kind] = {
    "gaussian": _Kind((_Param("sigma", 0.0, 255.0),), "gaussian:SIGMA", "SIGMA in 0..255"),
    # PEAK at least MIN_POISSON_PEAK: below ~1.4e-45 it is 0 in float32 and every pixel
    # becomes 0/0 = NaN; a thousandth of a photon at white is already a black image.
    "poisson": _Kind((_Param("peak", MIN_POISSON_PEAK, 1e6, default=50.0),),
                     "poisson[:PEAK]", f"PEAK in {MIN_POISSON_PEAK:g}..1e6, photons at white"),
    "saltpepper": _Kind((_Param("rate", 0.0, 1.0),), "saltpepper:RATE", "RATE in 0..1"),
    "jpeg": _Kind((_Param("quality", 1.0, 100.0, integer=True),), "jpeg:QUALITY",
                  "QUALITY a whole number 1..100"),
    "grain": _Kind((_Param("strength", 0.0, 255.0, default=12.0),
                    _Param("size", 0.25, 8.0, default=1.0)),
                   "grain[:STRENGTH[/SIZE]]", "STRENGTH in 0..255, SIZE in 0.25..8 px"),
    "blur": _Kind((_Param("sigma", 0.0, 20.0),), "blur:SIGMA", "SIGMA in 0..20 px"),
    "downscale": _Kind((_Param("factor", 1.0, 32.0),), "downscale:FACTOR", "FACTOR in 1..32"),
}

NOISE_KINDS: tuple[str, ...] = tuple(_KINDS)
"""The degradation kinds a recipe may name, in the order the documentation lists them."""

_FORMS = ", ".join(k.form for k in _KINDS.values())
_HELP = (f"a recipe is a comma-separated list of {_FORMS}; any number may be a range LO-HI "
         "(gaussian:5-50) and any step may end with @PROB (jpeg:10-40@0.5)")
_NUM = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_VALUE_RE = re.compile(rf"({_NUM})(?:-({_NUM}))?")
_PROB_RE = re.compile(_NUM)


def _fmt(v: float) -> str:
    """Shortest text that reads back as the same float: 25.0 -> '25', 0.02 -> '0.02'."""
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return repr(float(v))


@dataclass(frozen=True)
class Step:
    """One degradation: its kind, a (lo, hi) interval per parameter, and a probability.

    Intervals are stored even for a single value (lo == hi) so that applying a step never
    needs to know how it was written; ``prob`` is the chance that a given image gets it.
    """

    kind: str
    params: tuple[tuple[float, float], ...]
    prob: float = 1.0

    def __post_init__(self) -> None:
        # A Step built in code (a trainer config) gets the same checks as parsed text.
        part = f"{self.kind}:{self.params}@{self.prob}"
        if self.kind not in _KINDS:
            raise ValueError(f"noise recipe: unknown kind {self.kind!r}; expected one of "
                             f"{', '.join(_KINDS)}")
        spec = _KINDS[self.kind]
        if len(self.params) != len(spec.params):
            raise _bad(part, f"{self.kind} takes {len(spec.params)} (lo, hi) interval(s)", self.kind)
        for p, (lo, hi) in zip(spec.params, self.params):
            _check_interval(part, self.kind, p, float(lo), float(hi), f"{lo}-{hi}")
        if not 0.0 <= self.prob <= 1.0:
            raise _bad(part, f"probability {self.prob} is out of range 0..1", self.kind)

    def __str__(self) -> str:
        text = self.kind
        if self.params:
            text += ":" + "/".join(_fmt(lo) if lo == hi else f"{_fmt(lo)}-{_fmt(hi)}"
                                   for lo, hi in self.params)
        if self.prob < 1.0:
            text += "@" + _fmt(self.prob)
        return text


@dataclass(frozen=True)
class Recipe:
    """An ordered, immutable list of steps; ``str()`` gives its canonical recipe text.

    Immutable and hashable so a parsed recipe can sit in a training config or a cache key.
    """

    steps: tuple[Step, ...]

    def __str__(self) -> str:
        return ",".join(str(s) for s in self.steps)

    def __iter__(self):
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    @classmethod
    def parse(cls, text: str) -> Recipe:
        """Same as ``parse_recipe(text)``."""
        return parse_recipe(text)


def _bad(part: str, why: str, kind: str | None = None) -> ValueError:
    """An error naming the bad part; with the kind known, its own form is help enough."""
    if kind is None:
        return ValueError(f"noise recipe: {why} in {part!r}; {_HELP}")
    spec = _KINDS[kind]
    return ValueError(f"noise recipe: {why} in {part!r}; write {spec.form} ({spec.unit}), "
                      "a number or a range LO-HI, optionally followed by @PROB")


def _parse_value(part: str, kind: str, spec: _Param, text: str) -> tuple[float, float]:
    m = _VALUE_RE.fullmatch(text)
    if not m:
        raise _bad(part, f"cannot read {spec.name} {text!r}", kind)
    try:
        lo = float(m.group(1))
        hi = float(m.group(2)) if m.group(2) is not None else lo
    except ValueError:  # pragma: no cover - the regex only lets float() text through
        raise _bad(part, f"cannot read {spec.name} {text!r}", kind) from None
    _check_interval(part, kind, spec, lo, hi, text)
    return lo, hi


def _check_interval(part: str, kind: str, spec: _Param, lo: float, hi: float, text: str) -> None:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise _bad(part, f"{spec.name} {text!r} is not a finite number", kind)
    if lo > hi:
        raise _bad(part, f"{spec.name} range {text!r} has its low end above its high end", kind)
    for v in (lo, hi):
        if v < spec.lo or v > spec.hi or (spec.open_lo and v == spec.lo):
            raise _bad(part, f"{spec.name} {_fmt(v)} is out of range", kind)
        if spec.integer and v != int(v):
            raise _bad(part, f"{spec.name} {_fmt(v)} is not a whole number", kind)


def _parse_step(part: str) -> Step:
    body, at, prob_text = part.partition("@")
    prob = 1.0
    if at:
        if not _PROB_RE.fullmatch(prob_text):
            raise _bad(part, f"cannot read probability {prob_text!r} after '@'")
        prob = float(prob_text)
        if not 0.0 <= prob <= 1.0:
            raise _bad(part, f"probability {_fmt(prob)} is out of range 0..1")
    name, colon, args = body.partition(":")
    kind = name.lower()
    if kind not in _KINDS:
        raise ValueError(f"noise recipe: unknown kind {name!r} in {part!r}; expected one of "
                         f"{', '.join(_KINDS)}; {_HELP}")
    spec = _KINDS[kind]
    texts = args.split("/") if colon else []
    if colon and args == "":
        raise _bad(part, "nothing after ':'", kind)
    if len(texts) > len(spec.params):
        raise _bad(part, f"{kind} takes at most {len(spec.params)} parameter(s), "
                         f"got {len(texts)}", kind)
    values = []
    for i, p in enumerate(spec.params):
        if i < len(texts):
            values.append(_parse_value(part, kind, p, texts[i]))
        elif p.default is not None:
            values.append((p.default, p.default))
        else:
            raise _bad(part, f"{kind} needs its {p.name}", kind)
    return Step(kind, tuple(values), prob)


def parse_recipe(text: str) -> Recipe:
    """Read recipe text such as ``"blur:0.5-1.5,gaussian:5-30,jpeg:30-90"`` into a Recipe.

    Parsing is strict and eager so a typo in a node's recipe field or a CLI ``--noise`` fails
    before any training starts, with a message that names the bad part and lists what is valid.
    """
    if isinstance(text, Recipe):
        return text
    if not isinstance(text, str):
        raise TypeError(f"noise recipe: expected text, got {type(text).__name__}")
    parts = ["".join(p.split()) for p in text.split(",")]
    steps = tuple(_parse_step(p) for p in parts if p)
    if not steps:
        raise ValueError(f"noise recipe: the recipe {text!r} is empty; {_HELP}")
    return Recipe(steps)


# ----------------------------------------------------------------------------- helpers


def _draw(step: Step, i: int, n: int, g: torch.Generator, device: torch.device) -> torch.Tensor:
    """Per-image values [n] of parameter i: fixed, or uniform in the range (whole numbers
    for integer parameters). Drawn on the generator's device, then moved to the images'."""
    lo, hi = step.params[i]
    if lo == hi:
        return torch.full((n,), lo, device=device)
    if _KINDS[step.kind].params[i].integer:
        v = torch.randint(int(lo), int(hi) + 1, (n,), generator=g, device=g.device).float()
    else:
        v = lo + (hi - lo) * torch.rand(n, generator=g, device=g.device)
    return v.to(device)


def _randn(shape: tuple[int, ...], g: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    return torch.randn(shape, generator=g, device=g.device).to(like.device)


def _rand(shape: tuple[int, ...], g: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    return torch.rand(shape, generator=g, device=g.device).to(like.device)


def _reflect_index(n: int, pad: int, device: torch.device) -> torch.Tensor:
    """Indices of a reflect-padded axis of length n (edge pixel not repeated, like F.pad's
    "reflect"), valid for any pad: F.pad refuses pad >= n, which tiny images hit."""
    i = torch.arange(-pad, n + pad, device=device)
    if n == 1:
        return torch.zeros_like(i)
    period = 2 * (n - 1)
    i = i.remainder(period)
    return torch.where(i >= n, period - i, i)


def _kernels(sigma: torch.Tensor) -> torch.Tensor:
    """Normalised 1-D Gaussian kernels [N, 2r+1] for sigmas [N] (px), r = ceil(3 * max sigma);
    sigma 0 gives a unit impulse (no blur)."""
    r = max(1, math.ceil(3.0 * float(sigma.max())))
    t = torch.arange(-r, r + 1, device=sigma.device, dtype=torch.float32)
    k = torch.exp(-0.5 * (t.view(1, -1) / sigma.float().clamp_min(1e-6).view(-1, 1)) ** 2)
    return k / k.sum(dim=1, keepdim=True)


def _conv_valid(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Separable "valid" convolution of x [N,C,H+2r,W+2r] with per-image kernels k [N, 2r+1]:
    one grouped conv2d per axis, giving [N,C,H,W]."""
    n, c = x.shape[:2]
    k = k.to(x.dtype).repeat_interleave(c, dim=0)  # [n*c, 2r+1]
    y = x.reshape(1, n * c, *x.shape[2:])
    y = F.conv2d(y, k.view(n * c, 1, -1, 1), groups=n * c)
    y = F.conv2d(y, k.view(n * c, 1, 1, -1), groups=n * c)
    return y.view(n, c, *y.shape[2:])


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each image of x [N,C,H,W] with its own sigma [N] (px): a separable normalised
    Gaussian kernel, reflect-padded so edges keep their brightness."""
    if float(sigma.max()) <= 0.0:
        return x
    k = _kernels(sigma)
    r = k.shape[1] // 2
    h, w = x.shape[2:]
    x = x.index_select(2, _reflect_index(h, r, x.device))
    x = x.index_select(3, _reflect_index(w, r, x.device))
    return _conv_valid(x, k)


_luma = luma_nchw


# ----------------------------------------------------------------------------- the kinds
# Each takes colour channels [N,C,H,W] float32 in [0,1] and returns (degraded, sigma [N] in
# 0..1 units of the Gaussian noise it added, or None).


def _apply_gaussian(x, step, g):
    sigma = _draw(step, 0, x.shape[0], g, x.device) / 255.0
    return x + _randn(tuple(x.shape), g, x) * sigma.view(-1, 1, 1, 1), sigma


def _apply_poisson(x, step, g):
    peak = _draw(step, 0, x.shape[0], g, x.device).view(-1, 1, 1, 1)
    rate = (x * peak).to(g.device)
    return torch.poisson(rate, generator=g).to(x.device) / peak, None


def _apply_saltpepper(x, step, g):
    n, _, h, w = x.shape
    rate = _draw(step, 0, n, g, x.device).view(-1, 1, 1, 1)
    u = _rand((n, 1, h, w), g, x)  # one draw per pixel: [0, r/2) pepper, [r/2, r) salt
    x = torch.where(u < rate * 0.5, torch.zeros_like(x), x)
    return torch.where((u >= rate * 0.5) & (u < rate), torch.ones_like(x), x), None


def _apply_jpeg(x, step, g):
    quality = _draw(step, 0, x.shape[0], g, x.device).round().int().tolist()
    mode = "L" if x.shape[1] == 1 else "RGB"
    pixels = (x.detach() * 255.0).round().clamp(0, 255).to(torch.uint8)
    pixels = pixels.permute(0, 2, 3, 1).cpu().numpy()
    out = []
    for arr, q in zip(pixels, quality):
        buf = io.BytesIO()
        Image.fromarray(arr[..., 0] if mode == "L" else arr, mode).save(buf, "JPEG", quality=q)
        buf.seek(0)
        with Image.open(buf) as im:
            dec = np.asarray(im.convert(mode), dtype=np.uint8)
        out.append(torch.from_numpy(dec.reshape(arr.shape).copy()))
    y = torch.stack(out).permute(0, 3, 1, 2).to(x.device, torch.float32) / 255.0
    return y, None


def _apply_grain(x, step, g):
    n, _, h, w = x.shape
    strength = _draw(step, 0, n, g, x.device) / 255.0
    k = _kernels(_draw(step, 1, n, g, x.device))
    r = k.shape[1] // 2
    # White noise on a canvas r px larger on every side, blurred without padding: the grain is
    # then statistically the same everywhere, borders and tiny images included. Blurring unit
    # white noise with k leaves std ||k2d||_2 = sum(k1d^2); dividing it out makes STRENGTH the
    # grain's std at mid-grey whatever its size.
    noise = _conv_valid(_randn((n, 1, h + 2 * r, w + 2 * r), g, x), k)
    noise = noise / (k ** 2).sum(dim=1).view(-1, 1, 1, 1)
    y = _luma(x)
    weight = (4.0 * y * (1.0 - y)).clamp_min(0.0).sqrt()
    return x + noise * weight * strength.view(-1, 1, 1, 1), None


def _apply_blur(x, step, g):
    return _gaussian_blur(x, _draw(step, 0, x.shape[0], g, x.device)), None


def _apply_downscale(x, step, g):
    n, _, h, w = x.shape
    factor = _draw(step, 0, n, g, x.device).tolist()
    sizes = [(max(1, round(h / f)), max(1, round(w / f))) for f in factor]
    out = x.clone()
    for size in set(sizes):  # one resize per distinct target size (one for a fixed factor)
        if size == (h, w):
            continue
        idx = torch.tensor([i for i, s in enumerate(sizes) if s == size], device=x.device)
        small = F.interpolate(x[idx], size=size, mode="area")
        out[idx] = F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False)
    return out, None


_APPLY = {"gaussian": _apply_gaussian, "poisson": _apply_poisson,
          "saltpepper": _apply_saltpepper, "jpeg": _apply_jpeg, "grain": _apply_grain,
          "blur": _apply_blur, "downscale": _apply_downscale}


# ----------------------------------------------------------------------------- public


def _generator(generator: torch.Generator | None, seed: int | None) -> torch.Generator:
    if generator is not None and seed is not None:
        raise ValueError("degrade: pass a generator or a seed, not both")
    if generator is not None:
        return generator
    if seed is not None:
        if not 0 <= int(seed) <= MAX_SEED:
            raise ValueError(f"degrade: seed {seed} is outside 0..{MAX_SEED}")
        return torch.Generator().manual_seed(int(seed))
    # Neither: seed a private generator from torch's global RNG, so torch.manual_seed() still
    # makes a run reproducible without this call disturbing anyone else's stream.
    return torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,)).item()))


def degrade_nchw(x: torch.Tensor, recipe: Recipe | str, generator: torch.Generator | None = None,
                 *, seed: int | None = None, return_sigma: bool = False,
                 ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Degrade network-layout images x [B,C,H,W] in [0,1] (C 1, 3 or 4) by a recipe.

    This is the one implementation (``degrade`` wraps it for ComfyUI's layout); the trainer
    calls it directly on its [B,C,H,W] crops. Steps run in the order written, each image
    drawing its own values from ranges, all from ``generator`` (or a fresh one from ``seed``),
    so a seed reproduces the result exactly. A 4th (alpha) channel is returned bit-for-bit as
    given: degradations model the picture, not its mask. Colour is clamped to [0, 1] after
    every step. The result has x's shape, dtype and device.

    With ``return_sigma=True`` also returns sigma [B] (float32, x's device): the std in 0..1
    units of the Gaussian noise each image received, root-sum-squared over gaussian steps
    (independent noises add in variance), for noise-level-conditioned models such as DRUNet.
    It is 0 for images that got no gaussian step: poisson, salt-and-pepper, JPEG and grain have
    no single Gaussian sigma, and it is the sigma as added, not reduced by later steps (blur).
    """
    recipe = parse_recipe(recipe)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"degrade: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] not in (1, 3, 4):
        raise ValueError(f"degrade: expected images shaped [B, C, H, W] with C in 1/3/4, "
                         f"got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"degrade: expected floating-point images in [0, 1], got {x.dtype}")
    g = _generator(generator, seed)
    b = x.shape[0]
    sigma2 = torch.zeros(b, device=x.device)
    colour = x[:, :3].float().clamp(0.0, 1.0)
    if b and x.shape[2] and x.shape[3]:
        if not torch.isfinite(colour).all():
            raise ValueError("degrade: the images contain NaN or infinite values")
        for step in recipe.steps:
            if step.prob >= 1.0:
                idx = None
            else:
                idx = (_rand((b,), g, colour) < step.prob).nonzero().flatten()
                if idx.numel() == 0:
                    continue
            sub = colour if idx is None else colour[idx]
            out, sigma = _APPLY[step.kind](sub, step, g)
            out = out.clamp(0.0, 1.0)
            if idx is None:
                colour = out
            else:
                colour = colour.clone()
                colour[idx] = out
            if sigma is not None:
                if idx is None:
                    sigma2 = sigma2 + sigma ** 2
                else:
                    sigma2 = sigma2.index_add(0, idx, sigma ** 2)
    y = colour.to(x.dtype)
    if x.shape[1] == 4:
        y = torch.cat([y, x[:, 3:]], dim=1)
    return (y, sigma2.sqrt()) if return_sigma else y


def degrade(images: torch.Tensor, recipe: Recipe | str, generator: torch.Generator | None = None,
            seed: int | None = None, *, return_sigma: bool = False,
            ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Degrade a ComfyUI IMAGE batch [B,H,W,C] in [0,1] by a recipe (the "Add Noise" node).

    A thin layout wrapper over ``degrade_nchw`` so the node shows exactly what the trainer
    trains against. Deterministic for a given ``seed`` or ``generator`` (pass one, not both;
    with neither, the draw follows torch's global RNG). Alpha passes through untouched; the
    output has the input's shape and dtype, colour clamped to [0, 1]. ``return_sigma`` as in
    ``degrade_nchw``.
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"degrade: expected a torch.Tensor IMAGE batch, got {type(images).__name__}")
    if images.dim() != 4 or images.shape[-1] not in (1, 3, 4):
        raise ValueError(f"degrade: expected an IMAGE batch shaped [B, H, W, C] with C in 1/3/4, "
                         f"got shape {tuple(images.shape)}")
    out = degrade_nchw(images.permute(0, 3, 1, 2), recipe, generator, seed=seed,
                       return_sigma=return_sigma)
    if return_sigma:
        return out[0].permute(0, 2, 3, 1).contiguous(), out[1]
    return out.permute(0, 2, 3, 1).contiguous()
