"""The pinned version of the V3 API: as in ComfyUI, the latest io / ui / ComfyExtension."""
from comfy_api.latest import ComfyExtension, io, ui  # noqa: F401

__all__ = ["ComfyExtension", "io", "ui"]
