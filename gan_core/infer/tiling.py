"""Run an image-to-image network over a large image in tiles, in bounded memory, with no seam.

Why tiles: a 9-block CycleGAN generator needs about 1 KiB of activations per pixel even under
`torch.inference_mode()` (measured in benchmarks/stylize.py), so a 4096 px image needs ~15 GiB untiled. Running
one tile at a time bounds the activations to one tile's worth; the only full-size buffers are
the input and the output.

Why blended overlaps: a convolution near a tile's edge sees padding instead of the neighbouring
pixels, so a tile's outermost output pixels are wrong by up to the network's receptive radius.
Neighbouring tiles therefore overlap by `overlap` input pixels, and each tile's output is
weighted by a separable window that is 0 over the outer quarter of each shared side (the worst
pixels are thrown away), rises with a raised-cosine ramp over the middle half, and is 1 in the
tile's core and at the image's own borders (never 0 there: the image border is not a tile
edge). The weights are normalised so that they sum to exactly 1 at every pixel. Consequences:
- a network whose receptive radius r is at most overlap // 4 gives exactly its untiled output
  everywhere; with a smaller overlap the output is exact wherever a pixel is at least r away
  from every tile edge that borders another tile;
- networks with unbounded receptive fields (instance norm, deep ResNets) still get smooth
  transitions: the ramp hides the small disagreements between neighbours instead of a hard
  cut showing them. Instance-norm networks also need shared statistics: see
  `frozen_instance_norm`.

The tile grid is a product of one 1-D split per axis, so the summed window is separable too:
the normalisation is done per axis on 1-D weights, no H x W weight buffer is allocated, and
each tile is accumulated into the output already normalised (no final division pass).

Networks that need sizes in multiples of `multiple` (stride-2 pairs, U-Nets) are fed tiles
whose size and start are multiples of it: a stride-2 network is only shift-equivariant for
shifts that are multiples of its total stride, so aligned tiles reproduce the untiled output.
The image is (virtually) extended at its bottom/right by reflection up to the next multiple,
exactly as `pad_to_multiple` does for the untiled call, and the result is cropped back.

CUDA out-of-memory: `run_with_oom_fallback` (used by `tiled_apply` by default) empties the
cache, halves the tile and retries down to `min_tile`, like ComfyUI's upscale-model node, then
raises `TileOutOfMemoryError` naming every size tried.
"""
from __future__ import annotations

import contextlib
import logging
import math
import types
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import GanAtelierError

__all__ = [
    "AUTO_TILE",
    "MAX_TILE",
    "MAX_UNTILED_SIDE",
    "TileOutOfMemoryError",
    "default_overlap",
    "plan_tile",
    "downscale_for_stats",
    "frozen_instance_norm",
    "is_out_of_memory",
    "pad_to_multiple",
    "run_with_oom_fallback",
    "tile_starts",
    "tiled_apply",
]

# First tile size tried after an untiled run runs out of memory (or half the image, if smaller):
# going straight to the image's half size on a 4096 px image would likely fail again.
FIRST_FALLBACK_TILE = 1024

# Whole-image runs stop here: an image with a longer side is always tiled, even when the caller
# asked for none. A 9-block CycleGAN needs ~1 KiB of activations per pixel, so an untiled
# 4096 px image already needs ~16 GiB and a 10,000 px one ~100 GiB: more than most GPUs and CPU
# servers have, and on a CPU host the kernel's out-of-memory killer would take the whole
# ComfyUI server down instead of raising an error we could catch.
MAX_UNTILED_SIDE = 4096
# The tile used then: ~256 MiB of CycleGAN activations, the size the README recommends.
AUTO_TILE = 512
# The largest tile used on such an image: a tile asked for explicitly is capped here, or the
# bounded-memory promise would only hold for the default (a 4224 px Style Transfer with tile
# 4160 peaked at 2.0 GB against 0.9 GB at 512 px tiles; a full-width CycleGAN at the nodes'
# maximum tile of 8192 would need tens of GB). 1024 px: ~1 GiB of CycleGAN activations, the
# first size the out-of-memory fallback tries.
MAX_TILE = 1024

log = logging.getLogger("gan_core")


def plan_tile(tile: int | None, height: int, width: int, what: str = "image") -> int | None:
    """The tile size to run an image of height x width with, or None for one whole-image call.

    `tile` None (or a tile at least as large as the image) means untiled, except above
    MAX_UNTILED_SIDE, where AUTO_TILE is used and a warning names the limit; there an explicit
    tile larger than MAX_TILE is capped to MAX_TILE, with a warning. Images up to
    MAX_UNTILED_SIDE may run whole, so any tile is honoured on them."""
    side = max(int(height), int(width))
    if side > MAX_UNTILED_SIDE:
        if tile is None or tile >= side:
            chosen = AUTO_TILE if tile is None else min(tile, AUTO_TILE)
            log.warning("%s: %d x %d px is larger than %d px a side, the limit for whole-image "
                        "runs; processing it in %d px tiles to bound memory", what, width,
                        height, MAX_UNTILED_SIDE, chosen)
            return chosen
        if tile > MAX_TILE:
            log.warning("%s: tile %d is larger than %d px, the largest tile used on an image "
                        "over %d px a side (%d x %d px here); using %d px tiles to bound memory",
                        what, tile, MAX_TILE, MAX_UNTILED_SIDE, width, height, MAX_TILE)
            return MAX_TILE
        return tile
    if tile is not None and side > tile:
        return tile
    return None


class TileOutOfMemoryError(GanAtelierError, torch.cuda.OutOfMemoryError):
    """Out of memory even at the smallest tile size allowed.

    It subclasses torch.cuda.OutOfMemoryError so that ComfyUI (which checks for
    `comfy.model_management.OOM_EXCEPTION`) still shows its out-of-memory advice, and
    GanAtelierError so that the CLI and the nodes show the message without a traceback.
    """


# ---------------------------------------------------------------------------------------------
# Padding


def _pad_end(x: Tensor, dim: int, pad: int, mode: str) -> Tensor:
    """Pad one spatial dim (-1 or -2) at its end. Reflection needs pad < size; a thinner image
    (down to 1 px) falls back to replicate, so any size can be fed to any network."""
    if pad <= 0:
        return x
    n = x.shape[dim]
    if mode == "reflect" and pad >= n:
        mode = "replicate"
    pads = (0, pad, 0, 0) if dim == -1 else (0, 0, 0, pad)
    if mode == "constant":
        return F.pad(x, pads, mode="constant", value=0.0)
    return F.pad(x, pads, mode=mode)


def padded_length(length: int, multiple: int, min_size: int = 1) -> int:
    """The side a network is fed for an image side of `length`: the next multiple of
    `multiple`, and at least `min_size` (the one padding rule, whole image or tiles)."""
    return max(min_size, -(-length // multiple) * multiple)


def pad_to_multiple(x: Tensor, multiple: int, mode: str = "reflect",
                    min_size: int = 1) -> tuple[Tensor, tuple[int, int]]:
    """Pad [..., H, W] at the bottom/right to the next multiple of `multiple` (and at least
    `min_size`).

    Returns (padded, (H, W)) so the caller can crop the result back with [..., :H, :W] (times
    the network's scale). Padding at the end only keeps pixel (0, 0) where it was, so tile
    starts stay aligned to the network's stride. mode is "reflect" (default: no artificial
    edge; falls back to "replicate" on an axis too short to mirror, e.g. 1 px), "replicate" or
    "constant" (zeros).
    """
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    if mode not in ("reflect", "replicate", "constant"):
        raise ValueError(f"mode must be 'reflect', 'replicate' or 'constant', got {mode!r}")
    if x.dim() < 3:
        raise ValueError(f"expected a tensor [..., H, W] with a channel dim, got {tuple(x.shape)}")
    h, w = int(x.shape[-2]), int(x.shape[-1])
    ph, pw = padded_length(h, multiple, min_size) - h, padded_length(w, multiple, min_size) - w
    squeeze = x.dim() == 3  # F.pad's reflect/replicate want a batch dim for 2-D padding
    y = x.unsqueeze(0) if squeeze else x
    y = _pad_end(_pad_end(y, -2, ph, mode), -1, pw, mode)
    return (y.squeeze(0) if squeeze else y), (h, w)


# ---------------------------------------------------------------------------------------------
# Tile layout and windows


def default_overlap(tile: int) -> int:
    """About tile/8, at least 8 px, and always less than tile/2 (the core must stay >= 1 px).

    1/8 keeps the recomputed area small (about 25% more pixels processed for 2-D tiles) while
    leaving room for a ramp long enough to hide the small disagreements of deep networks."""
    return max(0, min(max(8, tile // 8), (tile - 1) // 2))


def _effective_tile(tile: int, multiple: int) -> int:
    """The largest multiple of `multiple` that is <= tile (at least one multiple)."""
    return max(multiple, tile // multiple * multiple)


def tile_starts(length: int, tile: int, overlap: int, multiple: int = 1) -> list[int]:
    """Start positions (input pixels) of the tiles along one axis of `length` pixels.

    The axis is first extended to Lp = the next multiple of `multiple`. If Lp <= tile there is
    one tile [0, Lp). Otherwise every tile is `tile` pixels long (rounded down to a multiple),
    starts are multiples of `multiple`, the first starts at 0 and the last ends at Lp, and
    neighbours overlap by at least `overlap` (clamped below tile/2) where the stride allows it.
    The spacing is even, so no tile is a thin sliver.
    """
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    lp = -(-length // multiple) * multiple
    if lp <= tile:
        return [0]
    t = _effective_tile(tile, multiple)
    if lp <= t:
        return [0]
    overlap = min(max(0, overlap), (t - 1) // 2)
    step_units = max(1, (t - overlap) // multiple)  # largest stride, in multiples
    k = (lp - t) // multiple  # last start, in multiples
    n = -(-k // step_units) + 1
    # floor(i*k/(n-1)): consecutive gaps are floor or ceil of k/(n-1) <= step_units
    return [multiple * (i * k // (n - 1)) for i in range(n)]


def tile_layout(length: int, tile: int, overlap: int | None = None,
                multiple: int = 1) -> tuple[list[int], int, int]:
    """(starts, tile length, overlap) along one axis, as tiled_apply cuts it.

    As many tiles as `tile` px tiles need (tile_starts), but each only as long as covering the
    axis with the overlap requires: a 1024 px side in 512 px tiles becomes 3 tiles of 384 px
    instead of 3 of 512 overlapping by half, 1152 px computed per row of tiles instead of 1536,
    and never more memory than `tile` asked for. `overlap` None means default_overlap(tile)."""
    lp = -(-length // multiple) * multiple
    t = _effective_tile(tile, multiple)
    ov = default_overlap(t) if overlap is None else overlap
    ov = min(max(0, ov), (t - 1) // 2)
    starts = tile_starts(length, t, ov, multiple)
    n = len(starts)
    if n > 1:
        shrunk = -(-(lp + (n - 1) * ov) // (n * multiple)) * multiple
        if 2 * ov < shrunk < t:
            t = shrunk
            starts = tile_starts(length, t, ov, multiple)
    return starts, t, ov


def _ramp(n: int) -> Tensor:
    """A raised-cosine rise over n samples, taken at half-sample points: strictly between 0
    and 1, and ramp + reversed ramp == 1 (two facing ramps are a partition of unity)."""
    k = torch.arange(n, dtype=torch.float64)
    return 0.5 - 0.5 * torch.cos(math.pi * (k + 0.5) / n)


def _window(size: int, left: bool, right: bool, overlap: int) -> Tensor:
    """1-D weight for one tile of `size` output px: 1 in the core and on sides that are image
    borders; on a side shared with a neighbour, 0 over the outer overlap//4 (pixels most
    affected by the tile edge) then a raised-cosine ramp over the middle of the overlap."""
    w = torch.ones(size, dtype=torch.float64)
    if overlap <= 0:
        return w
    zero = overlap // 4
    rise = overlap - 2 * zero
    ramp = _ramp(rise)
    if left:
        w[:zero] = 0.0
        w[zero:zero + rise] = ramp
    if right:
        w[size - zero:] = 0.0
        w[size - zero - rise:size - zero] = ramp.flip(0)
    return w


def _axis_plan(length: int, tile: int | None, overlap: int | None, multiple: int,
               scale: int, min_size: int = 1) -> tuple[list[int], int, list[Tensor]]:
    """(starts, tile length in input px, normalised 1-D output weights per tile) for one axis."""
    lp = padded_length(length, multiple, min_size)
    if tile is None or length <= tile:
        return [0], lp, [torch.ones(lp * scale, dtype=torch.float64)]
    starts, t, ov = tile_layout(length, tile, overlap, multiple)
    if len(starts) == 1:
        return [0], lp, [torch.ones(lp * scale, dtype=torch.float64)]
    # The window's overlap must not exceed the smallest real overlap between neighbours.
    real = min(t - (b - a) for a, b in zip(starts, starts[1:]))
    ov = min(ov, real)
    n = len(starts)
    wins = [_window(t * scale, i > 0, i < n - 1, ov * scale) for i in range(n)]
    total = torch.zeros(lp * scale, dtype=torch.float64)
    for s, w in zip(starts, wins):
        total[s * scale:(s + t) * scale] += w
    if not bool((total > 0).all()):  # pragma: no cover - guaranteed by the window design
        raise AssertionError("tile windows leave pixels with zero total weight")
    wins = [w / total[s * scale:(s + t) * scale] for s, w in zip(starts, wins)]
    return starts, t, wins


def _take(x: Tensor, dim: int, start: int, size: int) -> Tensor:
    """x's [start, start+size) along dim, reading past the end by pad_to_multiple's rule so a
    border tile sees exactly the pixels the untiled (padded) call would see."""
    n = int(x.shape[dim])
    if start + size <= n:
        return x.narrow(dim, start, size)
    pad = start + size - n
    if n > 1 and pad < n:  # reflect without repeating the edge, as F.pad(mode="reflect")
        idx = [i if i < n else 2 * (n - 1) - i for i in range(start, start + size)]
    else:  # too short to mirror: replicate, as pad_to_multiple falls back to
        idx = [min(i, n - 1) for i in range(start, start + size)]
    return x.index_select(dim, torch.tensor(idx, device=x.device))


# ---------------------------------------------------------------------------------------------
# Out-of-memory fallback


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or the RuntimeErrors that MPS ("MPS backend out of memory") and
    the CPU allocator ("can't allocate memory") raise instead: all are cured by smaller tiles."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    if isinstance(exc, RuntimeError):
        text = str(exc).lower()
        return "out of memory" in text or "can't allocate memory" in text
    return False


def _empty_cache() -> None:
    """Give the failed attempt's cached blocks back to the allocator before retrying."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    backend = getattr(torch.backends, "mps", None)
    if mps is not None and backend is not None and backend.is_available():
        with contextlib.suppress(Exception):
            mps.empty_cache()


def _next_tile(tile: int | None, size: int | None, min_tile: int) -> int | None:
    """Half of what was effectively tried (an untiled run starts at FIRST_FALLBACK_TILE or half
    the image), never below min_tile; None when nothing smaller is left to try."""
    if tile is None:
        cur = size if size is not None else 2 * FIRST_FALLBACK_TILE
        nxt = min(FIRST_FALLBACK_TILE, -(-cur // 2))
    else:
        cur = min(tile, size) if size is not None else tile
        nxt = cur // 2
    if cur <= min_tile:
        return None
    return max(nxt, min_tile)


def run_with_oom_fallback(run: Callable[[int | None], Tensor], tile: int | None,
                          min_tile: int = 64, size: int | None = None) -> Tensor:
    """Call run(tile); on out-of-memory, empty the cache, halve the tile and call again.

    tile None means untiled; its first fallback is min(1024, half of `size`) (size: the
    image's longest side, when known), since half of a huge image would likely fail again.
    Below min_tile the tile's borders would dominate the work, so the last failure is raised
    as TileOutOfMemoryError naming every size tried. Anything else `run` raises (a cancel, a
    shape error) propagates untouched.

    The retry happens outside the `except` block: the caught exception's traceback holds the
    failed attempt's frames and their tensors, which must be freed before the next try.
    """
    if min_tile < 1:
        raise ValueError(f"min_tile must be >= 1, got {min_tile}")
    tried: list[int | None] = []
    while True:
        tried.append(tile)
        try:
            return run(tile)
        except BaseException as exc:  # noqa: BLE001 - re-raised unless it is an OOM
            if not is_out_of_memory(exc):
                raise
            nxt = _next_tile(tile, size, min_tile)
            if nxt is None:
                shown = ", ".join("untiled" if t is None else f"{t} px" for t in tried)
                raise TileOutOfMemoryError(
                    f"out of memory even with tile size {'untiled' if tile is None else tile} "
                    f"(tried: {shown}; smallest allowed tile: {min_tile} px). Free memory "
                    f"(unload other models), use a smaller image or batch, or run on the CPU. "
                    f"Last error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                ) from exc
        # Outside the except block: the failed attempt's tensors are unreachable now.
        _empty_cache()
        tile = nxt


# ---------------------------------------------------------------------------------------------
# The tiler


def _apply_once(fn: Callable[[Tensor], Tensor], x: Tensor, tile: int | None,
                overlap: int | None, multiple: int, scale: int,
                progress: Callable[[int, int], None] | None,
                check_stop: Callable[[], None] | None, out: Tensor | None = None,
                min_size: int = 1) -> Tensor:
    b, _, h, w = x.shape
    ys, th, wys = _axis_plan(h, tile, overlap, multiple, scale, min_size)
    xs, tw, wxs = _axis_plan(w, tile, overlap, multiple, scale, min_size)
    total = len(ys) * len(xs)
    if total == 1:  # one call on the padded image, no accumulator
        if check_stop is not None:
            check_stop()
        padded, _ = pad_to_multiple(x, multiple, min_size=min_size)
        y = _check_out(fn(padded), padded, scale)
        if progress is not None:
            progress(1, 1)
        cropped = y[..., :h * scale, :w * scale]
        if out is not None:
            _check_channels(y, out)
            return out.copy_(cropped)
        if cropped.shape != y.shape:
            cropped = cropped.contiguous()
        return cropped.to(device=x.device, dtype=x.dtype)

    fresh = True
    wys = [v.to(device=x.device, dtype=x.dtype) for v in wys]
    wxs = [v.to(device=x.device, dtype=x.dtype) for v in wxs]
    # Tiles keep x's memory format: an IMAGE permuted to NCHW is channels_last in memory, and
    # the untiled call runs the network channels_last on it (1.2-1.5x faster on CPU than NCHW,
    # measured in benchmarks/stylize.py); a plain .contiguous() would run every tile as NCHW.
    cl = x.shape[1] > 1 and x.is_contiguous(memory_format=torch.channels_last)
    fmt = torch.channels_last if cl else torch.contiguous_format
    done = 0
    for sy, wy in zip(ys, wys):
        band = _take(x, -2, sy, th)  # a view unless the tile reads past the bottom
        hy = (min(sy + th, h) - sy) * scale  # output rows of this tile inside the image
        for sx, wx in zip(xs, wxs):
            if check_stop is not None:
                check_stop()
            piece = _take(band, -1, sx, tw).contiguous(memory_format=fmt)
            y = _check_out(fn(piece), piece, scale)
            if out is None:
                out = torch.zeros((b, y.shape[1], h * scale, w * scale),
                                  device=x.device, dtype=x.dtype)
            elif fresh:  # the caller's buffer (or an out-of-memory retry): start from zero
                _check_channels(y, out)
                out.zero_()
            elif y.shape[1] != out.shape[1]:
                raise ValueError(f"the tiled function returned {y.shape[1]} channels for one "
                                 f"tile and {out.shape[1]} for another")
            fresh = False
            wx_ = (min(sx + tw, w) - sx) * scale
            weight = wy[:hy, None] * wx[None, :wx_]
            region = out[..., sy * scale:sy * scale + hy, sx * scale:sx * scale + wx_]
            region.addcmul_(y[..., :hy, :wx_].to(device=x.device, dtype=x.dtype), weight)
            del y, piece
            done += 1
            if progress is not None:
                progress(done, total)
    assert out is not None
    return out


def _check_channels(y: Tensor, out: Tensor) -> None:
    if y.shape[1] != out.shape[1]:
        raise ValueError(f"the tiled function returned {y.shape[1]} channels; the output buffer "
                         f"given has {out.shape[1]}")


def _check_out(y: Tensor, inp: Tensor, scale: int) -> Tensor:
    """The tiled function must keep the batch and scale the size by exactly `scale`."""
    want = (inp.shape[0], inp.shape[-2] * scale, inp.shape[-1] * scale)
    if not isinstance(y, Tensor) or y.dim() != 4 or (y.shape[0], y.shape[-2], y.shape[-1]) != want:
        got = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
        raise ValueError(f"the tiled function mapped an input of shape {tuple(inp.shape)} to "
                         f"{got}; expected [{want[0]}, C, {want[1]}, {want[2]}] (scale={scale})")
    return y


def tiled_apply(fn: Callable[[Tensor], Tensor], x: Tensor, tile: int | None,
                overlap: int | None = None, multiple: int = 1, scale: int = 1,
                progress: Callable[[int, int], None] | None = None,
                check_stop: Callable[[], None] | None = None, *,
                oom_fallback: bool = True, min_tile: int = 64,
                out: Tensor | None = None, min_size: int = 1) -> Tensor:
    """Apply fn to x tile by tile, blending overlaps, and return what fn(x) would return.

    x: [B, C, H, W] in the network's layout and range. fn: [B, C, h, w] -> [B, C', h*scale,
    w*scale]; it always receives sizes that are multiples of `multiple`.
    tile: largest tile side in input px (rounded down to a multiple); None, or a tile at least
    as large as the image, means one call on the whole (padded) image. An axis no longer than
    `tile` is never split, so fn never sees more than tile + multiple - 1 px per side.
    overlap: px shared by neighbouring tiles; default `default_overlap(tile)` (~tile/8, >= 8),
    always clamped below tile/2. Exact output everywhere needs overlap >= 4 x the network's
    receptive radius (see the module docstring); otherwise exact away from tile edges.
    progress(done, total) is called after each tile; check_stop() before each tile, and may
    raise (a cancel) - it propagates. With oom_fallback (default), out-of-memory halves the
    tile and restarts (see run_with_oom_fallback); progress then restarts with the new total.

    Only one tile's activations exist at a time; the result is accumulated into a single
    output buffer on x's device, in x's dtype. Gradient mode is the caller's: run under
    torch.inference_mode() (ComfyUI nodes do), or autograd keeps every tile's graph alive.
    `out`: that buffer, given by the caller ([B, C', H*scale, W*scale] on x's device, in x's
    dtype; a view into a larger tensor is fine): the result is written there and returned, so
    a caller filling a batch needs no second full-size copy. Its old contents are overwritten.
    `min_size`: the smallest side fn accepts; shorter sides are padded up to it.
    """
    if not isinstance(x, Tensor) or x.dim() != 4:
        raise ValueError(f"expected x shaped [B, C, H, W], got "
                         f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    if x.shape[0] == 0 or x.shape[-1] == 0 or x.shape[-2] == 0:
        raise ValueError(f"x is empty: shape {tuple(x.shape)}")
    if tile is not None and tile < 1:
        raise ValueError(f"tile must be a positive number of pixels or None, got {tile}")
    if overlap is not None and overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    if multiple < 1 or scale < 1:
        raise ValueError(f"multiple and scale must be >= 1, got multiple={multiple}, scale={scale}")
    if out is not None:
        b, _, h, w = x.shape
        if (not isinstance(out, Tensor) or out.dim() != 4
                or (out.shape[0], out.shape[-2], out.shape[-1]) != (b, h * scale, w * scale)
                or out.device != x.device or out.dtype != x.dtype):
            got = (f"{tuple(out.shape)} {out.dtype} on {out.device}" if isinstance(out, Tensor)
                   else type(out).__name__)
            raise ValueError(f"out must be [{b}, C, {h * scale}, {w * scale}] {x.dtype} on "
                             f"{x.device} (x's batch, scaled size, dtype, device); got {got}")

    def run(t: int | None) -> Tensor:
        return _apply_once(fn, x, t, overlap, multiple, scale, progress, check_stop, out,
                           min_size)

    if not oom_fallback:
        return run(tile)
    return run_with_oom_fallback(run, tile, min_tile=min_tile,
                                 size=max(int(x.shape[-2]), int(x.shape[-1])))


# ---------------------------------------------------------------------------------------------
# Whole-image instance-norm statistics

_INSTANCE_NORMS = (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)


def downscale_for_stats(x: Tensor, max_side: int = 512) -> Tensor:
    """An area-averaged copy of x [B, C, H, W] whose longest side is at most max_side (x itself
    when already small): cheap enough to run untiled, large enough that its per-channel
    statistics are close to the full image's."""
    h, w = int(x.shape[-2]), int(x.shape[-1])
    f = max(h, w) / max_side
    if f <= 1:
        return x
    size = (max(1, round(h / f)), max(1, round(w / f)))
    return F.interpolate(x, size=size, mode="area")


def _frozen_forward(self: nn.Module, x: Tensor) -> Tensor:
    """InstanceNorm with the captured whole-image mean/var instead of the tile's own."""
    mean, var = self._gan_frozen_stats  # [B or 1, C]
    if mean.shape[0] not in (1, x.shape[0]):
        raise ValueError(f"frozen instance-norm statistics were captured for a batch of "
                         f"{mean.shape[0]}, but a tile has a batch of {x.shape[0]}")
    shape = (mean.shape[0], mean.shape[1]) + (1,) * (x.dim() - 2)
    mean = mean.to(device=x.device, dtype=x.dtype).view(shape)
    var = var.to(device=x.device, dtype=x.dtype).view(shape)
    y = (x - mean) * torch.rsqrt(var + self.eps)
    if self.affine:
        wshape = (1, -1) + (1,) * (x.dim() - 2)
        y = y * self.weight.view(wshape) + self.bias.view(wshape)
    return y


@contextlib.contextmanager
def frozen_instance_norm(module: nn.Module, x_low: Tensor, multiple: int = 1,
                         min_size: int = 1) -> Iterator[dict[str, tuple[Tensor, Tensor]]]:
    """Within the block, every InstanceNorm layer of `module` normalises with statistics
    captured from one forward pass over x_low (a downscaled copy of the whole image).

    Why: instance norm normalises with the mean/var of what it sees, so each tile of a tiled
    run would get its own statistics and tiles of a sky and of a forest would disagree in
    tone. Capturing them once from the whole (downscaled) image and freezing them makes every
    tile use the same, whole-image normalisation, which is what the untiled run computes up to
    the downscaling.

    x_low has the batch of the tiles (or 1, broadcast), in the network's layout and range; it is
    padded to `multiple` (and `min_size`) as the whole image is, so when x_low is the image
    itself the statistics are exactly the untiled run's. Layers with running statistics in eval mode already use
    fixed statistics and are left alone. The swap is a temporary instance attribute `forward`
    (no module replaced, so state_dict keys are unchanged), removed on exit even on error.
    Yields {layer name: (mean [B, C], var [B, C])}; empty (a no-op) for a module with no
    instance norm, so callers can wrap any network. Use it only when the image is really
    split into tiles: an untiled run's own statistics are exact, the downscaled ones are not.

        with torch.inference_mode(), frozen_instance_norm(net, downscale_for_stats(x)):
            y = tiled_apply(net, x, tile=512, multiple=4)
    """
    layers = {name: m for name, m in module.named_modules()
              if isinstance(m, _INSTANCE_NORMS) and (m.training or not m.track_running_stats)}
    stats: dict[str, tuple[Tensor, Tensor]] = {}
    if not layers:
        yield stats
        return

    def capture(name: str):
        def hook(m: nn.Module, inputs: tuple, output: Tensor) -> None:
            if name in stats:
                raise ValueError(f"instance-norm layer {name!r} runs more than once per forward "
                                 "pass; frozen statistics cannot tell its calls apart")
            t = inputs[0].detach()
            dims = tuple(range(2, t.dim()))
            var, mean = torch.var_mean(t.float(), dim=dims, unbiased=False)
            stats[name] = (mean, var)
        return hook

    handles = [m.register_forward_hook(capture(n)) for n, m in layers.items()]
    try:
        with torch.no_grad():
            module(pad_to_multiple(x_low, multiple, min_size=min_size)[0])
    finally:
        for hnd in handles:
            hnd.remove()
    missing = sorted(set(layers) - set(stats))
    if missing:
        raise ValueError(f"instance-norm layers {missing} did not run on x_low; cannot freeze them")
    try:
        for name, m in layers.items():
            m._gan_frozen_stats = stats[name]
            m.forward = types.MethodType(_frozen_forward, m)
        yield stats
    finally:
        for m in layers.values():
            m.__dict__.pop("forward", None)
            m.__dict__.pop("_gan_frozen_stats", None)
