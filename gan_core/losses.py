"""Adversarial losses on raw discriminator logits, and the R1 gradient penalty."""
from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("bce", "hinge", "lsgan")


def d_loss(kind: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator loss. "bce": log-loss with logits (real -> 1, fake -> 0); "hinge": margin 1;
    "lsgan": least squares (Mao et al. 2017) to 1 and 0, halved as CycleGAN does."""
    if kind == "bce":
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    if kind == "hinge":
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
    if kind == "lsgan":
        return 0.5 * ((real_logits - 1.0).pow(2).mean() + fake_logits.pow(2).mean())
    raise ValueError(f"loss must be one of {LOSSES}, got {kind!r}")


def g_loss(kind: str, fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator loss: non-saturating -log D(G(z)) for "bce", -D(G(z)) for "hinge",
    (D(G(z)) - 1)^2 for "lsgan"."""
    if kind == "bce":
        return F.softplus(-fake_logits).mean()
    if kind == "hinge":
        return -fake_logits.mean()
    if kind == "lsgan":
        return (fake_logits - 1.0).pow(2).mean()
    raise ValueError(f"loss must be one of {LOSSES}, got {kind!r}")


def r1_penalty(real: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """E[|grad_x D(x)|^2] on real images (Mescheder et al. 2018); `real` must require grad."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.float().pow(2).flatten(1).sum(1).mean()


RECON_LOSSES = ("l1", "charbonnier")


def recon_loss(kind: str, pred: torch.Tensor, target: torch.Tensor,
               eps: float = 1e-3) -> torch.Tensor:
    """Reconstruction loss of a denoiser: mean absolute error ("l1"), or the Charbonnier loss
    mean(sqrt((pred - target)^2 + eps^2)) - eps, a smooth L1 (differentiable at 0), zero for a
    perfect prediction like L1."""
    if kind == "l1":
        return (pred - target).abs().mean()
    if kind == "charbonnier":
        return ((pred - target).pow(2) + eps * eps).sqrt().mean() - eps
    raise ValueError(f"loss must be one of {RECON_LOSSES}, got {kind!r}")
