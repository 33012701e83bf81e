"""The classic fully connected GAN (Goodfellow et al. 2014 as in the PyTorch tutorials): G
100-256-512-1024-784 with BatchNorm and ReLU, tanh; D 784-512-256-1, for small gray images."""
from ...registry import ArchSpec, LatentIO, TrainingRecipe
from .network import MLPConfig, build_mlp

SPECS = (ArchSpec(
    "mlp", "generate", MLPConfig, build_mlp,
    "fully connected GAN for small grayscale images (28 px by default)",
    latent_io=lambda cfg: LatentIO(z_dim=cfg.latent_dim),
    training=TrainingRecipe(
        trainer="gan",
        channels_last=(),  # no convolutions
        # D treats each image on its own (no BatchNorm, no minibatch statistics): real and
        # fake go through it as one batch, the same maths in one pass (+4-7% on a CPU).
        joint_d_pass=True,
        channel_config=lambda c: {"channels": c},
        default_channels=1,
        # Batch 128: 2.8x the images/s of batch 32 (measured with benchmarks/train_throughput.py); per-op overhead dominates.
        profiles={"cpu": {"size": 28, "batch": 128, "lr": 2e-4}},
    ),
),)
