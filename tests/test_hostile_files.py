"""A hostile file must never take ComfyUI down (issue 16; SECURITY.md).

Each item of the issue, as it was measured, with the behaviour that replaced it:

- a resume file whose Adam moment is `zeros(1)` segfaulted the first resumed step (shown in
  a child process with the old restore code); it is refused by gan_core.load, and a moment
  edited in memory is refused by the trainer before its first step;
- resume metadata that lies (lr "abc", betas of length 1, empty param_groups, an extra
  optimiser index, a 10-byte RNG state, ema_count 2**70, step 10**30, a loss history shorter
  than the step count, ...) is refused by gan_core.load, naming the field;
- a `.pth` whose pickle nests a tuple 200,000 deep crashed CPython inside torch's weights-only
  unpickler; gan_core.load refuses it (in a child process, to survive the old behaviour), and
  torch reads exactly the bytes that were scanned;
- expanded views (`zeros(1).expand(...)`), views repeating one storage and meta tensors in
  public files are refused before anything is copied;
- a rosinality StyleGAN2 file whose args say n_mlp=100000 is refused in well under a second;
- explicit tiles on images over MAX_UNTILED_SIDE are capped at MAX_TILE;
- a symlink in a dataset folder leading outside it is never read;
- poisson peaks where float32 gives NaN are refused by the recipe parser;
- a style model given to the GAN trainer as resume, and an empty save prefix, are named;
- NVIDIA pickles go through the restricted reader from gan_core.load, whatever their name.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import re
import subprocess
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import gan_core
from gan_core.archs import get_arch
from gan_core.io import checkpoint, pickles
from gan_core.io.pickle_scan import DEFAULT_MAX_DEPTH, scan_pickle_sequence
from gan_core.model import GANModel
from gan_core.statedict import layout_problem

if str(Path(__file__).resolve().parent) not in sys.path:   # pytest puts it there already
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from nvidia_pickles import FakeModule, write_nvidia_pickle  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("core_single_thread")
CHILD_ENV = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")


def _child(code: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=CHILD_ENV, timeout=timeout)


# ----------------------------------------------------------------------------- resume state

def _edited(src: Path, dst: Path, tensors=None, resume=None) -> Path:
    """A copy of our checkpoint `src` with its tensors and resume metadata edited:
    `tensors(dict)` and `resume(dict)` change them in place."""
    meta, found = checkpoint.read_safetensors(src)
    info = json.loads(meta["resume"])
    if tensors is not None:
        tensors(found)
    if resume is not None:
        resume(info)
    save_file({k: v.contiguous() for k, v in found.items()}, str(dst),
              metadata=dict(meta, resume=json.dumps(info)))
    return dst


def _zero_moments(t: dict) -> None:
    t["opt.G.0.exp_avg"] = torch.zeros(1)
    t["opt.G.0.exp_avg_sq"] = torch.zeros(1)


def test_a_moment_that_does_not_fit_its_parameter_is_refused_at_load(core_trained, tmp_path):
    """One of our own checkpoints with an Adam moment pair of G edited to zeros(1): it loaded
    and the first resumed step segfaulted. Now gan_core.load names the moment and shapes."""
    _, path = core_trained
    bad = _edited(path, tmp_path / "moment.safetensors", tensors=_zero_moments)
    with pytest.raises(gan_core.CheckpointError,
                       match=r"'moment.safetensors'.*opt\.G\.0\.exp_avg is torch\.float32 \(1,\) "
                             r"but its parameter is torch\.float32 \(100, 32, 4, 4\)"):
        gan_core.load(bad)


# What restore_training did before: the file's moments handed to the optimiser unchecked.
OLD_LOAD_OPTIMIZERS = '''
def old_load_optimizers(state, optimizers, source="the resume file"):
    for name, opt in optimizers.items():
        saved = state.optimizers[name]
        current = opt.state_dict()
        groups = [{**g, "params": cur["params"]} for g, cur in
                  zip(saved["param_groups"], current["param_groups"])]
        moments = {i: {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in st.items()}
                   for i, st in saved["state"].items()}
        opt.load_state_dict({"state": moments, "param_groups": groups})
'''

RESUME_CHILD = '''
import sys, torch, gan_core
from gan_core.training import loop
torch.set_num_threads(1)
model = gan_core.load(sys.argv[1])               # a good file; then the edit, in memory
state = model.resume.optimizers["G"]["state"][0]
state["exp_avg"] = torch.zeros(1); state["exp_avg_sq"] = torch.zeros(1)
if sys.argv[2] == "old":
''' + "\n".join("    " + line for line in OLD_LOAD_OPTIMIZERS.strip().splitlines()) + '''
    loop.load_optimizers = old_load_optimizers
cfg = gan_core.TrainConfig(arch="dcgan", size=32, steps=8, batch=4, device="cpu",
                           preview_every=0, checkpoint_every=0, preview_count=4,
                           model={"ngf": 8, "ndf": 8}, seed=7)
data = gan_core.open_dataset("builtin:mondrian", 32, count=16, seed=0)
try:
    gan_core.train(cfg, data, resume=model)
    print("TRAINED", flush=True)
except ValueError as exc:
    print("REFUSED", exc, flush=True)
'''


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_old_restore_crashed_and_the_new_one_refuses_before_a_step(core_trained):
    """The process-level crash, only ever in a child: the old restore code gives a moment of
    the wrong shape to the fused Adam kernel, which dies with a signal (SIGSEGV measured) in
    the first resumed step. The current trainer refuses it before any step, with a
    ValueError naming the optimiser, the moment and both shapes."""
    _, path = core_trained
    old = _child(RESUME_CHILD, str(path), "old")
    assert old.returncode != 0 and "TRAINED" not in old.stdout and "REFUSED" not in old.stdout, (
        old.returncode, old.stdout, old.stderr[-2000:])
    assert old.returncode < 0, f"expected death by a signal, got exit status {old.returncode}"
    new = _child(RESUME_CHILD, str(path), "new")
    assert new.returncode == 0, new.stderr[-2000:]
    assert "REFUSED" in new.stdout and "exp_avg of parameter 0 is (1,), the parameter " \
                                      "(100, 32, 4, 4)" in new.stdout, new.stdout


def test_a_moment_edited_in_memory_is_refused_before_the_first_step(core_trained, core_dataset,
                                                                    core_config, monkeypatch):
    """In-process twin of the child above (the new code only): the run never starts."""
    _, path = core_trained
    model = gan_core.load(path)
    model.resume.optimizers["D"]["state"][3]["exp_avg_sq"] = torch.zeros(2, 2)
    steps = []
    monkeypatch.setattr(gan_core.training.trainer.Trainer, "step",
                        lambda self: steps.append(1) or {})
    with pytest.raises(ValueError, match=r"optimiser D's exp_avg_sq of parameter 3 is \(2, 2\)"):
        gan_core.train(core_config(steps=8, seed=7), core_dataset, resume=model)
    assert steps == []


def _put(key: str, value):
    def edit(t: dict) -> None:
        t[key] = value
    return edit


def _drop(prefix: str):
    def edit(t: dict) -> None:
        for k in [k for k in t if k.startswith(prefix)]:
            del t[k]
    return edit


def _group(field: str, value, name: str = "G"):
    def edit(info: dict) -> None:
        info["param_groups"][name][0][field] = value
    return edit


def _shorten_history(t: dict) -> None:
    for k in [k for k in t if k.startswith("history.")]:
        t[k] = t[k][:-1].clone()


LYING_RESUME = {
    # case: (tensor edit, metadata edit, what the error must say)
    "lr is text": (None, _group("lr", "abc"), r"param_groups\['G'\]\[0\]\['lr'\] is abc, not a "
                                              r"number >= 0"),
    "betas of length 1": (None, _group("betas", [0.5]),
                          r"\['betas'\] is \[0\.5\], not two numbers in \[0, 1\)"),
    "beta of 1": (None, _group("betas", [0.5, 1.0], "D"), r"\['D'\]\[0\]\['betas'\]"),
    "empty param_groups": (None, lambda i: i["param_groups"].update(G=[]),
                           r"param_groups\['G'\] is \[\], not a non-empty list"),
    "a parameter index missing": (None, _group("params", list(range(9))),
                                  r"lists 9 parameter indices .* steps the 10 parameters of G"),
    "a parameter index twice": (None, _group("params", [0] * 10), r"lists 10 parameter indices"),
    "an extra optimiser index": (_put("opt.G.10.exp_avg", torch.zeros(3)), None,
                                 r"'opt\.G\.10\.exp_avg' is for parameter 10 of optimiser 'G', "
                                 r"which steps only 10 parameters"),
    "an optimiser for no role": (None, lambda i: i["param_groups"].update(
        Z=[{"params": [0], "lr": 0.1, "betas": [0.5, 0.9]}]),
        r"optimiser 'Z' steps no network this dcgan file holds"),
    "moments of no optimiser": (_put("opt.Z.0.exp_avg", torch.zeros(3)), None,
                                r"tensors opt\.Z\.\* belong to no optimiser"),
    "a 10-byte RNG state": (_put("rng.torch", torch.zeros(10, dtype=torch.uint8)), None,
                            r"rng\.torch holds 10 bytes, not a torch\.Generator state "
                            r"\(5056 bytes here\)"),
    "ema_count 2**70": (None, lambda i: i.update(ema_count=2**70),
                        r"ema_count is 1180591620717411303424, not a non-negative integer of "
                        r"at most 3"),
    "step 10**30": (None, lambda i: i.update(step=10**30),
                    r"step is 10{30}, not a non-negative integer \(at most 1000000000\)"
                    .replace("10{30}", "1" + "0" * 30)),
    "history shorter than the step": (_shorten_history, None,
                                      r"step is 3 but the longest loss history holds 2 values"),
    "history longer than the step": (None, lambda i: i.update(step=2, ema_count=2),
                                     r"'history\.loss_\w+' holds 3 values, more than the 2 steps"),
    "no history at all": (_drop("history."), None, r"step is 3 but the file holds no loss "
                                                   r"history"),
    "a non-finite loss": (_put("history.loss_d", torch.tensor([1.0, float("nan"), 2.0],
                                                               dtype=torch.float64)), None,
                          r"'history\.loss_d' holds non-finite values"),
    "a step counter that is not a scalar": (_put("opt.G.1.step", torch.zeros(3)), None,
                                            r"opt\.G\.1\.step is torch\.float32 \(3,\), not a "
                                            r"scalar step count"),
    "a step counter past the run": (_put("opt.G.1.step", torch.tensor(5.0)), None,
                                    r"opt\.G\.1\.step is 5\.0, not a whole number of steps in "
                                    r"0\.\.4"),
    "an integer moment": (_put("opt.D.2.exp_avg", torch.zeros(16, dtype=torch.int64)), None,
                          r"opt\.D\.2\.exp_avg is torch\.int64 \(16,\) but its parameter is "
                          r"torch\.float32 \(16,\)"),
    "a negative second moment": (_put("opt.D.2.exp_avg_sq", -torch.ones(16)), None,
                                 r"opt\.D\.2\.exp_avg_sq holds negative values"),
    "a moment that is not Adam's": (_put("opt.D.2.momentum_buffer", torch.zeros(16)), None,
                                    r"opt\.D\.2 has fields \['momentum_buffer'\] that Adam "
                                    r"does not keep"),
    "amsgrad without its moment": (None, _group("amsgrad", True), r"opt\.G\.0 lacks "
                                                                  r"\['max_exp_avg_sq'\]"),
    "a moment missing": (_drop("opt.G.4.exp_avg_sq"), None, r"opt\.G\.4 lacks \['exp_avg_sq'\]"),
    "fused is text": (None, _group("fused", "yes"), r"\['fused'\] is yes, not true, false or "
                                                     r"null"),
    "train size 10**9": (None, lambda i: i["train_config"].update(size=10**9),
                         r"train_config\['size'\] is 1000000000, not a whole number in 1\.\.8192"),
    "a buffer of text bytes": (_put("buffer.pool_fake_A", torch.zeros(2, 3, dtype=torch.uint8)),
                               None, r"'buffer\.pool_fake_A' is torch\.uint8 \(2, 3\)"),
}


@pytest.mark.parametrize("case", list(LYING_RESUME))
def test_resume_metadata_that_lies_is_refused_by_load(core_trained, tmp_path, case):
    """Each of these loaded before and failed (or misbehaved) mid-run: a step of 10**30
    "finished" at once, a 10-byte RNG state failed the first draw, lr "abc" the first
    optimiser step. Now gan_core.load refuses the file, naming the field."""
    tensors, resume, expected = LYING_RESUME[case]
    _, path = core_trained
    bad = _edited(path, tmp_path / "lies.safetensors", tensors=tensors, resume=resume)
    with pytest.raises(gan_core.CheckpointError) as info:
        gan_core.load(bad)
    message = str(info.value)
    assert "'lies.safetensors'" in message and "resume state is inconsistent" in message
    assert re.search(expected, message), message


def test_every_trainer_writes_resume_state_the_checks_accept(core_trained, tmp_path):
    """The checks hold our own files: the GAN trainer's (above), a CycleGAN's (one optimiser
    over G and G_BA, pools as buffers) and a denoiser's, and a resumed run still continues."""
    _, path = core_trained
    assert gan_core.load(path).resume.step == 3
    content = gan_core.open_crop_source("builtin:blobs", max_side=48, count=4, what="content")
    style = gan_core.open_crop_source("builtin:painting", max_side=48, what="style")
    cfg = gan_core.StyleTrainConfig(size=32, steps=2, batch=1, device="cpu", preview_every=0,
                                    checkpoint_every=0, model={"ngf": 4, "ndf": 4,
                                                               "n_blocks": 1})
    out = tmp_path / "style.safetensors"
    gan_core.train_style(cfg, content, style, out=out)
    loaded = gan_core.load(out)
    assert loaded.resume.step == 2 and set(loaded.resume.optimizers) == {"G", "D"}
    again = gan_core.train_style(cfg.__class__(**{**cfg.__dict__, "steps": 3}), content, style,
                                 resume=loaded)
    assert again.resume.step == 3
    data = gan_core.open_dataset("builtin:mondrian", 32, count=8, seed=0)
    dcfg = gan_core.DenoiseTrainConfig(size=32, steps=2, batch=2, device="cpu",
                                       preview_every=0, checkpoint_every=0,
                                       model={"width": 4})
    dout = tmp_path / "denoise.safetensors"
    gan_core.train_denoiser(dcfg, data, out=dout)
    assert gan_core.load(dout).resume.step == 2


def test_a_style_pool_of_other_images_is_refused_before_the_first_step(tmp_path):
    content = gan_core.open_crop_source("builtin:blobs", max_side=48, count=4, what="content")
    style = gan_core.open_crop_source("builtin:painting", max_side=48, what="style")
    cfg = gan_core.StyleTrainConfig(size=32, steps=2, batch=1, device="cpu", preview_every=0,
                                    checkpoint_every=0, model={"ngf": 4, "ndf": 4,
                                                               "n_blocks": 1})
    out = tmp_path / "style.safetensors"
    gan_core.train_style(cfg, content, style, out=out)
    loaded = gan_core.load(out)
    loaded.resume.buffers["pool_fake_B"] = torch.zeros(1, 3, 8, 8)
    with pytest.raises(ValueError, match=r"pool_fake_B holds images of shape \(3, 8, 8\), but "
                                         r"this run makes \(3, 32, 32\)"):
        gan_core.train_style(cfg.__class__(**{**cfg.__dict__, "steps": 3}), content, style,
                             resume=loaded)


# ----------------------------------------------------------------------------- the trainers' resume check

def test_a_style_model_as_the_gan_trainers_resume_is_named(tmp_path):
    """Train with a style (or denoise) model as resume said "size must be at least 1, got 0"
    (the node read the model's image size, 0 for a CycleGAN); gan_core's resume check, which
    every trainer runs before building anything (and a node can call right after loading),
    names the mismatch."""
    spec = get_arch("cyclegan_resnet")
    cfg = spec.config_cls(ngf=4, n_blocks=1)
    style = GANModel("cyclegan_resnet", cfg, {"G": spec.build(cfg)["G"]}, source="monet.pth")
    with pytest.raises(ValueError, match=r"cannot resume from monet\.pth: it is a style model "
                                         r"\(cyclegan_resnet\), which Train GAN / `train` does "
                                         r"not train; continue it with Train Style"):
        gan_core.check_resume(style, trainer="gan")
    dn = get_arch("dncnn")
    dcfg = dn.config_cls(in_nc=3, out_nc=3, nc=8, nb=3)
    denoiser = GANModel("dncnn", dcfg, {"G": dn.build(dcfg)["G"]}, source="dncnn.pth")
    with pytest.raises(ValueError, match=r"it is a denoise model \(dncnn\).*continue it with "
                                         r"Train Denoiser"):
        gan_core.check_resume(denoiser, trainer="style")
    data = gan_core.open_dataset("builtin:mondrian", 32, count=4, seed=0)
    with pytest.raises(ValueError, match=r"it is a style model \(cyclegan_resnet\)"):
        gan_core.train(gan_core.TrainConfig(arch="dcgan", size=32, steps=1, device="cpu"),
                       data, resume=style)


def test_an_empty_save_prefix_is_refused_not_hidden(tmp_path):
    """ComfyUI turns an empty prefix (or one ending in '/') into the name '.': the file was
    `._00001_.safetensors`, hidden from the model list. gan_core refuses such names."""
    for stem in ("", ".", "  ", ".hidden", "a/b"):
        with pytest.raises(gan_core.UnsafePathError, match=r"filename prefix: .* is not a file "
                                                           r"name"):
            gan_core.reserve_numbered(tmp_path, stem, 1, ".safetensors")
    assert list(tmp_path.iterdir()) == []
    assert gan_core.reserve_numbered(tmp_path, "model", 1, ".safetensors").name == \
        "model_00001_.safetensors"


# ----------------------------------------------------------------------------- deep nesting

def deep_key_pickle(depth: int) -> bytes:
    """{((...((),)...),): 1} with `depth` nested tuples, opcode by opcode."""
    return b"\x80\x02}" + b")" + b"\x85" * (depth - 1) + b"K\x01s."


def zip_with_data_pkl(path: Path, data_pkl: bytes) -> Path:
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source, \
            zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            data = source.read(info)
            target.writestr(info.filename, data_pkl if info.filename.endswith("/data.pkl")
                            else data)
    return path


def legacy_with_object(path: Path, object_pkl: bytes) -> Path:
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buffer, _use_new_zipfile_serialization=False)
    raw = buffer.getvalue()
    head = sum(s.length for s in scan_pickle_sequence(raw, "x", ("magic", "protocol", "info")))
    path.write_bytes(raw[:head] + object_pkl + b"\x80\x02]q\x00.")
    return path


LOAD_CHILD = ("import sys, gan_core\n"
              "for p in sys.argv[1:]:\n"
              "    try:\n"
              "        gan_core.load(p); print('LOADED', p, flush=True)\n"
              "    except gan_core.CheckpointError as e:\n"
              "        print('REFUSED', str(e).splitlines()[0][:300], flush=True)\n")


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_200000_deep_pth_is_refused_by_load_in_a_child(tmp_path):
    """The 200 KB `.pth` that killed the server through Load GAN Model: torch's weights-only
    unpickler dies on it (a signal, in a child: the reference behaviour); gan_core.load, in
    another child, refuses it and the process lives."""
    files = [zip_with_data_pkl(tmp_path / "deep_zip.pth", deep_key_pickle(200_000)),
             legacy_with_object(tmp_path / "deep_legacy.pt", deep_key_pickle(200_000))]
    torch_child = ("import sys, torch\n"
                   "torch.load(sys.argv[1], weights_only=True, map_location='cpu')\n"
                   "print('LOADED')\n")
    ref = _child(torch_child, str(files[0]))
    assert ref.returncode != 0 and "LOADED" not in ref.stdout
    out = _child(LOAD_CHILD, *map(str, files))
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    lines = out.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("REFUSED") for line in lines), lines
    for f, line in zip(files, lines):
        assert f.name in line and "nests containers" in line and str(DEFAULT_MAX_DEPTH) in line


@pytest.mark.parametrize("kind", ["zip", "legacy"])
def test_deep_nesting_is_refused_in_process(tmp_path, kind):
    path = tmp_path / "deep.pth"
    (zip_with_data_pkl if kind == "zip" else legacy_with_object)(path, deep_key_pickle(200_000))
    with pytest.raises(gan_core.CheckpointError, match=r"'deep\.pth'.*nests containers at least "
                                                       r"\d+ deep \(more than the 1000 allowed"):
        pickles.read_pickle_state(path)
    shallow = tmp_path / "shallow.pth"
    (zip_with_data_pkl if kind == "zip" else legacy_with_object)(shallow, deep_key_pickle(100))
    assert len(pickles.read_pickle_state(shallow)) == 1  # 100 deep passes and is read


@pytest.mark.parametrize("legacy", [False, True])
def test_torch_reads_the_bytes_that_were_scanned(tmp_path, legacy):
    """The check-then-use window: the file is rewritten in place between the scan and
    torch.load (here: after open_scanned returned) with a pickle the scan would refuse; torch
    still reads the scanned bytes, and the tensors come out right."""
    path = tmp_path / "swap.pth"
    torch.save({"w": torch.arange(4.0)}, path, _use_new_zipfile_serialization=not legacy)
    good = path.read_bytes()
    with open(path, "rb") as raw:
        pinned = pickles.open_scanned(raw, path.stat().st_size, "model file 'swap.pth'")
        evil = bytearray(good)
        if legacy:   # overwrite the object pickle with a deep one of the same length
            head = sum(s.length for s in scan_pickle_sequence(good, "x", ("m", "p", "i")))
            body = deep_key_pickle(10_000)[:len(good) - head - 20]
            evil[head:head + len(body)] = body
        else:
            start = good.index(b"\x80\x02}")   # data.pkl's first bytes
            body = b"\x80\x02}" + b")" + b"\x85" * 200
            evil[start:start + len(body)] = body
        path.write_bytes(bytes(evil))          # the same inode, rewritten
        obj = torch.load(pinned, weights_only=True, map_location="cpu")
    assert torch.equal(obj["w"], torch.arange(4.0))


def test_a_big_pth_keeps_only_its_pickle_in_memory(tmp_path):
    """Pinning keeps the pickles (and zip headers) in memory, not the tensors' bytes: a
    40 MB .pth pins a few KB; the loaded tensor is right."""
    path = tmp_path / "big.pth"
    torch.save({"w": torch.arange(10_000_000, dtype=torch.float32)}, path)
    with open(path, "rb") as raw:
        pinned = pickles.open_scanned(raw, path.stat().st_size, "x")
        held = sum(len(d) for _, d in pinned._segments)
        obj = torch.load(pinned, weights_only=True, map_location="cpu")
    assert held < 64 * 1024, held
    assert obj["w"][-1].item() == 9_999_999


# ----------------------------------------------------------------------------- views and meta

def _dncnn_state(nc: int = 8, nb: int = 4) -> dict[str, torch.Tensor]:
    spec = get_arch("dncnn")
    torch.manual_seed(0)
    return spec.build(spec.config_cls(in_nc=3, out_nc=3, nc=nc, nb=nb))["G"].state_dict()


def _expanded_dncnn(nc: int, nb: int) -> dict[str, torch.Tensor]:
    """A DnCNN state whose float16 tensors are views of one element each."""
    return {k: torch.zeros(1, dtype=torch.float16).expand(v.shape)
            for k, v in _dncnn_state(nc, nb).items()} if nc <= 64 else _claimed_dncnn(nc, nb)


def _claimed_dncnn(nc: int, nb: int) -> dict[str, torch.Tensor]:
    """The same without building the network (widths like the issue's 760M-parameter file)."""
    shapes = {"model.0.weight": (nc, 3, 3, 3), "model.0.bias": (nc,)}
    for i in range(1, nb - 1):
        shapes[f"model.{2 * i}.weight"] = (nc, nc, 3, 3)
        shapes[f"model.{2 * i}.bias"] = (nc,)
    shapes[f"model.{2 * nb - 2}.weight"] = (3, nc, 3, 3)
    shapes[f"model.{2 * nb - 2}.bias"] = (3,)
    return {k: torch.zeros(1, dtype=torch.float16).expand(s) for k, s in shapes.items()}


def test_expanded_views_are_refused_before_anything_is_copied(tmp_path):
    """A 2.5 KB DnCNN .pth whose float16 tensors are views of one element (2.6M claimed
    parameters here; the issue's 760M cost 3.1 GB) loaded as a model: its conversion to
    float32 made every element. Now refused from the layout, in milliseconds."""
    path = tmp_path / "expanded.pth"
    torch.save(_expanded_dncnn(nc=64, nb=72), path)
    assert path.stat().st_size < 64 * 1024
    start = time.perf_counter()
    tracemalloc.start()
    with pytest.raises(gan_core.CheckpointError,
                       match=r"'expanded\.pth': tensor model\.\d+\.\w+ \(shape .*strides \[0"
                             r"[, 0]*\]\) repeats elements of its storage of 2 bytes: an "
                             r"expanded or overlapping view"):
        gan_core.load(path)
    tracemalloc.stop()
    assert time.perf_counter() - start < 5


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.skipif(sys.platform == "win32", reason="resource.getrusage")
def test_a_600m_parameter_expanded_file_costs_no_memory(tmp_path):
    """Like the issue's file (760M claimed float16 parameters in 2.5 KB, 3.1 GB peak before):
    a DnCNN claiming 604M in 5 KB. Peak RSS of a fresh process grows by under 100 MB while
    it is refused."""
    path = tmp_path / "dncnn_604m.pth"
    torch.save(_claimed_dncnn(nc=4096, nb=6), path)  # 4 x 4096^2 x 9 + ... = 604M + ...
    claimed = sum(v.numel() for v in torch.load(path, weights_only=True).values())
    assert claimed > 600_000_000 and path.stat().st_size < 8 * 1024
    code = ("import resource, sys, gan_core\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n" + LOAD_CHILD +
            "print('GROWTH_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n")
    out = _child(code, str(path))
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith("REFUSED") and "expanded or overlapping view" in lines[0], lines
    assert int(lines[-1].split()[1]) < 100 * 1024, lines[-1]


def test_views_repeating_one_storage_are_refused_as_a_claim(tmp_path):
    """Each view alone fits its storage, but 400 full views of one 1 MiB storage claim 400 MiB
    in a 1 MB file: refused by the total claim, before a reader copies any."""
    base = torch.zeros(512, 512)
    path = tmp_path / "repeat.pth"
    torch.save({f"t{i}": base[:] for i in range(400)}, path)
    assert path.stat().st_size < 2 * 2**20
    with pytest.raises(gan_core.CheckpointError, match=r"'repeat\.pth': its tensors claim more "
                                                       r"than \d+ bytes"):
        gan_core.load(path)


def test_overlapping_strides_and_meta_tensors_are_refused(tmp_path):
    state = _dncnn_state()
    w = state["model.2.weight"]                          # [8, 8, 3, 3]
    overlapping = torch.zeros(w.numel()).as_strided(w.shape, (9, 9, 3, 1))
    path = tmp_path / "overlap.pth"
    torch.save(dict(state, **{"model.2.weight": overlapping}), path)
    with pytest.raises(gan_core.CheckpointError, match=r"tensor model\.2\.weight .*repeats "
                                                       r"elements"):
        gan_core.load(path)
    meta = tmp_path / "meta.pth"
    torch.save(dict(state, **{"model.2.bias": torch.empty(8, device="meta")}), meta)
    with pytest.raises(gan_core.CheckpointError, match=r"'meta\.pth': tensor model\.2\.bias is a "
                                                       r"meta tensor"):
        gan_core.load(meta)


def test_ordinary_views_still_load(tmp_path):
    """Slices, transposes and permutations of real storages are real weights: they load."""
    state = _dncnn_state()
    big = torch.randn(100_000)
    w = state["model.2.weight"]
    sliced = big[1000:1000 + w.numel()].view(w.shape)
    permuted = w.permute(3, 2, 1, 0).contiguous().permute(3, 2, 1, 0)
    path = tmp_path / "views.pth"
    torch.save(dict(state, **{"model.2.weight": sliced, "model.4.weight": permuted.clone()
                              .permute(0, 1, 2, 3)}), path)
    model = gan_core.load(path)
    assert torch.equal(model.module.state_dict()["model.2.weight"], sliced)
    for t in (sliced, permuted, w.t() if w.dim() == 2 else w.transpose(0, 1), big[::3]):
        assert layout_problem(t) is None


# ----------------------------------------------------------------------------- config vs tensors

def test_a_rosinality_file_claiming_100000_mapping_layers_is_not_built(tmp_path, caplog):
    """6 KB of args saying n_mlp=100000 beside a small generator: refused after 36 s and
    770 MB (200,000: 74 s, 1.3 GB) when the network the args describe was built to compare;
    with builds bounded by the file's tensor count, still 3.4 s to stop the build. Now the
    args are compared with the tensors first (their mapping-layer count, ToRGB count and
    style width), so the lying args are set aside without building anything and the file
    loads as what its weights are, with a warning, in milliseconds (SECURITY.md)."""

    spec = get_arch("stylegan2")
    cfg = spec.config_cls(image_size=16, style_dim=16, n_mlp=2, channel_multiplier=1,
                          base_channels=16)
    torch.manual_seed(0)
    state = spec.build(cfg)["G"].state_dict()
    gan_core.load(_write_rosinality(tmp_path / "warm.pt", state, n_mlp=2))  # first-load costs
    results = {}
    for n_mlp in (100_000, 200_000):
        path = _write_rosinality(tmp_path / f"n_mlp_{n_mlp}.pt", state, n_mlp=n_mlp)
        tracemalloc.start()
        start = time.perf_counter()
        model = gan_core.load(path)
        results[n_mlp] = (time.perf_counter() - start, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert model.config.n_mlp == 2
        assert f"n_mlp {n_mlp}" in caplog.text and "using the weights" in caplog.text
    for n_mlp, (seconds, peak) in results.items():
        assert seconds < 1 and peak < 16 * 2**20, (n_mlp, seconds, peak)


def _write_rosinality(path: Path, state, **args) -> Path:
    import argparse

    torch.save({"g_ema": state, "args": argparse.Namespace(
        **{"size": 16, "latent": 16, "channel_multiplier": 1, **args})}, path)
    return path


# ----------------------------------------------------------------------------- tiles

def test_explicit_tiles_are_capped_on_images_over_the_untiled_limit(caplog):
    from gan_core.infer.tiling import AUTO_TILE, MAX_TILE, MAX_UNTILED_SIDE, plan_tile

    assert plan_tile(4160, 4224, 4224, "stylize") == MAX_TILE
    assert "tile 4160 is larger than 1024 px" in caplog.text
    assert plan_tile(8192, 9000, 9000) == MAX_TILE
    assert plan_tile(MAX_TILE, 9000, 9000) == MAX_TILE and plan_tile(300, 9000, 9000) == 300
    assert plan_tile(None, 9000, 9000) == AUTO_TILE == plan_tile(9000, 9000, 9000)
    # images that may run whole honour any tile (no tile can cost more than the whole image)
    assert plan_tile(2000, 3000, 3000) == 2000 and plan_tile(None, MAX_UNTILED_SIDE, 8) is None


def test_a_stylize_with_a_huge_tile_runs_in_capped_tiles():
    """A 4200 x 16 px strip (cheap) with tile 4160: the network never sees more than
    MAX_TILE (+ alignment) px a side."""
    from gan_core.infer.tiling import MAX_TILE

    spec = get_arch("cyclegan_resnet")
    cfg = spec.config_cls(ngf=4, n_blocks=1)
    torch.manual_seed(0)
    net = spec.build(cfg)["G"]
    seen = []
    net.register_forward_pre_hook(lambda m, args: seen.append(tuple(args[0].shape[-2:])))
    model = GANModel("cyclegan_resnet", cfg, {"G": net})
    out = model.stylize(torch.rand(1, 16, 4200, 3), tile=4160)
    assert out.shape == (1, 16, 4200, 3)
    assert max(max(s) for s in seen) <= MAX_TILE + 8, seen


# ----------------------------------------------------------------------------- datasets

@pytest.mark.skipif(sys.platform == "win32", reason="symlinks")
def test_a_symlink_in_a_dataset_folder_leading_outside_is_never_read(tmp_path):
    from PIL import Image

    outside = tmp_path / "private"
    outside.mkdir()
    Image.new("RGB", (16, 16), (255, 0, 0)).save(outside / "secret.png")
    data = tmp_path / "input" / "dataset"
    data.mkdir(parents=True)
    Image.new("RGB", (16, 16), (0, 0, 255)).save(data / "own.png")
    (data / "sub").mkdir()
    (data / "leak.png").symlink_to(outside / "secret.png")
    (data / "sub" / "deep_leak.png").symlink_to(outside / "secret.png")
    (data / "alias.png").symlink_to(data / "own.png")      # stays inside: followed
    (data / "linked_dir").symlink_to(outside, target_is_directory=True)
    with pytest.warns(UserWarning, match=r"leak\.png'.*outside the dataset folder"):
        files = gan_core.list_image_files(data)
    assert sorted(p.name for p in files) == ["alias.png", "own.png"]
    with pytest.warns(UserWarning):
        images = gan_core.open_dataset(str(data), 16).images
    assert len(images) == 2 and int(images[:, 0].max()) == 0  # no red pixel from outside
    with pytest.warns(UserWarning):
        source = gan_core.open_crop_source(str(data), max_side=16)
    assert len(source.pictures) == 2


# ----------------------------------------------------------------------------- noise recipes

def test_poisson_peaks_where_float32_gives_nan_are_refused():
    """poisson:1e-46 made every pixel 0/0 = NaN (Add Noise, the denoiser's recipe); peaks are
    now bounded below, and the smallest accepted one gives finite images."""
    from gan_core.degrade import MIN_POISSON_PEAK

    for bad in ("poisson:1e-46", "poisson:1e-40", "poisson:0.0001", "poisson:1e-46-5"):
        with pytest.raises(ValueError, match=r"peak .* is out of range"):
            gan_core.parse_recipe(bad)
    x = torch.rand(2, 3, 16, 16)
    for ok in (f"poisson:{MIN_POISSON_PEAK}", f"poisson:{MIN_POISSON_PEAK}-1", "poisson:1e6"):
        assert torch.isfinite(gan_core.degrade_nchw(x, ok, seed=0)[0]).all(), ok


# ----------------------------------------------------------------------------- NVIDIA pickles

def _stand_in_pickle(path: Path) -> Path:
    net = FakeModule("UnknownNetwork", parameters={"weight": torch.randn(4, 3)})
    return write_nvidia_pickle(path, {"G": net, "D": net, "G_ema": net})


def test_nvidia_pickles_go_through_the_restricted_reader(tmp_path, monkeypatch):
    """A .pkl (or a renamed one: the first bytes tell) reaches read_nvidia_pickle and then the
    families that read that container; one that none of them claims is a CheckpointError."""
    load_module = sys.modules["gan_core.io.load"]

    seen = []
    real = load_module.read_nvidia_pickle
    monkeypatch.setattr(load_module, "read_nvidia_pickle",
                        lambda p: seen.append(Path(p).name) or real(p))
    for name in ("network-snapshot-000100.pkl", "renamed.pt", "no_suffix"):
        path = _stand_in_pickle(tmp_path / name)
        with pytest.raises(gan_core.CheckpointError, match=rf"'{name}'"):
            gan_core.load(path)
    assert seen == ["network-snapshot-000100.pkl", "renamed.pt", "no_suffix"]
    monkeypatch.setattr(load_module, "public_formats", lambda container=None: [])
    with pytest.raises(gan_core.CheckpointError, match=r"is an NVIDIA StyleGAN network pickle, "
                                                       r"but no model family"):
        gan_core.load(_stand_in_pickle(tmp_path / "x.pkl"))


def test_hostile_nvidia_pickles_are_refused(tmp_path):
    deep = tmp_path / "deep.pkl"
    deep.write_bytes(deep_key_pickle(200_000))
    with pytest.raises(gan_core.CheckpointError, match=r"'deep\.pkl'.*nests containers"):
        gan_core.load(deep)
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"G": os.system}, protocol=4))
    with pytest.raises(gan_core.CheckpointError, match=r"'evil\.pkl'.*not allowed"):
        gan_core.load(evil)
    zipped = tmp_path / "zip.pkl"
    torch.save({"w": torch.zeros(1)}, zipped)
    with pytest.raises(gan_core.CheckpointError, match=r"'zip\.pkl' is a zip archive"):
        gan_core.load(zipped)


def test_the_unsupported_extension_message_lists_pkl(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not a pickle")
    with pytest.raises(gan_core.CheckpointError, match=r"unsupported extension '\.onnx'; "
                                                       r"expected .*\.pkl"):
        gan_core.load(path)
