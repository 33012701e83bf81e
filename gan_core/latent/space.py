"""One view of every generator's latent space, and the latent value that travels between nodes.

Generators differ: DCGAN and the MLP GAN map a Gaussian z straight to an image; FastGAN adds
per-layer noise; StyleGAN2 maps z to w through an MLP and takes one w per layer ("w+"). Each
family states its protocol in its ArchSpec (gan_core.registry.LatentIO: dimensions, whether a
mapping network exists, whether the module implements `map_z` / `synthesize`); `LatentSpace`
supplies the obvious defaults for those that do not (w = z, one latent, synthesize =
forward), so everything above it is written once for all architectures.
"""
from __future__ import annotations

import logging

import os
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import torch
from torch import nn

from ..atomic import atomic_write
from ..device import resolve_device
from ..images import signed_to_comfy
from ..seeds import MAX_SEED, generator_seed, latents_for_seeds

if TYPE_CHECKING:
    from ..model import GANModel

SPACES = ("z", "w", "w+")
NOISE_MODES = ("fixed", "random", "none")
MEAN_LATENT_SAMPLES = 4096
_MEAN_SEED = 0
_NOISE_SALT = 0x9E3779B97F4A7C15  # a noise generator must not replay its image's z draws
_LATENT_FORMAT = "gan_atelier_latent"

# module -> its estimated mean w (CPU). Weak keys: a cache entry lives as long as its module.
_MEAN_CACHE: "weakref.WeakKeyDictionary[nn.Module, torch.Tensor]" = weakref.WeakKeyDictionary()


log = logging.getLogger("gan_core")

def check_noise(noise: str) -> str:
    if noise not in NOISE_MODES:
        raise ValueError(f"noise must be one of {NOISE_MODES}, got {noise!r}")
    return noise


def check_truncation(truncation: float) -> float:
    """The range GANModel.generate and the nodes accept: 0 (the mean) to 2 (exaggerated)."""
    if not 0.0 <= truncation <= 2.0:
        raise ValueError(f"truncation must be between 0 and 2, got {truncation}")
    return truncation


def noise_seed(seed: int) -> int:
    """The noise generator's seed for an image's seed: fixed per image, unlike its z stream."""
    return (int(seed) ^ _NOISE_SALT) & MAX_SEED


@dataclass
class GANLatent:
    """Latent codes for one generator: what Invert Image outputs and Generate From Latent
    takes. `space` is "z" (the Gaussian input), "w" (after the mapping network; equals z for
    models without one) or "w+" (one w per layer). `tensor` is [B, dim] for z/w and
    [B, n_latent, w_dim] for w+, float32 on the CPU so it can be saved and passed around.
    `noise` is the noise mode its images were made with."""

    space: str
    tensor: torch.Tensor
    arch: str = ""
    noise: str = "fixed"

    def __post_init__(self) -> None:
        if self.space not in SPACES:
            raise ValueError(f"latent space must be one of {SPACES}, got {self.space!r}")
        if not isinstance(self.tensor, torch.Tensor):
            raise TypeError(f"latent tensor: expected a torch.Tensor, got "
                            f"{type(self.tensor).__name__}")
        want = 3 if self.space == "w+" else 2
        if self.tensor.dim() != want or self.tensor.shape[0] == 0:
            layout = "[B, n_latent, w_dim]" if want == 3 else "[B, dim]"
            raise ValueError(f"a {self.space!r} latent is shaped {layout} with B >= 1, got "
                             f"{tuple(self.tensor.shape)}")
        check_noise(self.noise)
        self.tensor = self.tensor.detach().to("cpu", torch.float32)

    def __len__(self) -> int:
        return int(self.tensor.shape[0])

    def __getitem__(self, index: int | slice) -> "GANLatent":
        if isinstance(index, int):
            if not -len(self) <= index < len(self):
                raise IndexError(f"latent index {index} is out of range for a latent of "
                                 f"{len(self)} codes")
            index %= len(self)  # a negative int would make the slice below empty
            rows = self.tensor[index:index + 1]
        else:
            rows = self.tensor[index]
        return GANLatent(self.space, rows, self.arch, self.noise)

    @staticmethod
    def cat(latents: Sequence["GANLatent"]) -> "GANLatent":
        """One batch from several latents of the same space and shape."""
        if not latents:
            raise ValueError("GANLatent.cat needs at least one latent, got none")
        first = latents[0]
        for other in latents[1:]:
            if other.space != first.space or other.tensor.shape[1:] != first.tensor.shape[1:]:
                raise ValueError(f"cannot join a {other.space} latent {tuple(other.tensor.shape)} "
                                 f"to a {first.space} latent {tuple(first.tensor.shape)}")
        tensor = torch.cat([x.tensor for x in latents])
        return GANLatent(first.space, tensor, first.arch, first.noise)

    def save(self, path: str | os.PathLike) -> Path:
        """Write as .safetensors (one tensor "latent"; space, arch and noise in the metadata)."""
        from safetensors.torch import save_file

        meta = {"format": _LATENT_FORMAT, "space": self.space, "arch": self.arch,
                "noise": self.noise}
        tensor = self.tensor.clone().contiguous()
        return atomic_write(path, lambda tmp: save_file({"latent": tensor}, tmp, metadata=meta))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "GANLatent":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = dict(f.metadata() or {})
                tensor = f.get_tensor("latent") if "latent" in f.keys() else None
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise ValueError(f"latent file {str(path)!r} is not readable: {exc}") from None
        if meta.get("format") != _LATENT_FORMAT or tensor is None:
            raise ValueError(f"latent file {str(path)!r} is not a GAN Atelier latent "
                             f"(no {_LATENT_FORMAT!r} metadata or no 'latent' tensor)")
        try:
            return cls(meta.get("space", ""), tensor, meta.get("arch", ""),
                       meta.get("noise", "fixed"))
        except ValueError as exc:
            raise ValueError(f"latent file {str(path)!r}: {exc}") from None


class LatentSpace:
    """A GANModel's sampling module seen through the latent protocol, on one device.

    `mapped` is True for generators with a mapping network (StyleGAN2): their images are
    steered in w. For the others w is z, whose prior is N(0, I)."""

    def __init__(self, model: "GANModel", device: torch.device | str | None = None,
                 class_index: int | None = None, truncation_cutoff: int | None = None):
        io = model.latent_io
        if io is None:
            raise ValueError(f"this {model.arch} model is not a generator; it has no latent space")
        self.model = model
        self.module = model.module.eval()
        self.device = resolve_device(device) if device is not None else model.device
        if self.device != model.device:
            self.module.to(self.device)  # as GANModel.generate always did: the model moves
        self.io = io
        self.protocol = io.synthesis
        self.z_dim = io.z_dim
        self.w_dim = io.code_dim
        self.n_latent = io.n_latent
        self.mapped = io.mapped
        self.arch = model.arch
        self.label = self._label(class_index)
        if truncation_cutoff is not None and not 0 <= int(truncation_cutoff) <= self.n_latent:
            raise ValueError(f"truncation_cutoff must be 0..{self.n_latent} (the layers of this "
                             f"{self.arch} generator), got {truncation_cutoff}")
        self.cutoff = None if truncation_cutoff is None or not self.mapped else int(truncation_cutoff)

    def _label(self, class_index: int | None) -> torch.Tensor | None:
        """The one-hot label [1, classes] of a conditional model; unconditional models take
        none (a class given to them is refused, not ignored)."""
        classes = self.io.classes
        if classes == 0:
            if class_index not in (None, -1):
                raise ValueError(f"class_index: this {self.arch} model is unconditional (no "
                                 f"classes); leave the class at -1")
            return None
        if class_index is None or class_index == -1:
            raise ValueError(f"class_index: this {self.arch} model is conditional: give a class "
                             f"0..{classes - 1}")
        if not 0 <= int(class_index) < classes:
            raise ValueError(f"class_index {class_index} is out of range: this {self.arch} model "
                             f"has classes 0..{classes - 1}")
        label = torch.zeros(1, classes)
        label[0, int(class_index)] = 1.0
        return label

    # ------------------------------------------------------------------ the protocol
    def map_z(self, z: torch.Tensor) -> torch.Tensor:
        if not self.protocol:
            return z
        if self.label is None:
            return self.module.map_z(z)
        return self.module.map_z(z, self.label.to(z).expand(len(z), -1))

    def camera_transform(self, camera: "tuple[float, float, float] | torch.Tensor | None",
                         batch: int) -> torch.Tensor | None:
        """A camera (tx, ty, degrees), a [3, 3] or [B, 3, 3] matrix, or per-image rows
        [B, 3] of (tx, ty, degrees) -> the transform the module takes; None without one.
        A camera given to a generator that has none is an error, not ignored."""
        if camera is None:
            return None
        if not self.io.camera:
            raise ValueError(f"camera: this {self.arch} generator has no camera (StyleGAN3's "
                             f"translation and rotation); leave it at 0, 0, 0")
        cam = torch.as_tensor(camera, dtype=torch.float32)
        if cam.shape == (3,):
            cam = cam.unsqueeze(0)
        if cam.dim() == 2 and cam.shape[1] == 3 and cam.shape[0] in (1, batch) and cam.shape != (3, 3):
            mats = [self.module.camera_matrix((float(r[0]), float(r[1])), float(r[2])) for r in cam]
            return torch.stack(mats).to(self.device) if len(mats) > 1 else mats[0].to(self.device)
        if cam.shape in ((3, 3), (batch, 3, 3)):
            return cam.to(self.device)
        raise ValueError(f"camera: expected (tx, ty, degrees), [{batch}, 3] rows of them or "
                         f"3x3 matrices, got shape {tuple(cam.shape)}")

    def camera_matrices(self, rows: torch.Tensor) -> torch.Tensor:
        """[B, 3, 3] transforms for [B, 3] rows of (tx, ty, degrees), one per image (a path's
        frames): unambiguous where a batch of three rows would read as one 3x3 matrix."""
        if not self.io.camera:
            raise ValueError(f"camera: this {self.arch} generator has no camera (StyleGAN3's "
                             f"translation and rotation); leave it at 0, 0, 0")
        rows = torch.as_tensor(rows, dtype=torch.float32).reshape(-1, 3)
        return torch.stack([self.module.camera_matrix((float(r[0]), float(r[1])), float(r[2]))
                            for r in rows]).to(self.device)

    def synthesize(self, w: torch.Tensor, noise: str = "fixed",
                   generator: torch.Generator | None = None,
                   transform: torch.Tensor | None = None) -> torch.Tensor:
        """[B, C, H, W] in about [-1, 1] from w [B, w_dim] or w+ [B, n_latent, w_dim];
        `transform`: a camera for generators that have one (see camera_transform)."""
        if self.protocol:
            extra = {"transform": transform} if transform is not None else {}
            out = self.module.synthesize(w, noise=noise, generator=generator, **extra)
        else:
            out = self.module(w[:, 0] if w.dim() == 3 else w)  # one latent: w+ is [B, 1, D]
        return out[0] if isinstance(out, (list, tuple)) else out

    # ------------------------------------------------------------------ spaces
    @property
    def render_space(self) -> str:
        """The space images are steered in: w for mapping models, z for the others."""
        return "w" if self.mapped else "z"

    def latent_shape(self, space: str) -> tuple[int, ...]:
        if space == "z":
            return (self.z_dim,)
        return (self.n_latent, self.w_dim) if space == "w+" else (self.w_dim,)

    def check(self, latent: GANLatent, what: str = "latent") -> GANLatent:
        """Refuse a latent whose shape this generator cannot take, naming both."""
        want = self.latent_shape(latent.space)
        if tuple(latent.tensor.shape[1:]) != want:
            src = f" (made by {latent.arch})" if latent.arch else ""
            raise ValueError(
                f"{what}: a {latent.space!r} latent shaped {tuple(latent.tensor.shape)}{src} does "
                f"not fit this {self.arch} generator, which takes {latent.space} codes of shape "
                f"[B, {', '.join(map(str, want))}]")
        if latent.arch and latent.arch != self.arch:
            # Same shape, another family (say a StyleGAN2 w code on a 512-d DCGAN): it runs,
            # but means nothing there; a z code from another DCGAN is fine and stays quiet.
            log.warning("%s: a latent made by a %s model is used with a %s model; its image "
                        "will not resemble the one it came from", what, latent.arch, self.arch)
        return latent

    def to_space(self, tensor: torch.Tensor, space: str, target: str) -> torch.Tensor:
        """Convert codes on this device: z -> w (mapping), w -> w+ (copied to every layer).
        Without a mapping network z and w are the same codes."""
        if not self.mapped:
            space, target = ("w" if name == "z" else name for name in (space, target))
        if space == target:
            return tensor
        if space == "w+" or target == "z":
            raise ValueError(f"a {space!r} latent cannot be turned back into {target!r}")
        if space == "z":
            tensor = self.map_z(tensor)
        if target == "w+":
            tensor = tensor.unsqueeze(1).expand(-1, self.n_latent, -1).contiguous()
        return tensor

    def mean_w(self) -> torch.Tensor:
        """[1, w_dim] on the CPU: the file's `latent_avg` when it ships one, else the mean of
        map_z over 4096 seeded z, estimated once per module and cached. z-space models: 0,
        the prior's mean."""
        if not self.mapped:
            return torch.zeros(1, self.z_dim)
        avg = getattr(self.module, "latent_avg", None)
        if isinstance(avg, torch.Tensor):
            return avg.detach().float().reshape(1, -1).cpu()
        cached = _MEAN_CACHE.get(self.module)
        if cached is None:
            # A normal tensor even when called under inference mode, so inversion can use it.
            with torch.inference_mode(False), torch.no_grad():
                g = torch.Generator().manual_seed(_MEAN_SEED)
                z = torch.randn(MEAN_LATENT_SAMPLES, self.z_dim, generator=g)
                total = torch.zeros(self.w_dim, dtype=torch.float64)
                for chunk in z.split(1024):
                    total += self.map_z(chunk.to(self.device)).double().sum(0).cpu()
                cached = (total / MEAN_LATENT_SAMPLES).float().unsqueeze(0)
            _MEAN_CACHE[self.module] = cached
        return cached

    def truncate(self, w: torch.Tensor, psi: float) -> torch.Tensor:
        """Pull render-space codes toward the mean: w_avg + psi (w - w_avg) for mapping models;
        z * psi for z-space ones (the prior's mean is 0), exactly as generate always did."""
        check_truncation(psi)
        if not self.mapped:
            return w * psi
        if psi == 1.0:
            return w
        mean = self.mean_w().to(w.device, w.dtype)
        return mean + psi * (w - mean)

    # ------------------------------------------------------------------ seeds and images
    def seed_codes(self, seeds: Sequence[int], truncation: float = 1.0) -> torch.Tensor:
        """Render-space codes for seeds (z drawn per seed on the CPU by the family's seed
        convention), on the device. With a truncation cutoff (mapping models) the codes are
        w+ and only the first `cutoff` layers are truncated, as NVIDIA's truncation_cutoff."""
        check_truncation(truncation)
        z = latents_for_seeds(seeds, self.z_dim, self.io.seed_convention)
        if not self.mapped:
            return (z * truncation).to(self.device)
        w = self.map_z(z.to(self.device))
        if self.cutoff is None or truncation == 1.0:
            return self.truncate(w, truncation)
        plus = self.to_space(w, "w", "w+")
        plus[:, :self.cutoff] = self.truncate(plus[:, :self.cutoff], truncation)
        return plus

    def render(self, codes: torch.Tensor, noise: str = "fixed",
               seeds: Sequence[int] | None = None, camera=None) -> torch.Tensor:
        """IMAGE [B, H, W, 3] in [0, 1] (CPU) from w/w+ codes (z for z-space models). With
        noise "random" each image draws its noise from a generator seeded by its seed, so it
        does not depend on the batch; without seeds the global RNG is used. `camera`: see
        camera_transform (StyleGAN3)."""
        check_noise(noise)
        codes = codes.to(self.device)
        transform = self.camera_transform(camera, len(codes))
        if noise != "random" or not self.protocol or seeds is None:
            return signed_to_comfy(self.synthesize(codes, noise=noise, transform=transform))
        out = []
        for i, (row, seed) in enumerate(zip(codes.split(1), seeds)):
            g = torch.Generator(device=self.device).manual_seed(generator_seed(noise_seed(seed)))
            t = transform[i] if transform is not None and transform.dim() == 3 else transform
            out.append(signed_to_comfy(self.synthesize(row, noise="random", generator=g,
                                                       transform=t)))
        return torch.cat(out)

    def codes_of(self, latent: GANLatent, target: str | None = None) -> torch.Tensor:
        """A GANLatent's tensor on the device in `target` space (default: w+ stays w+, the
        rest go to the render space)."""
        self.check(latent)
        target = target or ("w+" if latent.space == "w+" else self.render_space)
        return self.to_space(latent.tensor.to(self.device), latent.space, target)

    def latent(self, tensor: torch.Tensor, space: str, noise: str = "fixed") -> GANLatent:
        return GANLatent(space, tensor, self.arch, noise)


def mean_latent(model: "GANModel") -> torch.Tensor:
    """[1, w_dim] mean latent (CPU) of a model: the file's latent_avg, else the mean of map_z
    over 4096 seeded z, computed once per module; 0 (the prior's mean) for z-space models."""
    return LatentSpace(model).mean_w()
