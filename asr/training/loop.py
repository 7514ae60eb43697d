"""Training: CTC loss, AdamW with warmup then cosine decay, validation WER each epoch.

    asr train --config recipes/quickstart/config.toml --exp-dir exp/quickstart
    torchrun --nproc-per-node 8 -m asr train --config ... --exp-dir ...   # DDP, one GPU each
    asr train --config ... --exp-dir ... --resume                        # after a crash

The experiment folder receives `config.toml` (the resolved config), `train.log` (one JSON
record per epoch), `train.txt` (the plain-text log), `curves.png` (training curves, redrawn
each epoch), `tensorboard/` (scalars), `last.pt` (full training state, also written every
`train.save_every_steps` steps so that `--resume` continues mid-epoch), `best.pt`,
`epochs/epoch-NNN.pt` (weights and metrics of each epoch, for `asr average`) and `model.pt`
(the best weights alone, for `asr transcribe`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from asr.checkpoint import CheckpointError, CheckpointWriteError
from asr.config import ConfigError, check_choice, check_ranges, load_toml, to_toml
from asr.decode import decode
from asr.device import PRECISIONS, autocast, check_device_name, resolve_device, resolve_precision
from asr.features import FeatureConfig, FeatureExtractor
from asr.frames import ctc_min_frames, ctc_min_frames_batch, subsampled_length
from asr.layout import LAST_FILE, TRAINED_FILES
from asr.logmel import GLOBAL_STATS_NORMALIZATIONS, frame_count
from asr.manifest import ManifestError, find_unreadable, read_manifest
from asr.metrics import error_counts
from asr.model import ENCODERS, AcousticModel, ModelConfig
from asr.text import PHONE_JOINER, Vocabulary, normalize_text
from asr.training.augment import AugmentConfig, AugmentedDataset, SpecAugment
from asr.training.average import AVERAGE_BY
from asr.training.ctc_crf import CRF_LM_ORDERS, LOSSES, make_criterion, plain_ctc
from asr.training.data import Batch, DataConfig, SpeechDataset, collate
from asr.training.distributed import (
    DistContext,
    all_reduce_sum,
    init_distributed,
    shutdown_distributed,
)
from asr.training.feature_cache import (
    CachedFeatureDataset,
    CacheStats,
    FeatureCache,
    cache_speeds,
    default_cache_dir,
)
from asr.training.sampler import DurationBatchSampler, ShardedBatchSampler, SortedBatchSampler
from asr.training.state import (
    experiment_lock,
    load_init_weights,
    resume_state,
    save_epoch,
    save_last,
)
from asr.usererror import UserError

__all__ = [
    "ExperimentConfig",
    "NonFiniteLossError",
    "OptimConfig",
    "TrainConfig",
    "compute_loss",
    "fit",
    "train",
]

log = logging.getLogger(__name__)


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
    # "ctc", or "ctc_crf": sequence-level, against a unit n-gram of the training transcripts
    # in CTC topology (asr/training/ctc_crf.py); judge such a model with the LM
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
    "aux_weight": (0.0, 1.0),  # (1 - w) x character CTC + w x phone CTC
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


class NonFiniteLossError(UserError, RuntimeError):
    """Training kept producing non-finite losses or gradients (exit 1: the run failed)."""

    exit_code = 1


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def estimate_feature_stats(
    extractor: FeatureExtractor,
    raw_frames: Callable[[int], torch.Tensor],
    count: int,
    max_utterances: int,
    seed: int,
) -> None:
    """Set the extractor's global mean/std from a seeded sample of `count` training
    utterances; `raw_frames(i)` gives utterance i's unnormalized (T, F) log-mel."""
    indices = list(range(count))
    random.Random(seed).shuffle(indices)
    total = torch.zeros(extractor.cfg.n_mels, dtype=torch.float64)
    total_sq = torch.zeros_like(total)
    frames = 0
    for i in tqdm(indices[:max_utterances], desc="feature statistics", leave=False, disable=None):
        feats = raw_frames(i).double()
        total += feats.sum(0)
        total_sq += feats.square().sum(0)
        frames += feats.shape[0]
    mean = total / frames
    std = (total_sq / frames - mean.square()).clamp(min=1e-10).sqrt()
    extractor.set_global_stats(mean.float(), std.float())


def waveform_frames(extractor: FeatureExtractor, dataset: SpeechDataset, i: int):
    """Utterance i's raw (T, F) log-mel, computed from its waveform."""
    waveform = dataset[i][0]
    return extractor.raw(waveform[None], torch.tensor([len(waveform)]))[0][0]


def cached_frames(cache: FeatureCache, dataset: SpeechDataset, i: int) -> torch.Tensor:
    """Utterance i's raw (T, F) log-mel at speed 1, from the feature cache."""
    return cache.get(dataset.utterances[i].audio_filepath)


def ctc_feasible(out_lens: torch.Tensor, targets: torch.Tensor, target_lens: torch.Tensor):
    """(B,) True where a CTC path exists: output frames >= `frames.ctc_min_frames` of the
    (B, U) padded targets (target length + repeated neighbours)."""
    return out_lens >= ctc_min_frames_batch(targets, target_lens)


@dataclass
class StepResult:
    loss: torch.Tensor  # summed CTC loss over feasible utterances, divided by their count
    utterances: int  # utterances that contributed
    skipped: int  # utterances whose transcript cannot fit the output frames
    log_probs: torch.Tensor  # (B, T', V) model output
    out_lens: torch.Tensor  # (B,)


def _masked_ctc(ctc, log_probs, out_lens, targets, target_lens, ok) -> torch.Tensor:
    """Summed CTC loss of the utterances where `ok`: (B, T', V) log-probs, (B, U) targets."""
    return ctc(
        log_probs[ok].transpose(0, 1),  # (B, T', V) -> (T', B, V)
        targets[ok],
        out_lens[ok],
        target_lens[ok],
    )


def compute_loss(
    model: nn.Module,
    extractor: FeatureExtractor,
    batch: Batch,
    ctc: nn.CTCLoss,
    device: torch.device,
    dtype: torch.dtype,
    spec_augment: SpecAugment | None = None,
    aux_weight: float = 0.0,
) -> StepResult:
    """CTC loss of a batch; with `aux_weight` > 0 and phone targets in the batch, the
    weighted sum (1 - w) * character CTC + w * phone CTC (the phone head's loss)."""
    inputs, input_lens, targets, target_lens, *aux = (
        t.to(device, non_blocking=True) for t in batch.tensors()
    )
    with torch.no_grad():
        # cached raw frames are only normalized; waveforms go through the whole extractor
        features = extractor.normalize if batch.is_features else extractor
        feats, feat_lens = features(inputs, input_lens)  # (B, T, F), (B,)
        if spec_augment is not None:
            feats = spec_augment(feats, feat_lens)  # (B, T, F)
    with_aux = bool(aux) and aux_weight > 0
    with autocast(device, dtype):
        log_probs, out_lens, *aux_log_probs = model(feats, feat_lens, with_aux=with_aux)
    ok = ctc_feasible(out_lens, targets, target_lens)
    count = int(ok.sum())
    if count == 0:
        return StepResult(log_probs.sum() * 0.0, 0, len(ok), log_probs, out_lens)
    loss = _masked_ctc(ctc, log_probs, out_lens, targets, target_lens, ok)
    if with_aux and aux_log_probs:
        aux_targets, aux_lens = aux
        aux_ok = ok & ctc_feasible(out_lens, aux_targets, aux_lens)
        aux_ctc = plain_ctc(ctc)  # both vocabularies' blank is id 0
        aux_loss = _masked_ctc(aux_ctc, aux_log_probs[0], out_lens, aux_targets, aux_lens, aux_ok)
        loss = (1 - aux_weight) * loss + aux_weight * aux_loss
    return StepResult(loss / count, count, len(ok) - count, log_probs, out_lens)


def make_scheduler(
    optimizer, cfg: OptimConfig, steps_per_epoch: Sequence[int], lr_scales: Sequence[float]
):
    """Linear warmup over `cfg.warmup_steps`, then cosine decay to `final_lr_ratio` over
    the rest of the run, measured in epochs (steps per epoch may change with the batch
    size), times epoch e's `lr_scales[e]`."""
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


def _disabled_scaler() -> torch.amp.GradScaler:
    return torch.amp.GradScaler("cpu", enabled=False)


@dataclass
class Trainer:
    """Everything one training run holds; the functions below advance it."""

    cfg: ExperimentConfig
    exp_dir: Path
    vocab: Vocabulary
    extractor: FeatureExtractor
    model: nn.Module  # the AcousticModel, wrapped in DistributedDataParallel under torchrun
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    train_loader: DataLoader
    valid_loader: DataLoader | None
    device: torch.device
    dtype: torch.dtype
    epoch: int = 0  # completed epochs
    step: int = 0  # optimizer steps taken (skipped non-finite ones included)
    best_wer: float = math.inf
    skipped: int = 0  # utterances whose transcript could not fit the output frames
    dist: DistContext = field(default_factory=DistContext)
    # fp16 loss scaling on CUDA; a disabled scaler (pass-through) otherwise
    scaler: torch.amp.GradScaler = field(default_factory=_disabled_scaler)
    spec_augment: SpecAugment | None = None
    position: int = 0  # batches of this rank consumed in the current epoch
    bad_steps: int = 0  # consecutive non-finite steps
    nonfinite_steps: int = 0  # non-finite steps skipped in the whole run
    writer: object | None = None  # TensorBoard SummaryWriter on rank 0
    criterion: nn.Module | None = None  # train.loss's (ctc_crf.make_criterion)

    @property
    def raw_model(self) -> AcousticModel:
        """The AcousticModel itself, without the DDP wrapper."""
        return self.model.module if isinstance(self.model, DistributedDataParallel) else self.model


def make_loader(
    dataset: SpeechDataset,
    cfg: DataConfig,
    seed: int,
    shuffle: bool,
    dist: DistContext = DistContext(),
    grad_accum: int = 1,
) -> DataLoader:
    """Training (shuffle) batches by duration when data.max_batch_seconds is set, else by
    count; evaluation batches are one sorted pass, sharded across ranks."""
    durations = [u.duration for u in dataset.utterances]
    if shuffle and cfg.max_batch_seconds > 0:
        sampler = DurationBatchSampler(
            durations,
            cfg.max_batch_seconds,
            cfg.num_buckets,
            seed,
            rank=dist.rank,
            world_size=dist.world_size,
            grad_accum=grad_accum,
            speed_factors=getattr(dataset, "speed_factors", None),
            early_batch_seconds=cfg.early_batch_seconds,
            early_epochs=cfg.early_batch_epochs,
        )
    else:
        assert not (shuffle and dist.enabled), "check_processes refuses count batching"
        window = cfg.sort_window if shuffle else 10**9  # evaluation: one sorted pass
        inner = SortedBatchSampler(durations, cfg.batch_size, window, seed)
        sampler = ShardedBatchSampler(inner, dist.rank, dist.world_size)
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=cfg.num_workers,
        pin_memory=torch.cuda.is_available(),
        # Fresh workers each epoch see the dataset's current epoch (augmentation seeds).
        persistent_workers=False,
        # Its own generator: creating an iterator leaves torch's global RNG untouched,
        # so a resumed run draws the same dropout and SpecAugment masks.
        generator=torch.Generator().manual_seed(seed),
    )


def report_unpronounced(pronouncer) -> None:
    log.info("pronunciations: %d words spelled by espeak-ng", len(pronouncer.guessed))
    if pronouncer.unknown:
        log.warning(
            "%d word(s) without a pronunciation left out of the phone targets: %s",
            len(pronouncer.unknown),
            ", ".join(sorted(pronouncer.unknown)[:20]),
        )


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


def _make_scaler(device: torch.device, dtype: torch.dtype) -> torch.amp.GradScaler:
    """Loss scaling for fp16 on CUDA; bf16 and fp32 need none (a disabled scaler)."""
    enabled = device.type == "cuda" and dtype == torch.float16
    return torch.amp.GradScaler(device.type, enabled=enabled)


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


def epoch_steps(loader: DataLoader, cfg: ExperimentConfig) -> list[int]:
    """Optimizer steps in each epoch of the run."""
    sampler, accum = loader.batch_sampler, max(1, cfg.optim.grad_accum)
    if hasattr(sampler, "epoch_lengths"):
        batches = sampler.epoch_lengths(cfg.optim.epochs)
    else:
        batches = [len(loader)] * cfg.optim.epochs
    return [math.ceil(n / accum) for n in batches]


def feature_cache(cfg: ExperimentConfig) -> FeatureCache:
    """The feature cache a config reads (data.feature_cache_dir, else the default)."""
    return FeatureCache(default_cache_dir(cfg.data.feature_cache_dir), cfg.features)


def cache_jobs(cfg: ExperimentConfig, train, valid) -> list[tuple]:
    """What the feature cache must hold for a run, decided here for `asr train` and `asr
    data features` alike: (split, speed factors, label) for the training split (a dataset
    or a manifest; None: none) at every speed augment draws, the validation split at 1.0."""
    jobs = [] if train is None else [(train, cache_speeds(cfg.augment), "train features")]
    if valid is not None:
        jobs.append((valid, [1.0], "validation features"))
    return jobs


def open_feature_cache(cfg: ExperimentConfig, train_set, valid_set, dist: DistContext):
    """The feature cache with every entry this run reads (built now where missing), or None
    with data.feature_cache off."""
    if not cfg.data.feature_cache:
        return None
    cache = feature_cache(cfg)
    jobs, stats = cache_jobs(cfg, train_set, valid_set), CacheStats()
    for dataset, speeds, label in jobs:
        stats.add(cache.build([u.audio_filepath for u in dataset.utterances], speeds, label))
    if dist.is_main:
        log.info(
            "feature cache %s: %d entries (%d built now), %.1f MiB, speeds %s",
            cache.root,
            stats.present + stats.built,
            stats.built,
            stats.bytes / 2**20,
            jobs[0][1],
        )
    return cache


def check_processes(cfg: ExperimentConfig, dist: DistContext) -> None:
    """What the config cannot say alone: several processes need duration batching, which
    keeps every rank's step count equal (checked before anything is built)."""
    if dist.enabled and cfg.data.max_batch_seconds <= 0:
        raise ConfigError(
            f"training on {dist.world_size} processes needs data.max_batch_seconds > 0 "
            "(duration batching keeps every rank's step count equal)"
        )


def make_extractor(cfg: ExperimentConfig, train_set, cache, estimate_stats: bool, device):
    """The feature extractor, its global statistics estimated from the training set (from
    the cache where there is one) when its normalization uses them and `estimate_stats`."""
    extractor = FeatureExtractor(cfg.features)
    if cfg.features.normalization in GLOBAL_STATS_NORMALIZATIONS and estimate_stats:
        frames = functools.partial(waveform_frames, extractor, train_set)
        if cache is not None:
            frames = functools.partial(cached_frames, cache, train_set)
        n = len(train_set)
        estimate_feature_stats(extractor, frames, n, cfg.train.stats_utterances, cfg.train.seed)
    return extractor.to(device)


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


def make_loaders(cfg: ExperimentConfig, train_set, valid_set, cache, dist: DistContext):
    """(training loader, validation loader or None): cached frames where there is a cache,
    else waveforms (augmented when waveform augmentation is on)."""
    seed = cfg.train.seed
    if cache is not None:
        train_set = CachedFeatureDataset(train_set, cfg.augment, seed, cache)
        if valid_set is not None:
            valid_set = CachedFeatureDataset(valid_set, AugmentConfig(), seed, cache)
    elif cfg.augment.waveform_enabled:
        train_set = AugmentedDataset(train_set, cfg.augment, seed)
    accum = max(1, cfg.optim.grad_accum)
    train_loader = make_loader(train_set, cfg.data, seed, True, dist, accum)
    valid_loader = None
    if valid_set is not None:
        valid_loader = make_loader(valid_set, cfg.data, seed, False, dist)
    return train_loader, valid_loader


def build_trainer(
    cfg: ExperimentConfig,
    exp_dir: Path,
    dist: DistContext = DistContext(),
    device: torch.device | None = None,
    estimate_stats: bool = True,
) -> Trainer:
    """Everything a run needs, built in order: data, features (cache, statistics), model,
    loss, optimizer, loaders, schedule (`fit` then advances it)."""
    check_processes(cfg, dist)
    seed_everything(cfg.train.seed)
    device = device or resolve_device(cfg.train.device)
    vocab = Vocabulary.for_units(cfg.model.units)
    pronouncer = make_pronouncer(cfg.model)
    train_set, valid_set = load_splits(cfg, vocab, pronouncer)
    cache = open_feature_cache(cfg, train_set, valid_set, dist)
    extractor = make_extractor(cfg, train_set, cache, estimate_stats, device)
    aux_vocab_size = add_aux_targets(cfg, train_set, pronouncer)
    model = AcousticModel(cfg.model, cfg.features.n_mels, len(vocab), aux_vocab_size).to(device)
    criterion = make_criterion(cfg.train, vocab, train_set.targets)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay
    )
    train_loader, valid_loader = make_loaders(cfg, train_set, valid_set, cache, dist)
    scheduler = make_scheduler(optimizer, cfg.optim, epoch_steps(train_loader, cfg), lr_scales(cfg))
    dtype = resolve_precision(cfg.train.precision, device)
    if dist.enabled:
        device_ids = [device] if device.type == "cuda" else None
        model = DistributedDataParallel(model, device_ids=device_ids)
        torch.manual_seed(cfg.train.seed + dist.rank)  # distinct dropout/SpecAugment per rank
    return Trainer(
        cfg,
        exp_dir,
        vocab,
        extractor,
        model,
        optimizer,
        scheduler,
        train_loader,
        valid_loader,
        device,
        dtype,
        dist=dist,
        scaler=_make_scaler(device, dtype),
        spec_augment=SpecAugment(cfg.augment) if cfg.augment.feature_enabled else None,
        criterion=criterion,
    )


@dataclass
class EpochStats:
    loss_sum: float = 0.0  # summed CTC loss of the epoch's utterances, all ranks
    utterances: int = 0  # utterances that contributed to loss_sum
    audio_seconds: float = 0.0  # audio seen by this rank
    padded_seconds: float = 0.0  # audio and padding in the batches of this rank


def _backward_group(tr: Trainer, ctc: nn.CTCLoss, batches: list[Batch]) -> torch.Tensor:
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
                ctc,
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


def train_step(tr: Trainer, ctc: nn.CTCLoss, batches: list[Batch]) -> dict:
    """One optimizer step over `batches`; a non-finite loss or gradient skips the update."""
    tr.optimizer.zero_grad(set_to_none=True)
    loss_sum, count = _backward_group(tr, ctc, batches).tolist()
    tr.scaler.unscale_(tr.optimizer)
    clip = tr.cfg.optim.grad_clip if tr.cfg.optim.grad_clip > 0 else math.inf
    grad_norm = float(nn.utils.clip_grad_norm_(tr.raw_model.parameters(), clip))
    finite = math.isfinite(loss_sum) and math.isfinite(grad_norm)
    if finite:
        tr.scaler.step(tr.optimizer)
        tr.bad_steps = 0
    else:
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
    tr.scaler.update()
    with warnings.catch_warnings():
        # The schedule advances over skipped updates too; torch warns when that happens
        # before any optimizer.step().
        warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step")
        tr.scheduler.step()
    tr.step += 1
    if tr.bad_steps >= tr.cfg.train.max_bad_steps:
        raise NonFiniteLossError(
            f"{tr.bad_steps} consecutive steps with a non-finite loss or gradient (last at "
            f"step {tr.step}, epoch {tr.epoch + 1}); lower optim.lr, check the data, or use "
            f"train.precision=fp32. The last good state is in {tr.exp_dir / LAST_FILE}"
        )
    return {"loss_sum": loss_sum, "utterances": int(count), "grad_norm": grad_norm}


def _log_step(tr: Trainer, step: dict) -> None:
    if tr.writer is None or not step["utterances"]:
        return
    tr.writer.add_scalar("train/loss", step["loss_sum"] / step["utterances"], tr.step)
    tr.writer.add_scalar("train/lr", tr.scheduler.get_last_lr()[0], tr.step)
    if math.isfinite(step["grad_norm"]):
        tr.writer.add_scalar("train/grad_norm", step["grad_norm"], tr.step)


def _record_batch(stats: EpochStats, batch: Batch, features: FeatureConfig) -> None:
    real, padded = batch.audio_seconds(features)
    stats.audio_seconds += real
    stats.padded_seconds += padded


def train_one_epoch(tr: Trainer, ctc: nn.CTCLoss) -> dict:
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
        _finish_step(tr, ctc, group, stats, bar)
        group = []
    if group:  # count batching: the epoch's batches need not divide by grad_accum
        _finish_step(tr, ctc, group, stats, bar)
    elapsed = time.perf_counter() - start
    audio = float(all_reduce_sum(torch.tensor([stats.audio_seconds], dtype=torch.float64))[0])
    return {
        "train_loss": stats.loss_sum / max(1, stats.utterances),
        "audio_seconds_per_second": audio / elapsed,
        "nonpadding_fraction": stats.audio_seconds / max(1e-9, stats.padded_seconds),
        "skipped_too_long_transcripts": tr.skipped - skipped_before,  # this epoch's
        "nonfinite_steps": tr.nonfinite_steps,
    }


def _finish_step(tr: Trainer, ctc: nn.CTCLoss, group: list[Batch], stats: EpochStats, bar):
    step = train_step(tr, ctc, group)
    tr.position += len(group)
    stats.loss_sum += step["loss_sum"]
    stats.utterances += step["utterances"]
    _log_step(tr, step)
    if step["utterances"]:
        loss = step["loss_sum"] / step["utterances"]
        bar.set_postfix(loss=f"{loss:.3f}", lr=f"{tr.scheduler.get_last_lr()[0]:.2e}")
    every = tr.cfg.train.save_every_steps
    if every > 0 and tr.step % every == 0:
        save_last(tr)


@torch.no_grad()
def evaluate_loss(tr: Trainer, ctc: nn.CTCLoss) -> dict:
    """Validation loss, greedy WER and CER, over every rank's shard of the validation set."""
    model = tr.raw_model  # no DDP: shards may differ by a batch, nothing to synchronize
    model.eval()
    total_loss, total_utts, refs, hyps = 0.0, 0, [], []
    dataset = tr.valid_loader.dataset
    for indices, batch in zip(tr.valid_loader.batch_sampler, tr.valid_loader, strict=True):
        result = compute_loss(model, tr.extractor, batch, ctc, tr.device, tr.dtype)
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


def _attach_logs(tr: Trainer) -> logging.Handler | None:
    """Rank 0: the plain-text log file and the TensorBoard writer."""
    if not tr.dist.is_main:
        return None
    handler = logging.FileHandler(tr.exp_dir / "train.txt")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("asr").addHandler(handler)
    if tr.cfg.train.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        tr.writer = SummaryWriter(str(tr.exp_dir / "tensorboard"))
    return handler


def _log_epoch(tr: Trainer, metrics: dict) -> None:
    log.info("epoch %d: %s", tr.epoch, json.dumps(metrics))
    if not tr.dist.is_main:
        return
    from asr.training.plots import plot_training_curves

    plot_training_curves(tr.exp_dir / "train.log", tr.exp_dir / "curves.png")
    if tr.writer is not None:
        for key, value in metrics.items():
            if key != "epoch" and isinstance(value, int | float) and math.isfinite(value):
                section = "valid" if key.startswith("valid_") else "train"
                name = key.removeprefix("valid_").removeprefix("train_")
                tr.writer.add_scalar(f"{section}/{name}", value, tr.epoch)
        tr.writer.flush()


def train(
    config: str | Path,
    exp_dir: str | Path | None = None,
    overrides: Sequence[str] = (),
    resume: bool = False,
    init_from: str | Path | None = None,
    overwrite: bool = False,
) -> Trainer:
    """Train from a TOML experiment config, as `asr train` does (see `fit`).

    config: the TOML file (recipes/*/config.toml); overrides: "section.key=value" strings
    applied on top; exp_dir: the experiment folder, by default exp/<the config's folder>.

        import asr
        trainer = asr.train("recipes/quickstart/config.toml", "exp/q", ["optim.epochs=3"])
        print(trainer.best_wer, trainer.exp_dir / "model.pt")
    """
    cfg = load_toml(ExperimentConfig, config, list(overrides))
    exp_dir = exp_dir or Path("exp") / Path(config).resolve().parent.name
    return fit(cfg, exp_dir, resume, init_from, overwrite)


def fit(
    cfg: ExperimentConfig,
    exp_dir: str | Path,
    resume: bool = False,
    init_from: str | Path | None = None,
    overwrite: bool = False,
) -> Trainer:
    """Train for `cfg.optim.epochs` epochs, checkpointing and validating after each; the
    Trainer holds the finished run (best_wer, step, the model).

    cfg: the experiment (see `train` to read it from TOML); exp_dir: where the run's files
    go. resume: continue from `exp_dir/last.pt` (mid-epoch, exactly); init_from: start from
    another checkpoint's weights (fine-tuning). A folder already holding a trained model
    (model.pt, best.pt or last.pt) is refused unless `resume` or `overwrite`. Under
    torchrun every rank calls this.

        cfg = apply_overrides(ExperimentConfig(), ['data.train_manifest="train.jsonl"'])
        trainer = fit(cfg, "exp/x")
    """
    if resume and init_from:
        raise ConfigError("resume and init_from (--resume, --init-from) exclude each other")
    exp_dir = Path(exp_dir)
    dist, device = init_distributed(resolve_device(cfg.train.device))
    last = exp_dir / LAST_FILE
    if resume and not last.is_file():
        raise CheckpointError(f"{last}: nothing to resume from")
    trained = [n for n in TRAINED_FILES if (exp_dir / n).is_file()]
    if trained and not (resume or overwrite):
        raise ConfigError(
            f"{exp_dir} already holds a trained model ({', '.join(trained)}): continue it "
            "with --resume, replace it with --overwrite, or choose another --exp-dir"
        )
    if dist.is_main:
        exp_dir.mkdir(parents=True, exist_ok=True)
    if not dist.is_main:
        logging.getLogger("asr").setLevel(logging.WARNING)  # one voice: rank 0's
    with experiment_lock(exp_dir, dist.is_main):
        trainer = _fit_locked(cfg, exp_dir, dist, device, resume, init_from)
    shutdown_distributed()  # on success only: a failed rank must not wait for the others
    return trainer


def _fit_locked(cfg, exp_dir: Path, dist, device, resume: bool, init_from) -> Trainer:
    tr = build_trainer(cfg, exp_dir, dist, device, estimate_stats=not resume)
    handler = _attach_logs(tr)
    try:
        _run(tr, resume, init_from)
    except CheckpointWriteError as err:
        raise CheckpointWriteError(
            f"{err}. The checkpoints written before survive; free space, then continue "
            f"with `asr train --config <config> --exp-dir {exp_dir} --resume`"
        ) from err
    finally:
        if handler is not None:
            logging.getLogger("asr").removeHandler(handler)
            handler.close()
        if tr.writer is not None:
            tr.writer.close()
    return tr


def _run(tr: Trainer, resume: bool, init_from: str | Path | None) -> None:
    cfg = tr.cfg
    if resume:
        resume_state(tr, tr.exp_dir / LAST_FILE)
    elif init_from:
        load_init_weights(tr, init_from)
    if tr.dist.is_main:  # once what it continues from is accepted: a refusal changes nothing
        (tr.exp_dir / "config.toml").write_text(to_toml(cfg))
    params = sum(p.numel() for p in tr.model.parameters())
    log.info(
        "model: %.2fM parameters; device %s, %s; %d process(es)",
        params / 1e6,
        tr.device,
        tr.dtype,
        tr.dist.world_size,
    )
    ctc = tr.criterion  # build_trainer's make_criterion: train.loss
    log.info("loss: %s", cfg.train.loss)
    while tr.epoch < cfg.optim.epochs:
        metrics = {"epoch": tr.epoch + 1, **train_one_epoch(tr, ctc)}
        if tr.valid_loader is not None:
            metrics.update(evaluate_loss(tr, ctc))
        tr.epoch += 1
        tr.position = 0
        save_epoch(tr, metrics)
        _log_epoch(tr, metrics)
        if metrics.get("valid_wer", math.inf) <= cfg.train.stop_at_wer:
            log.info("validation WER %.4f <= train.stop_at_wer: stopping", metrics["valid_wer"])
            break
    if cfg.train.average_last > 0 and tr.dist.is_main:
        average_at_end(tr)


def average_at_end(tr: Trainer) -> Path:
    """Average `train.average_last` of this run's epoch checkpoints into averaged.pt; a run
    with fewer epochs (a short optim.epochs, an early stop) averages all it has, saying so:
    a setting never fails a run whose training is done."""
    from asr.training.average import average_experiment, epoch_checkpoints

    asked, by = tr.cfg.train.average_last, tr.cfg.train.average_by
    num = min(asked, len(epoch_checkpoints(tr.exp_dir, up_to=tr.epoch)))
    if num < asked:
        log.warning(
            "train.average_last = %d, but the run has %d epoch checkpoint(s): averaging those",
            asked,
            num,
        )
    out = average_experiment(tr.exp_dir, num, by, up_to=tr.epoch)
    log.info("averaged %d checkpoint(s) (%s) into %s", num, by, out)
    return out
