"""Tiny NVIDIA network pickles for the tests: StyleGAN3 and StyleGAN2-ADA generators built from
our own modules, given trained-looking random values, and written with NVIDIA's class names,
constructor kwargs and per-class attributes by the stand-in writer of nvidia_pickles.py (the
same layout as network-snapshot-*.pkl files). Shared by the family tests, the node and CLI
tests and the example-workflow test."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gan_core.archs.stylegan2_ada.network import StyleGAN2ADAConfig, build_stylegan2_ada
from gan_core.archs.stylegan3.network import Generator, StyleGAN3Config, build_stylegan3
from nvidia_pickles import FakeModule, fake_from_module, write_nvidia_pickle

SG3_TINY = dict(z_dim=16, w_dim=16, img_resolution=32, num_layers=4, channel_base=512,
                channel_max=32, margin_size=4, d_channel_base=256, d_channel_max=32,
                d_mapping_layers=2)
SG2ADA_TINY = dict(z_dim=16, w_dim=16, img_resolution=32, channel_base=256, channel_max=32,
                   d_channel_base=256, d_channel_max=32, mapping_layers=2, d_mapping_layers=2)


# ----------------------------------------------------------------------------- StyleGAN3


def sg3_randomise(G: Generator, seed: int) -> Generator:
    """Trained-looking random values: every parameter drawn (the input's affine too, so the
    learned rotation and translation vary with w), magnitudes and w_avg non-trivial; the
    designed filters kept."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in G.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g))
            if name.endswith("affine.bias"):
                p.add_(1.0)
        G.synthesis.input.affine.weight.mul_(0.3)
        for name, b in G.named_buffers():
            if name.endswith("magnitude_ema"):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
            elif name.endswith("w_avg"):
                b.copy_(torch.randn(b.shape, generator=g))
    return G.eval()


def sg3_attributes(m: torch.nn.Module) -> dict:
    """The plain per-class attributes NVIDIA's modules keep: numbers as numpy floats where
    NVIDIA computes them with numpy, sizes as numpy [2] arrays, padding a list."""
    out = {}
    for k, v in vars(m).items():
        if k.startswith("_") or k in ("training", "cfg", "geometry", "fp16_enabled"):
            continue
        if isinstance(v, float):
            v = np.float64(v)
        if isinstance(v, (bool, int, str, type(None), np.floating, np.ndarray, list)):
            out[k] = v
    return out


def sg3_g_kwargs(cfg: StyleGAN3Config) -> dict:
    kw = dict(z_dim=cfg.z_dim, c_dim=cfg.c_dim, w_dim=cfg.w_dim,
              img_resolution=cfg.img_resolution, img_channels=cfg.img_channels,
              mapping_kwargs=dict(num_layers=cfg.mapping_layers),
              channel_base=cfg.channel_base, channel_max=cfg.channel_max,
              magnitude_ema_beta=cfg.magnitude_ema_beta, num_fp16_res=cfg.num_fp16_res,
              conv_clamp=cfg.conv_clamp, num_layers=cfg.num_layers,
              margin_size=cfg.margin_size)
    if cfg.use_radial_filters:
        kw.update(conv_kernel=1, use_radial_filters=True)
    return kw


def sg3_d_kwargs(cfg: StyleGAN3Config) -> dict:
    return dict(c_dim=cfg.c_dim, img_resolution=cfg.img_resolution,
                img_channels=cfg.img_channels, channel_base=cfg.d_channel_base,
                channel_max=cfg.d_channel_max, num_fp16_res=cfg.d_num_fp16_res,
                conv_clamp=cfg.d_conv_clamp, block_kwargs={},
                mapping_kwargs={"num_layers": cfg.d_mapping_layers},
                epilogue_kwargs={"mbstd_group_size": cfg.mbstd_group_size})


def sg3_top(cfg: StyleGAN3Config, G: Generator, D=None, g_kwargs=None, with_d: bool = True):
    def fake(net, kwargs):
        return fake_from_module(net, init_kwargs=kwargs, attributes=sg3_attributes)
    top = {"G": fake(G, g_kwargs or sg3_g_kwargs(cfg)), "G_ema": fake(G, g_kwargs or sg3_g_kwargs(cfg)),
           "D": None, "augment_pipe": FakeModule("AugmentPipe", buffers={"p": torch.tensor(0.3)}),
           "training_set_kwargs": dict(class_name="training.dataset.ImageFolderDataset",
                                       path="~/datasets/x.zip", use_labels=cfg.c_dim > 0,
                                       max_size=100, xflip=False,
                                       resolution=cfg.img_resolution, random_seed=0)}
    if with_d:
        top["D"] = fake(D if D is not None else build_stylegan3(cfg)["D"], sg3_d_kwargs(cfg))
    return top


# ----------------------------------------------------------------------------- StyleGAN2-ADA


def sg2ada_random_state(net: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Trained-looking random values: weights at their stored scale (mapping ones / lr),
    affine biases around 1, biases, noise strengths and w_avg non-zero; filters as built."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in net.state_dict().items():
        r = torch.randn(v.shape, generator=g)
        if k.endswith("resample_filter"):
            out[k] = v.clone()
        elif k.endswith("affine.bias"):
            out[k] = 1 + 0.3 * r
        elif k.endswith("bias") or k.endswith("noise_strength"):
            out[k] = 0.3 * r
        elif ".fc" in k and k.startswith("mapping") and k.endswith("weight"):
            out[k] = r / 0.01
        else:
            out[k] = r
    return out


def sg2ada_attributes(m: torch.nn.Module) -> dict:
    return {k: v for k, v in vars(m).items()
            if not k.startswith("_") and k not in ("training", "cfg")
            and isinstance(v, (bool, int, float, str, type(None)))}


def sg2ada_g_kwargs(cfg: StyleGAN2ADAConfig, sg3_layout: bool = False) -> dict:
    syn = dict(channel_base=cfg.channel_base, channel_max=cfg.channel_max,
               num_fp16_res=cfg.num_fp16_res, conv_clamp=cfg.conv_clamp,
               architecture=cfg.architecture)
    top = dict(z_dim=cfg.z_dim, c_dim=cfg.c_dim, w_dim=cfg.w_dim,
               img_resolution=cfg.img_resolution, img_channels=cfg.img_channels,
               mapping_kwargs=dict(num_layers=cfg.mapping_layers))
    if sg3_layout:
        return {**top, **syn, "fused_modconv_default": "inference_only"}
    return {**top, "synthesis_kwargs": syn}


def sg2ada_d_kwargs(cfg: StyleGAN2ADAConfig) -> dict:
    return dict(c_dim=cfg.c_dim, img_resolution=cfg.img_resolution,
                img_channels=cfg.img_channels, architecture=cfg.d_architecture,
                channel_base=cfg.d_channel_base, channel_max=cfg.d_channel_max,
                num_fp16_res=cfg.d_num_fp16_res, conv_clamp=cfg.d_conv_clamp,
                block_kwargs={}, mapping_kwargs={"num_layers": cfg.d_mapping_layers},
                epilogue_kwargs={"mbstd_group_size": cfg.mbstd_group_size})


def write_sg2ada_pickle(path, cfg, G, D, g_kwargs=None, p=0.125, protocol=4, numpy_module="numpy.core"):
    fg = fake_from_module(G, init_kwargs=g_kwargs or sg2ada_g_kwargs(cfg), attributes=sg2ada_attributes)
    fd = fake_from_module(D, init_kwargs=sg2ada_d_kwargs(cfg), attributes=sg2ada_attributes)
    pipe = FakeModule("AugmentPipe", init_kwargs=dict(xflip=1, rotate90=1),
                      buffers={"p": torch.tensor(p)})
    top = {"G": fg, "D": fd, "G_ema": fake_from_module(G, init_kwargs=g_kwargs or sg2ada_g_kwargs(cfg),
                                                       attributes=sg2ada_attributes),
           "augment_pipe": pipe,
           "training_set_kwargs": dict(class_name="training.dataset.ImageFolderDataset",
                                       path="~/datasets/x.zip", use_labels=cfg.c_dim > 0,
                                       max_size=70000, xflip=True, resolution=cfg.img_resolution,
                                       random_seed=0)}
    return write_nvidia_pickle(path, top, protocol=protocol, numpy_module=numpy_module)


def write_tiny_stylegan3(path: str | Path, c_dim: int = 0, seed: int = 0, **overrides) -> Path:
    """A StyleGAN3-T network pickle (G, G_ema, D, augment_pipe p 0.3) at 32 px."""
    cfg = StyleGAN3Config(**{**SG3_TINY, "c_dim": c_dim, **overrides})
    torch.manual_seed(seed)
    G = sg3_randomise(Generator(cfg), seed)
    return write_nvidia_pickle(Path(path), sg3_top(cfg, G))


def write_tiny_stylegan2_ada(path: str | Path, c_dim: int = 0, seed: int = 0,
                             **overrides) -> Path:
    """A stylegan2-ada-pytorch network pickle (G, G_ema, D, augment_pipe p 0.125) at 32 px."""
    cfg = StyleGAN2ADAConfig(**{**SG2ADA_TINY, "c_dim": c_dim, **overrides})
    nets = build_stylegan2_ada(cfg)
    G, D = nets["G"].eval(), nets["D"].eval()
    G.load_state_dict(sg2ada_random_state(G, seed))
    D.load_state_dict(sg2ada_random_state(D, seed + 1))
    return write_sg2ada_pickle(Path(path), cfg, G, D)


def write_demo_stylegan3(path: str | Path, resolution: int = 256, seed: int = 3) -> Path:
    """A StyleGAN3-T pickle that draws colourful abstract shapes, for trying the StyleGAN
    template in a real ComfyUI with no NVIDIA weights at hand (its thumbnail was made with
    this): the network's own initialisation, narrow layers, the output layer's weights scaled
    up so the pictures are not grey. Random weights: nothing was trained."""
    cfg = StyleGAN3Config(**{**SG3_TINY, "img_resolution": resolution, "num_layers": 14,
                             "channel_base": 4096, "channel_max": 64, "margin_size": 10})
    torch.manual_seed(seed)
    G = Generator(cfg).eval()
    with torch.no_grad():
        getattr(G.synthesis, G.synthesis.layer_names[-1]).weight.mul_(14.0)
    return write_nvidia_pickle(Path(path), sg3_top(cfg, G))
