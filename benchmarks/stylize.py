"""Seconds and peak memory of large-image inference: stylize (CycleGAN) and denoise (DnCNN, DRUNet),
tiled vs untiled, against the plain reference forward pass.

    python benchmarks/stylize.py                      # stylize: 1024 px timed, 4096 px tiled 512
    python benchmarks/stylize.py --sizes 1024         # only the 1024 px part (~5 min)
    python benchmarks/stylize.py --full               # + 4096 px untiled and reference (~15 GiB each, slow)
    python benchmarks/stylize.py --task denoise       # DnCNN-17 / DRUNet colour at 1024 px
    python benchmarks/stylize.py --tile 256 512 1024  # the tile-size trade-off (each tile a config)
    python benchmarks/stylize.py --threads 2          # default --threads auto (as train_throughput)

What runs (random weights from gan_core's builders, torch.manual_seed(0); one synthetic photo-like
image per size: a bilinear upsampling of random colours plus fine noise, [1, H, W, 3] in [0, 1]):
- stylize: the 9-block, ngf-64 CycleGAN ResNet generator (instance norm, reflection padding).
  - reference: the network called directly on the whole image under torch.inference_mode(), as the
    original project's test script does: IMAGE -> NCHW in [-1, 1] -> netG -> [0, 1] (the sizes
    here are multiples of 4, so nothing is padded);
  - untiled: GANModel.stylize(image) (gan_core.infer.stylize: padding, range conversion, no tiles);
  - tiled T: GANModel.stylize(image, tile=T): overlapping tiles (default overlap, T/8) blended,
    instance-norm statistics frozen from a 512 px downscaled copy.
- denoise: DnCNN-17 (nc 64, colour, in/out 3) and DRUNet (colour: 3 + noise map, sigma 15).
  - reference: KAIR / DPIR's test scripts: net(img) (DRUNet: net(cat(img, sigma/255 map))),
    clamped to [0, 1];
  - untiled / tiled T: GANModel.denoise(image, sigma=15, tile=None / T).

Timing: one child process per (task, model, size) runs every config there in interleaved reps
(A B C, B C A, C A B, ...) after a warm-up (one call of each config on a 256 px image), and reports
medians and the median of per-rep ratios, measured in that one process. Default reps: 3 at 1024 px
(each rep of each config takes 10-40 s on 2 cores). Sizes above --time-max (1024) are not timed
in reps: their single call in the memory child (below) is the figure, 1 rep.

Memory: ru_maxrss is a process-lifetime maximum, so every config's peak RSS is measured in a fresh
child process (`--child mem`) that builds the network and the image, records its RSS, runs the
config once and reports peak RSS (total, and the increase over the RSS before the call). The
parent collects the children's JSON lines.

Runtime on the 2-core development machine: the default run takes 10-13 min with 2 threads
(1024 px: ~5 min, each rep of each config 15-60 s; 4096 px tiled at 512: ~5-6.5 min for one
call, which no rep count can shorten), longer with 1 thread or under load. --sizes 1024 and
--sizes 4096 split it into two shorter runs.

Goals (issue 3): tiled 4096 px on CPU with peak RSS under 2 GB (2e9 bytes, whole process), and
tiled seconds within 1.25x of untiled at 1024 px. Untiled and reference runs at 4096 px need about
15 GiB and minutes each: only with --full.

Results print as a table and go to benchmarks/results/stylize.json (denoise.json for
--task denoise), or to $OUT/ when the OUT environment variable is set.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
import gan_core  # noqa: E402
from gan_core.archs import get_arch  # noqa: E402
from train_throughput import _cpu_model, matmul_gflops, pick_threads  # noqa: E402

SIGMA = 15.0  # DRUNet's noise level (gan_core.infer.DEFAULT_SIGMA), 0..255 units
GOAL_PEAK_BYTES = 2e9  # tiled 4096 px, whole-process peak RSS
GOAL_TILED_RATIO = 1.25  # tiled / untiled seconds at 1024 px
MODELS = {"stylize": ["cyclegan"], "denoise": ["dncnn", "drunet"]}


# ---------------------------------------------------------------- what one config runs
def build(model: str, seed: int = 0) -> gan_core.GANModel:
    torch.manual_seed(seed)
    if model == "cyclegan":
        arch, cfg = "cyclegan_resnet", dict(ngf=64, n_blocks=9, norm="instance")
    elif model == "dncnn":
        arch, cfg = "dncnn", dict(in_nc=3, out_nc=3, nc=64, nb=17)
    elif model == "drunet":
        arch, cfg = "drunet", dict(in_nc=4, out_nc=3)
    else:
        raise ValueError(model)
    spec = get_arch(arch)
    config = spec.config_cls(**cfg)
    return gan_core.GANModel(arch, config, {"G": spec.build(config)["G"]})


def make_image(size: int, seed: int = 0) -> torch.Tensor:
    """[1, size, size, 3] in [0, 1]: smooth random colours plus fine noise (photo-like enough
    that instance-norm statistics and tile agreement mean something)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, 3, max(2, size // 64), max(2, size // 64), generator=g)
    # channels_last in, channels_last out: the NHWC permute below is then a view, and the noise
    # is added in bands, so building a 4096 px image never holds a second full-size buffer
    # (the setup's peak would otherwise count in the process's peak RSS).
    x = F.interpolate(low.contiguous(memory_format=torch.channels_last), size=(size, size),
                      mode="bilinear", align_corners=False)
    img = x.permute(0, 2, 3, 1)
    assert img.is_contiguous()
    for r in range(0, size, 256):
        band = img[:, r:r + 256]
        band.add_(torch.randn(band.shape, generator=g), alpha=0.05).clamp_(0.0, 1.0)
    return img


def runner(model: gan_core.GANModel, name: str, config: str):
    """A function image -> image for one config: 'reference', 'untiled' or 'tiled:T'."""
    net = model.module.eval()
    if config == "reference":
        if name == "cyclegan":
            def ref(img):
                with torch.inference_mode():
                    x = img.permute(0, 3, 1, 2) * 2.0 - 1.0  # H, W here are multiples of 4
                    y = net(x)
                    return ((y + 1.0) * 0.5).clamp(0.0, 1.0).permute(0, 2, 3, 1)
        elif name == "dncnn":
            def ref(img):
                with torch.inference_mode():
                    return net(img.permute(0, 3, 1, 2)).clamp(0.0, 1.0).permute(0, 2, 3, 1)
        else:
            def ref(img):
                with torch.inference_mode():
                    x = img.permute(0, 3, 1, 2)  # H, W here are multiples of 8
                    x = torch.cat([x, x.new_full((1, 1, *x.shape[-2:]), SIGMA / 255.0)], 1)
                    return net(x).clamp(0.0, 1.0).permute(0, 2, 3, 1)
        return ref
    tile = None if config == "untiled" else int(config.split(":")[1])
    if name == "cyclegan":
        return lambda img: model.stylize(img, tile=tile)
    sigma = SIGMA if name == "drunet" else None
    return lambda img: model.denoise(img, sigma=sigma, tile=tile)


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ---------------------------------------------------------------- children
def child_mem(spec: dict) -> dict:
    """One call of one config in this fresh process: seconds and peak RSS."""
    model = build(spec["model"])
    img = make_image(spec["size"])
    fn = runner(model, spec["model"], spec["config"])
    before, max_before = rss_mib(), maxrss_mib()
    t = time.perf_counter()
    out = fn(img)
    secs = time.perf_counter() - t
    peak = maxrss_mib()
    assert out.shape == img.shape, (out.shape, img.shape)
    return {"seconds": secs, "rss_before_mib": before, "peak_before_mib": max_before,
            "peak_rss_mib": peak, "peak_increase_mib": peak - before}


def child_time(spec: dict) -> dict:
    """Every config of one (model, size) in interleaved reps, in this one process."""
    model = build(spec["model"])
    img = make_image(spec["size"])
    configs = spec["configs"]
    fns = {c: runner(model, spec["model"], c) for c in configs}
    small = make_image(256, seed=1)
    t = time.perf_counter()
    for c in configs:  # warm-up: threads, allocator, kernels
        fns[c](small)
    warm = time.perf_counter() - t
    secs: dict[str, list[float]] = {c: [] for c in configs}
    outs: dict[str, torch.Tensor] = {}
    for rep in range(spec["reps"]):
        k = rep % len(configs)
        for c in configs[k:] + configs[:k]:
            t = time.perf_counter()
            out = fns[c](img)
            secs[c].append(time.perf_counter() - t)
            if rep == 0:
                outs[c] = out
            del out
            print(f"    {spec['model']} {spec['size']} px rep {rep}: {c:12} "
                  f"{secs[c][-1]:7.2f} s", file=sys.stderr, flush=True)
    # How far each config's output is from the reference (0..1 units): the tiles' agreement.
    diffs = {}
    if "reference" in outs:
        for c, o in outs.items():
            if c != "reference":
                d = (o - outs["reference"]).abs()
                diffs[c] = {"mean_abs": float(d.mean()), "max_abs": float(d.max())}
    return {"seconds": secs, "warmup_seconds": warm, "diff_vs_reference": diffs}


def run_child(kind: str, spec: dict, threads: int) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", kind, "--spec", json.dumps(spec),
           "--threads", str(threads)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        # An untiled 4096 px run may be killed for memory: record it instead of failing.
        return {"error": f"child exited with {proc.returncode}", "returncode": proc.returncode}
    return json.loads(lines[-1][len("RESULT "):])


# ---------------------------------------------------------------- the parent
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", choices=("stylize", "denoise"), default="stylize")
    p.add_argument("--sizes", type=int, nargs="+", default=None,
                   help="image sides in px (default: stylize 1024 4096, denoise 1024)")
    p.add_argument("--tile", type=int, nargs="+", default=[512],
                   help="tile sizes to compare (each one a config); default 512")
    p.add_argument("--reps", type=int, default=3, help="interleaved timed reps at timed sizes")
    p.add_argument("--time-max", type=int, default=1024,
                   help="largest size timed in interleaved reps (larger: one call, memory child)")
    p.add_argument("--full", action="store_true",
                   help="also untiled and reference runs above --time-max (~15 GiB at 4096 px)")
    p.add_argument("--threads", default="auto",
                   help="torch threads; auto: all cores on a quiet machine, fewer under load")
    p.add_argument("--json", default=None,
                   help="results file name (default: stylize.json / denoise.json)")
    p.add_argument("--child", choices=("mem", "time"), help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.child:
        torch.set_num_threads(int(args.threads))
        spec = json.loads(args.spec)
        res = child_mem(spec) if args.child == "mem" else child_time(spec)
        res.update(spec=spec, threads=torch.get_num_threads())
        print("RESULT " + json.dumps(res), flush=True)
        return

    sizes = args.sizes or ([1024, 4096] if args.task == "stylize" else [1024])
    threads, why = pick_threads(args.threads)
    torch.set_num_threads(threads)
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__, "threads": threads,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu": _cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
        "load_average_start": os.getloadavg(), "threads_choice": why,
        "command": "python " + " ".join([os.path.relpath(__file__)] + sys.argv[1:]),
        "reps": args.reps, "time_max": args.time_max, "full": args.full,
    }
    print(f"torch {info['torch']}, {threads} threads, CPU capability {info['cpu_capability']}, "
          f"{info['cpu']} ({info['cores']} cores), {info['date']}")
    print(f"threads: {why}")
    t_start = time.perf_counter()
    mm = matmul_gflops(reps=3)
    print(f"fp32 matmul 2048^3: {statistics.median(mm):.1f} GFLOP/s", flush=True)

    rows = []
    for name in MODELS[args.task]:
        for size in sizes:
            tiled = [f"tiled:{t}" for t in args.tile if t < size]  # tile >= size is untiled
            timed = size <= args.time_max
            configs = ["reference", "untiled"] + tiled if (timed or args.full) else tiled
            print(f"\n{name} {size} px: configs {configs}", flush=True)
            timing = None
            if timed:
                print(f"  timing child ({args.reps} interleaved reps)", flush=True)
                timing = run_child("time", {"model": name, "size": size, "configs": configs,
                                            "reps": args.reps}, threads)
            for c in configs:
                mem = run_child("mem", {"model": name, "size": size, "config": c}, threads)
                row = {"model": name, "size": size, "config": c, "memory_child": mem}
                if timing and "seconds" in timing:
                    row["seconds_reps"] = timing["seconds"][c]
                    row["seconds"] = statistics.median(timing["seconds"][c])
                    row["reps"] = len(timing["seconds"][c])
                    row["diff_vs_reference"] = timing["diff_vs_reference"].get(c)
                    row["warmup_seconds_all_configs"] = timing["warmup_seconds"]
                    for base in ("reference", "untiled"):
                        r = [a / b for a, b in zip(timing["seconds"][c], timing["seconds"][base])]
                        row[f"ratio_vs_{base}"] = statistics.median(r)
                elif "seconds" in mem:
                    row["seconds"], row["reps"] = mem["seconds"], 1
                row["peak_rss_mib"] = mem.get("peak_rss_mib")
                row["peak_increase_mib"] = mem.get("peak_increase_mib")
                rows.append(row)
                print(f"  {c:12} {row.get('seconds', float('nan')):8.2f} s  peak RSS "
                      f"{row['peak_rss_mib'] or float('nan'):8.0f} MiB"
                      f"{'  ' + mem['error'] if 'error' in mem else ''}", flush=True)

    # Goals
    goals = {}
    if args.task == "stylize":
        big = [r for r in rows if r["size"] == 4096 and r["config"].startswith("tiled")]
        small = [r for r in rows if r["size"] == 1024 and r["config"].startswith("tiled")]
        for r in big:
            goals[f"4096 {r['config']} peak RSS < 2 GB"] = (
                r["peak_rss_mib"] is not None and r["peak_rss_mib"] * 2**20 < GOAL_PEAK_BYTES)
        for r in small:
            goals[f"1024 {r['config']} within {GOAL_TILED_RATIO}x of untiled"] = (
                r.get("ratio_vs_untiled") is not None
                and r["ratio_vs_untiled"] <= GOAL_TILED_RATIO)

    mm += matmul_gflops(reps=3)
    info.update(matmul_gflops=mm, matmul_gflops_median=statistics.median(mm),
                load_average_end=os.getloadavg(), seconds=round(time.perf_counter() - t_start, 1))

    print(f"\nfp32 matmul 2048^3: {info['matmul_gflops_median']:.1f} GFLOP/s (median, start and "
          f"end); load average {info['load_average_start'][0]:.2f} -> "
          f"{info['load_average_end'][0]:.2f}; {threads} threads; {info['seconds']} s")
    head = (f"{'model':8} {'size':>5} {'config':12} {'reps':>4} {'seconds':>8} {'x ref':>6} "
            f"{'x untiled':>9} {'peak RSS MiB':>12} {'+ over setup':>12} {'mean|d| ref':>11}")
    print(head + "\n" + "-" * len(head))

    def f(v, fmt):
        return format(v, fmt) if v is not None else "-"
    for r in rows:
        d = r.get("diff_vs_reference")
        print(f"{r['model']:8} {r['size']:5d} {r['config']:12} {r.get('reps', 0):4d} "
              f"{f(r.get('seconds'), '8.2f'):>8} {f(r.get('ratio_vs_reference'), '5.2f'):>5}x "
              f"{f(r.get('ratio_vs_untiled'), '8.2f'):>8}x {f(r['peak_rss_mib'], '12.0f'):>12} "
              f"{f(r['peak_increase_mib'], '12.0f'):>12} {f(d and d['mean_abs'], '11.4f'):>11}")
    for g, ok in goals.items():
        print(f"goal: {g}: {'yes' if ok else 'NO'}")

    out_dir = os.environ.get("OUT") or os.path.join(HERE, "results")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, args.json or f"{args.task}.json")
    with open(path, "w") as fh:
        json.dump({"machine": info, "results": rows, "goals": goals}, fh, indent=2)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
