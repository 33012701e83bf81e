"""Training never loses work (SECURITY.md): for the GAN, denoiser and style trainers, a cancel,
an exception inside a step, a non-finite loss, a disk that fills up half-way through a
checkpoint and a process killed with SIGKILL while saving each leave the last good checkpoint
loadable, and resuming from it continues with the same step count and loss history (for the
states saved between steps, exactly the run that was never interrupted). Two runs writing with
the same prefix never get the same file.

The hazards are one table (HAZARDS) applied to every trainer in TRAINERS; tiny configs (32 px,
widths 4-8), a few steps each.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import pytest
import torch

import gan_core
from gan_core.io import checkpoint
from gan_core.training import denoise_trainer, style_trainer
from gan_core.training import objective as gan_objective

HERE = Path(__file__).resolve()
REPO = HERE.parents[1]
STEPS = 8  # every run has this many steps in all (the style lr schedule depends on it); hazards strike in step 5


class Interrupt(Exception):
    """Stands in for comfy.model_management.InterruptProcessingException."""


# ----------------------------------------------------------------------------- the trainers

@dataclass(frozen=True)
class TrainerCase:
    name: str
    run: Callable[..., gan_core.GANModel]  # run(steps, checkpoint_every, out=, resume=, callbacks=)
    loss_module: object  # the module whose loss function a hazard replaces
    loss_name: str
    history_key: str


@lru_cache(maxsize=None)
def _gan_data():
    return gan_core.open_dataset("builtin:mondrian", 32, count=16, seed=0)


@lru_cache(maxsize=None)
def _style_sources():
    return (gan_core.open_crop_source("builtin:blobs", max_side=64, count=8, what="content"),
            gan_core.open_crop_source("builtin:painting", max_side=96, what="style"))


def _run_gan(steps, checkpoint_every=0, **kw):
    cfg = gan_core.TrainConfig(arch="dcgan", size=32, steps=steps, batch=4, device="cpu",
                               preview_every=0, checkpoint_every=checkpoint_every,
                               preview_count=4, model={"ngf": 8, "ndf": 8}, seed=3)
    return gan_core.train(cfg, _gan_data(), **kw)


def _run_denoise(steps, checkpoint_every=0, **kw):
    cfg = gan_core.DenoiseTrainConfig(size=32, noise="gaussian:25", steps=steps, batch=4,
                                      device="cpu", preview_every=0,
                                      checkpoint_every=checkpoint_every, adv_weight=0.05,
                                      model={"width": 8, "depth": 2, "ndf": 8}, seed=3)
    return gan_core.train_denoiser(cfg, _gan_data(), **kw)


def _run_style(steps, checkpoint_every=0, **kw):
    cfg = gan_core.StyleTrainConfig(size=32, steps=steps, batch=2, device="cpu", preview_every=0,
                                    checkpoint_every=checkpoint_every, preview_count=2,
                                    model={"ngf": 4, "ndf": 8, "n_blocks": 1}, seed=3)
    return gan_core.train_style(cfg, *_style_sources(), **kw)


TRAINERS = {
    "gan": TrainerCase("gan", _run_gan, gan_objective, "g_loss", "loss_g"),
    "denoise": TrainerCase("denoise", _run_denoise, denoise_trainer, "recon_loss", "loss_rec"),
    "style": TrainerCase("style", _run_style, style_trainer, "g_loss", "loss_g"),
}


@lru_cache(maxsize=None)
def _straight(name: str) -> gan_core.GANModel:
    """The run no hazard touched: STEPS steps in one go."""
    with _one_thread():
        return TRAINERS[name].run(STEPS)


class _one_thread:
    def __enter__(self):
        self.before = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.before)


@pytest.fixture(autouse=True)
def _single_thread():
    with _one_thread():
        yield


def _close(a: dict[str, list[float]], b: dict[str, list[float]]) -> bool:
    return a.keys() == b.keys() and all(
        len(a[k]) == len(b[k]) and all(abs(x - y) <= 1e-6 * max(1.0, abs(y))
                                       for x, y in zip(a[k], b[k])) for k in a)


def _prefix(history: dict[str, list[float]], n: int) -> dict[str, list[float]]:
    return {k: v[:n] for k, v in history.items()}


def _weights_close(a: gan_core.GANModel, b: gan_core.GANModel) -> bool:
    if a.modules.keys() != b.modules.keys():
        return False
    for role in a.modules:
        sa, sb = a.modules[role].state_dict(), b.modules[role].state_dict()
        if sa.keys() != sb.keys() or not all(torch.allclose(sa[k].float(), sb[k].float(),
                                                            rtol=1e-5, atol=1e-6) for k in sa):
            return False
    return True


def _resume_and_check(case: TrainerCase, path: Path, step: int, exact: bool) -> None:
    """The file at `path` loads at `step` with that many history entries, equal to the
    untouched run's; resuming it runs steps step+1..STEPS, keeping the history. With `exact`
    (a state saved between steps) the resumed run ends where the untouched one does."""
    straight = _straight(case.name)
    loaded = gan_core.load(path)
    assert loaded.resume.step == step == loaded.training["steps"]
    assert len(loaded.resume.history[case.history_key]) == step
    assert _close(loaded.resume.history, _prefix(straight.resume.history, step))
    seen = []
    resumed = case.run(STEPS, resume=loaded, callbacks=gan_core.TrainCallbacks(
        on_step=lambda s, losses: seen.append(s)))
    assert seen == list(range(step + 1, STEPS + 1))  # the step count continues
    assert resumed.resume.step == STEPS
    assert _close(_prefix(resumed.resume.history, step), loaded.resume.history)
    if exact:
        assert _close(resumed.resume.history, straight.resume.history)
        assert _weights_close(resumed, straight)


def _arm_after(step: int):
    """Callbacks that set armed["on"] once `step` steps are done (the hazard then strikes in
    the next step) and record checkpoints."""
    armed = {"on": False, "saved": []}

    def on_step(s, losses):
        if s == step:
            armed["on"] = True

    return armed, gan_core.TrainCallbacks(
        on_step=on_step, on_checkpoint=lambda s, p: armed["saved"].append(s))


def _poison(monkeypatch, case: TrainerCase, armed: dict, effect: Callable):
    real = getattr(case.loss_module, case.loss_name)

    def poisoned(*args, **kwargs):
        value = real(*args, **kwargs)
        return effect(value) if armed["on"] else value

    monkeypatch.setattr(case.loss_module, case.loss_name, poisoned)


# ----------------------------------------------------------------------------- the hazards

def hazard_cancel(case, path, monkeypatch):
    """Cancel polled before step 5 (ComfyUI's interrupt raised from check_stop)."""
    done = []

    def check_stop():
        if len(done) == 4:
            raise Interrupt()

    with pytest.raises(Interrupt):
        case.run(STEPS, checkpoint_every=3, out=path, callbacks=gan_core.TrainCallbacks(
            on_step=lambda s, losses: done.append(s), check_stop=check_stop))
    return 4, True


def hazard_exception_in_a_step(case, path, monkeypatch):
    """A crash inside step 5 (its loss raises, after the GAN's D update): the handler saves
    the last completed step; only the weights may hold part of step 5's update."""
    armed, cb = _arm_after(4)

    def crash(value):
        raise RuntimeError("simulated crash inside a step")

    _poison(monkeypatch, case, armed, crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        case.run(STEPS, checkpoint_every=3, out=path, callbacks=cb)
    monkeypatch.undo()
    assert armed["saved"] == [3, 4]  # the periodic one, then the crash handler's
    return 4, False


def hazard_non_finite_loss(case, path, monkeypatch):
    """NaN in step 5: nothing is written over the step-4 checkpoint."""
    armed, cb = _arm_after(4)
    _poison(monkeypatch, case, armed, lambda value: value * float("nan"))
    before = {}
    cb.on_checkpoint = lambda s, p: before.update(step=s, data=Path(p).read_bytes())
    with pytest.raises(gan_core.NonFiniteLossError, match="step 5"):
        case.run(STEPS, checkpoint_every=2, out=path, callbacks=cb)
    monkeypatch.undo()
    assert before["step"] == 4 and path.read_bytes() == before["data"]
    return 4, True


def hazard_disk_full_half_way(case, path, monkeypatch):
    """The checkpoint after step 4 fails after half its bytes (and so does the save on the
    way out): the step-2 file stays, byte for byte, with no debris beside it."""
    real_save_file = checkpoint.save_file
    calls, before = [], {}

    def half_then_fail(tensors, filename, metadata=None):
        calls.append(filename)
        if len(calls) == 1:
            real_save_file(tensors, filename, metadata=metadata)
            return
        before.setdefault("data", path.read_bytes())
        real_save_file(tensors, filename, metadata=metadata)
        with open(filename, "r+b") as fh:
            fh.truncate(os.path.getsize(filename) // 2)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint, "save_file", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        case.run(STEPS, checkpoint_every=2, out=path)
    monkeypatch.undo()
    assert len(calls) == 3  # step 2, step 4 (failed), the crash handler's retry (failed)
    assert path.read_bytes() == before["data"]
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    return 2, True


HAZARDS = {
    "cancel": hazard_cancel,
    "exception in a step": hazard_exception_in_a_step,
    "non-finite loss": hazard_non_finite_loss,
    "disk full half-way through a save": hazard_disk_full_half_way,
}


@pytest.mark.parametrize("hazard", list(HAZARDS))
@pytest.mark.parametrize("trainer", list(TRAINERS))
def test_no_work_is_lost(tmp_path, monkeypatch, trainer, hazard):
    case = TRAINERS[trainer]
    path = tmp_path / "run.safetensors"
    step, exact = HAZARDS[hazard](case, path, monkeypatch)
    _resume_and_check(case, path, step, exact)


# ----------------------------------------------------------------------------- SIGKILL mid-save

def child_main(trainer: str, out: str) -> None:
    """Run in a subprocess: train with a checkpoint every step; the third save writes half its
    bytes to the temporary file, says so, and hangs until the parent kills the process."""
    real_save_file = checkpoint.save_file
    calls = []

    def half_then_hang(tensors, filename, metadata=None):
        calls.append(filename)
        real_save_file(tensors, filename, metadata=metadata)
        if len(calls) == 3:
            with open(filename, "r+b") as fh:
                fh.truncate(os.path.getsize(filename) // 2)
            # and what safetensors 0.8 itself leaves when killed mid-write: its own
            # `.tmpXXXXXX` beside the path it was given, the size of the checkpoint
            Path(filename).with_name(".tmpK1LL3D").write_bytes(bytes(os.path.getsize(filename)))
            print("HALF", filename, flush=True)
            time.sleep(600)

    checkpoint.save_file = half_then_hang
    torch.set_num_threads(1)
    TRAINERS[trainer].run(STEPS, checkpoint_every=1, out=out)


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
@pytest.mark.parametrize("trainer", list(TRAINERS))
def test_killed_while_saving_keeps_the_last_checkpoint(tmp_path, trainer):
    path = tmp_path / "run.safetensors"
    code = (f"import importlib.util, sys; spec = importlib.util.spec_from_file_location("
            f"'sec_training', {str(HERE)!r}); m = importlib.util.module_from_spec(spec); "
            f"sys.modules['sec_training'] = m; spec.loader.exec_module(m); "
            f"m.child_main({trainer!r}, {str(path)!r})")
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = child.stdout.readline()
        assert line.startswith("HALF "), child.stderr.read()[-2000:]
        half = Path(line.split(" ", 1)[1].strip())
        # Everything the writer makes lives in one hidden folder of ours beside the target.
        assert half.parent.parent == path.parent and half.parent.name.startswith(f".{path.name}.")
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert half.exists() and half.stat().st_size > 0  # the half-written temp, not the target
    debris = half.parent
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, debris.name])
    assert sorted(p.name for p in debris.iterdir()) == sorted([half.name, ".tmpK1LL3D"])
    case = TRAINERS[trainer]
    # The target holds step 2, whole; the debris is hidden and no model list shows its files.
    assert gan_core.load(path).resume.step == 2
    assert not any(p.name.endswith((".safetensors", ".pth", ".pt")) for p in debris.iterdir())
    # The next save into the folder removes the dead writer's debris once it is a minute old,
    # also when it writes another name (a run that always claims a new numbered file).
    old = time.time() - 3600
    for p in (*debris.iterdir(), debris):
        os.utime(p, (old, old))
    _resume_and_check(case, path, 2, exact=True)
    gan_core.save(gan_core.load(path), tmp_path / "other_00002_.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name,
                                                                 "other_00002_.safetensors"])


def test_stale_temp_sweep_spares_live_and_recent_writers(tmp_path):
    """A save sweeps the debris of dead writers of any file in its folder (temporary folders
    of this version, files of earlier ones), never a live or recent writer's, nor anything
    not named like our temporaries."""
    target = tmp_path / "m.safetensors"
    target.write_bytes(b"x")
    old = time.time() - 3600
    live = tmp_path / f".{target.name}.{os.getpid()}-aaaa.tmp"
    parent = tmp_path / f".{target.name}.{os.getppid()}-bbbb.tmp"
    dead_recent = tmp_path / f".{target.name}.999999999-cccc.tmp"
    dead_old = tmp_path / f".{target.name}.999999998-dddd.tmp"
    dead_other = tmp_path / ".other.safetensors.999999997-eeee.tmp"  # another target's
    dead_folder = tmp_path / ".run_00007_.safetensors.999999996-ffff.tmp"
    foreign = tmp_path / ".tmpAbCdEf"  # not ours: left alone
    for p in (live, parent, dead_recent, dead_old, dead_other, foreign):
        p.write_bytes(b"partial")
    dead_folder.mkdir()
    (dead_folder / ".tmpXyZ123").write_bytes(b"safetensors' own temporary")
    for p in (live, parent, dead_old, dead_other, foreign, dead_folder / ".tmpXyZ123",
              dead_folder):
        os.utime(p, (old, old))
    checkpoint.atomic_write(target, lambda tmp: Path(tmp).write_bytes(b"new"))
    assert target.read_bytes() == b"new"
    left = {p.name for p in tmp_path.iterdir()}
    assert not {dead_old.name, dead_other.name, dead_folder.name} & left  # debris: gone
    assert {live.name, parent.name, dead_recent.name, foreign.name} <= left


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_real_kill_inside_safetensors_leaves_only_our_folder(tmp_path):
    """Not simulated: a child saves a 200 MB checkpoint through the real safetensors writer
    and is killed while safetensors' own `.tmpXXXXXX` exists. It lies inside our temporary
    folder, and the next save of any file there removes it."""
    code = ("import sys, torch\n"
            "from gan_core.io import checkpoint\n"
            "x = torch.ones(50_000_000)\n"
            "print('SAVING', flush=True)\n"
            "for i in range(50):\n"
            "    checkpoint.atomic_write(sys.argv[1], lambda tmp: checkpoint.save_file({'x': x},"
            " tmp))\n")
    target = tmp_path / "big.safetensors"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    child = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    seen = None
    try:
        assert child.stdout.readline().startswith("SAVING"), child.stderr.read()[-2000:]
        deadline = time.time() + 120
        while seen is None and time.time() < deadline and child.poll() is None:
            for root, _, names in os.walk(tmp_path):
                hit = [n for n in names if n.startswith(".tmp")]
                if hit:
                    seen = Path(root, hit[0])
                    os.kill(child.pid, signal.SIGKILL)
                    break
    finally:
        child.kill()
        child.wait(timeout=60)
    assert seen is not None, "never saw safetensors' temporary file"
    ours = [p for p in tmp_path.iterdir() if p.name != target.name]
    assert len(ours) == 1 and ours[0].is_dir() and ours[0].name.startswith(f".{target.name}.")
    assert seen.parent == ours[0]  # safetensors' own temporary is inside our folder
    old = time.time() - 3600
    for p in (*ours[0].iterdir(), ours[0]):
        os.utime(p, (old, old))
    checkpoint.atomic_write(tmp_path / "next_00002_.safetensors",
                            lambda tmp: Path(tmp).write_bytes(b"new"))
    assert not ours[0].exists()


# ----------------------------------------------------------------------------- same prefix

@pytest.mark.slow
@pytest.mark.subprocess
def test_concurrent_reservations_with_one_prefix_never_collide(tmp_path):
    """Sixteen threads and two processes claim names with the same prefix at once."""
    folder = tmp_path / "gan"
    got: list[Path] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def claim():
        start.wait()
        for _ in range(4):
            p = gan_core.reserve_numbered(folder, "run", 1, ".safetensors")
            with lock:
                got.append(p)

    threads = [threading.Thread(target=claim) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    code = ("import sys, gan_core; [print(gan_core.reserve_numbered(sys.argv[1], 'run', 1, "
            "'.safetensors')) for _ in range(20)]")
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE,
                              text=True, env=env) for _ in range(2)]
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        got.extend(Path(line) for line in out.split())
    assert len(got) == 16 * 4 + 2 * 20 == len(set(got))
    assert all(p.is_file() for p in got)


@pytest.mark.slow
def test_two_train_nodes_with_one_prefix_keep_both_runs(comfy, pack, tmp_path):
    """Two Train nodes started together (two threads), same prefix, different seeds: two
    files, each holding its own run."""
    fp, utils, mm = comfy
    fp.configure(str(tmp_path))
    pack.nodes.bridge.register_model_folder()
    utils.set_progress_bar_global_hook(None)
    mm.interrupt_current_processing(False)
    inputs = dict(arch="dcgan", builtin_dataset="blobs", resolution=32, width=8, steps=3,
                  batch_size=4, learning_rate=2e-4, loss="bce", augmentation="none",
                  r1_gamma=0.0, preview_every=0, checkpoint_every=1, filename_prefix="same/run")
    results, errors = {}, []
    start = threading.Barrier(2)

    def train(seed):
        try:
            start.wait()
            node = pack.nodes.node_classes()["GANAtelierTrain"]()
            with torch.inference_mode():
                results[seed] = node.execute(**inputs, seed=seed)[0]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=train, args=(seed,)) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    folder = Path(fp.get_folder_paths("gan")[0], "same")
    files = sorted(folder.glob("*.safetensors"))
    assert [p.name for p in files] == ["run_00001_.safetensors", "run_00002_.safetensors"]
    by_seed = {gan_core.load(p).training["seed"]: gan_core.load(p) for p in files}
    assert set(by_seed) == {1, 2}
    for seed, model in results.items():
        assert by_seed[seed].resume.history == model.resume.history
