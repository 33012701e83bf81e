"""NVIDIA-layout StyleGAN generators on the CPU (and a GPU when there is one): our networks
against the plain reference arithmetic, on the same random weights.

    python benchmarks/stylegan_pkl.py                       # StyleGAN3-T 256 + 1024, SG2 1024
    python benchmarks/stylegan_pkl.py --sizes 1024 --skip-reference-above 1024 --reps 2
    python benchmarks/stylegan_pkl.py --family sg3 --threads 1
    python benchmarks/stylegan_pkl.py --gpu                 # images/s on CUDA (fp32, fp16)

What is measured (BENCHMARKS.md):
  * StyleGAN3-T (channel_base 32768, channel_max 512, random weights), one image per size:
    seconds for gan_core's network and for tests/nvidia_reference_sg3.py (the reference form:
    zero insertion, activation at the upsampled rate, full filtering, decimation), timed
    interleaved in one process (A B A B ...), medians; the max abs difference of their images;
    the peak RSS of a fresh child process running ours alone and of one running the reference
    first (both hold the same weights).
  * StyleGAN2-ADA config F 1024 px, one image: gan_core.archs.stylegan2_ada against
    tests/nvidia_reference_sg2.py the same way (skipped with a message when either is absent).
  * --gpu (CUDA only): images/s at 1024 px, fp32 and fp16 (NVIDIA's use_fp16 layers), batch 1
    and 8, for both families.
Each configuration runs in its own child process (its peak RSS is its own). The reference at
sizes above --skip-reference-above (default 256: one 1024 px StyleGAN3 reference image takes
about 1.5 minutes and 7 GB here) is skipped unless asked for. A JSON of the results goes to
benchmarks/results/stylegan_pkl.json and to $OUT when that is set.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --------------------------------------------------------------------------- the networks

def _sg3(size: int):
    import nvidia_reference_sg3 as ref
    import torch

    from gan_core.archs.stylegan3.network import Generator, StyleGAN3Config
    cfg = StyleGAN3Config(img_resolution=size)  # T: channel_base 32768, channel_max 512
    torch.manual_seed(0)
    G = Generator(cfg).eval()
    with torch.no_grad():  # trained-looking weights: input affine varied, magnitudes ~1
        G.synthesis.input.affine.weight.normal_(0, 0.3)
    geo = ref.reference_geometry(size)
    state = G.state_dict()
    z = torch.from_numpy(np.random.RandomState(1).randn(1, cfg.z_dim)).float()

    def ours():
        return G(z, None, truncation_psi=0.7, noise_mode="const")

    def reference():
        return ref.generator(state, z, None, geo, truncation_psi=0.7)
    return ours, reference


def _sg2(size: int):
    import nvidia_reference_sg2 as ref
    import torch

    from gan_core.archs.stylegan2_ada.network import Generator, StyleGAN2ADAConfig
    cfg = StyleGAN2ADAConfig(img_resolution=size, mapping_layers=8)  # config F
    torch.manual_seed(0)
    G = Generator(cfg).eval()
    state = G.state_dict()
    z = torch.from_numpy(np.random.RandomState(1).randn(1, cfg.z_dim)).float()

    def ours():
        return G(z, None, truncation_psi=0.7, noise_mode="const")

    def reference():
        return ref.generator(state, cfg, z, None, psi=0.7, noise_mode="const")
    return ours, reference


FAMILIES = {"sg3": ("StyleGAN3-T", _sg3), "sg2": ("StyleGAN2-ADA config F", _sg2)}


def _sg2_available() -> str | None:
    if not (ROOT / "tests" / "nvidia_reference_sg2.py").exists():
        return "tests/nvidia_reference_sg2.py does not exist yet"
    if not (ROOT / "gan_core" / "archs" / "stylegan2_ada" / "network.py").exists():
        return "gan_core/archs/stylegan2_ada does not exist yet"
    return None


# --------------------------------------------------------------------------- child process

def child(spec: dict) -> dict:
    """Runs in a fresh process: spec = {family, size, threads, reps, mode}; mode "ours" (ours
    alone, for its peak RSS and times) or "pair" (the reference first, for its peak RSS, then
    interleaved timings and the difference)."""
    import torch
    torch.set_num_threads(spec["threads"])
    ours, reference = FAMILIES[spec["family"]][1](spec["size"])
    out: dict = {"rss_after_build_mb": _peak_rss_mb()}
    with torch.inference_mode():
        if spec["mode"] == "ours":
            t = time.perf_counter()
            ours()  # warm-up (the first call also touches the process's fresh memory)
            out["first_s"] = time.perf_counter() - t
            times = []
            for _ in range(spec["reps"]):
                t = time.perf_counter()
                ours()
                times.append(time.perf_counter() - t)
            out.update(ours_s=times, peak_rss_mb=_peak_rss_mb())
            return out
        t = time.perf_counter()
        want = reference()
        ref_times = [time.perf_counter() - t]
        out["reference_peak_rss_mb"] = _peak_rss_mb()
        got = ours()  # warm-up of ours
        out["max_abs_diff"] = float((got - want).abs().max())
        out["image_range"] = [float(want.min()), float(want.max())]
        our_times = []
        for i in range(spec["reps"]):  # A B A B: ours, reference
            t = time.perf_counter()
            ours()
            our_times.append(time.perf_counter() - t)
            if i + 1 < spec["reps"]:
                t = time.perf_counter()
                reference()
                ref_times.append(time.perf_counter() - t)
        out.update(ours_s=our_times, reference_s=ref_times)
        return out


def _run_child(spec: dict) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(spec["threads"]),
               MKL_NUM_THREADS=str(spec["threads"]))
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                          capture_output=True, text=True, env=env, cwd=str(ROOT))
    if proc.returncode != 0:
        return {"error": (proc.stderr or proc.stdout)[-2000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- GPU part

def gpu_part(reps: int) -> dict:
    import torch
    if not torch.cuda.is_available():
        print("GPU part: CUDA is not available, skipped")
        return {"skipped": "no CUDA"}
    from gan_core.archs.stylegan3.network import Generator as G3
    from gan_core.archs.stylegan3.network import StyleGAN3Config
    results: dict = {"device": torch.cuda.get_device_name(0)}
    makers = {"StyleGAN3-T 1024": lambda: G3(StyleGAN3Config())}
    if _sg2_available() is None:
        from gan_core.archs.stylegan2_ada.network import Generator as G2
        from gan_core.archs.stylegan2_ada.network import StyleGAN2ADAConfig
        makers["StyleGAN2-ADA F 1024"] = lambda: G2(StyleGAN2ADAConfig(mapping_layers=8))
    for label, make in makers.items():
        torch.manual_seed(0)
        G = make().cuda().eval()
        for batch in (1, 8):
            for precision in ("fp32", "fp16"):
                z = torch.randn(batch, 512, device="cuda")
                kw = {"force_fp32": precision == "fp32"}  # fp16: NVIDIA's use_fp16 layers
                torch.cuda.reset_peak_memory_stats()
                with torch.inference_mode():
                    try:
                        G(z, None, **kw)
                        torch.cuda.synchronize()
                        times = []
                        for _ in range(reps):
                            t = time.perf_counter()
                            G(z, None, **kw)
                            torch.cuda.synchronize()
                            times.append(time.perf_counter() - t)
                    except Exception as exc:
                        results[f"{label} b{batch} {precision}"] = {"error": repr(exc)[:300]}
                        continue
                sec = _median(times)
                entry = {"images_per_s": batch / sec, "seconds": sec,
                         "max_memory_mb": torch.cuda.max_memory_allocated() / 2 ** 20}
                results[f"{label} b{batch} {precision}"] = entry
                print(f"  {label:24s} batch {batch} {precision}: {batch / sec:8.2f} images/s "
                      f"({entry['max_memory_mb']:.0f} MB)")
        del G
        torch.cuda.empty_cache()
    return results


# --------------------------------------------------------------------------- main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="256,1024", help="StyleGAN3 sizes (comma separated)")
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions per network")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--family", choices=("all", "sg3", "sg2"), default="all")
    ap.add_argument("--skip-reference-above", type=int, default=256,
                    help="run the reference only at sizes up to this (0: never)")
    ap.add_argument("--gpu", action="store_true", help="also the CUDA images/s part")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0

    import torch
    torch.set_num_threads(args.threads)
    header = {"torch": torch.__version__, "threads": args.threads,
              "cpu_capability": torch.backends.cpu.get_cpu_capability(),
              "machine": platform.processor() or platform.machine(),
              "cpu_count": os.cpu_count(), "date": time.strftime("%Y-%m-%d"),
              "load_average": list(os.getloadavg())}
    print(f"torch {header['torch']}, {args.threads} threads, CPU capability "
          f"{header['cpu_capability']}, {os.cpu_count()} cores, load {header['load_average']}")
    runs = []
    plan = []
    if args.family in ("all", "sg3"):
        plan += [("sg3", int(s)) for s in args.sizes.split(",") if s.strip()]
    if args.family in ("all", "sg2"):
        missing = _sg2_available()
        if missing:
            print(f"StyleGAN2-ADA part skipped: {missing}")
        else:
            plan.append(("sg2", 1024))
    for family, size in plan:
        label = f"{FAMILIES[family][0]} {size} px"
        with_ref = 0 < size <= args.skip_reference_above or family == "sg2"
        base = {"family": family, "size": size, "threads": args.threads, "reps": args.reps}
        entry = {"label": label, "family": family, "size": size}
        alone = _run_child({**base, "mode": "ours"})
        entry["ours_alone"] = alone
        if "error" in alone:
            print(f"{label}: ours failed:\n{alone['error']}")
        else:
            print(f"{label}: ours {_median(alone['ours_s']):.2f} s median of "
                  f"{len(alone['ours_s'])} (first call {alone['first_s']:.2f} s), peak RSS "
                  f"{alone['peak_rss_mb']:.0f} MB")
        if with_ref:
            pair = _run_child({**base, "mode": "pair"})
            entry["pair"] = pair
            if "error" in pair:
                print(f"{label}: reference run failed:\n{pair['error']}")
            else:
                o, r = _median(pair["ours_s"]), _median(pair["reference_s"])
                entry["speedup"] = r / o
                print(f"{label}: interleaved ours {o:.2f} s vs reference {r:.2f} s -> "
                      f"{r / o:.1f}x; reference peak RSS {pair['reference_peak_rss_mb']:.0f} MB; "
                      f"max abs diff {pair['max_abs_diff']:.2e} (image range "
                      f"{pair['image_range'][0]:.2f}..{pair['image_range'][1]:.2f})")
        else:
            print(f"{label}: reference skipped (above --skip-reference-above "
                  f"{args.skip_reference_above})")
        runs.append(entry)
    results = {"header": header, "runs": runs}
    if args.gpu:
        results["gpu"] = gpu_part(max(3, args.reps))
    text = json.dumps(results, indent=1)
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "stylegan_pkl.json").write_text(text)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"]).mkdir(parents=True, exist_ok=True)
        (Path(os.environ["OUT"]) / "stylegan_pkl.json").write_text(text)
    print(f"results: {out_dir / 'stylegan_pkl.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
