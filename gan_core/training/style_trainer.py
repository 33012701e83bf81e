"""The style trainer: CycleGAN (Zhu et al. 2017) between a content set A and a style set B.

Two generators, G: A -> B (content -> style, what the Style Transfer node applies by default)
and G_BA: B -> A, and two PatchGAN discriminators, D (judges B: real paintings vs G's output)
and D_A (judges A). One iteration follows the original project's order: both generators step
on the adversarial (LSGAN), cycle-consistency (L1, weight 10) and identity (L1, weight 0.5 x
10) losses with the discriminators frozen, then both discriminators step on real images and
fakes drawn from a history pool of 50. One Adam optimiser holds both generators and one both
discriminators; the learning rate is constant for the first half of the run, then falls
linearly to zero. DiffAugment, when asked for, transforms everything the discriminators see.

The data side is two CropSources (gan_core.data.crops): random crops at random scales, so one
painting (or one photo) is enough. Everything around the step is the shared TrainLoop's:
callbacks, cancel that saves first, NaN checks, atomic checkpoints, exact resume (the image
pools travel in the checkpoint as buffers).
"""
from __future__ import annotations

import contextlib
import itertools
import os
import time

import torch
from torch import nn

from ..data.crops import CropSource
from ..device import amp_dtype, make_adam, resolve_device
from ..images import make_grid, signed_to_comfy
from ..model import GANModel, ResumeState
from ..archs import get_arch
from ..version import __version__
from .augment import diff_augment, parse_policy
from .config import StyleTrainConfig
from .loop import (TrainCallbacks, TrainLoop, check_resume, load_optimizers, load_weights,
                   match_moment_layouts)
from ..losses import d_loss, g_loss
from .pool import ImagePool

__all__ = ["StyleTrainer", "train_style"]

ROLES = ("G", "G_BA", "D", "D_A")


class StyleTrainer(TrainLoop):
    def __init__(self, config: StyleTrainConfig, content: CropSource, style: CropSource,
                 out: str | os.PathLike | None = None, resume: GANModel | None = None,
                 callbacks: TrainCallbacks | None = None):
        self.cfg = config.validate()
        self.out = os.fspath(out) if out is not None else None
        self.cb = callbacks or TrainCallbacks()
        self.device = resolve_device(config.device)
        self.amp = amp_dtype(self.device, config.amp)
        self.spec = get_arch(config.arch)
        self.content, self.style = content, style
        if resume is not None:
            check_resume(resume, config.arch)
            missing = [r for r in ROLES if r not in resume.modules]
            if missing:
                raise ValueError(f"cannot resume: {resume.source or 'the model'} lacks "
                                 f"{', '.join(missing)} (it is not a CycleGAN trained here)")
            self.model_cfg = resume.config
        else:
            self.model_cfg = self.spec.config_cls(**config.model)
        if (self.model_cfg.input_nc, self.model_cfg.output_nc) != (3, 3):
            raise ValueError("the style trainer trains RGB models (input_nc = output_nc = 3)")

        # Two builds from one seed: G, D first, then G_BA, D_A (the original's order).
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            ab, ba = self.spec.build(self.model_cfg), self.spec.build(self.model_cfg)
        self.nets: dict[str, nn.Module] = {"G": ab["G"], "G_BA": ba["G"], "D": ab["D"],
                                           "D_A": ba["D"]}
        self.gen = torch.Generator().manual_seed(config.seed)
        self.history: dict[str, list[float]] = {k: [] for k in (
            "loss_g", "loss_adv", "loss_cycle", "loss_idt", "loss_d", "lr")}
        self.pools = {"fake_B": ImagePool(config.pool_size), "fake_A": ImagePool(config.pool_size)}
        self.step_count = 0
        if resume is not None:
            self.step_count = load_weights(resume, self.nets, self.gen, self.history)
            for name, pool in self.pools.items():
                pool.load(resume.resume.buffers.get(f"pool_{name}", torch.zeros(0)), self.device)
        self.policy = parse_policy(config.augment)
        # "auto": on the device types where the family measured a gain (its TrainingRecipe).
        self.memory_format = (torch.channels_last if config.channels_last == "on" or (
            config.channels_last == "auto"
            and self.device.type in self.spec.training.channels_last)
            else torch.contiguous_format)
        for m in self.nets.values():
            m.to(self.device, memory_format=self.memory_format).train()
        self.ema = None  # CycleGAN samples from the live generators, as the original does
        betas = (config.beta1, config.beta2)
        self.opts = {
            "G": make_adam(itertools.chain(self.nets["G"].parameters(),
                                           self.nets["G_BA"].parameters()),
                           config.lr, betas, self.device),
            "D": make_adam(itertools.chain(self.nets["D"].parameters(),
                                           self.nets["D_A"].parameters()),
                           config.lr, betas, self.device),
        }
        if resume is not None:
            load_optimizers(resume.resume, self.opts)
            match_moment_layouts(self.opts.values())
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp == torch.float16)
        self.saved_step = self.step_count if resume is not None else -1
        self.last_preview: torch.Tensor | None = None
        self._preview_content: torch.Tensor | None = None
        self._started = time.perf_counter()

    # ------------------------------------------------------------------ helpers
    def learning_rate(self, step: int) -> float:
        """lr at 0-based `step`: constant, then linear to 0 over the last part of the run."""
        cfg = self.cfg
        hold = int(cfg.steps * cfg.decay_start)
        if step < hold:
            return cfg.lr
        return cfg.lr * max(0.0, 1.0 - (step - hold + 1) / (cfg.steps - hold + 1))

    def _autocast(self):
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp)

    def _batch(self, source: CropSource) -> torch.Tensor:
        x = source.sample(self.cfg.batch, self.cfg.size, self.gen, self.device)
        return x.contiguous(memory_format=self.memory_format)

    def _judge(self, role: str, x: torch.Tensor) -> torch.Tensor:
        if self.policy:
            x = diff_augment(x, self.policy, self.gen)
        return self.nets[role](x.contiguous(memory_format=self.memory_format)).float()

    # ------------------------------------------------------------------ one iteration
    def step(self) -> dict[str, float]:
        cfg = self.cfg
        G, F, D, D_A = (self.nets[r] for r in ROLES)
        lr = self.learning_rate(self.step_count)
        for opt in self.opts.values():
            for group in opt.param_groups:
                group["lr"] = lr
        real_a, real_b = self._batch(self.content), self._batch(self.style)

        # Generators, with both discriminators frozen.
        D.requires_grad_(False), D_A.requires_grad_(False)
        with self._autocast():
            fake_b = G(real_a)
            rec_a = F(fake_b)
            fake_a = F(real_b)
            rec_b = G(fake_a)
            adv = g_loss(cfg.gan_loss, self._judge("D", fake_b)) + g_loss(
                cfg.gan_loss, self._judge("D_A", fake_a))
            cycle = (rec_a.float() - real_a).abs().mean() + (rec_b.float() - real_b).abs().mean()
            loss = adv + cfg.cycle_weight * cycle
            values = {"loss_adv": adv.item(), "loss_cycle": cycle.item()}
            if cfg.identity_weight > 0:
                idt = (G(real_b).float() - real_b).abs().mean() + (F(real_a).float() - real_a).abs().mean()
                loss = loss + cfg.cycle_weight * cfg.identity_weight * idt
                values["loss_idt"] = idt.item()
        values["loss_g"] = loss.item()
        self._finite(values)
        self.opts["G"].zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opts["G"])

        # Discriminators: real images up, pooled fakes down.
        D.requires_grad_(True), D_A.requires_grad_(True)
        pooled_b = self.pools["fake_B"].query(fake_b.detach().float(), self.gen)
        pooled_a = self.pools["fake_A"].query(fake_a.detach().float(), self.gen)
        with self._autocast():
            loss_d = (d_loss(cfg.gan_loss, self._judge("D", real_b), self._judge("D", pooled_b))
                      + d_loss(cfg.gan_loss, self._judge("D_A", real_a),
                               self._judge("D_A", pooled_a)))
        values["loss_d"] = loss_d.item()
        self._finite(values)
        self.opts["D"].zero_grad(set_to_none=True)
        self.scaler.scale(loss_d).backward()
        self.scaler.step(self.opts["D"])
        self.scaler.update()
        values["lr"] = lr
        self.step_count += 1
        for k, v in values.items():
            self.history.setdefault(k, []).append(v)
        return values

    # ------------------------------------------------------------------ outputs
    @torch.no_grad()
    def preview(self) -> torch.Tensor:
        """(content | stylized) pairs, one per row, for the first content pictures (centre
        squares at the training size), as one IMAGE grid [1, H, W, 3]."""
        if self._preview_content is None:
            self._preview_content = self.content.views(self.cfg.preview_count, self.cfg.size,
                                                       self.device)
        net = self.nets["G"]
        net.eval()
        try:
            styled = torch.cat([net(x.unsqueeze(0).contiguous(memory_format=self.memory_format))
                                for x in self._preview_content])
        finally:
            net.train()
        rows = torch.stack([self._preview_content, styled.float()], 1).flatten(0, 1)
        self.last_preview = make_grid(signed_to_comfy(rows), nrow=2)
        return self.last_preview

    def model(self) -> GANModel:
        """A GANModel view of the current state (shares the live modules)."""
        cfg = self.cfg
        training = {
            "steps": self.step_count, "seed": cfg.seed, "image_size": cfg.size,
            "content": self.content.name, "content_pictures": len(self.content),
            "style": self.style.name, "style_pictures": len(self.style), "batch": cfg.batch,
            "gan_loss": cfg.gan_loss, "cycle_weight": cfg.cycle_weight,
            "identity_weight": cfg.identity_weight, "augment": cfg.augment,
            "directions": {"A->B": "content -> style", "B->A": "style -> content"},
            "final_losses": {k: v[-1] for k, v in self.history.items() if v},
            "gan_core_version": __version__, "device": self.device.type,
            "seconds": round(time.perf_counter() - self._started, 2),
        }
        resume = ResumeState(
            step=self.step_count,
            optimizers={name: opt.state_dict() for name, opt in self.opts.items()},
            rng_state=self.gen.get_state(), ema_count=0,
            history={k: list(v) for k, v in self.history.items()},
            train_config=cfg.to_dict(),
            buffers={f"pool_{name}": pool.state() for name, pool in self.pools.items()},
        )
        model = GANModel(cfg.arch, self.model_cfg, dict(self.nets), training=training,
                         resume=resume, source=self.out)
        for m in self.nets.values():
            m.train()  # GANModel() puts modules in eval mode
        return model

    def trained_modules(self) -> list[nn.Module]:
        return list(self.nets.values())


def train_style(config: StyleTrainConfig, content: CropSource, style: CropSource,
                out: str | os.PathLike | None = None, resume: GANModel | None = None,
                callbacks: TrainCallbacks | None = None) -> GANModel:
    """Train (or continue training) a CycleGAN between `content` (A) and `style` (B); returns
    the model, whose stylize() applies A -> B, or B -> A with direction="B->A"."""
    with torch.inference_mode(False), torch.enable_grad():
        return StyleTrainer(config, content, style, out=out, resume=resume,
                            callbacks=callbacks).run()
