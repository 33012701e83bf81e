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

import itertools
import os

import torch
from torch import nn

from ..data.crops import CropSource
from ..images import make_grid, signed_to_comfy
from ..model import GANModel
from .augment import diff_augment, parse_policy
from .config import StyleTrainConfig
from .loop import (TrainCallbacks, TrainLoop)
from ..losses import d_loss, g_loss
from .pool import ImagePool

__all__ = ["StyleTrainer", "train_style"]

ROLES = ("G", "G_BA", "D", "D_A")


class StyleTrainer(TrainLoop):
    def __init__(self, config: StyleTrainConfig, content: CropSource, style: CropSource,
                 out: str | os.PathLike | None = None, resume: GANModel | None = None,
                 callbacks: TrainCallbacks | None = None):
        self.begin(config, "style", out, callbacks, resume)
        self.content, self.style = content, style
        if resume is not None:
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
        ab, ba = self.build_nets(self.model_cfg, copies=2)
        self.nets: dict[str, nn.Module] = {"G": ab["G"], "G_BA": ba["G"], "D": ab["D"],
                                           "D_A": ba["D"]}
        self.history.update({k: [] for k in (
            "loss_g", "loss_adv", "loss_cycle", "loss_idt", "loss_d", "lr")})
        self.pools = {"fake_B": ImagePool(config.pool_size), "fake_A": ImagePool(config.pool_size)}
        self.restore_weights(resume, self.nets)
        if resume is not None:
            for name, pool in self.pools.items():
                pool.load(resume.resume.buffers.get(f"pool_{name}", torch.zeros(0)), self.device,
                          (self.model_cfg.output_nc, config.size, config.size),
                          f"{resume.source or 'the resume file'}: pool_{name}")
        self.policy = parse_policy(config.augment)
        self.place(self.nets.values())
        # CycleGAN samples from the live generators, as the original does: no EMA.
        betas = (config.beta1, config.beta2)
        self.make_optimizer("G", itertools.chain(self.nets["G"].parameters(),
                                                 self.nets["G_BA"].parameters()), config.lr, betas)
        self.make_optimizer("D", itertools.chain(self.nets["D"].parameters(),
                                                 self.nets["D_A"].parameters()), config.lr, betas)
        self.restore_training(resume)
        self._preview_content: torch.Tensor | None = None

    # ------------------------------------------------------------------ helpers
    def learning_rate(self, step: int) -> float:
        """lr at 0-based `step`: constant, then linear to 0 over the last part of the run."""
        cfg = self.cfg
        hold = int(cfg.steps * cfg.decay_start)
        if step < hold:
            return cfg.lr
        return cfg.lr * max(0.0, 1.0 - (step - hold + 1) / (cfg.steps - hold + 1))

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
        with self.autocast():
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
        with self.autocast():
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
        return self.record(values)

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

    def summary(self) -> dict:
        cfg = self.cfg
        return {
            "image_size": cfg.size, "content": self.content.name,
            "content_pictures": len(self.content), "style": self.style.name,
            "style_pictures": len(self.style), "gan_loss": cfg.gan_loss,
            "cycle_weight": cfg.cycle_weight, "identity_weight": cfg.identity_weight,
            "augment": cfg.augment,
            "directions": {"A->B": "content -> style", "B->A": "style -> content"},
        }

    def modules(self) -> dict[str, nn.Module]:
        return dict(self.nets)

    def resume_buffers(self) -> dict[str, torch.Tensor]:
        return {f"pool_{name}": pool.state() for name, pool in self.pools.items()}

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
