"""The experiment's settings: [optim], [train] and the whole experiment TOML, each number
checked for its range where it enters (a setting refused after hours of training costs those
hours).

    cfg = load_toml(ExperimentConfig, "recipes/quickstart/config.toml", ["optim.epochs=3"])
"""

from __future__ import annotations

from dataclasses import dataclass, field

from asr.config import check_choice, check_ranges
from asr.device import PRECISIONS, check_device_name
from asr.features import FeatureConfig
from asr.model import ENCODERS, ModelConfig
from asr.training.augment import AugmentConfig
from asr.training.average import AVERAGE_BY
from asr.training.ctc_crf import CRF_LM_ORDERS
from asr.training.data import DataConfig
from asr.training.losses import LOSSES

__all__ = ["ExperimentConfig", "OptimConfig", "TrainConfig"]


@dataclass
class OptimConfig:
    lr: float = 1e-3  # peak learning rate of AdamW
    weight_decay: float = 1e-2  # AdamW decoupled weight decay
    warmup_steps: int = 500  # linear warmup from 0 to lr
    final_lr_ratio: float = 0.05  # cosine decay ends at lr * final_lr_ratio
    grad_clip: float = 5.0  # max global gradient norm (0: no clipping)
    epochs: int = 30  # passes over the training set
    grad_accum: int = 1  # batches (per rank) whose gradients add up to one optimizer step
    # lr x (batch seconds / data.early_batch_seconds) ** this, in the epochs after the early
    # batches (0.5: square-root scaling; 0: the same lr)
    batch_lr_exponent: float = 0.5

    def __post_init__(self) -> None:
        check_ranges("optim", self, _OPTIM_RANGES)


# Every number of [optim]: (lowest, highest) accepted. The highs are far past any run
# (10,000 epochs, an lr of 10) and keep a typo from starting one.
_OPTIM_RANGES = {
    "lr": (1e-12, 10.0),
    "weight_decay": (0.0, 100.0),
    "warmup_steps": (0, 10**9),
    "final_lr_ratio": (0.0, 1.0),
    "grad_clip": (0.0, 1e6),
    "epochs": (1, 10_000),
    "grad_accum": (1, 10_000),
    "batch_lr_exponent": (0.0, 2.0),
}


@dataclass
class TrainConfig:
    seed: int = 0  # seeds python, numpy and torch
    device: str = "auto"  # "auto" (cuda when available), "cpu", "cuda" or "cuda:N"
    # "fp32", "bf16", "fp16", or "auto": bf16 where the GPU or CPU has it (AVX512-BF16/AMX),
    # else fp16 (with loss scaling) on a GPU and fp32 on a CPU (asr.device.resolve_precision)
    precision: str = "auto"
    stats_utterances: int = 500  # training utterances used to estimate feature statistics
    stop_at_wer: float = -1.0  # stop once validation WER is at or below this (< 0: never)
    save_every_steps: int = 500  # also write last.pt every this many steps (0: epoch ends only)
    max_bad_steps: int = 20  # stop after this many consecutive non-finite steps
    # >0: at the end, average this many epoch checkpoints to averaged.pt (a run that ends
    # with fewer epochs averages those it has, with a warning)
    average_last: int = 0
    average_by: str = "last"  # which epochs to average: "last" or "best" (by validation WER)
    tensorboard: bool = True  # write TensorBoard scalars to <exp>/tensorboard
    aux_weight: float = 0.3  # weight of the phone CTC loss (with model.aux_layer > 0)
    # a kind of losses.LOSSES: "ctc", or "ctc_crf": sequence-level, against a unit n-gram of
    # the training transcripts in CTC topology (asr/training/ctc_crf.py); judge such a model
    # with the LM
    loss: str = "ctc"
    crf_lm_order: int = 2  # the denominator's unit n-gram: 1 (unigram) or 2 (bigram)
    crf_lm_smoothing: float = 0.5  # add-k counts of that n-gram
    crf_ctc_weight: float = 0.0  # + this x CTC beside the CTC-CRF loss

    def __post_init__(self) -> None:
        check_ranges("train", self, _TRAIN_RANGES)
        check_choice("train.precision", self.precision, PRECISIONS)
        check_choice("train.average_by", self.average_by, AVERAGE_BY)
        check_choice("train.loss", self.loss, LOSSES)
        check_choice("train.crf_lm_order", self.crf_lm_order, CRF_LM_ORDERS)
        check_device_name(self.device, "train.device")


# Every number of [train]: (lowest, highest) accepted.
_TRAIN_RANGES = {
    "seed": (0, 2**31 - 1),  # numpy's seed is below 2**32; rank r seeds torch with seed + r
    "stats_utterances": (1, 10**7),
    "stop_at_wer": (-1e9, 10.0),
    "save_every_steps": (0, 10**9),
    "max_bad_steps": (1, 10**6),
    "average_last": (0, 10_000),
    "aux_weight": (0.0, 1.0),  # (1 - w) x train.loss + w x phone CTC
    # add-k counts: near 1e307 the n-gram's row sums overflow (a NaN loss); from about 1e6
    # on the n-gram is uniform anyway
    "crf_lm_smoothing": (1e-6, 1e6),
    "crf_ctc_weight": (0.0, 100.0),
}


@dataclass
class ExperimentConfig:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        """What one section cannot check alone, checked before anything is built: a setting
        refused after hours of training costs those hours."""
        check_choice("model.encoder", self.model.encoder, ENCODERS)
        by_wer = self.train.average_last and self.train.average_by == "best"
        if by_wer and not self.data.valid_manifest:
            raise ValueError(
                'train.average_by = "best" ranks the epochs by validation WER: it needs '
                "data.valid_manifest"
            )
