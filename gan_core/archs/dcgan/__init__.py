"""DCGAN (Radford et al. 2016): convolutional G and D, square power-of-two sizes 32-256 px.
At 64 px its weights use the same names as pytorch/examples' DCGAN."""
from ...registry import ArchSpec, LatentIO, TrainingRecipe
from .network import DCGANConfig, build_dcgan

SPECS = (ArchSpec(
    "dcgan", "generate", DCGANConfig, build_dcgan,
    "convolutional GAN, square power-of-two sizes 32-256 px",
    latent_io=lambda cfg: LatentIO(z_dim=cfg.latent_dim),
    training=TrainingRecipe(
        trainer="gan",
        # channels_last pays for conv nets on CPUs too (oneDNN), forward and backward:
        # benchmarks/train_throughput.py, dcgan 64 px: +20% on an AVX-512 EPYC.
        channels_last=("cpu", "cuda"),
        width_fields=("ngf", "ndf"),
        channel_config=lambda c: {"channels": c},
        # A CPU demo: a few minutes must show real learning. Measured on the 2-core dev CPU
        # (400 steps, batch 32, builtin:blobs): the DCGAN paper's settings (lr 2e-4, widths
        # 64, the library's TrainConfig defaults) leave samples grey (mean colour saturation
        # 0.05 vs 0.23 in the data); lr 1e-3 with widths 32 gets there at twice the speed.
        profiles={"cpu": {"size": 32, "batch": 32, "lr": 1e-3, "width": 32},
                  "paper": {"size": 64, "batch": 128, "lr": 2e-4, "width": 64}},
        default=True,
    ),
),)
