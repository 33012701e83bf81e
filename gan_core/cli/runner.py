"""What every long CLI command shares: a tqdm bar with the losses, preview grids next to the
output, and Ctrl-C that stops after the current step and saves (a second one stops at once)."""
from __future__ import annotations

import argparse
import math
import os
import signal
import sys
from pathlib import Path

import gan_core


def seed_value(text: str) -> int:
    """argparse type for seeds: an integer in ComfyUI's range 0..2^64-1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= gan_core.MAX_SEED:
        raise argparse.ArgumentTypeError(f"{value} is outside 0..{gan_core.MAX_SEED} (2^64-1)")
    return value


def default_threads() -> int:
    """CPU threads when --threads is not given: the cores torch sees, less the machine's
    current load (1-minute load average), at least 1. On a busy machine two threads can fall
    to a fraction of one thread's speed (the README's main job took 4 min 54 s instead of
    about 2 with the other core taken)."""
    cores = max(1, os.cpu_count() or 1)
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):  # not available on Windows
        return cores
    return max(1, min(cores, cores - math.ceil(load - 0.5)))


class StopOnCtrlC:
    """The first Ctrl-C asks the trainer to stop after the current step (it then saves a
    checkpoint that resumes exactly); a second one interrupts at once.

    Under torchrun the workers never see the terminal's Ctrl-C: torchrun forwards the signal it
    got (SIGINT, or SIGTERM from a scheduler) to each of them once, then kills them 30 s later.
    `signals` then includes SIGTERM, and all processes agree to stop after the same step."""

    def __init__(self, signals: tuple[int, ...] = (signal.SIGINT,), announce: bool = True) -> None:
        self.pressed = False
        self.signals = signals
        self.announce = announce
        self._previous: dict[int, object] = {}

    def requested(self) -> bool:
        return self.pressed

    def _handle(self, signum, frame) -> None:
        if self.pressed:
            raise KeyboardInterrupt
        self.pressed = True
        if self.announce:
            print("\nstopping after this step (Ctrl-C again to stop at once)...", file=sys.stderr)

    def __enter__(self) -> "StopOnCtrlC":
        for sig in self.signals:
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: keep the default behaviour
                pass
        return self

    def __exit__(self, *exc) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}


def preview_path(args: argparse.Namespace) -> Path:
    return Path(args.preview) if args.preview else Path(args.out).with_suffix(".png")


def train_with_progress(args: argparse.Namespace, run, total: int, start: int, desc: str,
                         header: str, names: dict[str, str | None] | None = None,
                         hint: str | None = None) -> int:
    """Run `run(callbacks)` with a tqdm bar showing the losses (renamed by `names`; None hides
    one), preview grids written next to --out, and Ctrl-C handling: the first one stops after
    the current step and saves, a second one at once. Returns the exit code.

    In a distributed run (torchrun) only the main process prints and shows the bar (the
    trainer lets only it write files), and SIGTERM is handled like Ctrl-C."""
    from tqdm import tqdm

    grid_path = preview_path(args)
    names = names or {}
    main = gan_core.is_main_process()
    distributed = gan_core.process_count() > 1
    if main:
        print(header, file=sys.stderr)
    bar = tqdm(total=total, initial=start, desc=desc, unit="step", dynamic_ncols=True,
               disable=not main)

    def on_step(step: int, losses: dict[str, float]) -> None:
        bar.update(1)
        bar.set_postfix({names.get(k, k): f"{v:.2f}" if k == "psnr" else f"{v:.3f}"
                         for k, v in losses.items() if names.get(k, k)}, refresh=False)

    stop = StopOnCtrlC((signal.SIGINT, signal.SIGTERM) if distributed else (signal.SIGINT,),
                        announce=main)
    callbacks = gan_core.TrainCallbacks(
        on_step=on_step, check_stop=stop.requested,
        on_preview=lambda step, grid: gan_core.save_image(grid, grid_path),
    )
    try:
        with stop:
            model = run(callbacks)
    except KeyboardInterrupt:
        stop.pressed = True  # a second Ctrl-C mid-step: the trainer saved what it had
    finally:
        bar.close()
    if stop.pressed:
        if main:
            print(f"\ninterrupted; {args.out} holds the last completed step. "
                  f"{hint or f'Continue with --resume {args.out}'}", file=sys.stderr)
        return 130
    if not main:
        return 0
    losses = model.training.get("final_losses", {})
    print(f"saved {args.out} after {model.training['steps']} steps "
          f"({model.training['seconds']} s); preview {grid_path}; final losses "
          + ", ".join(f"{k}={v:.3f}" for k, v in losses.items() if names.get(k, k)))
    return 0


def refuse_torchrun(command: str) -> None:
    """Only `train` runs data-parallel; other trainers started N times by torchrun would train
    N separate models into the same file."""
    env = os.environ.get("WORLD_SIZE")
    if env not in (None, "", "1"):
        raise ValueError(f"{command} does not run under torchrun (WORLD_SIZE={env}); start it "
                         "as one process (only `train` supports data-parallel training)")
