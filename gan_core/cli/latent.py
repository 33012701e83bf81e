"""`walk` and `invert`: latent-space commands."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gan_core

from .infer import output_kind
from .runner import StopOnCtrlC, seed_value


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
    as_gif = output_kind(args.out, "walk", (".gif",)) == "file"
    if args.fps is not None and not args.fps > 0:
        raise ValueError(f"--fps must be a positive frame rate, got {args.fps}")
    model = _generator(args.model, args.device)
    bar = tqdm(total=args.frames, desc=f"walk {model.arch}", unit="frame", dynamic_ncols=True)
    try:
        result = gan_core.walk(
            model, gan_core.parse_seeds(args.seeds), args.frames, mode=args.mode,
            easing=args.easing, loop=not args.no_loop, truncation=args.truncation,
            callbacks=gan_core.TrainCallbacks(on_step=lambda done, _: bar.update(done - bar.n)),
            class_index=args.class_index, camera_pan=(args.pan_x, args.pan_y),
            camera_rotate=args.rotate)
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
    if not Path(args.image).is_file():
        raise ValueError(f"{args.image}: invert takes one image file (for a folder, run it once "
                         "per picture)")
    if output_kind(args.out, "invert", ()) != "folder":
        raise ValueError(f"--out {args.out}: invert writes a folder (reconstruction, latent, "
                         "variations); give a path without a suffix")
    model = _generator(args.model, args.device)
    image = gan_core.read_image(args.image).unsqueeze(0)
    out = Path(args.out)
    bar = tqdm(total=args.steps, desc=f"invert ({model.arch})", unit="step", dynamic_ncols=True)

    def on_step(step: int, losses: dict[str, float]) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{losses['loss']:.4f}", psnr=f"{losses['psnr']:.2f}", refresh=False)

    stop = StopOnCtrlC()
    try:
        with stop:
            result = gan_core.invert(model, image, steps=args.steps, space=args.space, lr=args.lr,
                                     seed=args.seed, class_index=args.class_index,
                                     callbacks=gan_core.TrainCallbacks(
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
                                   seed=args.seed, class_index=args.class_index)
        for i, img in enumerate(gan_core.generate_from_latent(model, near,
                                                              class_index=args.class_index)):
            gan_core.save_image(img, out / f"variation_{i:02d}.png")
    print(f"PSNR {result.psnr:.2f} dB after {result.steps} steps ({result.latent.space} space); "
          f"wrote reconstruction.png, target.png, latent.safetensors"
          f"{f' and {args.variations} variations' if args.variations > 0 else ''} to {out}/")
    if result.stopped:
        print("stopped early by Ctrl-C; the files hold the best latent found so far",
              file=sys.stderr)
        return 130
    return 0


def add_latent_commands(sub, common) -> None:
    p = sub.add_parser("walk", help="animate a looping walk through latent space between seeds "
                                    "(GIF, or PNG frames)", parents=[common])
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
    p.add_argument("--class", dest="class_index", type=int, default=None,
                   help="the class of a conditional model (0..classes-1)")
    camera = p.add_argument_group("StyleGAN3 camera (its travel over the walk; a loop goes "
                                  "there and back)")
    camera.add_argument("--pan-x", type=float, default=0.0, help="image widths to the right")
    camera.add_argument("--pan-y", type=float, default=0.0, help="image heights down")
    camera.add_argument("--rotate", type=float, default=0.0, help="degrees to turn")
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_walk)
    p = sub.add_parser("invert", help="find the latent of an image (GAN inversion): writes the "
                                      "reconstruction, the latent and variations",
                       parents=[common])
    p.add_argument("model")
    p.add_argument("image", help="the picture to reproduce (fitted to the model's size)")
    p.add_argument("--steps", type=int, default=300, help="optimisation steps (default: %(default)s)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--space", default="auto", choices=gan_core.INVERT_SPACES,
                   help="z, w, w+ or auto (w for StyleGAN2, else z)")
    p.add_argument("--seed", type=seed_value, default=0,
                   help="seeds the starting candidates and the variations (default: 0)")
    p.add_argument("--lr", type=float, default=0.05, help="Adam step size (default: %(default)s)")
    p.add_argument("--variations", type=int, default=4, help="variations to write (default: %(default)s)")
    p.add_argument("--class", dest="class_index", type=int, default=None,
                   help="the class of a conditional model (0..classes-1)")
    p.add_argument("--strength", type=float, default=0.3,
                   help="how far variations move toward a random latent, 0..1 (default: %(default)s)")
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_invert)
