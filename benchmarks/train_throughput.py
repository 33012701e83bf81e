"""Training throughput of gan_core's trainer against a plain PyTorch loop, in one process.

    python benchmarks/train_throughput.py            # dcgan 64 px batch 64, mlp 28 px batch 128
    python benchmarks/train_throughput.py --quick    # a short smoke run (numbers are noisy)
    python benchmarks/train_throughput.py --compile  # our trainer with TrainConfig(compile=True)
    python benchmarks/train_throughput.py --threads 2 --arch mlp   # default --threads auto
    python benchmarks/train_throughput.py --arch cyclegan --threads 1   # the style trainer
    python benchmarks/train_throughput.py --arch fastgan --threads 1    # FastGAN 256 px, CPU-sized
    python benchmarks/train_throughput.py --arch all                    # every setup below

What runs
- reference: the loop as pytorch/examples' dcgan/main.py writes it, for both architectures:
  a torch DataLoader (shuffle, drop_last, no workers) over a TensorDataset of the same
  built-in images already scaled to [-1, 1] (and grey for the MLP); BCEWithLogitsLoss against
  label tensors; default torch.optim.Adam (not fused); per iteration one G forward, D on real
  and on fake.detach() with one backward each, D step, then G's loss through D (D's weight
  gradients computed too, as the example does), G step; zero_grad() every step; loss .item()s
  read every step as the example's log line does; no EMA, no augmentation. The networks are
  built by gan_core's own builders with the same seed, so architectures and init are identical.
- ours: gan_core.Trainer(...).run() with EMA (decay 0.999), an on_step callback (collects the
  losses, as a progress bar would) and check_stop (polled before every step; it also ends each
  timed chunk). No checkpoint file (out=None) and preview_every=0: the one preview run() makes
  at its end falls outside the timed window. Random horizontal flips on (the dataset default).
  Everything else is the trainer's default: fp32, channels_last "auto" (on for dcgan), no
  torch.compile unless --compile.
- the matmul figure: median GFLOP/s of a 2048^3 fp32 matmul, measured at the start and the end.

CycleGAN (--arch cyclegan, cyclegan96; not in the default set): our style trainer
(gan_core.training.StyleTrainer, what gan_core.train_style runs) against the iteration of
junyanz/pytorch-CycleGAN-and-pix2pix models/cycle_gan_model.py. Sizes are CPU-sized (the
original's 256 px, ngf 64, 9 blocks, batch 1 takes far too long here): "cyclegan" is 128 px,
ngf 32, ndf 64, 6 blocks, batch 1; "cyclegan96" is the train-style CLI default, 96 px, ngf 16,
ndf 32, 6 blocks, batch 1.
- reference: G_A, D_A from one build of gan_core's cyclegan_resnet and G_B, D_B from a second
  (one seed: the same weights as ours, which the script checks); GANLoss("lsgan") as the
  original writes it (nn.MSELoss against a 1.0 / 0.0 buffer expanded to the prediction), two
  nn.L1Loss; default torch.optim.Adam(lr 2e-4, betas (0.5, 0.999)) over itertools.chain of both
  G and of both D; the original's ImagePool(50) (python random, no clone). Per iteration:
  forward() = G_A(real_A), G_B(fake_B), G_B(real_B), G_A(fake_A); D_A, D_B requires_grad off;
  zero_grad; backward_G = identity G_A(real_B), G_B(real_A) with L1 x 10 x 0.5, MSE adversarial
  terms through D_A(fake_B), D_B(fake_A), cycle L1 x 10, one backward; optimizer_G.step();
  D requires_grad on; zero_grad; backward_D_A / backward_D_B = (MSE(D(real), 1) +
  MSE(D(pool(fake).detach()), 0)) x 0.5, one backward each; optimizer_D.step(). No loss is read
  per step (the original reads them every print_freq = 100 iterations) and its lr schedule
  steps per epoch, so neither is in the reference's timed loop.
- ours: StyleTrainer(...).run() in chunks, device "cpu", with the on_step and check_stop
  callbacks as above; its per-step extras are timed: the per-step lr schedule, five loss
  .item()s with the NaN check, the history, its own pool (clones images), fused Adam.
  preview_every=0, checkpoint_every=0, out=None: the preview run() makes at its end falls
  outside the timed window. channels_last "auto" (off on CPU). No EMA (CycleGAN has none).
- data, the same for both: each side draws its batches from the same two CropSource objects,
  content builtin:blobs (16 pictures) and style builtin:painting (1 picture), both rendered at
  1024 px (the CLI's --max-side), with CropSource.sample(batch, size, its own generator seeded
  alike): random-scale crops resized to the training size and flipped, a few ms per iteration
  on each side. With the same seed the first iterations see the same crops, so the first
  losses of both loops are reported (they should agree to float rounding).

FastGAN (--arch fastgan; not in the default set): our Trainer (what gan_core.train runs for
arch "fastgan", its step in gan_core/archs/fastgan/objective.py) against the iteration of
odegeasslbc/FastGAN-pytorch's train.py, 256 px, CPU-sized (ngf = ndf = 16 instead of 64,
batch 4 instead of 8), both with DiffAugment "color,translation".
- reference: G and D from gan_core's fastgan builder with the trainer's seed (the script checks
  the weights are equal); a DataLoader (shuffle, drop_last, no workers) over the same 64
  built-in images in [-1, 1]; z ~ N(0, 1) and the generator's noise maps from the global RNG;
  DiffAugment color + translation written out below as the original's diffaug.py computes it
  (global RNG), once on the real batch and once on each of G's two outputs; D step: a random
  quarter, D(real, "real", part) with hinge-to-U(0.8, 1) plus the reconstruction loss, one
  backward, then D(fakes detached, "fake") with its hinge, a second backward, Adam step; G step:
  -D(fakes).mean() with D's parameters still requiring grad (the original never freezes D, so its
  weight gradients are computed and dropped), Adam step; the original's EMA
  (p_avg = 0.999 p_avg + 0.001 p over G.parameters() each step); pred.mean().item() read every
  step as train.py does. The reconstruction loss is ours (pixel L1 + image-gradient L1, summed
  over the batch) on both sides: the original's LPIPS-VGG needs weights we do not have.
  Plain torch.optim.Adam(lr 2e-4, betas (0.5, 0.999)).
- ours: Trainer.run() in chunks as for dcgan (EMA, on_step, check_stop, no files), all its
  randomness from its seeded generator; D frozen in the G step; fused Adam; channels_last
  "auto" (CUDA only for fastgan; --channels-last on to measure it on a CPU).
- FLOPs (nominal, as above): per image G fwd Gf, D fwd on "real" (both paths and the three
  decoders) Dr, on "fake" (no decoders) Df; an iteration is 3 Gf + 3 Dr + 3 Df (D step) + 3 Df
  (G step), times the batch.

Timing: after warm-up, for each rep N iterations of the reference then N of ours (the order
alternating between reps); medians of images/s over the reps and the median of the per-rep
ratios are reported.

FLOP accounting (nominal, the same for both loops): forward FLOPs per image of G (Gf) and D
(Df) are 2 x the MACs of their Conv2d / ConvTranspose2d / Linear layers, counted with forward
hooks; forward+backward = 3 x forward. One iteration is G fwd+bwd (3 Gf) plus three D
fwd+bwd passes (D on real, D on fake in the D step, D on fake in the G step: 9 Df), so
FLOPs/iteration = batch x (3 Gf + 9 Df). Norms, activations, losses and optimizer steps are
not counted. The backward pass to the input of D's first layer in the D step and D's weight
gradients in the G step (which the reference computes and we skip) are counted as done by
both, so the GFLOP/s ratio equals the images/s ratio.

CycleGAN FLOPs (same rules, Gf and Df per image at the training size, all nominal 3x for a
forward+backward pass): the G step runs 6 G passes (fake_B, rec_A, fake_A, rec_B, idt_A, idt_B),
all inside the one backward (18 Gf), and 2 D passes (D_A(fake_B), D_B(fake_A)); the D step 4 D
passes (real and pooled fake for each D). FLOPs/iteration = batch x (18 Gf + 18 Df). The 2 D
passes of the G step run with D frozen on both sides, so their backward computes input
gradients only (about 2x forward, not 3x): the real work is batch x (18 Gf + 16 Df), reported
too ("gflop_per_iteration_frozen_d_exact"); the table uses the nominal figure.

Results print as a table and go to benchmarks/results/train_throughput.json, or to $OUT/ when
the OUT environment variable is set.
"""
from __future__ import annotations

import argparse
import datetime
import itertools
import json
import math
import os
import platform
import random
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import gan_core  # noqa: E402
from gan_core.archs import get_arch  # noqa: E402

# arch -> (image size, channels, batch, goal: minimum ratio ours/reference)
SETUPS = {
    "dcgan": dict(size=64, channels=3, batch=64, goal_ratio=1.0, goal_fraction=0.70),
    "mlp": dict(size=28, channels=1, batch=128, goal_ratio=1.6, goal_fraction=None),
    # CycleGAN (style trainer), CPU-sized: see the module docstring.
    "cyclegan": dict(size=128, channels=3, batch=1, goal_ratio=1.0, goal_fraction=None,
                     style=dict(ngf=32, ndf=64, n_blocks=6)),
    "cyclegan96": dict(size=96, channels=3, batch=1, goal_ratio=1.0, goal_fraction=None,
                       style=dict(ngf=16, ndf=32, n_blocks=6)),
    # FastGAN, CPU-sized: see the module docstring.
    "fastgan": dict(size=256, channels=3, batch=4, goal_ratio=1.0, goal_fraction=None,
                    fastgan=dict(ngf=16, ndf=16), count=64, augment="color,translation"),
}
DEFAULT_ARCHS = ["dcgan", "mlp"]  # what runs without --arch
# iterations per timed chunk, warm-up iterations (full run, --quick)
ITERS = {"dcgan": (6, 3, 2, 1), "mlp": (60, 30, 10, 5), "cyclegan": (4, 2, 1, 1),
         "cyclegan96": (12, 3, 3, 1), "fastgan": (4, 2, 2, 1)}
# The crop sources of the CycleGAN runs (the train-style CLI's built-in defaults).
STYLE_DATA = dict(content="builtin:blobs", content_count=16, style="builtin:painting",
                  style_count=1, max_side=1024)


# ---------------------------------------------------------------- machine figures
def matmul_gflops(reps: int = 5, n: int = 2048) -> list[float]:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        out.append(2 * n**3 / (time.perf_counter() - t) / 1e9)
    return out


def forward_flops_per_image(module: nn.Module, x: torch.Tensor) -> float:
    """2 x MACs of conv, transposed conv and linear layers for one forward, per image."""
    macs = 0

    def hook(m, inputs, output):
        nonlocal macs
        if isinstance(m, nn.Conv2d):
            macs += output.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.ConvTranspose2d):
            macs += inputs[0].numel() * (m.out_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            macs += inputs[0].numel() * m.out_features

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    try:
        with torch.no_grad():
            module.eval()(x)
    finally:
        for h in handles:
            h.remove()
        module.train()
    return 2.0 * macs / x.shape[0]


# ---------------------------------------------------------------- the plain reference loop
class ReferenceLoop:
    """pytorch/examples dcgan/main.py's iteration, on gan_core's networks."""

    def __init__(self, arch: str, dataset: gan_core.ImageDataset, batch: int, seed: int = 0):
        spec = get_arch(arch)
        self.cfg = spec.config_cls(image_size=dataset.size, channels=dataset.channels)
        torch.manual_seed(seed)
        parts = spec.build(self.cfg)
        self.netG, self.netD = parts["G"].train(), parts["D"].train()
        # What a pytorch/examples user builds: images as floats in [-1, 1] (Normalize(0.5, 0.5)).
        x = dataset.images.float().div(127.5).sub(1.0)
        if dataset.channels == 1:
            x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        self.loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x), batch_size=batch,
                                                  shuffle=True, drop_last=True, num_workers=0)
        self.batches = iter(self.loader)
        self.criterion = nn.BCEWithLogitsLoss()
        self.optimizerD = torch.optim.Adam(self.netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.optimizerG = torch.optim.Adam(self.netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.nz = self.cfg.latent_dim

    def next_batch(self) -> torch.Tensor:
        try:
            return next(self.batches)[0]
        except StopIteration:  # a new epoch
            self.batches = iter(self.loader)
            return next(self.batches)[0]

    def iteration(self) -> None:
        real_label, fake_label = 1.0, 0.0
        # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
        self.netD.zero_grad()
        real = self.next_batch()
        b = real.size(0)
        label = torch.full((b,), real_label, dtype=real.dtype)
        output = self.netD(real)
        errD_real = self.criterion(output, label)
        errD_real.backward()
        D_x = output.mean().item()
        noise = torch.randn(b, self.nz)
        fake = self.netG(noise)
        label.fill_(fake_label)
        output = self.netD(fake.detach())
        errD_fake = self.criterion(output, label)
        errD_fake.backward()
        D_G_z1 = output.mean().item()
        errD = errD_real + errD_fake
        self.optimizerD.step()
        # (2) Update G network: maximize log(D(G(z)))
        self.netG.zero_grad()
        label.fill_(real_label)
        output = self.netD(fake)
        errG = self.criterion(output, label)
        errG.backward()
        D_G_z2 = output.mean().item()
        self.optimizerG.step()
        self.log = (errD.item(), errG.item(), D_x, D_G_z1, D_G_z2)

    def timed(self, n: int) -> float:
        t = time.perf_counter()
        for _ in range(n):
            self.iteration()
        return time.perf_counter() - t


# ---------------------------------------------------------------- ours
class OurLoop:
    """gan_core.Trainer.run() in chunks; check_stop ends each chunk and brackets its timing."""

    def __init__(self, arch: str, dataset: gan_core.ImageDataset, batch: int, compile: bool,
                 channels_last: str, seed: int = 0, model: dict | None = None,
                 augment: str = ""):
        self.cfg = gan_core.TrainConfig(arch=arch, size=dataset.size, channels=dataset.channels,
                                        batch=batch, steps=10**9, seed=seed, preview_every=0,
                                        checkpoint_every=0, compile=compile,
                                        channels_last=channels_last, model=dict(model or {}),
                                        augment=augment)
        self.losses: list[dict[str, float]] = []
        cb = gan_core.TrainCallbacks(on_step=lambda step, losses: self.losses.append(losses),
                                     check_stop=self._check_stop)
        self.trainer = gan_core.training.Trainer(self.cfg, dataset, callbacks=cb)
        self.left, self.t0, self.t1 = 0, None, None

    def _check_stop(self) -> bool:
        now = time.perf_counter()
        if self.t0 is None:
            self.t0 = now
        if self.left == 0:
            self.t1 = now
            return True
        self.left -= 1
        return False

    def timed(self, n: int) -> float:
        self.left, self.t0, self.t1 = n, None, None
        self.trainer.G.train(), self.trainer.D.train()  # run() leaves the modules in eval mode
        self.trainer.run()
        return self.t1 - self.t0


# ---------------------------------------------------------------- CycleGAN: the original's step
def _mse_to(pred: torch.Tensor, label: float) -> torch.Tensor:
    """The original's LSGAN criterion: MSE against a constant label broadcast to the map."""
    return F.mse_loss(pred, torch.full_like(pred, label))


class _HistoryPool:
    """The original's fake-image history (size 50): filled first, then each image is swapped
    for a stored one with probability 1/2; python's random, stored images not copied."""

    def __init__(self, capacity: int, rng: random.Random):
        self.capacity, self.rng, self.kept = capacity, rng, []

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        picked = []
        for img in batch.detach().split(1):
            if len(self.kept) < self.capacity:
                self.kept.append(img)
                picked.append(img)
            elif self.rng.uniform(0, 1) > 0.5:
                slot = self.rng.randint(0, self.capacity - 1)
                picked.append(self.kept[slot].clone())
                self.kept[slot] = img
            else:
                picked.append(img)
        return torch.cat(picked)


class CycleGANReference:
    """One iteration the way the original CycleGAN project runs it, on gan_core's
    cyclegan_resnet networks: cycle weight 10 (both sides), identity 0.5 of it, history pools
    of 50, LSGAN, plain Adam 2e-4 / (0.5, 0.999) over both G and over both D."""

    def __init__(self, setup: dict, content, style, seed: int = 0):
        spec = get_arch("cyclegan_resnet")
        self.cfg = spec.config_cls(**setup["style"])
        self.size, self.batch = setup["size"], setup["batch"]
        torch.manual_seed(seed)
        ab, ba = spec.build(self.cfg), spec.build(self.cfg)  # our trainer's order, same seed
        # g_ab: A -> B with d_b judging B; g_ba: B -> A with d_a judging A
        self.g_ab, self.d_b = ab["G"].train(), ab["D"].train()
        self.g_ba, self.d_a = ba["G"].train(), ba["D"].train()
        self.pool_b = _HistoryPool(50, random.Random(seed + 1))
        self.pool_a = _HistoryPool(50, random.Random(seed))
        betas = (0.5, 0.999)
        self.opt_g = torch.optim.Adam(itertools.chain(self.g_ab.parameters(),
                                                      self.g_ba.parameters()), lr=2e-4, betas=betas)
        self.opt_d = torch.optim.Adam(itertools.chain(self.d_a.parameters(),
                                                      self.d_b.parameters()), lr=2e-4, betas=betas)
        # Batches: the same CropSources and sampler as ours, with a generator seeded alike.
        self.content, self.style = content, style
        self.gen = torch.Generator().manual_seed(seed)
        self.first_losses: list[tuple[torch.Tensor, torch.Tensor]] = []

    @staticmethod
    def _trainable(nets, flag: bool) -> None:
        for net in nets:
            for p in net.parameters():
                p.requires_grad = flag

    def iteration(self) -> None:
        a = self.content.sample(self.batch, self.size, self.gen)
        b = self.style.sample(self.batch, self.size, self.gen)
        fake_b = self.g_ab(a)
        rec_a = self.g_ba(fake_b)
        fake_a = self.g_ba(b)
        rec_b = self.g_ab(fake_a)

        self._trainable((self.d_a, self.d_b), False)
        self.opt_g.zero_grad()
        idt = F.l1_loss(self.g_ab(b), b) + F.l1_loss(self.g_ba(a), a)
        adv = _mse_to(self.d_b(fake_b), 1.0) + _mse_to(self.d_a(fake_a), 1.0)
        cycle = F.l1_loss(rec_a, a) + F.l1_loss(rec_b, b)
        loss_g = adv + 10.0 * cycle + 10.0 * 0.5 * idt
        loss_g.backward()
        self.opt_g.step()

        self._trainable((self.d_a, self.d_b), True)
        self.opt_d.zero_grad()
        loss_d = 0.0
        for d, real, fake in ((self.d_b, b, self.pool_b(fake_b)), (self.d_a, a, self.pool_a(fake_a))):
            part = 0.5 * (_mse_to(d(real), 1.0) + _mse_to(d(fake.detach()), 0.0))
            part.backward()  # one backward per discriminator, as the original does
            loss_d = loss_d + part.detach()
        self.opt_d.step()
        if len(self.first_losses) < 2:  # warm-up only: for the comparison with ours
            self.first_losses.append((loss_g.detach(), loss_d))

    def timed(self, n: int) -> float:
        t = time.perf_counter()
        for _ in range(n):
            self.iteration()
        return time.perf_counter() - t


class OurStyleLoop(OurLoop):
    """gan_core's StyleTrainer.run() in chunks, bracketed by check_stop like OurLoop."""

    def __init__(self, setup: dict, content, style, channels_last: str, seed: int = 0):
        self.cfg = gan_core.StyleTrainConfig(size=setup["size"], batch=setup["batch"],
                                             steps=10**9, seed=seed, preview_every=0,
                                             checkpoint_every=0, device="cpu",
                                             channels_last=channels_last,
                                             model=dict(setup["style"]))
        self.losses: list[dict[str, float]] = []
        cb = gan_core.TrainCallbacks(on_step=lambda step, losses: self.losses.append(losses),
                                     check_stop=self._check_stop)
        self.trainer = gan_core.training.StyleTrainer(self.cfg, content, style, callbacks=cb)
        self.left, self.t0, self.t1 = 0, None, None

    def timed(self, n: int) -> float:
        self.left, self.t0, self.t1 = n, None, None
        self.trainer.run()  # run() puts the four networks in train mode first
        return self.t1 - self.t0


# ---------------------------------------------------------------- FastGAN: the original's step
def _plain_diffaugment(x: torch.Tensor) -> torch.Tensor:
    """DiffAugment "color,translation" as the original's diffaug.py computes it, on the global
    RNG: per-sample brightness (+U(-0.5, 0.5)), saturation (x U(0, 2) around the pixel's channel
    mean), contrast (x U(0.5, 1.5) around the image mean), then a shift by up to 1/8 of the
    size in each direction with zero fill."""
    b = x.size(0)
    x = x + (torch.rand(b, 1, 1, 1, dtype=x.dtype, device=x.device) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(b, 1, 1, 1, dtype=x.dtype, device=x.device) * 2) + mean
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    x = (x - mean) * (torch.rand(b, 1, 1, 1, dtype=x.dtype, device=x.device) + 0.5) + mean
    h, w = x.size(2), x.size(3)
    sy, sx = int(h * 0.125 + 0.5), int(w * 0.125 + 0.5)
    ty = torch.randint(-sy, sy + 1, size=[b, 1, 1], device=x.device)
    tx = torch.randint(-sx, sx + 1, size=[b, 1, 1], device=x.device)
    gb, gy, gx = torch.meshgrid(torch.arange(b, device=x.device), torch.arange(h, device=x.device),
                                torch.arange(w, device=x.device), indexing="ij")
    gy = torch.clamp(gy + ty + 1, 0, h + 1)
    gx = torch.clamp(gx + tx + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
    return padded.permute(0, 2, 3, 1).contiguous()[gb, gy, gx].permute(0, 3, 1, 2)


def _plain_recon(rec: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Summed over the batch: mean |rec - target| + mean |d/dx| and |d/dy| differences per
    image (the loss our trainer uses in place of LPIPS)."""
    per = (rec - target).abs().mean(dim=(1, 2, 3))
    per = per + (torch.diff(rec, dim=3) - torch.diff(target, dim=3)).abs().mean(dim=(1, 2, 3))
    per = per + (torch.diff(rec, dim=2) - torch.diff(target, dim=2)).abs().mean(dim=(1, 2, 3))
    return per.sum()


def _quarter(img: torch.Tensor, part: int) -> torch.Tensor:
    half = img.shape[2] // 2
    rows = slice(0, half) if part in (0, 1) else slice(half, None)
    cols = slice(0, half) if part in (0, 2) else slice(half, None)
    return img[:, :, rows, cols]


class FastGANReference:
    """One iteration the way FastGAN-pytorch's train.py runs it (see the module docstring)."""

    def __init__(self, setup: dict, dataset: gan_core.ImageDataset, seed: int = 0):
        spec = get_arch("fastgan")
        self.cfg = spec.config_cls(image_size=dataset.size, channels=dataset.channels,
                                   **setup["fastgan"])
        torch.manual_seed(seed)
        parts = spec.build(self.cfg)
        self.netG, self.netD = parts["G"].train(), parts["D"].train()
        x = dataset.images.float().div(127.5).sub(1.0)
        self.loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x),
                                                  batch_size=setup["batch"], shuffle=True,
                                                  drop_last=True, num_workers=0)
        self.batches = iter(self.loader)
        self.optimizerG = torch.optim.Adam(self.netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.optimizerD = torch.optim.Adam(self.netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.avg_param_G = [p.detach().clone() for p in self.netG.parameters()]
        self.nz = self.cfg.latent_dim
        self.first_losses: list[dict[str, float]] = []

    def next_batch(self) -> torch.Tensor:
        try:
            return next(self.batches)[0]
        except StopIteration:
            self.batches = iter(self.loader)
            return next(self.batches)[0]

    def _train_d_real(self, real: torch.Tensor) -> tuple[float, torch.Tensor]:
        part = random.randint(0, 3)
        pred, (rec_all, rec_small, rec_part) = self.netD(real, "real", part=part)
        adv = F.relu(torch.rand_like(pred) * 0.2 + 0.8 - pred).mean()
        rec = (_plain_recon(rec_all, F.interpolate(real, rec_all.shape[2]))
               + _plain_recon(rec_small, F.interpolate(real, rec_small.shape[2]))
               + _plain_recon(rec_part, F.interpolate(_quarter(real, part), rec_part.shape[2])))
        (adv + rec).backward()
        return pred.mean().item(), (adv + rec).detach()

    def iteration(self) -> None:
        real = self.next_batch()
        noise = torch.Tensor(real.size(0), self.nz).normal_(0, 1)
        fake_images = self.netG(noise)
        real = _plain_diffaugment(real)
        fake_images = [_plain_diffaugment(f) for f in fake_images]

        self.netD.zero_grad()
        err_dr, err_real = self._train_d_real(real)
        pred = self.netD([f.detach() for f in fake_images], "fake")
        err_fake = F.relu(torch.rand_like(pred) * 0.2 + 0.8 + pred).mean()
        err_fake.backward()
        self.optimizerD.step()

        self.netG.zero_grad()
        err_g = -self.netD(fake_images, "fake").mean()
        err_g.backward()
        self.optimizerG.step()
        with torch.no_grad():
            for p, avg_p in zip(self.netG.parameters(), self.avg_param_G):
                avg_p.mul_(0.999).add_(0.001 * p.data)
        if len(self.first_losses) < 2:
            self.first_losses.append({"loss_d_with_recon": float(err_real) + err_fake.item(),
                                      "loss_g": err_g.item(), "d_real_mean": err_dr})

    def timed(self, n: int) -> float:
        t = time.perf_counter()
        for _ in range(n):
            self.iteration()
        return time.perf_counter() - t


class _DiscriminatorCall(nn.Module):
    """D called with a fixed label, so forward_flops_per_image can count one kind of pass."""

    def __init__(self, netD: nn.Module, label: str):
        super().__init__()
        self.netD, self.label = netD, label

    def forward(self, x: torch.Tensor):
        return self.netD(x, self.label, part=0)


def bench_fastgan(arch: str, s: dict, n: int, warm: int, args) -> dict:
    batch, size = s["batch"], s["size"]
    t = time.perf_counter()
    ds = gan_core.open_dataset("builtin:mondrian", size, channels=3, count=s["count"])
    t_data = time.perf_counter() - t
    ref = FastGANReference(s, ds)
    t = time.perf_counter()
    ours = OurLoop(arch, ds, batch, args.compile, args.channels_last, model=s["fastgan"],
                   augment=s["augment"])
    tr = ours.trainer
    same_init = all(torch.equal(a, b) for mine, theirs in ((tr.G, ref.netG), (tr.D, ref.netD))
                    for a, b in zip(mine.state_dict().values(), theirs.state_dict().values()))
    if not same_init:
        raise RuntimeError("the reference and our trainer start from different weights")
    ref.timed(warm)
    t_setup = time.perf_counter() - t
    t = time.perf_counter()
    ours.timed(warm)
    t_warm_ours = time.perf_counter() - t

    g_copy = get_arch("fastgan").build(ref.cfg)  # FLOPs counted on fresh copies
    z = torch.randn(2, ref.cfg.latent_dim)
    x = torch.rand(2, 3, size, size) * 2 - 1
    gf = forward_flops_per_image(g_copy["G"], z)
    dr = forward_flops_per_image(_DiscriminatorCall(g_copy["D"], "real"), x)
    df = forward_flops_per_image(_DiscriminatorCall(g_copy["D"], "fake"), x)
    flops_iter = batch * (3 * gf + 3 * dr + 6 * df)

    timing = timed_reps(arch, ref, ours, batch, n, args.reps)
    return {
        "arch": arch, "image_size": size, "channels": 3, "batch": batch,
        "fastgan": dict(s["fastgan"]), "augment": s["augment"], "dataset_count": s["count"],
        "iters_per_rep": n, "reps": args.reps, "warmup_iters": warm,
        "ours_first_iters_seconds": round(t_warm_ours, 2),
        "setup_seconds": round(t_setup, 2), "data_render_seconds": round(t_data, 2),
        **timing,
        "g_forward_gflop_per_image": gf / 1e9, "d_forward_gflop_per_image": df / 1e9,
        "d_real_forward_gflop_per_image": dr / 1e9,
        "gflop_per_iteration": flops_iter / 1e9,
        "goal_ratio": s["goal_ratio"], "goal_fraction_of_matmul": s["goal_fraction"],
        "same_initial_weights": same_init,
        "first_iterations": {"reference": ref.first_losses,
                             "ours": ours.losses[:2],
                             "note": "random draws differ (global RNG vs the trainer's "
                                     "generator): same magnitude expected, not equal values"},
        "options": {"compile": args.compile, "channels_last": args.channels_last,
                    "channels_last_used": tr.channels_last, "ema_decay": ours.cfg.ema_decay,
                    "preview_every": 0, "checkpoint_every": 0,
                    "callbacks": ["on_step", "check_stop"], "flip": ds.flip},
    }


_STYLE_SOURCES: tuple | None = None


def style_sources():
    """The content and style CropSources, rendered once per process."""
    global _STYLE_SOURCES
    if _STYLE_SOURCES is None:
        d = STYLE_DATA
        _STYLE_SOURCES = (
            gan_core.open_crop_source(d["content"], max_side=d["max_side"], count=d["content_count"]),
            gan_core.open_crop_source(d["style"], max_side=d["max_side"], count=d["style_count"]))
    return _STYLE_SOURCES


# ---------------------------------------------------------------- the benchmark
def timed_reps(arch: str, ref, ours, batch: int, n: int, reps: int) -> dict:
    """Interleaved reps of n iterations (reference first on even reps, ours first on odd);
    the per-rep images/s and ratios and their medians, as the result JSON records them."""
    ref_ips, our_ips, ratios = [], [], []
    for rep in range(reps):
        order = (ref, ours) if rep % 2 == 0 else (ours, ref)
        secs = {id(loop): loop.timed(n) for loop in order}
        r, o = batch * n / secs[id(ref)], batch * n / secs[id(ours)]
        ref_ips.append(r), our_ips.append(o), ratios.append(o / r)
        print(f"  {arch} rep {rep}: reference {_ips(r, 8)}  ours {_ips(o, 8)} images/s  "
              f"({o / r:.2f}x)", flush=True)
    return {"reference_images_per_s": ref_ips, "ours_images_per_s": our_ips, "ratios": ratios,
            "reference_median": statistics.median(ref_ips),
            "ours_median": statistics.median(our_ips), "ratio_median": statistics.median(ratios)}


def bench_arch(arch: str, args) -> dict:
    s = SETUPS[arch]
    n, warm = ITERS[arch][2:] if args.quick else ITERS[arch][:2]
    n = args.iters or n
    batch = s["batch"]
    if "style" in s:
        return bench_cyclegan(arch, s, n, warm, args)
    if "fastgan" in s:
        return bench_fastgan(arch, s, n, warm, args)
    ds = gan_core.open_dataset("builtin:mondrian", s["size"], channels=s["channels"])
    ref = ReferenceLoop(arch, ds, batch)
    t = time.perf_counter()
    ours = OurLoop(arch, ds, batch, args.compile, args.channels_last)
    ref.timed(warm)
    t_setup = time.perf_counter() - t
    t = time.perf_counter()
    ours.timed(warm)
    t_warm_ours = time.perf_counter() - t

    z = torch.randn(2, ref.cfg.latent_dim)
    gf = forward_flops_per_image(ref.netG, z)
    df = forward_flops_per_image(ref.netD, ref.netG.eval()(z).detach())
    ref.netG.train()
    flops_iter = batch * (3 * gf + 9 * df)

    timing = timed_reps(arch, ref, ours, batch, n, args.reps)
    return {
        "arch": arch, "image_size": s["size"], "channels": s["channels"], "batch": batch,
        "iters_per_rep": n, "reps": args.reps, "warmup_iters": warm,
        "ours_first_iters_seconds": round(t_warm_ours, 2),
        "setup_seconds": round(t_setup, 2),
        **timing,
        "g_forward_gflop_per_image": gf / 1e9, "d_forward_gflop_per_image": df / 1e9,
        "gflop_per_iteration": flops_iter / 1e9,
        "goal_ratio": s["goal_ratio"], "goal_fraction_of_matmul": s["goal_fraction"],
        "options": {"compile": args.compile, "channels_last": args.channels_last,
                    "channels_last_used": ours.trainer.channels_last,
                    "ema_decay": ours.cfg.ema_decay, "preview_every": 0, "checkpoint_every": 0,
                    "callbacks": ["on_step", "check_stop"], "flip": ds.flip},
    }


def bench_cyclegan(arch: str, s: dict, n: int, warm: int, args) -> dict:
    batch, size = s["batch"], s["size"]
    t = time.perf_counter()
    content, style = style_sources()
    t_data = time.perf_counter() - t
    ref = CycleGANReference(s, content, style)
    t = time.perf_counter()
    ours = OurStyleLoop(s, content, style, args.channels_last)
    nets = ours.trainer.nets
    same_init = all(
        torch.equal(a, b)
        for mine, theirs in ((nets["G"], ref.g_ab), (nets["G_BA"], ref.g_ba),
                             (nets["D"], ref.d_b), (nets["D_A"], ref.d_a))
        for a, b in zip(mine.state_dict().values(), theirs.state_dict().values()))
    if not same_init:
        raise RuntimeError("the reference and our trainer start from different weights")
    ref.timed(warm)
    t_setup = time.perf_counter() - t
    t = time.perf_counter()
    ours.timed(warm)
    t_warm_ours = time.perf_counter() - t
    # The first iterations see the same crops and weights on both sides (the pools pass fakes
    # through while they fill): their losses should agree up to float rounding (and, after the
    # first step, fused vs plain Adam).
    first = [{"reference": {"loss_g": float(g), "loss_d": float(d)},
              "ours": {"loss_g": o["loss_g"], "loss_d": o["loss_d"]}}
             for (g, d), o in zip(ref.first_losses, ours.losses)]

    # FLOPs (see the module docstring): 6 G passes and 2 frozen-D passes in the G step, 4 D
    # passes in the D step; nominal forward+backward = 3 x forward.
    x = torch.zeros(2, 3, size, size)
    gf = forward_flops_per_image(ref.g_ab, x)
    df = forward_flops_per_image(ref.d_b, x)
    flops_iter = batch * (6 * 3 * gf + 6 * 3 * df)
    flops_exact = batch * (6 * 3 * gf + 4 * 3 * df + 2 * 2 * df)

    timing = timed_reps(arch, ref, ours, batch, n, args.reps)
    return {
        "arch": arch, "image_size": size, "channels": 3, "batch": batch,
        "model": dict(s["style"]), "iters_per_rep": n, "reps": args.reps, "warmup_iters": warm,
        "ours_first_iters_seconds": round(t_warm_ours, 2),
        "setup_seconds": round(t_setup, 2), "data_render_seconds": round(t_data, 2),
        **timing,
        "g_forward_gflop_per_image": gf / 1e9, "d_forward_gflop_per_image": df / 1e9,
        "gflop_per_iteration": flops_iter / 1e9,
        "gflop_per_iteration_frozen_d_exact": flops_exact / 1e9,
        "goal_ratio": s["goal_ratio"], "goal_fraction_of_matmul": s["goal_fraction"],
        "same_initial_weights": same_init, "first_iterations": first,
        "options": {"compile": False, "channels_last": args.channels_last,
                    "channels_last_used": ours.trainer.memory_format == torch.channels_last,
                    "ema_decay": None, "preview_every": 0, "checkpoint_every": 0,
                    "callbacks": ["on_step", "check_stop"], "pool_size": ours.cfg.pool_size,
                    "gan_loss": ours.cfg.gan_loss, "cycle_weight": ours.cfg.cycle_weight,
                    "identity_weight": ours.cfg.identity_weight,
                    "data": {**STYLE_DATA, "content_scale": content.scale,
                             "style_scale": style.scale, "flip": content.flip,
                             "how": "both loops call CropSource.sample on the same sources, "
                                    "each with its own generator seeded 0"}},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="few short reps: a smoke run")
    p.add_argument("--arch", nargs="+", default=DEFAULT_ARCHS, choices=[*SETUPS, "all"],
                   help=f"default: {' '.join(DEFAULT_ARCHS)}; all: {' '.join(SETUPS)}")
    p.add_argument("--reps", type=int, default=None, help="timed reps (default 7, quick 3)")
    p.add_argument("--iters", type=int, default=None, help="iterations per timed chunk")
    p.add_argument("--threads", default="auto",
                   help="torch threads; auto: all cores on a quiet machine, fewer under load")
    p.add_argument("--compile", action="store_true", help="TrainConfig(compile=True) for ours")
    p.add_argument("--channels-last", default="auto", choices=("auto", "on", "off"))
    args = p.parse_args()
    args.reps = args.reps or (3 if args.quick else 7)
    if "all" in args.arch:
        args.arch = list(SETUPS)
    args.arch = list(dict.fromkeys(args.arch))
    if args.compile and any("style" in SETUPS[a] for a in args.arch):
        print("note: --compile applies to dcgan/mlp only (the style trainer has no compile option)")

    threads, why = pick_threads(args.threads)
    torch.set_num_threads(threads)
    info = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu": _cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
        "load_average": os.getloadavg(), "threads_choice": why, "quick": args.quick,
    }
    print(f"torch {info['torch']}, {info['threads']} threads, CPU capability "
          f"{info['cpu_capability']}, {info['cpu']} ({info['cores']} cores), {info['date']}")
    print(f"threads: {why}")
    t_start = time.perf_counter()
    mm = matmul_gflops()
    print(f"fp32 matmul 2048^3: {statistics.median(mm):.1f} GFLOP/s", flush=True)
    results = [bench_arch(a, args) for a in args.arch]
    mm += matmul_gflops()
    mm_med = statistics.median(mm)
    for r in results:
        for who in ("reference", "ours"):
            gflops = r[f"{who}_median"] / r["batch"] * r["gflop_per_iteration"]
            r[f"{who}_gflops"] = gflops
            r[f"{who}_fraction_of_matmul"] = gflops / mm_med
        # The ratio ours would reach running every nominal FLOP at the big-matmul rate.
        r["ratio_at_matmul_rate"] = 1.0 / r["reference_fraction_of_matmul"]
        r["meets_goal"] = r["ratio_median"] >= r["goal_ratio"] and (
            r["goal_fraction_of_matmul"] is None
            or r["ours_fraction_of_matmul"] >= r["goal_fraction_of_matmul"])
    info.update(matmul_gflops=mm, matmul_gflops_median=mm_med,
                peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                seconds=round(time.perf_counter() - t_start, 1))

    print(f"\nfp32 matmul 2048^3: {mm_med:.1f} GFLOP/s (median of {len(mm)}, start and end)")
    head = (f"{'arch':10} {'batch':>5} {'ref img/s':>10} {'ours img/s':>10} {'ratio':>6} {'goal':>5} "
            f"{'GFLOP/it':>9} {'ref GF/s':>9} {'ours GF/s':>9} {'ref %mm':>8} {'ours %mm':>8}  ok")
    print(head + "\n" + "-" * len(head))
    for r in results:
        print(f"{r['arch']:10} {r['batch']:5d} {_ips(r['reference_median'], 10)} {_ips(r['ours_median'], 10)} "
              f"{r['ratio_median']:5.2f}x {r['goal_ratio']:4.1f}x {r['gflop_per_iteration']:9.2f} "
              f"{r['reference_gflops']:9.1f} {r['ours_gflops']:9.1f} "
              f"{100 * r['reference_fraction_of_matmul']:7.1f}% {100 * r['ours_fraction_of_matmul']:7.1f}%"
              f"  {'yes' if r['meets_goal'] else 'NO'}")
    gans = [r for r in results if "model" not in r]
    ema = "" if not gans else "EMA, " if len(gans) == len(results) else "EMA (dcgan/mlp), "
    print(f"options: compile={args.compile}, channels_last={args.channels_last}; {ema}on_step and "
          f"check_stop on; preview and checkpoint off; peak RSS {info['peak_rss_mib']:.0f} MiB; "
          f"{info['seconds']} s")
    for r in results:
        if "model" in r:
            m = r["model"]
            print(f"  {r['arch']}: CycleGAN {r['image_size']} px, ngf {m['ngf']}, ndf {m['ndf']}, "
                  f"{m['n_blocks']} blocks, batch {r['batch']}; no EMA (as the original); both "
                  f"loops sample the same CropSources; same initial weights: "
                  f"{r['same_initial_weights']}; FLOPs nominal 18 Gf + 18 Df per image "
                  f"(Gf {r['g_forward_gflop_per_image']:.2f}, Df {r['d_forward_gflop_per_image']:.2f} "
                  f"GFLOP; {r['gflop_per_iteration_frozen_d_exact']:.2f} GFLOP/it counting the "
                  f"frozen-D backward at 2x)")
            for i, f in enumerate(r["first_iterations"]):
                print(f"  {r['arch']}: iteration {i + 1} loss_G reference "
                      f"{f['reference']['loss_g']:.5f} ours {f['ours']['loss_g']:.5f}; loss_D "
                      f"reference {f['reference']['loss_d']:.5f} ours {f['ours']['loss_d']:.5f}")
    for r in results:
        if "fastgan" in r:
            f = r["first_iterations"]
            print(f"  {r['arch']}: FastGAN {r['image_size']} px, ngf {r['fastgan']['ngf']}, ndf "
                  f"{r['fastgan']['ndf']}, batch {r['batch']}, DiffAugment {r['augment']}; EMA on "
                  f"both sides; same initial weights: {r['same_initial_weights']}; Gf "
                  f"{r['g_forward_gflop_per_image']:.2f}, D real/fake "
                  f"{r['d_real_forward_gflop_per_image']:.2f}/{r['d_forward_gflop_per_image']:.2f}"
                  f" GFLOP per image; first losses (own random draws) reference "
                  f"{[round(x['loss_g'], 3) for x in f['reference']]} loss_G, ours "
                  f"{[round(x['loss_g'], 3) for x in f['ours']]}")
    for r in results:
        print(f"  {r['arch']}: at the 2048^3 matmul rate, the nominal FLOPs of an iteration would "
              f"run {r['ratio_at_matmul_rate']:.2f}x as fast as the reference does")
    for r in results:
        print(f"  {r['arch']}: ours' first {r['warmup_iters']} iterations took "
              f"{r['ours_first_iters_seconds']} s (compile time when --compile)")

    out_dir = os.environ.get("OUT") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "train_throughput.json")
    with open(path, "w") as f:
        json.dump({"machine": info, "results": results}, f, indent=2)
    print(f"wrote {path}")


def _ips(x: float, width: int) -> str:
    """images/s: one decimal, three below 10 images/s (CycleGAN on a CPU runs under 1)."""
    return f"{x:{width}.1f}" if x >= 10 else f"{x:{width}.3f}"


def pick_threads(arg: str) -> tuple[int, str]:
    """An explicit count, or "auto": every core, less one per unit of load average above 0.5
    (on a shared machine two threads with one core busy elsewhere can run 30x slower than one
    thread, as the threads wait for each other at every op)."""
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0]
    if arg != "auto":
        return int(arg), f"{arg} as asked ({cores} cores, load average {load:.2f})"
    n = max(1, cores - max(0, math.ceil(load - 0.5)))
    return n, f"auto: {n} of {cores} cores at load average {load:.2f}"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    main()
