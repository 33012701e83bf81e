"""upfirdn2d in plain PyTorch: upsample by zero insertion, pad, FIR-filter, downsample.

StyleGAN2 resamples through this one primitive (blur after a transposed conv, the ToRGB skip
upsampling). rosinality's code ships it as a CUDA extension that compiles at import and fails
without a GPU toolchain, the most reported problem with that project; this version is ordinary
tensor operations (F.pad, a depthwise F.conv2d, strided slicing) and runs on any device.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _pair(value: int | tuple[int, int], what: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2:
        raise ValueError(f"upfirdn2d {what} must be an int or a pair, got {value!r}")
    return int(pair[0]), int(pair[1])


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int | tuple[int, int] = 1,
              down: int | tuple[int, int] = 1,
              pad: tuple[int, int] | tuple[int, int, int, int] = (0, 0)) -> torch.Tensor:
    """Resample `x` [N,C,H,W] with the 2-D FIR `kernel` [kh,kw], channel by channel.

    Steps, as in the StyleGAN2 papers' definition: insert up-1 zeros after every sample
    (`up` per axis, (x, y) when a pair), pad each side (`pad` = (before, after) for both axes,
    or (x_before, x_after, y_before, y_after); negative values crop), convolve with `kernel`
    (a true convolution, so the kernel is flipped; no padding of its own), keep every
    `down`-th sample. Output size per axis: (in*up + before + after - k) // down + 1.
    """
    if x.dim() != 4:
        raise ValueError(f"upfirdn2d expects x as [N,C,H,W], got shape {tuple(x.shape)}")
    if kernel.dim() != 2:
        raise ValueError(f"upfirdn2d expects a 2-D kernel, got shape {tuple(kernel.shape)}")
    up_x, up_y = _pair(up, "up")
    down_x, down_y = _pair(down, "down")
    if min(up_x, up_y, down_x, down_y) < 1:
        raise ValueError(f"upfirdn2d factors must be >= 1, got up={up!r} down={down!r}")
    if len(pad) == 2:
        px0, px1, py0, py1 = pad[0], pad[1], pad[0], pad[1]
    elif len(pad) == 4:
        px0, px1, py0, py1 = pad
    else:
        raise ValueError(f"upfirdn2d pad must have 2 or 4 entries, got {pad!r}")

    n, c, h, w = x.shape
    if up_x > 1 or up_y > 1:
        spread = x.new_zeros(n, c, h * up_y, w * up_x)
        spread[:, :, ::up_y, ::up_x] = x
        x = spread
    # F.pad crops where a value is negative, so both signs need no special case.
    x = F.pad(x, (px0, px1, py0, py1))
    taps = torch.flip(kernel, (0, 1)).to(dtype=x.dtype, device=x.device)
    x = F.conv2d(x, taps.expand(c, 1, *taps.shape), groups=c)
    if down_x > 1 or down_y > 1:
        x = x[:, :, ::down_y, ::down_x]
    return x
