"""`generate`, `stylize`, `denoise`, `info`, `convert` and `datasets`."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import gan_core

# What an image file can be written as (Pillow, by extension).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def output_kind(out: str, what: str, allowed: tuple[str, ...] = IMAGE_SUFFIXES) -> str:
    """"file" for a path with a suffix this command writes, "folder" for a path without one
    (or ending in a separator); anything else (say `walk.mp4` for a command that writes GIFs
    or frames) is an error naming the suffixes it takes, not a folder made silently."""
    suffix = Path(out).suffix.lower()
    if out.endswith(("/", "\\")) or not suffix:
        return "folder"
    if suffix in allowed:
        return "file"
    takes = f"{', '.join(allowed)} files or a folder" if allowed else "a folder"
    raise ValueError(f"--out {out}: {what} writes {takes} (a path without a suffix), not "
                     f"{suffix}")


def cmd_generate(args: argparse.Namespace) -> int:
    kind = output_kind(args.out, "generate")
    model = gan_core.load(args.model)
    seeds = gan_core.parse_seeds(args.seeds)
    images = model.generate(seeds, truncation=args.truncation, device=args.device,
                            class_index=args.class_index,
                            truncation_cutoff=args.truncation_cutoff, camera=args.camera)
    out = Path(args.out)
    if kind == "file":
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
    """Load a `task` model, run `apply(model, IMAGE)` on every input file, one image each, in
    the input's own mode (gray stays gray, transparency is kept)."""
    from tqdm import tqdm

    files = _input_files(args.inputs)
    kind = output_kind(args.out, verb)
    if kind == "file" and len(files) != 1:
        raise ValueError(f"--out {args.out} is one image file, but there are {len(files)} "
                         f"inputs; give a folder")
    model = gan_core.load(args.model)
    if model.task != task:
        hint = {"generate": "generate", "style": "stylize", "denoise": "denoise"}[model.task]
        raise ValueError(f"{args.model} is a {model.task!r} model ({model.arch}), not a {task} "
                         f"model; use `{hint}` with it")
    if args.device:
        model.to(gan_core.resolve_device(args.device))
    out = Path(args.out)
    if kind == "folder":
        out.mkdir(parents=True, exist_ok=True)
    skipped = []
    for path in tqdm(files, desc=f"{verb} ({model.arch})", unit="image"):
        try:
            image = gan_core.read_image(path, keep_mode=True).unsqueeze(0)
        except (gan_core.GanAtelierError, OSError) as exc:
            # One bad file (empty, truncated, over the pixel limit) must not stop the others.
            print(f"error: skipped {path}: {exc}", file=sys.stderr)
            skipped.append(path)
            continue
        result = apply(model, image)
        del image
        gan_core.save_image(result, out if kind == "file" else out / f"{path.stem}.png")
    if len(skipped) == len(files):
        raise gan_core.ImageError(f"none of the {len(files)} input images could be read")
    print(f"wrote the {verb}d image{'s' if kind == 'folder' else ''} to {out}"
          f"{'/' if kind == 'folder' else ''}")
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
    info = gan_core.load(args.model).info()
    if args.model.lower().endswith(".pkl"):
        info["convert"] = (f"python -m gan_core convert {args.model} "
                           f"{Path(args.model).with_suffix('.safetensors')}")
    print(json.dumps(info, indent=2, sort_keys=True, default=str))
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    """Read any model file gan_core knows and write it in our format, every part kept (G,
    G_ema, D, ...), then read the result back and check it equals what was read."""
    out = Path(args.out)
    if out.suffix.lower() != ".safetensors":
        raise ValueError(f"{args.out}: convert writes a .safetensors file")
    if out.exists() and not args.overwrite:
        raise ValueError(f"{out} already exists; pass --overwrite to replace it")
    if os.path.abspath(out) == os.path.abspath(args.model):
        raise ValueError("the output must be another file than the input")
    model = gan_core.load(args.model)
    gan_core.save(model, out)
    again = gan_core.load(out)
    same = all(
        set(model.modules[r].state_dict()) == set(again.modules[r].state_dict())
        and all(v.equal(again.modules[r].state_dict()[k].to(v.dtype))
                for k, v in model.modules[r].state_dict().items())
        for r in model.modules)
    if not same or set(model.modules) != set(again.modules):
        raise gan_core.CheckpointError(f"{out}: the converted file does not read back equal to "
                                       f"{args.model}; it was written, but do not delete the "
                                       "original")
    parts = ", ".join(sorted(model.modules))
    print(f"wrote {out}: {model.arch} ({parts}), {out.stat().st_size / 2**20:.1f} MiB; it reads "
          f"back identical, so {Path(args.model).name} can be deleted")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    print("\n".join(gan_core.BUILTIN_DATASETS))
    return 0
