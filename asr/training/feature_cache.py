"""Log-mel frames computed once: every utterance at every speed factor, cached on disk.

Training reads the unnormalized log-mel frames of each utterance from here instead of
decoding, resampling and transforming its audio every epoch; normalization and SpecAugment
still run on the fly. An entry is keyed by everything that determines it: the audio file's
resolved path, size and modification time (ns), the feature config (all fields but the
normalization, which is applied after the cache), the speed factor and `CACHE_VERSION`. A
changed file or config therefore gets a new key, never a stale entry.

Entries are fp16 `.npy` files (T, n_mels), read memory-mapped, written under a temporary
name and renamed (a killed build leaves no half entry). Where: `data.feature_cache_dir`,
else $ASR_FEATURE_CACHE, else ~/.cache/asr/features; `asr data features` builds it with a
progress bar, and training builds what is missing before its first epoch. Clearing it is
deleting the folder. docs/training.md has sizes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from asr.audio import load_audio
from asr.features import FeatureConfig, FeatureExtractor
from asr.training.augment import AugmentConfig, AugmentedDataset, speed_perturb

__all__ = [
    "CACHE_VERSION",
    "CachedFeatureDataset",
    "FeatureCache",
    "cache_speeds",
    "default_cache_dir",
]

# Bump when what an entry holds changes for the same key (the resampler, the log offset).
CACHE_VERSION = 1
_ENV = "ASR_FEATURE_CACHE"


def default_cache_dir(configured: str = "") -> Path:
    """`configured` (data.feature_cache_dir) when set, else $ASR_FEATURE_CACHE, else
    ~/.cache/asr/features (XDG_CACHE_HOME respected)."""
    if configured:
        return Path(configured)
    if os.environ.get(_ENV):
        return Path(os.environ[_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "asr" / "features"


@dataclass
class CacheStats:
    present: int = 0  # entries found
    built: int = 0  # entries computed now
    bytes: int = 0  # size of all the entries asked for

    def add(self, other: CacheStats) -> None:
        self.present += other.present
        self.built += other.built
        self.bytes += other.bytes


class FeatureCache:
    """Raw log-mel frames of (audio file, speed factor) pairs under `root`."""

    def __init__(self, root: str | Path, features: FeatureConfig):
        self.root = Path(root)
        self.features = features
        config = {k: v for k, v in asdict(features).items() if k != "normalization"}
        self._config = json.dumps(config, sort_keys=True)
        self._extractor: FeatureExtractor | None = None

    def key(self, path: str | Path, speed: float) -> str:
        """The entry's name: a hash of the file's identity, the config, the speed."""
        resolved = Path(path).resolve()
        st = resolved.stat()
        ident = [str(resolved), st.st_size, st.st_mtime_ns, self._config, speed, CACHE_VERSION]
        return hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:32]

    def entry(self, path: str | Path, speed: float) -> Path:
        key = self.key(path, speed)
        return self.root / key[:2] / f"{key}.npy"

    def raw(self, waveform: torch.Tensor) -> torch.Tensor:
        """(S,) waveform -> (T, n_mels) unnormalized float32 log-mel."""
        if self._extractor is None:
            self._extractor = FeatureExtractor(self.features)
        with torch.no_grad():
            feats, _ = self._extractor.raw(waveform[None], torch.tensor([len(waveform)]))
        return feats[0]

    def compute(self, path: str | Path, speed: float) -> torch.Tensor:
        """(T, n_mels) raw log-mel of the file played at `speed`, as training computed it."""
        waveform = torch.from_numpy(load_audio(path, self.features.sample_rate))
        return self.raw(speed_perturb(waveform, speed))

    def get(self, path: str | Path, speed: float = 1.0) -> torch.Tensor:
        """(T, n_mels) float32 frames: from the cache, else computed and stored."""
        entry = self.entry(path, speed)
        if entry.is_file():
            return torch.from_numpy(np.load(entry, mmap_mode="r").astype(np.float32))
        feats = self.compute(path, speed)
        self._store(entry, feats)
        return feats

    def _store(self, entry: Path, feats: torch.Tensor) -> None:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_name(f"{entry.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, feats.numpy().astype(np.float16))
        os.replace(tmp, entry)

    def build(self, paths: Sequence[str], speeds: Iterable[float], desc: str = "") -> CacheStats:
        """Make sure every (path, speed) entry exists, with a progress bar."""
        stats = CacheStats()
        pairs = [(p, s) for s in speeds for p in paths]
        bar = tqdm(pairs, desc=desc or "feature cache", unit="utt", disable=None)
        for path, speed in bar:
            entry = self.entry(path, speed)
            if entry.is_file():
                stats.present += 1
            else:
                self._store(entry, self.compute(path, speed))
                stats.built += 1
            stats.bytes += entry.stat().st_size
        return stats


def cache_speeds(cfg: AugmentConfig) -> list[float]:
    """The speed factors training will ask the cache for."""
    return sorted({1.0, *cfg.speeds}) if cfg.speed_perturb else [1.0]


class CachedFeatureDataset(AugmentedDataset):
    """A SpeechDataset's utterances as (raw log-mel (T, F), targets...) from the cache, at
    this epoch's speed factor (drawn as `AugmentedDataset` draws it). An utterance that
    draws additive noise is computed from its waveform instead (noise needs the samples)."""

    def __init__(self, base, cfg: AugmentConfig, seed: int, cache: FeatureCache):
        super().__init__(base, cfg, seed)
        self.cache = cache

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if rng.random() < self.cfg.noise_prob and self.cfg.active(self.epoch):
            waveform, *targets = super().__getitem__(index)  # the same draws
            return (self.cache.raw(waveform), *targets)
        speed = float(self.speed_factors(self.epoch)[index])
        feats = self.cache.get(self.utterances[index].audio_filepath, speed)
        return (feats, *self.base.target_tensors(index))
