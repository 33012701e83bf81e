"""Few-shot quality: FastGAN against DCGAN on 100 images of a built-in dataset at 256 px.

    python benchmarks/fewshot_quality.py                       # painting, 100 images, 256 px
    python benchmarks/fewshot_quality.py --arch fastgan --steps 50,100,200,400
    python benchmarks/fewshot_quality.py --arch dcgan --steps 50,100,200,400,1000,2000
    python benchmarks/fewshot_quality.py --quick               # a smoke run (16 images, 4 steps)

What runs
- data: `builtin:NAME`, the first `--images` pictures (seed 0) are the whole training set, as an
  artist's small collection would be. The reference set is `--reference` other pictures of the
  same procedural family (seed 1), never trained on, so the score measures whether a model
  learned the family rather than how well it copied its 100 pictures. The score of the training
  set itself against the reference is printed as the floor (two samples of one distribution).
- models: gan_core's trainer (what `python -m gan_core train` runs) with each arch's
  library defaults except the widths (`--width`, ngf = ndf, CPU-sized) and the shared settings:
  batch `--batch`, Adam 2e-4 (0.5, 0.999), DiffAugment color,translation for both (FastGAN's
  default; the fair setting for DCGAN on 100 images too), EMA 0.999 with warm-up, seed 0. FastGAN
  trains with its hinge + reconstruction objective, DCGAN with the non-saturating loss.
- at each step count of `--steps`: the EMA generator makes `--samples` images (seeds 0..N-1, fixed
  noise) and gan_core.metrics.sliced_wasserstein compares them with the reference set (x1e3, per
  pyramid level and the mean); a 4x4 sample grid is written to benchmarks/results/fewshot/. The
  wall-clock seconds of training so far are recorded, so models can be compared at equal steps
  (equal images seen) and at equal time.
- output: a table on stdout and benchmarks/results/fewshot/results.json (appended per arch),
  and, with --figure, docs/fewshot_grid.jpg (rows: reference, then each arch's last grid).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import gan_core  # noqa: E402
from gan_core.data import open_dataset  # noqa: E402
from gan_core.data.procedural import make_builtin  # noqa: E402
from gan_core.images import make_grid, save_image  # noqa: E402
from gan_core.metrics import sliced_wasserstein  # noqa: E402
from gan_core.training.trainer import Trainer  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "fewshot"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="painting")
    p.add_argument("--images", type=int, default=100, help="training pictures")
    p.add_argument("--reference", type=int, default=200, help="held-out reference pictures")
    p.add_argument("--samples", type=int, default=100, help="generated images per evaluation")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--arch", default="fastgan,dcgan")
    p.add_argument("--steps", default="50,100,200,400")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--width", type=int, default=8, help="ngf = ndf of both models")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--figure", action="store_true", help="write docs/fewshot_grid.jpg")
    p.add_argument("--quick", action="store_true", help="16 images, steps 2,4")
    args = p.parse_args(argv)
    if args.quick:
        args.images, args.reference, args.samples, args.steps = 16, 32, 16, "2,4"
    return args


def train_and_score(arch: str, args, data, reference: torch.Tensor) -> list[dict]:
    steps = sorted(int(s) for s in args.steps.split(","))
    cfg = gan_core.TrainConfig(
        arch=arch, size=args.size, steps=steps[0], batch=args.batch, lr_g=2e-4, lr_d=2e-4,
        augment="color,translation", seed=0, preview_every=0, checkpoint_every=0,
        model={"ngf": args.width, "ndf": args.width})
    trainer = Trainer(cfg, data)
    rows, trained = [], 0.0
    for target in steps:
        trainer.cfg.steps = target
        started = time.perf_counter()
        trainer.run_steps()
        trained += time.perf_counter() - started
        model = trainer.model()
        with torch.inference_mode():
            samples = model.generate(range(args.samples))
        trainer.G.train(), trainer.D.train()
        score = sliced_wasserstein(samples, reference)
        grid = make_grid(samples[:16], nrow=4)
        save_image(grid, OUT / f"{arch}_{args.dataset}_{target:05d}.jpg")
        last = {k: v[-1] for k, v in trainer.history.items() if v}
        rows.append({"arch": arch, "step": target, "seconds": round(trained, 1),
                     "swd": {k: round(v, 2) for k, v in score.items()}, "losses": last})
        with open(OUT / "rows.jsonl", "a") as fh:  # survives a run stopped early
            fh.write(json.dumps(rows[-1]) + "\n")
        print(f"{arch:8s} step {target:5d}  {trained:7.1f} s  SWD mean {score['mean']:7.2f}  "
              + "  ".join(f"{k} {v:6.1f}" for k, v in score.items() if k != "mean"), flush=True)
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    OUT.mkdir(parents=True, exist_ok=True)
    data = open_dataset(f"builtin:{args.dataset}", args.size, count=args.images, seed=0)
    reference = make_builtin(args.dataset, args.reference, args.size, seed=1)
    training = data.images.permute(0, 2, 3, 1).float() / 255.0
    floor = sliced_wasserstein(training[:args.samples], reference)
    print(f"floor: the {args.images} training pictures against the reference: SWD mean "
          f"{floor['mean']:.2f}", flush=True)
    results = {"settings": {k: v for k, v in vars(args).items()}, "floor": floor, "runs": []}
    for arch in args.arch.split(","):
        results["runs"] += train_and_score(arch.strip(), args, data, reference)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (OUT / f"results-{stamp}.json").write_text(json.dumps(results, indent=2))
    if args.figure:  # reference | each arch's last grid, side by side, half size
        panels = [make_grid(reference[:16], nrow=4)[0]]
        for arch in args.arch.split(","):
            last = max(r["step"] for r in results["runs"] if r["arch"] == arch.strip())
            panels.append(gan_core.read_image(OUT / f"{arch.strip()}_{args.dataset}_{last:05d}.jpg"))
        gap = torch.ones(panels[0].shape[0], 16, 3)
        strip = torch.cat([x for p in panels for x in (p, gap)][:-1], dim=1)
        half = torch.nn.functional.interpolate(strip.permute(2, 0, 1)[None], scale_factor=0.5,
                                               mode="area")[0].permute(1, 2, 0)
        save_image(half[None], REPO / "docs" / "fewshot_grid.jpg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
