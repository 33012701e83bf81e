"""Audio-reactive walks: how long the audio analysis takes against the rendering it drives, and
render frames/s of a 64 px DCGAN and a 256 px StyleGAN2 (random weights) on the CPU (and on
CUDA when there is one).

    python benchmarks/audio_walk.py                  # 60 s song, 24 fps, CPU (and CUDA if any)
    python benchmarks/audio_walk.py --seconds 300    # a 5 minute song's analysis
    python benchmarks/audio_walk.py --threads 2 --frames-stylegan2 8

What runs:
- the song: gan_core.audio.demo_song at 44.1 kHz stereo (clicks, bass, hi-hats, sections),
  `--seconds` long; analysis: gan_core.audio.analyze(song, 44100, fps) (STFT, bands, onsets,
  tempo, smoothing) in one call, and the same through AudioAnalyzer fed 64 Ki-sample blocks
  (the CLI's streaming path); median of --reps;
- per model: gan_core.audio.reactive_motion (preset "pulse", seeds 0-3) over the song's
  features, then gan_core.audio.render_frames (batch 8, noise fixed) for --frames-<model>
  frames after a one-chunk warm-up; median of --reps. The motion's codes are made inside the
  timed loop (they are part of rendering), and the motion's construction is timed alone.
- the share: the analysis' seconds per video frame against render seconds per frame. Goal:
  under 1 % (issue 15).

Models (random weights, torch.manual_seed(0)): DCGAN 64 px (gan_core.get_arch("dcgan"),
default widths: ngf 64, latent 100) and StyleGAN2 256 px (get_arch("stylegan2"), image_size
256, the default 512-d styles, 8-layer mapping, channel multiplier 2).

Results print as a table and go to benchmarks/results/audio_walk.json and, when the OUT
environment variable is set, to $OUT/audio_walk.json as well.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
import gan_core  # noqa: E402
from gan_core import audio as ga  # noqa: E402
from train_throughput import pick_threads  # noqa: E402

RATE = 44100
GOAL_SHARE = 0.01
MODELS = {
    "dcgan64": ("dcgan", {"image_size": 64}),
    "stylegan2_256": ("stylegan2", {"image_size": 256}),
}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_analysis(song: np.ndarray, fps: float, reps: int) -> dict:
    whole, streamed = [], []
    for _ in range(reps):
        t = time.perf_counter()
        features = ga.analyze(song, RATE, fps)
        whole.append(time.perf_counter() - t)
        t = time.perf_counter()
        an = ga.AudioAnalyzer(RATE, fps)
        for i in range(0, song.shape[1], 1 << 16):
            an.feed(song[:, i:i + (1 << 16)])
        an.finish()
        streamed.append(time.perf_counter() - t)
    return {"features": features, "seconds": statistics.median(whole),
            "seconds_all": whole, "streamed_seconds": statistics.median(streamed),
            "streamed_seconds_all": streamed}


def build(name: str, device: torch.device) -> gan_core.GANModel:
    arch, cfg = MODELS[name]
    spec = gan_core.get_arch(arch)
    config = spec.config_cls(**cfg)
    torch.manual_seed(0)
    model = gan_core.GANModel(arch, config, {"G": spec.build(config)["G"]})
    return model.to(device) if str(device) != "cpu" else model


def bench_model(name: str, features: ga.AudioFeatures, frames: int, reps: int,
                device: torch.device, batch: int) -> dict:
    model = build(name, device)
    space = gan_core.LatentSpace(model, device)
    t = time.perf_counter()
    motion = ga.reactive_motion(space, features, [0, 1, 2, 3], "pulse")
    motion_seconds = time.perf_counter() - t
    frames = min(frames, motion.frames)
    with torch.inference_mode():
        ga.render_frames(space, motion, 0, min(batch, frames), batch_size=batch)  # warm-up
        sync(device)
        times = []
        for r in range(reps):
            start = (r * frames) % max(1, motion.frames - frames)
            t = time.perf_counter()
            out = ga.render_frames(space, motion, start, frames, batch_size=batch)
            sync(device)
            times.append(time.perf_counter() - t)
    t = time.perf_counter()
    motion.codes(0, motion.frames)
    codes_seconds = time.perf_counter() - t
    med = statistics.median(times)
    return {"model": name, "arch": model.arch, "image_size": int(out.shape[1]),
            "device": str(device), "frames_timed": frames, "batch": batch,
            "render_seconds_all": times, "render_fps": frames / med,
            "motion_build_seconds": motion_seconds,
            "codes_seconds_whole_song": codes_seconds,
            "parameters": sum(p.numel() for p in model.module.parameters())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=60.0, help="song length (default 60)")
    p.add_argument("--fps", type=float, default=24.0)
    p.add_argument("--threads", default="auto")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--frames-dcgan64", type=int, default=192)
    p.add_argument("--frames-stylegan2_256", type=int, default=8)
    p.add_argument("--devices", nargs="+", default=None,
                   help="default: cpu, and cuda when torch has it")
    args = p.parse_args()
    threads, why = pick_threads(args.threads)
    torch.set_num_threads(threads)
    devices = args.devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    info = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "threads_choice": why,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu": cpu_model(),
        "cores": os.cpu_count(), "python": platform.python_version(),
        "numpy": np.__version__, "load_average": os.getloadavg(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "song_seconds": args.seconds, "fps": args.fps, "sample_rate": RATE,
    }
    print(f"torch {info['torch']}, {info['threads']} threads ({why}), CPU capability "
          f"{info['cpu_capability']}, {info['cpu']} ({info['cores']} cores)"
          + (f", CUDA {info['cuda']}" if info["cuda"] else ""), flush=True)
    t0 = time.perf_counter()
    song = ga.demo_song(args.seconds, RATE, channels=2)
    info["song_synth_seconds"] = round(time.perf_counter() - t0, 3)
    an = time_analysis(song, args.fps, args.reps)
    features = an.pop("features")
    song_frames = features.frames
    analysis = {**an, "frames": song_frames, "seconds_per_frame": an["seconds"] / song_frames,
                "realtime_factor": args.seconds / an["seconds"], **features.summary()}
    print(f"analysis of {args.seconds:g} s (44.1 kHz stereo, {song_frames} frames at "
          f"{args.fps:g} fps): {an['seconds'] * 1000:.0f} ms whole, "
          f"{an['streamed_seconds'] * 1000:.0f} ms streamed "
          f"({analysis['realtime_factor']:.0f}x real time); tempo {features.tempo_bpm:.2f} BPM, "
          f"{int(features.onsets.sum())} onsets", flush=True)
    results = []
    for device in devices:
        for name in MODELS:
            r = bench_model(name, features, getattr(args, f"frames_{name}"), args.reps,
                            torch.device(device), args.batch)
            r["analysis_share"] = analysis["seconds_per_frame"] * r["render_fps"]
            r["render_seconds_whole_song"] = song_frames / r["render_fps"]
            r["meets_goal"] = r["analysis_share"] < GOAL_SHARE
            results.append(r)
            print(f"  {name:14} {device:5} {r['render_fps']:8.2f} frames/s  analysis share "
                  f"{100 * r['analysis_share']:.3f} %  (motion build "
                  f"{r['motion_build_seconds'] * 1000:.0f} ms, codes for the whole song "
                  f"{r['codes_seconds_whole_song'] * 1000:.0f} ms)", flush=True)
    info["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    info["seconds"] = round(time.perf_counter() - t0, 1)
    head = f"{'model':14} {'device':6} {'px':>4} {'frames/s':>9} {'analysis %':>10}  goal <1 %"
    print("\n" + head + "\n" + "-" * len(head))
    for r in results:
        print(f"{r['model']:14} {r['device']:6} {r['image_size']:4d} {r['render_fps']:9.2f} "
              f"{100 * r['analysis_share']:10.3f}  {'yes' if r['meets_goal'] else 'NO'}")
    payload = {"machine": info, "analysis": analysis, "results": results}
    dirs = [os.path.join(HERE, "results")] + ([os.environ["OUT"]] if os.environ.get("OUT") else [])
    for d in dirs:
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "audio_walk.json")
        with open(path, "w") as f:
            json.dump(payload, f, indent=2)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
