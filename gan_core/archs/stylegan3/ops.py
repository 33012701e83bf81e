"""StyleGAN3's operations in plain PyTorch: modulated convolution and the filtered leaky ReLU.

The filtered leaky ReLU (paper section 3.2, appendix C) of one layer is, per channel:

    1. add the bias;
    2. upsample by `up`: insert up-1 zeros after every sample, pad (`padding`, negative values
       crop), convolve with the up filter `fu` (gain up**2; a 1-D `fu` is applied along both
       axes, a 2-D one as it is);
    3. leaky ReLU (`slope`) times `gain`, clamped to [-clamp, clamp];
    4. convolve with the down filter `fd` and keep every `down`-th sample.

Written that way it is costly: the zero-stuffed signal is `up`**2 times larger than the input,
most multiplications are by inserted zeros, and most filtered samples are thrown away by the
decimation (for one 1024 px StyleGAN3-T layer that is gigabytes and tens of seconds on a CPU).
Here the same arithmetic runs without either waste:

  * upsampling is a transposed convolution with stride `up` (per axis for a 1-D filter), which
    never multiplies an inserted zero: out[t] = sum_i x[i] * f[t - up*i];
  * downsampling is a convolution with stride `down`, which computes only the kept samples;
  * the activation still happens at the upsampled rate, on every sample of it;
  * the work is cut into channel chunks and bands of output rows, each band computed from the
    input rows it needs, so the upsampled signal only ever exists one band at a time (a few MB,
    which also keeps it in the CPU's cache); bands never change a value, since each output
    sample is computed from exactly the samples the reference uses;
  * on the CPU the band tensors are channels-last, where PyTorch's depthwise (de)convolutions
    are several times faster than in NCHW.

The gain of the activation is applied to the up filter instead (lrelu(g x) = g lrelu(x) for
g > 0), so the results equal the reference form up to float rounding.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

SQRT2 = math.sqrt(2.0)
# Elements of the upsampled signal one band may hold (float32: 4 bytes each) and channels per
# chunk. Measured on a 2-core Zen 3 (noisy, shared): bands of 2-4 M elements in chunks of 16
# channels (one AVX-512 vector of a channels-last pixel) run about 2x faster per sample than
# whole layers; smaller bands pay Python and halo overhead (each band recomputes the rows its
# filters overlap with the next).
CPU_BAND_ELEMENTS = 1 << 22
GPU_BAND_ELEMENTS = 1 << 27
CPU_CHANNEL_CHUNK = 16


def parse_padding(padding: int | Sequence[int]) -> tuple[int, int, int, int]:
    """(x_before, x_after, y_before, y_after) from an int, [x, y] or the four values."""
    if isinstance(padding, int):
        padding = [padding, padding]
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        padding = [padding[0], padding[0], padding[1], padding[1]]
    if len(padding) != 4:
        raise ValueError(f"padding must be an int, [x, y] or [x0, x1, y0, y1], got {padding!r}")
    return padding[0], padding[1], padding[2], padding[3]


def filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """(width, height) of a filter: None is 1x1, a 1-D filter is square."""
    if f is None:
        return 1, 1
    if f.dim() not in (1, 2):
        raise ValueError(f"a filter is 1-D (separable) or 2-D, got shape {tuple(f.shape)}")
    return int(f.shape[-1]), int(f.shape[0])


def output_size(in_w: int, in_h: int, fu, fd, up: int, down: int,
                padding) -> tuple[int, int]:
    """(width, height) filtered_lrelu returns for an input of in_w x in_h."""
    px0, px1, py0, py1 = parse_padding(padding)
    fu_w, fu_h = filter_size(fu)
    fd_w, fd_h = filter_size(fd)
    out_w = (in_w * up + px0 + px1 - (fu_w - 1) - (fd_w - 1) + (down - 1)) // down
    out_h = (in_h * up + py0 + py1 - (fu_h - 1) - (fd_h - 1) + (down - 1)) // down
    return out_w, out_h


# --------------------------------------------------------------------------- helpers


def _ceil_div(a: int, b: int) -> int:
    return -((-a) // b)


def _rows(x: torch.Tensor, dim: int, lo: int, hi: int) -> torch.Tensor:
    """x[lo:hi] along `dim`, zeros where the range leaves [0, size) (a view when inside)."""
    size = x.shape[dim]
    if lo >= 0 and hi <= size:
        return x.narrow(dim, lo, hi - lo)
    shape = list(x.shape)
    shape[dim] = hi - lo
    out = x.new_zeros(shape)
    if x.is_contiguous(memory_format=torch.channels_last) and x.dim() == 4:
        out = out.contiguous(memory_format=torch.channels_last)
    a, b = max(lo, 0), min(hi, size)
    if b > a:
        out.narrow(dim, a - lo, b - a).copy_(x.narrow(dim, a, b - a))
    return out


def _depthwise(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """A [kh, kw] kernel as a depthwise weight [channels, 1, kh, kw]."""
    return weight.reshape(1, 1, *weight.shape).expand(channels, 1, -1, -1).contiguous()


def _span(n0: int, n1: int, taps: int, up: int, pad0: int, length: int) -> tuple[int, int, int]:
    """For upsampled samples [n0, n1) of an axis of `length` input samples: the input samples
    [i0, i1) with a tap on them (clipped to the input: samples outside it are zeros), and the
    global index of the first sample of the transposed convolution of x[i0:i1]."""
    off = taps - 1 - pad0  # y[n] = sum_i x[i] f[n + off - up*i] = convT(x, f)[n + off]
    i0 = max(0, _ceil_div(n0 + off - taps + 1, up))
    i1 = min(length, (n1 - 1 + off) // up + 1)
    return i0, i1, off - up * i0


def _window(full: torch.Tensor, dim: int, first: int, count: int) -> torch.Tensor:
    """full[first:first + count] along dim, zeros where that leaves the tensor."""
    size = full.shape[dim]
    if first >= 0 and first + count <= size:
        return full.narrow(dim, first, count)
    return _rows(full, dim, first, first + count)


def _up_axis(x: torch.Tensor, taps: torch.Tensor, up: int, pad0: int, dim: int,
             n0: int, n1: int) -> torch.Tensor:
    """Samples [n0, n1) along `dim` (2 = rows, 3 = columns) of: x zero-stuffed by `up`, padded
    by pad0 in front, convolved with the 1-D `taps`. A transposed convolution on the input
    samples those outputs need; no inserted zero is ever multiplied."""
    k = taps.shape[0]
    i0, i1, shift = _span(n0, n1, k, up, pad0, x.shape[dim])
    if i1 <= i0:  # no input sample reaches these outputs
        return _rows(x.narrow(dim, 0, 0), dim, 0, n1 - n0)
    xs = x.narrow(dim, i0, i1 - i0)
    c = x.shape[1]
    if k == 1 and up == 1:
        full = xs * taps[0]
    else:
        if dim == 2:
            w, stride = _depthwise(taps.view(k, 1), c), (up, 1)
        else:
            w, stride = _depthwise(taps.view(1, k), c), (1, up)
        full = F.conv_transpose2d(xs, w, stride=stride, groups=c)
    return _window(full, dim, n0 + shift, n1 - n0)


def _up_2d(x: torch.Tensor, taps: torch.Tensor, up: int, pad_x0: int, pad_y0: int,
           n0: int, n1: int, width: int) -> torch.Tensor:
    """The same for a non-separable [kh, kw] up filter: rows [n0, n1), columns [0, width)."""
    kh, kw = taps.shape
    r0, r1, rshift = _span(n0, n1, kh, up, pad_y0, x.shape[2])
    c0, c1, cshift = _span(0, width, kw, up, pad_x0, x.shape[3])
    if r1 <= r0 or c1 <= c0:
        return _rows(_rows(x.narrow(2, 0, 0), 2, 0, n1 - n0).narrow(3, 0, 0), 3, 0, width)
    xs = x.narrow(2, r0, r1 - r0).narrow(3, c0, c1 - c0)
    c = x.shape[1]
    full = F.conv_transpose2d(xs, _depthwise(taps, c), stride=up, groups=c)
    return _window(_window(full, 2, n0 + rshift, n1 - n0), 3, cshift, width)


def _down(a: torch.Tensor, fd: torch.Tensor | None, down: int) -> torch.Tensor:
    """Correlate with the (already flipped) down filter and keep every `down`-th sample:
    a strided convolution computes only the kept samples."""
    c = a.shape[1]
    if fd is None:
        return a[:, :, ::down, ::down] if down > 1 else a
    if fd.dim() == 2:
        return F.conv2d(a, _depthwise(fd, c), stride=down, groups=c)
    k = fd.shape[0]
    a = F.conv2d(a, _depthwise(fd.view(1, k), c), stride=(1, down), groups=c)
    return F.conv2d(a, _depthwise(fd.view(k, 1), c), stride=(down, 1), groups=c)


# --------------------------------------------------------------------------- the op


def filtered_lrelu(x: torch.Tensor, fu: torch.Tensor | None = None,
                   fd: torch.Tensor | None = None, b: torch.Tensor | None = None,
                   up: int = 1, down: int = 1, padding: int | Sequence[int] = 0,
                   gain: float = SQRT2, slope: float = 0.2, clamp: float | None = None,
                   flip_filter: bool = False,
                   band_elements: int | None = None) -> torch.Tensor:
    """StyleGAN3's filtered leaky ReLU of x [N, C, H, W] (see the module docstring for the
    definition and how it is computed). `fu`/`fd`: 1-D (separable) or 2-D filters, or None
    (identity); `padding` is relative to the upsampled signal, [x0, x1, y0, y1] or shorter;
    `flip_filter` True correlates instead of convolving. `band_elements` bounds the upsampled
    samples held at once (default: a few MB on the CPU, more on GPUs). Returns a tensor of x's
    dtype, channels-last on the CPU."""
    if x.dim() != 4:
        raise ValueError(f"filtered_lrelu expects x as [N, C, H, W], got {tuple(x.shape)}")
    if not (isinstance(up, int) and up >= 1 and isinstance(down, int) and down >= 1):
        raise ValueError(f"up and down must be integers >= 1, got {up!r}, {down!r}")
    if not gain > 0:
        raise ValueError(f"gain must be positive, got {gain}")
    pad = parse_padding(padding)
    px0, px1, py0, _ = pad
    n, c, in_h, in_w = x.shape
    fu_w, fu_h = filter_size(fu)
    fd_w, fd_h = filter_size(fd)
    out_w, out_h = output_size(in_w, in_h, fu, fd, up, down, pad)
    act_w = in_w * up + px0 + px1 - fu_w + 1  # width of the activated (upsampled) signal
    if out_w < 1 or out_h < 1:
        raise ValueError(f"filtered_lrelu: a {in_w}x{in_h} input gives no output with these "
                         f"filters and padding {list(pad)}")
    dtype, dev = x.dtype, x.device

    # Filters in x's dtype, oriented for transposed convolution (up) and correlation (down),
    # the up-sampling gain and the activation gain folded into the up filter.
    fu = torch.ones(1) if fu is None else fu
    fu = fu.to(device=dev, dtype=torch.float32)
    if flip_filter:
        fu = fu.flip(list(range(fu.dim())))
    if fu.dim() == 1:
        fu_x, fu_y = (fu * (up * gain)).to(dtype), (fu * up).to(dtype)
    else:
        fu_2d = (fu * (up * up * gain)).to(dtype)
    if fd is not None:
        fd = fd.to(device=dev, dtype=torch.float32)
        if not flip_filter:
            fd = fd.flip(list(range(fd.dim())))
        fd = fd.to(dtype)
    if b is not None:
        if tuple(b.shape) != (c,):
            raise ValueError(f"bias must have shape [{c}], got {tuple(b.shape)}")
        b = b.to(device=dev, dtype=dtype)

    on_cpu = dev.type == "cpu"
    layout = torch.channels_last if on_cpu else torch.contiguous_format
    out = torch.empty(n, c, out_h, out_w, dtype=dtype, device=dev, memory_format=layout)
    budget = band_elements or (CPU_BAND_ELEMENTS if on_cpu else GPU_BAND_ELEMENTS)
    if on_cpu:  # one sample at a time: a band of one sample is one contiguous block
        chunk = min(c, CPU_CHANNEL_CHUNK)
        samples = [slice(i, i + 1) for i in range(n)]
    else:
        chunk, samples = c, [slice(0, n)]
    rows = max(1, (budget // max(1, (n if not on_cpu else 1) * chunk * act_w) - fd_h) // down
               + 1)  # output rows per band
    fast_w = on_cpu and fu.dim() == 1 and _w_plan(in_w, fu_w, up, px0, act_w, fd_w, out_w,
                                                  down) is not None
    separable = fu.dim() == 1
    # without autograd the band temporaries are written in place; with it, out of place
    inplace = not torch.is_grad_enabled() or not (
        x.requires_grad or (b is not None and b.requires_grad))
    for part in samples:
        for c0 in range(0, c, chunk):
            c1 = min(c, c0 + chunk)
            xc = x[part, c0:c1]
            if not separable and b is not None:
                xc = xc + b[c0:c1].view(1, -1, 1, 1)
            for o0 in range(0, out_h, rows):
                o1 = min(out_h, o0 + rows)
                n0, n1 = o0 * down, (o1 - 1) * down + fd_h  # activated rows of this band
                if separable:
                    # the input rows this band needs, biased, as one small contiguous block
                    i0, i1, _ = _span(n0, n1, fu_h, up, py0, in_h)
                    if i1 <= i0:  # only zero padding reaches these rows: lrelu(0) = 0
                        out[part, c0:c1, o0:o1] = 0
                        continue
                    rows_in = xc[:, :, i0:i1]
                    if not inplace:
                        xb = rows_in if b is None else rows_in + b[c0:c1].view(1, -1, 1, 1)
                        xb = xb.contiguous(memory_format=layout)
                    else:
                        xb = torch.empty((xc.shape[0], c1 - c0, i1 - i0, in_w), dtype=dtype,
                                         device=dev, memory_format=layout)
                        if b is None:
                            xb.copy_(rows_in)
                        else:
                            torch.add(rows_in, b[c0:c1].view(1, -1, 1, 1), out=xb)
                    y = _up_axis(xb, fu_y, up, py0, 2, n0 - up * i0, n1 - up * i0)
                    if fast_w:  # columns: no narrowing, the decimation picks the start
                        y, first = _up_columns(y, fu_x, up, px0, act_w, fd_w, out_w, down)
                    else:
                        y, first = _up_axis(y, fu_x, up, px0, 3, 0, act_w), 0
                else:
                    y, first = _up_2d(xc, fu_2d, up, px0, py0, n0, n1, act_w), 0
                # y is a fresh temporary (or a view of one): in place is safe without autograd
                if slope != 1:
                    y = F.leaky_relu_(y, slope) if inplace else F.leaky_relu(y, slope)
                if clamp is not None:
                    y = y.clamp_(-clamp, clamp) if inplace else y.clamp(-clamp, clamp)
                out[part, c0:c1, o0:o1] = _down(y, fd, down).narrow(3, first, out_w)
    return out


def _w_plan(in_w: int, taps: int, up: int, pad0: int, act_w: int, fd_w: int, out_w: int,
            down: int) -> tuple[int, int, int, int] | None:
    """How the column pass can make exactly what the decimation needs without narrowing
    (which would copy the largest tensor): (i0, i1, crop, first) with the transposed
    convolution of x[:, :, :, i0:i1] cropped by `crop` columns at both ends, and the first
    kept output column at `first` of the downsampled result; None when that is impossible."""
    i0, i1, shift = _span(0, act_w, taps, up, pad0, in_w)
    if i1 <= i0:
        return None
    start = shift  # where activated column 0 sits in the transposed convolution
    length = (i1 - i0 - 1) * up + taps
    needed = start + (out_w - 1) * down + fd_w  # one past the last column the down filter reads
    if start < 0 or needed > length:
        return None
    slack = length - needed
    crop = min(start, slack)
    crop -= (start - crop) % down  # what is left in front must be whole decimation steps
    if crop < 0:
        return None
    return i0, i1, crop, (start - crop) // down


def _up_columns(y: torch.Tensor, taps: torch.Tensor, up: int, pad0: int, act_w: int,
                fd_w: int, out_w: int, down: int) -> tuple[torch.Tensor, int]:
    """The column pass for the CPU fast path: the transposed convolution of the input
    columns it needs, cropped (symmetrically, by the op itself) so that its contiguous result
    starts a whole number of decimation steps before activated column 0."""
    i0, i1, crop, first = _w_plan(y.shape[3], taps.shape[0], up, pad0, act_w, fd_w, out_w,
                                  down)
    k = taps.shape[0]
    ys = y.narrow(3, i0, i1 - i0)
    if ys.stride(3) != y.shape[1] or not ys.is_contiguous(memory_format=torch.channels_last):
        ys = ys.contiguous(memory_format=torch.channels_last)
    if k == 1 and up == 1:
        full = ys * taps[0]
        if crop:
            full = full.narrow(3, crop, full.shape[3] - 2 * crop)
    else:
        full = F.conv_transpose2d(ys, _depthwise(taps.view(1, k), y.shape[1]), stride=(1, up),
                                  padding=(0, crop), groups=y.shape[1])
    return full, first


# --------------------------------------------------------------------------- modulated conv


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                     demodulate: bool = True, padding: int = 0,
                     input_gain: torch.Tensor | None = None) -> torch.Tensor:
    """StyleGAN3's modulated convolution: with `demodulate`, the weight is normalised to unit
    RMS per output channel and the styles to unit RMS over the whole [B, in] tensor (as the
    original, so the scale of a batch's styles is shared); the weight is scaled by each
    sample's styles, demodulated (each output filter to unit L2 norm, + 1e-8), and scaled by
    `input_gain` (per input channel, from magnitude_ema) after demodulation.

    Computed per sample with that sample's weight (cheap next to the activations of large
    layers) on the CPU or for small batches, else as one convolution of the style-scaled
    activations with the shared weight, then the demodulation per output channel."""
    batch = x.shape[0]
    out_ch, in_ch = weight.shape[:2]
    if styles.shape != (batch, in_ch):
        raise ValueError(f"styles must be [{batch}, {in_ch}], got {tuple(styles.shape)}")
    w = weight.float()
    s = styles.float()
    if demodulate:
        w = w * w.square().mean(dim=(1, 2, 3), keepdim=True).rsqrt()
        s = s * s.square().mean().rsqrt()
    if demodulate:
        # sum over in, kh, kw of (w s)^2 = s^2 @ (sum over kh, kw of w^2)
        dcoefs = (s.square() @ w.square().sum(dim=(2, 3)).t() + 1e-8).rsqrt()  # [B, out]
    else:
        dcoefs = None
    gain = s if input_gain is None else s * input_gain.float().expand(batch, in_ch)
    layout = (torch.channels_last if x.device.type == "cpu" else torch.contiguous_format)
    if x.device.type == "cpu" or batch <= 2:
        outs = []
        for i in range(batch):
            wi = w * gain[i].view(1, -1, 1, 1)
            if dcoefs is not None:
                wi = wi * dcoefs[i].view(-1, 1, 1, 1)
            outs.append(F.conv2d(x[i:i + 1], wi.to(x.dtype), padding=padding))
        out = outs[0] if batch == 1 else torch.cat(outs)
        return out.contiguous(memory_format=layout) if batch > 1 else out
    out = F.conv2d(x * gain.to(x.dtype).view(batch, in_ch, 1, 1), w.to(x.dtype),
                   padding=padding)
    if dcoefs is not None:
        out = out * dcoefs.to(x.dtype).view(batch, out_ch, 1, 1)
    return out
