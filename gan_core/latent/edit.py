"""Using latents: images from them, variations around them, and StyleGAN-style mixing."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

import torch

from ..images import chunks, fill_batch
from ..seeds import MAX_SEED, latents_for_seeds, parse_seeds
from .paths import callback_hooks, keyframes, lerp, slerp
from .space import GANLatent, LatentSpace, check_noise

if TYPE_CHECKING:
    from ..model import GANModel

STYLE_LAYERS = ("coarse", "middle", "fine", "coarse+middle", "middle+fine")
# w+ index i drives the layers at 2**(2 + i // 2) px (two codes per resolution, StyleGAN's
# layout): coarse = 4-8 px (pose, shape), middle = 16-32 px (features), fine = 64 px and up
# (colour, texture).
_GROUPS = {"coarse": (0, 4), "middle": (4, 8), "fine": (8, None)}


@torch.no_grad()
def seed_latent(model: "GANModel", seeds: int | str | Iterable[int], truncation: float = 1.0,
                device: torch.device | str | None = None,
                class_index: int | None = None) -> GANLatent:
    """The codes GANModel.generate renders for `seeds`: w for mapping models, z otherwise.
    `class_index`: the class of a conditional model (as everywhere in gan_core.latent)."""
    space = LatentSpace(model, device, class_index=class_index)
    return space.latent(space.seed_codes(parse_seeds(seeds), truncation), space.render_space)


@torch.no_grad()
def generate_from_latent(model: "GANModel", latent: GANLatent, truncation: float = 1.0,
                         noise: str | None = None, device: torch.device | str | None = None,
                         batch_size: int = 64, callbacks: Any = None,
                         class_index: int | None = None) -> torch.Tensor:
    """IMAGE [B, H, W, 3] in [0, 1] for a latent's B codes. `noise` defaults to the noise the
    latent was made with; `truncation` pulls the codes toward the mean as generate does."""
    space = LatentSpace(model, device, class_index=class_index)
    noise = check_noise(noise or latent.noise)
    codes = space.truncate(space.codes_of(latent, "w+" if latent.space == "w+" else None),
                           truncation)
    on_step, check_stop = callback_hooks(callbacks)
    return fill_batch(len(codes), chunks(len(codes), batch_size),
                      lambda g: space.render(codes[g.start:g.stop], noise=noise),
                      before=check_stop,
                      after=(lambda done: on_step(done, {})) if on_step is not None else None)


@torch.no_grad()
def variations(model: "GANModel", latent: GANLatent, count: int, strength: float,
               seed: int = 0, device: torch.device | str | None = None,
               class_index: int | None = None) -> GANLatent:
    """`count` codes around each of the latent's codes (B * count in all, grouped by source).

    Each moves `strength` of the way toward a fresh random code (variation j of source i uses
    seed + i * count + j): 0 returns the source exactly, 1 an unrelated sample. Gaussian codes
    (z, and w of models without a mapping network) move along a great circle so they keep a
    typical norm; w / w+ of mapping models move in a straight line, toward a mapped random z."""
    space = LatentSpace(model, device, class_index=class_index)
    space.check(latent)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be between 0 and 1, got {strength}")
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    n = len(latent) * count
    seeds = [(int(seed) + k) % (MAX_SEED + 1) for k in range(n)]
    target = latents_for_seeds(seeds, space.z_dim)
    gaussian = latent.space == "z" or not space.mapped
    if not gaussian:
        target = space.map_z(target.to(space.device)).cpu()
    if latent.space == "w+":
        target = target.unsqueeze(1).expand(-1, latent.tensor.shape[1], -1)
    source = latent.tensor.repeat_interleave(count, dim=0)
    moved = (slerp if gaussian else lerp)(source, target, strength)
    return GANLatent(latent.space, moved, latent.arch or model.arch, latent.noise)


def style_layer_indices(n_latent: int, layers: str | tuple[int, int], size: int = 0) -> list[int]:
    """w+ indices for "coarse" / "middle" / "fine" (or "coarse+middle", or an explicit
    (start, stop) pair), with an error naming the groups a small model does have."""
    if isinstance(layers, tuple):
        start, stop = layers
        if not 0 <= start < stop <= n_latent:
            raise ValueError(f"layers {layers}: expected 0 <= start < stop <= {n_latent}")
        return list(range(start, stop))
    picked: list[int] = []
    for name in (p.strip() for p in str(layers).replace(",", "+").split("+")):
        if name not in _GROUPS:
            raise ValueError(f"layers must be one of {STYLE_LAYERS} or a (start, stop) pair, "
                             f"got {layers!r}")
        lo, hi = _GROUPS[name]
        idx = list(range(lo, min(n_latent, hi if hi is not None else n_latent)))
        if not idx:
            have = [g for g, (a, _) in _GROUPS.items() if a < n_latent]
            at = f"{size} px " if size else ""
            raise ValueError(f"layers {name!r}: this {at}generator has {n_latent} style layers, "
                             f"none of them {name}; it has {', '.join(have)}")
        picked += [i for i in idx if i not in picked]
    return picked


@torch.no_grad()
def style_mix(model: "GANModel", source: int | GANLatent, mix: int | GANLatent,
              layers: str | tuple[int, int] = "coarse", truncation: float = 1.0,
              noise: str = "fixed", device: torch.device | str | None = None,
              class_index: int | None = None) -> torch.Tensor:
    """IMAGE of `source` (a seed, or a GANLatent: one image per code) whose `layers` take
    their style from `mix` (a seed or a one-code latent): coarse layers carry pose and shape,
    middle ones features, fine ones colour and texture. Needs per-layer styles (StyleGAN2)."""
    space = LatentSpace(model, device, class_index=class_index)
    if space.n_latent < 2:
        raise ValueError(
            f"style mixing needs a generator with per-layer styles (StyleGAN2); this "
            f"{model.arch} generator takes one latent for the whole image")
    check_noise(noise)
    module = space.module
    own = space.io.style_mixing  # the module knows its own layer ranges (StyleGAN2)
    if own and isinstance(layers, str):
        idx = sorted({i for name in layers.replace(",", "+").split("+")
                      for i in module.style_layers(name.strip())})
    else:
        idx = style_layer_indices(space.n_latent, layers, model.image_size)
    src, src_space = keyframes(space, [source], truncation)
    other, other_space = keyframes(space, [mix], truncation)
    if len(other) != 1:
        raise ValueError(f"mix: expected one seed or a one-code latent, got {len(other)} codes")
    src = space.to_space(src, src_space, "w+")
    other = space.to_space(other, other_space, "w+")
    if own:
        mixed = module.mix_styles(src, other, idx)
    else:
        mixed = src.clone()
        mixed[:, idx] = other[:, idx].expand(len(src), -1, -1)
    return space.render(mixed, noise=noise)
