"""Training: config, loop, losses, augmentation and EMA."""
from .augment import AUGMENTATIONS, diff_augment, parse_policy
from .config import TrainConfig
from .losses import LOSSES, d_loss, g_loss, r1_penalty
from .trainer import TrainCallbacks, Trainer, train

__all__ = ["AUGMENTATIONS", "LOSSES", "TrainCallbacks", "TrainConfig", "Trainer", "d_loss",
           "diff_augment", "g_loss", "parse_policy", "r1_penalty", "train"]
