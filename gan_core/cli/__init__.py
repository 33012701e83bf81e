"""The command line: `python -m gan_core {datasets,train,train-denoise,train-style,generate,
stylize,denoise,walk,invert,info}`, one module per command group.

It uses only the public API (`import gan_core`), like any other client.
"""
from __future__ import annotations

import argparse
import sys

import torch

import gan_core

from .infer import cmd_datasets, cmd_denoise, cmd_generate, cmd_info, cmd_stylize
from .latent import add_latent_commands
from .train import (DEFAULT_DATA, add_train_args, add_train_denoise_args, add_train_style_args,
                    cmd_train, cmd_train_denoise, cmd_train_style)

__all__ = ["DEFAULT_DATA", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gan_core",
                                     description="Train GANs and generate images with GAN Atelier.")
    parser.add_argument("--version", action="version", version=gan_core.__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("datasets", help="list the built-in datasets").set_defaults(func=cmd_datasets)
    gan = gan_core.default_arch("gan")
    size = gan_core.get_arch(gan).training.profile("cpu").get("size")
    p = sub.add_parser("train", help=f"train a GAN (defaults: {gan} on {DEFAULT_DATA}, {size} px, "
                                     "CPU-sized)")
    add_train_args(p)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("train-denoise", help="train a denoiser on clean images with synthetic "
                                             f"noise (default: {gan_core.default_arch('denoise')} with a "
                                             "noise-level input, CPU-sized)")
    add_train_denoise_args(p)
    p.set_defaults(func=cmd_train_denoise)
    p = sub.add_parser("train-style", help="train a CycleGAN style from paintings or one "
                                           "painting (default: built-in painting, CPU-sized)")
    add_train_style_args(p)
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
    add_latent_commands(sub)
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
