"""What every gan_core trainer shares: callbacks, the run loop with its save-on-cancel and
NaN rules, checkpointing, and restoring a run from a ResumeState.

A trainer subclasses `TrainLoop` and provides `cfg` (with `steps`, `preview_every`,
`checkpoint_every`), `out`, `cb`, `step_count`, `saved_step`, `last_preview`, and the methods
`step()` (one iteration, returns its losses), `preview()` (an IMAGE grid) and `model()` (a
GANModel view of the current state, resume state included). The GAN trainer (trainer.py), the
denoiser trainer (denoise_trainer.py) and the CycleGAN style trainer (style_trainer.py) then
share one loop and one checkpoint format.

Data-parallel runs (torchrun; see distributed.py): a trainer that supports them sets
`world_size` and `rank`. All processes step together; they agree on stopping (any process's
check_stop stops all after the same step); only rank 0 makes previews and writes checkpoints,
and the others wait for the file to be complete before going on. On a cancel or crash rank 0
saves once without waiting for the others, which may be gone or stuck in a collective.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..io import save
from ..statedict import load_state_strict
from ..errors import NonFiniteLossError
from ..model import GANModel, ResumeState
from . import distributed


@dataclass
class TrainCallbacks:
    """Hooks the caller plugs in. `check_stop` runs before every step: it may raise (ComfyUI's
    interrupt) or return True to stop early; either way a checkpoint is written first."""

    on_step: Callable[[int, dict[str, float]], None] | None = None
    on_preview: Callable[[int, torch.Tensor], None] | None = None
    on_checkpoint: Callable[[int, str], None] | None = None
    check_stop: Callable[[], bool | None] | None = None


# --------------------------------------------------------------------------- resume helpers

def check_resume(resume: GANModel, arch: str) -> None:
    """Refuse files that hold no resume state or another architecture."""
    if resume.resume is None:
        raise ValueError(f"{resume.source or 'the model'} holds no resume state "
                         "(it was saved for inference only)")
    if resume.arch != arch:
        raise ValueError(f"cannot resume: the file is a {resume.arch} model but arch "
                         f"{arch!r} was asked for")


def load_weights(resume: GANModel, modules: dict[str, nn.Module], generator: torch.Generator,
                 history: dict[str, list[float]]) -> int:
    """Load the roles in `modules` (e.g. G and D) from `resume`, restore the trainer's RNG and
    loss history in place; returns the step to continue from."""
    for role, module in modules.items():
        load_state_strict(module, resume.modules[role].state_dict(), role)
    generator.set_state(resume.resume.rng_state.clone())
    for key, values in resume.resume.history.items():
        history[key] = list(values)
    return resume.resume.step


def load_ema(resume: GANModel, ema) -> None:
    """The EMA generator's weights and update count, when the file has them."""
    if "G_ema" in resume.modules:
        load_state_strict(ema.module, resume.modules["G_ema"].state_dict(), "G_ema")
        ema.n_averaged.fill_(resume.resume.ema_count)


def load_optimizers(state: ResumeState, optimizers: dict[str, torch.optim.Optimizer]) -> None:
    for name, opt in optimizers.items():
        saved = state.optimizers[name]
        current = opt.state_dict()
        groups = [{**g, "params": cur["params"]} for g, cur in
                  zip(saved["param_groups"], current["param_groups"])]
        # Clone: a model loaded under inference mode holds inference tensors, which the
        # optimiser could not update in place.
        moments = {i: {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in st.items()}
                   for i, st in saved["state"].items()}
        opt.load_state_dict({"state": moments, "param_groups": groups})


def match_moment_layouts(optimizers) -> None:
    """Moments read from a file are contiguous; give them their parameter's layout
    (channels_last), as the fused Adam kernel walks parameter, gradient and moments as
    flat memory and would mix up elements otherwise."""
    for opt in optimizers:
        for p, state in opt.state.items():
            for k, v in state.items():
                if isinstance(v, torch.Tensor) and v.shape == p.shape and v.stride() != p.stride():
                    state[k] = torch.empty_like(p).copy_(v)


# --------------------------------------------------------------------------- the loop

class TrainLoop:
    """The run loop and checkpointing shared by the trainers (see the module docstring)."""

    cfg: object
    out: str | None
    cb: TrainCallbacks
    step_count: int
    saved_step: int
    last_preview: torch.Tensor | None
    memory_format: torch.memory_format
    ema: nn.Module | None  # torch.optim.swa_utils.AveragedModel of the generator, if kept
    world_size: int = 1  # processes training together (DDP); trainers that support it set these
    rank: int = 0

    @property
    def is_main(self) -> bool:
        """The process that makes previews, writes checkpoints and calls on_checkpoint."""
        return self.rank == 0

    def _finite(self, losses: dict[str, float]) -> None:
        if not all(math.isfinite(v) for v in losses.values()):
            raise NonFiniteLossError(self.step_count + 1, losses)

    def save_checkpoint(self, wait: bool = True) -> None:
        """Write the current state to `out` (rank 0 only). With several processes the others
        wait at a barrier until the file is complete, unless `wait` is False (cancel/crash)."""
        if self.out is None or self.saved_step == self.step_count:
            return
        if self.is_main:
            save(self.model(), self.out)
        if wait and self.world_size > 1:
            distributed.barrier()
        self.saved_step = self.step_count
        if self.is_main and self.cb.on_checkpoint:
            self.cb.on_checkpoint(self.step_count, self.out)

    def _stop_requested(self) -> bool:
        stop = bool(self.cb.check_stop and self.cb.check_stop())
        return distributed.any_rank(stop) if self.world_size > 1 else stop

    def _emit_preview(self) -> None:
        if not self.is_main:
            return
        grid = self.preview()
        if self.cb.on_preview:
            self.cb.on_preview(self.step_count, grid)

    def run_steps(self) -> None:
        """Step up to cfg.steps with callbacks, previews and checkpoints; on cancel or crash
        save first, then re-raise; on a non-finite loss leave the file on disk untouched."""
        cfg = self.cfg
        with torch.inference_mode(False), torch.enable_grad():
            try:
                while self.step_count < cfg.steps:
                    if self._stop_requested():
                        break
                    losses = self.step()
                    if self.cb.on_step:
                        self.cb.on_step(self.step_count, losses)
                    if cfg.preview_every and self.step_count % cfg.preview_every == 0:
                        self._emit_preview()
                    if cfg.checkpoint_every and self.step_count % cfg.checkpoint_every == 0:
                        self.save_checkpoint()
            except NonFiniteLossError:
                raise  # the weights in memory may be suspect; the file on disk is not touched
            except BaseException:
                # Cancel or crash: keep what was learned. Cancels polled between steps
                # (check_stop, progress hooks) save a state that resumes exactly; an exception
                # in the middle of a step also keeps that step's D update.
                self.save_checkpoint(wait=False)
                raise
            self.save_checkpoint()
            if self.last_preview is None or cfg.preview_every == 0 or self.step_count % cfg.preview_every:
                self._emit_preview()

    def _use_layout(self, fmt: torch.memory_format) -> None:
        extra = (self.ema.module,) if self.ema is not None else ()
        for m in (*self.trained_modules(), *extra):
            m.to(memory_format=fmt)

    def run(self) -> GANModel:
        self._use_layout(self.memory_format)  # again, if an earlier run() handed them back
        for m in self.trained_modules():
            m.train()
        self.run_steps()
        # Hand the modules back in the default layout: the model then behaves exactly as the
        # file it was saved to does when loaded.
        self._use_layout(torch.contiguous_format)
        result = self.model()
        for m in result.modules.values():
            m.eval()
        return result

    # subclasses provide these
    def trained_modules(self) -> list[nn.Module]:
        """The networks with optimisers (the EMA copy is handled here)."""
        raise NotImplementedError

    def step(self) -> dict[str, float]:
        raise NotImplementedError

    def preview(self) -> torch.Tensor:
        raise NotImplementedError

    def model(self) -> GANModel:
        raise NotImplementedError
