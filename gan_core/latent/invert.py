"""GAN inversion: find the latent whose image best matches a given picture.

The loss is a pixel term (L1 or MSE) plus a multi-scale structural term, SSIM averaged over an
image pyramid (no pretrained perceptual network is available offline, and SSIM over scales
rewards matching structure rather than only average colour). z-space searches add a prior term
that keeps z near the shell where N(0, I) samples live, so the code stays one the generator
was trained on. The search starts from the best of a few seeded candidates and the mean
latent, then runs Adam on the code alone: the generator is a frozen private copy, so the
model's own weights are never touched and get no gradients.
"""
from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from ..images import check_image_batch, luma_nchw, signed_to_comfy, to_rgb
from ..metrics import psnr, pyramid_ssim
from ..seeds import MAX_SEED, latents_for_seeds
from .space import GANLatent, LatentSpace

if TYPE_CHECKING:
    from ..model import GANModel

log = logging.getLogger("gan_core")

INVERT_SPACES = ("auto", "z", "w", "w+")
PIXEL_LOSSES = ("l1", "mse")


@dataclass
class InversionResult:
    latent: GANLatent  # one code in the searched space
    image: torch.Tensor  # IMAGE [1, H, W, 3]: the reconstruction
    target: torch.Tensor  # IMAGE [1, H, W, 3]: the picture as compared (at the model's size)
    psnr: float  # dB, reconstruction vs target, in [0, 1]
    history: dict[str, list[float]] = field(default_factory=dict)  # per step: loss terms, psnr
    steps: int = 0  # steps completed
    stopped: bool = False  # check_stop asked to stop early


# --------------------------------------------------------------------------- helpers

def _fit_target(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """IMAGE [1, H, W, C] -> [1, 3, h, w] in [0, 1] at the generator's size: a centre square
    crop when the aspect differs, then an antialiased resize, each said in the log."""
    x = to_rgb(image).permute(0, 3, 1, 2).float()
    h, w = x.shape[-2:]
    th, tw = size
    if h * tw != w * th:
        side_h, side_w = (h, h * tw // th) if w * th > h * tw else (w * th // tw, w)
        top, left = (h - side_h) // 2, (w - side_w) // 2
        log.info("invert: the %dx%d image is cropped to its centre %dx%d to match the "
                 "generator's aspect", w, h, side_w, side_h)
        x = x[..., top:top + side_h, left:left + side_w]
    if tuple(x.shape[-2:]) != (th, tw):
        log.info("invert: the image is resized from %dx%d to the generator's %dx%d",
                 x.shape[-1], x.shape[-2], tw, th)
        x = F.interpolate(x, size=(th, tw), mode="bilinear", align_corners=False, antialias=True)
    return x.clamp(0.0, 1.0)


def _frozen_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A private copy for autograd: made outside inference mode (a model loaded in ComfyUI
    holds inference tensors, which autograd refuses), eval mode, no parameter wants grads."""
    net = copy.deepcopy(module).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def _lr_at(lr: float, step: int, steps: int) -> float:
    """Short warm-up, then a cosine ramp-down over the last 30% of the steps."""
    t = step / max(1, steps)
    up = min(1.0, t / 0.05)
    down = 0.5 - 0.5 * math.cos(math.pi * min(1.0, (1.0 - t) / 0.3))
    return lr * up * max(down, 0.02)


class _Objective:
    """The inversion loss per image: pixel + ssim_weight * (1 - MS-SSIM) [+ prior]."""

    def __init__(self, target: torch.Tensor, pixel_loss: str, ssim_weight: float,
                 prior_weight: float):
        self.target, self.pixel_loss = target, pixel_loss
        self.ssim_weight, self.prior_weight = ssim_weight, prior_weight

    def __call__(self, code: torch.Tensor, out: torch.Tensor
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x = (out + 1.0) * 0.5
        y = self.target.expand_as(x)
        diff = x - y
        pix = diff.abs() if self.pixel_loss == "l1" else diff.pow(2)
        terms = {"pixel": pix.flatten(1).mean(1), "ssim": 1.0 - pyramid_ssim(x, y)}
        total = terms["pixel"] + self.ssim_weight * terms["ssim"]
        if self.prior_weight:
            # N(0, I) codes in many dimensions have a mean square near 1: stay on that shell
            terms["prior"] = (code.pow(2).flatten(1).mean(1) - 1.0).pow(2)
            total = total + self.prior_weight * terms["prior"]
        return total, terms


_gray = luma_nchw


def _start_pool(work: LatentSpace, space: str, seed: int, count: int,
                mean: torch.Tensor) -> torch.Tensor:
    """Starting codes in the searched space: `count` seeded ones, then the mean latent (0
    in z)."""
    seeds = [(int(seed) + i) % (MAX_SEED + 1) for i in range(max(0, count))]
    z = latents_for_seeds(seeds, work.z_dim) if seeds else torch.zeros(0, work.z_dim)
    z = z.to(work.device)
    if space == "z":
        return torch.cat([z, torch.zeros(1, work.z_dim, device=work.device)])
    pool = torch.cat([work.to_space(z, "z", "w"), mean.to(work.device)])
    return work.to_space(pool, "w", "w+") if space == "w+" else pool


# --------------------------------------------------------------------------- inversion

def invert(model: "GANModel", image: torch.Tensor, steps: int = 300, space: str = "auto",
           lr: float = 0.05, seed: int = 0, callbacks: Any = None, pixel_loss: str = "l1",
           ssim_weight: float = 1.0, prior_weight: float = 0.05, candidates: int = 8,
           preview_every: int = 0, device: torch.device | str | None = None,
           class_index: int | None = None) -> InversionResult:
    """Search the latent that reproduces `image` (IMAGE [1, H, W, C] in [0, 1]).

    `space`: "z" (the Gaussian input; with a z prior), "w" (after the mapping network; the
    same as z for models without one), "w+" (one w per layer: closest fits, less editable) or
    "auto" (w for mapping models, else z). Starts from the best of `candidates` seeded codes
    (seed, seed+1, ...) and the mean latent, then `steps` Adam steps at `lr`. Callbacks:
    `on_step(step, losses)` after each step, `check_stop()` before each (it may raise to
    cancel, or return True to stop early and keep the best code so far), `on_preview(step,
    IMAGE)` every `preview_every` steps. Runs with gradients enabled even when called under
    torch.inference_mode(); returns the best code seen, its image and PSNR, and the history.
    A conditional model searches within `class_index`'s images.
    """
    work = LatentSpace(model, device, class_index=class_index)
    if space == "auto":
        space = "w" if work.mapped else "z"
    if space not in INVERT_SPACES:
        raise ValueError(f"space must be one of {INVERT_SPACES}, got {space!r}")
    if pixel_loss not in PIXEL_LOSSES:
        raise ValueError(f"pixel_loss must be one of {PIXEL_LOSSES}, got {pixel_loss!r}")
    if steps < 0:
        raise ValueError(f"steps must be at least 0, got {steps}")
    image = check_image_batch(image, "image")
    if image.shape[0] != 1:
        raise ValueError(f"image: invert takes one image at a time, got a batch of "
                         f"{image.shape[0]}")
    on_step = getattr(callbacks, "on_step", None)
    check_stop = getattr(callbacks, "check_stop", None)
    on_preview = getattr(callbacks, "on_preview", None)
    mean = work.mean_w()  # before copying: the cache belongs to the model's own module
    gaussian = space == "z" or not work.mapped  # the searched code has an N(0, I) prior
    target_space = "w+" if space == "w+" else work.render_space

    with torch.inference_mode(False), torch.enable_grad():
        work.module = _frozen_copy(work.module)

        def render(code: torch.Tensor) -> torch.Tensor:
            return work.synthesize(work.to_space(code, space, target_space), noise="fixed")

        with torch.no_grad():
            pool = _start_pool(work, space, seed, candidates, mean)
            starts = [render(c) for c in pool.split(8)]
        target = _fit_target(image.clone(), tuple(starts[0].shape[-2:])).to(work.device)
        if starts[0].shape[1] == 1:
            target = _gray(target)
        target_img = signed_to_comfy(target * 2 - 1)  # as IMAGE, gray replicated like the output
        objective = _Objective(target, pixel_loss, ssim_weight, prior_weight if gaussian else 0.0)
        with torch.no_grad():
            scores = torch.cat([objective(c, out)[0] for c, out in zip(pool.split(8), starts)])
        del starts
        best_i = int(scores.argmin())
        best = (float(scores[best_i]), pool[best_i:best_i + 1].clone())
        code = best[1].clone().requires_grad_(True)
        opt = torch.optim.Adam([code], lr=lr, betas=(0.9, 0.999))
        history: dict[str, list[float]] = {}
        stopped, done = False, 0
        for step in range(1, steps + 1):
            if check_stop is not None and check_stop():
                stopped = True
                break
            for group in opt.param_groups:
                group["lr"] = _lr_at(lr, step, steps)
            out = render(code)
            total, terms = objective(code, out)
            value = float(total.detach())
            if value < best[0]:
                best = (value, code.detach().clone())
            opt.zero_grad(set_to_none=True)
            total.sum().backward()
            opt.step()
            done = step
            shown = signed_to_comfy(out)
            record = {"loss": value, **{k: float(v.detach()) for k, v in terms.items()},
                      "psnr": psnr(shown, target_img)}
            for k, v in record.items():
                history.setdefault(k, []).append(v)
            if on_step is not None:
                on_step(step, record)
            if on_preview is not None and preview_every and step % preview_every == 0:
                on_preview(step, shown)
        with torch.no_grad():
            value = float(objective(code, render(code))[0])
            if value < best[0]:
                best = (value, code.detach().clone())
            recon = signed_to_comfy(render(best[1]))
    result = InversionResult(
        latent=GANLatent(space, best[1], model.arch, "fixed"), image=recon, target=target_img,
        psnr=psnr(recon, target_img), history=history, steps=done, stopped=stopped)
    log.info("invert: %d steps in %s, PSNR %.2f dB", done, space, result.psnr)
    return result
