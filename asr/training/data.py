"""The training data: a speech dataset over manifest utterances, and padded batches.

Manifests themselves (`Utterance`, reading, writing) are asr/manifest.py's.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from asr.audio import load_audio
from asr.config import check_ranges
from asr.features import FeatureConfig, pad_sequences
from asr.manifest import Utterance
from asr.text import Vocabulary, normalize_text

__all__ = ["Batch", "DataConfig", "SpeechDataset", "collate", "prepare_targets"]

log = logging.getLogger(__name__)


@dataclass
class DataConfig:
    train_manifest: str = ""  # JSON-lines manifest to train on
    valid_manifest: str = ""  # JSON-lines manifest for validation loss and WER each epoch
    batch_size: int = 16  # utterances per batch
    num_workers: int = 2  # audio-loading worker processes (0: load in the main process)
    max_duration: float = 30.0  # seconds; longer training utterances are skipped and counted
    sort_window: int = 50  # batches drawn from one shuffled window, sorted by duration
    skip_unreadable: bool = False  # skip (and report) entries with unreadable audio, not fail
    max_batch_seconds: float = 0.0  # >0: batches of this much padded audio, not batch_size
    # >0: batches of this much padded audio in the first early_batch_epochs epochs (many
    # small steps to leave the blank plateau), then max_batch_seconds (fast steps)
    early_batch_seconds: float = 0.0
    early_batch_epochs: int = 0
    num_buckets: int = 30  # duration buckets of dynamic batching (batches never mix buckets)
    # Read log-mel frames (every speed factor) from the feature cache, computed once
    # (asr/training/feature_cache.py), instead of decoding audio every epoch.
    feature_cache: bool = True
    feature_cache_dir: str = ""  # empty: $ASR_FEATURE_CACHE, else ~/.cache/asr/features

    def __post_init__(self) -> None:
        check_ranges("data", self, _DATA_RANGES)
        if not self.max_duration > 0:
            raise ValueError(f"data.max_duration must be > 0, got {self.max_duration}")


# Every number of [data]: (lowest, highest) accepted (0 seconds: off).
_DATA_RANGES = {
    "batch_size": (1, 100_000),
    "num_workers": (0, 1024),
    "max_duration": (0.0, 86_400.0),
    "sort_window": (1, 10**6),
    "max_batch_seconds": (0.0, 10**7),
    "early_batch_seconds": (0.0, 10**7),
    "early_batch_epochs": (0, 10_000),
    "num_buckets": (1, 10_000),
}


def prepare_targets(
    utterances: Sequence[Utterance], texts: Sequence[str], vocab: Vocabulary
) -> list[list[int]]:
    """Encode each utterance's normalized transcript (`texts`, phone text for phone units).
    Symbols the vocabulary lacks are logged with counts and an example line, then left out
    of the target."""
    unknown: Counter[str] = Counter()
    examples: dict[str, Utterance] = {}
    targets = []
    for utt, text in zip(utterances, texts, strict=True):
        tokens = vocab.split(text)
        for tok in tokens:
            if tok not in vocab:
                unknown[tok] += 1
                examples.setdefault(tok, utt)
        targets.append([vocab.index(tok) for tok in tokens if tok in vocab])
    for tok, count in unknown.most_common():
        utt = examples[tok]
        log.warning(
            "character %r outside the vocabulary: %d occurrence(s) removed from targets "
            "(first in %s, manifest line %d)",
            tok,
            count,
            utt.audio_filepath,
            utt.line,
        )
    return targets


class SpeechDataset(Dataset):
    """Utterances -> (waveform (S,), target ids (U,)) at the feature sample rate, plus the
    auxiliary (phone) target ids (U_aux,) when `aux_targets` are given. `spell` turns a
    normalized transcript into the model's units (phone text for a phone model); the
    results are `references`, what validation scores against."""

    def __init__(
        self,
        utterances: Sequence[Utterance],
        vocab: Vocabulary,
        sample_rate: int,
        aux_targets: Sequence[Sequence[int]] | None = None,
        spell: Callable[[str], str] | None = None,
    ):
        self.utterances = list(utterances)
        texts = [normalize_text(u.text) for u in self.utterances]
        self.references = [spell(t) for t in texts] if spell else texts
        self.targets = prepare_targets(self.utterances, self.references, vocab)
        self.sample_rate = sample_rate
        if aux_targets is not None and len(aux_targets) != len(self.utterances):
            raise ValueError(f"{len(aux_targets)} aux targets for {len(self.utterances)} utts")
        self.aux_targets = aux_targets

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        waveform = load_audio(self.utterances[index].audio_filepath, self.sample_rate)
        return (torch.from_numpy(waveform), *self.target_tensors(index))

    def target_tensors(self, index: int) -> tuple[torch.Tensor, ...]:
        """(U,) target ids and, with aux targets, (U_aux,) phone ids."""
        item = (torch.tensor(self.targets[index], dtype=torch.long),)
        if self.aux_targets is None:
            return item
        return (*item, torch.tensor(self.aux_targets[index], dtype=torch.long))


@dataclass
class Batch:
    inputs: torch.Tensor  # (B, S) zero-padded waveforms, or (B, T, F) raw log-mel (cached)
    input_lens: torch.Tensor  # (B,) samples, or frames
    targets: torch.Tensor  # (B, U) zero-padded token ids
    target_lens: torch.Tensor  # (B,)
    aux_targets: torch.Tensor | None = None  # (B, U_aux) zero-padded phone ids, if any
    aux_target_lens: torch.Tensor | None = None  # (B,)

    @property
    def is_features(self) -> bool:
        return self.inputs.dim() == 3

    def pin_memory(self) -> Batch:
        return Batch(*(t.pin_memory() for t in self.tensors()))

    def tensors(self) -> tuple[torch.Tensor, ...]:
        main = (self.inputs, self.input_lens, self.targets, self.target_lens)
        if self.aux_targets is None:
            return main
        return (*main, self.aux_targets, self.aux_target_lens)

    def audio_seconds(self, features: FeatureConfig) -> tuple[float, float]:
        """(real, padded) seconds of audio in the batch."""
        per_step = features.hop_length if self.is_features else 1
        real = float(self.input_lens.sum()) * per_step
        padded = self.inputs.shape[0] * self.inputs.shape[1] * per_step
        return real / features.sample_rate, padded / features.sample_rate


def collate(items: Sequence[tuple[torch.Tensor, ...]]) -> Batch:
    """(waveform (S,) or frames (T, F), targets[, aux_targets]) items -> one padded Batch."""
    padded = [t for column in zip(*items, strict=True) for t in pad_sequences(column)]
    return Batch(*padded)
