"""GAN Atelier's own denoiser: a small U-Net predicting a residual, with an optional
noise-level input and a PatchGAN discriminator for the adversarial term."""
from ...registry import ArchSpec, ImageIO, TrainingRecipe
from .network import UNetDenoiserConfig, build_unet_denoiser

SPECS = (ArchSpec(
    "unet_denoiser", "denoise", UNetDenoiserConfig, build_unet_denoiser,
    "GAN Atelier's U-Net denoiser (residual output, optional noise-level map) with a "
    "PatchGAN discriminator; trained from clean images",
    image_io=lambda cfg: ImageIO("unit", channels=cfg.channels, size_multiple=2 ** cfg.depth,
                                 min_size=2 ** cfg.depth,
                                 noise_level_input=cfg.noise_level_input),
    training=TrainingRecipe(
        trainer="denoise",
        # G forward + backward 0.114 -> 0.083 s on a CPU (width 16, 64 px, batch 16, 2 threads)
        channels_last=("cpu", "cuda"),
        channel_config=lambda c: {"channels": c},
        width_fields=("width",),
        # The default denoiser, trained in a few CPU minutes on procedural pictures with a range
        # of Gaussian noise. Plain L1 with the noise-level input: benchmarks/denoise_quality.py
        # measured the PatchGAN term costing 1.6 dB at sigma 25, and the noise-level input lets
        # denoise's sigma steer one model from light to heavy noise.
        profiles={"cpu": {"data": "builtin:mondrian", "noise": "gaussian:5-50", "size": 64,
                          "steps": 500, "batch": 16, "lr_g": 1e-3, "width": 16,
                          "adv_weight": 0.0, "loss": "l1", "preview_every": 50,
                          "checkpoint_every": 100, "seed": 0,
                          "model": {"noise_level_input": True}}},
        default=True,
    ),
),)
