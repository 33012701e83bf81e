"""ArchSpec: the one record of what a model family is.

A family (a folder under gan_core/archs) describes itself here with typed fields: its task, its
config dataclass and builder, the roles its files hold, the tensors it keeps outside its
state_dict, what its networks eat and return (image I/O or latent protocol), the public files
it reads, how it trains and its named default settings. Everything else in gan_core reads
these fields instead of probing modules with getattr or keeping tables of family names, so a
family is added by adding a folder.

A checkpoint stores only the family name and the config as JSON; the spec turns that back into
modules, so no code ever comes from a model file.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import torch
from torch import nn

from .errors import CheckpointError

TASKS = ("generate", "style", "denoise")
VALUE_RANGES = ("signed", "byte", "unit")
TRAINERS = ("gan", "style", "denoise")
# The roles a file may hold and which part of a family's builder makes each: the EMA generator
# is a copy of G, a CycleGAN's reverse pair are another G and D.
STANDARD_ROLES = {"G": "G", "G_ema": "G", "D": "D"}
# The role holding the moving average of G: a copy, never stepped by an optimiser.
EMA_ROLE = "G_ema"


@dataclass(frozen=True)
class ImageIO:
    """What an image-to-image network takes and returns (stylize, denoise, their trainers).

    `value_range`: "signed" ([-1, 1], CycleGAN / pix2pix), "byte" (0..255, fast-neural-style)
    or "unit" ([0, 1], the denoisers). `channels`: image channels in and out (1 or 3).
    H and W must be multiples of `size_multiple` and at least `min_size`.
    `noise_level_input`: the input ends with one extra channel holding sigma/255 (DRUNet)."""

    value_range: str
    channels: int = 3
    size_multiple: int = 1
    min_size: int = 1
    noise_level_input: bool = False

    def __post_init__(self) -> None:
        if self.value_range not in VALUE_RANGES:
            raise ValueError(f"value_range must be one of {VALUE_RANGES}, got {self.value_range!r}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if self.size_multiple < 1 or self.min_size < 1:
            raise ValueError("size_multiple and min_size must be at least 1")

    @property
    def pad_multiple(self) -> int:
        """One number that satisfies both size rules: a side padded to a multiple of this (and
        at least this) is accepted."""
        return max(self.size_multiple, self.min_size)


@dataclass(frozen=True)
class LatentIO:
    """A generator's latent protocol. `z_dim`: the Gaussian input; `w_dim`, `n_latent`: the
    codes synthesis takes (w = z and one latent for plain GANs). `mapped`: a mapping network
    turns z into w (StyleGAN), so images are steered and truncated in w. `synthesis`: the
    module implements `map_z(z)` and `synthesize(w, noise=, generator=)`; otherwise it is
    called as `module(z)`. `style_mixing`: it implements `style_layers(name)` and
    `mix_styles(w_a, w_b, layers)`. `seed_convention`: how a seed becomes z ("torch", or
    "numpy" for families whose original scripts draw `np.random.RandomState(seed).randn`, so
    a shared seed gives the picture the original gives; see gan_core.seeds). `classes`: the
    number of classes of a conditional model (0: unconditional); its `map_z(z, c)` takes a
    one-hot label. `camera`: `synthesize` takes `transform=` (a 3x3 camera matrix, StyleGAN3's
    input transform) and the module offers `camera_matrix(translate, rotate_degrees)`."""

    z_dim: int
    w_dim: int = 0  # 0: the same as z_dim
    n_latent: int = 1
    mapped: bool = False
    synthesis: bool = False
    style_mixing: bool = False
    seed_convention: str = "torch"
    classes: int = 0
    camera: bool = False

    @property
    def code_dim(self) -> int:
        return self.w_dim or self.z_dim


@dataclass
class PublicModel:
    """What a public-format reader found in a file, as plain data: gan_core.io builds the
    networks from it (on the meta device, bounded, key by key and shape by shape), so no
    reader allocates or initialises a network of its own.

    `states`: role -> state_dict with exactly the network's key names. `extras`: role ->
    tensors the family keeps outside its state_dict (see ArchSpec.extra_tensors). `info`: what
    the file says about its training (becomes GANModel.training). `notes`: what the reader
    changed or dropped, logged when the file is loaded."""

    arch: str
    config: Any
    states: dict[str, dict[str, torch.Tensor]]
    extras: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PublicFormat:
    """A file layout of the original project. `read(obj, name)` gets the file's unpickled
    object (a dict for torch files and foreign safetensors, NVIDIA's top-level object for
    their pickles) and returns a PublicModel, None when the file is not of this format, or
    raises CheckpointError when it is but cannot be used. `diagnose(obj)` says, for a file the
    format does not claim but nearly does, what differs (e.g. "missing keys [...]")."""

    name: str
    read: Callable[[Any, str], PublicModel | None]
    diagnose: Callable[[Any], str | None] | None = None
    container: str = "torch"  # "torch": torch.load / safetensors; "nvidia_pickle"


class TrainingContext(Protocol):
    """What the GAN trainer offers an objective (see training.trainer): the objective computes
    losses; the trainer owns the networks' optimisers, EMA, history and checkpoints."""

    cfg: Any
    gen: torch.Generator
    rows: slice
    step_count: int
    G: nn.Module
    D: nn.Module
    g_fwd: nn.Module
    d_fwd: nn.Module
    d_frozen: nn.Module

    def sample_batch(self) -> tuple[torch.Tensor, torch.Tensor]: ...
    def augment(self, x: torch.Tensor) -> torch.Tensor: ...
    def autocast(self) -> Any: ...
    def global_rows(self, *shape: int, normal: bool) -> torch.Tensor: ...


class Objective(Protocol):
    """A family's training objective, in phases the trainer calls in order each step:
    `d_phase` returns D's total loss and the values to report, then (D frozen) `g_phase` G's.
    State shared by the phases of one step (G's output, augmented fakes) stays in the
    objective between the two calls."""

    label: str

    def d_phase(self, ctx: TrainingContext) -> tuple[torch.Tensor, dict[str, float]]: ...
    def g_phase(self, ctx: TrainingContext) -> tuple[torch.Tensor, dict[str, float]]: ...


@dataclass(frozen=True)
class TrainingRecipe:
    """How gan_core trains a family.

    `trainer`: which trainer ("gan", "style", "denoise"). `objective`: a factory of the step's
    losses for the GAN trainer (None: the shared GAN step). `channels_last`: the device types
    on which channels_last "auto" turns on (measured per family). `joint_d_pass`: D treats each
    image on its own, so real and fake go through it as one batch. `width_fields`: the config
    fields a single "width" option sets. `channel_config`: config fields for n image channels.
    `check_size`: an error message for an image size the family cannot train at, else None.
    `profiles`: named settings, e.g. "cpu" (what the CLI and nodes start from: a CPU shows
    learning in minutes) and "paper". `default`: this family is its trainer's default."""

    trainer: str
    objective: Callable[[], Objective] | None = None
    channels_last: tuple[str, ...] = ("cuda",)
    joint_d_pass: bool = False
    width_fields: tuple[str, ...] = ()
    channel_config: Callable[[int], dict[str, Any]] | None = None
    default_channels: int = 3
    check_size: Callable[[int], str | None] | None = None
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    default: bool = False

    def __post_init__(self) -> None:
        if self.trainer not in TRAINERS:
            raise ValueError(f"trainer must be one of {TRAINERS}, got {self.trainer!r}")

    def profile(self, name: str = "cpu") -> dict[str, Any]:
        """A named profile's settings ({} when the family has none of that name)."""
        return dict(self.profiles.get(name, {}))


@dataclass(frozen=True)
class ArchSpec:
    """Everything gan_core knows about one architecture (see the module docstring)."""

    name: str
    task: str
    config_cls: type
    build: Callable[[Any], dict[str, nn.Module]]  # config -> {"G": ..., "D": ...}
    description: str = ""
    roles: dict[str, str] = field(default_factory=lambda: dict(STANDARD_ROLES))
    extra_tensors: tuple[str, ...] = ()  # module attributes kept beside the state_dict
    image_io: Callable[[Any], ImageIO] | None = None  # None for a style-task file that
    # cannot stylize (a bare PatchGAN discriminator)
    latent_io: Callable[[Any], LatentIO] | None = None
    public_formats: tuple[PublicFormat, ...] = ()
    training: TrainingRecipe | None = None  # None: load-only

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"{self.name}: task must be one of {TASKS}, got {self.task!r}")
        if self.task == "generate" and self.latent_io is None:
            raise ValueError(f"{self.name}: a generator family needs latent_io")
        if self.task == "denoise" and self.image_io is None:
            raise ValueError(f"{self.name}: a denoising family needs image_io")

    @property
    def trainable(self) -> bool:
        return self.training is not None

    def trains_with(self, trainer: str) -> bool:
        return self.training is not None and self.training.trainer == trainer


def optimizer_roles(spec: ArchSpec, name: str) -> tuple[str, ...]:
    """The roles whose parameters a trainer's optimiser `name` steps, in the order it is given
    them: every role the family builds as part `name` (the trainers name each optimiser after
    the part it trains: "G" steps G, and a CycleGAN's G then G_BA), the EMA copy excluded.
    A resume file's optimiser state is checked against these roles' parameters."""
    return tuple(role for role, part in spec.roles.items() if part == name and role != EMA_ROLE)


def config_to_json(config: Any) -> str:
    return json.dumps(dataclasses.asdict(config), sort_keys=True)


def config_from_json(spec: ArchSpec, text: str) -> Any:
    """Rebuild a config from checkpoint metadata, refusing fields the dataclass lacks."""
    arch = spec.name
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError; absurd nesting or numbers
        raise CheckpointError(f"the model config in the file is not valid JSON "
                              f"({str(exc)[:200]})") from None
    if not isinstance(raw, dict):
        raise CheckpointError("the model config in the file is not a JSON object")
    known = {f.name: f for f in dataclasses.fields(spec.config_cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise CheckpointError(
            f"the {arch} config in the file has fields this version does not know: {unknown}"
        )
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    try:
        return spec.config_cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"the {arch} config in the file is invalid: {exc}") from None
