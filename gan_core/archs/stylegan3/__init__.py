"""StyleGAN3 (Karras et al. 2021, "Alias-Free Generative Adversarial Networks"), configs T and
R, in NVIDIA's network-pickle layout, load-only: `stylegan3-*.pkl` / `network-snapshot-*.pkl`
files of NVIDIA's stylegan3 repository are read as data (G, G_ema and the StyleGAN2
Discriminator it trains with). Plain PyTorch: the filtered leaky ReLU runs in polyphase /
strided form, in bands, with no compiled extension."""
from ...registry import ArchSpec, LatentIO
from .network import StyleGAN3Config, build_stylegan3
from .public import FORMAT


def latent_io(cfg: StyleGAN3Config) -> LatentIO:
    """z (and a one-hot class for conditional models) -> w by the mapping network, one w per
    layer (num_ws = num_layers + 2); no noise inputs; NVIDIA's seeds are
    numpy's RandomState(seed).randn(1, z_dim); a camera (the input's transform)."""
    return LatentIO(z_dim=cfg.z_dim, w_dim=cfg.w_dim, n_latent=cfg.num_ws, mapped=True,
                    synthesis=True, style_mixing=True, seed_convention="numpy",
                    classes=cfg.c_dim, camera=True)


SPECS = (ArchSpec(
    "stylegan3", "generate", StyleGAN3Config, build_stylegan3,
    "StyleGAN3 generator (T and R) and its discriminator (NVIDIA network-pickle layout; "
    "load-only)",
    roles={"G": "G", "G_ema": "G", "D": "D"},
    latent_io=latent_io,
    public_formats=(FORMAT,),
),)
