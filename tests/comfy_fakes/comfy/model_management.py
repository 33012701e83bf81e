"""Stand-in for comfy.model_management: the interrupt flag, its exception, the device and
cache calls, with the same names and semantics as ComfyUI's."""
from __future__ import annotations

import threading

import torch

interrupt_processing = False
_mutex = threading.RLock()
empty_cache_calls = 0


class InterruptProcessingException(Exception):
    pass


def interrupt_current_processing(value: bool = True) -> None:
    global interrupt_processing
    with _mutex:
        interrupt_processing = value


def processing_interrupted() -> bool:
    with _mutex:
        return interrupt_processing


def throw_exception_if_processing_interrupted() -> None:
    global interrupt_processing
    with _mutex:
        if interrupt_processing:
            interrupt_processing = False
            raise InterruptProcessingException()


def get_torch_device() -> torch.device:
    return torch.device("cpu")


def soft_empty_cache(force: bool = False) -> None:
    global empty_cache_calls
    empty_cache_calls += 1


free_memory_calls: list[tuple[float, torch.device]] = []


def free_memory(memory_required, device, keep_loaded=[]) -> list:  # noqa: B006 - ComfyUI's signature
    """Records the request; ComfyUI unloads its own models until `memory_required` is free."""
    free_memory_calls.append((memory_required, device))
    return []
