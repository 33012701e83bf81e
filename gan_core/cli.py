"""The command line: `python -m gan_core {datasets,train,train-denoise,train-style,generate,stylize,
denoise,info}`.

It uses only the public API (`import gan_core`), like any other client.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
from pathlib import Path

import torch

import gan_core

DEFAULT_OUT = "gan_atelier_out/dcgan_blobs.safetensors"
DEFAULT_DATA = "builtin:blobs"
DEFAULT_COUNT = 512
# The CLI's defaults are a CPU demo: a few minutes must show real learning. Measured on the
# 2-core dev CPU (400 steps, batch 32, builtin:blobs): the library's DCGAN-paper settings
# (lr 2e-4, widths 64) leave samples grey (mean colour saturation 0.05 vs 0.23 in the data);
# lr 1e-3 with widths 32 reaches 0.23 at twice the speed. The library keeps the paper's values.
QUICK = {"dcgan": {"lr": 1e-3, "width": 32}, "mlp": {"lr": 2e-4, "width": None},
         # FastGAN: the original train.py's size, batch, policy and widths (no CPU shortcut)
         "fastgan": {"lr": 2e-4, "width": None, "size": 256, "batch": 8,
                     "augment": "color,translation"}}


def _add_train_args(p: argparse.ArgumentParser) -> None:
    d = gan_core.TrainConfig()
    # Options that default to None take, with --resume, the resumed run's value (so it
    # follows the same curve); otherwise the default named in their help.
    p.add_argument("--data", default=None,
                   help="builtin:NAME (see `datasets`) or a folder of images (default: "
                        f"{DEFAULT_DATA}, or the resumed run's built-in dataset)")
    p.add_argument("--arch", default=None, choices=gan_core.list_archs("generate", trainable=True),
                   help="architecture (default: dcgan)")
    p.add_argument("--size", type=int, default=None,
                   help="image size in px (default: 28 for mlp, 32 for dcgan, 256 for fastgan: "
                        "256, 512 or 1024)")
    p.add_argument("--steps", type=int, default=2000, help="total training steps (default: %(default)s)")
    p.add_argument("--batch", type=int, default=None,
                   help="batch size (default: 128 for mlp, 32 for dcgan, 8 for fastgan)")
    p.add_argument("--seed", type=int, default=None, help="default: 0")
    p.add_argument("--out", default=DEFAULT_OUT, help="checkpoint file (default: %(default)s)")
    p.add_argument("--resume", default=None,
                   help="continue training from this checkpoint, with its options unless given")
    p.add_argument("--preview-every", type=int, default=None,
                   help="steps between preview grids (0: end only; default: 100)")
    p.add_argument("--checkpoint-every", type=int, default=None,
                   help="steps between checkpoints (0: end only; default: 200)")
    p.add_argument("--preview", default=None, help="sample grid PNG (default: next to --out)")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate of G and D (default: 1e-3 for dcgan, a fast CPU demo "
                        f"setting; {d.lr_g} for mlp and in the Python API)")
    p.add_argument("--width", type=int, default=None,
                   help="base width of G and D, ngf = ndf (dcgan default: 32, the Python API's "
                        "is 64; fastgan: 64)")
    p.add_argument("--loss", default=None, choices=gan_core.LOSSES,
                   help=f"default: {d.loss} (fastgan ignores it: it trains with its own hinge "
                        "loss with random targets)")
    p.add_argument("--r1", type=float, default=None,
                   help="R1 penalty weight gamma (default: 0, off)")
    p.add_argument("--augment", default=None,
                   help=f"DiffAugment policy, comma list of {gan_core.AUGMENTATIONS} "
                        "(default: none; color,translation for fastgan)")
    p.add_argument("--ema", type=float, default=None,
                   help=f"EMA decay of the sampling generator (default: {d.ema_decay})")
    p.add_argument("--count", type=int, default=None,
                   help=f"images drawn from a builtin dataset (default: {DEFAULT_COUNT})")
    p.add_argument("--fit", default="crop", choices=gan_core.FIT_MODES, help="how folder images are fitted")
    p.add_argument("--no-flip", action="store_true", help="disable random horizontal flips")
    p.add_argument("--channels", type=int, choices=(1, 3), default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--compile", action="store_true", help="torch.compile the networks")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")


def _train_config(args: argparse.Namespace,
                  resume: gan_core.GANModel | None) -> gan_core.TrainConfig:
    """The run's options: given flags, else (resuming) the saved run's, else the defaults."""
    saved = resume.resume.train_config if resume is not None and resume.resume is not None else {}
    base = gan_core.TrainConfig.from_dict(saved) if saved else gan_core.TrainConfig()

    def pick(flag: str, field: str, default):
        value = getattr(args, flag)
        if value is not None:
            return value
        return getattr(base, field) if saved else default

    arch = pick("arch", "arch", "dcgan")
    quick = QUICK.get(arch, {})
    size = args.size or (resume.image_size if resume else
                         quick.get("size", 28 if arch == "mlp" else 32))
    width = args.width or quick.get("width")
    model = dict(base.model) if saved else ({"ngf": width, "ndf": width} if width else {})
    return dataclasses.replace(
        base, arch=arch, size=size, steps=args.steps, model=model,
        batch=pick("batch", "batch", quick.get("batch", 128 if arch == "mlp" else 32)),
        lr_g=pick("lr", "lr_g", quick.get("lr", base.lr_g)),
        lr_d=pick("lr", "lr_d", quick.get("lr", base.lr_d)),
        loss=pick("loss", "loss", base.loss), r1_gamma=pick("r1", "r1_gamma", 0.0),
        augment=pick("augment", "augment", quick.get("augment", "")), ema_decay=pick("ema", "ema_decay", base.ema_decay),
        seed=pick("seed", "seed", 0), preview_every=pick("preview_every", "preview_every", 100),
        checkpoint_every=pick("checkpoint_every", "checkpoint_every", 200),
        channels=args.channels if args.channels is not None else (base.channels if saved else None),
        device=args.device, compile=args.compile,
    ).validate()


def _data_spec(args: argparse.Namespace, resume: gan_core.GANModel | None) -> tuple[str, int]:
    """--data and --count, defaulting to the resumed run's built-in dataset."""
    if args.data is not None or resume is None:
        return args.data or DEFAULT_DATA, args.count or DEFAULT_COUNT
    name = str(resume.training.get("dataset", ""))
    if not name.startswith(gan_core.BUILTIN_PREFIX):
        raise ValueError(f"--data is needed to resume this run: it was trained on the folder "
                         f"{name!r}")
    return name, args.count or int(resume.training.get("dataset_size") or DEFAULT_COUNT)


class _StopOnCtrlC:
    """The first Ctrl-C asks the trainer to stop after the current step (it then saves a
    checkpoint that resumes exactly); a second one interrupts at once.

    Under torchrun the workers never see the terminal's Ctrl-C: torchrun forwards the signal it
    got (SIGINT, or SIGTERM from a scheduler) to each of them once, then kills them 30 s later.
    `signals` then includes SIGTERM, and all processes agree to stop after the same step."""

    def __init__(self, signals: tuple[int, ...] = (signal.SIGINT,), announce: bool = True) -> None:
        self.pressed = False
        self.signals = signals
        self.announce = announce
        self._previous: dict[int, object] = {}

    def requested(self) -> bool:
        return self.pressed

    def _handle(self, signum, frame) -> None:
        if self.pressed:
            raise KeyboardInterrupt
        self.pressed = True
        if self.announce:
            print("\nstopping after this step (Ctrl-C again to stop at once)...", file=sys.stderr)

    def __enter__(self) -> "_StopOnCtrlC":
        for sig in self.signals:
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: keep the default behaviour
                pass
        return self

    def __exit__(self, *exc) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}


def _grid_path(args: argparse.Namespace) -> Path:
    return Path(args.preview) if args.preview else Path(args.out).with_suffix(".png")


def _train_with_progress(args: argparse.Namespace, run, total: int, start: int, desc: str,
                         header: str, names: dict[str, str | None] | None = None) -> int:
    """Run `run(callbacks)` with a tqdm bar showing the losses (renamed by `names`; None hides
    one), preview grids written next to --out, and Ctrl-C handling: the first one stops after
    the current step and saves, a second one at once. Returns the exit code.

    In a distributed run (torchrun) only the main process prints and shows the bar (the
    trainer lets only it write files), and SIGTERM is handled like Ctrl-C."""
    from tqdm import tqdm

    grid_path = _grid_path(args)
    names = names or {}
    main = gan_core.is_main_process()
    distributed = gan_core.process_count() > 1
    if main:
        print(header, file=sys.stderr)
    bar = tqdm(total=total, initial=start, desc=desc, unit="step", dynamic_ncols=True,
               disable=not main)

    def on_step(step: int, losses: dict[str, float]) -> None:
        bar.update(1)
        bar.set_postfix({names.get(k, k): f"{v:.2f}" if k == "psnr" else f"{v:.3f}"
                         for k, v in losses.items() if names.get(k, k)}, refresh=False)

    stop = _StopOnCtrlC((signal.SIGINT, signal.SIGTERM) if distributed else (signal.SIGINT,),
                        announce=main)
    callbacks = gan_core.TrainCallbacks(
        on_step=on_step, check_stop=stop.requested,
        on_preview=lambda step, grid: gan_core.save_image(grid, grid_path),
    )
    try:
        with stop:
            model = run(callbacks)
    except KeyboardInterrupt:
        stop.pressed = True  # a second Ctrl-C mid-step: the trainer saved what it had
    finally:
        bar.close()
    if stop.pressed:
        if main:
            print(f"\ninterrupted; {args.out} holds the last completed step. "
                  f"Continue with --resume {args.out}", file=sys.stderr)
        return 130
    if not main:
        return 0
    losses = model.training.get("final_losses", {})
    print(f"saved {args.out} after {model.training['steps']} steps "
          f"({model.training['seconds']} s); preview {grid_path}; final losses "
          + ", ".join(f"{k}={v:.3f}" for k, v in losses.items() if names.get(k, k)))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    # Under torchrun every process runs this; the session joins them into one DDP job (and is
    # a no-op for a plain `python -m gan_core train`).
    with gan_core.distributed_session(args.device):
        resume = gan_core.load(args.resume) if args.resume else None
        cfg = _train_config(args, resume)
        arch, size = cfg.arch, cfg.size
        channels = resume.config.channels if resume else (args.channels or (1 if arch == "mlp" else 3))
        spec, count = _data_spec(args, resume)
        data = gan_core.open_dataset(spec, size, channels=channels, fit=args.fit,
                                     flip=not args.no_flip, seed=cfg.seed, count=count)
        n = gan_core.process_count()
        shared = f"; processes: {n} (batch {cfg.batch // n} each)" if n > 1 else ""
        return _train_with_progress(
            args, lambda cb: gan_core.train(cfg, data, out=args.out, resume=resume, callbacks=cb),
            cfg.steps, resume.resume.step if resume else 0, f"train {arch} {size}px",
            f"data: {data.name} ({len(data)} images, {size}px); device: "
            f"{gan_core.resolve_device(args.device)}; threads: {torch.get_num_threads()}{shared}")


def _refuse_torchrun(command: str) -> None:
    """Only `train` runs data-parallel; other trainers started N times by torchrun would train
    N separate models into the same file."""
    env = os.environ.get("WORLD_SIZE")
    if env not in (None, "", "1"):
        raise ValueError(f"{command} does not run under torchrun (WORLD_SIZE={env}); start it "
                         "as one process (only `train` supports data-parallel training)")


# `train-denoise` defaults: the README's default denoiser, trained in a few CPU minutes on
# procedural pictures with a range of Gaussian noise, so one blind model covers light to heavy
# noise. Measured on the 2-core dev CPU (contiguous layout, before channels_last): 500 steps in
# 200 s; a held-out photo (skimage astronaut crop) goes from 20.8 to 26.5 dB PSNR at sigma 25.
DENOISE_DEFAULTS = {"arch": "unet_denoiser", "data": "builtin:mondrian", "noise": "gaussian:5-50",
                    "size": 64, "steps": 500, "batch": 16, "lr": 1e-3, "width": 16,
                    # README's recommendation (benchmarks/denoise_quality.py: the PatchGAN term
                    # cost 1.6 dB at sigma 25; the noise-level input lets --sigma steer it)
                    "adv_weight": 0.0, "noise_level_input": True, "loss": "l1", "preview_every": 50,
                    "checkpoint_every": 100, "seed": 0}
DENOISE_OUT = "gan_atelier_out/unet_denoiser.safetensors"


def _add_train_denoise_args(p: argparse.ArgumentParser) -> None:
    d = DENOISE_DEFAULTS
    # Options that default to None take, with --resume, the resumed run's value.
    p.add_argument("--data", default=None,
                   help=f"clean images: builtin:NAME or a folder (default: {d['data']}, or the "
                        "resumed run's built-in dataset)")
    p.add_argument("--noise", default=None,
                   help=f"degradation recipe, e.g. gaussian:25, gaussian:5-50, "
                        f"jpeg:10-40,poisson (default: {d['noise']})")
    p.add_argument("--arch", default=None, choices=gan_core.list_archs("denoise"),
                   help=f"architecture (default: {d['arch']})")
    p.add_argument("--size", type=int, default=None, help=f"crop size in px (default: {d['size']})")
    p.add_argument("--steps", type=int, default=d["steps"], help="total steps (default: %(default)s)")
    p.add_argument("--batch", type=int, default=None, help=f"default: {d['batch']}")
    p.add_argument("--seed", type=int, default=None, help="default: 0")
    p.add_argument("--out", default=DENOISE_OUT, help="checkpoint file (default: %(default)s)")
    p.add_argument("--resume", default=None,
                   help="continue training from this checkpoint, with its options unless given")
    p.add_argument("--adv-weight", type=float, default=None,
                   help=f"weight of the PatchGAN adversarial loss; 0 = plain regression "
                        f"(default: {d['adv_weight']})")
    p.add_argument("--loss", default=None, choices=gan_core.RECON_LOSSES,
                   help=f"reconstruction loss (default: {d['loss']})")
    p.add_argument("--lr", type=float, default=None, help=f"generator learning rate (default: {d['lr']})")
    p.add_argument("--width", type=int, default=None,
                   help=f"unet_denoiser base width (default: {d['width']})")
    p.add_argument("--noise-level-input", action=argparse.BooleanOptionalAction,
                   default=d["noise_level_input"],
                   help="unet_denoiser: condition on a noise-level map, which denoise --sigma "
                        "feeds (default: on; --no-noise-level-input trains a blind model)")
    p.add_argument("--preview-every", type=int, default=None,
                   help=f"steps between preview grids (0: end only; default: {d['preview_every']})")
    p.add_argument("--checkpoint-every", type=int, default=None,
                   help=f"steps between checkpoints (0: end only; default: {d['checkpoint_every']})")
    p.add_argument("--preview", default=None,
                   help="(noisy | denoised | clean) grid PNG (default: next to --out)")
    p.add_argument("--count", type=int, default=None,
                   help=f"images drawn from a builtin dataset (default: {DEFAULT_COUNT})")
    p.add_argument("--fit", default="crop", choices=gan_core.FIT_MODES, help="how folder images are fitted")
    p.add_argument("--channels", type=int, choices=(1, 3), default=None, help="default: 3")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")


def _denoise_config(args: argparse.Namespace,
                    resume: gan_core.GANModel | None) -> gan_core.DenoiseTrainConfig:
    saved = resume.resume.train_config if resume is not None and resume.resume is not None else {}
    base = gan_core.DenoiseTrainConfig.from_dict(saved) if saved else gan_core.DenoiseTrainConfig()
    d = DENOISE_DEFAULTS

    def pick(flag: str, field: str, default):
        value = getattr(args, flag)
        if value is not None:
            return value
        return getattr(base, field) if saved else default

    arch = pick("arch", "arch", d["arch"])
    model = dict(base.model) if saved else {}
    if not saved and arch == "unet_denoiser":
        model = {"width": args.width or d["width"], "noise_level_input": args.noise_level_input}
    return dataclasses.replace(
        base, arch=arch, size=pick("size", "size", d["size"]), steps=args.steps, model=model,
        noise=pick("noise", "noise", d["noise"]), batch=pick("batch", "batch", d["batch"]),
        lr_g=pick("lr", "lr_g", d["lr"]), loss=pick("loss", "loss", d["loss"]),
        # dncnn / drunet have no discriminator: plain regression unless asked otherwise
        adv_weight=pick("adv_weight", "adv_weight", d["adv_weight"] if arch == d["arch"] else 0.0),
        seed=pick("seed", "seed", d["seed"]),
        preview_every=pick("preview_every", "preview_every", d["preview_every"]),
        checkpoint_every=pick("checkpoint_every", "checkpoint_every", d["checkpoint_every"]),
        channels=args.channels if args.channels is not None else (base.channels if saved else None),
        device=args.device,
    ).validate()


def cmd_train_denoise(args: argparse.Namespace) -> int:
    _refuse_torchrun("train-denoise")
    resume = gan_core.load(args.resume) if args.resume else None
    cfg = _denoise_config(args, resume)
    if args.data is None and resume is None:
        args.data = DENOISE_DEFAULTS["data"]
    spec, count = _data_spec(args, resume)
    data = gan_core.open_dataset(spec, cfg.size, channels=cfg.channels or 3, fit=args.fit,
                                 seed=cfg.seed, count=count)
    return _train_with_progress(
        args, lambda cb: gan_core.train_denoiser(cfg, data, out=args.out, resume=resume,
                                                 callbacks=cb),
        cfg.steps, resume.resume.step if resume else 0,
        f"train-denoise {cfg.arch} {cfg.size}px",
        f"data: {data.name} ({len(data)} images, {data.size}px); noise: {cfg.noise}; device: "
        f"{gan_core.resolve_device(args.device)}; threads: {torch.get_num_threads()}",
        names={"loss_rec": "rec", "psnr": "psnr", "loss_d": "d", "loss_adv": "adv"})


# `train-style` defaults: a CPU demo that needs no files. Content: procedural pictures; style:
# one procedural brush-stroke painting, cut into crops (single-painting mode). The network is
# the original's 6-block ResNet CycleGAN slimmed to ngf 16 / ndf 32 and trained at 96 px so
# that a few hundred steps fit in minutes on a laptop CPU (measured in README).
STYLE_DEFAULTS = {"content": "builtin:blobs", "style": "builtin:painting", "size": 96,
                  "steps": 600, "batch": 1, "ngf": 16, "ndf": 32, "blocks": 6,
                  "preview_every": 50, "checkpoint_every": 100, "seed": 0}
STYLE_OUT = "gan_atelier_out/cyclegan_style.safetensors"


def _add_train_style_args(p: argparse.ArgumentParser) -> None:
    d, c = STYLE_DEFAULTS, gan_core.StyleTrainConfig()
    p.add_argument("--content", default=None,
                   help=f"content pictures (domain A): builtin:NAME, a folder or an image file "
                        f"(default: {d['content']})")
    p.add_argument("--style", default=None,
                   help=f"style pictures (domain B): a folder, one painting (an image file) or "
                        f"builtin:NAME (default: {d['style']})")
    p.add_argument("--size", type=int, default=None, help=f"crop size in px, a multiple of 4 "
                                                          f"(default: {d['size']})")
    p.add_argument("--steps", type=int, default=d["steps"], help="total steps (default: %(default)s)")
    p.add_argument("--batch", type=int, default=None, help=f"default: {d['batch']}")
    p.add_argument("--seed", type=int, default=None, help="default: 0")
    p.add_argument("--out", default=STYLE_OUT, help="checkpoint file (default: %(default)s)")
    p.add_argument("--resume", default=None,
                   help="continue training from this checkpoint, with its options unless given")
    p.add_argument("--ngf", type=int, default=None, help=f"generator width (default: {d['ngf']}; "
                                                         "the public models use 64)")
    p.add_argument("--ndf", type=int, default=None, help=f"discriminator width (default: {d['ndf']})")
    p.add_argument("--blocks", type=int, default=None,
                   help=f"residual blocks (default: {d['blocks']}; 9 for 256 px training)")
    p.add_argument("--lr", type=float, default=None, help=f"Adam learning rate (default: {c.lr})")
    p.add_argument("--cycle-weight", type=float, default=None,
                   help=f"weight of the cycle-consistency loss (default: {c.cycle_weight})")
    p.add_argument("--identity-weight", type=float, default=None,
                   help=f"identity loss weight, times the cycle weight (default: {c.identity_weight})")
    p.add_argument("--pool", type=int, default=None, help=f"image pool size (default: {c.pool_size})")
    p.add_argument("--augment", default=None,
                   help=f"DiffAugment policy for the discriminators, e.g. color,translation "
                        f"(default: none)")
    p.add_argument("--content-count", type=int, default=64,
                   help="pictures drawn from a builtin content dataset (default: %(default)s)")
    p.add_argument("--style-count", type=int, default=1,
                   help="paintings drawn from a builtin style dataset (default: %(default)s)")
    p.add_argument("--max-side", type=int, default=1024,
                   help="pictures larger than this are downscaled before cropping "
                        "(default: %(default)s)")
    p.add_argument("--preview-every", type=int, default=None,
                   help=f"steps between preview grids (0: end only; default: {d['preview_every']})")
    p.add_argument("--checkpoint-every", type=int, default=None,
                   help=f"steps between checkpoints (0: end only; default: {d['checkpoint_every']})")
    p.add_argument("--preview", default=None,
                   help="(content | stylized) grid PNG (default: next to --out)")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")


def _style_config(args: argparse.Namespace,
                  resume: gan_core.GANModel | None) -> gan_core.StyleTrainConfig:
    saved = resume.resume.train_config if resume is not None and resume.resume is not None else {}
    base = gan_core.StyleTrainConfig.from_dict(saved) if saved else gan_core.StyleTrainConfig()
    d = STYLE_DEFAULTS

    def pick(flag: str, field: str, default):
        value = getattr(args, flag)
        if value is not None:
            return value
        return getattr(base, field) if saved else default

    model = dict(base.model) if saved else {
        "ngf": args.ngf or d["ngf"], "ndf": args.ndf or d["ndf"],
        "n_blocks": args.blocks if args.blocks is not None else d["blocks"]}
    return dataclasses.replace(
        base, size=pick("size", "size", d["size"]), steps=args.steps, model=model,
        batch=pick("batch", "batch", d["batch"]), lr=pick("lr", "lr", base.lr),
        cycle_weight=pick("cycle_weight", "cycle_weight", base.cycle_weight),
        identity_weight=pick("identity_weight", "identity_weight", base.identity_weight),
        pool_size=pick("pool", "pool_size", base.pool_size),
        augment=pick("augment", "augment", base.augment), seed=pick("seed", "seed", d["seed"]),
        preview_every=pick("preview_every", "preview_every", d["preview_every"]),
        checkpoint_every=pick("checkpoint_every", "checkpoint_every", d["checkpoint_every"]),
        device=args.device,
    ).validate()


def _style_source(args: argparse.Namespace, side: str, resume: gan_core.GANModel | None):
    """--content / --style as a CropSource, defaulting to the resumed run's built-in set."""
    spec = getattr(args, side)
    if spec is None and resume is not None:
        spec = str(resume.training.get(side, ""))
        if not spec.startswith(gan_core.BUILTIN_PREFIX):
            raise ValueError(f"--{side} is needed to resume this run: it was trained on "
                             f"{spec!r}, not a built-in set")
    spec = spec or STYLE_DEFAULTS[side]
    count = args.content_count if side == "content" else args.style_count
    return gan_core.open_crop_source(spec, max_side=args.max_side, count=count,
                                     what=f"--{side}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def cmd_train_style(args: argparse.Namespace) -> int:
    _refuse_torchrun("train-style")
    resume = gan_core.load(args.resume) if args.resume else None
    cfg = _style_config(args, resume)
    content, style = _style_source(args, "content", resume), _style_source(args, "style", resume)
    return _train_with_progress(
        args, lambda cb: gan_core.train_style(cfg, content, style, out=args.out, resume=resume,
                                              callbacks=cb),
        cfg.steps, resume.resume.step if resume else 0, f"train-style {cfg.size}px",
        f"content: {content.name} ({_count(len(content), 'picture')}); style: {style.name} "
        f"({_count(len(style), 'picture')}, crops at {style.scale[0]:.2f}-{style.scale[1]:.2f} of the "
        f"short side); device: {gan_core.resolve_device(args.device)}; threads: "
        f"{torch.get_num_threads()}",
        names={"loss_g": "g", "loss_adv": "adv", "loss_cycle": "cyc", "loss_idt": "idt",
               "loss_d": "d", "lr": None})


def cmd_generate(args: argparse.Namespace) -> int:
    model = gan_core.load(args.model)
    seeds = gan_core.parse_seeds(args.seeds)
    images = model.generate(seeds, truncation=args.truncation, device=args.device)
    out = Path(args.out)
    if out.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"):
        gan_core.save_image(gan_core.make_grid(images, nrow=args.nrow), out)
        print(f"wrote a grid of {len(seeds)} images to {out}")
    else:
        out.mkdir(parents=True, exist_ok=True)
        for seed, img in zip(seeds, images):
            gan_core.save_image(img, out / f"seed{seed:05d}.png")
        print(f"wrote {len(seeds)} images to {out}/")
    return 0


def _input_files(inputs: list[str]) -> list[Path]:
    """Files and folders given on the command line -> the image files they name."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files.extend(gan_core.list_image_files(path))
        elif path.is_file():
            files.append(path)
        else:
            raise ValueError(f"input {item!r} is neither an image file nor a folder")
    if not files:
        raise ValueError(f"no image files found in {', '.join(inputs)}")
    return files


def _image_to_image(args: argparse.Namespace, task: str, verb: str, apply) -> int:
    """Load a `task` model, run `apply(model, IMAGE)` on every input file, one PNG each."""
    from tqdm import tqdm

    model = gan_core.load(args.model)
    if model.task != task:
        raise ValueError(f"{args.model} is a {model.task!r} model ({model.arch}), not a {task} model")
    if args.device:
        model.to(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files = _input_files(args.inputs)
    skipped = []
    for path in tqdm(files, desc=f"{verb} ({model.arch})", unit="image"):
        try:
            image = gan_core.read_image(path).unsqueeze(0)
        except (gan_core.GanAtelierError, OSError) as exc:
            # One bad file (empty, truncated, over the pixel limit) must not stop the others.
            print(f"error: skipped {path}: {exc}", file=sys.stderr)
            skipped.append(path)
            continue
        result = apply(model, image)
        del image
        gan_core.save_image(result, out / f"{path.stem}.png")
    if len(skipped) == len(files):
        raise gan_core.ImageError(f"none of the {len(files)} input images could be read")
    print(f"wrote the {verb}d images to {out}/")
    if skipped:
        print(f"error: {len(skipped)} of {len(files)} input images could not be read and were "
              f"skipped", file=sys.stderr)
        return 1
    return 0


def cmd_stylize(args: argparse.Namespace) -> int:
    return _image_to_image(args, "style", "stylize", lambda m, img: m.stylize(
        img, strength=args.strength, tile=args.tile, direction=args.direction))


def cmd_denoise(args: argparse.Namespace) -> int:
    return _image_to_image(args, "denoise", "denoise", lambda m, img: m.denoise(
        img, strength=args.strength, sigma=args.sigma, tile=args.tile))


def _generator(path: str, device: str | None) -> gan_core.GANModel:
    model = gan_core.load(path)
    if model.task != "generate":
        raise ValueError(f"{path} is a {model.task!r} model ({model.arch}), not a generator")
    if device:
        model.to(device)
    return model


def cmd_walk(args: argparse.Namespace) -> int:
    """A walk through latent space as a looping GIF, or as PNG frames in a folder."""
    from tqdm import tqdm

    out = Path(args.out)
    as_gif = out.suffix.lower() == ".gif" and not args.out.endswith(("/", "\\"))
    if not as_gif and out.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp", ".apng"):
        raise ValueError(f"--out {args.out}: give a .gif file, or a folder for frame_0000.png ...")
    model = _generator(args.model, args.device)
    bar = tqdm(total=args.frames, desc=f"walk {model.arch}", unit="frame", dynamic_ncols=True)
    try:
        result = gan_core.walk(
            model, gan_core.parse_seeds(args.seeds), args.frames, mode=args.mode,
            easing=args.easing, loop=not args.no_loop, truncation=args.truncation,
            callbacks=gan_core.TrainCallbacks(on_step=lambda done, _: bar.update(done - bar.n)))
    finally:
        bar.close()
    fps = args.fps or result.fps
    pictures = [gan_core.tensor_to_pil(frame) for frame in result.images]
    if as_gif:
        out.parent.mkdir(parents=True, exist_ok=True)
        extra = {"loop": 0} if not args.no_loop else {}  # 0 = repeat forever
        pictures[0].save(out, save_all=True, append_images=pictures[1:],
                         duration=max(20, round(1000 / fps)), **extra)
        print(f"wrote {out}: {len(pictures)} frames at {fps:g} fps")
    else:
        out.mkdir(parents=True, exist_ok=True)
        for i, picture in enumerate(pictures):
            picture.save(out / f"frame_{i:04d}.png")
        print(f"wrote {len(pictures)} frames to {out}/ (frame_0000.png ...; play at {fps:g} fps)")
    return 0


def cmd_invert(args: argparse.Namespace) -> int:
    """Invert one picture: reconstruction, latent and variations into --out; Ctrl-C stops
    after the current step and still writes the best latent found so far."""
    from tqdm import tqdm

    if args.variations > 0 and not 0.0 <= args.strength <= 1.0:  # before the long search
        raise ValueError(f"--strength must be between 0 and 1, got {args.strength}")
    model = _generator(args.model, args.device)
    image = gan_core.read_image(args.image).unsqueeze(0)
    out = Path(args.out)
    bar = tqdm(total=args.steps, desc=f"invert ({model.arch})", unit="step", dynamic_ncols=True)

    def on_step(step: int, losses: dict[str, float]) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{losses['loss']:.4f}", psnr=f"{losses['psnr']:.2f}", refresh=False)

    stop = _StopOnCtrlC()
    try:
        with stop:
            result = gan_core.invert(model, image, steps=args.steps, space=args.space, lr=args.lr,
                                     seed=args.seed, callbacks=gan_core.TrainCallbacks(
                                         on_step=on_step, check_stop=stop.requested))
    except KeyboardInterrupt:  # a second Ctrl-C: nothing worth writing yet
        bar.close()
        print("\ninterrupted", file=sys.stderr)
        return 130
    bar.close()
    out.mkdir(parents=True, exist_ok=True)
    gan_core.save_image(result.image, out / "reconstruction.png")
    gan_core.save_image(result.target, out / "target.png")
    result.latent.save(out / "latent.safetensors")
    if args.variations > 0:
        near = gan_core.variations(model, result.latent, args.variations, args.strength,
                                   seed=args.seed)
        for i, img in enumerate(gan_core.generate_from_latent(model, near)):
            gan_core.save_image(img, out / f"variation_{i:02d}.png")
    print(f"PSNR {result.psnr:.2f} dB after {result.steps} steps ({result.latent.space} space); "
          f"wrote reconstruction.png, target.png, latent.safetensors"
          f"{f' and {args.variations} variations' if args.variations > 0 else ''} to {out}/")
    if result.stopped:
        print("stopped early by Ctrl-C; the files hold the best latent found so far",
              file=sys.stderr)
        return 130
    return 0


def _add_latent_commands(sub) -> None:
    p = sub.add_parser("walk", help="animate a looping walk through latent space between seeds "
                                    "(GIF, or PNG frames)")
    p.add_argument("model")
    p.add_argument("--seeds", default="0,1,2", help="stops in order, e.g. 1,5,9 (default: %(default)s)")
    p.add_argument("--frames", type=int, default=48, help="total frames (default: %(default)s)")
    p.add_argument("--out", required=True,
                   help="walk.gif (an animated GIF), or a folder (DIR/ or a path without .gif) "
                        "for frame_0000.png ...")
    p.add_argument("--fps", type=float, default=None,
                   help="frame rate (default: about two seconds per move between seeds)")
    p.add_argument("--mode", default="auto", choices=gan_core.INTERPOLATION_MODES,
                   help="auto: spherical in z, linear in w for StyleGAN2 (default)")
    p.add_argument("--easing", default="linear", choices=list(gan_core.EASINGS))
    p.add_argument("--no-loop", action="store_true", help="end on the last seed instead of "
                                                          "returning to the first")
    p.add_argument("--truncation", type=float, default=1.0)
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_walk)
    p = sub.add_parser("invert", help="find the latent of an image (GAN inversion): writes the "
                                      "reconstruction, the latent and variations")
    p.add_argument("model")
    p.add_argument("image", help="the picture to reproduce (fitted to the model's size)")
    p.add_argument("--steps", type=int, default=300, help="optimisation steps (default: %(default)s)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--space", default="auto", choices=gan_core.INVERT_SPACES,
                   help="z, w, w+ or auto (w for StyleGAN2, else z)")
    p.add_argument("--seed", type=int, default=0, help="seeds the starting candidates and the "
                                                       "variations (default: 0)")
    p.add_argument("--lr", type=float, default=0.05, help="Adam step size (default: %(default)s)")
    p.add_argument("--variations", type=int, default=4, help="variations to write (default: %(default)s)")
    p.add_argument("--strength", type=float, default=0.3,
                   help="how far variations move toward a random latent, 0..1 (default: %(default)s)")
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_invert)


def cmd_info(args: argparse.Namespace) -> int:
    print(json.dumps(gan_core.load(args.model).info(), indent=2, sort_keys=True))
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    print("\n".join(gan_core.BUILTIN_DATASETS))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gan_core",
                                     description="Train GANs and generate images with GAN Atelier.")
    parser.add_argument("--version", action="version", version=gan_core.__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("datasets", help="list the built-in datasets").set_defaults(func=cmd_datasets)
    p = sub.add_parser("train", help="train a GAN (defaults: dcgan on builtin:mondrian, 32 px, CPU-sized)")
    _add_train_args(p)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("train-denoise", help="train a denoiser on clean images with synthetic "
                                             "noise (default: unet_denoiser, CPU-sized)")
    _add_train_denoise_args(p)
    p.set_defaults(func=cmd_train_denoise)
    p = sub.add_parser("train-style", help="train a CycleGAN style from paintings or one "
                                           "painting (default: built-in painting, CPU-sized)")
    _add_train_style_args(p)
    p.set_defaults(func=cmd_train_style)
    p = sub.add_parser("generate", help="generate images from a checkpoint")
    p.add_argument("model")
    p.add_argument("--seeds", default="0-15", help="e.g. 0-15 or 1,5,9-12 (default: %(default)s)")
    p.add_argument("--out", required=True, help="a .png/.jpg grid file, or a folder for one file per seed")
    p.add_argument("--truncation", type=float, default=1.0)
    p.add_argument("--nrow", type=int, default=None, help="images per grid row")
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_generate)
    p = sub.add_parser("stylize", help="apply a style model (ours, CycleGAN, pix2pix, "
                                       "fast-neural-style) to images")
    p.add_argument("model", help="a .safetensors or public .pth style model")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    p.add_argument("--out", required=True, help="output folder (one PNG per input)")
    p.add_argument("--strength", type=float, default=1.0, help="blend with the input (0..1)")
    p.add_argument("--tile", type=int, default=None, help="tile size in px for large images")
    p.add_argument("--direction", default="A->B", choices=gan_core.DIRECTIONS,
                   help="A->B (content -> style, default) or B->A for CycleGANs trained here")
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_stylize)
    p = sub.add_parser("denoise", help="denoise images with a DnCNN / DRUNet model")
    p.add_argument("model", help="a .safetensors or public .pth denoising model")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    p.add_argument("--out", required=True, help="output folder (one PNG per input)")
    p.add_argument("--sigma", type=float, default=None,
                   help="noise level in 0..255 units (models that take one; default 15)")
    p.add_argument("--strength", type=float, default=1.0, help="blend with the input (0..1)")
    p.add_argument("--tile", type=int, default=None, help="tile size in px for large images")
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_denoise)
    _add_latent_commands(sub)
    p = sub.add_parser("info", help="print a checkpoint's metadata")
    p.add_argument("model")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    try:
        return args.func(args)
    except (gan_core.GanAtelierError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
