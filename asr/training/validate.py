"""Validation after each epoch: `evaluate_loss(tr)` gives the loss, greedy WER and CER
(PER for phone units) over every rank's shard of the validation set, as "valid_loss",
"valid_wer" and "valid_cer"."""

from __future__ import annotations

import torch

from asr.decode import decode
from asr.metrics import error_counts
from asr.text import PHONE_JOINER, Vocabulary
from asr.training.distributed import all_reduce_sum
from asr.training.losses import compute_loss
from asr.training.trainer import Trainer

__all__ = ["evaluate_loss", "unit_error_counts"]


@torch.no_grad()
def evaluate_loss(tr: Trainer) -> dict:
    """Validation loss, greedy WER and CER, over every rank's shard of the validation set."""
    model = tr.raw_model  # no DDP: shards may differ by a batch, nothing to synchronize
    model.eval()
    total_loss, total_utts, refs, hyps = 0.0, 0, [], []
    dataset = tr.valid_loader.dataset
    for indices, batch in zip(tr.valid_loader.batch_sampler, tr.valid_loader, strict=True):
        result = compute_loss(model, tr.extractor, batch, tr.criterion, tr.device, tr.dtype)
        total_loss += float(result.loss.detach()) * result.utterances
        total_utts += result.utterances
        hyps += [h.text for h in decode(result.log_probs, result.out_lens, tr.vocab)]
        refs += [dataset.references[i] for i in indices]
    words, chars = error_counts(refs, hyps, "word"), unit_error_counts(refs, hyps, tr.vocab)
    sums = torch.tensor(
        [total_loss, total_utts, words.errors, words.reference_length]
        + [chars.errors, chars.reference_length],
        dtype=torch.float64,
    )
    loss, utts, w_err, w_ref, c_err, c_ref = all_reduce_sum(sums).tolist()
    return {
        "valid_loss": loss / max(1, utts),
        "valid_wer": w_err / max(1, w_ref),
        "valid_cer": c_err / max(1, c_ref),
    }


def unit_error_counts(refs: list[str], hyps: list[str], vocab: Vocabulary):
    """Errors per output symbol: characters, or phones for phone units (the "valid_cer" of
    a phone model is its phone error rate; its "valid_wer" counts words whose phones are
    not all right)."""
    if not vocab.phonetic:
        return error_counts(refs, hyps, "char")
    refs, hyps = (
        [" ".join(t.replace(PHONE_JOINER, " ").split()) for t in texts] for texts in (refs, hyps)
    )
    return error_counts(refs, hyps, "word")
