"""Seeds -> latents, one generator per seed, so an image depends on its seed alone.

Seeds span ComfyUI's range, 0..2^64-1. torch's CPU generator (Mersenne Twister) keeps only the
low 32 bits of a seed, so seeds 0, 2^32 and 2^63 used to give one image. Below 2^32 a seed
keeps the latent it always had (shared seeds keep their pictures); from 2^32 on, latents come
from numpy's PCG64 seeded with the whole 64-bit value, so every seed has its own. Families
whose original project draws z with NumPy's legacy RandomState (NVIDIA's StyleGAN scripts:
`np.random.RandomState(seed).randn(z_dim)`) use that convention instead, so seed s gives the
picture their users know, again made distinct above 2^32 (RandomState seeded with the seed's
two 32-bit words, an initialisation no single 32-bit seed produces).
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

MAX_SEED = 0xFFFFFFFFFFFFFFFF
SEED_CONVENTIONS = ("torch", "numpy")
_LOW = 0xFFFFFFFF
MAX_SEED_COUNT = 100_000  # one spec's seeds; "0-18446744073709551615" must not build a list


def parse_seeds(spec: str | int | Iterable[int]) -> list[int]:
    """"0-15" / "3,7,9-11" / 5 / [1, 2] -> a list of seeds (ranges inclusive)."""
    if isinstance(spec, int):
        seeds = [spec]
    elif isinstance(spec, str):
        seeds = []
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            lo, sep, hi = part.partition("-")
            try:
                if sep:
                    a, b = int(lo), int(hi)
                    if b < a:
                        raise ValueError
                    if b - a + 1 + len(seeds) > MAX_SEED_COUNT:
                        raise OverflowError
                    seeds.extend(range(a, b + 1))
                else:
                    seeds.append(int(part))
            except OverflowError:
                raise ValueError(
                    f"seeds: {part!r} asks for more than {MAX_SEED_COUNT} seeds at once"
                ) from None
            except ValueError:
                raise ValueError(
                    f"seeds: cannot read {part!r}; expected numbers and ranges like '0-15' or '3,7,9-11'"
                ) from None
    else:
        seeds = [int(s) for s in spec]
    if not seeds:
        raise ValueError("seeds: no seed given")
    for s in seeds:
        if not 0 <= s <= MAX_SEED:
            raise ValueError(f"seeds: {s} is outside 0..{MAX_SEED}")
    return seeds


def _latent(seed: int, latent_dim: int, convention: str) -> torch.Tensor:
    if convention == "numpy":
        state = np.random.RandomState(seed if seed <= _LOW else [seed & _LOW, seed >> 32])
        return torch.from_numpy(state.randn(latent_dim)).float()
    if seed <= _LOW:
        return torch.randn(latent_dim, generator=torch.Generator().manual_seed(seed))
    values = np.random.Generator(np.random.PCG64(seed)).standard_normal(latent_dim)
    return torch.from_numpy(values).float()


def latents_for_seeds(seeds: Iterable[int], latent_dim: int,
                      convention: str = "torch") -> torch.Tensor:
    """[len(seeds), latent_dim] standard-normal latents drawn on the CPU, one generator per
    seed, by the family's convention ("torch" or "numpy"; see the module docstring)."""
    if convention not in SEED_CONVENTIONS:
        raise ValueError(f"seed convention must be one of {SEED_CONVENTIONS}, got {convention!r}")
    rows = []
    for s in seeds:
        s = int(s)
        if not 0 <= s <= MAX_SEED:
            raise ValueError(f"seeds: {s} is outside 0..{MAX_SEED}")
        rows.append(_latent(s, latent_dim, convention))
    return torch.stack(rows)


def generator_seed(seed: int) -> int:
    """A seed for a torch generator (training runs, noise maps, augmentation) standing for a
    64-bit seed: the seed itself below 2^32, where it always was; above, a 32-bit mix of all
    64 bits (SplitMix64's finaliser), so seeds that differ only in their high bits no longer
    share a run. (A torch CPU generator has 2^32 seeds, so a mix can still meet a small seed:
    for any given pair, with probability 2^-32.)"""
    seed = int(seed)
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed {seed} is outside 0..{MAX_SEED}")
    if seed <= _LOW:
        return seed
    z = (seed + 0x9E3779B97F4A7C15) & MAX_SEED
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MAX_SEED
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MAX_SEED
    return (z ^ (z >> 31)) & _LOW
