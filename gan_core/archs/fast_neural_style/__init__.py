"""Fast neural style (Johnson et al. 2016) TransformerNet, pytorch/examples' layout."""
from ...registry import ArchSpec, ImageIO
from .network import TransformerNetConfig, build_transformer_net
from .public import FORMAT

SPECS = (ArchSpec(
    "transformer_net", "style", TransformerNetConfig, build_transformer_net,
    "fast-neural-style feed-forward network (candy, mosaic, udnie, rain_princess)",
    roles={"G": "G"},
    # 0..255 in, unbounded out; multiples of 4; the 1/4 scale map is reflect-padded by 1.
    image_io=lambda cfg: ImageIO("byte", channels=3, size_multiple=4, min_size=8),
    public_formats=(FORMAT,),
),)
