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

import contextlib
import os
import time
from dataclasses import replace

import torch
from torch import nn

from ..data import ImageDataset
from ..device import amp_dtype, make_adam, resolve_device
from ..images import make_grid, signed_to_comfy
from ..model import GANModel, ResumeState
from ..archs import get_arch
from ..seeds import latents_for_seeds
from ..version import __version__
from . import distributed
from .augment import diff_augment, parse_policy
from .config import TrainConfig
from .ema import make_ema
from .loop import (TrainCallbacks, TrainLoop, check_resume, load_ema, load_optimizers,
                   load_weights, match_moment_layouts)
from .objective import StandardGANObjective

__all__ = ["TrainCallbacks", "Trainer", "train"]


class Trainer(TrainLoop):
    def __init__(self, config: TrainConfig, dataset: ImageDataset, out: str | os.PathLike | None = None,
                 resume: GANModel | None = None, callbacks: TrainCallbacks | None = None):
        self.cfg = config.validate()
        self.out = os.fspath(out) if out is not None else None
        self.cb = callbacks or TrainCallbacks()
        self.world_size, self.rank = distributed.process_count(), distributed.process_rank()
        self.rows = distributed.shard_rows(self.cfg.batch, self.world_size, self.rank)
        self.device = distributed.process_device(resolve_device(config.device))
        self.amp = amp_dtype(self.device, config.amp)
        self.spec = get_arch(config.arch)
        self.recipe = self.spec.training
        if resume is not None:
            self._check_resume(resume)
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
        # "auto": on the device types where the family measured a gain (its TrainingRecipe).
        self.channels_last = config.channels_last == "on" or (
            config.channels_last == "auto" and self.device.type in self.recipe.channels_last)

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            parts = self.spec.build(self.model_cfg)
        self.G, self.D = parts["G"], parts["D"]
        self.gen = torch.Generator().manual_seed(config.seed)
        self.history: dict[str, list[float]] = {"loss_d": [], "loss_g": []}
        if config.r1_gamma > 0:
            self.history["r1"] = []
        self.step_count = 0
        if resume is not None:
            self._load_weights(resume)
        self.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self.objective = (self.recipe.objective() if self.recipe.objective is not None
                          else StandardGANObjective(config.loss, self.recipe.joint_d_pass))
        self.G.to(self.device, memory_format=self.memory_format).train()
        self.D.to(self.device, memory_format=self.memory_format).train()
        self.ema = make_ema(self.G, config.ema_decay)
        if resume is not None:
            load_ema(resume, self.ema)
        if self.world_size > 1:  # after make_ema: the EMA copy, only ever in eval, keeps plain BN
            distributed.sync_batchnorm(self.G)
            distributed.sync_batchnorm(self.D)
        betas = (config.beta1, config.beta2)
        self.opt_g = make_adam(self.G.parameters(), config.lr_g, betas, self.device)
        self.opt_d = make_adam(self.D.parameters(), config.lr_d, betas, self.device)
        if resume is not None:
            self._load_optimizers(resume.resume)
            self._match_moment_layouts()
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp == torch.float16)
        self._setup_forwards()
        self.saved_step = self.step_count if resume is not None else -1
        self.last_preview: torch.Tensor | None = None
        self._started = time.perf_counter()

    # ------------------------------------------------------------------ resume
    def _check_resume(self, resume: GANModel) -> None:
        check_resume(resume, self.cfg.arch)

    def _load_weights(self, resume: GANModel) -> None:
        self.step_count = load_weights(resume, {"G": self.G, "D": self.D}, self.gen, self.history)

    def _load_optimizers(self, state: ResumeState) -> None:
        load_optimizers(state, {"G": self.opt_g, "D": self.opt_d})

    def _match_moment_layouts(self) -> None:
        match_moment_layouts((self.opt_g, self.opt_d))

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
    def autocast(self):
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp)

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
        self.step_count += 1
        for k, v in values.items():
            self.history.setdefault(k, []).append(v)
        return values

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

    def model(self) -> GANModel:
        """A GANModel view of the current state (shares the live modules)."""
        cfg = self.cfg
        training = {
            "steps": self.step_count, "seed": cfg.seed, "image_size": self.model_cfg.image_size,
            "dataset": self.data.name, "dataset_size": len(self.data), "batch": cfg.batch,
            "loss": self.objective.label, "augment": cfg.augment,
            "r1_gamma": cfg.r1_gamma,
            "final_losses": {k: v[-1] for k, v in self.history.items() if v},
            "gan_core_version": __version__, "device": self.device.type,
            "seconds": round(time.perf_counter() - self._started, 2),
        }
        if self.world_size > 1:
            training["processes"] = self.world_size
        resume = ResumeState(
            step=self.step_count,
            optimizers={"G": self.opt_g.state_dict(), "D": self.opt_d.state_dict()},
            rng_state=self.gen.get_state(), ema_count=int(self.ema.n_averaged),
            history={k: list(v) for k, v in self.history.items()},
            train_config=cfg.to_dict(),
        )
        modules = {"G": self.G, "G_ema": self.ema.module, "D": self.D}
        model = GANModel(cfg.arch, self.model_cfg, modules, training=training, resume=resume,
                         source=self.out)
        self.G.train(), self.D.train()  # GANModel() puts modules in eval mode
        return model

def train(config: TrainConfig, dataset: ImageDataset, out: str | os.PathLike | None = None,
          resume: GANModel | None = None, callbacks: TrainCallbacks | None = None) -> GANModel:
    """Train (or continue training) a generator; returns the model, EMA generator included."""
    # Everything, construction included, outside inference mode: ComfyUI runs nodes under
    # torch.inference_mode(), and tensors made there can never join autograd.
    with torch.inference_mode(False), torch.enable_grad():
        return Trainer(config, dataset, out=out, resume=resume, callbacks=callbacks).run()
