"""gan_core.tiling: tiled equals untiled, bounded tile sizes, progress/cancel, OOM fallback,
frozen instance-norm statistics. CPU only, tiny random networks, a few seconds in all.

The long fuzzing run (issue 6, SECURITY.md) is the same property test with more examples:
    HYPOTHESIS_PROFILE=long python -m pytest tests/test_tiling.py -k property
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st
from torch import nn

from gan_core.errors import GanAtelierError
from gan_core.infer.tiling import (TileOutOfMemoryError, default_overlap, downscale_for_stats,
                             frozen_instance_norm, pad_to_multiple, run_with_oom_fallback,
                             tile_layout, tile_starts, tiled_apply)

RADIUS = 3  # receptive radius of conv_net: three 3x3 convolutions


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One torch thread: fast and stable on a busy 2-core machine, identical reductions."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def conv_net(c_in: int = 3, c_out: int = 3, width: int = 8, seed: int = 0) -> nn.Module:
    """Three 3x3 convolutions, zero padding, no normalisation: receptive radius 3."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(c_in, width, 3, padding=1), nn.Tanh(),
                         nn.Conv2d(width, width, 3, padding=1), nn.Tanh(),
                         nn.Conv2d(width, c_out, 3, padding=1)).eval()


class StridedNet(nn.Module):
    """Two stride-2 downsamplings and two nearest upsamplings: needs sizes in multiples of 4."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.down = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                                  nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU())
        self.up = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(8, 8, 3, padding=1),
                                nn.ReLU(), nn.Upsample(scale_factor=2),
                                nn.Conv2d(8, 3, 3, padding=1))
        self.sizes: list[tuple[int, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-2] % 4 == 0 and x.shape[-1] % 4 == 0, x.shape
        self.sizes.append(tuple(x.shape[-2:]))
        return self.up(self.down(x))


class Recorder:
    """Wraps fn and remembers the spatial size of every input it was given."""

    def __init__(self, fn):
        self.fn, self.sizes = fn, []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(tuple(x.shape[-2:]))
        return self.fn(x)


def image(h: int, w: int, b: int = 1, c: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, c, h, w, generator=g)


def edge_mask(length: int, tile: int | None, overlap: int | None, multiple: int,
              radius: int) -> torch.Tensor:
    """True where a pixel is at least `radius` px from every tile edge that borders another
    tile (along one axis): there, every tile that covers it computed it exactly."""
    ok = torch.ones(length, dtype=torch.bool)
    if tile is None or length <= tile:
        return ok
    starts, t, _ = tile_layout(length, tile, overlap, multiple)
    for i, s in enumerate(starts):
        if i > 0:
            ok[s:s + radius] = False
        if i < len(starts) - 1:
            ok[max(0, s + t - radius):s + t] = False
    return ok


# ------------------------------------------------------------------------------------ padding

@pytest.mark.parametrize("h,w,m", [(1, 1, 4), (1, 1, 1), (2, 3, 8), (5, 7, 4), (8, 300, 16),
                                   (16, 16, 8)])
def test_pad_to_multiple_shapes_and_crop_back(h, w, m):
    x = image(h, w)
    padded, size = pad_to_multiple(x, m)
    assert size == (h, w)
    assert padded.shape[-2] % m == 0 and padded.shape[-1] % m == 0
    assert padded.shape[-2] - h < m and padded.shape[-1] - w < m
    assert torch.equal(padded[..., :h, :w], x)


def test_pad_to_multiple_reflects_and_falls_back_to_replicate():
    x = torch.arange(5.0).view(1, 1, 1, 5)
    padded, _ = pad_to_multiple(x, 8)  # pad 3 < 5: reflect (no edge repeat)
    assert padded[0, 0, 0].tolist() == [0, 1, 2, 3, 4, 3, 2, 1]
    # height 1 cannot be mirrored: replicate
    assert torch.equal(padded[0, 0], padded[0, 0, :1].expand(8, 8))
    x = torch.arange(3.0).view(1, 1, 1, 3)  # pad 5 >= 3: replicate
    assert pad_to_multiple(x, 8)[0][0, 0, 0].tolist() == [0, 1, 2, 2, 2, 2, 2, 2]
    assert pad_to_multiple(x, 4, mode="constant")[0][0, 0, 0].tolist() == [0, 1, 2, 0]
    three_d, _ = pad_to_multiple(torch.ones(3, 5, 6), 4)
    assert three_d.shape == (3, 8, 8)
    with pytest.raises(ValueError):
        pad_to_multiple(x, 0)


# ------------------------------------------------------------------------------------ layout

def test_tile_starts_cover_with_overlap_and_alignment():
    for length in (1, 7, 64, 65, 100, 257, 1000):
        for tile, ov, m in ((64, 8, 1), (64, 8, 4), (96, 12, 8), (33, 16, 1), (16, 7, 4)):
            starts = tile_starts(length, tile, ov, m)
            lp = -(-length // m) * m
            t = max(m, tile // m * m)
            if lp <= tile:
                assert starts == [0]
                continue
            assert starts[0] == 0 and starts[-1] + t == lp
            assert all(s % m == 0 for s in starts)
            gaps = [b - a for a, b in zip(starts, starts[1:])]
            assert all(g > 0 for g in gaps)
            assert all(t - g >= min(ov, (t - 1) // 2) for g in gaps)


def test_tile_layout_keeps_the_count_and_shrinks_the_tiles():
    assert tile_layout(1024, 512) == ([0, 320, 640], 384, 64)
    assert tile_layout(100, 200) == ([0], 200, 25)  # one tile: nothing to shrink
    for length, tile, m in ((1000, 512, 4), (4096, 512, 4), (513, 512, 1), (90, 16, 2)):
        starts, t, ov = tile_layout(length, tile, None, m)
        assert len(starts) == len(tile_starts(length, tile // m * m, ov, m))  # same count
        assert t <= tile and t % m == 0 and starts[0] == 0
        lp = -(-length // m) * m
        assert starts[-1] + t == lp  # covers the axis
        assert min(t - (b - a) for a, b in zip(starts, starts[1:])) >= ov  # keeps the overlap


def test_default_overlap():
    assert default_overlap(512) == 64
    assert default_overlap(64) == 8
    assert default_overlap(16) == 7  # less than tile/2
    assert default_overlap(1) == default_overlap(2) == 0
    for t in range(3, 300):
        assert 0 < default_overlap(t) < t / 2


# ------------------------------------------------------------------------- tiled == untiled

@given(h=st.integers(1, 96), w=st.integers(1, 96), tile=st.integers(8, 64),
       multiple=st.sampled_from([1, 2, 4, 8]), overlap=st.one_of(st.none(), st.integers(0, 31)),
       batch=st.integers(1, 2), into=st.booleans())
@example(h=1, w=1, tile=8, multiple=1, overlap=None, batch=2, into=False)
@example(h=8, w=300, tile=32, multiple=4, overlap=12, batch=2, into=False)
@example(h=67, w=45, tile=16, multiple=1, overlap=None, batch=2, into=False)
@example(h=1, w=96, tile=8, multiple=8, overlap=0, batch=1, into=True)
@example(h=49, w=48, tile=48, multiple=1, overlap=23, batch=2, into=False)
def test_tiled_matches_untiled_property(h, w, tile, multiple, overlap, batch, into):
    """In float64 (so 1e-5 is rounding, not tiling): tiled == untiled (of the image padded
    to the multiple, as the tiler pads) away from shared tile edges, everywhere with overlap
    >= 4 r; any size keeps its shape; with `out` the result is written there. Example counts
    follow the hypothesis profile (tests/conftest.py: HYPOTHESIS_PROFILE=long for thousands)."""
    net = conv_net().double()
    rec = Recorder(net)
    x = image(h, w, b=batch, seed=h * 131 + w).double()
    with torch.inference_mode():
        full = net(pad_to_multiple(x, multiple)[0])[..., :h, :w]
        buf = torch.full_like(full, float("nan")) if into else None
        out = tiled_apply(rec, x, tile, overlap=overlap, multiple=multiple, out=buf)
    assert out.shape == full.shape and out.dtype == x.dtype
    if into:
        assert out is buf
    assert torch.isfinite(out).all()
    # bounded memory: fn never sees more than one tile (+ the pad to the multiple) per side
    assert all(th <= tile + multiple - 1 and tw <= tile + multiple - 1 for th, tw in rec.sizes)
    assert all(th % multiple == 0 and tw % multiple == 0 for th, tw in rec.sizes)
    mask = (edge_mask(h, tile, overlap, multiple, RADIUS)[:, None]
            & edge_mask(w, tile, overlap, multiple, RADIUS)[None, :])
    diff = (out - full).abs()
    assert diff[..., mask].max().item() < 1e-5 if mask.any() else True
    # the outer quarter of each shared overlap gets weight 0, so overlap >= 4 r is exact everywhere
    t = max(multiple, tile // multiple * multiple)
    if overlap is not None and min(overlap, (t - 1) // 2) >= 4 * RADIUS:
        assert diff.max().item() < 1e-5


@pytest.mark.parametrize("h,w,tile", [(1, 1, 8), (5, 3, 64), (8, 300, 40), (300, 8, 40),
                                      (97, 131, 48), (64, 64, 64), (65, 64, 64)])
def test_tiled_exact_everywhere_with_enough_overlap(h, w, tile):
    net = conv_net(seed=3)
    x = image(h, w, seed=1)
    with torch.inference_mode():
        full = net(x)
        out = tiled_apply(net, x, tile, overlap=min(4 * RADIUS, (tile - 1) // 2))
    assert out.shape == full.shape
    assert (out - full).abs().max().item() < 1e-4


def test_untiled_is_one_call_and_blends_nothing():
    net = conv_net()
    x = image(50, 70)
    for tile in (None, 70, 1000):
        rec = Recorder(net)
        with torch.inference_mode():
            out = tiled_apply(rec, x, tile)
        assert rec.sizes == [(50, 70)]
        assert torch.equal(out, net(x).detach())


def test_small_overlap_is_still_smooth_and_exact_in_tile_cores():
    """Overlap smaller than 4 r: not exact near shared edges, but close, and exact elsewhere."""
    net = conv_net()
    x = image(120, 120)
    with torch.inference_mode():
        full = net(x)
        out = tiled_apply(net, x, 40, overlap=4)
    mask = edge_mask(120, 40, 4, 1, RADIUS)[:, None] & edge_mask(120, 40, 4, 1, RADIUS)[None, :]
    assert not mask.all()
    assert (out - full)[..., mask].abs().max().item() < 1e-4
    assert (out - full).abs().mean().item() < 0.01


def test_multiple_of_four_network_output_cropped_back():
    net = StridedNet().eval()
    x = image(150, 133, b=2)
    with torch.inference_mode():
        full = net(pad_to_multiple(x, 4)[0])[..., :150, :133]
        net.sizes.clear()
        out = tiled_apply(net, x, 64, overlap=30, multiple=4)
    assert out.shape == (2, 3, 150, 133)
    assert len(net.sizes) > 1 and all(s[0] <= 64 and s[1] <= 64 for s in net.sizes)
    assert (out - full).abs().max().item() < 1e-4
    with pytest.raises(AssertionError):  # the network really needs the multiple
        net(x)


def test_scale_two_upsampling_fn():
    net = conv_net()

    def up(x: torch.Tensor) -> torch.Tensor:
        return net(F.interpolate(x, scale_factor=2, mode="nearest"))

    x = image(45, 77)
    with torch.inference_mode():
        full = up(x)
        out = tiled_apply(up, x, 24, overlap=11, scale=2)
    assert out.shape == (1, 3, 90, 154)
    assert (out - full).abs().max().item() < 1e-4


def test_channel_change_dtype_and_device_follow_x():
    net = conv_net(c_in=3, c_out=1)
    x = image(40, 60).double()
    with torch.inference_mode():
        out = tiled_apply(lambda t: net(t.float()), x, 32, overlap=4 * RADIUS)
        full = net(x.float())
    assert out.shape == (1, 1, 40, 60) and out.dtype == torch.float64 and out.device == x.device
    assert (out.float() - full).abs().max().item() < 1e-4


def test_wrong_output_shape_is_a_clear_error():
    with pytest.raises(ValueError, match="scale=2"):
        tiled_apply(lambda t: t, image(20, 20), 8, scale=2)
    with pytest.raises(ValueError, match="tile"):
        tiled_apply(lambda t: t, image(20, 20), 0)
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        tiled_apply(lambda t: t, torch.zeros(3, 8, 8), 4)


# ----------------------------------------------------------------------- progress and cancel

def test_progress_once_per_tile_with_total():
    calls: list[tuple[int, int]] = []
    rec = Recorder(lambda t: t * 2)
    x = image(100, 70)
    out = tiled_apply(rec, x, 32, overlap=8, progress=lambda d, t: calls.append((d, t)))
    n = len(tile_layout(100, 32, 8)[0]) * len(tile_layout(70, 32, 8)[0])
    assert n == len(rec.sizes) > 1
    assert calls == [(i, n) for i in range(1, n + 1)]
    assert (out - 2 * x).abs().max().item() < 1e-5  # pointwise fn: exact with any blending
    calls.clear()
    tiled_apply(lambda t: t, x, None, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 1)]


class Stop(Exception):
    pass


def test_check_stop_before_each_tile_and_propagates():
    seen = []
    polls = []

    def check_stop():
        polls.append(len(seen))
        if len(seen) == 2:
            raise Stop("cancelled")

    def fn(t):
        seen.append(t.shape)
        return t

    with pytest.raises(Stop):
        tiled_apply(fn, image(100, 100), 32, check_stop=check_stop)
    assert len(seen) == 2 and polls == [0, 1, 2]
    with pytest.raises(Stop):
        tiled_apply(fn, image(10, 10), None, check_stop=lambda: (_ for _ in ()).throw(Stop()))


# ------------------------------------------------------------------------------ OOM fallback

def oom_above(limit: int, tries: list):
    net = conv_net()

    def fn(t: torch.Tensor) -> torch.Tensor:
        tries.append(max(t.shape[-2:]))
        if max(t.shape[-2:]) > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return net(t)
    return fn, net


def test_oom_halves_tile_and_succeeds():
    tries: list[int] = []
    fn, net = oom_above(40, tries)
    x = image(100, 90)
    with torch.inference_mode():
        out = tiled_apply(fn, x, None, overlap=12, min_tile=8)
        full = net(x)
    # untiled (100) -> tiles of at most half the image (50; laid out as 42) -> 25: succeeds
    assert tries[0] == 100 and tries[1] == tile_layout(100, 50, 12)[1] and max(tries[-1:]) <= 25
    assert (out - full).abs().max().item() < 1e-4


def test_oom_from_a_given_tile_and_mps_message():
    tries: list[int] = []
    fn, _ = oom_above(40, tries)
    with torch.inference_mode():
        tiled_apply(fn, image(200, 200), 128, min_tile=16)
    first, second = tile_layout(200, 128)[1], tile_layout(200, 64)[1]
    assert tries[0] == first and second in tries and all(t <= 32 for t in tries[-4:])

    calls = []

    def mps(t):
        calls.append(max(t.shape[-2:]))
        if max(t.shape[-2:]) > 64:
            raise RuntimeError("MPS backend out of memory (MPS allocated: 9 GB)")
        return t
    tiled_apply(mps, image(200, 200), None, min_tile=16)
    assert calls[0] == 200 and calls[1] == tile_layout(200, 100)[1] and calls[-1] <= 64


def test_oom_below_min_tile_is_a_clear_error():
    def fn(t):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(TileOutOfMemoryError, match=r"tile size 64.*untiled, 128 px, 64 px") as err:
        tiled_apply(fn, image(256, 256), None, min_tile=64)
    assert isinstance(err.value, torch.cuda.OutOfMemoryError)  # ComfyUI's OOM advice still shows
    assert isinstance(err.value, GanAtelierError)
    assert isinstance(err.value.__cause__, torch.cuda.OutOfMemoryError)


def test_run_with_oom_fallback_sequence_and_non_oom_errors():
    tried = []

    def run(tile):
        tried.append(tile)
        if tile is None or tile > 100:
            raise torch.cuda.OutOfMemoryError("out of memory")
        return torch.zeros(1)

    run_with_oom_fallback(run, None)
    assert tried == [None, 1024, 512, 256, 128, 64]
    tried.clear()
    run_with_oom_fallback(run, None, size=3000)
    assert tried == [None, 1024, 512, 256, 128, 64]
    tried.clear()
    run_with_oom_fallback(run, 300, min_tile=100)
    assert tried == [300, 150, 100]

    def broken(tile):
        tried.append(tile)
        raise RuntimeError("shape mismatch")

    tried.clear()
    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_with_oom_fallback(broken, None)
    assert tried == [None]  # not retried


# ------------------------------------------------------------------ frozen instance-norm stats

def in_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect"), nn.InstanceNorm2d(8, affine=True),
        nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, padding_mode="reflect"), nn.InstanceNorm2d(8),
        nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1, padding_mode="reflect"), nn.Sigmoid()).eval()


def scene(size: int = 256) -> torch.Tensor:
    """Non-stationary content (gradients, a wave, noise): each tile has different statistics."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    x = torch.stack([xx, 0.5 * yy + 0.2 * torch.sin(12 * xx), xx * yy])[None]
    return x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))


def test_frozen_instance_norm_tiles_match_untiled():
    net = in_net()
    x = scene(256)
    with torch.inference_mode():
        full = net(x)
        naive = tiled_apply(net, x, 96)
        with frozen_instance_norm(net, downscale_for_stats(x, 128)) as stats:
            frozen = tiled_apply(net, x, 96)
        after = net(x)
    assert set(stats) == {"1", "4"} and stats["1"][0].shape == (1, 8)
    d_frozen = (frozen - full).abs().mean().item()
    d_naive = (naive - full).abs().mean().item()
    assert d_frozen < 0.02 and d_naive > 2 * d_frozen, (d_frozen, d_naive)
    assert torch.equal(after, full)  # layers restored on exit
    assert all("forward" not in m.__dict__ for m in net.modules())
    # no seam: the step across a tile edge is no larger than steps elsewhere
    starts, t, _ = tile_layout(256, 96)
    edges = [s for s in starts[1:]] + [s + t for s in starts[:-1]]
    step = (frozen[..., :, 1:] - frozen[..., :, :-1]).abs().mean(dim=(0, 1, 2))
    at_edges = step[[e - 1 for e in edges]].max().item()
    assert at_edges <= 2 * step.mean().item() + 1e-6
    assert at_edges <= step.quantile(0.99).item() + 1e-6


def test_frozen_instance_norm_with_full_size_copy_is_exact_and_restores_on_error():
    net = in_net()
    x = scene(64)
    with torch.inference_mode():
        full = net(x)
        with frozen_instance_norm(net, x):
            assert (net(x) - full).abs().max().item() < 1e-5
            # statistics of a batch of 1 broadcast to any batch
            assert (net(torch.cat([x, x])) - full).abs().max().item() < 1e-5
        with frozen_instance_norm(net, torch.cat([x, x.flip(-1)])) as stats:
            assert stats["1"][0].shape == (2, 8)
            with pytest.raises(ValueError, match="batch of 2"):
                net(torch.cat([x, x, x]))
        with pytest.raises(Stop):
            with frozen_instance_norm(net, x):
                raise Stop()
    assert all("forward" not in m.__dict__ for m in net.modules())
    # a module without instance norm: a no-op
    with frozen_instance_norm(conv_net(), x) as stats:
        assert stats == {}


def test_frozen_instance_norm_pads_x_low_to_multiple():
    torch.manual_seed(0)
    seen = []

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.norm = nn.InstanceNorm2d(4)

        def forward(self, x):
            seen.append(tuple(x.shape[-2:]))
            return self.norm(self.conv(x))

    with torch.inference_mode(), frozen_instance_norm(Net(), image(30, 45), multiple=8):
        pass
    assert seen == [(32, 48)]
    assert downscale_for_stats(image(100, 400), 200).shape[-2:] == (50, 200)
