"""DnCNN (Zhang et al. 2017) as KAIR publishes it (BatchNorm merged): blind or per-sigma
residual denoisers, gray or colour."""
from ...registry import ArchSpec, ImageIO, TrainingRecipe
from .network import DnCNNConfig, build_dncnn
from .public import FORMAT

SPECS = (ArchSpec(
    "dncnn", "denoise", DnCNNConfig, build_dncnn,
    "KAIR DnCNN, BatchNorm merged (dncnn_15/25/50, gray/colour blind, dncnn3)",
    roles={"G": "G", "G_ema": "G"},
    image_io=lambda cfg: ImageIO("unit", channels=cfg.in_nc),
    public_formats=(FORMAT,),
    training=TrainingRecipe(trainer="denoise", channels_last=("cpu", "cuda"),
                            channel_config=lambda c: {"in_nc": c, "out_nc": c}),
),)
