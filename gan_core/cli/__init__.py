"""The command line: `python -m gan_core {datasets,train,train-denoise,train-style,generate,
stylize,denoise,walk,invert,audio-walk,info,convert}`, one module per command group.

It uses only the public API (`import gan_core`), like any other client.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

import gan_core

from .audio import add_audio_commands
from .infer import (IMAGE_SUFFIXES, cmd_convert, cmd_datasets, cmd_denoise, cmd_generate,
                    cmd_info, cmd_stylize)
from .latent import add_latent_commands
from .runner import default_threads
from .train import (DEFAULT_DATA, add_train_args, add_train_denoise_args, add_train_style_args,
                    cmd_train, cmd_train_denoise, cmd_train_style)

__all__ = ["DEFAULT_DATA", "build_parser", "main"]


def _common() -> argparse.ArgumentParser:
    """Options every command takes."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--threads", type=int, default=None,
                        help="CPU threads (default: the cores, less the machine's current load)")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gan_core",
                                     description="Train GANs and generate images with GAN Atelier.")
    parser.add_argument("--version", action="version", version=gan_core.__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    common = _common()

    def command(name: str, help: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, parents=[common])
        p.set_defaults(func=func)
        return p

    command("datasets", "list the built-in datasets", cmd_datasets)
    gan = gan_core.default_arch("gan")
    size = gan_core.get_arch(gan).training.profile("cpu").get("size")
    add_train_args(command("train", f"train a GAN (defaults: {gan} on {DEFAULT_DATA}, {size} px, "
                                    "CPU-sized)", cmd_train))
    add_train_denoise_args(command(
        "train-denoise", "train a denoiser on clean images with synthetic noise (default: "
                         f"{gan_core.default_arch('denoise')} with a noise-level input, CPU-sized)",
        cmd_train_denoise))
    add_train_style_args(command("train-style", "train a CycleGAN style from paintings or one "
                                                "painting (default: built-in painting, CPU-sized)",
                                 cmd_train_style))
    p = command("generate", "generate images from a checkpoint", cmd_generate)
    p.add_argument("model")
    p.add_argument("--seeds", default="0-15", help="e.g. 0-15 or 1,5,9-12 (default: %(default)s)")
    p.add_argument("--out", required=True,
                   help=f"a grid image file ({', '.join(IMAGE_SUFFIXES)}), or a folder for one "
                        "PNG per seed")
    p.add_argument("--truncation", type=float, default=1.0)
    p.add_argument("--truncation-cutoff", type=int, default=None,
                   help="StyleGAN: truncate only the first N layers (NVIDIA's truncation_cutoff)")
    p.add_argument("--class", dest="class_index", type=int, default=None,
                   help="the class of a conditional model (0..classes-1)")
    p.add_argument("--camera", type=float, nargs=3, default=None, metavar=("TX", "TY", "DEG"),
                   help="StyleGAN3: move the view by TX, TY (image widths) and turn it by DEG")
    p.add_argument("--nrow", type=int, default=None, help="images per grid row")
    p.add_argument("--device", default=None)
    for name, verb, model_help in (
            ("stylize", "apply a style model (ours, CycleGAN, pix2pix, fast-neural-style) to "
                        "images", "a .safetensors or public .pth style model"),
            ("denoise", "denoise images with a denoising model (ours, DnCNN, DRUNet)",
             "a .safetensors or public .pth denoising model")):
        p = command(name, verb, cmd_stylize if name == "stylize" else cmd_denoise)
        p.add_argument("model", help=model_help)
        p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
        p.add_argument("--out", required=True,
                       help=f"an output folder (one PNG per input), or for a single input an "
                            f"image file ({', '.join(IMAGE_SUFFIXES)})")
        p.add_argument("--strength", type=float, default=1.0, help="blend with the input (0..1)")
        p.add_argument("--tile", type=int, default=None, help="tile size in px for large images")
        if name == "stylize":
            p.add_argument("--direction", default="A->B", choices=gan_core.DIRECTIONS,
                           help="A->B (content -> style, default) or B->A for CycleGANs "
                                "trained here")
        else:
            p.add_argument("--sigma", type=float, default=None,
                           help="noise level in 0..255 units (models that take one; default 15)")
        p.add_argument("--device", default=None)
    add_latent_commands(sub, common)
    add_audio_commands(sub)
    p = command("info", "print a model file's metadata (reads nothing but data)", cmd_info)
    p.add_argument("model")
    p = command("convert", "write a model file (an NVIDIA .pkl, a public .pth) as a GAN "
                           "Atelier .safetensors: every part, the config in its metadata",
                cmd_convert)
    p.add_argument("model")
    p.add_argument("out", help="the .safetensors file to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads or default_threads())
    try:
        return args.func(args)
    except (gan_core.GanAtelierError, ValueError, OSError) as exc:
        if isinstance(exc, BrokenPipeError):
            return _quiet_broken_pipe()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


def _quiet_broken_pipe() -> int:
    """`info ... | head` closed the pipe: stop quietly, as other command-line tools do."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass
    return 0
