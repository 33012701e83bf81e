"""Stand-in for comfy.cli_args: the parsed command line, with ComfyUI's default for the
setting GAN Atelier reads (--preview-size, 512)."""
from types import SimpleNamespace

args = SimpleNamespace(preview_size=512, disable_metadata=False)
