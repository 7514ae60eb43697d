"""A run's training and validation sets, read from their manifests: unreadable audio refused
(or skipped with data.skip_unreadable), utterances over data.max_duration and transcripts
too long for their audio left out and named, phone targets spelled where the model has
phone units or a phone head.

    train_set, valid_set = load_splits(cfg, vocab, make_pronouncer(cfg.model))
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from asr.config import ConfigError
from asr.frames import ctc_min_frames, subsampled_length
from asr.logmel import frame_count
from asr.manifest import ManifestError, find_unreadable, read_manifest
from asr.model import ModelConfig
from asr.text import Vocabulary, normalize_text
from asr.training.data import SpeechDataset

if TYPE_CHECKING:
    from asr.training.config import ExperimentConfig

__all__ = [
    "add_aux_targets",
    "drop_unfit",
    "drop_unreadable",
    "load_split",
    "load_splits",
    "make_pronouncer",
]

log = logging.getLogger(__name__)


def make_pronouncer(model: ModelConfig):
    """CMUdict + espeak-ng, when the model emits phones or has a phone head; else None."""
    if model.units != "phones" and not model.aux_layer:
        return None
    from asr.pronounce import Pronouncer

    return Pronouncer.default()


def load_splits(cfg: ExperimentConfig, vocab: Vocabulary, pronouncer):
    """The training set and the validation set (None without data.valid_manifest)."""
    if not cfg.data.train_manifest:
        raise ConfigError("data.train_manifest is not set")
    split = {"vocab": vocab, "sample_rate": cfg.features.sample_rate, "pronouncer": pronouncer}
    split["skip_unreadable"] = cfg.data.skip_unreadable
    train_set = load_split(cfg.data.train_manifest, cfg.data.max_duration, **split)
    drop_unfit(train_set, cfg, cfg.data.train_manifest)
    valid_set = None
    if cfg.data.valid_manifest:
        valid_set = load_split(cfg.data.valid_manifest, math.inf, **split)
    return train_set, valid_set


def load_split(
    path: str,
    max_duration: float,
    vocab: Vocabulary,
    sample_rate: int,
    skip_unreadable: bool = False,
    pronouncer=None,
):
    """The dataset of a manifest's utterances up to `max_duration` seconds. A phone model's
    targets are spelled by `pronouncer`, which looks up all the split's words at once."""
    utterances = drop_unreadable(read_manifest(path), path, skip_unreadable)
    kept = [u for u in utterances if u.duration <= max_duration]
    if len(kept) < len(utterances):
        log.warning(
            "%s: skipped %d utterance(s) longer than data.max_duration=%.1f s",
            path,
            len(utterances) - len(kept),
            max_duration,
        )
    if not kept:
        raise ManifestError(f"{path}: no utterances left to use")
    if pronouncer is not None:
        pronouncer.prepare(word for u in kept for word in normalize_text(u.text).split())
    spell = pronouncer.spell if vocab.phonetic else None
    return SpeechDataset(kept, vocab, sample_rate, spell=spell)


def drop_unreadable(utterances: list, path: str, skip: bool) -> list:
    """Refuse a manifest with unreadable audio, or with `skip` report each entry left out."""
    unreadable = find_unreadable(utterances)
    if not unreadable:
        return utterances
    lines = [f"{path}:{utt.line}: {reason}" for utt, reason in unreadable]
    if not skip:
        raise ManifestError(
            f"{len(unreadable)} unreadable entr{'y' if len(lines) == 1 else 'ies'} (run "
            f"`asr data check`, or set data.skip_unreadable = true):\n" + "\n".join(lines)
        )
    for line in lines:
        log.warning("skipping unreadable entry %s", line)
    bad = {id(utt) for utt, _ in unreadable}
    return [u for u in utterances if id(u) not in bad]


def drop_unfit(dataset: SpeechDataset, cfg: ExperimentConfig, path: str) -> None:
    """Keep the utterances whose transcript fits the output frames of their audio (CTC
    needs a frame per symbol and one between repeats), naming each one left out once (with
    its manifest line); ManifestError when none fits: training on nothing is no run."""
    hop, rate, factor = cfg.features.hop_length, cfg.features.sample_rate, cfg.model.subsampling
    fits = []
    for utt, target in zip(dataset.utterances, dataset.targets, strict=True):
        frames = subsampled_length(frame_count(int(round(utt.duration * rate)), hop), factor)
        fits.append(ctc_min_frames(target) <= frames)
    unfit = [u for u, ok in zip(dataset.utterances, fits, strict=True) if not ok]
    if len(unfit) == len(fits):
        raise ManifestError(
            f"{path}: no utterance's transcript fits its audio at model.subsampling={factor} "
            f"({len(fits)} tried; `asr data check --config` names each)"
        )
    for utt in unfit[:20]:
        log.warning("%s:%d: transcript too long for its audio, left out", path, utt.line)
    if len(unfit) > 20:
        log.warning("%s: %d more utterances left out for the same reason", path, len(unfit) - 20)
    keep = [i for i, ok in enumerate(fits) if ok]
    dataset.utterances = [dataset.utterances[i] for i in keep]
    dataset.references = [dataset.references[i] for i in keep]
    dataset.targets = [dataset.targets[i] for i in keep]


def add_aux_targets(cfg: ExperimentConfig, train_set: SpeechDataset, pronouncer) -> int:
    """With a phone head (model.aux_layer), the training set's phone targets; returns the
    head's vocabulary size (0: no head)."""
    aux_vocab_size = 0
    if cfg.model.aux_layer:
        from asr.pronounce import PHONE_TOKENS

        texts = [normalize_text(u.text) for u in train_set.utterances]
        train_set.aux_targets = [pronouncer.encode(text) for text in texts]
        aux_vocab_size = len(PHONE_TOKENS)
    if pronouncer is not None:
        report_unpronounced(pronouncer)
    return aux_vocab_size


def report_unpronounced(pronouncer) -> None:
    log.info("pronunciations: %d words spelled by espeak-ng", len(pronouncer.guessed))
    if pronouncer.unknown:
        log.warning(
            "%d word(s) without a pronunciation left out of the phone targets: %s",
            len(pronouncer.unknown),
            ", ".join(sorted(pronouncer.unknown)[:20]),
        )
