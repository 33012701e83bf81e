"""Denoising quality (issue 4): PSNR, SSIM and a high-frequency energy ratio of our `unet_denoiser`,
trained on a fixed CPU budget with and without the adversarial term, against the noisy input and
scikit-image's non-local means, wavelet and total-variation denoisers, on held-out photos at
sigma 15, 25 and 50; plus seconds and peak RSS to denoise a 4096x4096 image tiled on the CPU.

    python benchmarks/denoise_quality.py              # full run: 2 x 15 min training, ~5 min eval
    python benchmarks/denoise_quality.py --quick      # smoke run: 2 x 30 s training, ~2 min in all
    python benchmarks/denoise_quality.py --retrain    # ignore the cached checkpoints
    python benchmarks/denoise_quality.py --skip-big   # no 4096 px run
    python benchmarks/denoise_quality.py --budget 300 # another training budget (seconds per model)

Photos (scikit-image's sample images, `skimage.data`; gray ones as gray RGB):
- TEST (held out, never trained on, never used to tune anything): astronaut, coffee, chelsea
  (the same photo as `skimage.data.cat`, which is used nowhere) and camera; each centre-cropped
  to 256x256.
- TUNE (parameters of the classical denoisers): rocket and the left view of stereo_motorcycle,
  centre-cropped to 256x256. They are train-side photos: our model trains on them too.
- TRAIN (our model): rocket, stereo_motorcycle (both views), immunohistochemistry,
  hubble_deep_field, retina (colour), coins, moon, grass, gravel, brick, clock, page, text, cell
  (gray), cut into overlapping 128 px tiles (stride 96; also from a half-size copy of every photo
  at least 256 px on its short side; near-flat tiles with std < 0.03 dropped; each tile also
  transposed), plus gan_core's built-in procedural pictures (all BUILTIN_DATASETS styles, seed
  0) as 25% of the tiles. The trainer draws random 64 px crops of these tiles, with flips.

Noise: additive white Gaussian noise, independent per channel, sigma in 0..255 units, drawn by
gan_core.degrade ("gaussian:SIGMA", the Add Noise node's and the trainer's own code) with a fixed
seed per (photo, sigma), clipped to [0, 1] as degrade does, kept in float32 (not quantised).
Every method sees the very same noisy images.

Methods (one row each):
- noisy: the input itself.
- nlm, wavelet, tv: skimage.restoration.denoise_nl_means (sigma given, h = k x sigma for k in
  0.4..1.2, patch 5 / distance 6 fast and slow mode, patch 7 / distance 11 fast),
  denoise_wavelet (sigma given, YCbCr, BayesShrink or VisuShrink, db1 / db2 / sym4) and
  denoise_tv_chambolle (weight 0.02..0.2), each with the parameters that give the best mean
  PSNR on the TUNE photos at that sigma (one setting per sigma, chosen before the test photos are
  seen).
- nlm-oracle, wavelet-oracle, tv-oracle: the same grids tuned on the TEST photos themselves (the
  best single setting per sigma): an upper bound that favours the baselines. The goal below is
  judged against the best of all six classical rows, the conservative choice.
- ours: unet_denoiser trained by gan_core.train_denoiser for a fixed wall-clock budget on this
  CPU (default 900 s = 15 min per model, torch threads as --threads, default 1), stopped by
  TrainCallbacks.check_stop; the steps reached are reported. One model per adversarial weight
  serves all three sigmas: it is trained on "gaussian:5-55" with the noise level as an extra
  input (noise_level_input), and given the true sigma when denoising (GANModel.denoise(sigma=)),
  as DRUNet is. "ours (adv 0)" is plain L1 regression; "ours (adv W)" adds W x the conditional
  PatchGAN loss; everything else (data, seed, width, steps budget) is the same. The EMA
  generator is evaluated, untiled. Checkpoints are cached in benchmarks/results/ (with the run's
  training config; a different config or --retrain trains again).

Metrics (per photo, then the mean over the 4 test photos; images in [0, 1]):
- PSNR: skimage.metrics.peak_signal_noise_ratio(data_range=1) on RGB.
- SSIM: skimage.metrics.structural_similarity(channel_axis=-1, data_range=1) (7x7 uniform
  window, scikit-image's defaults).
- HF ratio: high-frequency energy of the output over that of the clean image, where the
  high-frequency energy of an image is the sum over channels and pixels of its discrete
  Laplacian squared (the 5-point stencil 4x[i,j] - x[i-1,j] - x[i+1,j] - x[i,j-1] - x[i,j+1],
  on interior pixels). 1.0 = as much fine detail energy as the clean photo; below 1 =
  over-smoothed; above 1 = noisier or sharper than the clean photo (the noisy input is far
  above 1). Read it together with PSNR: residual noise also raises it.

Goal (issue 4): ours beats the best classical baseline by at least 1 dB mean PSNR at sigma 25;
the adversarial term's cost in PSNR and gain in HF ratio are shown by the two rows of ours.

Large image: one fresh child process loads the adv-0 checkpoint, builds a 4096x4096 RGB image
(the astronaut photo tiled 8x8 plus sigma-25 noise) and runs GANModel.denoise(image, sigma=25,
tile=512) once under the same thread count; it reports seconds and peak RSS (ru_maxrss of that
process: model, input and output included) and the PSNR of the result on one 512 px block.
Goal: peak RSS under 2 GB.

A before/after strip (noisy | nlm | ours adv 0 | ours adv W | clean; a 192 px crop of the
astronaut test photo at sigma 25) goes to docs/denoise_before_after.jpg.

Runtime on the 2-core development machine with 1 thread: 2 x --budget of training (30 min at
the default) plus ~5 min of evaluation (the classical grids ~3 min, the 4096 px denoise ~1 min);
with cached checkpoints, ~5 min. --quick: 30 s per model, a reduced NLM grid, 1024 px instead of
4096, results to denoise_quality_quick.json.

Results print as a table and go to benchmarks/results/denoise_quality.json, or to $OUT/ when the
OUT environment variable is set.
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

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
import gan_core  # noqa: E402
from gan_core.data import ImageDataset  # noqa: E402
from train_throughput import _cpu_model  # noqa: E402

SIGMAS = (15, 25, 50)
CROP = 256  # test / tune photos: centre crops of this side
TEST = ("astronaut", "coffee", "chelsea", "camera")
TUNE = ("rocket", "motorcycle_left")
TRAIN = ("rocket", "motorcycle_left", "motorcycle_right", "immunohistochemistry",
         "hubble_deep_field", "retina", "coins", "moon", "grass", "gravel", "brick", "clock",
         "page", "text", "cell")
assert not set(TEST) & set(TRAIN) and not set(TEST) & set(TUNE)
TILE, TILE_STRIDE, FLAT_STD = 128, 96, 0.03  # training tiles
BUILTIN_FRACTION = 0.25
GOAL_DB = 1.0  # ours over the best classical baseline at sigma 25
GOAL_SIGMA = 25
GOAL_PEAK_BYTES = 2e9
BIG_SIGMA = 25
BEFORE_AFTER = ("astronaut", 25, 192)  # photo, sigma, crop side

# The training recipe shared by both models (the adversarial weight is the only difference).
TRAIN_CONFIG = dict(arch="unet_denoiser", size=64, batch=16, noise="gaussian:5-55", loss="l1",
                    lr_g=1e-3, seed=0, preview_every=0, checkpoint_every=0,
                    model={"width": 16, "noise_level_input": True})
ADV_WEIGHTS = (0.0, 0.01)


# ---------------------------------------------------------------- photos and noise
def load_photo(name: str) -> np.ndarray:
    """A scikit-image sample photo as uint8 [H, W, 3] (gray photos as gray RGB)."""
    import skimage.data as data
    if name.startswith("motorcycle_"):
        left, right, _ = data.stereo_motorcycle()
        a = left if name == "motorcycle_left" else right
    else:
        a = getattr(data, name)()
    if a.ndim == 2:
        a = np.stack([a] * 3, -1)
    return np.ascontiguousarray(a[..., :3])


def centre_crop(a: np.ndarray, side: int = CROP) -> np.ndarray:
    """uint8 [H, W, 3] -> float32 [side, side, 3] in [0, 1]."""
    h, w = a.shape[:2]
    t, l = (h - side) // 2, (w - side) // 2
    return a[t:t + side, l:l + side].astype(np.float32) / 255.0


def add_noise(clean: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    x = torch.from_numpy(clean)[None]
    return gan_core.degrade(x, f"gaussian:{sigma:g}", seed=seed)[0].numpy()


def noise_seed(photo_index: int, sigma: float) -> int:
    return 1000 * (photo_index + 1) + int(sigma)


def noisy_set(names: tuple[str, ...], side: int, offset: int = 0) -> dict:
    """{name: (clean, {sigma: noisy})} with the fixed seeds."""
    out = {}
    for i, n in enumerate(names):
        clean = centre_crop(load_photo(n), side)
        out[n] = (clean, {s: add_noise(clean, s, noise_seed(offset + i, s)) for s in SIGMAS})
    return out


# ---------------------------------------------------------------- metrics
def hf_energy(img: np.ndarray) -> float:
    x = img.astype(np.float64)
    lap = (4 * x[1:-1, 1:-1] - x[:-2, 1:-1] - x[2:, 1:-1] - x[1:-1, :-2] - x[1:-1, 2:])
    return float((lap ** 2).sum())


def metrics(clean: np.ndarray, out: np.ndarray) -> dict:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    out = np.clip(out, 0.0, 1.0).astype(np.float32)
    return {"psnr": float(peak_signal_noise_ratio(clean, out, data_range=1.0)),
            "ssim": float(structural_similarity(clean, out, channel_axis=-1, data_range=1.0)),
            "hf_ratio": hf_energy(out) / hf_energy(clean)}


# ---------------------------------------------------------------- classical baselines
def classical_grids(quick: bool) -> dict[str, list[dict]]:
    nlm = [dict(h=k, patch_size=p, patch_distance=d, fast_mode=f)
           for k in ((0.55, 0.85) if quick else (0.4, 0.55, 0.7, 0.85, 1.0, 1.2))
           for p, d, f in (((5, 6, True),) if quick else ((5, 6, True), (5, 6, False), (7, 11, True)))]
    wavelet = [dict(wavelet=w, method=m) for w in ("db1", "db2", "sym4")
               for m in ("BayesShrink", "VisuShrink")]
    tv = [dict(weight=w) for w in (0.02, 0.03, 0.05, 0.07, 0.1, 0.14, 0.2)]
    return {"nlm": nlm, "wavelet": wavelet, "tv": tv}


def run_classical(method: str, params: dict, noisy: np.ndarray, sigma: float) -> np.ndarray:
    from skimage.restoration import denoise_nl_means, denoise_tv_chambolle, denoise_wavelet
    s = sigma / 255.0
    if method == "nlm":
        p = dict(params)
        return denoise_nl_means(noisy, h=p.pop("h") * s, sigma=s, channel_axis=-1, **p)
    if method == "wavelet":
        return denoise_wavelet(noisy, sigma=s, mode="soft", convert2ycbcr=True,
                               rescale_sigma=True, channel_axis=-1, **params)
    if method == "tv":
        return denoise_tv_chambolle(noisy, channel_axis=-1, **params)
    raise ValueError(method)


def tune(method: str, grid: list[dict], photos: dict, sigma: float) -> tuple[dict, float, dict]:
    """The grid point with the best mean PSNR over `photos` at `sigma`: (params, mean PSNR,
    {photo: output} of the best)."""
    best = (None, -1.0, None)
    for params in grid:
        outs = {n: run_classical(method, params, noisy[sigma], sigma)
                for n, (clean, noisy) in photos.items()}
        mean = float(np.mean([metrics(photos[n][0], o)["psnr"] for n, o in outs.items()]))
        if mean > best[1]:
            best = (params, mean, outs)
    return best


# ---------------------------------------------------------------- our model
def training_dataset(tile: int = TILE) -> tuple[ImageDataset, dict]:
    """Overlapping tiles of the TRAIN photos (+ half-size copies, + transposed copies) and the
    built-in procedural sets as BUILTIN_FRACTION of all tiles."""
    def tiles(a: np.ndarray) -> list[torch.Tensor]:
        x = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)
        h, w = x.shape[1:]
        out = []
        for t in range(0, h - tile + 1, TILE_STRIDE):
            for l in range(0, w - tile + 1, TILE_STRIDE):
                piece = x[:, t:t + tile, l:l + tile]
                if float(piece.float().std()) / 255.0 > FLAT_STD:
                    out.append(piece)
        return out

    pieces: list[torch.Tensor] = []
    per_photo = {}
    for name in TRAIN:
        a = load_photo(name)
        got = tiles(a)
        if min(a.shape[:2]) >= 2 * tile:
            x = torch.from_numpy(a).permute(2, 0, 1)[None].float()
            half = F.interpolate(x, scale_factor=0.5, mode="area")[0]
            got += tiles(half.round().clamp(0, 255).byte().permute(1, 2, 0).numpy())
        per_photo[name] = len(got)
        pieces += got
    photos = torch.stack(pieces)
    photos = torch.cat([photos, photos.transpose(-1, -2)])
    n_builtin = round(len(photos) * BUILTIN_FRACTION / (1.0 - BUILTIN_FRACTION))
    styles = gan_core.BUILTIN_DATASETS
    per_style = -(-n_builtin // len(styles))
    builtin = torch.cat([gan_core.open_dataset(f"builtin:{s}", tile, count=per_style, seed=0).images
                         for s in styles])[:n_builtin]
    images = torch.cat([photos, builtin]).contiguous()
    info = {"tile": tile, "stride": TILE_STRIDE, "photo_tiles": len(photos),
            "photo_tiles_per_photo_before_transpose": per_photo, "builtin_tiles": len(builtin),
            "builtin_styles": list(styles), "total_tiles": len(images)}
    return ImageDataset(images, "skimage-train+builtin"), info


def train_config(adv: float, budget_steps: int | None) -> gan_core.DenoiseTrainConfig:
    return gan_core.DenoiseTrainConfig(**TRAIN_CONFIG, adv_weight=adv,
                                       steps=budget_steps or 10**9).validate()


def checkpoint_path(adv: float, quick: bool) -> str:
    tag = "adv0" if adv == 0 else f"adv{adv:g}"
    return os.path.join(HERE, "results", f"denoise_quality_{tag}{'_quick' if quick else ''}.safetensors")


def get_model(adv: float, args, dataset_fn) -> tuple[gan_core.GANModel, dict]:
    """Train for the budget, or load the cached checkpoint of the same configuration."""
    cfg = train_config(adv, args.steps)
    path = checkpoint_path(adv, args.quick)
    want = {**cfg.to_dict(), "budget_s": args.budget, "threads": torch.get_num_threads()}
    if os.path.exists(path) and not args.retrain:
        model = gan_core.load(path)
        saved = model.training.get("benchmark", {}).get("config")
        if saved == json.loads(json.dumps(want)):
            print(f"  adv {adv:g}: cached {os.path.relpath(path)} "
                  f"({model.training['benchmark']['steps']} steps)", flush=True)
            return model, model.training["benchmark"]
        print(f"  adv {adv:g}: {os.path.relpath(path)} was trained with another config; "
              "training again", flush=True)
    dataset, data_info = dataset_fn()
    started: list[float] = []

    def check_stop() -> bool:
        now = time.perf_counter()
        if not started:
            started.append(now)
        return now - started[0] >= args.budget

    def on_step(step: int, losses: dict) -> None:
        if step % 250 == 0:
            print(f"    adv {adv:g} step {step}: {time.perf_counter() - started[0]:6.0f} s, "
                  + ", ".join(f"{k} {v:.3f}" for k, v in losses.items()), flush=True)

    print(f"  adv {adv:g}: training for {args.budget:g} s "
          f"({torch.get_num_threads()} threads)...", flush=True)
    t = time.perf_counter()
    model = gan_core.train_denoiser(cfg, dataset, callbacks=gan_core.TrainCallbacks(
        on_step=on_step, check_stop=check_stop))
    total = time.perf_counter() - t
    loop = time.perf_counter() - started[0]
    hist = model.resume.history
    info = {"config": want, "steps": model.training["steps"],
            "train_loop_seconds": round(loop, 1), "seconds_with_setup": round(total, 1),
            "seconds_per_step": round(loop / max(1, model.training["steps"]), 4),
            "train_psnr_last_100": float(np.mean(hist["psnr"][-100:])),
            "data": data_info, "checkpoint": os.path.relpath(path, ROOT)}
    model.training["benchmark"] = info
    os.makedirs(os.path.dirname(path), exist_ok=True)
    gan_core.save(model, path, include_resume=False)
    print(f"  adv {adv:g}: {info['steps']} steps in {loop:.0f} s; saved {os.path.relpath(path)}",
          flush=True)
    return gan_core.load(path), info


def run_ours(model: gan_core.GANModel, noisy: np.ndarray, sigma: float) -> np.ndarray:
    x = torch.from_numpy(noisy)[None]
    return model.denoise(x, sigma=sigma)[0].numpy()


# ---------------------------------------------------------------- the 4096 px child
def child_big(spec: dict) -> dict:
    model = gan_core.load(spec["checkpoint"])
    size = spec["size"]
    clean = torch.from_numpy(load_photo("astronaut").astype(np.float32) / 255.0)  # 512 px
    reps = -(-size // clean.shape[0])
    img = clean[None].repeat(1, reps, reps, 1)[:, :size, :size].contiguous()  # one full buffer
    g = torch.Generator().manual_seed(0)
    for r in range(0, size, 256):  # noise in bands: no second full-size buffer
        band = img[:, r:r + 256]
        band.add_(torch.randn(band.shape, generator=g), alpha=spec["sigma"] / 255.0).clamp_(0, 1)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t = time.perf_counter()
    out = model.denoise(img, sigma=spec["sigma"], tile=spec["tile"])
    secs = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    from skimage.metrics import peak_signal_noise_ratio
    block = out[0, 1024:1536, 1024:1536].numpy() if size >= 1536 else out[0, :512, :512].numpy()
    ref = load_photo("astronaut").astype(np.float32) / 255.0
    return {"seconds": secs, "peak_rss_bytes": peak, "peak_rss_before_call_bytes": rss0,
            "psnr_one_block": float(peak_signal_noise_ratio(ref, block, data_range=1.0)),
            "size": size, "tile": spec["tile"], "sigma": spec["sigma"]}


def run_big(path: str, size: int, tile: int, threads: int) -> dict:
    spec = {"checkpoint": path, "size": size, "tile": tile, "sigma": BIG_SIGMA}
    cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec),
           "--threads", str(threads)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"error": f"child exited with {proc.returncode}"}
    return json.loads(lines[-1][len("RESULT "):])


# ---------------------------------------------------------------- before / after strip
def before_after(outputs: dict, path: str, labels: list[str]) -> None:
    from PIL import Image, ImageDraw
    name, sigma, side = BEFORE_AFTER
    panels = []
    for key in labels:
        a = outputs[key]
        h, w = a.shape[:2]
        t, l = (h - side) // 2 - 40, (w - side) // 2 - 40  # the astronaut's face and badge
        t, l = max(0, t), max(0, l)
        panels.append(np.clip(a[t:t + side, l:l + side], 0, 1))
    strip = (np.concatenate(panels, 1) * 255.0).round().astype(np.uint8)
    bar = 16
    canvas = Image.new("RGB", (strip.shape[1], strip.shape[0] + bar), (255, 255, 255))
    canvas.paste(Image.fromarray(strip), (0, bar))
    draw = ImageDraw.Draw(canvas)
    for i, key in enumerate(labels):
        draw.text((i * side + 4, 2), key, fill=(0, 0, 0))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    canvas.save(path, quality=90)


# ---------------------------------------------------------------- the parent
def mean_metrics(per_photo: dict) -> dict:
    keys = ("psnr", "ssim", "hf_ratio")
    return {k: float(np.mean([m[k] for m in per_photo.values()])) for k in keys}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="30 s per model, reduced NLM grid, 1024 px instead of 4096: a smoke run")
    p.add_argument("--budget", type=float, default=None,
                   help="training wall-clock seconds per model (default 900, quick 30)")
    p.add_argument("--steps", type=int, default=None,
                   help="also stop at this many steps (default: the budget alone)")
    p.add_argument("--retrain", action="store_true", help="train even if a cached checkpoint fits")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--big-size", type=int, default=None, help="large image side (default 4096)")
    p.add_argument("--tile", type=int, default=512, help="tile for the large image")
    p.add_argument("--skip-big", action="store_true", help="no large-image run")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        res = child_big(json.loads(args.child))
        res["threads"] = torch.get_num_threads()
        print("RESULT " + json.dumps(res), flush=True)
        return
    args.budget = args.budget or (30.0 if args.quick else 900.0)
    big_size = args.big_size or (1024 if args.quick else 4096)

    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu": _cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
        "load_average_start": os.getloadavg(), "quick": args.quick,
        "command": "python " + " ".join([os.path.relpath(__file__)] + sys.argv[1:]),
        "budget_s_per_model": args.budget, "max_steps": args.steps,
    }
    import skimage
    info["scikit_image"] = skimage.__version__
    print(f"torch {info['torch']}, {info['threads']} threads, CPU capability "
          f"{info['cpu_capability']}, {info['cpu']} ({info['cores']} cores), scikit-image "
          f"{info['scikit_image']}, {info['date']}")
    t_start = time.perf_counter()

    test = noisy_set(TEST, CROP)
    tune_set = noisy_set(TUNE, CROP, offset=len(TEST))
    results: dict[str, dict] = {}  # method -> sigma -> {"mean":..., "photos":..., "params":...}
    outputs: dict[str, dict] = {}  # method -> sigma -> {photo: output} (for the strip)

    def record(method: str, sigma: int, outs: dict, **extra) -> None:
        per = {n: metrics(test[n][0], o) for n, o in outs.items()}
        results.setdefault(method, {})[str(sigma)] = {"mean": mean_metrics(per), "photos": per, **extra}
        outputs.setdefault(method, {})[sigma] = outs

    # noisy input
    for s in SIGMAS:
        record("noisy", s, {n: noisy[s] for n, (clean, noisy) in test.items()})

    # classical
    print("\nclassical baselines (tuned on TUNE photos, and oracle-tuned on TEST)", flush=True)
    t = time.perf_counter()
    grids = classical_grids(args.quick)
    for method, grid in grids.items():
        for s in SIGMAS:
            params, tune_psnr, _ = tune(method, grid, tune_set, s)
            outs = {n: run_classical(method, params, noisy[s], s) for n, (_, noisy) in test.items()}
            record(method, s, outs, params=params, tune_psnr=tune_psnr)
            oparams, _, oouts = tune(method, grid, test, s)
            record(f"{method}-oracle", s, oouts, params=oparams)
            print(f"  {method:8} sigma {s:2d}: tuned {params} -> "
                  f"{results[method][str(s)]['mean']['psnr']:.2f} dB; oracle {oparams} -> "
                  f"{results[method + '-oracle'][str(s)]['mean']['psnr']:.2f} dB", flush=True)
    info["classical_seconds"] = round(time.perf_counter() - t, 1)

    # ours
    print("\nours: unet_denoiser", flush=True)
    cache: list = []

    def dataset_fn():
        if not cache:
            cache.append(training_dataset())
        return cache[0]

    training = {}
    ours_names = []
    for adv in ADV_WEIGHTS:
        model, tinfo = get_model(adv, args, dataset_fn)
        name = f"ours (adv {adv:g})"
        ours_names.append(name)
        training[name] = tinfo
        t = time.perf_counter()
        for s in SIGMAS:
            record(name, s, {n: run_ours(model, noisy[s], s) for n, (_, noisy) in test.items()})
        training[name]["eval_seconds"] = round(time.perf_counter() - t, 1)

    # table
    methods = list(results)
    print(f"\nmean over the {len(TEST)} TEST photos ({', '.join(TEST)}; {CROP} px centre crops); "
          "PSNR dB / SSIM / HF ratio")
    head = f"{'method':16}" + "".join(f" | {'sigma ' + str(s):^24}" for s in SIGMAS)
    print(head + "\n" + "-" * len(head))
    for m in methods:
        row = f"{m:16}"
        for s in SIGMAS:
            r = results[m][str(s)]["mean"]
            row += f" | {r['psnr']:6.2f} {r['ssim']:6.4f} {r['hf_ratio']:6.2f}  "
        print(row)

    # goals
    classical = [m for m in methods if m.split("-")[0] in grids]
    goal = {}
    for s in SIGMAS:
        best_c = max(classical, key=lambda m: results[m][str(s)]["mean"]["psnr"])
        honest = [m for m in classical if not m.endswith("-oracle")]
        best_h = max(honest, key=lambda m: results[m][str(s)]["mean"]["psnr"])
        g = {"best_classical": best_c, "best_classical_psnr": results[best_c][str(s)]["mean"]["psnr"],
             "best_classical_tuned_on_tune_photos": best_h,
             "best_classical_tuned_on_tune_photos_psnr": results[best_h][str(s)]["mean"]["psnr"]}
        for o in ours_names:
            ps = results[o][str(s)]["mean"]["psnr"]
            g[o] = {"psnr": ps, "margin_db": ps - g["best_classical_psnr"],
                    "margin_vs_tuned_db": ps - g["best_classical_tuned_on_tune_photos_psnr"]}
        goal[str(s)] = g
    g25 = goal[str(GOAL_SIGMA)]
    best_ours = max(ours_names, key=lambda o: g25[o]["psnr"])
    meets = g25[best_ours]["margin_db"] >= GOAL_DB
    print(f"\ngoal: ours >= best classical + {GOAL_DB:g} dB at sigma {GOAL_SIGMA}: "
          f"{best_ours} {g25[best_ours]['psnr']:.2f} dB vs {g25['best_classical']} "
          f"{g25['best_classical_psnr']:.2f} dB: {g25[best_ours]['margin_db']:+.2f} dB "
          f"({'met' if meets else 'NOT met'}); vs the best tuned on TUNE photos "
          f"({g25['best_classical_tuned_on_tune_photos']}): "
          f"{g25[best_ours]['margin_vs_tuned_db']:+.2f} dB")
    a0, a1 = ours_names[0], ours_names[-1]
    for s in SIGMAS:
        r0, r1 = results[a0][str(s)]["mean"], results[a1][str(s)]["mean"]
        print(f"  adversarial term at sigma {s}: PSNR {r1['psnr'] - r0['psnr']:+.2f} dB, "
              f"SSIM {r1['ssim'] - r0['ssim']:+.4f}, HF ratio {r0['hf_ratio']:.2f} -> "
              f"{r1['hf_ratio']:.2f}")
    for o in ours_names:
        ti = training[o]
        print(f"  {o}: {ti['steps']} steps in {ti['train_loop_seconds']} s "
              f"({ti['seconds_per_step']} s/step, {info['threads']} thread(s))")

    # before / after
    name, sigma, side = BEFORE_AFTER
    strip_keys = ["noisy", "nlm", a0, a1]
    strip = {k: outputs[k][sigma][name] for k in strip_keys}
    strip["clean"] = test[name][0]
    img_path = os.path.join(ROOT, "docs", "denoise_before_after.jpg")
    if args.quick:
        img_path = os.path.join(os.environ.get("OUT") or os.path.join(HERE, "results"),
                                "denoise_before_after_quick.jpg")
    before_after(strip, img_path, strip_keys + ["clean"])
    print(f"before/after strip: {os.path.relpath(img_path)}")

    # large image
    big = None
    if not args.skip_big:
        print(f"\n{big_size} px tiled denoise (tile {args.tile}, fresh child process)...", flush=True)
        big = run_big(checkpoint_path(ADV_WEIGHTS[0], args.quick), big_size, args.tile,
                      args.threads)
        if "error" in big:
            print(f"  {big['error']}")
        else:
            big["meets_goal"] = big["peak_rss_bytes"] < GOAL_PEAK_BYTES
            print(f"  {big['seconds']:.1f} s, peak RSS {big['peak_rss_bytes'] / 2**20:.0f} MiB "
                  f"({big['peak_rss_bytes'] / 1e9:.2f} GB; goal < 2 GB: "
                  f"{'met' if big['meets_goal'] else 'NOT met'}), PSNR on one block "
                  f"{big['psnr_one_block']:.2f} dB")

    info.update(seconds=round(time.perf_counter() - t_start, 1), load_average_end=os.getloadavg())
    out_dir = os.environ.get("OUT") or os.path.join(HERE, "results")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "denoise_quality_quick.json" if args.quick else "denoise_quality.json")
    with open(path, "w") as f:
        json.dump({"machine": info,
                   "split": {"test": list(TEST), "tune": list(TUNE), "train": list(TRAIN),
                             "crop": CROP, "builtin_fraction": BUILTIN_FRACTION,
                             "note": "chelsea == skimage.data.cat; cat is not used"},
                   "noise": {"sigmas": list(SIGMAS), "recipe": "gaussian:SIGMA (gan_core.degrade)",
                             "seed": "1000 * (photo index + 1) + sigma; TEST then TUNE",
                             "clipped": True},
                   "classical_grids": grids, "training": training, "results": results,
                   "goal": {"sigma": GOAL_SIGMA, "db": GOAL_DB, "best_ours": best_ours,
                            "met": meets, "per_sigma": goal},
                   "large_image": big, "before_after": os.path.relpath(img_path, ROOT)},
                  f, indent=2)
    print(f"wrote {path} ({info['seconds']} s)")


if __name__ == "__main__":
    main()
