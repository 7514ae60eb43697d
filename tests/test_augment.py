"""Augmentation: length bookkeeping, masks within valid frames, noise at the asked SNR."""

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.features import FeatureConfig, FeatureExtractor, frame_count
from asr.model import AcousticModel, ModelConfig
from asr.training.augment import (
    AugmentConfig,
    AugmentedDataset,
    SpecAugment,
    add_noise,
    band_limit,
    reverberate,
    room_impulse,
    speed_perturb,
    speed_perturbed_length,
)


@pytest.mark.parametrize(
    "num_samples,speed,expected",
    [(16000, 1.0, 16000), (16000, 1.1, 14546), (16000, 0.9, 17778), (1001, 1.1, 910)],
)
def test_speed_perturbed_length(num_samples, speed, expected):
    wave = torch.randn(num_samples)
    assert speed_perturbed_length(num_samples, speed) == expected
    assert len(speed_perturb(wave, speed)) == expected


@pytest.mark.parametrize("speed", [0.9, 1.0, 1.1])
def test_speed_perturbed_frames_match_model_output_lengths(speed):
    torch.manual_seed(0)
    waves = [speed_perturb(torch.randn(n), speed) for n in (8000, 12345, 16000)]
    lens = torch.tensor([len(w) for w in waves])
    batch = torch.zeros(len(waves), int(lens.max()))
    for i, w in enumerate(waves):
        batch[i, : len(w)] = w
    extractor = FeatureExtractor(FeatureConfig(normalization="utterance"))
    feats, feat_lens = extractor(batch, lens)
    assert feat_lens.tolist() == [frame_count(len(w), 160) for w in waves]
    model = AcousticModel(ModelConfig(num_layers=1, hidden_size=8, conv_channels=4), 80, 30)
    log_probs, out_lens = model(feats, feat_lens)
    assert out_lens.tolist() == model.output_lengths(feat_lens).tolist()
    assert log_probs.shape[1] == int(out_lens.max())


def test_spec_augment_masks_only_real_frames():
    torch.manual_seed(0)
    feats = torch.randn(3, 200, 80)
    feat_lens = torch.tensor([200, 120, 60])
    feats[1, 120:] = 0.0
    feats[2, 60:] = 0.0
    cfg = AugmentConfig(spec_augment=True, time_mask_ratio=0.2, time_mask_width=30)
    out = SpecAugment(cfg)(feats, feat_lens)
    assert out.shape == feats.shape
    assert torch.equal(out[1, 120:], feats[1, 120:]) and torch.equal(out[2, 60:], feats[2, 60:])
    for i, n in enumerate(feat_lens.tolist()):
        masked_frames = (out[i, :n] == 0).all(dim=1).sum()
        masked_bins = (out[i, :n] == 0).all(dim=0).sum()
        assert masked_frames > 0 and masked_bins > 0  # both kinds of mask were applied
        assert masked_frames <= cfg.time_masks * min(30, int(0.2 * n))


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 25.0])
def test_add_noise_reaches_the_snr(snr_db):
    gen = torch.Generator().manual_seed(0)
    clean = torch.randn(16000, generator=gen)
    noise = 3.0 * torch.randn(16000, generator=gen)
    noisy = add_noise(clean, noise, snr_db)
    measured = 10 * torch.log10(clean.square().mean() / (noisy - clean).square().mean())
    assert float(measured) == pytest.approx(snr_db, abs=1e-3)


class _Waves:
    """A stand-in SpeechDataset: fixed waveforms, empty targets."""

    def __init__(self, lengths):
        self.waves = [torch.sin(torch.arange(n) * 0.05) for n in lengths]
        self.utterances = list(range(len(lengths)))
        self.sample_rate = 16000

    def __len__(self):
        return len(self.waves)

    def __getitem__(self, i):
        return self.waves[i], torch.zeros(0, dtype=torch.long)


def test_augmented_dataset_is_seeded_by_epoch_and_index():
    cfg = AugmentConfig(speed_perturb=True, noise_prob=1.0)
    ds = AugmentedDataset(_Waves([16000] * 8), cfg, seed=0)
    first = [ds[i][0] for i in range(8)]
    assert all(torch.equal(a, ds[i][0]) for i, a in enumerate(first))
    factors = ds.speed_factors(0)
    assert [len(w) for w in first] == [speed_perturbed_length(16000, f) for f in factors]
    assert len(set(factors.tolist())) > 1
    ds.epoch = 1
    assert any(not torch.equal(a, ds[i][0]) for i, a in enumerate(first))


def test_noise_from_a_folder_is_tiled_to_length(tmp_path):
    sf.write(tmp_path / "hum.wav", 0.1 * np.ones(500, np.float32), 16000)
    cfg = AugmentConfig(noise_prob=1.0, noise_dir=str(tmp_path), snr_min=10, snr_max=10)
    ds = AugmentedDataset(_Waves([4000]), cfg, seed=0)
    wave, _ = ds[0]
    assert wave.shape == (4000,)
    added = wave - ds.base[0][0]
    assert torch.allclose(added, added[0].expand(4000), atol=1e-4)  # the constant hum


def test_missing_noise_folder_is_named(tmp_path):
    cfg = AugmentConfig(noise_prob=1.0, noise_dir=str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="nope"):
        AugmentedDataset(_Waves([100]), cfg, seed=0)


def _level_db(wave: torch.Tensor, sample_rate: int, hz: float) -> float:
    """The level of `hz` in `wave`, dB (its bin of the spectrum)."""
    spectrum = torch.fft.rfft(wave).abs()
    return 20 * float(torch.log10(spectrum[round(hz * len(wave) / sample_rate)]))


def test_band_limit_passes_speech_and_cuts_outside_the_band():
    t = torch.arange(16000) / 16000
    tones = {hz: torch.sin(2 * torch.pi * hz * t) for hz in (60, 1000, 6000)}
    cut = {hz: _level_db(band_limit(w, 16000, 200, 3400), 16000, hz) - _level_db(w, 16000, hz)
           for hz, w in tones.items()}  # fmt: skip
    assert abs(cut[1000]) < 1.0
    assert cut[60] < -30 and cut[6000] < -30


def test_room_impulse_decays_at_its_reverberation_time():
    rng = np.random.default_rng(0)
    impulse = room_impulse(0.5, 6.0, 16000, rng)
    assert impulse.shape == (8000,) and impulse[0] == 1.0
    tail = impulse[1:].square()
    assert 10 * np.log10(1 / float(tail.sum())) == pytest.approx(6.0, abs=1e-3)  # the DRR
    early, late = tail[:800].mean(), tail[-800:].mean()  # first and last 50 ms
    assert 10 * np.log10(float(early / late)) > 40  # ~54 dB of the 60 over 0.45 s


def test_reverberation_keeps_length_and_level_and_smears_a_click():
    click = torch.zeros(16000)
    click[100] = 1.0
    impulse = room_impulse(0.3, 0.0, 16000, np.random.default_rng(1))
    wet = reverberate(click, impulse)
    assert wet.shape == click.shape
    assert float(wet.square().mean()) == pytest.approx(float(click.square().mean()), rel=1e-3)
    assert float(wet[2000:4000].abs().max()) > 1e-3  # the click rings on 0.1-0.25 s later


def test_channel_draws_are_seeded_and_leave_noise_draws_alone():
    base = _Waves([16000] * 16)
    plain = AugmentedDataset(base, AugmentConfig(noise_prob=1.0), seed=0)
    cfg = AugmentConfig(noise_prob=1.0, reverb_prob=0.5, band_prob=0.5, rt60_max=0.4)
    roomy = AugmentedDataset(base, cfg, seed=0)
    channels = [roomy.channel(i)[0] for i in range(16)]
    assert channels == [roomy.channel(i)[0] for i in range(16)]
    assert any(c.room for c in channels) and any(not c.room for c in channels)
    assert any(c.band for c in channels) and any(not c.band for c in channels)
    for c in channels:
        assert c.room is None or 0.2 <= c.room[0] <= 0.4
        assert c.band is None or (50 <= c.band[0] <= 300 and 3000 <= c.band[1] <= 7000)
    untouched = [i for i, c in enumerate(channels) if not c.touched]
    assert untouched and all(torch.equal(roomy[i][0], plain[i][0]) for i in untouched)
    touched = [i for i, c in enumerate(channels) if c.touched]
    assert all(not torch.equal(roomy[i][0], plain[i][0]) for i in touched)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"speeds": [0.0, 1.0]},
        {"noise_prob": 1.5},
        {"snr_min": 20, "snr_max": 10},
        {"rt60_min": 0.9, "rt60_max": 0.5},
        {"lowpass_max": 9000},
        {"band_prob": -0.1},
        {"highpass_max": 3500, "lowpass_min": 3000},
    ],
)
def test_bad_config_is_rejected(kwargs):
    with pytest.raises(ValueError):
        AugmentConfig(**kwargs)


def test_vtlp_identity_and_direction():
    from asr.training.augment import vtlp_source_bins, warp_mel

    feats = torch.randn(3, 7, 80)
    same = warp_mel(feats, torch.ones(3), 0.8)
    torch.testing.assert_close(same, feats)
    source = vtlp_source_bins(80, torch.tensor([0.9, 1.1]), 0.8)  # (2, 80)
    assert source[:, 0].tolist() == [0.0, 0.0] and source[:, -1].tolist() == [79.0, 79.0]
    assert bool((source[:, 1:] >= source[:, :-1]).all())  # monotonic: no folded spectrum
    # alpha 1.1 reads lower bins (content moves up), alpha 0.9 higher ones
    assert source[1, 40] < 40 < source[0, 40]
    # a peak at bin 30 moves to about 33 with alpha 1.1
    peak = torch.zeros(1, 1, 80)
    peak[0, 0, 30] = 1.0
    warped = warp_mel(peak, torch.tensor([1.1]), 0.8)
    assert int(warped[0, 0].argmax()) == 33


def test_vtlp_runs_without_spec_augment_masks():
    torch.manual_seed(0)
    cfg = AugmentConfig(vtlp=0.1)
    assert cfg.feature_enabled and not cfg.spec_augment
    feats = torch.randn(2, 50, 80)
    out = SpecAugment(cfg)(feats, torch.tensor([50, 30]))
    assert out.shape == feats.shape and not torch.equal(out, feats)
    assert bool((out != 0).all())  # warped, not masked
    with pytest.raises(ValueError, match="vtlp"):
        AugmentConfig(vtlp=0.7)
