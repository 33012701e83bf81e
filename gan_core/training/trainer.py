"""The GAN training loop: alternating D and G steps, EMA, previews, checkpoints, cancel.

Read top to bottom: `train()` sets everything up and `Trainer.step()` is one iteration.
All randomness (init, batches, latents, augmentation) comes from seeded torch generators
whose state is saved, so the same seed gives the same run on a CPU and a resumed run follows
the curve it would have followed uninterrupted.

Under torchrun (see distributed.py) the same trainer runs data-parallel: each process trains
on its rows of the global batch (`sample_batch`), G and D are wrapped in
DistributedDataParallel for the passes that train them (`g_fwd`, `d_fwd`) while the G step
reads D unwrapped (`d_frozen`), BatchNorm statistics cover the global batch, and the reported
losses are means over processes. N processes then train the model one process would with the
same global batch, so a checkpoint resumes with any process count.
"""
from __future__ import annotations

import os
from dataclasses import replace

import torch
from torch import nn

from ..data import ImageDataset
from ..device import resolve_device
from ..images import make_grid, signed_to_comfy
from ..model import GANModel
from ..seeds import latents_for_seeds
from . import distributed
from .augment import diff_augment, parse_policy
from .config import TrainConfig
from .ema import make_ema
from .loop import TrainCallbacks, TrainLoop
from .objective import StandardGANObjective

__all__ = ["TrainCallbacks", "Trainer", "train"]


class Trainer(TrainLoop):
    def __init__(self, config: TrainConfig, dataset: ImageDataset, out: str | os.PathLike | None = None,
                 resume: GANModel | None = None, callbacks: TrainCallbacks | None = None):
        self.world_size, self.rank = distributed.process_count(), distributed.process_rank()
        self.begin(config, "gan", out, callbacks, resume,
                   device=distributed.process_device(resolve_device(config.device)))
        self.rows = distributed.shard_rows(self.cfg.batch, self.world_size, self.rank)
        if resume is not None:
            self.model_cfg = resume.config
        else:
            defaults = {"image_size": config.size}
            if config.channels is not None and self.recipe.channel_config is not None:
                defaults.update(self.recipe.channel_config(config.channels))
            self.model_cfg = self.spec.config_cls(**{**defaults, **config.model})
        self.latent = self.spec.latent_io(self.model_cfg)
        channels = self.model_cfg.channels
        # A private copy, made outside inference mode, so autograd can use it.
        self.data = replace(dataset, images=dataset.images.clone(), channels=channels)
        if self.data.size != self.model_cfg.image_size:
            raise ValueError(f"dataset images are {self.data.size} px but the model makes "
                             f"{self.model_cfg.image_size} px")
        self.policy = parse_policy(config.augment)
        self.objective = (self.recipe.objective() if self.recipe.objective is not None
                          else StandardGANObjective(config.loss, self.recipe.joint_d_pass))

        parts = self.build_nets(self.model_cfg)[0]
        self.G, self.D = parts["G"], parts["D"]
        self.history.update(loss_d=[], loss_g=[])
        if config.r1_gamma > 0:
            self.history["r1"] = []
        self.restore_weights(resume, {"G": self.G, "D": self.D})
        self.place((self.G, self.D))
        self.ema = make_ema(self.G, config.ema_decay)
        if self.world_size > 1:  # after make_ema: the EMA copy, only ever in eval, keeps plain BN
            distributed.sync_batchnorm(self.G)
            distributed.sync_batchnorm(self.D)
        betas = (config.beta1, config.beta2)
        self.opt_g = self.make_optimizer("G", self.G.parameters(), config.lr_g, betas)
        self.opt_d = self.make_optimizer("D", self.D.parameters(), config.lr_d, betas)
        self.restore_training(resume)
        self._setup_forwards()

    def trained_modules(self) -> list[nn.Module]:
        return [self.G, self.D]

    # ------------------------------------------------------------------ data-parallel helpers
    def _setup_forwards(self) -> None:
        """The callables the step runs the networks through: `g_fwd` (G, trained through it),
        `d_fwd` (D in the D step, trained through it) and `d_frozen` (D in the G step, where
        only the gradient w.r.t. its input is wanted). In one process all are the modules (or
        their torch.compile wrappers) and d_frozen is d_fwd. With several processes g_fwd and
        d_fwd go through DistributedDataParallel, and d_frozen is D unwrapped: running the
        frozen D through its DDP wrapper would make the wrapper wait for gradients that never
        come. A step module for another arch should use these three the same way."""
        compile_ = torch.compile if self.cfg.compile else (lambda m: m)
        if self.world_size == 1:
            self.g_fwd: nn.Module = compile_(self.G)
            self.d_fwd: nn.Module = compile_(self.D)
            self.d_frozen: nn.Module = self.d_fwd
            return
        self.g_fwd = compile_(distributed.wrap_ddp(self.G, self.device))
        self.d_fwd = compile_(distributed.wrap_ddp(self.D, self.device))
        self.d_frozen = compile_(self.D)

    def sample_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This process's real images (in the training memory layout) and latents for one step.

        The whole global batch (cfg.batch images, then cfg.batch latents) is drawn from the
        trainer's generator and this process keeps its rows, so the generator advances the same
        way whatever the process count: a checkpoint's RNG state resumes with any count."""
        cfg = self.cfg
        real = self.data.sample(cfg.batch, self.gen, self.device)
        z = torch.randn(cfg.batch, self.latent.z_dim, generator=self.gen)
        if self.world_size > 1:
            real, z = real[self.rows], z[self.rows]
        return real.contiguous(memory_format=self.memory_format), z.to(self.device)

    def mean_losses(self, values: dict[str, float]) -> dict[str, float]:
        """Loss values averaged over the processes (the global batch's means), so that every
        process records, reports and checks the same numbers; unchanged in one process."""
        return distributed.mean_over_ranks(values) if self.world_size > 1 else values

    def global_rows(self, *shape: int, normal: bool) -> torch.Tensor:
        """Random numbers for the whole global batch (first dim cfg.batch) from the trainer's
        generator, this process's rows: the same draws at any process count."""
        draw = torch.randn if normal else torch.rand
        return draw(self.cfg.batch, *shape, generator=self.gen)[self.rows]

    # ------------------------------------------------------------------ one iteration
    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """DiffAugment of this process's rows, with parameters drawn for the global batch."""
        if not self.policy:
            return x
        return diff_augment(x, self.policy, self.gen, (self.rank, self.world_size))

    def step(self) -> dict[str, float]:
        """One iteration: the objective's D phase and D's update, then (D frozen, so no weight
        gradients are made for it) its G phase and G's update, EMA and history."""
        self.D.requires_grad_(True)
        total_d, values = self.objective.d_phase(self)
        values = self.mean_losses(values)
        self.update_d(values, total_d)
        self.D.requires_grad_(False)
        loss_g, extra = self.objective.g_phase(self)
        if extra:
            values.update(self.mean_losses(extra))
        return self.update_g(values, loss_g)

    def update_d(self, values: dict[str, float], total_d: torch.Tensor) -> None:
        """D's optimiser step on `total_d`, after checking the (rank-averaged) D losses.

        Checked before D's update. A non-finite G loss (checked in update_g) comes after it;
        either way the run ends there and the in-memory model is never written over a
        checkpoint."""
        self._finite(values)
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler.scale(total_d).backward()
        self.scaler.step(self.opt_d)

    def update_g(self, values: dict[str, float], loss_g: torch.Tensor) -> dict[str, float]:
        """G's optimiser step on `loss_g`, then the EMA, the step count and the history; the
        end of every arch's iteration. Returns all of the step's (rank-averaged) losses."""
        values.update(self.mean_losses({"loss_g": loss_g.item()}))
        self._finite(values)
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler.scale(loss_g).backward()
        self.scaler.step(self.opt_g)
        self.scaler.update()
        self.ema.update_parameters(self.G)
        return self.record(values)

    # ------------------------------------------------------------------ outputs
    @torch.no_grad()
    def preview(self) -> torch.Tensor:
        """The EMA generator's images for seeds 0..N-1 as one IMAGE grid [1,H,W,3]; the same
        seeds `generate` uses, so the preview shows what the user will get."""
        net = self.ema.module.eval()
        z = latents_for_seeds(range(self.cfg.preview_count), self.latent.z_dim).to(self.device)
        # Generators with the latent protocol (FastGAN: a list of outputs, noise inputs) sample
        # as generate() does: main image, fixed noise.
        out = net.synthesize(net.map_z(z)) if self.latent.synthesis else net(z)
        imgs = signed_to_comfy(out.float())
        self.last_preview = make_grid(imgs)
        return self.last_preview

    def summary(self) -> dict:
        cfg = self.cfg
        lines = {"image_size": self.model_cfg.image_size, "dataset": self.data.name,
                 "dataset_size": len(self.data), "loss": self.objective.label,
                 "augment": cfg.augment, "r1_gamma": cfg.r1_gamma}
        if self.world_size > 1:
            lines["processes"] = self.world_size
        return lines

    def modules(self) -> dict[str, nn.Module]:
        return {"G": self.G, "G_ema": self.ema.module, "D": self.D}


def train(config: TrainConfig, dataset: ImageDataset, out: str | os.PathLike | None = None,
          resume: GANModel | None = None, callbacks: TrainCallbacks | None = None) -> GANModel:
    """Train (or continue training) a generator; returns the model, EMA generator included."""
    # Everything, construction included, outside inference mode: ComfyUI runs nodes under
    # torch.inference_mode(), and tensors made there can never join autograd.
    with torch.inference_mode(False), torch.enable_grad():
        return Trainer(config, dataset, out=out, resume=resume, callbacks=callbacks).run()
