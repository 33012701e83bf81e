"""StyleGAN2 (Karras et al. 2020) in rosinality/stylegan2-pytorch's layout, load-only: its
training checkpoints, converted NVIDIA files (with `latent_avg`) and bare generators."""
from ...registry import ArchSpec, LatentIO
from .network import StyleGAN2Config, build_stylegan2
from .public import FORMAT

SPECS = (ArchSpec(
    "stylegan2", "generate", StyleGAN2Config, build_stylegan2,
    "StyleGAN2 generator (rosinality/stylegan2-pytorch layout; load-only)",
    roles={"G": "G", "G_ema": "G"},
    extra_tensors=("latent_avg",),  # a converted file's truncation centre, no buffer
    latent_io=lambda cfg: LatentIO(z_dim=cfg.style_dim, w_dim=cfg.style_dim,
                                   n_latent=cfg.n_latent, mapped=True, synthesis=True,
                                   style_mixing=True),
    public_formats=(FORMAT,),
),)
