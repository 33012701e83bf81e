"""pix2pix (Isola et al. 2017) U-Net generators, read from the original project's files."""
from ...registry import ArchSpec, ImageIO
from .network import Pix2PixUnetConfig, build_pix2pix_unet
from .public import FORMAT

SPECS = (ArchSpec(
    "pix2pix_unet", "style", Pix2PixUnetConfig, build_pix2pix_unet,
    "pix2pix U-Net generator, unet_128 / unet_256",
    roles={"G": "G", "D": "D"},
    image_io=lambda cfg: ImageIO("signed", channels=cfg.input_nc,
                                 size_multiple=2 ** cfg.num_downs,
                                 min_size=2 ** cfg.num_downs),
    public_formats=(FORMAT,),
),)
