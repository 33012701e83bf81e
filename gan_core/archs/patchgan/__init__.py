"""The N-layer PatchGAN discriminator of CycleGAN / pix2pix as a model of its own: a bare
discriminator file scores patches and cannot stylize; it sits in role "G" (the role every
model's main network has) so that save / load round-trip it like any model."""
from ...registry import ArchSpec
from ..layers.patchgan import PatchGANConfig, build_patchgan
from .public import FORMAT

SPECS = (ArchSpec(
    "patchgan", "style", PatchGANConfig, build_patchgan,
    "N-layer PatchGAN discriminator of CycleGAN / pix2pix (scores, cannot stylize)",
    roles={"G": "G"},
    public_formats=(FORMAT,),
),)
