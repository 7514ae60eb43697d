"""A training run's state and how it is built: data, features (cache, statistics), model,
criterion, optimizer, loaders and schedule, in that order.

    tr = build_trainer(cfg, Path("exp/x"))   # then asr.training.loop advances it
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from asr.config import ConfigError
from asr.device import resolve_device, resolve_precision
from asr.features import FeatureExtractor
from asr.logmel import GLOBAL_STATS_NORMALIZATIONS
from asr.model import AcousticModel
from asr.text import Vocabulary
from asr.training.augment import AugmentConfig, AugmentedDataset, SpecAugment
from asr.training.config import ExperimentConfig
from asr.training.data import DataConfig, SpeechDataset, collate
from asr.training.distributed import DistContext
from asr.training.feature_cache import CachedFeatureDataset, FeatureCache, open_feature_cache
from asr.training.losses import make_criterion
from asr.training.sampler import DurationBatchSampler, ShardedBatchSampler, SortedBatchSampler
from asr.training.schedule import epoch_steps, lr_scales, make_scheduler
from asr.training.splits import add_aux_targets, load_splits, make_pronouncer

__all__ = ["Trainer", "build_trainer", "estimate_feature_stats", "make_loader"]


def _disabled_scaler() -> torch.amp.GradScaler:
    return torch.amp.GradScaler("cpu", enabled=False)


@dataclass
class Trainer:
    """Everything one training run holds; asr.training.epoch and asr.training.loop advance
    it."""

    cfg: ExperimentConfig
    exp_dir: Path
    vocab: Vocabulary
    extractor: FeatureExtractor
    model: nn.Module  # the AcousticModel, wrapped in DistributedDataParallel under torchrun
    criterion: nn.Module  # train.loss's kind (losses.make_criterion), nn.CTCLoss's call
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

    @property
    def raw_model(self) -> AcousticModel:
        """The AcousticModel itself, without the DDP wrapper."""
        return self.model.module if isinstance(self.model, DistributedDataParallel) else self.model


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
        criterion,
        optimizer,
        scheduler,
        train_loader,
        valid_loader,
        device,
        dtype,
        dist=dist,
        scaler=_make_scaler(device, dtype),
        spec_augment=SpecAugment(cfg.augment) if cfg.augment.feature_enabled else None,
    )


def check_processes(cfg: ExperimentConfig, dist: DistContext) -> None:
    """What the config cannot say alone: several processes need duration batching, which
    keeps every rank's step count equal (checked before anything is built)."""
    if dist.enabled and cfg.data.max_batch_seconds <= 0:
        raise ConfigError(
            f"training on {dist.world_size} processes needs data.max_batch_seconds > 0 "
            "(duration batching keeps every rank's step count equal)"
        )


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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


def _make_scaler(device: torch.device, dtype: torch.dtype) -> torch.amp.GradScaler:
    """Loss scaling for fp16 on CUDA; bf16 and fp32 need none (a disabled scaler)."""
    enabled = device.type == "cuda" and dtype == torch.float16
    return torch.amp.GradScaler(device.type, enabled=enabled)
