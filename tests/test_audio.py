import numpy as np
import pytest
import soundfile as sf

from asr.audio import AudioError, audio_info, load_audio


def test_reads_mono_16k(wav_file, noise):
    samples = noise(1.0)
    out = load_audio(wav_file(samples))
    assert out.dtype == np.float32 and out.shape == (16_000,)
    np.testing.assert_allclose(out, samples, atol=1e-4)  # 16-bit quantization


def test_downmixes_stereo(wav_file, noise):
    left, right = noise(0.5, seed=1), noise(0.5, seed=2)
    out = load_audio(wav_file(np.stack([left, right], axis=1)))
    np.testing.assert_allclose(out, (left + right) / 2, atol=1e-4)


@pytest.mark.parametrize("rate", [8_000, 22_050, 44_100, 48_000])
def test_resamples_to_16k(wav_file, rate):
    t = np.arange(rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = load_audio(wav_file(tone, rate))
    assert abs(len(out) - 16_000) <= 1
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * 16_000 / len(out) - 440) < 2  # still a 440 Hz tone


def test_other_formats(tmp_path, noise):
    path = tmp_path / "a.flac"
    sf.write(path, noise(0.5), 16_000)
    assert load_audio(path).shape == (8_000,)
    ogg = tmp_path / "a.ogg"
    sf.write(ogg, noise(0.5), 16_000, format="OGG", subtype="VORBIS")
    assert abs(len(load_audio(ogg)) - 8_000) < 200


def test_silence_is_valid(wav_file):
    assert not load_audio(wav_file(np.zeros(1600, np.float32))).any()


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="nope.wav: no such audio file"):
        load_audio(tmp_path / "nope.wav")


def test_not_audio(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio")
    with pytest.raises(AudioError, match="notes.wav: not a readable audio file"):
        load_audio(path)


def test_empty_audio(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, np.float32), 16_000)
    with pytest.raises(AudioError, match="empty.wav"):
        load_audio(path)


def test_truncated_audio(tmp_path, noise):
    path = tmp_path / "cut.flac"
    sf.write(path, noise(2.0), 16_000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match="cut.flac"):
        load_audio(path)


def test_info_reads_header(wav_file, noise):
    info = audio_info(wav_file(noise(1.5, 8_000), 8_000))
    assert (info.sample_rate, info.channels, info.frames) == (8_000, 1, 12_000)
    assert info.duration == pytest.approx(1.5)
