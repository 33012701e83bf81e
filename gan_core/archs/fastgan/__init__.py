"""FastGAN (Liu et al. 2021, "Towards Faster and Stabilized GAN Training for High-fidelity
Few-shot Image Synthesis"): skip-layer excitation, a self-supervised discriminator, 256-1024 px
from about a hundred images. Reads odegeasslbc/FastGAN-pytorch's files."""
from ...registry import ArchSpec, LatentIO, TrainingRecipe
from .network import FastGANConfig, build_fastgan
from .objective import FastGANObjective
from .public import FORMAT

SPECS = (ArchSpec(
    "fastgan", "generate", FastGANConfig, build_fastgan,
    "FastGAN (skip-layer excitation, self-supervised D), 256/512/1024 px, few-shot; loads "
    "odegeasslbc/FastGAN-pytorch checkpoints",
    latent_io=lambda cfg: LatentIO(z_dim=cfg.latent_dim, synthesis=True),
    public_formats=(FORMAT,),
    training=TrainingRecipe(
        trainer="gan",
        objective=FastGANObjective,
        # CUDA only: no gain on a CPU (benchmarks/train_throughput.py --arch fastgan, 1 thread:
        # 0.93x the plain loop with it, 1.01x without).
        channels_last=("cuda",),
        width_fields=("ngf", "ndf"),
        channel_config=lambda c: {"channels": c},
        # The original train.py's size, batch, policy and widths: there is no CPU shortcut.
        profiles={"cpu": {"size": 256, "batch": 8, "lr": 2e-4, "augment": "color,translation"}},
    ),
),)
