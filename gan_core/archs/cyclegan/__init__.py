"""CycleGAN (Zhu et al. 2017): ResNet generators between two image domains, trained here by
the style trainer (content -> style and back), or read from the original project's files."""
from ...registry import ArchSpec, ImageIO, TrainingRecipe
from .network import CycleGANResnetConfig, build_cyclegan_resnet
from .public import FORMAT

SPECS = (ArchSpec(
    "cyclegan_resnet", "style", CycleGANResnetConfig, build_cyclegan_resnet,
    "CycleGAN ResNet generator (public style_monet, horse2zebra, ... files)",
    # G: A -> B (content -> style), G_BA: B -> A; D judges B, D_A judges A.
    roles={"G": "G", "G_BA": "G", "D": "D", "D_A": "D"},
    # [-1, 1] in and out; multiples of 4 (two stride-2 stages); the residual blocks
    # reflect-pad the 1/4 scale map by 1, which needs at least 2 px there: 8 px in.
    image_io=lambda cfg: ImageIO("signed", channels=cfg.input_nc, size_multiple=4, min_size=8),
    public_formats=(FORMAT,),
    training=TrainingRecipe(
        trainer="style",
        # measured on the 2-core CPU with ngf 32 at 128 px it made the step slower
        # (reflection padding and instance norm run as NCHW); CUDA gains from it.
        channels_last=("cuda",),
        width_fields=("ngf",),
        # A CPU demo that needs no files: procedural content, one procedural brush-stroke
        # painting cut into crops; the original's 6-block ResNet slimmed to ngf 16 / ndf 32 at
        # 96 px, so that a few hundred steps fit in minutes on a laptop CPU.
        profiles={"cpu": {"content": "builtin:blobs", "style": "builtin:painting", "size": 96,
                          "steps": 600, "batch": 1, "preview_every": 50,
                          "checkpoint_every": 100, "seed": 0,
                          "model": {"ngf": 16, "ndf": 32, "n_blocks": 6}},
                  "paper": {"size": 256, "batch": 1, "model": {"ngf": 64, "ndf": 64,
                                                                "n_blocks": 9}}},
        default=True,
    ),
),)
