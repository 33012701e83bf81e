"""`train`, `train-denoise` and `train-style`: options, defaults from the families' "cpu"
profiles, resume that reuses a run's own options, and the progress runner."""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

import gan_core

from .runner import refuse_torchrun, train_with_progress

OUT_DIR = "gan_atelier_out"
DEFAULT_DATA = "builtin:blobs"
DEFAULT_COUNT = 512


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


def add_train_args(p: argparse.ArgumentParser) -> None:
    d = gan_core.TrainConfig()
    arch = gan_core.default_arch("gan")
    # Options that default to None take, with --resume, the resumed run's value (so it
    # follows the same curve); otherwise the default named in their help.
    p.add_argument("--data", default=None,
                   help="builtin:NAME (see `datasets`) or a folder of images (default: "
                        f"{DEFAULT_DATA}, or the resumed run's built-in dataset)")
    p.add_argument("--arch", default=None, choices=gan_core.list_archs(trainer="gan"),
                   help=f"architecture (default: {arch})")
    p.add_argument("--size", type=int, default=None,
                   help=f"image size in px (default: {_per_arch('size', d.size)})")
    p.add_argument("--steps", type=int, default=2000, help="total training steps (default: %(default)s)")
    p.add_argument("--batch", type=int, default=None,
                   help=f"batch size (default: {_per_arch('batch', d.batch)})")
    p.add_argument("--seed", type=int, default=None, help="default: 0")
    p.add_argument("--out", default=None,
                   help=f"checkpoint file (default: {OUT_DIR}/ARCH_DATA.safetensors, e.g. "
                        f"{default_out(gan_core.default_arch('gan'), DEFAULT_DATA)})")
    p.add_argument("--resume", default=None,
                   help="continue training from this checkpoint, with its options unless given")
    p.add_argument("--preview-every", type=int, default=None,
                   help="steps between preview grids (0: end only; default: 100)")
    p.add_argument("--checkpoint-every", type=int, default=None,
                   help="steps between checkpoints (0: end only; default: 200)")
    p.add_argument("--preview", default=None, help="sample grid PNG (default: next to --out)")
    p.add_argument("--lr", type=float, default=None,
                   help=f"learning rate of G and D (default: {_per_arch('lr', d.lr_g)}: fast "
                        f"CPU demo settings; the Python API's is {d.lr_g})")
    p.add_argument("--width", type=int, default=None,
                   help=f"base width of G and D, ngf = ndf (default: "
                        f"{_per_arch('width', 'the config default')})")
    p.add_argument("--loss", default=None, choices=gan_core.LOSSES,
                   help=f"default: {d.loss} (families with their own objective ignore it)")
    p.add_argument("--r1", type=float, default=None,
                   help="R1 penalty weight gamma (default: 0, off)")
    p.add_argument("--augment", default=None,
                   help=f"DiffAugment policy, comma list of {gan_core.AUGMENTATIONS} "
                        f"(default: {_per_arch('augment', 'none')})")
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

    arch = pick("arch", "arch", gan_core.default_arch("gan"))
    quick = _profile(arch)
    size = args.size or (resume.image_size if resume else quick.get("size", base.size))
    width = args.width or quick.get("width")
    fields = gan_core.get_arch(arch).training.width_fields
    model = dict(base.model) if saved else ({f: width for f in fields} if width else {})
    return dataclasses.replace(
        base, arch=arch, size=size, steps=args.steps, model=model,
        batch=pick("batch", "batch", quick.get("batch", base.batch)),
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


def cmd_train(args: argparse.Namespace) -> int:
    # Under torchrun every process runs this; the session joins them into one DDP job (and is
    # a no-op for a plain `python -m gan_core train`).
    with gan_core.distributed_session(args.device):
        resume = gan_core.load(args.resume) if args.resume else None
        cfg = _train_config(args, resume)
        arch, size = cfg.arch, cfg.size
        recipe = gan_core.get_arch(arch).training
        channels = resume.config.channels if resume else (args.channels or recipe.default_channels)
        spec, count = _data_spec(args, resume)
        if args.out is None:
            args.out = args.resume or default_out(arch, spec)
        data = gan_core.open_dataset(spec, size, channels=channels, fit=args.fit,
                                     flip=not args.no_flip, seed=cfg.seed, count=count)
        n = gan_core.process_count()
        shared = f"; processes: {n} (batch {cfg.batch // n} each)" if n > 1 else ""
        return train_with_progress(
            args, lambda cb: gan_core.train(cfg, data, out=args.out, resume=resume, callbacks=cb),
            cfg.steps, resume.resume.step if resume else 0, f"train {arch} {size}px",
            f"data: {data.name} ({len(data)} images, {size}px); device: "
            f"{gan_core.resolve_device(args.device)}; threads: {torch.get_num_threads()}{shared}")


def _denoise_defaults(arch: str | None = None) -> dict:
    """train-denoise's defaults: the "cpu" profile of the arch (default: the denoise trainer's
    default family), over DenoiseTrainConfig's own values."""
    arch = arch or gan_core.default_arch("denoise")
    base = dataclasses.asdict(gan_core.DenoiseTrainConfig(arch=arch))
    return {**base, "data": "builtin:mondrian", "width": None, **_profile(arch)}


def add_train_denoise_args(p: argparse.ArgumentParser) -> None:
    d = _denoise_defaults()
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
    p.add_argument("--out", default=None,
                   help=f"checkpoint file (default: {default_out(d['arch'], d['data'])})")
    p.add_argument("--resume", default=None,
                   help="continue training from this checkpoint, with its options unless given")
    p.add_argument("--adv-weight", type=float, default=None,
                   help=f"weight of the PatchGAN adversarial loss; 0 = plain regression "
                        f"(default: {d['adv_weight']})")
    p.add_argument("--loss", default=None, choices=gan_core.RECON_LOSSES,
                   help=f"reconstruction loss (default: {d['loss']})")
    p.add_argument("--lr", type=float, default=None,
                   help=f"generator learning rate (default: {d['lr_g']})")
    p.add_argument("--width", type=int, default=None,
                   help=f"{d['arch']} base width (default: {d['width']})")
    p.add_argument("--noise-level-input", action=argparse.BooleanOptionalAction,
                   default=d.get("model", {}).get("noise_level_input", False),
                   help=f"{d['arch']}: condition on a noise-level map, which denoise --sigma "
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

    def pick(flag: str, field: str, default):
        value = getattr(args, flag)
        if value is not None:
            return value
        return getattr(base, field) if saved else default

    arch = pick("arch", "arch", gan_core.default_arch("denoise"))
    d = _denoise_defaults(arch)
    profiled = bool(_profile(arch))  # a family with CPU-sized settings of its own
    model = dict(base.model) if saved else {}
    if not saved and profiled:
        fields = gan_core.get_arch(arch).training.width_fields
        model = {**d["model"], **{f: args.width or d["width"] for f in fields},
                 "noise_level_input": args.noise_level_input}
    return dataclasses.replace(
        base, arch=arch, size=pick("size", "size", d["size"]), steps=args.steps, model=model,
        noise=pick("noise", "noise", d["noise"]), batch=pick("batch", "batch", d["batch"]),
        lr_g=pick("lr", "lr_g", d["lr_g"]), loss=pick("loss", "loss", d["loss"]),
        # families without a CLI profile (dncnn, drunet) have no discriminator: plain
        # regression unless asked otherwise
        adv_weight=pick("adv_weight", "adv_weight", d["adv_weight"] if profiled else 0.0),
        seed=pick("seed", "seed", d["seed"]),
        preview_every=pick("preview_every", "preview_every", d["preview_every"]),
        checkpoint_every=pick("checkpoint_every", "checkpoint_every", d["checkpoint_every"]),
        channels=args.channels if args.channels is not None else (base.channels if saved else None),
        device=args.device,
    ).validate()


def cmd_train_denoise(args: argparse.Namespace) -> int:
    refuse_torchrun("train-denoise")
    resume = gan_core.load(args.resume) if args.resume else None
    cfg = _denoise_config(args, resume)
    if args.data is None and resume is None:
        args.data = _denoise_defaults(cfg.arch)["data"]
    spec, count = _data_spec(args, resume)
    if args.out is None:
        args.out = args.resume or default_out(cfg.arch, spec)
    data = gan_core.open_dataset(spec, cfg.size, channels=cfg.channels or 3, fit=args.fit,
                                 seed=cfg.seed, count=count)
    return train_with_progress(
        args, lambda cb: gan_core.train_denoiser(cfg, data, out=args.out, resume=resume,
                                                 callbacks=cb),
        cfg.steps, resume.resume.step if resume else 0,
        f"train-denoise {cfg.arch} {cfg.size}px",
        f"data: {data.name} ({len(data)} images, {data.size}px); noise: {cfg.noise}; device: "
        f"{gan_core.resolve_device(args.device)}; threads: {torch.get_num_threads()}",
        names={"loss_rec": "rec", "psnr": "psnr", "loss_d": "d", "loss_adv": "adv"})


def _style_defaults() -> dict:
    """train-style's defaults: the style trainer's default family's "cpu" profile."""
    return _profile(gan_core.default_arch("style"))


def add_train_style_args(p: argparse.ArgumentParser) -> None:
    d, c = _style_defaults(), gan_core.StyleTrainConfig()
    m = d["model"]
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
    p.add_argument("--out", default=None,
                   help=f"checkpoint file (default: {default_out(c.arch, d['content'])})")
    p.add_argument("--resume", default=None,
                   help="continue training from this checkpoint, with its options unless given")
    p.add_argument("--ngf", type=int, default=None, help=f"generator width (default: {m['ngf']}; "
                                                         "the public models use 64)")
    p.add_argument("--ndf", type=int, default=None, help=f"discriminator width (default: {m['ndf']})")
    p.add_argument("--blocks", type=int, default=None,
                   help=f"residual blocks (default: {m['n_blocks']}; 9 for 256 px training)")
    p.add_argument("--lr", type=float, default=None, help=f"Adam learning rate (default: {c.lr})")
    p.add_argument("--cycle-weight", type=float, default=None,
                   help=f"weight of the cycle-consistency loss (default: {c.cycle_weight})")
    p.add_argument("--identity-weight", type=float, default=None,
                   help=f"identity loss weight, times the cycle weight (default: {c.identity_weight})")
    p.add_argument("--pool", type=int, default=None, help=f"image pool size (default: {c.pool_size})")
    p.add_argument("--augment", default=None,
                   help="DiffAugment policy for the discriminators, e.g. color,translation "
                        "(default: none)")
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
    d = _style_defaults()
    m = d["model"]

    def pick(flag: str, field: str, default):
        value = getattr(args, flag)
        if value is not None:
            return value
        return getattr(base, field) if saved else default

    model = dict(base.model) if saved else {
        "ngf": args.ngf or m["ngf"], "ndf": args.ndf or m["ndf"],
        "n_blocks": args.blocks if args.blocks is not None else m["n_blocks"]}
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
    spec = spec or _style_defaults()[side]
    count = args.content_count if side == "content" else args.style_count
    return gan_core.open_crop_source(spec, max_side=args.max_side, count=count,
                                     what=f"--{side}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def cmd_train_style(args: argparse.Namespace) -> int:
    refuse_torchrun("train-style")
    resume = gan_core.load(args.resume) if args.resume else None
    cfg = _style_config(args, resume)
    content, style = _style_source(args, "content", resume), _style_source(args, "style", resume)
    if args.out is None:
        args.out = args.resume or default_out(cfg.arch, args.content or _style_defaults()["content"])
    return train_with_progress(
        args, lambda cb: gan_core.train_style(cfg, content, style, out=args.out, resume=resume,
                                              callbacks=cb),
        cfg.steps, resume.resume.step if resume else 0, f"train-style {cfg.size}px",
        f"content: {content.name} ({_count(len(content), 'picture')}); style: {style.name} "
        f"({_count(len(style), 'picture')}, crops at {style.scale[0]:.2f}-{style.scale[1]:.2f} of the "
        f"short side); device: {gan_core.resolve_device(args.device)}; threads: "
        f"{torch.get_num_threads()}",
        names={"loss_g": "g", "loss_adv": "adv", "loss_cycle": "cyc", "loss_idt": "idt",
               "loss_d": "d", "lr": None})
