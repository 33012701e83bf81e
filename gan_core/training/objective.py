"""The shared GAN objective: what every generator family trains with unless its folder brings
its own (archs/<family>/objective.py, named by its TrainingRecipe).

D phase: real up, fake down (non-saturating BCE or hinge, gan_core.losses), with the lazy R1
penalty every `r1_every` steps (its weight times the interval, Karras et al. 2020) and
DiffAugment applied alike to everything D sees. G phase: G's same fakes through the updated,
frozen D. The trainer (gan_core.training.trainer) owns optimisers, EMA and history; an
objective only computes losses, in the phases of gan_core.registry.Objective.
"""
from __future__ import annotations

import torch

from ..losses import d_loss, g_loss, r1_penalty
from ..registry import TrainingContext


class StandardGANObjective:
    """`joint_d_pass`: real and fake go through D as one batch (the same maths in one pass,
    for discriminators that treat each image on its own, e.g. the MLP GAN's)."""

    def __init__(self, loss: str, joint_d_pass: bool = False) -> None:
        self.loss = loss
        self.label = loss
        self.joint_d_pass = joint_d_pass
        self._fake: torch.Tensor | None = None

    def d_phase(self, ctx: TrainingContext) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = ctx.cfg
        real, z = ctx.sample_batch()
        do_r1 = cfg.r1_gamma > 0 and ctx.step_count % cfg.r1_every == 0
        with ctx.autocast():
            fake = ctx.g_fwd(z)
            if do_r1:
                real.requires_grad_(True)
            if self.joint_d_pass:
                both = torch.cat([ctx.augment(real), ctx.augment(fake.detach())])
                real_logits, fake_logits = ctx.d_fwd(both).split(len(real))
            else:
                real_logits = ctx.d_fwd(ctx.augment(real))
                fake_logits = ctx.d_fwd(ctx.augment(fake.detach()))
            loss = d_loss(self.loss, real_logits.float(), fake_logits.float())
        values = {"loss_d": loss.item()}
        total = loss
        if do_r1:
            r1 = r1_penalty(real, real_logits)
            total = loss + r1 * (cfg.r1_gamma * 0.5 * cfg.r1_every)
            values["r1"] = r1.item()
        self._fake = fake  # reused by the G phase, as the original DCGAN step does
        return total, values

    def g_phase(self, ctx: TrainingContext) -> tuple[torch.Tensor, dict[str, float]]:
        fake, self._fake = self._fake, None
        if fake is None:
            raise RuntimeError("the G phase runs after the D phase of the same step")
        with ctx.autocast():
            loss = g_loss(self.loss, ctx.d_frozen(ctx.augment(fake)).float())
        return loss, {}
