"""Exceptions a caller can catch by meaning rather than by message text.

The node layer turns these into readable errors in the ComfyUI queue; the CLI prints them
without a traceback. Each one subclasses a builtin so generic handlers still work.
"""


class GanAtelierError(Exception):
    """Base class of every error this library raises on purpose."""


class CheckpointError(GanAtelierError, ValueError):
    """A model file is missing, unreadable, truncated, foreign or inconsistent."""


class DatasetError(GanAtelierError, ValueError):
    """A dataset spec or folder cannot give any usable training image."""


class ImageError(GanAtelierError, ValueError):
    """An image file or an IMAGE tensor cannot be used: unreadable, truncated, over the pixel
    limit, an unsupported mode or dtype, no pixels, or NaN/inf values. The message names the
    file or the input and what was expected."""


class NonFiniteLossError(GanAtelierError, FloatingPointError):
    """Training produced a NaN/inf loss; the step it happened at is kept for the message."""

    def __init__(self, step: int, losses: dict[str, float]):
        self.step = step
        self.losses = dict(losses)
        shown = ", ".join(f"{k}={v}" for k, v in losses.items())
        super().__init__(
            f"training stopped at step {step}: non-finite loss ({shown}). The model was not "
            "updated with it and the last good checkpoint is intact; try a lower learning "
            "rate, the hinge loss or an R1 penalty."
        )
