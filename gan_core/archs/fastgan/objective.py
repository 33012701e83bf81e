"""FastGAN's training objective, as odegeasslbc/FastGAN-pytorch's train.py computes it, in the
phases the shared GAN trainer calls (gan_core.training.trainer: D phase, then G phase).

Per step:
  1. G makes `[img_big, img_128]` from z (noise injections drawn from the trainer's generator).
  2. DiffAugment (the trainer's policy; the CLI and node default for fastgan is
     "color,translation") is applied once to the real batch and once to each fake output, and
     the same augmented fakes feed both the D step (detached) and the G step, as the original.
  3. D step: hinge with random targets, relu(U(0.8, 1) - D(real)) and relu(U(0.8, 1) + D(fake)),
     plus the self-supervised reconstruction loss: D's decoders rebuild the (augmented) real
     image at 128 px from its 8 px features, its 128 px version from the small path, and a
     random quarter (`part`, one per step) of it from that quarter of the 16 px features.
  4. G step: -D(fake).mean() through the frozen D.
  5. EMA of G (the trainer's, with its warm-up; the original uses a constant 0.999).
The trainer steps the optimisers, keeps the EMA and the history; this module only computes.

Reconstruction loss. The original uses LPIPS-VGG, whose pretrained weights cannot ship here or
be downloaded at run time. We use, per target, pixel L1 plus an L1 on image gradients
(horizontal and vertical finite differences): the gradient term is the cheap structural part,
rewarding edges and texture where they are rather than only average colour, at the cost of two
subtractions. Like the original's `percept(...).sum()`, per-sample distances are summed over the
batch (LPIPS-VGG and this loss differ in scale: this one weighs reconstruction lower for
smooth images, higher for noisy ones).

R1 (optional, off by default): the gradient penalty is taken on the sum of all of D's logits
for an image, 2 x 5 x 5 of them at the 256 px layout, so a given `r1_gamma` weighs far more
here than on a one-logit discriminator (dcgan); start around a fiftieth of a dcgan value.

Randomness: z, the noise maps, the augmentation, the quarter and the hinge targets all come
from the trainer's generator, drawn for the whole global batch (`cfg.batch` rows) with this process's rows
kept, so runs are reproducible, resumable, and independent of the process count.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...losses import r1_penalty
from ...registry import TrainingContext
from .network import quarter

LABEL = "fastgan (hinge with U(0.8,1) targets + reconstruction)"


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Horizontal and vertical finite differences of [B, C, H, W] images."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def recon_distance(rec: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample distance [B]: mean |rec - target| plus mean |grad rec - grad target|."""
    rec, target = rec.float(), target.float()
    dist = (rec - target).abs().flatten(1).mean(1)
    for a, b in zip(image_gradients(rec), image_gradients(target)):
        dist = dist + (a - b).abs().flatten(1).mean(1)
    return dist


def recon_loss(recs: list[torch.Tensor], real: torch.Tensor, part: int,
               global_batch: int) -> torch.Tensor:
    """The decoders' loss against the real batch: whole image and its small version (both
    resized, nearest, to the reconstructions' size, as the original) and quarter `part`.
    Summed over the global batch: this process's mean times the global batch size, so that
    data-parallel gradient averaging gives the single-process sum."""
    rec_all, rec_small, rec_part = recs
    size = rec_all.shape[-1]
    total = (recon_distance(rec_all, F.interpolate(real, size=size))
             + recon_distance(rec_small, F.interpolate(real, size=rec_small.shape[-1]))
             + recon_distance(rec_part, F.interpolate(quarter(real, part),
                                                      size=rec_part.shape[-1])))
    return total.mean() * global_batch


def _noise_source(ctx: TrainingContext):
    """G's noise injections from the trainer's generator, one map per sample."""
    def source(feat: torch.Tensor) -> torch.Tensor:
        _, _, h, w = feat.shape
        return ctx.global_rows(1, h, w, normal=True).to(feat.device, feat.dtype)
    return source


def _hinge_targets(ctx: TrainingContext, logits: torch.Tensor) -> torch.Tensor:
    """U(0.8, 1) per logit. D's logits are [big path rows..., small path rows...]; targets are
    drawn as [2, global batch, n] so each sample gets the same numbers at any process count."""
    local = ctx.rows.stop - ctx.rows.start
    per = logits.numel() // (2 * local)
    draw = torch.rand(2, ctx.cfg.batch, per, generator=ctx.gen)[:, ctx.rows]
    return (draw.reshape(-1) * 0.2 + 0.8).to(logits.device)


class FastGANObjective:
    """The D phase makes G's outputs and keeps their augmented versions for the G phase (the
    original feeds the same augmented fakes to both); the G phase reads them and forgets."""

    label = LABEL

    def __init__(self) -> None:
        self._fake_aug: list[torch.Tensor] | None = None

    def d_phase(self, ctx: TrainingContext) -> tuple[torch.Tensor, dict[str, float]]:
        """D's total loss: the hinge part (reported as loss_d), the reconstruction (recon)
        and, when due, R1 (r1)."""
        cfg = ctx.cfg
        real, z = ctx.sample_batch()
        part = int(torch.randint(4, (1,), generator=ctx.gen))
        do_r1 = cfg.r1_gamma > 0 and ctx.step_count % cfg.r1_every == 0
        with ctx.autocast():
            fake = ctx.g_fwd(z, noise=_noise_source(ctx))
            if do_r1:
                real.requires_grad_(True)
            real_aug = ctx.augment(real)
            fake_aug = [ctx.augment(f) for f in fake]
            real_logits, recs = ctx.d_fwd(real_aug, "real", part=part)
            fake_logits = ctx.d_fwd([f.detach() for f in fake_aug], "fake")
            real_logits, fake_logits = real_logits.float(), fake_logits.float()
            adv = (F.relu(_hinge_targets(ctx, real_logits) - real_logits).mean()
                   + F.relu(_hinge_targets(ctx, fake_logits) + fake_logits).mean())
        rec = recon_loss(recs, real_aug.detach(), part, cfg.batch)
        total_d = adv + rec
        values = {"loss_d": adv.item(), "recon": rec.item()}
        if do_r1:
            r1 = r1_penalty(real, real_logits)
            total_d = total_d + r1 * (cfg.r1_gamma * 0.5 * cfg.r1_every)
            values["r1"] = r1.item()
        self._fake_aug = fake_aug
        return total_d, values

    def g_phase(self, ctx: TrainingContext) -> tuple[torch.Tensor, dict[str, float]]:
        fake_aug, self._fake_aug = self._fake_aug, None
        if fake_aug is None:
            raise RuntimeError("the G phase runs after the D phase of the same step")
        with ctx.autocast():
            loss_g = -ctx.d_frozen(fake_aug, "fake").float().mean()
        return loss_g, {}
