"""`generate`, `stylize`, `denoise`, `info` and `datasets`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import gan_core


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


def cmd_info(args: argparse.Namespace) -> int:
    print(json.dumps(gan_core.load(args.model).info(), indent=2, sort_keys=True))
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    print("\n".join(gan_core.BUILTIN_DATASETS))
    return 0
