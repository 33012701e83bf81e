"""gan_core: GAN models, training, checkpoints and image helpers, with no ComfyUI dependency.

This module's namespace is the public API. The ComfyUI nodes and the CLI use nothing else,
so everything a client needs is exported here.
"""
from . import audio  # the music-video toolkit: gan_core.audio.analyze_audio, ...
from .archs import default_arch, get_arch, list_archs, public_format_names
from .io import load, save
from .data import (BUILTIN_DATASETS, BUILTIN_PREFIX, FIT_MODES, CropSource, ImageDataset,
                   crops_from_images, denoise_dataset, from_images, list_image_files,
                   make_builtin, open_crop_source, open_dataset, read_image, style_source)
from .degrade import NOISE_KINDS, Recipe, degrade, degrade_nchw, parse_recipe
from .device import resolve_device
from .errors import (CheckpointError, DatasetError, GanAtelierError, ImageError,
                     NonFiniteLossError)
from .images import check_image_batch, chunks, fill_batch, make_grid, save_image, tensor_to_pil
from .latent import (EASINGS, INTERPOLATION_MODES, INVERT_SPACES, NOISE_MODES, STYLE_LAYERS,
                     GANLatent, InversionResult, LatentSpace, WalkResult, fps_hint,
                     generate_from_latent, interpolate, invert, lerp, mean_latent, seed_latent,
                     slerp, style_mix, variations, walk)
from .model import DIRECTIONS, GANModel
from .registry import ArchSpec, ImageIO, LatentIO, TrainingRecipe
from .plots import pick_curves, plot_losses
from .paths import UnsafePathError, release_if_empty, reserve_numbered, safe_join
from .seeds import MAX_SEED, parse_seeds
from .training import (AUGMENTATIONS, LOSSES, RECON_LOSSES, DenoiseTrainConfig, StyleTrainConfig,
                       TrainCallbacks, TrainConfig, check_resume, train, train_denoiser,
                       train_style)
from .training.checks import check_resume_file, check_train_size
from .training.distributed import distributed_session, is_main_process, process_count
from .io.peek import FileSummary, peek
from .version import __version__

__all__ = [
    "AUGMENTATIONS", "BUILTIN_DATASETS", "BUILTIN_PREFIX", "CheckpointError", "DatasetError",
    "DenoiseTrainConfig", "RECON_LOSSES", "train_denoiser",
    "FIT_MODES", "GANModel", "GanAtelierError", "ImageDataset", "LOSSES", "MAX_SEED", "NOISE_KINDS", "Recipe",
    "NonFiniteLossError", "TrainCallbacks", "TrainConfig", "UnsafePathError", "__version__", "check_image_batch",
    "check_resume", "degrade", "degrade_nchw",
    "from_images", "list_archs", "list_image_files", "load", "make_builtin", "make_grid", "open_dataset", "parse_recipe", "read_image",
    "parse_seeds", "release_if_empty", "reserve_numbered", "resolve_device", "safe_join", "save",
    "save_image", "tensor_to_pil", "train",
    "CropSource", "DIRECTIONS", "StyleTrainConfig", "crops_from_images", "open_crop_source",
    "train_style",
    "ImageError",
    "distributed_session", "is_main_process", "process_count",
    "EASINGS", "GANLatent", "INTERPOLATION_MODES", "INVERT_SPACES", "InversionResult",
    "LatentSpace", "NOISE_MODES", "STYLE_LAYERS", "WalkResult", "fps_hint",
    "generate_from_latent", "interpolate", "invert", "lerp", "mean_latent", "seed_latent",
    "slerp", "style_mix", "variations", "walk",
    "ArchSpec", "ImageIO", "LatentIO", "TrainingRecipe", "default_arch", "get_arch",
    "audio", "public_format_names", "plot_losses", "pick_curves", "chunks", "fill_batch", "denoise_dataset", "style_source", "check_resume_file", "check_train_size", "FileSummary", "peek",
]
