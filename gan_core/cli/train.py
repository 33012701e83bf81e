"""`train`, `train-denoise` and `train-style`: options, defaults from the families' "cpu"
profiles, and resume that continues a run exactly as it was started.

Every option defaults, in order, to: what was given on the command line; with --resume, the
resumed run's own value (its step target, its data, its file, its learning rate ...); else
the family's "cpu" profile; else the library's config. So following the Ctrl-C hint
(`--resume FILE` and nothing else) continues the same run to the same target in the same
file. A fresh run never replaces an existing model file unless --overwrite says so.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import Any

import torch

import gan_core

from .runner import refuse_torchrun, seed_value, train_with_progress

OUT_DIR = "gan_atelier_out"
DEFAULT_DATA = "builtin:blobs"
DEFAULT_COUNT = 512
DEFAULT_STEPS = 2000
UNSET = None


def _profile(arch: str) -> dict:
    """The family's "cpu" profile: the CLI's defaults are a CPU demo (a few minutes must show
    real learning); the library's config defaults stay the papers' values."""
    return gan_core.get_arch(arch).training.profile("cpu")


def default_out(arch: str, data: str) -> str:
    """gan_atelier_out/<arch>_<data name>.safetensors (builtin:blobs -> blobs)."""
    name = data[len(gan_core.BUILTIN_PREFIX):] if data.startswith(gan_core.BUILTIN_PREFIX) else (
        Path(data).name or "data")
    return f"{OUT_DIR}/{arch}_{name}.safetensors"


def _per_arch(key: str, fallback: object, trainer: str = "gan") -> str:
    """'dcgan 32, fastgan 256, mlp 28': each family's "cpu" profile value of `key`."""
    return ", ".join(f"{a} {_profile(a).get(key, fallback)}"
                     for a in gan_core.list_archs(trainer=trainer))


# --------------------------------------------------------------------------- shared options

def _common_args(p: argparse.ArgumentParser, out_help: str, preview_help: str,
                 steps_default: int, preview_every: int, checkpoint_every: int) -> None:
    p.add_argument("--steps", type=int, default=UNSET,
                   help=f"total training steps (default: {steps_default}; with --resume, the "
                        "run's own target)")
    p.add_argument("--seed", type=seed_value, default=UNSET, help="0..2^64-1 (default: 0)")
    p.add_argument("--out", default=UNSET, help=out_help)
    p.add_argument("--overwrite", action="store_true",
                   help="allow a fresh run to replace an existing --out file")
    p.add_argument("--resume", default=UNSET,
                   help="continue this checkpoint's run: every option you do not give keeps "
                        "the run's own value (steps, data, output file, learning rate, ...)")
    p.add_argument("--preview-every", type=int, default=UNSET,
                   help=f"steps between preview grids (0: end only; default: {preview_every})")
    p.add_argument("--checkpoint-every", type=int, default=UNSET,
                   help=f"steps between checkpoints (0: end only; default: {checkpoint_every})")
    p.add_argument("--preview", default=UNSET, help=preview_help)
    p.add_argument("--device", default="auto",
                   help="auto (CUDA, else Apple MPS, else the CPU), cpu, cuda, cuda:N or mps")


class Options:
    """The run's options: flags first, then (resuming) the saved run's, then defaults."""

    def __init__(self, args: argparse.Namespace, saved: dict[str, Any]):
        self.args, self.saved = args, saved

    def pick(self, flag: str, field: str, default: Any) -> Any:
        value = getattr(self.args, flag)
        if value is not None:
            return value
        return self.saved[field] if field in self.saved else default


def _resume(args: argparse.Namespace, trainer: str) -> tuple[gan_core.GANModel | None, dict]:
    """The resume file (checked to be a run this trainer continues) and its saved options."""
    if not args.resume:
        return None, {}
    gan_core.check_resume_file(args.resume, trainer)
    model = gan_core.load(args.resume)
    return model, dict(model.resume.train_config) if model.resume is not None else {}


def _source(opts: Options, flag: str, field: str, default: str) -> str | None:
    """A data option: given, else the resumed run's (if it can still be found), else the
    default for a fresh run; None when a resumed run's data must be given again."""
    given = getattr(opts.args, flag)
    if given is not None:
        return given
    if not opts.saved:
        return default
    saved = str(opts.saved.get(field) or "")
    if saved.startswith(gan_core.BUILTIN_PREFIX) or (saved and os.path.exists(saved)):
        return saved
    return None


def _missing_error(command: str, resume: str, missing: list[str], saved: dict) -> ValueError:
    where = "; ".join(f"--{m} (the run used {saved.get(m.replace('-', '_')) or 'images given to a node'!r})"
                      for m in missing)
    return ValueError(f"{command} --resume {resume}: give {' and '.join('--' + m for m in missing)} "
                      f"again, the run's data cannot be found: {where}")


def _out(args: argparse.Namespace, default: str) -> str:
    """--out, else the resumed file, else `default`; refuses to replace a file a fresh run
    did not make (pass --overwrite, --resume it, or pick another --out)."""
    out = args.out or args.resume or default
    continuing = args.resume and os.path.abspath(out) == os.path.abspath(args.resume)
    if os.path.exists(out) and not continuing and not args.overwrite:
        raise ValueError(f"{out} already exists; pass --overwrite to replace it, --resume {out} "
                         f"to continue its run, or --out NEW.safetensors")
    return out


def _nothing_to_do(args: argparse.Namespace, resume: gan_core.GANModel | None, steps: int) -> bool:
    if resume is not None and resume.resume is not None and resume.resume.step >= steps:
        print(f"{args.resume} already has {resume.resume.step} steps (the target is {steps}); "
              f"nothing to train. Give --steps N with N > {resume.resume.step} to continue.")
        return True
    return False


def _hint(command: str, out: str, data_flags: list[str]) -> str:
    extra = "".join(f" {flag}" for flag in data_flags)
    return f"Continue with: python -m gan_core {command} --resume {out}{extra}"


def _data_hint(flag: str, value: str) -> list[str]:
    """A folder run's data flag for the resume hint (the run records it; the hint shows it
    so the run can be continued from another folder too)."""
    return [] if value.startswith(gan_core.BUILTIN_PREFIX) else [f"{flag} {value}"]


# --------------------------------------------------------------------------- train

def add_train_args(p: argparse.ArgumentParser) -> None:
    d = gan_core.TrainConfig()
    arch = gan_core.default_arch("gan")
    p.add_argument("--data", default=UNSET,
                   help="builtin:NAME (see `datasets`) or a folder of images (default: "
                        f"{DEFAULT_DATA}; with --resume, the run's own)")
    p.add_argument("--arch", default=UNSET, choices=gan_core.list_archs(trainer="gan"),
                   help=f"architecture (default: {arch})")
    p.add_argument("--size", type=int, default=UNSET,
                   help=f"image size in px (default: {_per_arch('size', d.size)})")
    p.add_argument("--batch", type=int, default=UNSET,
                   help=f"batch size (default: {_per_arch('batch', d.batch)})")
    _common_args(p, f"checkpoint file (default: {OUT_DIR}/ARCH_DATA.safetensors, e.g. "
                    f"{default_out(arch, DEFAULT_DATA)}; with --resume, the resumed file)",
                 "sample grid PNG (default: next to --out)", DEFAULT_STEPS, 100, 200)
    p.add_argument("--lr", type=float, default=UNSET,
                   help=f"learning rate of G and D (default: {_per_arch('lr', d.lr_g)}: fast "
                        f"CPU demo settings; the Python API's is {d.lr_g})")
    p.add_argument("--width", type=int, default=UNSET,
                   help=f"base width of G and D, ngf = ndf (default: "
                        f"{_per_arch('width', 'the config default')})")
    p.add_argument("--loss", default=UNSET, choices=gan_core.LOSSES,
                   help=f"default: {d.loss} (families with their own objective ignore it)")
    p.add_argument("--r1", type=float, default=UNSET,
                   help="R1 penalty weight gamma (default: 0, off)")
    p.add_argument("--augment", default=UNSET,
                   help=f"DiffAugment policy, comma list of {gan_core.AUGMENTATIONS} "
                        f"(default: {_per_arch('augment', 'none')})")
    p.add_argument("--ema", type=float, default=UNSET,
                   help=f"EMA decay of the sampling generator (default: {d.ema_decay})")
    p.add_argument("--count", type=int, default=UNSET,
                   help=f"images drawn from a builtin dataset (default: {DEFAULT_COUNT})")
    p.add_argument("--fit", default="crop", choices=gan_core.FIT_MODES,
                   help="how folder images are fitted")
    p.add_argument("--no-flip", action="store_true", help="disable random horizontal flips")
    p.add_argument("--channels", type=int, choices=(1, 3), default=UNSET)
    p.add_argument("--compile", action="store_true", help="torch.compile the networks")


def _train_config(args: argparse.Namespace, saved: dict) -> gan_core.TrainConfig:
    base = gan_core.TrainConfig.from_dict(saved) if saved else gan_core.TrainConfig()
    o = Options(args, saved)
    arch = o.pick("arch", "arch", gan_core.default_arch("gan"))
    quick = _profile(arch)
    size = o.pick("size", "size", quick.get("size", base.size))
    gan_core.check_train_size(arch, size)  # before any data is built
    width = args.width or quick.get("width")
    fields = gan_core.get_arch(arch).training.width_fields
    model = dict(base.model) if saved else ({f: width for f in fields} if width else {})
    if saved and args.width:
        model.update({f: args.width for f in fields})
    return dataclasses.replace(
        base, arch=arch, size=size, steps=o.pick("steps", "steps", DEFAULT_STEPS), model=model,
        batch=o.pick("batch", "batch", quick.get("batch", base.batch)),
        lr_g=o.pick("lr", "lr_g", quick.get("lr", base.lr_g)),
        lr_d=o.pick("lr", "lr_d", quick.get("lr", base.lr_d)),
        loss=o.pick("loss", "loss", base.loss), r1_gamma=o.pick("r1", "r1_gamma", 0.0),
        augment=o.pick("augment", "augment", quick.get("augment", "")),
        ema_decay=o.pick("ema", "ema_decay", base.ema_decay), seed=o.pick("seed", "seed", 0),
        preview_every=o.pick("preview_every", "preview_every", 100),
        checkpoint_every=o.pick("checkpoint_every", "checkpoint_every", 200),
        channels=o.pick("channels", "channels", None), device=args.device,
        compile=args.compile or bool(saved.get("compile")),
    ).validate()


def cmd_train(args: argparse.Namespace) -> int:
    # Under torchrun every process runs this; the session joins them into one DDP job (and is
    # a no-op for a plain `python -m gan_core train`).
    with gan_core.distributed_session(args.device):
        resume, saved = _resume(args, "gan")
        cfg = _train_config(args, saved)
        data_spec = _source(Options(args, saved), "data", "data", DEFAULT_DATA)
        if data_spec is None:
            raise _missing_error("train", args.resume, ["data"], saved)
        args.out = _out(args, default_out(cfg.arch, data_spec))
        if _nothing_to_do(args, resume, cfg.steps):
            return 0
        cfg = dataclasses.replace(cfg, data=data_spec)
        arch, size = cfg.arch, cfg.size
        channels = (resume.config.channels if resume else
                    cfg.channels or gan_core.get_arch(arch).training.default_channels)
        count = args.count or (int(resume.training.get("dataset_size") or DEFAULT_COUNT)
                               if resume else DEFAULT_COUNT)
        data = gan_core.open_dataset(data_spec, size, channels=channels, fit=args.fit,
                                     flip=not args.no_flip, seed=cfg.seed, count=count)
        n = gan_core.process_count()
        shared = f"; processes: {n} (batch {cfg.batch // n} each)" if n > 1 else ""
        return train_with_progress(
            args, lambda cb: gan_core.train(cfg, data, out=args.out, resume=resume, callbacks=cb),
            cfg.steps, resume.resume.step if resume else 0, f"train {arch} {size}px",
            f"data: {data.name} ({len(data)} images, {size}px); device: "
            f"{gan_core.resolve_device(args.device)}; threads: {torch.get_num_threads()}{shared}",
            hint=_hint("train", args.out, _data_hint("--data", data_spec)))


# --------------------------------------------------------------------------- train-denoise

def _denoise_defaults(arch: str | None = None) -> dict:
    """train-denoise's defaults: the "cpu" profile of the arch (default: the denoise trainer's
    default family), over DenoiseTrainConfig's own values."""
    arch = arch or gan_core.default_arch("denoise")
    base = dataclasses.asdict(gan_core.DenoiseTrainConfig(arch=arch))
    return {**base, "data": "builtin:mondrian", "width": None, **_profile(arch)}


def add_train_denoise_args(p: argparse.ArgumentParser) -> None:
    d = _denoise_defaults()
    p.add_argument("--data", default=UNSET,
                   help=f"clean images: builtin:NAME, a folder or an image file; photos are "
                        f"cut into full-resolution tiles of twice --size and cropped randomly, "
                        f"never shrunk (default: {d['data']}; with --resume, the run's own)")
    p.add_argument("--noise", default=UNSET,
                   help=f"degradation recipe, e.g. gaussian:25, gaussian:5-50, "
                        f"jpeg:10-40,poisson (default: {d['noise']})")
    p.add_argument("--arch", default=UNSET, choices=gan_core.list_archs(trainer="denoise"),
                   help=f"architecture (default: {d['arch']})")
    p.add_argument("--size", type=int, default=UNSET,
                   help=f"crop size in px (default: {d['size']})")
    p.add_argument("--batch", type=int, default=UNSET, help=f"default: {d['batch']}")
    _common_args(p, f"checkpoint file (default: {default_out(d['arch'], d['data'])}; with "
                    "--resume, the resumed file)",
                 "(noisy | denoised | clean) grid PNG (default: next to --out)", d["steps"],
                 d["preview_every"], d["checkpoint_every"])
    p.add_argument("--adv-weight", type=float, default=UNSET,
                   help=f"weight of the PatchGAN adversarial loss; 0 = plain regression "
                        f"(default: {d['adv_weight']})")
    p.add_argument("--loss", default=UNSET, choices=gan_core.RECON_LOSSES,
                   help=f"reconstruction loss (default: {d['loss']})")
    p.add_argument("--lr", type=float, default=UNSET,
                   help=f"generator learning rate (default: {d['lr_g']})")
    p.add_argument("--width", type=int, default=UNSET,
                   help=f"{d['arch']} base width (default: {d['width']})")
    p.add_argument("--noise-level-input", action=argparse.BooleanOptionalAction,
                   default=d.get("model", {}).get("noise_level_input", False),
                   help=f"{d['arch']}: condition on a noise-level map, which denoise --sigma "
                        "feeds (default: on; --no-noise-level-input trains a blind model)")
    p.add_argument("--count", type=int, default=UNSET,
                   help=f"images drawn from a builtin dataset (default: {DEFAULT_COUNT})")
    p.add_argument("--fit", default="crop", choices=gan_core.FIT_MODES,
                   help="how a picture smaller than one tile is brought up to it")
    p.add_argument("--channels", type=int, choices=(1, 3), default=UNSET, help="default: 3")


def _denoise_config(args: argparse.Namespace, saved: dict) -> gan_core.DenoiseTrainConfig:
    base = gan_core.DenoiseTrainConfig.from_dict(saved) if saved else gan_core.DenoiseTrainConfig()
    o = Options(args, saved)
    arch = o.pick("arch", "arch", gan_core.default_arch("denoise"))
    d = _denoise_defaults(arch)
    profiled = bool(_profile(arch))  # a family with CPU-sized settings of its own
    model = dict(base.model) if saved else {}
    if not saved and profiled:
        fields = gan_core.get_arch(arch).training.width_fields
        model = {**d["model"], **{f: args.width or d["width"] for f in fields},
                 "noise_level_input": args.noise_level_input}
    return dataclasses.replace(
        base, arch=arch, size=o.pick("size", "size", d["size"]),
        steps=o.pick("steps", "steps", d["steps"]), model=model,
        noise=o.pick("noise", "noise", d["noise"]), batch=o.pick("batch", "batch", d["batch"]),
        lr_g=o.pick("lr", "lr_g", d["lr_g"]), loss=o.pick("loss", "loss", d["loss"]),
        # families without a CLI profile (no discriminator of their own): plain regression
        # unless asked otherwise
        adv_weight=o.pick("adv_weight", "adv_weight", d["adv_weight"] if profiled else 0.0),
        seed=o.pick("seed", "seed", d["seed"]),
        preview_every=o.pick("preview_every", "preview_every", d["preview_every"]),
        checkpoint_every=o.pick("checkpoint_every", "checkpoint_every", d["checkpoint_every"]),
        channels=o.pick("channels", "channels", None), device=args.device,
    ).validate()


def cmd_train_denoise(args: argparse.Namespace) -> int:
    refuse_torchrun("train-denoise")
    resume, saved = _resume(args, "denoise")
    cfg = _denoise_config(args, saved)
    data_spec = _source(Options(args, saved), "data", "data", _denoise_defaults(cfg.arch)["data"])
    if data_spec is None:
        raise _missing_error("train-denoise", args.resume, ["data"], saved)
    args.out = _out(args, default_out(cfg.arch, data_spec))
    if _nothing_to_do(args, resume, cfg.steps):
        return 0
    cfg = dataclasses.replace(cfg, data=data_spec)
    count = args.count or (int(resume.training.get("dataset_size") or DEFAULT_COUNT)
                           if resume else DEFAULT_COUNT)
    data = gan_core.denoise_dataset(data_spec, cfg.size, channels=cfg.channels or 3,
                                    seed=cfg.seed, count=count, fit=args.fit, what="--data")
    return train_with_progress(
        args, lambda cb: gan_core.train_denoiser(cfg, data, out=args.out, resume=resume,
                                                 callbacks=cb),
        cfg.steps, resume.resume.step if resume else 0,
        f"train-denoise {cfg.arch} {cfg.size}px",
        f"data: {data.name} ({len(data)} {'tiles' if not data_spec.startswith(gan_core.BUILTIN_PREFIX) else 'images'}, "
        f"{data.size}px); noise: {cfg.noise}; device: "
        f"{gan_core.resolve_device(args.device)}; threads: {torch.get_num_threads()}",
        names={"loss_rec": "rec", "psnr": "psnr", "loss_d": "d", "loss_adv": "adv"},
        hint=_hint("train-denoise", args.out, _data_hint("--data", data_spec)))


# --------------------------------------------------------------------------- train-style

def _style_defaults() -> dict:
    """train-style's defaults: the style trainer's default family's "cpu" profile."""
    return _profile(gan_core.default_arch("style"))


def add_train_style_args(p: argparse.ArgumentParser) -> None:
    d, c = _style_defaults(), gan_core.StyleTrainConfig()
    m = d["model"]
    p.add_argument("--content", default=UNSET,
                   help=f"content pictures (domain A): builtin:NAME, a folder or an image file "
                        f"(default: {d['content']}; with --resume, the run's own)")
    p.add_argument("--style", default=UNSET,
                   help=f"style pictures (domain B): a folder, one painting (an image file) or "
                        f"builtin:NAME (default: {d['style']}; with --resume, the run's own)")
    p.add_argument("--size", type=int, default=UNSET,
                   help=f"crop size in px, a multiple of 4 (default: {d['size']})")
    p.add_argument("--batch", type=int, default=UNSET, help=f"default: {d['batch']}")
    _common_args(p, f"checkpoint file (default: {default_out(c.arch, d['content'])}; with "
                    "--resume, the resumed file)",
                 "(content | stylized) grid PNG (default: next to --out)", d["steps"],
                 d["preview_every"], d["checkpoint_every"])
    p.add_argument("--ngf", type=int, default=UNSET,
                   help=f"generator width (default: {m['ngf']}; the public models use 64)")
    p.add_argument("--ndf", type=int, default=UNSET,
                   help=f"discriminator width (default: {m['ndf']})")
    p.add_argument("--blocks", type=int, default=UNSET,
                   help=f"residual blocks (default: {m['n_blocks']}; 9 for 256 px training)")
    p.add_argument("--lr", type=float, default=UNSET, help=f"Adam learning rate (default: {c.lr})")
    p.add_argument("--cycle-weight", type=float, default=UNSET,
                   help=f"weight of the cycle-consistency loss (default: {c.cycle_weight})")
    p.add_argument("--identity-weight", type=float, default=UNSET,
                   help=f"identity loss weight, times the cycle weight (default: {c.identity_weight})")
    p.add_argument("--pool", type=int, default=UNSET, help=f"image pool size (default: {c.pool_size})")
    p.add_argument("--augment", default=UNSET,
                   help="DiffAugment policy for the discriminators, e.g. color,translation "
                        "(default: none)")
    p.add_argument("--content-count", type=int, default=None,
                   help="pictures drawn from a builtin content dataset (default: 64)")
    p.add_argument("--style-count", type=int, default=None,
                   help="paintings drawn from a builtin style dataset (default: 1)")
    p.add_argument("--max-side", type=int, default=1024,
                   help="pictures larger than this are downscaled before cropping "
                        "(default: %(default)s)")


def _style_config(args: argparse.Namespace, saved: dict) -> gan_core.StyleTrainConfig:
    base = gan_core.StyleTrainConfig.from_dict(saved) if saved else gan_core.StyleTrainConfig()
    d = _style_defaults()
    m = d["model"]
    o = Options(args, saved)
    model = dict(base.model) if saved else {
        "ngf": args.ngf or m["ngf"], "ndf": args.ndf or m["ndf"],
        "n_blocks": args.blocks if args.blocks is not None else m["n_blocks"]}
    return dataclasses.replace(
        base, size=o.pick("size", "size", d["size"]), steps=o.pick("steps", "steps", d["steps"]),
        model=model, batch=o.pick("batch", "batch", d["batch"]), lr=o.pick("lr", "lr", base.lr),
        cycle_weight=o.pick("cycle_weight", "cycle_weight", base.cycle_weight),
        identity_weight=o.pick("identity_weight", "identity_weight", base.identity_weight),
        pool_size=o.pick("pool", "pool_size", base.pool_size),
        augment=o.pick("augment", "augment", base.augment), seed=o.pick("seed", "seed", d["seed"]),
        preview_every=o.pick("preview_every", "preview_every", d["preview_every"]),
        checkpoint_every=o.pick("checkpoint_every", "checkpoint_every", d["checkpoint_every"]),
        device=args.device,
    ).validate()


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def cmd_train_style(args: argparse.Namespace) -> int:
    refuse_torchrun("train-style")
    resume, saved = _resume(args, "style")
    cfg = _style_config(args, saved)
    d = _style_defaults()
    o = Options(args, saved)
    specs = {side: _source(o, side, side, d[side]) for side in ("content", "style")}
    missing = [side for side, spec in specs.items() if spec is None]
    if missing:  # all of them in one message
        raise _missing_error("train-style", args.resume, missing, saved)
    args.out = _out(args, default_out(cfg.arch, specs["content"]))
    if _nothing_to_do(args, resume, cfg.steps):
        return 0
    cfg = dataclasses.replace(cfg, content=specs["content"], style=specs["style"])
    content = gan_core.style_source(specs["content"], "content", cfg.size, seed=cfg.seed,
                                    max_side=args.max_side, count=args.content_count,
                                    what="--content")
    style = gan_core.style_source(specs["style"], "style", cfg.size, seed=cfg.seed,
                                  max_side=args.max_side, count=args.style_count, what="--style")
    return train_with_progress(
        args, lambda cb: gan_core.train_style(cfg, content, style, out=args.out, resume=resume,
                                              callbacks=cb),
        cfg.steps, resume.resume.step if resume else 0, f"train-style {cfg.size}px",
        f"content: {content.name} ({_count(len(content), 'picture')}); style: {style.name} "
        f"({_count(len(style), 'picture')}, crops at {style.scale[0]:.2f}-{style.scale[1]:.2f} "
        f"of the short side); device: {gan_core.resolve_device(args.device)}; threads: "
        f"{torch.get_num_threads()}",
        names={"loss_g": "g", "loss_adv": "adv", "loss_cycle": "cyc", "loss_idt": "idt",
               "loss_d": "d", "lr": None},
        hint=_hint("train-style", args.out, _data_hint("--content", specs["content"])
                   + _data_hint("--style", specs["style"])))
