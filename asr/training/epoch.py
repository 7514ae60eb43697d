"""One training epoch, step by step: forward and backward over a step's batches, the update
(skipped where the loss or the gradient is not finite), the step's log and the mid-epoch
last.pt.

    metrics = train_one_epoch(tr)   # from batch tr.position of epoch tr.epoch to its end
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import warnings
from dataclasses import dataclass

import torch
from torch import nn
from tqdm import tqdm

from asr.features import FeatureConfig
from asr.layout import LAST_FILE
from asr.training.augment import AugmentedDataset
from asr.training.data import Batch
from asr.training.distributed import all_reduce_sum
from asr.training.logs import log_step
from asr.training.losses import compute_loss
from asr.training.state import save_last
from asr.training.trainer import Trainer
from asr.usererror import UserError

__all__ = ["NonFiniteLossError", "train_one_epoch", "train_step"]

log = logging.getLogger(__name__)


class NonFiniteLossError(UserError, RuntimeError):
    """Training kept producing non-finite losses or gradients (exit 1: the run failed)."""

    exit_code = 1


@dataclass
class EpochStats:
    loss_sum: float = 0.0  # summed loss of the epoch's utterances, all ranks
    utterances: int = 0  # utterances that contributed to loss_sum
    audio_seconds: float = 0.0  # audio seen by this rank
    padded_seconds: float = 0.0  # audio and padding in the batches of this rank


def train_one_epoch(tr: Trainer) -> dict:
    """Train from batch `tr.position` of epoch `tr.epoch` to the epoch's end."""
    tr.model.train()
    sampler = tr.train_loader.batch_sampler
    sampler.set_epoch(tr.epoch)
    sampler.start_at(tr.position)
    if isinstance(tr.train_loader.dataset, AugmentedDataset):
        tr.train_loader.dataset.epoch = tr.epoch
    accum = max(1, tr.cfg.optim.grad_accum)
    stats, group, skipped_before = EpochStats(), [], tr.skipped
    start = time.perf_counter()
    bar = tqdm(
        tr.train_loader,
        desc=f"epoch {tr.epoch + 1}/{tr.cfg.optim.epochs}",
        unit="batch",
        initial=tr.position,
        total=len(sampler),
        disable=None if tr.dist.is_main else True,
    )
    for batch in bar:
        group.append(batch)
        _record_batch(stats, batch, tr.cfg.features)
        if len(group) < accum:
            continue
        _finish_step(tr, group, stats, bar)
        group = []
    if group:  # count batching: the epoch's batches need not divide by grad_accum
        _finish_step(tr, group, stats, bar)
    elapsed = time.perf_counter() - start
    audio = float(all_reduce_sum(torch.tensor([stats.audio_seconds], dtype=torch.float64))[0])
    return {
        "train_loss": stats.loss_sum / max(1, stats.utterances),
        "audio_seconds_per_second": audio / elapsed,
        "nonpadding_fraction": stats.audio_seconds / max(1e-9, stats.padded_seconds),
        "skipped_too_long_transcripts": tr.skipped - skipped_before,  # this epoch's
        "nonfinite_steps": tr.nonfinite_steps,
    }


def _finish_step(tr: Trainer, group: list[Batch], stats: EpochStats, bar) -> None:
    """One step over the `group` of batches, then its bookkeeping: position, epoch sums, the
    step's log, the progress bar and, every train.save_every_steps, last.pt."""
    step = train_step(tr, group)
    tr.position += len(group)
    stats.loss_sum += step["loss_sum"]
    stats.utterances += step["utterances"]
    log_step(tr, step)
    if step["utterances"]:
        loss = step["loss_sum"] / step["utterances"]
        bar.set_postfix(loss=f"{loss:.3f}", lr=f"{tr.scheduler.get_last_lr()[0]:.2e}")
    every = tr.cfg.train.save_every_steps
    if every > 0 and tr.step % every == 0:
        save_last(tr)


def _record_batch(stats: EpochStats, batch: Batch, features: FeatureConfig) -> None:
    real, padded = batch.audio_seconds(features)
    stats.audio_seconds += real
    stats.padded_seconds += padded


def train_step(tr: Trainer, batches: list[Batch]) -> dict:
    """One optimizer step over `batches`; a non-finite loss or gradient skips the update."""
    tr.optimizer.zero_grad(set_to_none=True)
    loss_sum, count = _backward_group(tr, batches).tolist()
    tr.scaler.unscale_(tr.optimizer)
    clip = tr.cfg.optim.grad_clip if tr.cfg.optim.grad_clip > 0 else math.inf
    grad_norm = float(nn.utils.clip_grad_norm_(tr.raw_model.parameters(), clip))
    if math.isfinite(loss_sum) and math.isfinite(grad_norm):
        tr.scaler.step(tr.optimizer)
        tr.bad_steps = 0
    else:
        _skip_update(tr, loss_sum, grad_norm)
    tr.scaler.update()
    with warnings.catch_warnings():
        # The schedule advances over skipped updates too; torch warns when that happens
        # before any optimizer.step().
        warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step")
        tr.scheduler.step()
    tr.step += 1
    _check_bad_steps(tr)
    return {"loss_sum": loss_sum, "utterances": int(count), "grad_norm": grad_norm}


def _skip_update(tr: Trainer, loss_sum: float, grad_norm: float) -> None:
    """Drop a non-finite step's gradients and count it."""
    tr.optimizer.zero_grad(set_to_none=True)
    tr.bad_steps += 1
    tr.nonfinite_steps += 1
    log.warning(
        "step %d: non-finite loss (%s) or gradient norm (%s); update skipped "
        "(%d in a row, %d in total)",
        tr.step + 1,
        loss_sum,
        grad_norm,
        tr.bad_steps,
        tr.nonfinite_steps,
    )


def _check_bad_steps(tr: Trainer) -> None:
    """NonFiniteLossError after train.max_bad_steps non-finite steps in a row."""
    if tr.bad_steps >= tr.cfg.train.max_bad_steps:
        raise NonFiniteLossError(
            f"{tr.bad_steps} consecutive steps with a non-finite loss or gradient (last at "
            f"step {tr.step}, epoch {tr.epoch + 1}); lower optim.lr, check the data, or use "
            f"train.precision=fp32. The last good state is in {tr.exp_dir / LAST_FILE}"
        )


def _backward_group(tr: Trainer, batches: list[Batch]) -> torch.Tensor:
    """Forward and backward over the batches of one optimizer step.

    Each utterance weighs 1 / (utterances of the step over all ranks and batches), so the
    averaged DDP gradient is that of one process over the union of the ranks' batches.
    Returns [summed loss, contributing utterances] of all ranks.
    """
    local = sum(len(b.input_lens) for b in batches)
    total = float(all_reduce_sum(torch.tensor([float(local)]))[0])
    weight = tr.dist.world_size / max(1.0, total)
    loss_sum, count = 0.0, 0
    spec_augment = tr.spec_augment if tr.cfg.augment.active(tr.epoch) else None
    for i, batch in enumerate(batches):
        last = i == len(batches) - 1
        sync = contextlib.nullcontext() if last or not tr.dist.enabled else tr.model.no_sync()
        with sync:
            result = compute_loss(
                tr.model,
                tr.extractor,
                batch,
                tr.criterion,
                tr.device,
                tr.dtype,
                spec_augment,
                tr.cfg.train.aux_weight,
            )
            summed = result.loss * result.utterances
            tr.scaler.scale(summed * weight).backward()
        tr.skipped += result.skipped
        loss_sum += float(summed.detach())
        count += result.utterances
    return all_reduce_sum(torch.tensor([loss_sum, float(count)], dtype=torch.float64))
