"""The one trainer skeleton: what every gan_core trainer shares.

`TrainLoop` holds the setup (`begin`: config check, device, AMP, the family's spec, the seeded
generator, resume checks), building and placing the networks (`build_nets`, `place`, the
family's channels_last policy), optimisers and exact resume (`make_optimizer`, `restore`),
autocast, the run loop with its save-on-cancel and NaN rules, checkpointing, and `model()` (a
GANModel view of the current state with the training summary and resume state). A trainer
subclasses it and provides `step()` (one iteration, returns its losses), `preview()` (an IMAGE
grid), `summary()` (its lines of the training summary) and `modules()` (the roles it saves).
The GAN trainer (trainer.py), the denoiser trainer (denoise_trainer.py) and the CycleGAN style
trainer (style_trainer.py) then share one loop and one checkpoint format.

Data-parallel runs (torchrun; see distributed.py): a trainer that supports them sets
`world_size` and `rank`. All processes step together; they agree on stopping (any process's
check_stop stops all after the same step); only rank 0 makes previews and writes checkpoints,
and the others wait for the file to be complete before going on. On a cancel or crash rank 0
saves once without waiting for the others, which may be gone or stuck in a collective.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch
from torch import nn

from ..archs import get_arch
from ..device import amp_dtype, make_adam, resolve_device
from ..errors import NonFiniteLossError
from ..io import save
from ..model import GANModel, ResumeState
from ..seeds import generator_seed
from ..statedict import load_state_strict
from ..version import __version__
from . import distributed
from .checks import TRAINER_NAMES


# What a resume file's parameter groups may set: the hyper-parameters of the run. How the
# optimiser computes (fused, foreach, capturable, differentiable) stays the live optimiser's,
# which was made for this device.
RESUMED_GROUP_KEYS = ("lr", "initial_lr", "betas", "eps", "weight_decay", "amsgrad", "maximize",
                      "decoupled_weight_decay")


@dataclass
class TrainCallbacks:
    """Hooks the caller plugs in. `check_stop` runs before every step: it may raise (ComfyUI's
    interrupt) or return True to stop early; either way a checkpoint is written first."""

    on_step: Callable[[int, dict[str, float]], None] | None = None
    on_preview: Callable[[int, torch.Tensor], None] | None = None
    on_checkpoint: Callable[[int, str], None] | None = None
    check_stop: Callable[[], bool | None] | None = None


# --------------------------------------------------------------------------- resume helpers

def check_resume(resume: GANModel, arch: str | None = None, trainer: str | None = None) -> None:
    """Refuse a `resume` file the run cannot continue, with a message naming the mismatch: a
    family `trainer` ("gan", "style", "denoise") does not train (a style model given to the
    GAN trainer), a file without resume state, or another architecture than `arch`."""
    source = resume.source or "the model"
    if trainer is not None:
        spec = get_arch(resume.arch)
        if not spec.trains_with(trainer):
            by = spec.training.trainer if spec.training is not None else None
            hint = (f"; continue it with {TRAINER_NAMES[by]}" if by else
                    "; gan_core only loads it (it cannot be trained here)")
            raise ValueError(f"cannot resume from {source}: it is a {spec.task} model "
                             f"({resume.arch}), which {TRAINER_NAMES[trainer]} does not "
                             f"train{hint}")
    if resume.resume is None:
        raise ValueError(f"{source} holds no resume state (it was saved for inference only)")
    if arch is not None and resume.arch != arch:
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


def load_optimizers(state: ResumeState, optimizers: dict[str, torch.optim.Optimizer],
                    source: str = "the resume file") -> None:
    """The file's moments and hyper-parameters into the live optimisers, after checking them
    against the live parameters: gan_core.load already refused a file whose moments do not
    fit its own networks, and this catches a ResumeState edited in memory (a moment of the
    wrong shape makes the fused Adam kernel write outside it: a segmentation fault)."""
    extra = sorted(set(state.optimizers) - set(optimizers))
    if extra:
        raise ValueError(f"cannot resume from {source}: it holds optimiser state for "
                         f"{', '.join(extra)}, which this run does not train")
    for name, opt in optimizers.items():
        saved = state.optimizers.get(name)
        if saved is None:
            continue  # e.g. a discriminator added to a denoiser run: its moments start at 0
        current = opt.state_dict()
        params = [p for g in opt.param_groups for p in g["params"]]
        if len(saved["param_groups"]) != len(current["param_groups"]):
            raise ValueError(f"cannot resume from {source}: optimiser {name} has "
                             f"{len(saved['param_groups'])} parameter groups, this run "
                             f"{len(current['param_groups'])}")
        for idx, fields in saved["state"].items():
            if not isinstance(idx, int) or not 0 <= idx < len(params):
                raise ValueError(f"cannot resume from {source}: optimiser {name} has state for "
                                 f"parameter {idx}, but steps {len(params)} parameters")
            for key, value in fields.items():
                if key != "step" and (not isinstance(value, torch.Tensor)
                                      or value.shape != params[idx].shape):
                    shape = tuple(value.shape) if isinstance(value, torch.Tensor) else value
                    raise ValueError(f"cannot resume from {source}: optimiser {name}'s {key} "
                                     f"of parameter {idx} is {shape}, the parameter "
                                     f"{tuple(params[idx].shape)}")
        groups = [{**cur, **{k: g[k] for k in RESUMED_GROUP_KEYS if k in g},
                   "params": cur["params"]}
                  for g, cur in zip(saved["param_groups"], current["param_groups"])]
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
    """The skeleton shared by the trainers (see the module docstring)."""

    cfg: Any
    out: str | None
    cb: TrainCallbacks
    step_count: int
    saved_step: int
    last_preview: torch.Tensor | None
    memory_format: torch.memory_format
    ema: nn.Module | None  # torch.optim.swa_utils.AveragedModel of the generator, if kept
    opts: dict[str, torch.optim.Optimizer]
    history: dict[str, list[float]]
    world_size: int = 1  # processes training together (DDP); trainers that support it set these
    rank: int = 0

    # ------------------------------------------------------------------ setup
    def begin(self, config: Any, trainer: str, out: str | os.PathLike | None,
              callbacks: TrainCallbacks | None, resume: GANModel | None,
              device: torch.device | None = None) -> None:
        """What every trainer does first: check the options and that the family is one this
        trainer trains, pick the device and AMP, seed the trainer's generator, check the resume
        file, and start the clock (a resumed run keeps counting from its earlier sessions)."""
        self.cfg = config.validate()
        self.out = os.fspath(out) if out is not None else None
        self.cb = callbacks or TrainCallbacks()
        self.device = device if device is not None else resolve_device(config.device)
        self.amp = amp_dtype(self.device, getattr(config, "amp", "off"))
        self.spec = get_arch(config.arch)
        if not self.spec.trains_with(trainer):
            raise ValueError(f"{config.arch} is not trained by the {trainer} trainer")
        self.recipe = self.spec.training
        if resume is not None:
            check_resume(resume, config.arch, trainer)
        self.gen = torch.Generator().manual_seed(generator_seed(config.seed))
        self.step_count = 0
        self.saved_step = -1
        self.last_preview = None
        self.ema = None
        self.opts = {}
        self.history = {}
        earlier = resume.training.get("seconds", 0.0) if resume is not None else 0.0
        self._seconds_before = float(earlier) if isinstance(earlier, (int, float)) else 0.0
        self._started = time.perf_counter()
        self.memory_format = self._memory_format(config.channels_last)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp == torch.float16)

    def _memory_format(self, choice: str) -> torch.memory_format:
        """channels_last "on", "off", or "auto": on the device types where the family
        measured a gain (its TrainingRecipe)."""
        on = choice == "on" or (choice == "auto" and self.device.type in self.recipe.channels_last)
        return torch.channels_last if on else torch.contiguous_format

    def build_nets(self, model_cfg: Any, copies: int = 1) -> list[dict[str, nn.Module]]:
        """`copies` builds of the family's networks, initialised from the run's seed (and only
        from it: the global RNG is left as it was)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(generator_seed(self.cfg.seed))
            return [self.spec.build(model_cfg) for _ in range(copies)]

    def place(self, nets: Iterable[nn.Module]) -> None:
        """Onto the trainer's device, in its memory layout, in training mode."""
        for m in nets:
            m.to(self.device, memory_format=self.memory_format).train()

    def make_optimizer(self, name: str, params: Iterable[torch.nn.Parameter], lr: float,
                       betas: tuple[float, float]) -> torch.optim.Optimizer:
        self.opts[name] = make_adam(params, lr, betas, self.device)
        return self.opts[name]

    def restore_weights(self, resume: GANModel | None, nets: dict[str, nn.Module]) -> None:
        """Continue `resume`'s run, part 1: the roles in `nets`, the RNG, the loss history and
        the step count (before the networks are moved or wrapped)."""
        if resume is not None:
            self.step_count = load_weights(resume, nets, self.gen, self.history)

    def restore_training(self, resume: GANModel | None) -> None:
        """Part 2, once the EMA and the optimisers exist: the EMA weights and count and the
        optimisers' moments (in their parameters' layouts)."""
        if resume is None:
            return
        if self.ema is not None:
            load_ema(resume, self.ema)
        load_optimizers(resume.resume, self.opts, resume.source or "the resume file")
        match_moment_layouts(self.opts.values())
        self.saved_step = self.step_count

    def autocast(self):
        """The run's mixed precision (AMP on CUDA by default), or nothing."""
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp)

    def record(self, values: dict[str, float]) -> dict[str, float]:
        """End of an iteration: count the step and append its values to the history."""
        self.step_count += 1
        for k, v in values.items():
            self.history.setdefault(k, []).append(v)
        return values

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

    # ------------------------------------------------------------------ outputs
    def model(self) -> GANModel:
        """A GANModel view of the current state (shares the live modules): the training
        summary (the trainer's own lines and the shared ones) and the resume state."""
        cfg = self.cfg
        training = {
            "steps": self.step_count, "seed": cfg.seed, "batch": cfg.batch, **self.summary(),
            "final_losses": {k: v[-1] for k, v in self.history.items() if v},
            "gan_core_version": __version__, "device": self.device.type,
            "seconds": round(self._seconds_before + time.perf_counter() - self._started, 2),
        }
        resume = ResumeState(
            step=self.step_count,
            optimizers={name: opt.state_dict() for name, opt in self.opts.items()},
            rng_state=self.gen.get_state(),
            ema_count=int(self.ema.n_averaged) if self.ema is not None else 0,
            history={k: list(v) for k, v in self.history.items()},
            train_config=cfg.to_dict(), buffers=self.resume_buffers(),
        )
        model = GANModel(cfg.arch, self.model_cfg, self.modules(), training=training,
                         resume=resume, source=self.out)
        for m in self.trained_modules():
            m.train()  # GANModel() puts modules in eval mode
        return model

    def resume_buffers(self) -> dict[str, torch.Tensor]:
        """Trainer state beyond weights, moments, RNG and history (CycleGAN's image pools)."""
        return {}

    # subclasses provide these
    model_cfg: Any

    def trained_modules(self) -> list[nn.Module]:
        """The networks with optimisers (the EMA copy is handled here)."""
        raise NotImplementedError

    def modules(self) -> dict[str, nn.Module]:
        """The roles the model holds (what a checkpoint stores)."""
        raise NotImplementedError

    def summary(self) -> dict[str, Any]:
        """The trainer's own lines of the training summary (data, losses, sizes)."""
        raise NotImplementedError

    def step(self) -> dict[str, float]:
        raise NotImplementedError

    def preview(self) -> torch.Tensor:
        raise NotImplementedError
