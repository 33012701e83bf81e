"""GANModel: what `gan_core.load` returns and the trainer produces.

It pairs the modules with what is needed to use and rebuild them (arch, config, training
summary) and, for a run that can continue, the resume state. Task methods speak ComfyUI's
IMAGE layout so that nodes, scripts and the CLI all call the same code.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable

import torch
from torch import nn

from .archs import get_arch
from .infer import denoise_images, stylize_images
from .latent.space import LatentSpace
from .registry import ArchSpec, ImageIO, LatentIO
from .images import chunks, fill_batch
from .seeds import parse_seeds


@dataclass
class ResumeState:
    """Everything beyond the weights that a continued run needs to follow the same curve."""

    step: int
    optimizers: dict[str, dict[str, Any]]  # name -> torch optimizer state_dict
    rng_state: torch.Tensor  # the trainer generator's state (uint8)
    ema_count: int  # updates folded into the EMA generator so far
    history: dict[str, list[float]] = field(default_factory=dict)  # loss name -> per-step values
    train_config: dict[str, Any] = field(default_factory=dict)
    buffers: dict[str, torch.Tensor] = field(default_factory=dict)  # e.g. CycleGAN's image pools


DIRECTIONS = ("A->B", "B->A")


class GANModel:
    """A trained or loaded model. `modules` maps roles to nn.Modules: "G" (the generator; for
    style models the A->B one), "G_ema" (its moving average), "D" (its discriminator) and, for
    CycleGANs trained here, "G_BA" (B->A) and "D_A" (the discriminator of domain A)."""

    def __init__(self, arch: str, config: Any, modules: dict[str, nn.Module],
                 training: dict[str, Any] | None = None, resume: ResumeState | None = None,
                 source: str | None = None):
        self.arch = arch
        self.config = config
        self.modules = modules
        self.training = dict(training or {})
        self.resume = resume
        self.source = source
        for m in modules.values():
            m.eval()

    def __repr__(self) -> str:
        steps = self.training.get("steps")
        return (f"GANModel(arch={self.arch!r}, task={self.task!r}, size={self.image_size}"
                f"{f', steps={steps}' if steps is not None else ''})")

    @property
    def spec(self) -> ArchSpec:
        """The family's record (gan_core.registry.ArchSpec)."""
        return get_arch(self.arch)

    @property
    def task(self) -> str:
        return self.spec.task

    @property
    def image_io(self) -> ImageIO | None:
        """What the network takes and returns, for image-to-image models (else None)."""
        io = self.spec.image_io
        return io(self.config) if io is not None else None

    @property
    def latent_io(self) -> LatentIO | None:
        """The latent protocol, for generators (else None)."""
        io = self.spec.latent_io
        return io(self.config) if io is not None else None

    @property
    def module(self) -> nn.Module:
        """The network to sample from: the EMA generator when there is one."""
        return self.modules.get("G_ema") or self.modules["G"]

    @property
    def discriminator(self) -> nn.Module | None:
        """The discriminator ("D") when the file has one, called as its original project does
        (a public FastGAN file's as `(x, label, part=None)`); None for generator-only files."""
        return self.modules.get("D")

    @property
    def directions(self) -> tuple[str, ...]:
        """What stylize(direction=...) accepts: "A->B", plus "B->A" for files with both
        generators (CycleGANs trained here)."""
        return DIRECTIONS if "G_BA" in self.modules else DIRECTIONS[:1]

    @property
    def image_size(self) -> int:
        """The generated (or trained) image side in px; 0 when the family has no fixed size."""
        for name in ("image_size", "img_resolution"):  # ours / NVIDIA's config field
            if hasattr(self.config, name):
                return int(getattr(self.config, name))
        return 0

    @property
    def latent_dim(self) -> int:
        io = self.latent_io
        return io.z_dim if io is not None else 0

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def to(self, device: torch.device | str) -> "GANModel":
        for m in self.modules.values():
            m.to(device)
        return self

    def _require_task(self, task: str) -> None:
        if self.task != task:
            raise ValueError(f"this is a {self.task!r} model ({self.arch}); it cannot {task}")

    @torch.inference_mode()
    def generate(self, seeds: int | str | Iterable[int], truncation: float = 1.0,
                 batch_size: int = 64, device: torch.device | str | None = None,
                 noise: str = "fixed", class_index: int | None = None,
                 truncation_cutoff: int | None = None, camera=None) -> torch.Tensor:
        """Images for `seeds` as float32 [B,H,W,3] in [0,1] on the CPU.

        Each seed's latent comes from its own generator and the network runs in eval mode,
        so a seed's image never depends on which other seeds share the batch. `truncation`
        pulls latents toward the mean: z toward 0 (the prior's mean) for z-space models, w
        toward the mean w for mapping models (StyleGAN2); below 1 trades variety for
        typicality. `noise` (generators with noise inputs): "fixed" (the default: an image
        depends on its seed alone), "random" (drawn from a generator seeded by the image's
        seed) or "none". Goes through gan_core.latent's adapter, like every latent tool.
        Conditional models (`latent_io.classes` > 0) need `class_index`; `truncation_cutoff`
        truncates only the first layers (mapping models, as NVIDIA's scripts); `camera`
        (generators with one, StyleGAN3): (tx, ty, degrees), the view moved by tx, ty (in
        image widths) and turned by degrees, for every image.
        """
        self._require_task("generate")
        if not 0.0 <= truncation <= 2.0:
            raise ValueError(f"truncation must be between 0 and 2, got {truncation}")
        seeds = parse_seeds(seeds)
        space = LatentSpace(self, device, class_index=class_index,
                            truncation_cutoff=truncation_cutoff)

        def render(rows: range) -> torch.Tensor:
            chunk = seeds[rows.start:rows.stop]
            return space.render(space.seed_codes(chunk, truncation), noise=noise, seeds=chunk,
                                camera=camera)

        # Chunks of batch_size bound the activations, written into one result batch.
        return fill_batch(len(seeds), chunks(len(seeds), batch_size), render)

    def stylize(self, images: torch.Tensor, strength: float = 1.0,
                tile: int | None = None, direction: str = "A->B") -> torch.Tensor:
        """Apply a style network to an IMAGE batch [B,H,W,C] (C 1/3/4, [0,1]); same shape out.

        Any size works: each image is reflect-padded to what the network needs (multiples of 4
        for CycleGAN ResNet / TransformerNet, 2**num_downs for pix2pix U-Nets) and cropped back,
        so the caller never resizes. Ranges follow each original project ([-1,1] for CycleGAN /
        pix2pix, 0..255 for fast-neural-style). Gray input is fed as RGB and the result turned
        back to gray; alpha is passed through untouched. `strength` blends the result with the
        input (0 returns the input, 1 the network's output). Images run one at a time, so
        unrelated pictures in a batch never share statistics. `tile` (px): images larger than
        it are processed in overlapping, blended tiles in bounded memory, with instance-norm
        statistics taken once from the whole (downscaled) image so tiles agree; on CUDA
        out-of-memory the tile is halved and retried. `direction` "B->A" runs a CycleGAN's
        reverse generator (style -> content), when the file has one.
        """
        self._require_task("style")
        if direction not in self.directions:
            if direction in DIRECTIONS:
                raise ValueError(
                    f"direction {direction!r}: this {self.arch} model holds one generator "
                    f"(A->B) only; B->A needs a CycleGAN trained here (or load the public "
                    f"file of the other direction, e.g. latest_net_G_B.pth, as its own model)")
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        net = self.modules["G_BA"] if direction == "B->A" else self.module
        io = self.image_io
        if io is None:
            raise ValueError(f"this {self.arch} model is not an image-to-image network "
                             f"({type(net).__name__}); it cannot stylize")
        return stylize_images(net, io, images, strength=strength, tile=tile)

    def denoise(self, images: torch.Tensor, strength: float = 1.0, sigma: float | None = None,
                tile: int | None = None) -> torch.Tensor:
        """Denoise an IMAGE batch [B,H,W,C] (C 1/3/4, [0,1]); same shape out, in [0,1].

        Any size works (reflect-padded to the network's multiple, 8 for DRUNet, and cropped
        back). `sigma` is the noise level in 0..255 units for networks that take one (DRUNet;
        gan_core.infer.DEFAULT_SIGMA when None, logged); blind ones (DnCNN) ignore it with a
        log line. Gray models denoise each RGB channel as its own gray image, keeping colour;
        colour models see gray input as gray RGB. Alpha passes through untouched. `strength`
        blends with the input (0 returns it). `tile` (px): images larger than it are processed
        in overlapping, blended tiles in bounded memory (halved on CUDA out-of-memory).
        """
        self._require_task("denoise")
        io = self.image_io
        if io is None:
            raise ValueError(f"this {self.arch} model ({type(self.module).__name__}) is not a "
                             "denoising network; it cannot denoise")
        return denoise_images(self.module, io, images, strength=strength, sigma=sigma,
                              tile=tile, name=self.arch)

    def info(self) -> dict[str, Any]:
        """A plain-data summary for the CLI's `info` and the node UI."""
        params = {role: sum(p.numel() for p in m.parameters()) for role, m in self.modules.items()}
        out = {
            "arch": self.arch,
            "task": self.task,
            "config": dataclasses.asdict(self.config),
            "parameters": params,
            "training": self.training,
            "resumable": self.resume is not None,
            "source": self.source,
        }
        io = self.latent_io
        if io is not None:  # what a user of a generator asks first, whatever the family
            out["generator"] = {"resolution": self.image_size, "z_dim": io.z_dim,
                                "w_dim": io.code_dim, "num_ws": io.n_latent,
                                "classes": io.classes, "camera": io.camera,
                                "seeds": io.seed_convention}
        return out
