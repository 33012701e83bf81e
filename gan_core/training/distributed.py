"""Data-parallel training across processes started by torchrun (DistributedDataParallel).

`python -m torch.distributed.run --nproc_per_node N -m gan_core train ...` starts N copies of
the CLI; each one calls `distributed_session()`, which joins them into one process group from
torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) with the gloo
backend on CPUs and NCCL on GPUs (one GPU per process: cuda:LOCAL_RANK), and leaves it again
on the way out, errors included. Without torchrun's variables (or with WORLD_SIZE=1) nothing
is set up and every helper here answers as for a single process, so the single-process code
path is untouched.

The aim is that N processes train *the same model* one process would with the same global
batch, so that a run can be resumed with another process count and a curve can be checked
against a single-process run:

- Data: every process draws the whole global batch (image indices, flips, latents,
  augmentation parameters) from the same seeded generator and keeps its own rows
  (`shard_rows`). The random stream therefore does not depend on the process count, and the
  generator state a checkpoint stores is valid for any count. The cost is drawing numbers for
  rows another process uses, which is negligible next to the networks.
- Gradients: DDP averages them over processes; with equal shards that is the gradient of the
  global batch's mean loss.
- BatchNorm: torch's SyncBatchNorm only runs on GPUs (torch 2.13 raises "SyncBatchNorm
  expected input tensor to be on GPU" for CPU tensors), and per-process statistics would make
  the curve depend on the process count. `CrossRankBatchNorm` takes the statistics over the
  global batch on any device with two small all-reduces per forward (and two per backward),
  so the maths is that of one process; running statistics then stay identical everywhere.
- Losses reported (progress, history, the NaN check) are means over processes, so every
  process sees the same numbers and takes the same decisions (stop, raise).
"""
from __future__ import annotations

import contextlib
import inspect
import os
from dataclasses import dataclass
from typing import Iterator, Mapping

import torch
import torch.distributed as dist
from torch import nn

from ..device import resolve_device

__all__ = ["CrossRankBatchNorm", "DistEnv", "any_rank", "backend_for", "barrier",
           "distributed_session", "env_from_torchrun", "is_active", "is_main_process",
           "mean_over_ranks", "process_count", "process_device", "process_rank", "shard_rows",
           "sync_batchnorm", "wrap_ddp"]

TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


# --------------------------------------------------------------------------- set-up, tear-down

@dataclass(frozen=True)
class DistEnv:
    """What torchrun told this process about its place in the job."""

    rank: int
    world_size: int
    local_rank: int
    master_addr: str
    master_port: int


def env_from_torchrun(environ: Mapping[str, str] | None = None) -> DistEnv | None:
    """torchrun's variables, checked; None when this process was not started by torchrun
    (no WORLD_SIZE)."""
    environ = os.environ if environ is None else environ
    if "WORLD_SIZE" not in environ:
        return None
    missing = [k for k in TORCHRUN_VARS if not environ.get(k)]
    if missing:
        raise ValueError(f"WORLD_SIZE is set but {', '.join(missing)} "
                         f"{'is' if len(missing) == 1 else 'are'} not: start distributed runs "
                         "with torchrun (python -m torch.distributed.run), which sets "
                         f"{', '.join(TORCHRUN_VARS)}")
    values = {}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT"):
        try:
            values[key] = int(environ[key])
        except ValueError:
            raise ValueError(f"environment variable {key} must be an integer, "
                             f"got {environ[key]!r}") from None
    env = DistEnv(values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"],
                  environ["MASTER_ADDR"], values["MASTER_PORT"])
    if env.world_size < 1 or not 0 <= env.rank < env.world_size or env.local_rank < 0:
        raise ValueError(f"inconsistent torchrun environment: RANK={env.rank}, "
                         f"WORLD_SIZE={env.world_size}, LOCAL_RANK={env.local_rank} "
                         "(expected 0 <= RANK < WORLD_SIZE and LOCAL_RANK >= 0)")
    return env


def backend_for(device: torch.device) -> str:
    """NCCL for CUDA devices, gloo for everything else (CPU)."""
    return "nccl" if device.type == "cuda" else "gloo"


@contextlib.contextmanager
def distributed_session(device: str | torch.device | None = "auto") -> Iterator[DistEnv | None]:
    """Join torchrun's process group for the `with` block and leave it afterwards, errors
    included. Yields the DistEnv, or None (and does nothing) outside torchrun or when torchrun
    started a single process. `device` picks the backend: a CUDA device means NCCL with this
    process on cuda:LOCAL_RANK, anything else gloo."""
    env = env_from_torchrun()
    if env is None or env.world_size == 1:
        yield None
        return
    if dist.is_initialized():
        raise RuntimeError("a torch.distributed process group is already initialised; "
                           "distributed_session() makes its own from torchrun's environment")
    resolved = resolve_device(device)
    kwargs = {}
    if resolved.type == "cuda":
        if env.local_rank >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK={env.local_rank} but this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s): start at most that "
                             "many processes per node (--nproc_per_node)")
        torch.cuda.set_device(env.local_rank)
        kwargs["device_id"] = torch.device("cuda", env.local_rank)
    dist.init_process_group(backend_for(resolved), init_method="env://", rank=env.rank,
                            world_size=env.world_size, **kwargs)
    try:
        yield env
    finally:
        dist.destroy_process_group()


# --------------------------------------------------------------------------- who am I

def is_active() -> bool:
    """True when a process group with more than one process is set up."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def process_count() -> int:
    return dist.get_world_size() if is_active() else 1


def process_rank() -> int:
    return dist.get_rank() if is_active() else 0


def is_main_process() -> bool:
    """Rank 0, or a process outside any distributed run: the one that prints and writes."""
    return process_rank() == 0


def process_device(device: torch.device) -> torch.device:
    """This process's device: in a distributed run a CUDA device without an index becomes the
    one `distributed_session` selected (cuda:LOCAL_RANK); anything else is returned as is."""
    if is_active() and device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def shard_rows(batch: int, count: int | None = None, rank: int | None = None) -> slice:
    """The rows of a global batch of `batch` samples that process `rank` of `count` trains on
    (this process's, by default)."""
    count = process_count() if count is None else count
    rank = process_rank() if rank is None else rank
    if batch % count:
        raise ValueError(f"batch {batch} cannot be split evenly across {count} processes: "
                         f"use a batch that is a multiple of {count} (it is the global batch, "
                         f"{count} processes train on batch / {count} samples each)")
    per = batch // count
    return slice(rank * per, (rank + 1) * per)


# --------------------------------------------------------------------------- collectives

def _comm_device() -> torch.device:
    """Where small tensors for a collective must live: NCCL only moves CUDA tensors."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier() -> None:
    """Wait until every process gets here (nothing to wait for in a single process)."""
    if is_active():
        dist.barrier()


def mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """Each value averaged over the processes, in one all-reduce; the same dict in a single
    process. With equal shards the mean of the per-process means is the global batch's."""
    if not is_active() or not values:
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t)
    t /= dist.get_world_size()
    return dict(zip(values, t.tolist()))


def any_rank(flag: bool) -> bool:
    """True on every process when it is True on at least one: lets all processes agree to stop
    after the same step, as one stopping alone would leave the others waiting in a collective."""
    if not is_active():
        return bool(flag)
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=_comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


class _SumOverRanks(torch.autograd.Function):
    """all_reduce(SUM) that autograd can see through, to any order: the gradient of a sum over
    processes is the sum of the processes' gradients, so backward is the same operation (which
    keeps double backward, used by the R1 penalty, correct too)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out = x.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return _SumOverRanks.apply(grad)


# --------------------------------------------------------------------------- BatchNorm

class CrossRankBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics cover the global batch, on CPUs and GPUs.

    Same parameters, buffers and state_dict keys as the BatchNorm it replaces
    (`sync_batchnorm`). In training mode inside an active process group it computes the mean
    and then the centred variance over every process's rows (two all-reduces, like
    F.batch_norm's two passes), normalises with the biased variance and updates the running
    statistics with the unbiased one, as BatchNorm does; otherwise (eval, or no group: e.g. the
    handed-back model after the run) it is plain BatchNorm.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected an input with at least 2 dims [B, C, ...], got {x.dim()}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        if not (self.training and is_active()):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        xf = x.float()
        count = xf.new_tensor([xf.numel() / xf.shape[1]])
        totals = _SumOverRanks.apply(torch.cat([xf.sum(dims), count]))
        n = totals[-1].detach()
        mean = totals[:-1] / n
        centred = xf - mean.view(shape)
        var = _SumOverRanks.apply(centred.square().sum(dims)) / n
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                          else self.momentum)
                unbiased = var.detach() * (n / (n - 1.0).clamp_min(1.0))
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), factor)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), factor)
        return out.to(x.dtype)


def sync_batchnorm(module: nn.Module) -> int:
    """Replace every BatchNorm inside `module` (in place, module itself excluded) by a
    CrossRankBatchNorm that shares its parameters and buffers, so optimisers, EMA updates and
    checkpoints see the very same tensors. Returns how many were replaced."""
    replaced = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(
                child, (CrossRankBatchNorm, nn.SyncBatchNorm)):
            new = CrossRankBatchNorm(child.num_features, child.eps, child.momentum,
                                     child.affine, child.track_running_stats)
            new._parameters = child._parameters  # the same Parameter objects
            new._buffers = child._buffers
            new.train(child.training)
            setattr(module, name, new)
            replaced += 1
        else:
            replaced += sync_batchnorm(child)
    return replaced


# --------------------------------------------------------------------------- DDP

def wrap_ddp(module: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel around `module` (already on `device`, in its final memory
    layout: DDP fixes its gradient buckets' strides when it is built).

    Buffers are not re-broadcast before each forward: CrossRankBatchNorm keeps them identical
    on every process already, and the broadcast would write them in place between the two
    discriminator passes of one step. find_unused_parameters stays off: every parameter of the
    wrapped G and D takes part in each backward that goes through the wrapper (the G step runs
    D unwrapped, so D's wrapper never waits for gradients that do not come)."""
    from torch.nn.parallel import DistributedDataParallel

    kwargs = {}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters:
        kwargs["forward_sync_buffers"] = False  # torch >= 2.13; broadcast_buffers is deprecated
    else:
        kwargs["broadcast_buffers"] = False
    if device.type == "cuda":
        kwargs["device_ids"] = [device.index]
    return DistributedDataParallel(module, **kwargs)
