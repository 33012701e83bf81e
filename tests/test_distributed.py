"""Data-parallel training (DistributedDataParallel under torchrun) on CPU with gloo, 2 processes.

Two real torchrun launches: the CLI (`-m gan_core train`, dcgan with DiffAugment and R1) and
tests/distributed_worker.py (the library API: an mlp run, cross-process BatchNorm maths, an
agreed stop, an uneven batch). Their results are compared with single-process runs of the
same global batch.

Tolerances. The 2-process run computes the same maths as one process (shared random stream,
BatchNorm over the global batch, gradients averaged), so only float rounding differs: the
loss of a 2-row half-batch plus the other half's is not summed in the same order as the
4-row batch's, nor are gradients; measured differences are ~2e-7 on losses and weights after
10 steps. The losses are checked to 1e-5 (50x margin, still far below the ~1e-2 that a
different data stream, per-process BatchNorm or a missed all-reduce produce). One exception:
a bias right before a BatchNorm has a zero gradient in exact arithmetic, so its float gradient
is rounding noise that Adam scales up to lr-sized steps in either run; such biases are
invisible in training outputs (BatchNorm removes them), so G is compared by its images.
The CLI run uses lr 2e-4: at the CLI's default 1e-3 this dcgan's dynamics amplify the
rounding to ~7e-5 by step 14, the same in an uninterrupted 2-process run as in a resumed one
(measured), so it says nothing about the resume and would only force a looser tolerance.
"""
from __future__ import annotations

import copy
import dataclasses
import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import gan_core
from gan_core import cli
from gan_core.training import augment, distributed

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().parent / "distributed_worker.py"
LOSS_TOL = 1e-5

pytestmark = pytest.mark.usefixtures("core_single_thread")


def _torchrun(*args: str, cwd: Path, ok: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    for key in distributed.TORCHRUN_VARS:  # a test run under torchrun must not leak into it
        env.pop(key, None)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node", "2", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    if ok:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _worker_module():
    """tests/distributed_worker.py, for its configs (tests/ is not on sys.path in importlib
    mode)."""
    spec = importlib.util.spec_from_file_location("gan_atelier_distributed_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _close(a: list[float], b: list[float], tol: float = LOSS_TOL) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b))


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


# --------------------------------------------------------------------------- the CLI under torchrun

CLI_ARGS = ["--arch", "dcgan", "--size", "32", "--width", "8", "--batch", "4", "--steps", "10",
            "--data", "builtin:mondrian", "--count", "16", "--seed", "3",
            "--augment", "color,translation,cutout", "--r1", "1.0", "--preview-every", "0",
            "--checkpoint-every", "0", "--device", "cpu", "--threads", "1", "--lr", "2e-4"]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("ddp_cli")
    out = out_dir / "ddp.safetensors"
    proc = _torchrun("-m", "gan_core", "train", *CLI_ARGS, "--out", str(out), cwd=out_dir)
    return proc, out


@pytest.fixture(scope="module")
def cli_single():
    """The same run in one process, 4 steps longer (its first 10 steps are the 10-step run)."""
    cfg = gan_core.TrainConfig(arch="dcgan", size=32, steps=14, batch=4, seed=3,
                               augment="color,translation,cutout", r1_gamma=1.0,
                               preview_every=0, checkpoint_every=0, device="cpu",
                               lr_g=2e-4, lr_d=2e-4, model={"ngf": 8, "ndf": 8})
    data = gan_core.open_dataset("builtin:mondrian", 32, count=16, seed=3)
    return cfg, data, gan_core.train(cfg, data)


@pytest.mark.slow
def test_cli_run_writes_one_checkpoint_and_prints_once(cli_run):
    proc, out = cli_run
    files = sorted(p.name for p in out.parent.iterdir())
    assert files == ["ddp.png", "ddp.safetensors"]  # no temp files, one preview from rank 0
    assert proc.stdout.count("saved ") == 1  # only rank 0 reports
    assert proc.stderr.count("data: builtin:mondrian") == 1
    assert "processes: 2 (batch 2 each)" in proc.stderr
    model = gan_core.load(out)
    assert model.resume.step == 10 and model.training["processes"] == 2
    assert model.training["batch"] == 4  # the global batch
    assert {k: len(v) for k, v in model.resume.history.items()} == {
        "loss_d": 10, "loss_g": 10, "r1": 1}


@pytest.mark.slow
def test_cli_run_matches_one_process_with_the_same_global_batch(cli_run, cli_single):
    _, out = cli_run
    cfg, _, single = cli_single
    model = gan_core.load(out)
    saved_cfg = gan_core.TrainConfig.from_dict(model.resume.train_config)
    # the reference is the same run (the CLI also records where its data came from)
    assert dataclasses.replace(saved_cfg, steps=14, data="") == cfg
    for key, values in model.resume.history.items():
        assert _close(values, single.resume.history[key][:len(values)]), key


def test_resume_in_one_process_continues_the_curve(cli_run, cli_single):
    _, out = cli_run
    cfg, data, single = cli_single
    loaded = gan_core.load(out)
    seen = []
    resumed = gan_core.train(cfg, data, resume=loaded, callbacks=gan_core.TrainCallbacks(
        on_step=lambda step, losses: seen.append(step)))
    assert seen == [11, 12, 13, 14]
    assert resumed.training["steps"] == 14 and resumed.resume.ema_count == 14
    assert "processes" not in resumed.training
    hist = resumed.resume.history
    assert hist["loss_d"][:10] == loaded.resume.history["loss_d"]
    for key in hist:
        assert _close(hist[key], single.resume.history[key]), key
    assert _max_diff(resumed.modules["D"].state_dict(), single.modules["D"].state_dict()) < 1e-4
    assert torch.allclose(resumed.generate("0-7"), single.generate("0-7"), atol=1e-4)


@pytest.mark.subprocess
@pytest.mark.slow
def test_cli_error_under_torchrun_ends_every_process(tmp_path):
    """An error in every process (here an uneven global batch) is reported and each process
    leaves the process group and exits (no hang), with nothing written."""
    out = tmp_path / "never.safetensors"
    args = list(CLI_ARGS)
    args[args.index("--batch") + 1] = "5"
    proc = _torchrun("-m", "gan_core", "train", *args, "--out", str(out), cwd=tmp_path, ok=False)
    assert proc.returncode != 0
    assert proc.stderr.count("error: batch 5 cannot be split evenly across 2 processes") == 2
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- the library API

@pytest.fixture(scope="module")
def worker_run(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("ddp_worker")
    _torchrun(str(WORKER), str(out_dir), cwd=out_dir)
    reports = [json.loads((out_dir / f"rank{r}.json").read_text()) for r in (0, 1)]
    return out_dir, reports


@pytest.mark.subprocess
@pytest.mark.slow
def test_worker_ranks_and_callbacks(worker_run):
    out_dir, (r0, r1) = worker_run
    assert (r0["rank"], r0["is_main"], r1["rank"], r1["is_main"]) == (0, True, 1, False)
    for r in (r0, r1):
        assert r["mlp"]["steps_seen"] == list(range(1, 11))
    assert r0["mlp"]["checkpoints"] == [10] and r1["mlp"]["checkpoints"] == []
    assert r0["mlp"]["history"] == r1["mlp"]["history"]  # means over processes: identical
    assert sorted(p.name for p in out_dir.iterdir() if p.suffix == ".safetensors") == [
        "mlp.safetensors", "stop.safetensors"]
    assert not [p for p in out_dir.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.subprocess
def test_cross_process_batchnorm_is_global_batchnorm(worker_run):
    """Forward, input and weight gradients and running statistics of the 2-process
    BatchNorm equal BatchNorm2d over the whole batch (rounding only)."""
    for report in worker_run[1]:
        assert all(v < 1e-5 for v in report["batchnorm"].values()), report["batchnorm"]


@pytest.mark.subprocess
def test_mlp_matches_one_process(worker_run):
    out_dir, _ = worker_run
    w = _worker_module()
    ddp = torch.load(out_dir / "mlp.pt", weights_only=True)
    single = gan_core.train(w.mlp_config(), w.mlp_data())
    for key, values in ddp["history"].items():
        assert _close(values, single.resume.history[key]), key
    assert _max_diff(ddp["D"], single.modules["D"].state_dict()) < 1e-5
    assert torch.allclose(ddp["images"], single.generate("0-7"), atol=2e-3)
    on_disk = gan_core.load(out_dir / "mlp.safetensors")
    assert on_disk.resume.history == ddp["history"]


@pytest.mark.subprocess
@pytest.mark.slow
def test_fastgan_step_matches_one_process(worker_run):
    """FastGAN's own per-step draws (noise maps, hinge targets, the quarter) follow the global
    batch too: its first step under 2 processes equals one process's to rounding."""
    _, (r0, r1) = worker_run
    w = _worker_module()
    single = gan_core.train(w.fastgan_config(), w.fastgan_data())
    assert r0["fastgan"]["history"] == r1["fastgan"]["history"]
    for key, values in single.resume.history.items():
        assert abs(r0["fastgan"]["history"][key][0] - values[0]) < 1e-4, key


@pytest.mark.subprocess
def test_a_stop_on_one_process_stops_all_after_the_same_step(worker_run):
    out_dir, reports = worker_run
    for r in reports:
        assert r["stop"]["steps_seen"] == [1, 2, 3] and r["stop"]["steps"] == 3
    assert [r["stop"]["checkpoints"] for r in reports] == [[3], []]
    assert gan_core.load(out_dir / "stop.safetensors").resume.step == 3


@pytest.mark.subprocess
def test_uneven_global_batch_is_refused(worker_run):
    for r in worker_run[1]:
        assert "batch 5 cannot be split evenly across 2 processes" in r["uneven"]


# --------------------------------------------------------------------------- in-process pieces

def test_shard_rows():
    assert distributed.shard_rows(8, 2, 0) == slice(0, 4)
    assert distributed.shard_rows(8, 2, 1) == slice(4, 8)
    assert distributed.shard_rows(8) == slice(0, 8)  # no process group: the whole batch
    with pytest.raises(ValueError, match="batch 6 cannot be split evenly across 4 processes"):
        distributed.shard_rows(6, 4, 0)


def test_single_process_helpers_without_a_group():
    assert not distributed.is_active()
    assert gan_core.process_count() == 1 and gan_core.is_main_process()
    assert distributed.mean_over_ranks({"a": 1.5}) == {"a": 1.5}
    assert distributed.any_rank(True) and not distributed.any_rank(False)
    distributed.barrier()  # nothing to wait for


@pytest.mark.subprocess
def test_env_from_torchrun():
    assert distributed.env_from_torchrun({}) is None
    env = distributed.env_from_torchrun({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1",
                                         "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"})
    assert (env.rank, env.world_size, env.local_rank, env.master_port) == (1, 2, 1, 29500)
    with pytest.raises(ValueError, match="MASTER_ADDR, MASTER_PORT are not"):
        distributed.env_from_torchrun({"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0"})
    with pytest.raises(ValueError, match="RANK must be an integer"):
        distributed.env_from_torchrun({"RANK": "x", "WORLD_SIZE": "2", "LOCAL_RANK": "0",
                                       "MASTER_ADDR": "h", "MASTER_PORT": "1"})
    with pytest.raises(ValueError, match="0 <= RANK < WORLD_SIZE"):
        distributed.env_from_torchrun({"RANK": "2", "WORLD_SIZE": "2", "LOCAL_RANK": "0",
                                       "MASTER_ADDR": "h", "MASTER_PORT": "1"})


@pytest.mark.subprocess
def test_session_is_a_no_op_outside_torchrun(monkeypatch):
    for key in distributed.TORCHRUN_VARS:
        monkeypatch.delenv(key, raising=False)
    with gan_core.distributed_session("cpu") as env:
        assert env is None and not torch.distributed.is_initialized()


def test_augmentation_of_shards_equals_augmentation_of_the_batch():
    """Each process augments its rows with parameters drawn for the global batch: the shards
    put together are the one-process result, and the generator ends in the same state."""
    x = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    policy = augment.AUGMENTATIONS
    g = torch.Generator().manual_seed(1)
    whole = augment.diff_augment(x, policy, g)
    parts = []
    for rank in range(3):
        gr = torch.Generator().manual_seed(1)
        rows = distributed.shard_rows(6, 3, rank)
        parts.append(augment.diff_augment(x[rows], policy, gr, (rank, 3)))
        assert torch.equal(gr.get_state(), g.get_state())
    assert torch.equal(torch.cat(parts), whole)


def test_sync_batchnorm_shares_tensors_and_is_plain_batchnorm_without_a_group():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                              torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.BatchNorm1d(5)))
    params, buffers = list(net.parameters()), list(net.buffers())
    keys = list(net.state_dict())
    x = torch.randn(4, 3, 6, 6)
    plain = copy.deepcopy(net)
    assert distributed.sync_batchnorm(net) == 2
    assert isinstance(net[1], distributed.CrossRankBatchNorm)
    assert isinstance(net[2][1], distributed.CrossRankBatchNorm)
    assert all(a is b for a, b in zip(net.parameters(), params))
    assert all(a is b for a, b in zip(net.buffers(), buffers))
    assert list(net.state_dict()) == keys
    for train in (True, False):
        net.train(train), plain.train(train)
        with torch.no_grad():
            assert torch.equal(net[1](net[0](x)), plain[1](plain[0](x)))
            assert torch.equal(net[2](x[:, 0, 0, :4]), plain[2](x[:, 0, 0, :4]))
    assert torch.equal(net[1].running_mean, plain[1].running_mean)


def test_stop_handler_takes_sigterm_when_asked():
    stop = cli.runner.StopOnCtrlC((signal.SIGINT, signal.SIGTERM), announce=False)
    previous = signal.getsignal(signal.SIGTERM)
    with stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is previous


@pytest.mark.subprocess
@pytest.mark.parametrize("command", ["train-style", "train-denoise"])
def test_other_trainers_refuse_torchrun(monkeypatch, capsys, command):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert cli.main([command, "--steps", "1", "--device", "cpu"]) == 2
    assert f"{command} does not run under torchrun (WORLD_SIZE=2)" in capsys.readouterr().err
