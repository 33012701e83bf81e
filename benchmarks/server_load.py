"""Server load: does a real ComfyUI server keep stable memory over 50 GAN Atelier prompts in a
row, and does it release our models when asked to free memory? (issue 6)

    COMFY_ROOT=/work/comfy python benchmarks/server_load.py            # 50 prompts (~5 min, 1 thread)
    python benchmarks/server_load.py --count 200 --keep-running         # longer; leave the server up

Needs a ComfyUI checkout and its venv under COMFY_ROOT (see /work/shared/tools/comfyui/README.md).
Unless a server already answers on --port, the script starts one with the shared harness
(`harness.sh start gan_atelier=<this checkout>`, CPU, OMP_NUM_THREADS=1) and stops it at the end.

What it does:
1. writes three small random-weight models with gan_core.save into
   models/gan/gan_atelier_load/: a DCGAN generator (64 px), a CycleGAN ResNet style model (9
   blocks, ngf 64: 45 MB of weights, so its release shows in the RSS) and a unet_denoiser
   (width 32, noise-level input); and a 256 px picture into ComfyUI's input folder;
2. queues --count API prompts one after another, rotating Generate (Load -> Generate 16 images
   -> Preview), Style (LoadImage -> Add Noise -> Style Transfer -> Preview) and Denoise
   (LoadImage -> Add Noise gaussian:25 -> Denoise -> Preview). Prompt i uses seed i (Generate's
   seed, Add Noise's seed), so ComfyUI's cache never answers for a node; and because the graphs
   alternate, ComfyUI's cache drops the other graphs' outputs (models included) each time and
   the next prompt of that kind loads its model from the file again;
3. after each prompt finishes, reads the server's VmRSS from /proc/<pid>/status;
4. then the release check: one more prompt loads a large style model (CycleGAN ResNet, ngf 256,
   1 block: 135 MB of weights, its two residual convolutions 38 MB each) and stylizes a 64 px
   copy of the picture; ComfyUI's cache now holds that model. POST /free {"unload_models": true,
   "free_memory": true} (ComfyUI's own "free memory" request: unload_all_models, executor cache
   reset, gc, soft_empty_cache) must give its memory back: glibc returns allocations over 32 MiB
   to the system as soon as they are freed, so RSS must fall by at least those two
   convolutions (76 MB) if nothing else holds the model.

RSS after a prompt depends on its kind (the three graphs hold different cached outputs: about
645 / 656 / 686 MiB for denoise / generate / style here), so the series is judged per kind, after
the first WARMUP prompts: stable means that for every kind the highest RSS of its last 5 prompts
is at most 8 MiB above the highest of its first 5, and the series' trend (Theil-Sen: the median
of the slopes between every pair of readings) is under 0.25 MiB per prompt of that kind. Results print and go to benchmarks/results/server_load.json
($OUT/ if set).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
HARNESS = "/work/shared/tools/comfyui/harness.sh"
SUBDIR = "gan_atelier_load"
IMAGE = "gan_atelier_load.png"
WARMUP = 10
MIB = 2 ** 20


# ------------------------------------------------------------------------------ setup
def write_models(comfy: str) -> dict[str, str]:
    import torch

    import gan_core
    from gan_core.archs import get_arch

    folder = os.path.join(comfy, "models", "gan", SUBDIR)
    os.makedirs(folder, exist_ok=True)
    specs = {"generator": ("dcgan", {"image_size": 64}),
             "style": ("cyclegan_resnet", {"ngf": 64, "n_blocks": 9}),
             "denoise": ("unet_denoiser", {"width": 32, "noise_level_input": True})}
    specs["release_probe"] = ("cyclegan_resnet", {"ngf": 256, "n_blocks": 1})
    names = {}
    for role, (arch, cfg) in specs.items():
        spec = get_arch(arch)
        torch.manual_seed(0)
        config = spec.config_cls(**cfg)
        model = gan_core.GANModel(arch, config, {"G": spec.build(config)["G"]})
        path = os.path.join(folder, f"{role}.safetensors")
        gan_core.save(model, path, include_resume=False)
        names[role] = f"{SUBDIR}/{role}.safetensors"
    picture = gan_core.make_builtin("blobs", 1, 256, seed=1)
    gan_core.save_image(picture, os.path.join(comfy, "input", IMAGE))
    return names


def probe_bytes(comfy: str) -> int:
    """Bytes of the release probe's tensors larger than glibc's largest mmap threshold."""
    from safetensors import safe_open

    path = os.path.join(comfy, "models", "gan", SUBDIR, "release_probe.safetensors")
    total = 0
    with safe_open(path, "pt") as f:
        for key in f.keys():
            t = f.get_slice(key)
            n = 4
            for d in t.get_shape():
                n *= d
            total += n if n > 32 * MIB else 0
    return total


def release_prompt(names: dict[str, str]) -> dict:
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": IMAGE}},
        "2": {"class_type": "ImageScale",
              "inputs": {"image": ["1", 0], "upscale_method": "area", "width": 64,
                         "height": 64, "crop": "disabled"}},
        "3": {"class_type": "GANAtelierLoadModel",
              "inputs": {"model_name": names["release_probe"]}},
        "4": {"class_type": "GANAtelierStyleTransfer",
              "inputs": {"model": ["3", 0], "images": ["2", 0], "strength": 1.0, "tile": 0,
                         "direction": "A->B"}},
        "5": {"class_type": "PreviewImage", "inputs": {"images": ["4", 0]}},
    }


def prompt(kind: str, i: int, names: dict[str, str]) -> dict:
    if kind == "generate":
        return {
            "1": {"class_type": "GANAtelierLoadModel",
                  "inputs": {"model_name": names["generator"]}},
            "2": {"class_type": "GANAtelierGenerate",
                  "inputs": {"model": ["1", 0], "seed": i, "count": 16, "truncation": 1.0}},
            "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
        }
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": IMAGE}},
        "2": {"class_type": "GANAtelierAddNoise",
              "inputs": {"images": ["1", 0], "recipe": "gaussian:25", "seed": i}},
        "3": {"class_type": "GANAtelierLoadModel", "inputs": {"model_name": names[kind]}},
        "5": {"class_type": "PreviewImage", "inputs": {"images": ["4", 0]}},
    }
    if kind == "style":
        graph["4"] = {"class_type": "GANAtelierStyleTransfer",
                      "inputs": {"model": ["3", 0], "images": ["2", 0], "strength": 1.0,
                                 "tile": 0, "direction": "A->B"}}
    else:
        graph["4"] = {"class_type": "GANAtelierDenoise",
                      "inputs": {"model": ["3", 0], "images": ["2", 0], "strength": 1.0,
                                 "sigma": 25.0, "tile": 0}}
    return graph


# ------------------------------------------------------------------------------ the server
def http(url: str, data: dict | None = None, timeout: float = 30) -> tuple[int, object]:
    body = None if data is None else json.dumps(data).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw.strip() else None
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")[:2000]


def is_up(base: str) -> bool:
    try:
        return http(f"{base}/system_stats", timeout=2)[0] == 200
    except OSError:
        return False


def vm_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def run_prompt(base: str, graph: dict, timeout: float = 600) -> tuple[str, float]:
    t0 = time.perf_counter()
    code, reply = http(f"{base}/prompt", {"prompt": graph})
    if code != 200:
        raise RuntimeError(f"/prompt refused the prompt ({code}): {reply}")
    pid = reply["prompt_id"]
    while time.perf_counter() - t0 < timeout:
        _, hist = http(f"{base}/history/{pid}")
        if isinstance(hist, dict) and pid in hist:
            status = hist[pid].get("status", {})
            if status.get("status_str") != "success":
                msgs = [m for m in status.get("messages", []) if m[0] == "execution_error"]
                raise RuntimeError(f"prompt failed: {msgs or status}")
            return pid, time.perf_counter() - t0
        time.sleep(0.1)
    raise TimeoutError(f"prompt {pid} did not finish in {timeout} s")


def start_server(root: str, port: int) -> None:
    env = {**os.environ, "COMFY_ROOT": root, "COMFY_PORT": str(port), "OMP_NUM_THREADS": "1"}
    subprocess.run(["bash", HARNESS, "start", f"gan_atelier={REPO}"], env=env, check=True)


def stop_server(root: str, port: int) -> None:
    env = {**os.environ, "COMFY_ROOT": root, "COMFY_PORT": str(port)}
    subprocess.run(["bash", HARNESS, "stop"], env=env, check=False)


# ------------------------------------------------------------------------------ analysis
def slope(values: list[float]) -> float:
    """Growth per step: the median of the slopes between every pair of points (Theil-Sen).
    Unlike a least-squares fit, one low reading early on (the allocator returning a block to
    the system for a moment) does not turn a flat series into a rising one."""
    pairs = sorted((values[j] - values[i]) / (j - i)
                   for i in range(len(values)) for j in range(i + 1, len(values)))
    if not pairs:
        return 0.0
    mid = len(pairs) // 2
    return pairs[mid] if len(pairs) % 2 else (pairs[mid - 1] + pairs[mid]) / 2


def judge(rows: list[dict]) -> tuple[bool, str, dict]:
    """Per kind of prompt, after WARMUP prompts: growth from the first 5 to the last 5 and the
    trend (see the module docstring)."""
    per_kind, parts, stable = {}, [], True
    for kind in dict.fromkeys(r["kind"] for r in rows):
        series = [r["rss_bytes"] / MIB for r in rows[WARMUP:] if r["kind"] == kind]
        if len(series) < 2:
            continue
        k = min(5, len(series))
        growth = max(series[-k:]) - max(series[:k])
        trend = slope(series)
        ok = growth <= 8.0 and trend < 0.25
        stable &= ok
        per_kind[kind] = {"prompts": len(series), "first_mib": round(series[0], 1),
                          "last_mib": round(series[-1], 1), "growth_mib": round(growth, 1),
                          "trend_mib_per_prompt": round(trend, 3), "stable": ok}
        parts.append(f"{kind} {series[0]:.0f} -> {series[-1]:.0f} MiB (growth {growth:+.1f}, "
                     f"trend {trend:+.3f} MiB/prompt)")
    verdict = (f"{'STABLE' if stable else 'GROWING'} after prompt {WARMUP}: " + "; ".join(parts))
    return stable, verdict, per_kind


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--comfy-root", default=os.environ.get("COMFY_ROOT", "/work/comfy"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("COMFY_PORT", "8188")))
    ap.add_argument("--count", type=int, default=50, help="prompts to queue (default 50)")
    ap.add_argument("--keep-running", action="store_true", help="leave a server we started up")
    ap.add_argument("--clear-history", action="store_true",
                    help="POST /history {clear} after each prompt: ComfyUI keeps every prompt's "
                         "record (up to 10,000), a small growth of its own")
    ap.add_argument("--judge", metavar="JSON", help="only judge the series of a saved run again")
    args = ap.parse_args()
    if args.judge:
        with open(args.judge) as f:
            stable, verdict, _ = judge(json.load(f)["prompts"])
        print(verdict)
        return 0 if stable else 1
    comfy = os.path.join(args.comfy_root, "ComfyUI")
    base = f"http://127.0.0.1:{args.port}"
    names = write_models(comfy)
    started = False
    if not is_up(base):
        start_server(args.comfy_root, args.port)
        started = True
    try:
        with open(os.path.join(args.comfy_root, "run", "server.pid")) as f:
            server_pid = int(f.read().strip())
        rss_start = vm_rss(server_pid)
        print(f"server PID {server_pid}, RSS at start {rss_start / MIB:.0f} MiB")
        kinds = ("generate", "style", "denoise")
        rows = []
        for i in range(args.count):
            kind = kinds[i % 3]
            _, seconds = run_prompt(base, prompt(kind, i, names))
            if args.clear_history:
                http(f"{base}/history", {"clear": True})
            rss = vm_rss(server_pid)
            rows.append({"i": i, "kind": kind, "seconds": round(seconds, 2), "rss_bytes": rss})
            print(f"prompt {i:3d} {kind:8s} {seconds:6.2f} s  RSS {rss / MIB:7.1f} MiB", flush=True)
        rss_last = vm_rss(server_pid)
        _, seconds = run_prompt(base, release_prompt(names))
        time.sleep(5)  # the same wait as after /free: what falls then is /free's doing
        rss_probe = vm_rss(server_pid)
        print(f"release probe loaded and run ({seconds:.2f} s): RSS {rss_probe / MIB:.1f} MiB")
        code, _ = http(f"{base}/free", {"unload_models": True, "free_memory": True})
        time.sleep(5)  # the prompt worker wakes, resets its caches, collects garbage
        rss_freed = vm_rss(server_pid)
        print(f"/free ({code}): RSS {rss_probe / MIB:.1f} -> {rss_freed / MIB:.1f} MiB")
    finally:
        if started and not args.keep_running:
            stop_server(args.comfy_root, args.port)

    stable, verdict, per_kind = judge(rows)
    big = probe_bytes(comfy)
    drop = rss_probe - rss_freed
    released = drop >= big
    verdict += (f"; /free {'RELEASED' if released else 'DID NOT RELEASE'} the probe model: "
                f"RSS fell {drop / MIB:.0f} MiB (its tensors over 32 MiB: {big / MIB:.0f} MiB)")
    print(verdict)
    print(f"RSS at start {rss_start / MIB:.0f} MiB, after the first prompt "
          f"{rows[0]['rss_bytes'] / MIB:.0f}, after the last {rows[-1]['rss_bytes'] / MIB:.0f}; "
          f"with the probe model {rss_probe / MIB:.0f}, after /free {rss_freed / MIB:.0f} MiB")
    out_dir = os.environ.get("OUT") or os.path.join(HERE, "results")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "server_load" + ("_clear_history" if args.clear_history
                                                   else "") + ".json")
    with open(path, "w") as f:
        json.dump({"date": datetime.datetime.now().isoformat(timespec="seconds"),
                   "count": args.count, "clear_history": args.clear_history,
                   "rss_start_bytes": rss_start, "prompts": rows,
                   "rss_after_series_bytes": rss_last, "rss_with_probe_bytes": rss_probe,
                   "rss_after_free_bytes": rss_freed, "probe_large_tensor_bytes": big,
                   "released": released,
                   "per_kind": per_kind, "stable": stable, "verdict": verdict}, f, indent=2)
    print(f"wrote {path}")
    return 0 if stable and released else 1


if __name__ == "__main__":
    sys.exit(main())
