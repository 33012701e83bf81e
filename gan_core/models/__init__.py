"""Architectures. Importing this package registers every built-in architecture."""
from . import cyclegan, dcgan, mlp, transformer_net  # noqa: F401  (registration side effect)
from . import denoisers, unet_denoiser  # noqa: F401  (registration side effect)
from . import stylegan2  # noqa: F401  (registration side effect)
from . import fastgan  # noqa: F401  (registration side effect)
from .registry import ArchSpec, config_from_json, config_to_json, get_arch, list_archs

__all__ = ["ArchSpec", "config_from_json", "config_to_json", "get_arch", "list_archs"]
