"""Latent control for every generator: interpolation, looping walks, truncation, inversion,
variations and style mixing, written once over the latent protocol (see space.py)."""
from .edit import (STYLE_LAYERS, generate_from_latent, seed_latent, style_layer_indices,
                   style_mix, variations)
from .invert import INVERT_SPACES, PIXEL_LOSSES, InversionResult, invert
from .paths import (EASINGS, INTERPOLATION_MODES, WalkResult, fps_hint, interpolate, lerp,
                    slerp, walk)
from .space import (MEAN_LATENT_SAMPLES, NOISE_MODES, SPACES, GANLatent, LatentSpace,
                    mean_latent)


__all__ = ["EASINGS", "GANLatent", "INVERT_SPACES", "InversionResult", "LatentSpace",
           "MEAN_LATENT_SAMPLES", "INTERPOLATION_MODES", "NOISE_MODES", "PIXEL_LOSSES", "SPACES",
           "STYLE_LAYERS", "WalkResult", "fps_hint", "generate_from_latent", "interpolate",
           "invert", "lerp", "mean_latent", "seed_latent",
           "slerp", "style_layer_indices", "style_mix", "variations", "walk"]
