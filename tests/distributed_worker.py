"""One process of the 2-process CPU/gloo checks in test_distributed.py.

Started by `python -m torch.distributed.run --standalone --nproc_per_node 2 THIS_FILE OUTDIR`;
each process writes what it saw to OUTDIR/rank<R>.json (rank 0 also OUTDIR/mlp.pt and the
checkpoints), and the test compares that with single-process runs. Not a test module itself.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from torch import nn

import gan_core
from gan_core.training import distributed

BATCH = 4
STEPS = 10


def mlp_config(**overrides) -> gan_core.TrainConfig:
    fields = dict(arch="mlp", size=12, channels=1, steps=STEPS, batch=BATCH, device="cpu",
                  seed=5, preview_every=0, checkpoint_every=0, preview_count=4,
                  augment="color,translation", model={"g_hidden": [16, 32], "d_hidden": [16]})
    fields.update(overrides)
    return gan_core.TrainConfig(**fields)


def mlp_data() -> gan_core.ImageDataset:
    return gan_core.open_dataset("builtin:mondrian", 12, channels=1, count=16, seed=0)


def fastgan_config() -> gan_core.TrainConfig:
    """One step of a narrow FastGAN: enough to check that its noise maps, hinge targets, part
    and reconstruction targets are sharded like the global batch (later steps drift apart by
    rounding, as 1 and 2 threads of one process do)."""
    return gan_core.TrainConfig(arch="fastgan", size=256, steps=1, batch=2, device="cpu", seed=2,
                                preview_every=0, checkpoint_every=0, preview_count=2,
                                augment="color,translation",
                                model={"ngf": 4, "ndf": 4, "latent_dim": 16})


def fastgan_data() -> gan_core.ImageDataset:
    return gan_core.open_dataset("builtin:painting", 256, count=4, seed=0)


def batchnorm_check(rank: int, world: int) -> dict[str, float]:
    """CrossRankBatchNorm on this rank's rows vs BatchNorm2d on the whole batch: outputs,
    input and weight gradients, running statistics (largest absolute differences)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 4, 5, 5, generator=g) * 3 + 1
    w_out = torch.randn(6, 4, 5, 5, generator=g)
    plain = nn.BatchNorm2d(4)
    with torch.no_grad():
        plain.weight.copy_(torch.rand(4, generator=g) + 0.5)
        plain.bias.copy_(torch.randn(4, generator=g))
    host = nn.Sequential(nn.BatchNorm2d(4))
    host.load_state_dict({f"0.{k}": v for k, v in plain.state_dict().items()})
    assert distributed.sync_batchnorm(host) == 1
    cross = host[0]
    rows = distributed.shard_rows(6, world, rank)

    xf = x.clone().requires_grad_(True)
    ref = plain(xf)  # one training-mode pass each: the running statistics move once
    (ref * w_out).sum().backward()
    xs = x[rows].clone().requires_grad_(True)
    out = cross(xs)
    (out * w_out[rows]).sum().backward()
    weight_grad = cross.weight.grad.clone()
    torch.distributed.all_reduce(weight_grad)  # the sum over processes DDP would average
    return {
        "out": (out - ref[rows]).abs().max().item(),
        "grad_x": (xs.grad - xf.grad[rows]).abs().max().item(),
        "grad_w": (weight_grad - plain.weight.grad).abs().max().item(),
        "running_mean": (cross.running_mean - plain.running_mean).abs().max().item(),
        "running_var": (cross.running_var - plain.running_var).abs().max().item(),
    }


def main(outdir: Path) -> None:
    torch.set_num_threads(1)
    with gan_core.distributed_session("cpu") as env:
        rank, world = env.rank, env.world_size
        report: dict = {"rank": rank, "world": world, "is_main": gan_core.is_main_process()}
        report["batchnorm"] = batchnorm_check(rank, world)

        # A full run: what rank 0 holds goes to mlp.pt for the single-process comparison.
        steps_seen = []
        saved = []
        callbacks = gan_core.TrainCallbacks(
            on_step=lambda step, losses: steps_seen.append(step),
            on_checkpoint=lambda step, path: saved.append(step))
        model = gan_core.train(mlp_config(), mlp_data(), out=outdir / "mlp.safetensors",
                               callbacks=callbacks)
        report["mlp"] = {"steps_seen": steps_seen, "checkpoints": saved,
                         "history": model.resume.history}
        if rank == 0:
            torch.save({"history": model.resume.history,
                        "D": model.modules["D"].state_dict(),
                        "images": model.generate("0-7")}, outdir / "mlp.pt")

        # Rank 1 alone asks to stop after step 3: both must stop there, rank 0 saves once.
        done: list[int] = []
        saved_stop: list[int] = []
        callbacks = gan_core.TrainCallbacks(
            on_step=lambda step, losses: done.append(step),
            on_checkpoint=lambda step, path: saved_stop.append(step),
            check_stop=(lambda: len(done) >= 3) if rank == 1 else None)
        stopped = gan_core.train(mlp_config(seed=6), mlp_data(), out=outdir / "stop.safetensors",
                                 callbacks=callbacks)
        report["stop"] = {"steps_seen": done, "checkpoints": saved_stop,
                          "steps": stopped.training["steps"]}

        fast = gan_core.train(fastgan_config(), fastgan_data())
        report["fastgan"] = {"history": fast.resume.history}

        # A global batch that does not split evenly is refused on every process.
        try:
            gan_core.train(mlp_config(batch=5, steps=1), mlp_data())
            report["uneven"] = None
        except ValueError as exc:
            report["uneven"] = str(exc)
    (outdir / f"rank{rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
