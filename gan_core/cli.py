"""The command line: `python -m gan_core {datasets,train,generate,info}`.

It uses only the public API (`import gan_core`), like any other client.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

import gan_core

DEFAULT_OUT = "gan_atelier_out/dcgan_mondrian.safetensors"


def _add_train_args(p: argparse.ArgumentParser) -> None:
    d = gan_core.TrainConfig()
    p.add_argument("--data", default="builtin:mondrian",
                   help="builtin:NAME (see `datasets`) or a folder of images (default: %(default)s)")
    p.add_argument("--arch", default="dcgan", choices=gan_core.list_archs("generate"))
    p.add_argument("--size", type=int, default=None,
                   help="image size in px (default: 28 for mlp, 32 for dcgan)")
    p.add_argument("--steps", type=int, default=600, help="total training steps (default: %(default)s)")
    p.add_argument("--batch", type=int, default=None, help="batch size (default: 128 for mlp, 32 for dcgan)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=DEFAULT_OUT, help="checkpoint file (default: %(default)s)")
    p.add_argument("--resume", default=None, help="continue training from this checkpoint")
    p.add_argument("--preview-every", type=int, default=100, help="steps between preview grids (0: end only)")
    p.add_argument("--checkpoint-every", type=int, default=200, help="steps between checkpoints (0: end only)")
    p.add_argument("--preview", default=None, help="sample grid PNG (default: next to --out)")
    p.add_argument("--lr", type=float, default=d.lr_g, help="learning rate of G and D")
    p.add_argument("--loss", default=d.loss, choices=gan_core.LOSSES)
    p.add_argument("--r1", type=float, default=0.0, help="R1 penalty weight gamma (0: off)")
    p.add_argument("--augment", default="", help=f"DiffAugment policy, comma list of {gan_core.AUGMENTATIONS}")
    p.add_argument("--ema", type=float, default=d.ema_decay, help="EMA decay of the sampling generator")
    p.add_argument("--count", type=int, default=512, help="images drawn from a builtin dataset")
    p.add_argument("--fit", default="crop", choices=gan_core.FIT_MODES, help="how folder images are fitted")
    p.add_argument("--no-flip", action="store_true", help="disable random horizontal flips")
    p.add_argument("--channels", type=int, choices=(1, 3), default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--compile", action="store_true", help="torch.compile the networks")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")


def _grid_path(args: argparse.Namespace) -> Path:
    return Path(args.preview) if args.preview else Path(args.out).with_suffix(".png")


def cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    resume = gan_core.load(args.resume) if args.resume else None
    arch = args.arch
    size = args.size or (resume.image_size if resume else (28 if arch == "mlp" else 32))
    cfg = gan_core.TrainConfig(
        arch=arch, size=size, steps=args.steps, batch=args.batch or (128 if arch == "mlp" else 32),
        lr_g=args.lr, lr_d=args.lr, loss=args.loss, r1_gamma=args.r1, augment=args.augment,
        ema_decay=args.ema, seed=args.seed, preview_every=args.preview_every,
        checkpoint_every=args.checkpoint_every, device=args.device, compile=args.compile,
        channels=args.channels,
    ).validate()
    channels = resume.config.channels if resume else (args.channels or (1 if arch == "mlp" else 3))
    data = gan_core.open_dataset(args.data, size, channels=channels, fit=args.fit,
                                 flip=not args.no_flip, seed=args.seed, count=args.count)
    grid_path = _grid_path(args)
    start = resume.resume.step if resume else 0
    bar = tqdm(total=cfg.steps, initial=start, desc=f"train {arch} {size}px", unit="step",
               dynamic_ncols=True)

    def on_step(step: int, losses: dict[str, float]) -> None:
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)

    callbacks = gan_core.TrainCallbacks(
        on_step=on_step,
        on_preview=lambda step, grid: gan_core.save_image(grid, grid_path),
    )
    print(f"data: {data.name} ({len(data)} images, {size}px); device: "
          f"{gan_core.resolve_device(args.device)}; threads: {torch.get_num_threads()}", file=sys.stderr)
    try:
        model = gan_core.train(cfg, data, out=args.out, resume=resume, callbacks=callbacks)
    except KeyboardInterrupt:
        bar.close()
        print(f"\ninterrupted; the checkpoint {args.out} holds the last completed step. "
              f"Continue with --resume {args.out}", file=sys.stderr)
        return 130
    finally:
        bar.close()
    losses = model.training.get("final_losses", {})
    print(f"saved {args.out} after {model.training['steps']} steps "
          f"({model.training['seconds']} s); sample grid {grid_path}; final losses "
          + ", ".join(f"{k}={v:.3f}" for k, v in losses.items()))
    return 0


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
    p = sub.add_parser("generate", help="generate images from a checkpoint")
    p.add_argument("model")
    p.add_argument("--seeds", default="0-15", help="e.g. 0-15 or 1,5,9-12 (default: %(default)s)")
    p.add_argument("--out", required=True, help="a .png/.jpg grid file, or a folder for one file per seed")
    p.add_argument("--truncation", type=float, default=1.0)
    p.add_argument("--nrow", type=int, default=None, help="images per grid row")
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_generate)
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
