"""Picking a device and the per-device speed settings that measurement says pay off."""
from __future__ import annotations

import torch


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """"auto" -> CUDA, else Apple MPS, else CPU; anything else is passed to torch.device."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


AMP_MODES = ("auto", "off", "bf16", "fp16")
CHANNELS_LAST_MODES = ("auto", "on", "off")


def check_amp(amp: str | bool) -> str | bool:
    """An AMP setting this module understands, else a ValueError naming the choices."""
    if amp not in (*AMP_MODES, True, False, "none", "fp32", "float16", "bfloat16"):
        raise ValueError(f"amp must be one of {AMP_MODES}, got {amp!r}")
    return amp


def amp_dtype(device: torch.device, amp: str | bool) -> torch.dtype | None:
    """Autocast dtype, or None for fp32. "auto" enables AMP on CUDA only: bf16 autocast on
    CPUs without bf16 units is several times slower than fp32 (BENCHMARKS.md). "bf16" on a
    CUDA device without bf16 support falls back to fp16 with a gradient scaler."""
    check_amp(amp)
    if amp in (False, "off", "none", "fp32"):
        return None
    if device.type != "cuda":
        if amp in ("auto", True):
            return None
        raise ValueError(f"amp={amp!r} is only supported on CUDA; this run is on {device.type}")
    if amp in ("fp16", "float16"):
        return torch.float16
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def make_adam(params, lr: float, betas: tuple[float, float], device: torch.device) -> torch.optim.Adam:
    """Adam with the fused kernel where this build has it for the device (one launch per
    step instead of several per parameter), else the foreach implementation."""
    params = list(params)
    if device.type in ("cuda", "cpu", "mps"):
        try:
            return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
        except (RuntimeError, ValueError):
            pass
    return torch.optim.Adam(params, lr=lr, betas=betas, foreach=True)
