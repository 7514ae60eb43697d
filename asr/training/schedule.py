"""The learning-rate schedule: linear warmup, then cosine decay measured in epochs, times
each epoch's batch-size scale.

    scheduler = make_scheduler(optimizer, cfg.optim, epoch_steps(loader, cfg), lr_scales(cfg))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import DataLoader

if TYPE_CHECKING:
    from asr.training.config import ExperimentConfig, OptimConfig

__all__ = ["epoch_steps", "lr_scales", "make_scheduler"]


def make_scheduler(
    optimizer, cfg: OptimConfig, steps_per_epoch: Sequence[int], lr_scales: Sequence[float]
):
    """Linear warmup over `cfg.warmup_steps`, then cosine decay to `final_lr_ratio` over
    the rest of the run, measured in epochs (steps per epoch may change with the batch
    size), times epoch e's `lr_scales[e]`."""
    # Closures, not a callable object: LambdaLR's state_dict saves an object's fields, and
    # a resume would bring back the old run's schedule instead of the given config's.
    ends = np.cumsum(steps_per_epoch)
    total = int(ends[-1])

    def epoch_of(step: int) -> int:
        return min(int(np.searchsorted(ends, step, side="right")), len(ends) - 1)

    def epochs_done(step: int) -> float:
        epoch = epoch_of(step)
        begin = int(ends[epoch - 1]) if epoch else 0
        return epoch + (step - begin) / max(1, steps_per_epoch[epoch])

    warm = epochs_done(min(cfg.warmup_steps, total))

    def factor(step: int) -> float:
        scale = lr_scales[epoch_of(step)]
        if step < cfg.warmup_steps:
            return scale * (step + 1) / cfg.warmup_steps
        span = max(1e-9, len(ends) - warm)
        progress = min(1.0, (epochs_done(step) - warm) / span)
        cosine = 0.5 * (1 + math.cos(math.pi * progress))
        return scale * (cfg.final_lr_ratio + (1 - cfg.final_lr_ratio) * cosine)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def lr_scales(cfg: ExperimentConfig) -> list[float]:
    """Each epoch's lr multiplier: 1, or for the epochs after the early batches,
    (max_batch_seconds / early_batch_seconds) ** optim.batch_lr_exponent."""
    data = cfg.data
    if data.early_batch_seconds <= 0 or data.early_batch_epochs <= 0:
        return [1.0] * cfg.optim.epochs
    later = (data.max_batch_seconds / data.early_batch_seconds) ** cfg.optim.batch_lr_exponent
    return [1.0 if e < data.early_batch_epochs else later for e in range(cfg.optim.epochs)]


def epoch_steps(loader: DataLoader, cfg: ExperimentConfig) -> list[int]:
    """Optimizer steps in each epoch of the run."""
    sampler, accum = loader.batch_sampler, max(1, cfg.optim.grad_accum)
    if hasattr(sampler, "epoch_lengths"):
        batches = sampler.epoch_lengths(cfg.optim.epochs)
    else:
        batches = [len(loader)] * cfg.optim.epochs
    return [math.ceil(n / accum) for n in batches]
