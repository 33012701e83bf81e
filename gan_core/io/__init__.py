"""Model files: our checkpoint format, public-file recognition, safe readers and atomic writes."""
from ..atomic import atomic_write
from .checkpoint import FORMAT_TAG, FORMAT_VERSION, read_safetensors, save
from .load import load

__all__ = ["FORMAT_TAG", "FORMAT_VERSION", "atomic_write", "load", "read_safetensors", "save"]
