"""FastGAN (Liu et al. 2021, "Towards Faster and Stabilized GAN Training for High-fidelity
Few-shot Image Synthesis"): a light generator with skip-layer excitation and a discriminator
that must also reconstruct its input, so it learns features that survive a few hundred images.

Module names, parameter order and shapes follow odegeasslbc/FastGAN-pytorch (1a848e5) exactly,
so its `.pth` files map onto these modules key for key (gan_core/formats/fastgan.py). The one
naming difference is spectral norm: the original used the old `torch.nn.utils.spectral_norm`
(`weight_orig`, `weight_u`, `weight_v`); here it is `torch.nn.utils.parametrizations.
spectral_norm` (`parametrizations.weight.original`, `...0._u`, `...0._v`), and
`public_key` / `native_key` translate. In eval mode both divide the weight by
sigma = u . (W v) from the stored vectors without a power step, so a loaded file computes what
the original computes. (In train mode both do one power step per call; the new API updates u
before v, the old one v before u.)

Forward forms are the original's: `G(z)` -> `[img_big, img_128]` (raw at 256/512 px, tanh at
1024); `D(x, label, part=None)` -> logits, or with label "real" `(logits, [rec_big, rec_small,
rec_part])`. The generator also speaks the project's latent protocol (`z_dim`, `w_dim`,
`n_latent`, `map_z`, `synthesize`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations, parametrize


SIZES = (256, 512, 1024)
# Width multipliers per resolution (times ngf / ndf); the decoders use the generator's table
# with a fixed base of 32, as the original does whatever ndf is.
G_MULT = {4: 16, 8: 8, 16: 4, 32: 2, 64: 2, 128: 1, 256: 0.5, 512: 0.25, 1024: 0.125}
D_MULT = {4: 16, 8: 16, 16: 8, 32: 4, 64: 2, 128: 1, 256: 0.5, 512: 0.25, 1024: 0.125}
DECODER_BASE = 32
NOISE_MODES = ("fixed", "random", "none")


def widths(mult: dict[int, float], base: int) -> dict[int, int]:
    """Channels per resolution, truncated to int like the original."""
    return {k: int(v * base) for k, v in mult.items()}


@dataclass(frozen=True)
class FastGANConfig:
    image_size: int = 256
    latent_dim: int = 256  # the original's nz (train.py uses 256; its Generator default is 100)
    ngf: int = 64
    ndf: int = 64
    channels: int = 3

    def __post_init__(self) -> None:
        s = self.image_size
        if s not in SIZES:
            raise ValueError(
                f"fastgan image_size must be one of {SIZES}, got {s} (the original builds only "
                f"these sizes; other sizes fail there too, FastGAN-pytorch issue #18)")
        if self.channels < 1:
            raise ValueError(f"fastgan channels must be at least 1, got {self.channels}")
        if self.latent_dim < 1:
            raise ValueError(f"fastgan latent_dim must be at least 1, got {self.latent_dim}")
        # The narrowest layer: the generator's image_size block, the discriminator's stem.
        need_g = int(1 / G_MULT[s] + 0.5)
        if self.ngf < need_g:
            raise ValueError(f"fastgan ngf must be at least {need_g} at {s} px (its {s} px "
                             f"layer has ngf*{G_MULT[s]} channels), got {self.ngf}")
        stem = 1024 if s == 1024 else 512
        need_d = int(1 / D_MULT[stem] + 0.5)
        if self.ndf < need_d:
            raise ValueError(f"fastgan ndf must be at least {need_d} at {s} px (its first "
                             f"layer has ndf*{D_MULT[stem]} channels), got {self.ndf}")


# --------------------------------------------------------------------------- layers

class _SpectralNorm(parametrizations._SpectralNorm):
    """torch's spectral norm parametrization (what `parametrizations.spectral_norm` registers),
    except on the meta device, where it is a shape-only stand-in with the same `_u`, `_v`
    buffers. Checkpoint loaders build networks on the meta device to check a file's keys and
    shapes before allocating anything; there torch's version runs its 15 warm-up power steps
    and a forward through Python decompositions, about 50 ms a layer, 6 s for one FastGAN, for
    values nobody reads. Once real tensors are assigned it is torch's code path unchanged."""

    def __init__(self, weight: torch.Tensor, dim: int):
        if not weight.is_meta:
            super().__init__(weight, n_power_iterations=1, dim=dim, eps=1e-12)
            return
        nn.Module.__init__(self)
        self.dim, self.eps, self.n_power_iterations = dim, 1e-12, 1
        rows, cols = self._reshape_weight_to_matrix(weight).shape
        self.register_buffer("_u", weight.new_empty(rows))
        self.register_buffer("_v", weight.new_empty(cols))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight if weight.is_meta else super().forward(weight)


def spectral_norm(module: nn.Module) -> nn.Module:
    """`torch.nn.utils.parametrizations.spectral_norm(module)` (dim 1 for transposed convs, as
    there), cheap to build on the meta device; state_dict keys are torch's."""
    dim = 1 if isinstance(module, nn.ConvTranspose2d) else 0
    parametrize.register_parametrization(module, "weight", _SpectralNorm(module.weight, dim))
    return module


def _normal(t: torch.Tensor, mean: float, std: float) -> None:
    """In-place N(mean, std) init; skipped on the meta device (nothing to fill, and meta init
    runs through slow Python decompositions)."""
    if not t.is_meta:
        nn.init.normal_(t, mean, std)


def _init_conv(conv: nn.Module) -> nn.Module:
    """The original's init (N(0, 0.02)), applied before spectral norm wraps the weight so the
    stored u, v start out matching it."""
    _normal(conv.weight, 0.0, 0.02)
    return spectral_norm(conv)


def sn_conv(cin: int, cout: int, k: int, stride: int = 1, pad: int = 0) -> nn.Module:
    return _init_conv(nn.Conv2d(cin, cout, k, stride, pad, bias=False))


def batch_norm(c: int) -> nn.BatchNorm2d:
    """BatchNorm with the original's init: scale N(1, 0.02), shift 0."""
    bn = nn.BatchNorm2d(c)
    _normal(bn.weight, 1.0, 0.02)
    if not bn.bias.is_meta:
        nn.init.zeros_(bn.bias)
    return bn


class GLU(nn.Module):
    """First half of the channels gated by the sigmoid of the second half."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.glu(x, dim=1)


class Swish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(x)


# A noise source gives the noise map for a feature map, or None for "no noise".
NoiseSource = Callable[[torch.Tensor], "torch.Tensor | None"]


class NoiseInjection(nn.Module):
    """feat + weight * noise with a learned scalar strength (0 at init). With no source, fresh
    torch.randn noise per call on the global RNG, one map per sample, as in the original."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, feat: torch.Tensor, source: NoiseSource | None = None) -> torch.Tensor:
        if source is None:
            b, _, h, w = feat.shape
            noise = torch.randn(b, 1, h, w, device=feat.device, dtype=feat.dtype)
        else:
            noise = source(feat)
            if noise is None:
                return feat
        return feat + self.weight * noise


class UpBlock(nn.Sequential):
    """.0 nearest x2, .1 SN conv 3x3 to twice the width, .2 BN, .3 GLU."""

    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"),
                         sn_conv(cin, cout * 2, 3, 1, 1), batch_norm(cout * 2), GLU())

    def forward(self, x: torch.Tensor, source: NoiseSource | None = None) -> torch.Tensor:
        return super().forward(x)


class UpBlockComp(nn.Sequential):
    """Two conv-noise-BN-GLU stages after a nearest x2 upsample (keys .1/.2/.3 and .5/.6/.7)."""

    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"),
                         sn_conv(cin, cout * 2, 3, 1, 1), NoiseInjection(),
                         batch_norm(cout * 2), GLU(),
                         sn_conv(cout, cout * 2, 3, 1, 1), NoiseInjection(),
                         batch_norm(cout * 2), GLU())

    def forward(self, x: torch.Tensor, source: NoiseSource | None = None) -> torch.Tensor:
        for layer in self:
            x = layer(x, source) if isinstance(layer, NoiseInjection) else layer(x)
        return x


class SEBlock(nn.Module):
    """Skip-layer excitation: a low-resolution feature map gates a high-resolution one
    channel-wise (pool to 4x4, conv 4x4, swish, conv 1x1, sigmoid)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.main = nn.Sequential(nn.AdaptiveAvgPool2d(4), sn_conv(cin, cout, 4, 1, 0), Swish(),
                                  sn_conv(cout, cout, 1, 1, 0), nn.Sigmoid())

    def forward(self, feat_small: torch.Tensor, feat_big: torch.Tensor) -> torch.Tensor:
        return feat_big * self.main(feat_small)


class InitLayer(nn.Module):
    """z -> 4x4: SN transposed conv (spectral norm over dim 1), BN, GLU."""

    def __init__(self, nz: int, channels: int):
        super().__init__()
        convt = nn.ConvTranspose2d(nz, channels * 2, 4, 1, 0, bias=False)
        self.init = nn.Sequential(_init_conv(convt), batch_norm(channels * 2), GLU())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.init(z.view(z.shape[0], -1, 1, 1))


# --------------------------------------------------------------------------- noise sources

def _fixed_noise() -> NoiseSource:
    """Per-layer maps from one CPU generator seeded 0, drawn in layer order with batch dim 1
    and broadcast, so an image depends on its latent alone."""
    gen = torch.Generator().manual_seed(0)

    def source(feat: torch.Tensor) -> torch.Tensor:
        _, _, h, w = feat.shape
        return torch.randn(1, 1, h, w, generator=gen).to(feat.device, feat.dtype)
    return source


def _random_noise(generator: torch.Generator | None) -> NoiseSource:
    """One map per sample from `generator` (the global RNG when None)."""
    def source(feat: torch.Tensor) -> torch.Tensor:
        b, _, h, w = feat.shape
        if generator is None:
            return torch.randn(b, 1, h, w, device=feat.device, dtype=feat.dtype)
        noise = torch.randn(b, 1, h, w, generator=generator, device=generator.device)
        return noise.to(feat.device, feat.dtype)
    return source


def noise_source(noise: str | NoiseSource | None,
                 generator: torch.Generator | None = None) -> NoiseSource | None:
    """"fixed" / "random" / "none" as a source; None keeps the original's per-call randn; a
    callable (feature map -> noise map or None) is used as given (the trainer's)."""
    if noise is None or callable(noise):
        return noise
    if noise == "fixed":
        return _fixed_noise()
    if noise == "random":
        return _random_noise(generator)
    if noise == "none":
        return lambda feat: None
    raise ValueError(f"noise must be one of {NOISE_MODES}, got {noise!r}")


# --------------------------------------------------------------------------- networks

class FastGANGenerator(nn.Module):
    """z [B, nz] -> [img_big, img_128].

    `bn_batch_stats`: when True, BatchNorm normalises with the batch's own statistics even in
    eval mode, which is what the original eval.py does (it never calls `net_ig.eval()`).
    Running statistics are left untouched and spectral norm takes no power step, so the module
    is not changed by sampling; images then depend on which latents share the batch. Default
    False (eval-mode statistics, one image per latent whatever the batch).
    """

    def __init__(self, cfg: FastGANConfig):
        super().__init__()
        self.cfg = cfg
        self.im_size = cfg.image_size
        self.z_dim = self.w_dim = cfg.latent_dim
        self.n_latent = 1
        self.bn_batch_stats = False
        nfc = widths(G_MULT, cfg.ngf)
        nc = cfg.channels
        # Registration order is the original's: it fixes the state_dict and parameter order.
        self.init = InitLayer(cfg.latent_dim, nfc[4])
        self.feat_8 = UpBlockComp(nfc[4], nfc[8])
        self.feat_16 = UpBlock(nfc[8], nfc[16])
        self.feat_32 = UpBlockComp(nfc[16], nfc[32])
        self.feat_64 = UpBlock(nfc[32], nfc[64])
        self.feat_128 = UpBlockComp(nfc[64], nfc[128])
        self.feat_256 = UpBlock(nfc[128], nfc[256])
        self.se_64 = SEBlock(nfc[4], nfc[64])
        self.se_128 = SEBlock(nfc[8], nfc[128])
        self.se_256 = SEBlock(nfc[16], nfc[256])
        self.to_128 = sn_conv(nfc[128], nc, 1, 1, 0)
        self.to_big = sn_conv(nfc[cfg.image_size], nc, 3, 1, 1)
        if cfg.image_size > 256:
            self.feat_512 = UpBlockComp(nfc[256], nfc[512])
            self.se_512 = SEBlock(nfc[32], nfc[512])
        if cfg.image_size > 512:
            self.feat_1024 = UpBlock(nfc[512], nfc[1024])

    def forward(self, z: torch.Tensor, noise: str | NoiseSource | None = None,
                generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """The original's call: `[img_big, img_128]`. `noise` None draws fresh global-RNG
        noise per call like the original; "fixed" / "random" (from `generator`) / "none" as in
        `synthesize`; or a callable giving each injection's noise map for its feature map."""
        src = noise_source(noise, generator)
        with self._batch_stats(self.bn_batch_stats and not self.training):
            feat_4 = self.init(z)
            feat_8 = self.feat_8(feat_4, src)
            feat_16 = self.feat_16(feat_8)
            feat_32 = self.feat_32(feat_16, src)
            feat_64 = self.se_64(feat_4, self.feat_64(feat_32))
            feat_128 = self.se_128(feat_8, self.feat_128(feat_64, src))
            feat_256 = self.se_256(feat_16, self.feat_256(feat_128))
            if self.im_size == 256:
                return [self.to_big(feat_256), self.to_128(feat_128)]
            feat_512 = self.se_512(feat_32, self.feat_512(feat_256, src))
            if self.im_size == 512:
                return [self.to_big(feat_512), self.to_128(feat_128)]
            feat_1024 = self.feat_1024(feat_512)
            return [torch.tanh(self.to_big(feat_1024)), torch.tanh(self.to_128(feat_128))]

    # ---------------------------------------------------------------- latent protocol
    def map_z(self, z: torch.Tensor) -> torch.Tensor:
        """FastGAN has no mapping network: w is z."""
        return z

    def synthesize(self, w: torch.Tensor, noise: str = "fixed",
                   generator: torch.Generator | None = None,
                   batch_stats: bool | None = None) -> torch.Tensor:
        """The main image [B, C, H, W] for w [B, nz] (or [B, 1, nz]); `noise` "fixed"
        (deterministic per latent), "random" (from `generator`) or "none". `batch_stats`
        overrides `bn_batch_stats` for this call (the original eval.py's batch statistics)."""
        if w.dim() == 3:
            if w.shape[1] != self.n_latent:
                raise ValueError(f"fastgan takes w [B, {self.w_dim}] or [B, 1, {self.w_dim}], "
                                 f"got {tuple(w.shape)}")
            w = w[:, 0]
        if w.dim() != 2 or w.shape[1] != self.w_dim:
            raise ValueError(f"fastgan takes w [B, {self.w_dim}], got {tuple(w.shape)}")
        if noise not in NOISE_MODES:
            raise ValueError(f"noise must be one of {NOISE_MODES}, got {noise!r}")
        before = self.bn_batch_stats
        if batch_stats is not None:
            self.bn_batch_stats = bool(batch_stats)
        try:
            return self.forward(w, noise=noise, generator=generator)[0]
        finally:
            self.bn_batch_stats = before

    def _batch_stats(self, on: bool):
        return _BatchStats(self if on else None)


class _BatchStats:
    """Context: BatchNorm layers use batch statistics without updating running ones."""

    def __init__(self, module: nn.Module | None):
        self.bns = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)] if module else []
        self.saved: list[tuple[bool, bool]] = []

    def __enter__(self):
        for bn in self.bns:
            self.saved.append((bn.training, bn.track_running_stats))
            bn.training, bn.track_running_stats = True, False  # -> F.batch_norm(x, None, None)
        return self

    def __exit__(self, *exc):
        for bn, (training, track) in zip(self.bns, self.saved):
            bn.training, bn.track_running_stats = training, track
        return False


class DownBlock(nn.Module):
    """SN conv 4x4 stride 2, BN, LeakyReLU (`main`)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.main = nn.Sequential(sn_conv(cin, cout, 4, 2, 1), batch_norm(cout),
                                  nn.LeakyReLU(0.2, inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class DownBlockComp(nn.Module):
    """Mean of a two-conv branch (`main`) and an avg-pool + 1x1 conv branch (`direct`)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.main = nn.Sequential(sn_conv(cin, cout, 4, 2, 1), batch_norm(cout),
                                  nn.LeakyReLU(0.2, inplace=True),
                                  sn_conv(cout, cout, 3, 1, 1), batch_norm(cout),
                                  nn.LeakyReLU(0.2))
        self.direct = nn.Sequential(nn.AvgPool2d(2, 2), sn_conv(cin, cout, 1, 1, 0),
                                    batch_norm(cout), nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.main(x) + self.direct(x)) / 2


class SimpleDecoder(nn.Module):
    """Features -> a 128 px image: pool to 8x8, four UpBlocks (widths 128, 64, 64, 32 whatever
    ndf is), SN conv 3x3, tanh."""

    def __init__(self, cin: int, nc: int):
        super().__init__()
        nfc = widths(G_MULT, DECODER_BASE)
        self.main = nn.Sequential(nn.AdaptiveAvgPool2d(8), UpBlock(cin, nfc[16]),
                                  UpBlock(nfc[16], nfc[32]), UpBlock(nfc[32], nfc[64]),
                                  UpBlock(nfc[64], nfc[128]), sn_conv(nfc[128], nc, 3, 1, 1),
                                  nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


def quarter(x: torch.Tensor, part: int) -> torch.Tensor:
    """Quarter `part` of a square map: 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right
    (the original's crop_image_by_part, used for both the 16 px features and the image)."""
    if part not in (0, 1, 2, 3):
        raise ValueError(f"part must be 0, 1, 2 or 3, got {part!r}")
    h = x.shape[2] // 2
    rows = slice(None, h) if part < 2 else slice(h, None)
    cols = slice(None, h) if part % 2 == 0 else slice(h, None)
    return x[:, :, rows, cols]


class FastGANDiscriminator(nn.Module):
    """`D(x, label, part=None)`: x an image tensor (resized, nearest, to image_size and to 128)
    or a list `[img, img_128]` used as is. Returns the logits of both paths concatenated
    ([B*25 big, B*25 small]); with label "real" also `[rec_big, rec_small, rec_part]`, 128 px
    reconstructions of the whole image from the 8 px features, of the 128 px image, and of
    quarter `part` (0-3, required) of the 16 px features. `part` is not returned: the caller
    chose it (the original's return form)."""

    def __init__(self, cfg: FastGANConfig):
        super().__init__()
        self.cfg = cfg
        self.im_size = cfg.image_size
        nfc = widths(D_MULT, cfg.ndf)
        nc = cfg.channels
        if cfg.image_size == 1024:
            self.down_from_big = nn.Sequential(
                sn_conv(nc, nfc[1024], 4, 2, 1), nn.LeakyReLU(0.2, inplace=True),
                sn_conv(nfc[1024], nfc[512], 4, 2, 1), batch_norm(nfc[512]),
                nn.LeakyReLU(0.2, inplace=True))
        elif cfg.image_size == 512:
            self.down_from_big = nn.Sequential(sn_conv(nc, nfc[512], 4, 2, 1),
                                               nn.LeakyReLU(0.2, inplace=True))
        else:
            self.down_from_big = nn.Sequential(sn_conv(nc, nfc[512], 3, 1, 1),
                                               nn.LeakyReLU(0.2, inplace=True))
        self.down_4 = DownBlockComp(nfc[512], nfc[256])
        self.down_8 = DownBlockComp(nfc[256], nfc[128])
        self.down_16 = DownBlockComp(nfc[128], nfc[64])
        self.down_32 = DownBlockComp(nfc[64], nfc[32])
        self.down_64 = DownBlockComp(nfc[32], nfc[16])
        self.rf_big = nn.Sequential(sn_conv(nfc[16], nfc[8], 1, 1, 0), batch_norm(nfc[8]),
                                    nn.LeakyReLU(0.2, inplace=True), sn_conv(nfc[8], 1, 4, 1, 0))
        self.se_2_16 = SEBlock(nfc[512], nfc[64])
        self.se_4_32 = SEBlock(nfc[256], nfc[32])
        self.se_8_64 = SEBlock(nfc[128], nfc[16])
        self.down_from_small = nn.Sequential(
            sn_conv(nc, nfc[256], 4, 2, 1), nn.LeakyReLU(0.2, inplace=True),
            DownBlock(nfc[256], nfc[128]), DownBlock(nfc[128], nfc[64]),
            DownBlock(nfc[64], nfc[32]))
        self.rf_small = sn_conv(nfc[32], 1, 4, 1, 0)
        self.decoder_big = SimpleDecoder(nfc[16], nc)
        self.decoder_part = SimpleDecoder(nfc[32], nc)
        self.decoder_small = SimpleDecoder(nfc[32], nc)

    def forward(self, imgs: torch.Tensor | list[torch.Tensor], label: str,
                part: int | None = None):
        if isinstance(imgs, (list, tuple)):
            big, small = imgs[0], imgs[1]
        else:
            big = F.interpolate(imgs, size=self.im_size)
            small = F.interpolate(imgs, size=128)
        feat_2 = self.down_from_big(big)
        feat_4 = self.down_4(feat_2)
        feat_8 = self.down_8(feat_4)
        feat_16 = self.se_2_16(feat_2, self.down_16(feat_8))
        feat_32 = self.se_4_32(feat_4, self.down_32(feat_16))
        feat_last = self.se_8_64(feat_8, self.down_64(feat_32))
        feat_small = self.down_from_small(small)
        logits = torch.cat([self.rf_big(feat_last).view(-1), self.rf_small(feat_small).view(-1)])
        if label != "real":
            return logits
        if part is None:
            raise ValueError("label 'real' needs part (0-3): the quarter of the 16 px features "
                             "to reconstruct")
        recs = [self.decoder_big(feat_last), self.decoder_small(feat_small),
                self.decoder_part(quarter(feat_32, part))]
        return logits, recs


def build_fastgan(cfg: FastGANConfig) -> dict[str, nn.Module]:
    return {"G": FastGANGenerator(cfg), "D": FastGANDiscriminator(cfg)}


# --------------------------------------------------------------------------- key names

_NATIVE_SN = (".parametrizations.weight.original", ".parametrizations.weight.0._u",
              ".parametrizations.weight.0._v")
_PUBLIC_SN = (".weight_orig", ".weight_u", ".weight_v")


def public_key(key: str) -> str:
    """Our state_dict key -> the original's (old spectral_norm API) name."""
    for ours, theirs in zip(_NATIVE_SN, _PUBLIC_SN):
        if key.endswith(ours):
            return key[: -len(ours)] + theirs
    return key


def native_key(key: str) -> str:
    """The original's key -> ours (inverse of public_key)."""
    for ours, theirs in zip(_NATIVE_SN, _PUBLIC_SN):
        if key.endswith(theirs):
            return key[: -len(theirs)] + ours
    return key
