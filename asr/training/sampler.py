"""Dynamic batching by total duration, bucketed by length, sharded across DDP ranks.

Utterances are sorted by duration and cut into `num_buckets` buckets of equal count (fewer
when the corpus is too small for each to hold 4 batches). Each epoch, every bucket is
shuffled and cut into batches whose padded duration (longest utterance x utterances)
stays within `max_batch_seconds`; then the batches of all buckets are shuffled together.
Since a batch only holds utterances of one bucket, padding stays small while the order
still changes every epoch.

For DDP the batch list is made divisible by `world_size * grad_accum` by splitting the
largest batches in two (never by dropping or repeating an utterance), and rank r takes
batches r, r + world_size, ... so that one optimizer step of N ranks sees exactly the
batches that one process with `grad_accum = N` sees in one step.

`SortedBatchSampler` batches by count instead (sorted windows; evaluation is one sorted
pass), for a single process.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

__all__ = [
    "DurationBatchSampler",
    "ShardedBatchSampler",
    "SortedBatchSampler",
    "padding_efficiency",
]


_MIN_BATCHES_PER_BUCKET = 4


class DurationBatchSampler(Sampler[list[int]]):
    """Batches of indices whose padded duration stays within `max_batch_seconds`.

    Resumable: `set_epoch(e)` then `start_at(k)` yields the epoch's batches from the k-th
    (of this rank) on, identical to those an uninterrupted epoch yields there.
    """

    def __init__(
        self,
        durations: Sequence[float],
        max_batch_seconds: float,
        num_buckets: int = 10,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        grad_accum: int = 1,
        speed_factors: Callable[[int], np.ndarray] | None = None,
        early_batch_seconds: float = 0.0,
        early_epochs: int = 0,
    ):
        self.durations = np.asarray(durations, dtype=np.float64)
        if len(self.durations) == 0:
            raise ValueError("DurationBatchSampler: no utterances")
        if max_batch_seconds <= 0:
            raise ValueError(f"max_batch_seconds must be positive, got {max_batch_seconds}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world of size {world_size}")
        self.max_batch_seconds = max_batch_seconds
        # batches of early_batch_seconds in epochs < early_epochs, then max_batch_seconds
        self.early_batch_seconds = early_batch_seconds if early_epochs > 0 else 0.0
        self.early_epochs = early_epochs
        self.num_buckets = max(1, num_buckets)
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.group = world_size * max(1, grad_accum)  # batches consumed per optimizer step
        # epoch -> (N,) speed perturbation factors: batches are cut on perturbed durations
        self.speed_factors = speed_factors
        self.epoch = 0
        self.start = 0  # batches of this rank to skip (resume mid-epoch)
        self._cache: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.start = 0

    def start_at(self, position: int) -> None:
        """Skip the first `position` batches of this rank in the current epoch."""
        self.start = position

    def batch_seconds(self, epoch: int) -> float:
        """The padded-audio limit of `epoch`'s batches."""
        if self.early_batch_seconds > 0 and epoch < self.early_epochs:
            return self.early_batch_seconds
        return self.max_batch_seconds

    def epoch_lengths(self, epochs: int) -> list[int]:
        """Batches of this rank in each of the first `epochs` epochs."""
        saved, lengths = (self.epoch, self.start, self._cache), []
        for epoch in range(epochs):
            self.epoch, self._cache = epoch, None
            lengths.append(len(self))
        self.epoch, self.start, self._cache = saved
        return lengths

    def epoch_durations(self) -> np.ndarray:
        """(N,) durations of the current epoch, speed perturbation included."""
        if self.speed_factors is None:
            return self.durations
        return self.durations / self.speed_factors(self.epoch)

    def bucket_count(self, durations: np.ndarray) -> int:
        """`num_buckets`, fewer where a bucket would hold under 4 batches of audio: the
        last batch of each bucket is partial, and small batches waste parallelism."""
        limit = self.batch_seconds(self.epoch)
        enough = int(durations.sum() / (_MIN_BATCHES_PER_BUCKET * limit))
        return max(1, min(self.num_buckets, enough, len(durations)))

    def global_batches(self) -> list[list[int]]:
        """All ranks' batches of the current epoch, in step order."""
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1]
        rng = random.Random(self.seed * 100_003 + self.epoch)
        durations = self.epoch_durations()
        order = np.argsort(durations, kind="stable")
        buckets = [list(b) for b in np.array_split(order, self.bucket_count(durations))]
        batches = []
        for bucket in buckets:
            if self.shuffle:
                rng.shuffle(bucket)
            batches += self._cut(bucket, durations)
        if self.shuffle:
            rng.shuffle(batches)
        batches = _split_until_divisible(batches, self.group, durations)
        self._cache = (self.epoch, batches)
        return batches

    def _cut(self, indices: list[int], durations: np.ndarray) -> list[list[int]]:
        """Greedy cut in the given order: a batch grows while max duration x size fits."""
        batches, current, longest = [], [], 0.0
        limit = self.batch_seconds(self.epoch)
        for i in indices:
            d = float(durations[i])
            if current and max(longest, d) * (len(current) + 1) > limit:
                batches.append(current)
                current, longest = [], 0.0
            current.append(int(i))
            longest = max(longest, d)
        if current:
            batches.append(current)
        return batches

    def __len__(self) -> int:
        """Batches of this rank in one full epoch."""
        return len(self.global_batches()) // self.world_size

    def __iter__(self) -> Iterator[list[int]]:
        mine = self.global_batches()[self.rank :: self.world_size]
        return iter(mine[self.start :])


class ShardedBatchSampler(Sampler[list[int]]):
    """Any seeded batch sampler made resumable and sharded: rank r takes batches r, r + N, ...

    Shards may differ by one batch, so use it where ranks need not step together
    (validation); training across ranks uses DurationBatchSampler.
    """

    def __init__(self, inner: Sampler[list[int]], rank: int = 0, world_size: int = 1):
        self.inner = inner
        self.rank = rank
        self.world_size = world_size
        self.start = 0

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.inner, "set_epoch"):
            self.inner.set_epoch(epoch)
        self.start = 0

    def start_at(self, position: int) -> None:
        self.start = position

    def __len__(self) -> int:
        return len(range(self.rank, len(self.inner), self.world_size))

    def __iter__(self) -> Iterator[list[int]]:
        mine = list(self.inner)[self.rank :: self.world_size]
        return iter(mine[self.start :])


def _split_until_divisible(
    batches: list[list[int]], group: int, durations: np.ndarray
) -> list[list[int]]:
    """Split the batch of largest padded duration in two until len % group == 0."""
    batches = list(batches)
    while len(batches) % group:
        splittable = [i for i, b in enumerate(batches) if len(b) > 1]
        if not splittable:
            raise ValueError(
                f"{sum(map(len, batches))} utterance(s) cannot form a multiple of {group} "
                "batches (world_size x grad_accum); use fewer ranks or more data"
            )
        i = max(splittable, key=lambda k: len(batches[k]) * durations[batches[k]].max())
        half = len(batches[i]) // 2
        batches[i : i + 1] = [batches[i][:half], batches[i][half:]]
    return batches


def padding_efficiency(batches: Sequence[Sequence[int]], durations: Sequence[float]) -> float:
    """Fraction of non-padding audio in `batches`: sum of durations / sum of padded sizes."""
    durations = np.asarray(durations, dtype=np.float64)
    real = sum(float(durations[b].sum()) for b in batches)
    padded = sum(float(durations[b].max()) * len(b) for b in batches)
    return real / padded if padded else 1.0


class SortedBatchSampler(Sampler[list[int]]):
    """Batches of similar duration: shuffle, sort each window of `sort_window` batches by
    duration, cut it into batches, shuffle the batches. Seeded per epoch."""

    def __init__(
        self, durations: Sequence[float], batch_size: int, sort_window: int = 50, seed: int = 0
    ):
        self.durations = np.asarray(durations)
        self.batch_size = batch_size
        self.window = batch_size * max(1, sort_window)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(len(self.durations) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        rng = random.Random(self.seed * 100_003 + self.epoch)
        order = list(range(len(self.durations)))
        rng.shuffle(order)
        batches = []
        for start in range(0, len(order), self.window):
            window = sorted(order[start : start + self.window], key=lambda i: self.durations[i])
            batches += [
                window[i : i + self.batch_size] for i in range(0, len(window), self.batch_size)
            ]
        rng.shuffle(batches)
        return iter(batches)
