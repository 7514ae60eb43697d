"""Duration-bucketed batching: coverage, budget, sharding, resume, padding."""

import numpy as np
import pytest

from asr.training.sampler import (
    DurationBatchSampler,
    ShardedBatchSampler,
    SortedBatchSampler,
    padding_efficiency,
)


def _durations(n=400, seed=0):
    """Log-normal durations around 10 s, clipped to 1-30 s, like read speech."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(np.log(10), 0.5, n), 1.0, 30.0)


@pytest.mark.parametrize("world_size,grad_accum", [(1, 1), (2, 1), (3, 1), (1, 4), (2, 3), (8, 1)])
def test_every_utterance_once_across_ranks(world_size, grad_accum):
    durations = _durations()
    seen = []
    lengths = set()
    for rank in range(world_size):
        s = DurationBatchSampler(
            durations, 60.0, 10, seed=1, rank=rank, world_size=world_size, grad_accum=grad_accum
        )
        s.set_epoch(3)
        batches = list(s)
        lengths.add(len(batches))
        assert len(batches) == len(s)
        seen += [i for b in batches for i in b]
    assert sorted(seen) == list(range(len(durations)))  # no duplicates, no drops
    assert len(lengths) == 1  # every rank takes the same number of steps
    assert lengths.pop() % grad_accum == 0


def test_batches_respect_the_budget():
    durations = _durations()
    s = DurationBatchSampler(durations, 45.0, 10, seed=0)
    for batch in s:
        assert len(batch) == 1 or durations[batch].max() * len(batch) <= 45.0


def test_utterance_longer_than_budget_gets_its_own_batch():
    s = DurationBatchSampler([1.0, 50.0, 1.0], 10.0, num_buckets=1, shuffle=False)
    assert sorted(map(sorted, s)) == [[0, 2], [1]]


def test_padding_efficiency_at_least_90_percent():
    durations = _durations(2000)
    s = DurationBatchSampler(durations, 200.0, num_buckets=30, seed=0)
    assert padding_efficiency(list(s), durations) >= 0.9


def test_padding_efficiency_values():
    durations = [1.0, 2.0, 4.0]
    assert padding_efficiency([[0, 1]], durations) == pytest.approx(3 / 4)
    assert padding_efficiency([[0], [1], [2]], durations) == 1.0


def test_epochs_shuffle_and_repeat():
    s = DurationBatchSampler(_durations(), 60.0, 10, seed=5)
    s.set_epoch(0)
    first = list(s)
    s.set_epoch(1)
    second = list(s)
    s.set_epoch(0)
    assert list(s) == first
    assert first != second
    assert sorted(map(tuple, first)) != sorted(map(tuple, second))  # contents differ too


def test_start_at_resumes_mid_epoch():
    s = DurationBatchSampler(_durations(), 60.0, 10, seed=2, rank=1, world_size=2)
    s.set_epoch(4)
    full = list(s)
    s.start_at(5)
    assert list(s) == full[5:]
    s.set_epoch(4)  # a new epoch starts from its beginning
    assert list(s) == full


def test_ranks_together_see_the_batches_of_gradient_accumulation():
    """Step k of N ranks == step k of one process accumulating N batches."""
    durations = _durations()
    single = DurationBatchSampler(durations, 60.0, 10, seed=3, grad_accum=2)
    ranks = [
        list(DurationBatchSampler(durations, 60.0, 10, seed=3, rank=r, world_size=2))
        for r in range(2)
    ]
    interleaved = [b for pair in zip(*ranks, strict=True) for b in pair]
    assert interleaved == list(single)


def test_too_few_utterances_for_the_world_is_an_error():
    with pytest.raises(ValueError, match="multiple of 4"):
        list(DurationBatchSampler([1.0, 1.0, 1.0], 10.0, world_size=4))


@pytest.mark.parametrize("bad", [{"max_batch_seconds": 0}, {"rank": 2, "world_size": 2}])
def test_bad_arguments(bad):
    kwargs = {"durations": [1.0, 2.0], "max_batch_seconds": 10.0, **bad}
    with pytest.raises(ValueError):
        DurationBatchSampler(**kwargs)


def test_sharded_sampler_splits_and_resumes():
    inner = SortedBatchSampler(list(range(1, 11)), batch_size=2, sort_window=100, seed=0)
    full = list(inner)
    shards = [list(ShardedBatchSampler(inner, r, 3)) for r in range(3)]
    assert sorted(i for shard in shards for b in shard for i in b) == list(range(10))
    resumed = ShardedBatchSampler(inner, 0, 1)
    resumed.start_at(2)
    assert list(resumed) == full[2:]


def test_batches_are_cut_on_speed_perturbed_durations():
    durations = _durations()
    factors = np.random.default_rng(0).choice([0.9, 1.0, 1.1], size=len(durations))
    s = DurationBatchSampler(durations, 45.0, 10, seed=0, speed_factors=lambda epoch: factors)
    perturbed = durations / factors
    batches = list(s)
    assert sorted(i for b in batches for i in b) == list(range(len(durations)))
    for batch in batches:
        assert len(batch) == 1 or perturbed[batch].max() * len(batch) <= 45.0
    assert padding_efficiency(batches, perturbed) > padding_efficiency(batches, durations)


def test_early_epochs_use_the_early_batch_size():
    durations = _durations()
    sampler = DurationBatchSampler(
        durations, 120.0, seed=1, early_batch_seconds=30.0, early_epochs=2
    )
    lengths = sampler.epoch_lengths(4)
    assert lengths[0] > 3 * lengths[2] and lengths[1] > 3 * lengths[3]
    for epoch, limit in ((0, 30.0), (1, 30.0), (2, 120.0), (3, 120.0)):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == lengths[epoch]
        assert sorted(i for b in batches for i in b) == list(range(len(durations)))
        assert all(len(b) == 1 or durations[b].max() * len(b) <= limit for b in batches)
    plain = DurationBatchSampler(durations, 120.0, seed=1)
    plain.set_epoch(3)  # the sampler's epoch after the loop
    assert list(plain) == list(sampler)  # later epochs: as if there were no early batches
