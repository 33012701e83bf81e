"""StyleGAN2-ADA (Karras et al. 2020) in NVIDIA's network-pickle layout: generator and
discriminator whose state_dicts are those of NVIDIA's stylegan2-ada-pytorch (and the StyleGAN2
config of their stylegan3 repository) key for key; their PyTorch `network-snapshot-*.pkl` /
`stylegan2-*.pkl` files and the TensorFlow-era (G, D, Gs) pickles are read as data."""
import dataclasses

from ...registry import ArchSpec, LatentIO
from .network import StyleGAN2ADAConfig, build_stylegan2_ada
from .public import FORMAT

_LATENT_FIELDS = {f.name for f in dataclasses.fields(LatentIO)}


def latent_io(cfg: StyleGAN2ADAConfig) -> LatentIO:
    """z -> w by the mapping network, one w per layer (num_ws); people share NVIDIA seeds by
    numpy's RandomState(seed).randn(1, z_dim); conditional models take c_dim classes."""
    extra = {}
    if "seed_convention" in _LATENT_FIELDS:
        extra["seed_convention"] = "numpy"
    if "classes" in _LATENT_FIELDS:
        extra["classes"] = cfg.c_dim
    return LatentIO(z_dim=cfg.z_dim, w_dim=cfg.w_dim, n_latent=cfg.num_ws, mapped=True,
                    synthesis=True, style_mixing=True, **extra)


SPECS = (ArchSpec(
    "stylegan2_ada", "generate", StyleGAN2ADAConfig, build_stylegan2_ada,
    "StyleGAN2-ADA generator and discriminator (NVIDIA network-pickle layout; load-only)",
    roles={"G": "G", "G_ema": "G", "D": "D"},
    latent_io=latent_io,
    public_formats=(FORMAT,),
),)
