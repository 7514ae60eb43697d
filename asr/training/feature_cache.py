"""Log-mel frames computed once: every utterance at every speed factor, cached on disk.

Training reads the unnormalized log-mel frames of each utterance from here instead of
decoding, resampling and transforming its audio every epoch; normalization and SpecAugment
still run on the fly. An entry is keyed by everything that determines it: the audio file's
resolved path, size and modification time (ns), the feature config (all fields but the
normalization, which is applied after the cache), the speed factor and `CACHE_VERSION`. A
changed file or config therefore gets a new key, never a stale entry.

An entry (`.feat`) is a 16-byte header (magic, frames T, n_mels, a CRC-32 of the shape
and the samples) and the (T, n_mels) fp16 frames, written by `files.atomic_write` (a killed
build or a full disk leaves no half entry; a full disk is named). What is read is proved
whole before it is used: the size the shape implies, the checksum, n_mels, finite values;
a damaged entry (truncated, emptied, a flipped bit, a changed shape, NaN bytes) is named in
the log and rebuilt, and `asr data features` counts them. Where: `data.feature_cache_dir`,
else $ASR_FEATURE_CACHE, else ~/.cache/asr/features; `asr data features` builds it with a
progress bar, and training builds what is missing before its first epoch. Clearing it is
deleting the folder. docs/training.md has sizes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm import tqdm

from asr.audio import load_audio
from asr.features import FeatureConfig, FeatureExtractor
from asr.files import write_atomic
from asr.manifest import read_manifest
from asr.training.augment import AugmentConfig, AugmentedDataset, speed_perturb
from asr.training.distributed import DistContext

if TYPE_CHECKING:
    from asr.training.config import ExperimentConfig

__all__ = [
    "CACHE_VERSION",
    "CachedFeatureDataset",
    "FeatureCache",
    "build_manifest_caches",
    "cache_jobs",
    "cache_speeds",
    "default_cache_dir",
    "feature_cache",
    "open_feature_cache",
]

# Bump when what an entry holds changes for the same key (the resampler, the log offset).
# 2: the checksummed .feat entry (1 was a bare .npy).
CACHE_VERSION = 2
_ENV = "ASR_FEATURE_CACHE"
_MAGIC = b"ASRF"
_HEADER = struct.Struct("<4sIII")  # magic, frames T, n_mels F, CRC-32 of (T, F) and the data

log = logging.getLogger(__name__)


class DamagedEntry(ValueError):
    """A cache entry that is not what was written: the message says how."""


def encode_entry(feats: torch.Tensor) -> bytes:
    """(T, F) frames -> an entry's bytes: header, then fp16 little-endian frames."""
    frames, n_mels = feats.shape
    data = feats.numpy().astype("<f2").tobytes()
    return _HEADER.pack(_MAGIC, frames, n_mels, _checksum(frames, n_mels, data)) + data


def decode_entry(raw: bytes, n_mels: int) -> torch.Tensor:
    """An entry's bytes -> (T, n_mels) float32 frames; DamagedEntry unless it is whole."""
    if len(raw) < _HEADER.size:
        raise DamagedEntry(f"{len(raw)} bytes, shorter than its header")
    magic, frames, width, crc = _HEADER.unpack_from(raw)
    if magic != _MAGIC:
        raise DamagedEntry("not a feature-cache entry (bad magic)")
    data = raw[_HEADER.size :]
    if len(data) != frames * width * 2:
        raise DamagedEntry(f"{len(data)} data bytes where ({frames}, {width}) fp16 needs "
                           f"{frames * width * 2}")  # fmt: skip
    if _checksum(frames, width, data) != crc:
        raise DamagedEntry("checksum mismatch")
    if width != n_mels:
        raise DamagedEntry(f"{width} mel bands where the config has {n_mels}")
    feats = np.frombuffer(data, "<f2").reshape(frames, width).astype(np.float32)
    if not np.isfinite(feats).all():
        raise DamagedEntry("NaN or infinite values")
    return torch.from_numpy(feats)


def _checksum(frames: int, n_mels: int, data: bytes) -> int:
    return zlib.crc32(data, zlib.crc32(struct.pack("<II", frames, n_mels)))


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
    present: int = 0  # entries found whole
    built: int = 0  # entries computed now (the damaged ones included)
    bytes: int = 0  # size of all the entries asked for
    damaged: int = 0  # entries found damaged, named in the log and rebuilt

    def add(self, other: CacheStats) -> None:
        self.present += other.present
        self.built += other.built
        self.bytes += other.bytes
        self.damaged += other.damaged


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
        return self.root / key[:2] / f"{key}.feat"

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
        """(T, n_mels) float32 frames: from the cache when its entry is whole, else
        computed and stored (a damaged entry is named in the log and replaced)."""
        entry = self.entry(path, speed)
        feats = self.read(entry, path, speed)
        if feats is None:
            feats = self.compute(path, speed)
            write_atomic(entry, encode_entry(feats), durable=False)
        return feats

    def read(self, entry: Path, path: str | Path, speed: float) -> torch.Tensor | None:
        """The entry's frames; None when it is missing, or damaged (then named in the log)."""
        try:
            return decode_entry(entry.read_bytes(), self.features.n_mels)
        except FileNotFoundError:
            return None
        except DamagedEntry as err:
            log.warning("%s: damaged feature-cache entry (%s) of %s at speed %g: rebuilt",
                        entry, err, path, speed)  # fmt: skip
            return None

    def build(self, paths: Sequence[str], speeds: Iterable[float], desc: str = "") -> CacheStats:
        """Make sure every (path, speed) entry exists and is whole, with a progress bar."""
        stats = CacheStats()
        pairs = [(p, s) for s in speeds for p in paths]
        bar = tqdm(pairs, desc=desc or "feature cache", unit="utt", disable=None)
        for path, speed in bar:
            entry = self.entry(path, speed)
            if self.read(entry, path, speed) is not None:
                stats.present += 1
            else:
                stats.damaged += entry.exists()
                write_atomic(entry, encode_entry(self.compute(path, speed)), durable=False)
                stats.built += 1
            stats.bytes += entry.stat().st_size
        return stats


def cache_speeds(cfg: AugmentConfig) -> list[float]:
    """The speed factors training will ask the cache for."""
    return sorted({1.0, *cfg.speeds}) if cfg.speed_perturb else [1.0]


class CachedFeatureDataset(AugmentedDataset):
    """A SpeechDataset's utterances as (raw log-mel (T, F), targets...) from the cache, at
    this epoch's speed factor (drawn as `AugmentedDataset` draws it). An utterance that
    draws additive noise, a room or a band is computed from its waveform instead (they need
    the samples)."""

    def __init__(self, base, cfg: AugmentConfig, seed: int, cache: FeatureCache):
        super().__init__(base, cfg, seed)
        self.cache = cache

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        if self.draws_waveform(index):
            waveform, *targets = super().__getitem__(index)  # the same draws
            return (self.cache.raw(waveform), *targets)
        speed = float(self.speed_factors(self.epoch)[index])
        feats = self.cache.get(self.utterances[index].audio_filepath, speed)
        return (feats, *self.base.target_tensors(index))


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


def build_manifest_caches(cfg: ExperimentConfig, manifests: Sequence[str] = ()) -> Iterator[str]:
    """`asr data features`: the cache entries of `manifests` (each at every speed augment
    draws; none given: the config's train and validation manifests, as `asr train` reads
    them), built where missing; yields a line per manifest saying what was done."""
    cache = feature_cache(cfg)
    jobs = [job for m in manifests for job in cache_jobs(cfg, m, None)]
    if not manifests:
        jobs = cache_jobs(cfg, cfg.data.train_manifest or None, cfg.data.valid_manifest or None)
    for manifest, speeds, _ in jobs:
        paths = [u.audio_filepath for u in read_manifest(manifest)]
        stats = cache.build(paths, speeds, Path(manifest).name)
        yield (
            f"{manifest}: {len(paths)} utterances x speeds {speeds}: {stats.built} built "
            f"({stats.damaged} of them damaged), {stats.present} present, "
            f"{stats.bytes / 2**20:.1f} MiB in {cache.root}"
        )


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
