"""Seeds -> latents, one generator per seed, so an image depends on its seed alone."""
from __future__ import annotations

from collections.abc import Iterable

import torch

MAX_SEED = 0xFFFFFFFFFFFFFFFF
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


def latents_for_seeds(seeds: Iterable[int], latent_dim: int) -> torch.Tensor:
    """[len(seeds), latent_dim] standard-normal latents drawn on the CPU, one generator each."""
    rows = []
    for s in seeds:
        g = torch.Generator().manual_seed(int(s))
        rows.append(torch.randn(latent_dim, generator=g))
    return torch.stack(rows)
