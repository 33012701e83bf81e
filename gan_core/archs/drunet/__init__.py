"""DRUNet (Zhang et al. 2021, DPIR's UNetRes): a U-Net of residual blocks that takes the
noise level as an extra input channel."""
from ...registry import ArchSpec, ImageIO, TrainingRecipe
from .network import DRUNetConfig, build_drunet
from .public import FORMAT

SPECS = (ArchSpec(
    "drunet", "denoise", DRUNetConfig, build_drunet,
    "DPIR DRUNet (UNetRes), noise-level map input (drunet_gray / drunet_color)",
    roles={"G": "G", "G_ema": "G"},
    # three stride-2 2x2 convs: H and W multiples of 8
    image_io=lambda cfg: ImageIO("unit", channels=cfg.out_nc, size_multiple=8, min_size=8,
                                 noise_level_input=True),
    public_formats=(FORMAT,),
    training=TrainingRecipe(trainer="denoise", channels_last=("cpu", "cuda"),
                            channel_config=lambda c: {"in_nc": c + 1, "out_nc": c}),
),)
