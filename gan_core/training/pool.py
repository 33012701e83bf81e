"""The image history buffer of CycleGAN (Shrivastava et al. 2017): the discriminators are
shown a mix of the newest fakes and fakes from earlier steps, which damps the oscillation of
two players chasing each other's latest move."""
from __future__ import annotations

import torch


class ImagePool:
    """Up to `capacity` past fakes. `query` returns a batch the size of its input: while the
    pool fills, the new images themselves; after that each image is, with probability 1/2,
    swapped for a stored one (which the new image replaces). Randomness comes from the
    trainer's generator, and `state()` / `load()` carry the stored images through a
    checkpoint so that a resumed run continues exactly."""

    def __init__(self, capacity: int):
        if capacity < 0:
            raise ValueError(f"pool size must be 0 or more, got {capacity}")
        self.capacity = capacity
        self.images: list[torch.Tensor] = []

    def query(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.capacity == 0:
            return batch
        out = []
        for img in batch.detach():
            if len(self.images) < self.capacity:
                self.images.append(img.clone())
                out.append(img)
                continue
            swap, pick = torch.rand(1, generator=generator).item(), torch.randint(
                self.capacity, (1,), generator=generator).item()
            if swap < 0.5:
                out.append(self.images[pick].clone())
                self.images[pick] = img.clone()
            else:
                out.append(img)
        return torch.stack(out)

    def state(self) -> torch.Tensor:
        """The stored images as one tensor [n, C, H, W] (n may be 0)."""
        if not self.images:
            return torch.zeros(0)
        return torch.stack([img.contiguous() for img in self.images])

    def load(self, stored: torch.Tensor, device: torch.device,
             image_shape: tuple[int, ...] | None = None, what: str = "the saved pool") -> None:
        """Restore `state()`'s tensor; with `image_shape` ([C, H, W] of the fakes this run
        makes), the stored images must have it (a file's pool of other sizes would fail the
        first query that swaps one in)."""
        if stored.numel():
            if image_shape is not None and (stored.dim() != 1 + len(image_shape)
                                            or tuple(stored.shape[1:]) != tuple(image_shape)):
                raise ValueError(f"{what} holds images of shape {tuple(stored.shape)[1:]}, but "
                                 f"this run makes {tuple(image_shape)}")
            if len(stored) > self.capacity:
                raise ValueError(f"{what} holds {len(stored)} images, more than its size "
                                 f"{self.capacity}")
        self.images = [img.to(device).clone() for img in stored] if stored.numel() else []
