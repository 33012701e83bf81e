"""Training options as one plain dataclass: what the CLI flags, node widgets and the
checkpoint's resume metadata all map onto."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..degrade import parse_recipe
from ..device import CHANNELS_LAST_MODES, check_amp
from ..archs import default_arch, list_archs
from .augment import parse_policy
from ..losses import LOSSES, RECON_LOSSES


class _PlainData:
    """Round trip through the checkpoint's resume metadata (JSON); fields a newer version
    added are ignored when an older file is read back."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class TrainConfig(_PlainData):
    arch: str = field(default_factory=lambda: default_arch("gan"))
    size: int = 64
    channels: int | None = None  # None: the arch's default (1 for mlp, 3 otherwise)
    steps: int = 1000  # total steps; a resumed run continues up to this count
    batch: int = 64
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    loss: str = "bce"  # "bce" (non-saturating) or "hinge"
    r1_gamma: float = 0.0  # 0 disables the R1 penalty
    r1_every: int = 16  # lazy regularisation interval (Karras et al. 2020)
    augment: str = ""  # DiffAugment policy, e.g. "color,translation,cutout"
    ema_decay: float = 0.999
    seed: int = 0
    preview_every: int = 100  # 0: only at the end
    preview_count: int = 16
    checkpoint_every: int = 500  # 0: only at the end (and on cancel)
    device: str = "auto"
    amp: str = "auto"  # "auto" (CUDA only), "off", "bf16", "fp16"
    channels_last: str = "auto"  # "auto" (conv nets on CUDA and CPU: measured +20%), "on", "off"
    compile: bool = False  # torch.compile the networks (slow start, faster long runs)
    model: dict[str, Any] = field(default_factory=dict)  # extra arch config, e.g. {"ngf": 32}
    # Where the images came from (builtin:NAME, a folder as the user gave it), recorded so a
    # resumed run can find them again; the trainer itself never reads it.
    data: str = ""

    def validate(self) -> "TrainConfig":
        if self.arch not in list_archs(trainer="gan"):
            raise ValueError(f"arch must be one of {list_archs(trainer='gan')}, got {self.arch!r}")
        for name in ("size", "steps", "batch", "r1_every", "preview_count"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("preview_every", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)}")
        for name in ("lr_g", "lr_d"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.r1_gamma < 0:
            raise ValueError(f"r1_gamma must be 0 or more, got {self.r1_gamma}")
        if self.channels not in (None, 1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        _check_speed_options(self)
        parse_policy(self.augment)
        return self


def _check_speed_options(cfg) -> None:
    """amp and channels_last: a typo is an error, never a silent default."""
    check_amp(cfg.amp)
    if cfg.channels_last not in CHANNELS_LAST_MODES:
        raise ValueError(f"channels_last must be one of {CHANNELS_LAST_MODES}, got "
                         f"{cfg.channels_last!r}")


@dataclass
class DenoiseTrainConfig(_PlainData):
    """Options of the denoiser trainer (gan_core.train_denoiser): clean crops degraded on the
    fly by `noise`, a reconstruction loss plus `adv_weight` times a PatchGAN adversarial loss
    (0: plain regression, the discriminator is not trained)."""

    arch: str = field(default_factory=lambda: default_arch("denoise"))
    size: int = 64  # crop size in px; dataset images at least this large are cropped randomly
    channels: int | None = None  # None: the arch's default (3)
    noise: str = "gaussian:5-50"  # degradation recipe (gan_core.parse_recipe)
    steps: int = 1000  # total steps; a resumed run continues up to this count
    batch: int = 16
    lr_g: float = 1e-3
    lr_d: float = 2e-4
    beta1: float = 0.9
    beta2: float = 0.999
    loss: str = "l1"  # reconstruction: "l1" or "charbonnier"
    charbonnier_eps: float = 1e-3
    adv_weight: float = 0.01  # weight of the adversarial term; 0 = plain regression
    gan_loss: str = "bce"  # adversarial loss: "bce" (non-saturating) or "hinge"
    ema_decay: float = 0.999
    seed: int = 0
    preview_every: int = 100  # 0: only at the end
    preview_count: int = 4  # (noisy | denoised | clean) triplets in the preview grid
    checkpoint_every: int = 500  # 0: only at the end (and on cancel)
    device: str = "auto"
    amp: str = "auto"  # "auto" (CUDA only), "off", "bf16", "fp16"
    channels_last: str = "auto"  # "auto" (the family's measured devices), "on", "off"
    model: dict[str, Any] = field(default_factory=dict)  # arch config, e.g. {"width": 16}
    data: str = ""  # where the clean images came from (see TrainConfig.data)

    def validate(self) -> "DenoiseTrainConfig":
        if self.arch not in list_archs(trainer="denoise"):
            raise ValueError(f"arch must be one of {list_archs(trainer='denoise')}, got {self.arch!r}")
        for name in ("size", "steps", "batch", "preview_count"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("preview_every", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)}")
        for name in ("lr_g", "lr_d"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        if self.loss not in RECON_LOSSES:
            raise ValueError(f"loss must be one of {RECON_LOSSES}, got {self.loss!r}")
        if self.gan_loss not in LOSSES:
            raise ValueError(f"gan_loss must be one of {LOSSES}, got {self.gan_loss!r}")
        if not self.adv_weight >= 0.0:
            raise ValueError(f"adv_weight must be 0 or more, got {self.adv_weight}")
        if self.channels not in (None, 1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        _check_speed_options(self)
        parse_recipe(self.noise)
        return self



@dataclass
class StyleTrainConfig(_PlainData):
    """Options of the CycleGAN style trainer (gan_core.train_style), with the original
    project's defaults: LSGAN loss, cycle weight 10, identity weight 0.5 (times the cycle
    weight), an image pool of 50, Adam 2e-4 / (0.5, 0.999), batch 1, and a learning rate that
    stays constant for the first `decay_start` of the steps, then falls linearly to zero."""

    arch: str = field(default_factory=lambda: default_arch("style"))
    size: int = 128  # crop size in px (a multiple of 4)
    steps: int = 2000  # total steps; a resumed run continues up to this count
    batch: int = 1
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    decay_start: float = 0.5  # fraction of the steps at the full learning rate
    gan_loss: str = "lsgan"
    cycle_weight: float = 10.0
    identity_weight: float = 0.5  # times cycle_weight; 0 turns the identity loss off
    pool_size: int = 50
    augment: str = ""  # DiffAugment policy for both discriminators, e.g. "color,translation"
    seed: int = 0
    preview_every: int = 100  # 0: only at the end
    preview_count: int = 4  # (content | stylized) pairs in the preview grid
    checkpoint_every: int = 500  # 0: only at the end (and on cancel)
    device: str = "auto"
    amp: str = "auto"  # "auto" (CUDA only), "off", "bf16", "fp16"
    channels_last: str = "auto"  # "auto" (CUDA only), "on", "off"
    model: dict[str, Any] = field(default_factory=dict)  # e.g. {"ngf": 32, "n_blocks": 6}
    content: str = ""  # where the pictures came from (see TrainConfig.data)
    style: str = ""

    def validate(self) -> "StyleTrainConfig":
        if self.arch not in list_archs(trainer="style"):
            raise ValueError(f"arch must be one of {list_archs(trainer='style')} (the style "
                             f"trainer trains CycleGANs), got {self.arch!r}")
        for name in ("size", "steps", "batch", "preview_count"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.size % 4 or self.size < 16:
            raise ValueError(f"size must be a multiple of 4 and at least 16 px, got {self.size}")
        for name in ("preview_every", "checkpoint_every", "pool_size"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)}")
        if not 0.0 < self.lr < 1.0:
            raise ValueError(f"lr must be between 0 and 1, got {self.lr}")
        if not 0.0 <= self.decay_start <= 1.0:
            raise ValueError(f"decay_start must be between 0 and 1, got {self.decay_start}")
        for name in ("cycle_weight", "identity_weight"):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)}")
        if self.gan_loss not in LOSSES:
            raise ValueError(f"gan_loss must be one of {LOSSES}, got {self.gan_loss!r}")
        _check_speed_options(self)
        parse_policy(self.augment)
        return self
