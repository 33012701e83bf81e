"""Write the hostile files of issue 16 ("A hostile file must never take ComfyUI down") to a
folder, to feed a real ComfyUI server by hand or by script.

    OMP_NUM_THREADS=1 python benchmarks/hostile_files.py OUT_DIR

OUT_DIR gets `models/gan/` (model files: put them in ComfyUI's models/gan), `input/` (a
dataset folder with a link leading outside it, and a 4224 px image for the tile cap) and
MANIFEST.txt: for each file, the node and input to use and what GAN Atelier must answer (a
node error naming the file; never a dead server). The same constructions are the tests'
(tests/test_hostile_files.py, tests/test_fuzz_checkpoint.py); this script only writes them.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import zipfile
from pathlib import Path

import torch
from safetensors.torch import save_file

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import gan_core  # noqa: E402
from gan_core.io import checkpoint  # noqa: E402
from gan_core.io.pickle_scan import scan_pickle_sequence  # noqa: E402

MANIFEST: list[str] = []


def note(path: Path, how: str, expected: str) -> None:
    MANIFEST.append(f"{path.name}\n    use: {how}\n    expect: {expected}\n")


def deep_key_pickle(depth: int) -> bytes:
    return b"\x80\x02}" + b")" + b"\x85" * (depth - 1) + b"K\x01s."


def zip_with_data_pkl(path: Path, data_pkl: bytes) -> Path:
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as src, \
            zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, data_pkl if info.filename.endswith("/data.pkl")
                         else src.read(info))
    return path


def legacy_with_object(path: Path, object_pkl: bytes) -> Path:
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buffer, _use_new_zipfile_serialization=False)
    raw = buffer.getvalue()
    head = sum(s.length for s in scan_pickle_sequence(raw, "x", ("magic", "protocol", "info")))
    path.write_bytes(raw[:head] + object_pkl + b"\x80\x02]q\x00.")
    return path


def resume_files(models: Path) -> None:
    good = models / "hostile_base_dcgan.safetensors"
    cfg = gan_core.TrainConfig(arch="dcgan", size=32, steps=3, batch=4, device="cpu",
                               preview_every=0, checkpoint_every=0, preview_count=4,
                               model={"ngf": 8, "ndf": 8}, seed=7)
    gan_core.train(cfg, gan_core.open_dataset("builtin:mondrian", 32, count=16, seed=0),
                   out=good)
    note(good, "Train (arch dcgan, resolution 32, width 8) resume", "trains on (the control)")

    def edited(name: str, tensors=None, resume=None, expect: str = "") -> None:
        meta, found = checkpoint.read_safetensors(good)
        info = json.loads(meta["resume"])
        if tensors:
            tensors(found)
        if resume:
            resume(info)
        path = models / name
        save_file({k: v.contiguous() for k, v in found.items()}, str(path),
                  metadata=dict(meta, resume=json.dumps(info)))
        note(path, "Train (arch dcgan) resume; also Load GAN Model",
             f"CheckpointError naming the file: {expect}")

    def moments(t):
        t["opt.G.0.exp_avg"] = torch.zeros(1)
        t["opt.G.0.exp_avg_sq"] = torch.zeros(1)

    edited("hostile_resume_moment_zeros1.safetensors", tensors=moments,
           expect="opt.G.0.exp_avg is (1,) but its parameter is (100, 32, 4, 4) "
                  "(segfaulted the server before the fix)")

    def group(field, value):
        return lambda info: info["param_groups"]["G"][0].__setitem__(field, value)

    edited("hostile_resume_lr_abc.safetensors", resume=group("lr", "abc"), expect="lr is abc")
    edited("hostile_resume_betas_1.safetensors", resume=group("betas", [0.5]),
           expect="betas is [0.5]")
    edited("hostile_resume_empty_groups.safetensors",
           resume=lambda i: i["param_groups"].update(G=[]), expect="param_groups['G'] is []")
    edited("hostile_resume_extra_index.safetensors",
           tensors=lambda t: t.__setitem__("opt.G.10.exp_avg", torch.zeros(3)),
           expect="opt.G.10.exp_avg is for parameter 10")
    edited("hostile_resume_rng_10_bytes.safetensors",
           tensors=lambda t: t.__setitem__("rng.torch", torch.zeros(10, dtype=torch.uint8)),
           expect="rng.torch holds 10 bytes")
    edited("hostile_resume_ema_count_2e70.safetensors",
           resume=lambda i: i.update(ema_count=2**70), expect="ema_count is 2**70")
    edited("hostile_resume_step_1e30.safetensors", resume=lambda i: i.update(step=10**30),
           expect="step is 10**30")

    def short(t):
        for k in [k for k in t if k.startswith("history.")]:
            t[k] = t[k][:-1].clone()

    edited("hostile_resume_short_history.safetensors", tensors=short,
           expect="the longest loss history holds 2 values")


def pickle_files(models: Path) -> None:
    for path in (zip_with_data_pkl(models / "hostile_deep_200000.pth", deep_key_pickle(200_000)),
                 legacy_with_object(models / "hostile_deep_200000_legacy.pt",
                                    deep_key_pickle(200_000))):
        note(path, "Load GAN Model", "nests containers ... refused (segfaulted the server)")
    bare = models / "hostile_deep_200000.pkl"
    bare.write_bytes(deep_key_pickle(200_000))
    note(bare, "Load GAN Model", "nests containers ... (the NVIDIA reader's bound)")


def view_files(models: Path) -> None:
    nc, nb = 4096, 6
    shapes = {"model.0.weight": (nc, 3, 3, 3), "model.0.bias": (nc,)}
    for i in range(1, nb - 1):
        shapes[f"model.{2 * i}.weight"] = (nc, nc, 3, 3)
        shapes[f"model.{2 * i}.bias"] = (nc,)
    shapes[f"model.{2 * nb - 2}.weight"] = (3, nc, 3, 3)
    shapes[f"model.{2 * nb - 2}.bias"] = (3,)
    path = models / "hostile_dncnn_expanded_604m.pth"
    torch.save({k: torch.zeros(1, dtype=torch.float16).expand(s) for k, s in shapes.items()},
               path)
    note(path, "Load GAN Model (then Denoise)", "an expanded or overlapping view, refused "
                                                "(cost 3.1 GB before)")
    base = torch.zeros(512, 512)
    path = models / "hostile_repeated_views.pth"
    torch.save({f"t{i}": base[:] for i in range(400)}, path)
    note(path, "Load GAN Model", "its tensors claim more than ... bytes")
    spec = gan_core.get_arch("dncnn")
    state = spec.build(spec.config_cls(in_nc=3, out_nc=3, nc=8, nb=4))["G"].state_dict()
    path = models / "hostile_meta_tensor.pth"
    torch.save(dict(state, **{"model.2.bias": torch.empty(8, device="meta")}), path)
    note(path, "Load GAN Model", "is a meta tensor (a shape without data)")


def config_files(models: Path) -> None:
    spec = gan_core.get_arch("stylegan2")
    cfg = spec.config_cls(image_size=16, style_dim=16, n_mlp=2, channel_multiplier=1,
                          base_channels=16)
    state = spec.build(cfg)["G"].state_dict()
    for n_mlp in (100_000, 200_000):
        path = models / f"hostile_stylegan2_n_mlp_{n_mlp}.pt"
        torch.save({"g_ema": state, "args": argparse.Namespace(
            size=16, latent=16, n_mlp=n_mlp, channel_multiplier=1)}, path)
        note(path, "Load GAN Model (then Generate)", "loads at once as what its weights are "
             "(n_mlp 2), with a warning; took 36 s / 74 s and 0.8 / 1.3 GB to refuse before")


def style_file(models: Path) -> None:
    content = gan_core.open_crop_source("builtin:blobs", max_side=48, count=4, what="content")
    style = gan_core.open_crop_source("builtin:painting", max_side=48, what="style")
    cfg = gan_core.StyleTrainConfig(size=32, steps=1, batch=1, device="cpu", preview_every=0,
                                    checkpoint_every=0,
                                    model={"ngf": 4, "ndf": 4, "n_blocks": 1})
    path = models / "hostile_style_model_as_gan_resume.safetensors"
    gan_core.train_style(cfg, content, style, out=path)
    note(path, "Train (GAN) resume", "it is a style model (cyclegan_resnet), which the GAN "
                                     "(Train) trainer does not train (said 'size must be at "
                                     "least 1, got 0')")


def input_files(inputs: Path, out: Path) -> None:
    from PIL import Image

    outside = out / "outside_input"
    outside.mkdir(exist_ok=True)
    Image.new("RGB", (64, 64), (255, 0, 0)).save(outside / "secret.png")
    dataset = inputs / "hostile_dataset_with_link"
    dataset.mkdir(exist_ok=True)
    for i in range(4):
        Image.new("RGB", (64, 64), (0, 0, 40 * i)).save(dataset / f"own_{i}.png")
    link = dataset / "leak.png"
    if not link.is_symlink():
        os.symlink(os.path.realpath(outside / "secret.png"), link)
    note(dataset, "Train / Train Denoiser folder (and Train Style content_folder)",
         "trains on the 4 own images; a warning names leak.png as outside the folder; no "
         "red in the previews")
    big = inputs / "hostile_4224px.png"
    ramp = torch.linspace(0, 255, 4224).to(torch.uint8)
    Image.fromarray(ramp.expand(4224, 4224).numpy(), "L").convert("RGB").save(big)
    note(big, "Load Image -> Style Transfer (a CycleGAN) with tile 4160",
         "a warning that tile 4160 is larger than 1024 px; runs in 1024 px tiles")
    MANIFEST.append("Add Noise / Train Denoiser recipe 'poisson:1e-46'\n    expect: 'peak "
                    "1e-46 is out of range' at queue time (gave 100% NaN)\n")
    MANIFEST.append("Save GAN Model with an empty filename_prefix (or 'gan_atelier/')\n    "
                    "expect: 'filename prefix: '.' is not a file name' (wrote ._00001_)\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    out = parser.parse_args().out
    models, inputs = out / "models" / "gan", out / "input"
    models.mkdir(parents=True, exist_ok=True)
    inputs.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    with torch.inference_mode(False):
        resume_files(models)
        pickle_files(models)
        view_files(models)
        config_files(models)
        style_file(models)
    input_files(inputs, out)
    (out / "MANIFEST.txt").write_text("\n".join(MANIFEST))
    print(f"wrote {len(MANIFEST)} cases to {out} (see MANIFEST.txt)")


if __name__ == "__main__":
    main()
