"""One script that runs every CUDA path of GAN Atelier once and prints the GPU figures the
issues ask for. Under 5 minutes on one GPU; without CUDA it says so and exits 0.

    python benchmarks/gpu_check.py            # all sections
    python benchmarks/gpu_check.py --only train,tiles

Sections (each runs on its own: a failure is printed and the next section still runs):
  train    a few AMP + channels_last steps of every trainable family (GAN, denoise, style
           trainers) against the same steps in fp32 / contiguous: images/s for both
  tiles    tiled inference with a real CUDA out-of-memory (the process's memory capped), so the
           tile-halving fallback runs, plus the untiled / tiled stylize and denoise figures
  ddp      a one-process NCCL group: DistributedDataParallel wrapping, a training step through
           the wrapper and the all-reduce the trainer uses for losses
  generate images/s for every generator family at its public size, fp32 and fp16 autocast,
           batch 1 and 8 (the NVIDIA families at 1024 px)
The figures go to stdout and, as JSON, to benchmarks/results/gpu_check.json and to $OUT when
that is set.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sys
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout
import gan_core  # noqa: E402

SECTIONS = ("train", "tiles", "ddp", "generate")
RESULTS: dict = {}
DEVICE = "cuda"  # --cpu-smoke: "cpu", to check this script's own code before a GPU run
STEPS = 6


def _sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def _timed(fn, reps: int = 3) -> float:
    """Median seconds of fn() after one warm-up call."""
    fn()
    _sync()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


# --------------------------------------------------------------------------- train

# Small but real settings per trainer, sized so each family's steps take seconds.
def _gan_settings(arch: str) -> tuple[dict, int]:
    profile = gan_core.get_arch(arch).training.profile("cpu")
    size = profile.get("size", 64)
    return {"size": size, "batch": 32 if size <= 64 else 8,
            "augment": profile.get("augment", "")}, size


def _train_gan(arch: str, amp: str, layout: str) -> float:
    steps = STEPS
    settings, size = _gan_settings(arch)
    data = gan_core.open_dataset("builtin:blobs", size, count=64,
                                 channels=gan_core.get_arch(arch).training.default_channels)
    cfg = gan_core.TrainConfig(arch=arch, steps=steps, device=DEVICE, amp=amp,
                               channels_last=layout, preview_every=0, checkpoint_every=0,
                               **settings)
    t = time.perf_counter()
    gan_core.train(cfg, data)
    _sync()
    return steps * cfg.batch / (time.perf_counter() - t)


def _train_denoise(arch: str, amp: str, layout: str) -> float:
    steps = STEPS
    data = gan_core.open_dataset("builtin:mondrian", 128, count=32)
    adv = 0.01 if arch == gan_core.default_arch("denoise") else 0.0
    cfg = gan_core.DenoiseTrainConfig(arch=arch, size=64, steps=steps, batch=16, device=DEVICE,
                                      amp=amp, channels_last=layout, adv_weight=adv,
                                      preview_every=0, checkpoint_every=0)
    t = time.perf_counter()
    gan_core.train_denoiser(cfg, data)
    _sync()
    return steps * cfg.batch / (time.perf_counter() - t)


def _train_style(arch: str, amp: str, layout: str) -> float:
    steps = STEPS
    content = gan_core.open_crop_source("builtin:blobs", count=8)
    style = gan_core.open_crop_source("builtin:painting", count=1)
    cfg = gan_core.StyleTrainConfig(arch=arch, size=128, steps=steps, device=DEVICE, amp=amp,
                                    channels_last=layout, preview_every=0, checkpoint_every=0,
                                    model={"ngf": 32, "ndf": 64, "n_blocks": 6})
    t = time.perf_counter()
    gan_core.train_style(cfg, content, style)
    _sync()
    return steps * cfg.batch / (time.perf_counter() - t)


def section_train() -> dict:
    runners = {"gan": _train_gan, "denoise": _train_denoise, "style": _train_style}
    out = {}
    for trainer, run in runners.items():
        for arch in gan_core.list_archs(trainer=trainer):
            try:
                fast = run(arch, "auto", "on")
                plain = run(arch, "off", "off")
                out[arch] = {"amp_channels_last_img_s": round(fast, 2),
                             "fp32_img_s": round(plain, 2), "speedup": round(fast / plain, 3)}
            except Exception as exc:  # noqa: BLE001 - report and go on
                out[arch] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"  train {arch:16s} {out[arch]}", flush=True)
    return out


# --------------------------------------------------------------------------- tiles

def section_tiles() -> dict:
    out = {}
    spec = gan_core.get_arch(gan_core.default_arch("style"))
    torch.manual_seed(0)
    cfg = spec.config_cls(ngf=64, n_blocks=9)
    model = gan_core.GANModel(spec.name, cfg, {"G": spec.build(cfg)["G"]}).to("cuda")
    img = gan_core.make_builtin("blobs", 1, 2048, seed=1)
    with torch.inference_mode():
        t = time.perf_counter()
        whole = model.stylize(img)
        _sync()
        out["stylize_2048_untiled_s"] = round(time.perf_counter() - t, 2)
        out["stylize_2048_untiled_peak_mib"] = torch.cuda.max_memory_allocated() // 2 ** 20
        torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        tiled = model.stylize(img, tile=512)
        _sync()
        out["stylize_2048_tile512_s"] = round(time.perf_counter() - t, 2)
        out["stylize_2048_tile512_peak_mib"] = torch.cuda.max_memory_allocated() // 2 ** 20
        out["tiled_vs_untiled_mean_abs"] = float((tiled - whole).abs().mean())
        del whole, tiled
        # A real out-of-memory: cap this process below what the untiled 2048 px run needs, so
        # the tiler's fallback empties the cache, halves the tile and retries.
        torch.cuda.empty_cache()
        total = torch.cuda.get_device_properties(0).total_memory
        cap = min(1.0, 1.5 * 2 ** 30 / total)
        torch.cuda.set_per_process_memory_fraction(cap)
        try:
            t = time.perf_counter()
            capped = model.stylize(img, tile=2048)
            _sync()
            out["oom_fallback"] = {"cap_mib": int(cap * total / 2 ** 20),
                                   "seconds": round(time.perf_counter() - t, 2),
                                   "ok": bool(torch.isfinite(capped).all())}
        except gan_core.GanAtelierError as exc:
            out["oom_fallback"] = {"error": str(exc)}
        finally:
            torch.cuda.set_per_process_memory_fraction(1.0)
            torch.cuda.empty_cache()
    dspec = gan_core.get_arch(gan_core.default_arch("denoise"))
    dcfg = dspec.config_cls(width=32, noise_level_input=True)
    dmodel = gan_core.GANModel(dspec.name, dcfg, {"G": dspec.build(dcfg)["G"]}).to("cuda")
    big = gan_core.make_builtin("mondrian", 1, 4096, seed=2)
    torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    dmodel.denoise(big, sigma=25, tile=1024)
    _sync()
    out["denoise_4096_tile1024_s"] = round(time.perf_counter() - t, 2)
    out["denoise_4096_tile1024_peak_mib"] = torch.cuda.max_memory_allocated() // 2 ** 20
    print(f"  tiles {out}", flush=True)
    return out


# --------------------------------------------------------------------------- ddp

def section_ddp() -> dict:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=0,
                            world_size=1, device_id=torch.device("cuda", 0))
    try:
        spec = gan_core.get_arch(gan_core.default_arch("gan"))
        cfg = spec.config_cls(image_size=64)
        parts = spec.build(cfg)
        d = parts["D"].cuda().to(memory_format=torch.channels_last)
        ddp = DDP(d, device_ids=[0])
        opt = torch.optim.Adam(ddp.parameters(), lr=2e-4)
        x = torch.randn(16, 3, 64, 64, device="cuda").contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = ddp(x).float().mean()
        loss.backward()
        opt.step()
        value = torch.tensor([loss.item()], device="cuda")
        dist.all_reduce(value)
        _sync()
        out = {"backend": dist.get_backend(), "loss": float(value), "ok": True}
    finally:
        dist.destroy_process_group()
    print(f"  ddp {out}", flush=True)
    return out


# --------------------------------------------------------------------------- generate

def section_generate() -> dict:
    out = {}
    for arch in gan_core.list_archs("generate"):
        spec = gan_core.get_arch(arch)
        try:
            torch.manual_seed(0)
            cfg = spec.config_cls()  # each family's defaults: its public configuration
            net = spec.build(cfg)["G"]
            model = gan_core.GANModel(arch, cfg, {"G": net}).to(DEVICE)
            row = {}
            for batch in (1, 8) if DEVICE == "cuda" else (1,):
                for precision in ("fp32", "fp16") if DEVICE == "cuda" else ("fp32",):
                    ctx = (torch.autocast("cuda", dtype=torch.float16) if precision == "fp16"
                           else contextlib.nullcontext())
                    with ctx:
                        sec = _timed(lambda: model.generate(range(batch), batch_size=batch,
                                                            device=DEVICE),
                                     reps=3 if DEVICE == "cuda" else 1)
                    row[f"{precision}_batch{batch}_img_s"] = round(batch / sec, 2)
            out[arch] = {"size": model.image_size or getattr(cfg, "img_resolution", 0), **row}
        except Exception as exc:  # noqa: BLE001 - report and go on
            out[arch] = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"  generate {arch:12s} {out[arch]}", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(SECTIONS),
                    help=f"comma-separated sections (default: all of {','.join(SECTIONS)})")
    ap.add_argument("--cpu-smoke", action="store_true",
                    help="run the train and generate sections on the CPU with one step each: "
                         "checks this script before a GPU session spends time on it")
    args = ap.parse_args()
    print(f"torch {torch.__version__}; gan_core {gan_core.__version__}")
    if args.cpu_smoke:
        global DEVICE, STEPS
        DEVICE, STEPS = "cpu", 1
        for name in ("train", "generate"):
            print(f"[{name} on the CPU, smoke test]", flush=True)
            globals()[f"section_{name}"]()
        return 0
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check here (this script only exercises the GPU "
              "paths); exit 0")
        return 0
    props = torch.cuda.get_device_properties(0)
    RESULTS["device"] = {"name": props.name, "capability": f"{props.major}.{props.minor}",
                         "memory_gib": round(props.total_memory / 2 ** 30, 1),
                         "bf16": torch.cuda.is_bf16_supported(),
                         "cuda": torch.version.cuda}
    print(f"device: {RESULTS['device']}", flush=True)
    started = time.perf_counter()
    chosen = [s for s in args.only.split(",") if s]
    for name in chosen:
        if name not in SECTIONS:
            raise SystemExit(f"unknown section {name!r}; expected some of {SECTIONS}")
        print(f"[{name}]", flush=True)
        t = time.perf_counter()
        try:
            RESULTS[name] = globals()[f"section_{name}"]()
        except Exception:  # noqa: BLE001 - a failed section is a finding; go on
            RESULTS[name] = {"error": traceback.format_exc(limit=5)}
            print(RESULTS[name]["error"], flush=True)
        RESULTS.setdefault("seconds", {})[name] = round(time.perf_counter() - t, 1)
    RESULTS["seconds"]["total"] = round(time.perf_counter() - started, 1)
    text = json.dumps(RESULTS, indent=2)
    folders = [Path(__file__).parent / "results"]
    if os.environ.get("OUT"):
        folders.append(Path(os.environ["OUT"]))
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "gpu_check.json").write_text(text)
    print(f"total {RESULTS['seconds']['total']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
