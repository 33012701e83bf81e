"""StyleGAN3 (Karras et al. 2021), configs T and R, in NVIDIA's network-pickle layout,
load-only: NVIDIA's `stylegan3-*.pkl` / `network-snapshot-*.pkl` files read as data."""
from ...registry import ArchSpec, LatentIO
from .network import StyleGAN3Config, build_stylegan3
from .public import FORMAT

SPECS = (ArchSpec(
    "stylegan3", "generate", StyleGAN3Config, build_stylegan3,
    "StyleGAN3 generator, configs T and R (NVIDIA network-pickle layout; load-only)",
    roles={"G": "G", "G_ema": "G", "D": "D"},
    latent_io=lambda cfg: LatentIO(z_dim=cfg.z_dim, w_dim=cfg.w_dim, n_latent=cfg.num_ws,
                                   mapped=True, synthesis=True, style_mixing=True),
    public_formats=(FORMAT,),
),)
