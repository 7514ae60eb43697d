"""Training losses: the table of kinds `train.loss` names, and the loss of one batch.

    criterion = make_criterion(cfg.train, vocab, train_set.targets)
    result = compute_loss(model, extractor, batch, criterion, device, dtype)

Every criterion has nn.CTCLoss(reduction="sum")'s call: (T, B, V) log-probs, (B, U) targets,
(B,) output lengths, (B,) target lengths -> the loss summed over the batch. A new kind is a
builder `(train config, vocabulary, transcripts' label ids) -> criterion` and an entry in
LOSSES. A phone head (model.aux_layer) always learns by plain CTC (`PHONE_CTC`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from asr.config import ConfigError
from asr.device import autocast
from asr.features import FeatureExtractor
from asr.frames import ctc_min_frames_batch
from asr.pronounce import PHONE_TOKENS
from asr.text import BLANK, Vocabulary
from asr.training.ctc_crf import CtcCrfLoss, denominator_from_sequences
from asr.training.data import Batch

if TYPE_CHECKING:
    from asr.training.augment import SpecAugment
    from asr.training.config import TrainConfig

__all__ = [
    "LOSSES",
    "PHONE_CTC",
    "StepResult",
    "compute_loss",
    "ctc_feasible",
    "make_criterion",
]


def _summed_ctc(blank_id: int) -> nn.Module:
    return nn.CTCLoss(blank=blank_id, reduction="sum", zero_infinity=True)


def ctc_loss(train: TrainConfig, vocab: Vocabulary, sequences) -> nn.Module:
    """Plain CTC over the vocabulary."""
    return _summed_ctc(vocab.blank_id)


def ctc_crf_loss(train: TrainConfig, vocab: Vocabulary, sequences) -> nn.Module:
    """CTC-CRF against a unit n-gram of `sequences` (asr/training/ctc_crf.py)."""
    blank = vocab.blank_id
    den = denominator_from_sequences(
        sequences, len(vocab), blank, train.crf_lm_order, train.crf_lm_smoothing
    )
    return CtcCrfLoss(den, blank, train.crf_ctc_weight)


LOSSES = {"ctc": ctc_loss, "ctc_crf": ctc_crf_loss}

# The phone head's loss, whatever train.loss is: plain CTC over PHONE_TOKENS.
PHONE_CTC = _summed_ctc(PHONE_TOKENS.index(BLANK))


def make_criterion(
    train: TrainConfig, vocab: Vocabulary, sequences: Iterable[Sequence[int]]
) -> nn.Module:
    """The criterion `train.loss` names; a kind that learns from the transcripts (the
    CTC-CRF denominator) reads `sequences`, the training transcripts' label ids."""
    if train.loss not in LOSSES:
        raise ConfigError(f"train.loss = {train.loss!r}: expected one of {sorted(LOSSES)}")
    return LOSSES[train.loss](train, vocab, sequences)


def ctc_feasible(out_lens: torch.Tensor, targets: torch.Tensor, target_lens: torch.Tensor):
    """(B,) True where a CTC path exists: output frames >= `frames.ctc_min_frames` of the
    (B, U) padded targets (target length + repeated neighbours)."""
    return out_lens >= ctc_min_frames_batch(targets, target_lens)


@dataclass
class StepResult:
    loss: torch.Tensor  # summed loss over feasible utterances, divided by their count
    utterances: int  # utterances that contributed
    skipped: int  # utterances whose transcript cannot fit the output frames
    log_probs: torch.Tensor  # (B, T', V) model output
    out_lens: torch.Tensor  # (B,)


def _masked_loss(criterion, log_probs, out_lens, targets, target_lens, ok) -> torch.Tensor:
    """Summed loss of the utterances where `ok`: (B, T', V) log-probs, (B, U) targets."""
    return criterion(
        log_probs[ok].transpose(0, 1),  # (B, T', V) -> (T', B, V)
        targets[ok],
        out_lens[ok],
        target_lens[ok],
    )


def _features(extractor, inputs, input_lens, is_features: bool, spec_augment):
    """(B, T, F) normalized features and (B,) lengths of a batch's inputs: cached raw frames
    are only normalized, waveforms go through the whole extractor."""
    with torch.no_grad():
        features = extractor.normalize if is_features else extractor
        feats, feat_lens = features(inputs, input_lens)  # (B, T, F), (B,)
        if spec_augment is not None:
            feats = spec_augment(feats, feat_lens)  # (B, T, F)
    return feats, feat_lens


def compute_loss(
    model: nn.Module,
    extractor: FeatureExtractor,
    batch: Batch,
    criterion: nn.Module,
    device: torch.device,
    dtype: torch.dtype,
    spec_augment: SpecAugment | None = None,
    aux_weight: float = 0.0,
) -> StepResult:
    """The criterion's loss of a batch; with `aux_weight` > 0 and phone targets in the
    batch, the weighted sum (1 - w) * criterion + w * the phone head's PHONE_CTC."""
    inputs, input_lens, targets, target_lens, *aux = (
        t.to(device, non_blocking=True) for t in batch.tensors()
    )
    feats, feat_lens = _features(extractor, inputs, input_lens, batch.is_features, spec_augment)
    with_aux = bool(aux) and aux_weight > 0
    with autocast(device, dtype):
        log_probs, out_lens, *aux_log_probs = model(feats, feat_lens, with_aux=with_aux)
    ok = ctc_feasible(out_lens, targets, target_lens)
    count = int(ok.sum())
    if count == 0:
        return StepResult(log_probs.sum() * 0.0, 0, len(ok), log_probs, out_lens)
    loss = _masked_loss(criterion, log_probs, out_lens, targets, target_lens, ok)
    if with_aux and aux_log_probs:
        aux_targets, aux_lens = aux
        aux_ok = ok & ctc_feasible(out_lens, aux_targets, aux_lens)
        aux_loss = _masked_loss(
            PHONE_CTC, aux_log_probs[0], out_lens, aux_targets, aux_lens, aux_ok
        )
        loss = (1 - aux_weight) * loss + aux_weight * aux_loss
    return StepResult(loss / count, count, len(ok) - count, log_probs, out_lens)
