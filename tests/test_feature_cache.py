"""The feature cache: cached frames equal computed ones, and nothing stale is ever served."""

import os

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.cli import main
from asr.config import apply_overrides
from asr.corpora.tones import make_tone_corpus
from asr.features import FeatureConfig, FeatureExtractor
from asr.manifest import read_manifest
from asr.text import Vocabulary
from asr.training.augment import AugmentConfig, AugmentedDataset, speed_perturb
from asr.training.config import ExperimentConfig
from asr.training.data import SpeechDataset, collate
from asr.training.feature_cache import CachedFeatureDataset, FeatureCache, cache_speeds
from asr.training.trainer import build_trainer


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_tone_corpus(tmp_path_factory.mktemp("tones"), 6, seed=2)


def _computed(path: str, speed: float, cfg: FeatureConfig) -> torch.Tensor:
    """(T, F) raw log-mel as the waveform path computes it, batched on the device."""
    wave, rate = sf.read(path, dtype="float32")
    assert rate == cfg.sample_rate
    wave = speed_perturb(torch.from_numpy(wave), speed)
    feats, _ = FeatureExtractor(cfg).raw(wave[None], torch.tensor([len(wave)]))
    return feats[0]


@pytest.mark.parametrize("speed", [0.9, 1.0, 1.1])
def test_cached_frames_equal_computed_ones(tmp_path, corpus, speed):
    cfg = FeatureConfig()
    cache = FeatureCache(tmp_path, cfg)
    path = read_manifest(corpus)[0].audio_filepath
    expected = _computed(path, speed, cfg)
    first = cache.get(path, speed)  # computed, stored
    again = cache.get(path, speed)  # read back from the fp16 entry
    assert cache.entry(path, speed).is_file()
    assert first.shape == again.shape == expected.shape
    torch.testing.assert_close(first, expected, atol=1e-4, rtol=1e-5)
    # fp16 keeps 11 bits: log-mel values of at most ~15 in magnitude are within 0.01
    torch.testing.assert_close(again, expected, atol=1e-2, rtol=1e-3)


def test_a_changed_file_is_not_served_stale(tmp_path, corpus):
    cache = FeatureCache(tmp_path / "cache", FeatureConfig())
    src = read_manifest(corpus)[0].audio_filepath
    path = tmp_path / "a.wav"
    wave, rate = sf.read(src, dtype="float32")
    sf.write(path, wave, rate)
    before = cache.get(path)
    sf.write(path, 0.5 * wave, rate)  # same size, new samples
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # coarse clocks
    after = cache.get(path)
    torch.testing.assert_close(after, _computed(str(path), 1.0, FeatureConfig()), atol=1e-2, rtol=0)
    assert not torch.allclose(before, after)  # 0.5x amplitude: log-mel lower by log(4)


def test_a_changed_feature_config_is_another_entry(tmp_path, corpus):
    path = read_manifest(corpus)[0].audio_filepath
    default = FeatureCache(tmp_path, FeatureConfig())
    fewer = FeatureCache(tmp_path, FeatureConfig(n_mels=40))
    assert default.entry(path, 1.0) != fewer.entry(path, 1.0)
    assert default.entry(path, 1.0) != default.entry(path, 1.1)
    assert fewer.get(path).shape[1] == 40 and default.get(path).shape[1] == 80
    # the normalization is applied after the cache: one entry serves both
    per_utt = FeatureCache(tmp_path, FeatureConfig(normalization="utterance"))
    assert per_utt.entry(path, 1.0) == default.entry(path, 1.0)


@pytest.mark.parametrize(
    "channel", [{}, {"reverb_prob": 0.5, "band_prob": 0.5}], ids=["speeds", "room-and-band"]
)
def test_cached_dataset_draws_the_waveform_path_speeds(tmp_path, corpus, channel):
    """Epoch by epoch, each utterance gets the speed factor (and the room and band)
    AugmentedDataset gives it."""
    utts = read_manifest(corpus)
    base = SpeechDataset(utts, Vocabulary.english(), 16_000)
    cfg = AugmentConfig(speed_perturb=True, **channel)
    cache = FeatureCache(tmp_path, FeatureConfig())
    cached = CachedFeatureDataset(base, cfg, seed=3, cache=cache)
    waves = AugmentedDataset(base, cfg, seed=3)
    for epoch in (0, 1):
        cached.epoch = waves.epoch = epoch
        np.testing.assert_array_equal(cached.speed_factors(epoch), waves.speed_factors(epoch))
        for i in range(len(base)):
            feats, targets = cached[i]
            wave, wave_targets = waves[i]
            expected, _ = FeatureExtractor(FeatureConfig()).raw(
                wave[None], torch.tensor([len(wave)])
            )
            torch.testing.assert_close(feats, expected[0], atol=1e-2, rtol=1e-3)
            assert targets.tolist() == wave_targets.tolist()
    batch = collate([cached[i] for i in range(3)])
    assert batch.is_features and batch.inputs.shape[0] == 3 and batch.inputs.shape[2] == 80


def test_training_builds_the_cache_and_cli_reuses_it(tmp_path, corpus, capsys):
    root = tmp_path / "cache"
    sets = [
        f'data.train_manifest="{corpus}"',
        f'data.feature_cache_dir="{root}"',
        "augment.speed_perturb=true",
        "train.stats_utterances=4",
        "train.tensorboard=false",
    ]
    cfg = apply_overrides(ExperimentConfig(), sets)
    tr = build_trainer(cfg, tmp_path / "exp")
    assert isinstance(tr.train_loader.dataset, CachedFeatureDataset)
    entries = sorted(root.rglob("*.feat"))
    assert len(entries) == 6 * len(cache_speeds(cfg.augment)) == 18
    assert not list(root.rglob("*.tmp"))
    config = tmp_path / "c.toml"
    config.write_text(f'[data]\ntrain_manifest = "{corpus}"\nfeature_cache_dir = "{root}"\n'
                      "[augment]\nspeed_perturb = true\n")  # fmt: skip
    assert main(["data", "features", "--config", str(config)]) == 0
    assert "0 built (0 of them damaged), 18 present" in capsys.readouterr().out
    assert sorted(root.rglob("*.feat")) == entries


def _damage(entry, how: str) -> None:
    raw = bytearray(entry.read_bytes())
    if how == "truncated":
        raw = raw[: len(raw) // 2]
    elif how == "empty":
        raw = b""
    elif how == "NaN bytes":
        raw[40:48] = b"\xff\x7f" * 4  # fp16 NaN
    elif how == "flipped bit":
        raw[len(raw) // 2] ^= 0x10
    elif how == "changed shape":  # frames and mel bands swapped in the header: same size
        frames, n_mels = int.from_bytes(raw[4:8], "little"), int.from_bytes(raw[8:12], "little")
        raw[4:8], raw[8:12] = n_mels.to_bytes(4, "little"), frames.to_bytes(4, "little")
    entry.write_bytes(bytes(raw))


DAMAGE = ["truncated", "empty", "NaN bytes", "flipped bit", "changed shape"]


@pytest.mark.parametrize("how", DAMAGE)
def test_a_damaged_entry_is_named_and_rebuilt(tmp_path, corpus, how, caplog):
    cache = FeatureCache(tmp_path, FeatureConfig())
    path = read_manifest(corpus)[0].audio_filepath
    whole = cache.get(path)
    entry = cache.entry(path, 1.0)
    _damage(entry, how)
    again = cache.get(path)  # computed again, not read from the damaged entry
    torch.testing.assert_close(again, _computed(path, 1.0, FeatureConfig()), atol=1e-4, rtol=0)
    assert f"{entry}: damaged feature-cache entry" in caplog.text
    assert torch.equal(cache.get(path), whole.half().float())  # the entry is whole again


def test_data_features_counts_damaged_entries(tmp_path, corpus, capsys, caplog):
    root = tmp_path / "cache"
    config = tmp_path / "c.toml"
    config.write_text(f'[data]\ntrain_manifest = "{corpus}"\nfeature_cache_dir = "{root}"\n')
    assert main(["data", "features", "--config", str(config)]) == 0
    entries = sorted(root.rglob("*.feat"))
    for entry, how in zip(entries, DAMAGE, strict=False):
        _damage(entry, how)
    capsys.readouterr()
    assert main(["data", "features", "--config", str(config)]) == 0
    assert "5 built (5 of them damaged), 1 present" in capsys.readouterr().out
    assert caplog.text.count("damaged feature-cache entry") == 5
    cache = FeatureCache(root, FeatureConfig())
    assert cache.build([u.audio_filepath for u in read_manifest(corpus)], [1.0]).damaged == 0


def test_data_features_on_a_full_disk_names_it(tmp_path, corpus, capsys):
    from test_bad_input import fill_disk, small_disk

    config = tmp_path / "c.toml"
    with small_disk(tmp_path / "disk", "1M") as disk:
        root = disk / "cache"
        config.write_text(f'[data]\ntrain_manifest = "{corpus}"\nfeature_cache_dir = "{root}"\n')
        (root / "00").mkdir(parents=True)
        fill_disk(disk)
        assert main(["data", "features", "--config", str(config)]) == 2
        err = capsys.readouterr().err
        assert ".feat: cannot write: no space left on the device (disk full)" in err
        assert not list(root.rglob("*.tmp"))
