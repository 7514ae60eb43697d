import librosa
import numpy as np
import pytest
import torch

from asr.features import FeatureConfig, FeatureExtractor, frame_count

CFG = FeatureConfig()


def librosa_log_mel(samples: np.ndarray) -> np.ndarray:
    mel = librosa.feature.melspectrogram(
        y=samples,
        sr=16_000,
        n_fft=400,
        hop_length=160,
        win_length=400,
        window="hann",
        center=True,
        pad_mode="constant",
        power=2.0,
        n_mels=80,
        fmin=0.0,
        fmax=8000.0,
    )  # (n_mels, T), slaney mel scale and normalization
    return np.log(mel.T + 1e-6)


@pytest.mark.parametrize("seconds", [0.05, 1.0, 2.37])
def test_matches_librosa(noise, seconds):
    """Stated tolerance: 1e-3 absolute on natural-log mel power (float32 STFT vs float64)."""
    samples = noise(seconds)
    feats, lens = FeatureExtractor(CFG).raw(
        torch.from_numpy(samples)[None], torch.tensor([len(samples)])
    )
    expected = librosa_log_mel(samples)
    assert feats.shape == (1, *expected.shape) and int(lens[0]) == expected.shape[0]
    np.testing.assert_allclose(feats[0].numpy(), expected, atol=1e-3)


def test_frame_count():
    assert frame_count(16_000, 160) == 101
    assert torch.equal(frame_count(torch.tensor([0, 159, 160]), 160), torch.tensor([1, 1, 2]))


@pytest.mark.parametrize("normalization", ["global", "utterance", "none"])
def test_padded_batch_equals_item_by_item(noise, normalization):
    extractor = FeatureExtractor(FeatureConfig(normalization=normalization))
    extractor.set_global_stats(torch.full((80,), -5.0), torch.full((80,), 3.0))
    items = [torch.from_numpy(noise(s, seed=i)) for i, s in enumerate([1.0, 0.31, 0.77])]
    batch = torch.nn.utils.rnn.pad_sequence(items, batch_first=True)
    lens = torch.tensor([len(x) for x in items])
    feats, feat_lens = extractor(batch, lens)
    for i, item in enumerate(items):
        alone, alone_lens = extractor(item[None], lens[i : i + 1])
        n = int(alone_lens[0])
        assert int(feat_lens[i]) == n
        torch.testing.assert_close(feats[i, :n], alone[0], atol=1e-4, rtol=1e-4)
        assert not feats[i, n:].any()  # padding frames are zero


def test_global_normalization_uses_stats(noise):
    extractor = FeatureExtractor(CFG)
    samples = torch.from_numpy(noise(0.5))[None]
    lens = torch.tensor([samples.shape[1]])
    raw, _ = extractor.raw(samples, lens)
    extractor.set_global_stats(raw[0].mean(0), raw[0].std(0))
    feats, _ = extractor(samples, lens)
    torch.testing.assert_close(feats[0].mean(0), torch.zeros(80), atol=1e-4, rtol=0)


def test_rejects_bad_config():
    with pytest.raises(ValueError, match="normalization"):
        FeatureConfig(normalization="cepstral")


def test_every_normalization_and_decoder_table_has_its_twin():
    """One name table each: the torch normalizations are the numpy ones, the streaming
    searches are the whole-file decoders, so a name added to one and not the other fails."""
    from asr.decode import DECODERS
    from asr.features import _TORCH_NORMALIZE
    from asr.inference.stream import STREAM_DECODERS
    from asr.logmel import NORMALIZERS

    assert list(_TORCH_NORMALIZE) == list(NORMALIZERS)
    assert list(STREAM_DECODERS) == list(DECODERS)
    assert [n for n, norm in NORMALIZERS.items() if not norm.streams] == ["utterance"]


@pytest.mark.parametrize("normalization", ["global", "running", "none"])
def test_a_streaming_normalizer_fed_in_pieces_equals_the_batch(normalization):
    from asr.logmel import NORMALIZERS

    rng = np.random.default_rng(0)
    feats = rng.normal(-5, 2, (1, 50, 8)).astype(np.float32)
    mean, std = np.full(8, -4.0, np.float32), np.full(8, 1.5, np.float32)
    whole = NORMALIZERS[normalization](mean, std).batch(feats, np.array([50]))
    stream = NORMALIZERS[normalization](mean, std)
    pieces = np.concatenate([stream(feats[0, :17]), stream(feats[0, 17:])])
    np.testing.assert_allclose(pieces, whole[0], atol=1e-5)
    assert normalization == "none" or not np.allclose(whole, feats)
