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

import math
import os
import time
from dataclasses import replace

import torch
from torch import nn

from ..data import ImageDataset
from ..degrade import degrade_nchw, parse_recipe
from ..device import make_adam, resolve_device
from ..images import make_grid, to_rgb
from ..model import GANModel, ResumeState
from ..archs import get_arch
from ..version import __version__
from .config import DenoiseTrainConfig
from .ema import make_ema
from .loop import (TrainCallbacks, TrainLoop, check_resume, load_ema, load_optimizers,
                   load_weights, match_moment_layouts)
from ..losses import d_loss, g_loss, recon_loss

__all__ = ["DenoiseTrainer", "train_denoiser"]

def _psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    mse = float((pred.clamp(0.0, 1.0) - target).pow(2).mean())
    return 10.0 * math.log10(1.0 / max(mse, 1e-12))


class DenoiseTrainer(TrainLoop):
    def __init__(self, config: DenoiseTrainConfig, dataset: ImageDataset,
                 out: str | os.PathLike | None = None, resume: GANModel | None = None,
                 callbacks: TrainCallbacks | None = None):
        self.cfg = config.validate()
        self.out = os.fspath(out) if out is not None else None
        self.cb = callbacks or TrainCallbacks()
        self.device = resolve_device(config.device)
        self.spec = get_arch(config.arch)
        self.recipe = parse_recipe(config.noise)
        if resume is not None:
            check_resume(resume, config.arch)
            self.model_cfg = resume.config
        else:
            recipe = self.spec.training
            channels = config.channels or recipe.default_channels
            defaults = recipe.channel_config(channels) if recipe.channel_config else {}
            self.model_cfg = self.spec.config_cls(**{**defaults, **config.model})
        io = self.spec.image_io(self.model_cfg)

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            parts = self.spec.build(self.model_cfg)
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

        self.gen = torch.Generator().manual_seed(config.seed)
        self.history: dict[str, list[float]] = {"loss_rec": [], "psnr": []}
        if self.adversarial:
            self.history.update(loss_adv=[], loss_d=[])
        self.step_count = 0
        self.trained = {"G": self.G} if self.D is None else {"G": self.G, "D": self.D}
        if resume is not None:
            self.step_count = load_weights(resume, self.trained, self.gen, self.history)
        # "auto": on the device types where the family measured a gain (its TrainingRecipe).
        self.memory_format = (torch.channels_last if config.channels_last == "on" or (
            config.channels_last == "auto"
            and self.device.type in self.spec.training.channels_last)
            else torch.contiguous_format)
        for m in self.trained.values():
            m.to(self.device, memory_format=self.memory_format).train()
        self.ema = make_ema(self.G, config.ema_decay)
        if resume is not None:
            load_ema(resume, self.ema)
        betas = (config.beta1, config.beta2)
        self.opts = {"G": make_adam(self.G.parameters(), config.lr_g, betas, self.device)}
        if self.D is not None:
            self.opts["D"] = make_adam(self.D.parameters(), config.lr_d, betas, self.device)
        if resume is not None:
            load_optimizers(resume.resume, self.opts)
            match_moment_layouts(self.opts.values())
        self.saved_step = self.step_count if resume is not None else -1
        self.last_preview: torch.Tensor | None = None
        self._preview_batch: tuple[torch.Tensor, ...] | None = None
        self._started = time.perf_counter()

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
        noisy, sigma = degrade_nchw(clean, self.recipe, self.gen, return_sigma=True)
        out = self.G(self._net_input(noisy, sigma))
        values: dict[str, float] = {}

        if self.adversarial:
            # Discriminator: (noisy, clean) pairs up, (noisy, denoised) pairs down.
            self.D.requires_grad_(True)
            loss_d = d_loss(cfg.gan_loss, self.D(self._d_input(noisy, clean)),
                            self.D(self._d_input(noisy, out.detach())))
            values["loss_d"] = loss_d.item()
            self._finite(values)
            self.opts["D"].zero_grad(set_to_none=True)
            loss_d.backward()
            self.opts["D"].step()
            self.D.requires_grad_(False)  # G's step makes no weight gradients for D

        rec = recon_loss(cfg.loss, out, clean, cfg.charbonnier_eps)
        total = rec
        values["loss_rec"] = rec.item()
        if self.adversarial:
            adv = g_loss(cfg.gan_loss, self.D(self._d_input(noisy, out)))
            values["loss_adv"] = adv.item()
            total = rec + cfg.adv_weight * adv
        self._finite(values)
        self.opts["G"].zero_grad(set_to_none=True)
        total.backward()
        self.opts["G"].step()
        self.ema.update_parameters(self.G)
        values["psnr"] = _psnr(out.detach(), clean)
        self.step_count += 1
        for k, v in values.items():
            self.history.setdefault(k, []).append(v)
        return values

    # ------------------------------------------------------------------ outputs
    def _preview_inputs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Fixed (noisy, sigma, clean): the first dataset images, centre-cropped, degraded from
        a generator of their own, so every preview shows the same pictures and drawing them
        never moves the training RNG."""
        if self._preview_batch is None:
            n, size = min(self.cfg.preview_count, len(self.data)), self.cfg.size
            top = (self.data.size - size) // 2
            imgs = self.data.images[:n, :, top:top + size, top:top + size].to(self.device)
            clean = self.data._to_float(imgs).add(1.0).mul_(0.5).clamp_(0.0, 1.0)
            g = torch.Generator().manual_seed(self.cfg.seed)
            noisy, sigma = degrade_nchw(clean, self.recipe, g, return_sigma=True)
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

    def model(self) -> GANModel:
        """A GANModel view of the current state (shares the live modules)."""
        cfg = self.cfg
        training = {
            "steps": self.step_count, "seed": cfg.seed, "image_size": cfg.size,
            "dataset": self.data.name, "dataset_size": len(self.data), "batch": cfg.batch,
            "noise": str(self.recipe), "loss": cfg.loss, "adv_weight": cfg.adv_weight,
            "final_losses": {k: v[-1] for k, v in self.history.items() if v},
            "gan_core_version": __version__, "device": self.device.type,
            "seconds": round(time.perf_counter() - self._started, 2),
        }
        resume = ResumeState(
            step=self.step_count,
            optimizers={name: opt.state_dict() for name, opt in self.opts.items()},
            rng_state=self.gen.get_state(), ema_count=int(self.ema.n_averaged),
            history={k: list(v) for k, v in self.history.items()},
            train_config=cfg.to_dict(),
        )
        modules = {"G": self.G, "G_ema": self.ema.module}
        if self.D is not None:
            modules["D"] = self.D
        model = GANModel(cfg.arch, self.model_cfg, modules, training=training, resume=resume,
                         source=self.out)
        for m in self.trained.values():
            m.train()  # GANModel() puts modules in eval mode
        return model

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
