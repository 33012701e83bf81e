"""Training: configs, the shared loop, the GAN / denoiser / CycleGAN style trainers, losses,
augmentation, EMA and the image pool."""
from .ada import AdaptiveAugment
from .augment import AUGMENTATIONS, diff_augment, parse_policy
from .config import DenoiseTrainConfig, StyleTrainConfig, TrainConfig
from .denoise_trainer import DenoiseTrainer, train_denoiser
from .loop import check_resume
from ..losses import LOSSES, RECON_LOSSES, d_loss, g_loss, r1_penalty, recon_loss
from .style_trainer import StyleTrainer, train_style
from .trainer import TrainCallbacks, Trainer, train

__all__ = ["AUGMENTATIONS", "AdaptiveAugment", "DenoiseTrainConfig", "DenoiseTrainer", "LOSSES", "RECON_LOSSES",
           "StyleTrainConfig", "StyleTrainer", "TrainCallbacks", "TrainConfig", "Trainer",
           "check_resume", "d_loss", "diff_augment", "g_loss", "parse_policy", "r1_penalty", "recon_loss",
           "train", "train_denoiser", "train_style"]
