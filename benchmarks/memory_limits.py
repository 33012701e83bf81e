"""Peak memory (RSS) of the large-input paths: does memory stay bounded? (issue 6)

    OMP_NUM_THREADS=1 python benchmarks/memory_limits.py            # every case (~20 min, 1 thread)
    OMP_NUM_THREADS=1 python benchmarks/memory_limits.py --quick    # small sizes, checks the script (~1 min)
    python benchmarks/memory_limits.py --cases stylize_8192 denoise_8192
    python benchmarks/memory_limits.py --full-width                 # stylize with ngf 64 (about 1 h at 8192 px)

Each case runs in a fresh child process (`--child`), because ru_maxrss is a process-lifetime
maximum: the child builds its model (random weights, torch.manual_seed(0)) and its input, notes
its RSS, runs the case once under torch.inference_mode() and reports ru_maxrss (whole process:
Python, torch, the model, the input and output tensors and every temporary).

Cases and goals:
- stylize_8192: one 8192 x 8192 IMAGE through GANModel.stylize(tile=512) with the 9-block
  CycleGAN ResNet generator at ngf 16 (the real architecture, a quarter of the published width so
  the run takes minutes on one core, not an hour; --full-width uses ngf 64). Goal: peak RSS under
  3 GB. The IMAGE itself is 768 MiB and its result another 768 MiB, so the goal leaves about
  1.4 GiB for everything else (one tile's activations, the interpreter, torch).
- denoise_8192: the same image through GANModel.denoise(tile=512) with unet_denoiser (width 16,
  noise-level input: the configuration the README trains and recommends). Goal: under 3 GB.
- {stylize,denoise}_1024_b1 / _b64: 1 and 64 images of 1024 x 1024 (untiled, as a node with
  tile 0 runs them). Images are processed one at a time into one preallocated result, so the goal
  is: peak(b64) <= peak(b1) + 63 x (one input image + one output image) + 10 %. A path that held
  the activations of several images, or concatenated a list of results (the whole output twice),
  would exceed it.
- generate_{64,1024,4096}: GANModel.generate of that many seeds (DCGAN 64 px, batch_size 64).
  Chunked, so peak RSS minus the result's own size is about flat in the count;
  generate_1024_unchunked (batch_size=1024) shows what chunking saves.

Results print as a table and go to benchmarks/results/memory_limits.json (or $OUT/ when OUT is
set). Threads: torch uses OMP_NUM_THREADS (set it to 1 on a shared machine).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import gan_core  # noqa: E402
from gan_core.archs import get_arch  # noqa: E402

GOAL_BYTES = 3e9  # "peak RSS under 3 GB" for one 8192 px image
BATCH_SLACK = 1.10  # b64 may exceed its prediction by 10 %
MIB = 2 ** 20

STYLE_CFG = {"ngf": 16, "n_blocks": 9}
STYLE_CFG_FULL = {"ngf": 64, "n_blocks": 9}
DENOISE_CFG = {"width": 16, "noise_level_input": True}


def cases(quick: bool, full_width: bool) -> dict[str, dict]:
    big, mid, batch = (2048, 256, 8) if quick else (8192, 1024, 64)
    style = STYLE_CFG_FULL if full_width else STYLE_CFG
    out = {
        f"stylize_{big}": dict(task="stylize", arch="cyclegan_resnet", cfg=style, size=big,
                               batch=1, tile=512),
        f"denoise_{big}": dict(task="denoise", arch="unet_denoiser", cfg=DENOISE_CFG, size=big,
                               batch=1, tile=512),
    }
    for task, arch, cfg in (("stylize", "cyclegan_resnet", style),
                            ("denoise", "unet_denoiser", DENOISE_CFG)):
        for b in (1, batch):
            out[f"{task}_{mid}_b{b}"] = dict(task=task, arch=arch, cfg=cfg, size=mid, batch=b,
                                             tile=None)
    counts = (16, 64, 256) if quick else (64, 1024, 4096)
    for n in counts:
        out[f"generate_{n}"] = dict(task="generate", arch="dcgan", cfg={"image_size": 64},
                                    count=n, batch_size=64)
    out[f"generate_{counts[1]}_unchunked"] = dict(task="generate", arch="dcgan",
                                                   cfg={"image_size": 64}, count=counts[1],
                                                   batch_size=counts[1])
    return out


# ------------------------------------------------------------------------------- the child
def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def build(arch: str, cfg: dict) -> gan_core.GANModel:
    spec = get_arch(arch)
    torch.manual_seed(0)
    config = spec.config_cls(**cfg)
    return gan_core.GANModel(arch, config, {"G": spec.build(config)["G"]})


def child(spec: dict) -> dict:
    model = build(spec["arch"], spec["cfg"])
    if spec["task"] == "generate":
        inp_bytes = 0
        run = lambda: model.generate(list(range(spec["count"])),  # noqa: E731
                                     batch_size=spec["batch_size"])
    else:
        # Filled in place: no temporaries of the input's size before the measurement starts.
        images = torch.empty(spec["batch"], spec["size"], spec["size"], 3)
        images.uniform_(0.0, 1.0, generator=torch.Generator().manual_seed(0))
        inp_bytes = images.numel() * 4
        if spec["task"] == "stylize":
            run = lambda: model.stylize(images, tile=spec["tile"])  # noqa: E731
        else:
            run = lambda: model.denoise(images, sigma=15.0, tile=spec["tile"])  # noqa: E731
    before, max_before = rss_bytes(), maxrss_bytes()
    t0 = time.perf_counter()
    with torch.inference_mode():
        result = run()
    seconds = time.perf_counter() - t0
    peak = maxrss_bytes()
    return {"peak_bytes": peak, "rss_before_bytes": before, "maxrss_before_bytes": max_before,
            "input_bytes": inp_bytes, "output_bytes": result.numel() * result.element_size(),
            "output_shape": list(result.shape), "seconds": round(seconds, 2),
            "finite": bool(torch.isfinite(result).all())}


def run_child(spec: dict) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        return {"error": f"child exited with {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------ the parent
def judge(name: str, spec: dict, res: dict, results: dict) -> str:
    if "error" in res:
        return res["error"]
    if spec["task"] in ("stylize", "denoise") and spec["batch"] == 1 and spec["tile"]:
        ok = res["peak_bytes"] < GOAL_BYTES
        return f"{'OK' if ok else 'OVER'}: goal < {GOAL_BYTES / 1e9:.0f} GB"
    if spec["task"] in ("stylize", "denoise") and spec["batch"] > 1:
        one = results.get(name.rsplit("_b", 1)[0] + "_b1")
        if not one or "error" in one:
            return "no b1 figure to compare"
        per_image = (res["input_bytes"] + res["output_bytes"]) / spec["batch"]
        predicted = one["peak_bytes"] + (spec["batch"] - 1) * per_image
        res["predicted_bytes"] = int(predicted)
        ok = res["peak_bytes"] <= BATCH_SLACK * predicted
        return (f"{'OK' if ok else 'OVER'}: b1 peak + {spec['batch'] - 1} x (in + out) = "
                f"{predicted / MIB:.0f} MiB")
    if spec["task"] == "generate":
        res["peak_minus_output_bytes"] = res["peak_bytes"] - res["output_bytes"]
        return f"peak - output = {res['peak_minus_output_bytes'] / MIB:.0f} MiB"
    return ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="2048 px, batch 8, 16-256 seeds")
    ap.add_argument("--full-width", action="store_true", help="stylize with CycleGAN ngf 64")
    ap.add_argument("--cases", nargs="*", help="names of the cases to run (default: all)")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    todo = cases(args.quick, args.full_width)
    if args.cases:
        unknown = set(args.cases) - set(todo)
        if unknown:
            ap.error(f"unknown cases {sorted(unknown)}; known: {', '.join(todo)}")
        todo = {k: v for k, v in todo.items() if k in args.cases}
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, OMP_NUM_THREADS={threads}")
    results: dict[str, dict] = {}
    for name, spec in todo.items():
        res = run_child(spec)
        results[name] = res
        verdict = judge(name, spec, res, results)
        res["verdict"] = verdict
        if "error" in res:
            print(f"{name:28s} {verdict}", flush=True)
            continue
        print(f"{name:28s} peak {res['peak_bytes'] / MIB:7.0f} MiB  (before the call "
              f"{res['rss_before_bytes'] / MIB:6.0f} MiB; in {res['input_bytes'] / MIB:5.0f} + "
              f"out {res['output_bytes'] / MIB:5.0f} MiB)  {res['seconds']:7.1f} s  {verdict}",
              flush=True)
    out_dir = os.environ.get("OUT") or os.path.join(HERE, "results")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "memory_limits" + ("_quick" if args.quick else "") + ".json")
    with open(path, "w") as f:
        json.dump({"date": datetime.datetime.now().isoformat(timespec="seconds"),
                   "machine": platform.platform(), "cpus": os.cpu_count(),
                   "omp_num_threads": threads, "torch": torch.__version__,
                   "cases": {k: {**todo[k], **results[k]} for k in results}}, f, indent=2)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
