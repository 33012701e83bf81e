"""The command line: `python -m gan_core {datasets,train,generate,info}`.

Most tests call gan_core.cli.main(argv) in-process (fast); a few run the real
`python -m gan_core` to check the module entry point and exit codes.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gan_core
from gan_core.cli import DEFAULT_DATA, main

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY = ["--size", "32", "--batch", "4", "--count", "8", "--threads", "1",
        "--preview-every", "0", "--checkpoint-every", "0", "--device", "cpu"]

pytestmark = pytest.mark.usefixtures("core_single_thread")


def _run_module(*args: str, cwd: Path = REPO_ROOT, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "gan_core", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def cli_model(tmp_path_factory):
    """A checkpoint written by `train` with tiny arguments (shared by the read-only tests)."""
    out = tmp_path_factory.mktemp("cli") / "m.safetensors"
    torch_threads = torch.get_num_threads()
    try:
        rc = main(["train", "--steps", "3", "--out", str(out), *TINY])
    finally:
        torch.set_num_threads(torch_threads)
    assert rc == 0
    return out


# --------------------------------------------------------------------------- datasets

@pytest.mark.subprocess
@pytest.mark.slow
def test_datasets_prints_one_name_per_line():
    proc = _run_module("datasets")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == list(gan_core.BUILTIN_DATASETS)


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == gan_core.__version__


# --------------------------------------------------------------------------- train

def test_train_writes_a_checkpoint_and_a_grid(cli_model, capsys):
    grid = cli_model.with_suffix(".png")
    assert cli_model.is_file() and grid.is_file()
    model = gan_core.load(cli_model)
    assert model.arch == "dcgan" and model.image_size == 32
    assert model.training["steps"] == 3 and model.training["batch"] == 4
    assert model.training["dataset"] == DEFAULT_DATA == "builtin:blobs" and model.training["dataset_size"] == 8
    with Image.open(grid) as img:
        assert img.mode == "RGB"
        w, h = img.size
    # the end-of-run preview: 16 samples of 32 px in a 4x4 grid with 2 px padding
    assert (w, h) == (4 * 34 + 2, 4 * 34 + 2)


def test_train_summary_line(tmp_path, capsys):
    out = tmp_path / "s.safetensors"
    assert main(["train", "--steps", "2", "--out", str(out), "--preview", str(tmp_path / "g.png"),
                 "--data", "builtin:stripes", "--loss", "hinge", "--augment", "color", *TINY]) == 0
    printed = capsys.readouterr().out
    assert f"saved {out} after 2 steps" in printed and "loss_d=" in printed
    assert (tmp_path / "g.png").is_file() and not out.with_suffix(".png").exists()
    info = gan_core.load(out).info()["training"]
    assert (info["loss"], info["augment"], info["dataset"]) == ("hinge", "color", "builtin:stripes")


def test_train_mlp_defaults_to_grayscale(tmp_path):
    out = tmp_path / "mlp.safetensors"
    assert main(["train", "--arch", "mlp", "--steps", "2", "--batch", "4", "--count", "8",
                 "--threads", "1", "--preview-every", "0", "--out", str(out)]) == 0
    model = gan_core.load(out)
    assert model.arch == "mlp" and model.config.image_size == 28 and model.config.channels == 1


def test_train_on_an_image_folder(tmp_path):
    folder = tmp_path / "pics"
    folder.mkdir()
    for i in range(4):
        Image.new("RGB", (40 + i, 36), (40 * i, 200, 90)).save(folder / f"{i}.png")
    out = tmp_path / "f.safetensors"
    assert main(["train", "--data", str(folder), "--steps", "2", "--out", str(out), "--fit", "pad",
                 *TINY]) == 0
    assert gan_core.load(out).training["dataset_size"] == 4


def test_resume_continues_to_the_total_steps(tmp_path):
    out = tmp_path / "r.safetensors"
    assert main(["train", "--steps", "2", "--out", str(out), *TINY]) == 0
    assert main(["train", "--steps", "4", "--resume", str(out), "--out", str(out), *TINY]) == 0
    resumed = gan_core.load(out)
    assert resumed.resume.step == 4 and len(resumed.resume.history["loss_d"]) == 4
    straight = tmp_path / "s.safetensors"
    assert main(["train", "--steps", "4", "--out", str(straight), *TINY]) == 0
    assert resumed.resume.history == gan_core.load(straight).resume.history


def test_resume_reuses_the_run_options(tmp_path):
    """`train --resume FILE --steps N` continues with the options the run was started with
    (data, batch, loss, lr, augmentation, seed...), not with the CLI's defaults."""
    options = ["--data", "builtin:rings", "--count", "6", "--batch", "3", "--loss", "hinge",
               "--lr", "0.001", "--augment", "color,cutout", "--r1", "0.5", "--ema", "0.9",
               "--seed", "11", "--size", "32", "--threads", "1", "--device", "cpu",
               "--preview-every", "0"]
    model_opts = ["--checkpoint-every", "0"]
    first, straight = tmp_path / "first.safetensors", tmp_path / "straight.safetensors"
    assert main(["train", "--steps", "2", "--out", str(first), *options, *model_opts]) == 0
    assert main(["train", "--steps", "4", "--out", str(first), "--resume", str(first),
                 "--threads", "1"]) == 0
    assert main(["train", "--steps", "4", "--out", str(straight), *options, *model_opts]) == 0
    a, b = gan_core.load(first), gan_core.load(straight)
    assert a.resume.history == b.resume.history
    assert a.training["loss"] == "hinge" and a.training["batch"] == 3
    assert a.training["dataset"] == "builtin:rings" and a.training["dataset_size"] == 6
    assert torch.equal(a.generate("0-3"), b.generate("0-3"))


def test_resume_of_a_folder_run_finds_its_folder_or_says_what_to_give(tmp_path, capsys):
    folder = tmp_path / "pics"
    folder.mkdir()
    for i in range(2):
        Image.new("RGB", (32, 32), (90 * i, 30, 200)).save(folder / f"{i}.png")
    out = tmp_path / "f.safetensors"
    assert main(["train", "--data", str(folder), "--steps", "1", "--out", str(out), *TINY]) == 0
    # The run recorded its folder: --resume and --steps are enough while it is there.
    assert main(["train", "--steps", "2", "--resume", str(out), "--threads", "1"]) == 0
    assert gan_core.load(out).resume.step == 2
    moved = tmp_path / "moved"
    folder.rename(moved)
    assert main(["train", "--steps", "3", "--resume", str(out)]) == 2
    err = capsys.readouterr().err
    assert "give --data again" in err and str(folder) in err
    assert main(["train", "--steps", "3", "--resume", str(out), "--data", str(moved),
                 "--threads", "1"]) == 0
    assert gan_core.load(out).resume.step == 3


# --------------------------------------------------------------------------- generate / info

def test_generate_a_grid(cli_model, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["generate", str(cli_model), "--seeds", "0-3", "--out", str(out)]) == 0
    assert "4 images" in capsys.readouterr().out
    with Image.open(out) as img:
        assert img.size == (2 * 34 + 2, 2 * 34 + 2)
        grid = torch.from_numpy(np.array(img.convert("RGB"))).float() / 255
    # the first cell is seed 0's image, as the library makes it (8-bit rounding aside)
    expected = gan_core.load(cli_model).generate(0)[0]
    assert (grid[2:34, 2:34] - expected).abs().max() <= 1 / 255 + 1e-6


def test_generate_one_file_per_seed(cli_model, tmp_path):
    out = tmp_path / "each"
    assert main(["generate", str(cli_model), "--seeds", "3,5,7-8", "--out", str(out),
                 "--truncation", "0.7"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["seed00003.png", "seed00005.png", "seed00007.png", "seed00008.png"]
    with Image.open(out / "seed00005.png") as img:
        assert img.size == (32, 32) and img.mode == "RGB"


def test_info_prints_json(cli_model, capsys):
    assert main(["info", str(cli_model)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info == json.loads(json.dumps(gan_core.load(cli_model).info()))
    assert info["arch"] == "dcgan" and info["training"]["steps"] == 3


@pytest.mark.subprocess
@pytest.mark.slow
def test_info_via_the_module_entry_point(cli_model):
    proc = _run_module("info", str(cli_model))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["config"]["image_size"] == 32


# --------------------------------------------------------------------------- errors

@pytest.mark.subprocess
@pytest.mark.slow
def test_missing_data_exits_2_with_an_error_line(tmp_path):
    proc = _run_module("train", "--data", "nonexistent", "--steps", "1",
                       "--out", str(tmp_path / "x.safetensors"), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") or "\nerror: " in proc.stderr
    assert "nonexistent" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "x.safetensors").exists()


@pytest.mark.parametrize("argv,match", [
    (["generate", "{missing}", "--out", "{tmp}/g.png"], "does not exist"),
    (["generate", "{model}", "--seeds", "3-1", "--out", "{tmp}/g.png"], "seeds"),
    (["generate", "{model}", "--truncation", "5", "--out", "{tmp}/g.png"], "truncation"),
    (["info", "{tmp}/empty.safetensors"], "empty"),
    (["train", "--data", "builtin:nope", "--steps", "1", "--out", "{tmp}/t.safetensors"], "nope"),
    (["train", "--size", "48", "--steps", "1", "--count", "4", "--out", "{tmp}/t.safetensors"],
     "power of two"),
    (["train", "--augment", "zoom", "--steps", "1", "--out", "{tmp}/t.safetensors"], "zoom"),
    (["train", "--resume", "{missing}", "--out", "{tmp}/t.safetensors"], "does not exist"),
])
def test_errors_exit_2(argv, match, cli_model, tmp_path, capsys):
    (tmp_path / "empty.safetensors").touch()
    fill = dict(missing=str(tmp_path / "missing.safetensors"), tmp=str(tmp_path), model=str(cli_model))
    assert main([a.format(**fill) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") or "\nerror: " in err
    assert match in err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--arch", "nope"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "usage" in capsys.readouterr().err
