"""The denoiser trainer: self-supervised training from clean images.

Each step draws clean crops from an ImageDataset (converted to [0, 1]), degrades them on the
fly with a noise recipe (gan_core.degrade, with the trainer's own generator), and trains the
generator to give the clean crop back: a reconstruction loss (L1 or Charbonnier) plus
`adv_weight` times the adversarial loss of a PatchGAN that judges (noisy, candidate) pairs.
With adv_weight 0 it is plain regression and the discriminator is never stepped. Models that
take a noise level get the sigma each crop was degraded with as their extra input channel.

Everything around the step is the GAN trainer's, through gan_core.training.loop: callbacks,
cancel that saves first, NaN checks naming the step, atomic checkpoints in the one checkpoint
format, and resume that continues the same loss curve (weights, Adam moments, EMA, the RNG
state and the loss history are all in the file). All randomness (init, batches, crop positions,
degradations) comes from seeded torch generators, so a seed repeats a run on a CPU.
"""
from __future__ import annotations

import os
from dataclasses import replace

import torch
from torch import nn

from ..data import ImageDataset
from ..degrade import degrade_nchw, parse_recipe
from ..images import make_grid, to_rgb
from ..metrics import psnr
from ..model import GANModel
from .config import DenoiseTrainConfig
from .ema import make_ema
from .loop import TrainCallbacks, TrainLoop
from ..losses import d_loss, g_loss, recon_loss

__all__ = ["DenoiseTrainer", "train_denoiser"]

class DenoiseTrainer(TrainLoop):
    def __init__(self, config: DenoiseTrainConfig, dataset: ImageDataset,
                 out: str | os.PathLike | None = None, resume: GANModel | None = None,
                 callbacks: TrainCallbacks | None = None):
        self.begin(config, "denoise", out, callbacks, resume)
        self.recipe_noise = parse_recipe(config.noise)
        if resume is not None:
            self.model_cfg = resume.config
        else:
            channels = config.channels or self.recipe.default_channels
            channel_config = self.recipe.channel_config
            defaults = channel_config(channels) if channel_config else {}
            self.model_cfg = self.spec.config_cls(**{**defaults, **config.model})
        io = self.spec.image_io(self.model_cfg)

        parts = self.build_nets(self.model_cfg)[0]
        self.G, self.D = parts["G"], parts.get("D")
        if config.adv_weight > 0 and self.D is None:
            raise ValueError(f"{config.arch} has no discriminator; train it with adv_weight 0")
        self.channels = io.channels
        self.takes_sigma = io.noise_level_input
        self.conditional = self.D is not None and (
            self.D.cfg.input_nc == 2 * self.channels)
        mult = io.pad_multiple
        if config.size % mult:
            raise ValueError(f"size must be a multiple of {mult} for this {config.arch} model, "
                             f"got {config.size}")
        # A private copy, made outside inference mode, so autograd can use it.
        self.data = replace(dataset, images=dataset.images.clone(), channels=self.channels)
        if self.data.size < config.size:
            raise ValueError(f"dataset images are {self.data.size} px, smaller than the "
                             f"{config.size} px crops")

        self.history.update(loss_rec=[], psnr=[])
        if self.adversarial:
            self.history.update(loss_adv=[], loss_d=[])
        self.trained = {"G": self.G} if self.D is None else {"G": self.G, "D": self.D}
        self.restore_weights(resume, self.trained)
        self.place(self.trained.values())
        self.ema = make_ema(self.G, config.ema_decay)
        betas = (config.beta1, config.beta2)
        self.make_optimizer("G", self.G.parameters(), config.lr_g, betas)
        if self.D is not None:
            self.make_optimizer("D", self.D.parameters(), config.lr_d, betas)
        self.restore_training(resume)
        self._preview_batch: tuple[torch.Tensor, ...] | None = None

    @property
    def adversarial(self) -> bool:
        return self.cfg.adv_weight > 0

    # ------------------------------------------------------------------ data
    def _crops(self) -> torch.Tensor:
        """Clean crops [B, C, size, size] in [0, 1] from the trainer's generator."""
        cfg = self.cfg
        x = self.data.sample(cfg.batch, self.gen, self.device)
        if self.data.size > cfg.size:
            room = self.data.size - cfg.size + 1
            offsets = torch.randint(room, (cfg.batch, 2), generator=self.gen).tolist()
            x = torch.stack([img[:, t:t + cfg.size, l:l + cfg.size]
                             for img, (t, l) in zip(x, offsets)])
        return x.add(1.0).mul_(0.5).clamp_(0.0, 1.0)

    def _net_input(self, noisy: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """The noisy crops, plus the sigma map (0..1 units, as gan_core.denoise feeds it)
        for models that take a noise level."""
        if not self.takes_sigma:
            return noisy.contiguous(memory_format=self.memory_format)
        level = sigma.to(noisy).view(-1, 1, 1, 1).expand(-1, 1, *noisy.shape[-2:])
        return torch.cat([noisy, level], 1).contiguous(memory_format=self.memory_format)

    def _d_input(self, noisy: torch.Tensor, candidate: torch.Tensor) -> torch.Tensor:
        x = torch.cat([noisy, candidate], 1) if self.conditional else candidate
        return x.contiguous(memory_format=self.memory_format)

    # ------------------------------------------------------------------ one iteration
    def step(self) -> dict[str, float]:
        cfg = self.cfg
        clean = self._crops()
        noisy, sigma = degrade_nchw(clean, self.recipe_noise, self.gen, return_sigma=True)
        with self.autocast():
            out = self.G(self._net_input(noisy, sigma))
        values: dict[str, float] = {}

        if self.adversarial:
            # Discriminator: (noisy, clean) pairs up, (noisy, denoised) pairs down.
            self.D.requires_grad_(True)
            with self.autocast():
                loss_d = d_loss(cfg.gan_loss, self.D(self._d_input(noisy, clean)).float(),
                                self.D(self._d_input(noisy, out.detach())).float())
            values["loss_d"] = loss_d.item()
            self._finite(values)
            self.opts["D"].zero_grad(set_to_none=True)
            self.scaler.scale(loss_d).backward()
            self.scaler.step(self.opts["D"])
            self.D.requires_grad_(False)  # G's step makes no weight gradients for D

        out = out.float()
        rec = recon_loss(cfg.loss, out, clean, cfg.charbonnier_eps)
        total = rec
        values["loss_rec"] = rec.item()
        if self.adversarial:
            with self.autocast():
                adv = g_loss(cfg.gan_loss, self.D(self._d_input(noisy, out)).float())
            values["loss_adv"] = adv.item()
            total = rec + cfg.adv_weight * adv
        self._finite(values)
        self.opts["G"].zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.step(self.opts["G"])
        self.scaler.update()
        self.ema.update_parameters(self.G)
        values["psnr"] = min(psnr(out.detach().clamp(0.0, 1.0), clean), 120.0)
        return self.record(values)

    # ------------------------------------------------------------------ outputs
    def _preview_inputs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Fixed (noisy, sigma, clean): the first dataset images, centre-cropped, degraded from
        a generator of their own, so every preview shows the same pictures and drawing them
        never moves the training RNG."""
        if self._preview_batch is None:
            n, size = min(self.cfg.preview_count, len(self.data)), self.cfg.size
            top = (self.data.size - size) // 2
            imgs = self.data.images[:n, :, top:top + size, top:top + size].to(self.device)
            clean = self.data.to_float(imgs).add(1.0).mul_(0.5).clamp_(0.0, 1.0)
            g = torch.Generator().manual_seed(self.cfg.seed)
            noisy, sigma = degrade_nchw(clean, self.recipe_noise, g, return_sigma=True)
            self._preview_batch = (noisy, sigma, clean)
        return self._preview_batch

    @torch.no_grad()
    def preview(self) -> torch.Tensor:
        """(noisy | denoised | clean) triplets, one per row, from the EMA generator, as one
        IMAGE grid [1, H, W, 3]."""
        net = self.ema.module.eval()
        noisy, sigma, clean = self._preview_inputs()
        denoised = net(self._net_input(noisy, sigma)).clamp(0.0, 1.0)
        rows = torch.stack([noisy, denoised, clean], 1).flatten(0, 1)  # n*3 [C, H, W]
        images = to_rgb(rows.permute(0, 2, 3, 1).float().cpu().contiguous())
        self.last_preview = make_grid(images, nrow=3)
        return self.last_preview

    def summary(self) -> dict:
        cfg = self.cfg
        return {"image_size": cfg.size, "dataset": self.data.name, "dataset_size": len(self.data),
                "noise": str(self.recipe_noise), "loss": cfg.loss, "adv_weight": cfg.adv_weight}

    def modules(self) -> dict[str, nn.Module]:
        modules = {"G": self.G, "G_ema": self.ema.module}
        if self.D is not None:
            modules["D"] = self.D
        return modules

    def trained_modules(self) -> list[nn.Module]:
        return list(self.trained.values())


def train_denoiser(config: DenoiseTrainConfig, dataset: ImageDataset,
                   out: str | os.PathLike | None = None, resume: GANModel | None = None,
                   callbacks: TrainCallbacks | None = None) -> GANModel:
    """Train (or continue training) a denoiser on clean images degraded by `config.noise`;
    returns the model (EMA generator included), whose `denoise()` is ready to use."""
    # Construction included, outside inference mode (ComfyUI runs nodes inside it).
    with torch.inference_mode(False), torch.enable_grad():
        return DenoiseTrainer(config, dataset, out=out, resume=resume, callbacks=callbacks).run()
