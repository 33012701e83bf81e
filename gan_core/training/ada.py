"""Adaptive discriminator augmentation (Karras et al. 2020, "Training Generative Adversarial
Networks with Limited Data"), written from the paper's description in plain PyTorch.

Why it exists: with a few thousand images D memorises the training set and G's gradients stop
meaning anything. Augmenting every image D sees (real and fake, in both phases) with
transforms that are *non-leaking* (applied with probability p < 1, so the augmented
distribution still determines the clean one) stops the memorisation without G learning to
produce augmented images. The probability p is not tuned by hand: the overfitting heuristic
r_t = E[sign(D(real))] is measured every few steps and p moves up when r_t exceeds a target
(D is too sure of the reals) and down otherwise, at a rate that could take p from 0 to 1 in
`speed_images` images.

The pipeline ("bgc" = pixel blitting, general geometric, colour) applies each transform to
each image independently with probability p:

* blitting: x-flip, rotation by a multiple of 90 degrees, integer translation (up to 1/8 of
  the image);
* geometric: isotropic scaling, pre-rotation, anisotropic scaling, post-rotation, fractional
  translation (the two arbitrary rotations each with probability 1 - sqrt(1 - p), so that the
  chance of any rotation is p);
* colour: brightness, contrast, luma flip, hue rotation, saturation.

All geometric transforms of an image are composed into one 3x3 matrix and the image is
resampled once; all colour transforms are composed into one affine RGB map (the 4x4 matrix of
the paper, kept as its 3x3 linear part and offset). Both are batched, with no loop over images.

Resampling is bilinear `grid_sample` with reflection padding. The paper resamples through a
2x wavelet up/down-sampling to reduce aliasing; a plain 2x bilinear detour would blur the
many images whose only transforms are blits (which must stay lossless), so this module does
without it. The scales involved are mild (lognormal with std 0.2 ln 2), so the aliasing left is
small; the blits (flip, 90 degree rotations, integer shifts) sample exactly at pixel centres
and are lossless up to float rounding.

All randomness comes from a `torch.Generator` (the module's own, seeded at construction and
saved in its state_dict, or one passed to `forward`), so a run is reproducible and a resumed
run draws the same numbers as one that never stopped. Parameters are drawn on the
generator's device (the CPU for the module's own) and the small matrices moved to the images'
device, so the numbers do not depend on where the images live.
"""
from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

ADA_GROUPS = ("bgc", "bg", "b", "g", "c")
"""Accepted `groups`: any of the paper's categories b (pixel blitting), g (general
geometric), c (colour); "bgc" is the paper's default pipeline for ADA."""

_BLIT, _GEOM, _COLOR = range(3)
# One gate per transform, in the order they are applied; the group each belongs to and
# whether it is one of the two arbitrary rotations (whose probability is split).
_GATES = (
    ("xflip", _BLIT), ("rot90", _BLIT), ("int_translate", _BLIT),
    ("iso_scale", _GEOM), ("pre_rotate", _GEOM), ("aniso_scale", _GEOM), ("post_rotate", _GEOM),
    ("frac_translate", _GEOM),
    ("brightness", _COLOR), ("contrast", _COLOR), ("luma_flip", _COLOR), ("hue", _COLOR),
    ("saturation", _COLOR),
)
_SPLIT_ROTATIONS = ("pre_rotate", "post_rotate")
_N_UNIFORM = 8   # xflip bit, rot90 k, int translation (2), pre / post angle, luma bit, hue angle
_N_NORMAL = 7    # iso, aniso, fractional translation (2), brightness, contrast, saturation

_LN2 = math.log(2.0)
_SCALE_STD = 0.2 * _LN2       # isotropic and anisotropic scaling, lognormal
_INT_TRANSLATE_MAX = 0.125    # fraction of the image size, uniform
_FRAC_TRANSLATE_STD = 0.125   # fraction of the image size, normal
_BRIGHTNESS_STD = 0.2
_CONTRAST_STD = 0.5 * _LN2
_SATURATION_STD = 1.0 * _LN2


@dataclasses.dataclass(frozen=True)
class _Params:
    """Per-image transform parameters, each a float tensor [N]; identity values where a
    transform is off. Translations are fractions of the image's width / height (the integer
    translation is rounded to whole pixels when the matrix is built), angles are radians."""

    xflip: torch.Tensor            # 0 or 1
    rot90: torch.Tensor            # k in {0, 1, 2, 3}: k quarter turns
    int_tx: torch.Tensor
    int_ty: torch.Tensor
    iso_scale: torch.Tensor
    pre_rotate: torch.Tensor
    aniso_scale: torch.Tensor      # x scaled by s, y by 1 / s
    post_rotate: torch.Tensor
    frac_tx: torch.Tensor
    frac_ty: torch.Tensor
    brightness: torch.Tensor       # added to every channel
    contrast: torch.Tensor         # multiplies every channel (about mid-grey, 0 in [-1, 1])
    luma_flip: torch.Tensor        # 0 or 1
    hue: torch.Tensor              # rotation angle about the luma axis
    saturation: torch.Tensor       # scale of the chroma (the part orthogonal to the luma axis)

    @classmethod
    def identity(cls, n: int, device: torch.device | str = "cpu") -> _Params:
        zero = torch.zeros(n, device=device)
        one = torch.ones(n, device=device)
        return cls(xflip=zero, rot90=zero, int_tx=zero, int_ty=zero, iso_scale=one,
                   pre_rotate=zero, aniso_scale=one, post_rotate=zero, frac_tx=zero,
                   frac_ty=zero, brightness=zero, contrast=one, luma_flip=zero, hue=zero,
                   saturation=one)


def _draw(n: int, p: float, groups: str, generator: torch.Generator) -> _Params:
    """Draw the parameters of n images from `generator`, on its device.

    Always the same two draws ([n, 13 + 8] uniform, [n, 7] normal) whatever p and the groups,
    so the generator advances identically and only the gates differ."""
    dev = generator.device
    u = torch.rand(n, len(_GATES) + _N_UNIFORM, generator=generator, device=dev)
    z = torch.randn(n, _N_NORMAL, generator=generator, device=dev)
    p_rot = 1.0 - math.sqrt(1.0 - p)
    enabled = {_BLIT: "b" in groups, _GEOM: "g" in groups, _COLOR: "c" in groups}
    probs = torch.tensor([(p_rot if name in _SPLIT_ROTATIONS else p) if enabled[group] else 0.0
                          for name, group in _GATES], device=dev)
    on = u[:, :len(_GATES)] < probs
    gate = {name: on[:, i] for i, (name, _) in enumerate(_GATES)}
    v = u[:, len(_GATES):]

    def off_is(name: str, value: torch.Tensor, identity: float) -> torch.Tensor:
        return torch.where(gate[name], value, torch.full_like(value, identity))

    lognormal = torch.exp
    return _Params(
        xflip=off_is("xflip", (v[:, 0] < 0.5).float(), 0.0),
        rot90=off_is("rot90", torch.floor(v[:, 1] * 4).clamp(max=3), 0.0),
        int_tx=off_is("int_translate", (v[:, 2] * 2 - 1) * _INT_TRANSLATE_MAX, 0.0),
        int_ty=off_is("int_translate", (v[:, 3] * 2 - 1) * _INT_TRANSLATE_MAX, 0.0),
        iso_scale=off_is("iso_scale", lognormal(z[:, 0] * _SCALE_STD), 1.0),
        pre_rotate=off_is("pre_rotate", (v[:, 4] * 2 - 1) * math.pi, 0.0),
        aniso_scale=off_is("aniso_scale", lognormal(z[:, 1] * _SCALE_STD), 1.0),
        post_rotate=off_is("post_rotate", (v[:, 5] * 2 - 1) * math.pi, 0.0),
        frac_tx=off_is("frac_translate", z[:, 2] * _FRAC_TRANSLATE_STD, 0.0),
        frac_ty=off_is("frac_translate", z[:, 3] * _FRAC_TRANSLATE_STD, 0.0),
        brightness=off_is("brightness", z[:, 4] * _BRIGHTNESS_STD, 0.0),
        contrast=off_is("contrast", lognormal(z[:, 5] * _CONTRAST_STD), 1.0),
        luma_flip=off_is("luma_flip", (v[:, 6] < 0.5).float(), 0.0),
        hue=off_is("hue", (v[:, 7] * 2 - 1) * math.pi, 0.0),
        saturation=off_is("saturation", lognormal(z[:, 6] * _SATURATION_STD), 1.0),
    )


def _mat3(a: torch.Tensor, b: torch.Tensor, tx: torch.Tensor, c: torch.Tensor,
          d: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    """Batched homogeneous 2D affine matrices [[a, b, tx], [c, d, ty], [0, 0, 1]], [N, 3, 3]."""
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    return torch.stack([a, b, tx, c, d, ty, zero, zero, one], dim=1).view(-1, 3, 3)


def _scale(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    zero = torch.zeros_like(sx)
    return _mat3(sx, zero, zero, zero, sy, zero)


def _translate(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    one, zero = torch.ones_like(tx), torch.zeros_like(tx)
    return _mat3(one, zero, tx, zero, one, ty)


def _rotate(cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Turn the content counter-clockwise as seen on screen (x right, y down) by the angle
    whose cosine and sine are given."""
    return _mat3(cos, sin, torch.zeros_like(cos), -sin, cos, torch.zeros_like(cos))


def _geometric_matrix(params: _Params, height: int, width: int) -> torch.Tensor:
    """The matrix [N, 3, 3] that maps each output pixel to the point of the input it samples,
    in grid_sample's normalised coordinates (align_corners=False).

    The transforms are defined on the content in pixel units about the image centre (so a
    rotation stays a rotation on non-square images and an integer shift lands on pixel
    centres). The content moves by M = T_n ... T_1; the sampler needs M^-1 = T_1^-1 ... T_n^-1,
    built here directly from each step's exact inverse."""
    w, h = float(width), float(height)
    # Exact quarter turns (cos / sin of k * 90 degrees by table, not by float trig).
    k = params.rot90.long() % 4
    table_cos = torch.tensor([1.0, 0.0, -1.0, 0.0], device=k.device)
    table_sin = torch.tensor([0.0, 1.0, 0.0, -1.0], device=k.device)
    pre, post = params.pre_rotate, params.post_rotate
    inverses = (
        _scale(1 - 2 * params.xflip, torch.ones_like(params.xflip)),
        _rotate(table_cos[k], -table_sin[k]),
        _translate(-torch.round(params.int_tx * w), -torch.round(params.int_ty * h)),
        _scale(1 / params.iso_scale, 1 / params.iso_scale),
        _rotate(torch.cos(pre), -torch.sin(pre)),
        _scale(1 / params.aniso_scale, params.aniso_scale),
        _rotate(torch.cos(post), -torch.sin(post)),
        _translate(-params.frac_tx * w, -params.frac_ty * h),
    )
    m = inverses[0]
    for t in inverses[1:]:
        m = m @ t
    to_pixels = torch.diag(torch.tensor([w / 2, h / 2, 1.0], device=m.device))
    to_normalised = torch.diag(torch.tensor([2 / w, 2 / h, 1.0], device=m.device))
    return to_normalised @ m @ to_pixels


def _color_matrix(params: _Params) -> tuple[torch.Tensor, torch.Tensor]:
    """The composed colour transform as (A [N, 3, 3], o [N, 3]): rgb -> A rgb + o.

    Brightness, contrast, luma flip, hue rotation and saturation in that order, the paper's
    4x4 homogeneous RGB matrix kept as its linear part and offset. The luma axis is
    v = (1, 1, 1) / sqrt(3): luma flip mirrors along v, hue rotates about v, saturation scales
    the part orthogonal to v."""
    dev = params.hue.device
    eye = torch.eye(3, device=dev)
    r = 1 / math.sqrt(3)
    vv = torch.full((3, 3), 1 / 3, device=dev)                  # v v^T
    cross = torch.tensor([[0.0, -r, r], [r, 0.0, -r], [-r, r, 0.0]], device=dev)  # v x (.)
    luma = eye - 2 * vv * params.luma_flip.view(-1, 1, 1)
    cos, sin = torch.cos(params.hue).view(-1, 1, 1), torch.sin(params.hue).view(-1, 1, 1)
    hue = cos * eye + sin * cross + (1 - cos) * vv          # Rodrigues, about v
    saturation = vv + (eye - vv) * params.saturation.view(-1, 1, 1)
    linear = saturation @ hue @ luma
    c, b = params.contrast, params.brightness
    # rgb -> linear (c (rgb + b 1)) = (c linear) rgb + c b (linear 1)
    return linear * c.view(-1, 1, 1), linear.sum(dim=2) * (c * b).view(-1, 1)


def _apply(images: torch.Tensor, params: _Params, geometric: bool = True,
           color: bool = True) -> torch.Tensor:
    """Apply the transforms of `params` to [N, C, H, W] images: geometric (one resampling)
    then colour (one affine map per pixel; RGB for C = 3, brightness and contrast alone for
    any other channel count, where luma and hue mean nothing)."""
    n, ch, h, w = images.shape
    dev, dtype = images.device, images.dtype
    # Non-blocking: the CPU-side matrices are staged at once, so the GPU queue is not drained.
    nb = params.hue.device.type == "cpu" and dev.type != "cpu"
    x = images
    if geometric:
        theta = _geometric_matrix(params, h, w)[:, :2, :].to(dev, dtype, non_blocking=nb)
        grid = F.affine_grid(theta, [n, ch, h, w], align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if color:
        if ch == 3:
            a, o = _color_matrix(params)
            a, o = a.to(dev, dtype, non_blocking=nb), o.to(dev, dtype, non_blocking=nb)
            x = torch.baddbmm(o.unsqueeze(2), a, x.reshape(n, 3, h * w)).view(n, 3, h, w)
        else:
            c = params.contrast.to(dev, dtype, non_blocking=nb).view(n, 1, 1, 1)
            b = params.brightness.to(dev, dtype, non_blocking=nb).view(n, 1, 1, 1)
            x = (x + b) * c
    return x


def _as_float32(value: float) -> float:
    """`value` rounded to the nearest float32: the Python mirror of p then equals the saved
    buffer bit for bit, so a resumed run continues exactly."""
    return float(torch.tensor(value, dtype=torch.float32))


class AdaptiveAugment(torch.nn.Module):
    """The ADA pipeline with its adaptive probability p.

    Use: `aug(images)` on every batch D sees (reals and fakes, D and G phases);
    `aug.accumulate(d_real_logits)` after each D step; `aug.update(batch_images)` once per
    step (it adjusts p every `interval` calls). With DDP, all_reduce `stats_tensor()` and give
    the sum back with `load_stats_tensor()` before `update()`, and pass the global batch size.

    The state_dict holds p (`probability`), the sign accumulators (`sign_sum`, `sign_count`),
    the number of `update()` calls (`update_calls`, so the next adjustment falls on the same
    step after a resume) and the own generator's state (`_extra_state`), all plain tensors.
    p is kept as float32 (float64 buffers cannot move to Apple's MPS); the Python-side value
    is rounded the same way so a resumed run follows the same path.
    """

    def __init__(self, p: float = 0.0, target: float = 0.6, speed_images: int = 500_000,
                 interval: int = 4, groups: str = "bgc", fixed: bool = False, *,
                 seed: int = 0) -> None:
        super().__init__()
        if groups not in ADA_GROUPS:
            raise ValueError(f"unknown ADA groups {groups!r}; expected one of {ADA_GROUPS}")
        if not 0.0 <= target <= 1.0:
            raise ValueError(f"ADA target must be in [0, 1], got {target}")
        if speed_images <= 0:
            raise ValueError(f"ADA speed_images must be positive, got {speed_images}")
        if interval < 1:
            raise ValueError(f"ADA interval must be at least 1, got {interval}")
        self.target = float(target)
        self.speed_images = int(speed_images)
        self.interval = int(interval)
        self.groups = groups
        self.fixed = bool(fixed)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.register_buffer("probability", torch.zeros(()))
        self.register_buffer("sign_sum", torch.zeros(()))
        self.register_buffer("sign_count", torch.zeros(()))
        self.register_buffer("update_calls", torch.zeros((), dtype=torch.int64))
        self._p = 0.0
        self._calls = 0
        self.p = p
        self.register_load_state_dict_post_hook(_refresh_mirrors)

    # -- probability ---------------------------------------------------------------------
    @property
    def p(self) -> float:
        """The current augmentation probability (read without a device sync)."""
        return self._p

    @p.setter
    def p(self, value: float) -> None:
        value = float(value)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"ADA p must be in [0, 1], got {value}")
        self._p = _as_float32(value)
        # full_like writes on the buffer's device without a host-to-device copy or a sync.
        self.probability = torch.full_like(self.probability, self._p)

    # -- augmentation --------------------------------------------------------------------
    def forward(self, images: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment NCHW images in [-1, 1]; differentiable w.r.t. `images`. At p = 0 the input
        itself is returned. `generator` replaces the module's own for this call."""
        if images.dim() != 4 or not images.is_floating_point():
            raise ValueError(f"ADA expects a float [N, C, H, W] batch, got {tuple(images.shape)} "
                             f"{images.dtype}")
        if self._p <= 0.0 or images.shape[0] == 0:
            return images
        params = _draw(images.shape[0], self._p, self.groups,
                       self.generator if generator is None else generator)
        # Half precision cannot hold sampling coordinates to a fraction of a pixel at 256 px.
        work = images if images.dtype in (torch.float32, torch.float64) else images.float()
        out = _apply(work, params, geometric="b" in self.groups or "g" in self.groups,
                     color="c" in self.groups)
        return out.to(images.dtype)

    # -- the overfitting heuristic and p's controller ------------------------------------
    def accumulate(self, real_logits: torch.Tensor) -> None:
        """Add one step's sign(D(real)) sum and count. Stays on the logits' device (the
        accumulators follow it) and never syncs with the host."""
        signs = torch.sign(real_logits.detach()).sum(dtype=torch.float32)
        if self.sign_sum.device != signs.device:
            self.sign_sum = self.sign_sum.to(signs.device)
            self.sign_count = self.sign_count.to(signs.device)
        # Out of place: a state_dict taken earlier keeps its values.
        self.sign_sum = self.sign_sum + signs
        self.sign_count = self.sign_count + real_logits.numel()

    def update(self, batch_images: int) -> dict[str, float] | None:
        """Call once per training step. Every `interval` calls: r_t = E[sign(D(real))] over
        the accumulated steps, p += sign(r_t - target) * batch_images * interval /
        speed_images, clamped to [0, 1], accumulators reset. Returns {"p", "r_t"} when p was
        adjusted, else None (also always when `fixed`, and when nothing was accumulated).

        `batch_images` is the number of real images per step over all processes. Reads the
        accumulators on the host (one sync every `interval` steps)."""
        self._calls += 1
        self.update_calls = torch.full_like(self.update_calls, self._calls)
        if self._calls % self.interval != 0:
            return None
        total, count = torch.stack([self.sign_sum, self.sign_count]).tolist()
        self.sign_sum = torch.zeros_like(self.sign_sum)
        self.sign_count = torch.zeros_like(self.sign_count)
        if self.fixed or count <= 0:
            return None
        r_t = total / count
        step = batch_images * self.interval / self.speed_images
        direction = (r_t > self.target) - (r_t < self.target)
        self.p = min(max(self._p + direction * step, 0.0), 1.0)
        return {"p": self._p, "r_t": r_t}

    def stats_tensor(self) -> torch.Tensor:
        """The accumulators as a new float32 tensor [sum, count] on their device, for a DDP
        trainer to all_reduce (sum) before handing it back to `load_stats_tensor`."""
        return torch.stack([self.sign_sum, self.sign_count])

    def load_stats_tensor(self, t: torch.Tensor) -> None:
        """Replace the accumulators with [sum, count] (typically the all-reduced
        `stats_tensor()`); stays on t's device."""
        t = t.detach().to(torch.float32).reshape(2)
        self.sign_sum, self.sign_count = t[0].clone(), t[1].clone()

    # -- state -----------------------------------------------------------------------------
    def get_extra_state(self) -> torch.Tensor:
        """The own generator's state (a uint8 tensor), saved beside the buffers."""
        return self.generator.get_state()

    def set_extra_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state.detach().to("cpu", torch.uint8).contiguous())

    def extra_repr(self) -> str:
        return (f"p={self._p:.4g}, target={self.target}, speed_images={self.speed_images}, "
                f"interval={self.interval}, groups={self.groups!r}, fixed={self.fixed}")


def _refresh_mirrors(module: AdaptiveAugment, incompatible_keys: object) -> None:
    """After load_state_dict: the host-side copies of p and the call count follow the loaded
    buffers (one sync, at load time only)."""
    module._p = float(module.probability)
    module._calls = int(module.update_calls)
