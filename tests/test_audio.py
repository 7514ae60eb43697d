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


@pytest.mark.parametrize("rate", [16001, 44101, 11127, 22254, 7996])
def test_odd_rates_resample_in_bounded_memory(rate, tmp_path):
    """Once, 1 s at 16001 Hz took 6.1 GB (a filter per output phase of 16000/gcd); now the
    ratio is the nearest one with at most MAX_PHASES filters, within 0.05% of the speed."""
    import tracemalloc

    from asr.audio import MAX_PHASES, load_audio, resampling_ratio

    t = np.arange(rate) / rate
    sf.write(tmp_path / "odd.wav", 0.5 * np.sin(2 * np.pi * 440 * t), rate)
    tracemalloc.start()
    wave = load_audio(tmp_path / "odd.wav", 16_000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 64 * 2**20, peak
    orig, new = resampling_ratio(rate, 16_000)
    assert new <= MAX_PHASES and abs(orig / new - rate / 16_000) <= 5.01e-4 * rate / 16_000
    assert abs(len(wave) - 16_000) <= 16  # one second, near enough
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    assert abs(np.argmax(spectrum) * 16_000 / len(wave) - 440) < 2  # the tone kept its pitch


def test_common_rates_keep_their_exact_ratio():
    from asr.audio import resampling_ratio

    exact = {8000: (1, 2), 11025: (441, 640), 22050: (441, 320), 44100: (441, 160), 48000: (3, 1)}
    assert {r: resampling_ratio(r, 16_000) for r in exact} == exact


@pytest.mark.parametrize("rate", [1, 999])
def test_rates_below_audio_are_refused_from_the_header(rate, tmp_path):
    from asr.audio import AudioError, audio_info

    sf.write(tmp_path / "slow.wav", np.zeros(6000, np.float32), rate)  # 6000 s at 1 Hz
    with pytest.raises(AudioError, match=f"slow.wav: sample rate {rate} Hz is not audio"):
        audio_info(tmp_path / "slow.wav")


def test_a_file_of_hundreds_of_channels_is_refused_from_the_header(tmp_path):
    from asr.audio import AudioError, audio_info

    sf.write(tmp_path / "wide.wav", np.zeros((10, 200), np.float32), 16_000)
    with pytest.raises(AudioError, match="wide.wav: 200 channels; at most 64"):
        audio_info(tmp_path / "wide.wav")


def _mp3(path, seconds: float = 10.0):
    t = np.arange(int(seconds * 16_000)) / 16_000
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16_000, format="MP3")
    return path.read_bytes()


def test_truncated_mp3_is_named(tmp_path):
    # soundfile's blocks() would yield the header's 10 s, the missing part stale memory
    data = _mp3(tmp_path / "whole.mp3")
    (tmp_path / "cut.mp3").write_bytes(data[: len(data) // 3])
    assert audio_info(tmp_path / "cut.mp3").frames == 160_000  # the Xing header's promise
    with pytest.raises(AudioError, match=r"cut.mp3: truncated: .* 160000 frames, only \d+"):
        load_audio(tmp_path / "cut.mp3")
    assert len(load_audio(tmp_path / "whole.mp3")) == 160_000


def test_mp3_whose_header_claims_more_is_named(tmp_path):
    data = bytearray(_mp3(tmp_path / "whole.mp3", 2.0))
    at = data.index(b"Xing") + 8  # flags (4 bytes), then the frame count, big-endian
    data[at : at + 4] = (600 * 16_000 // 576).to_bytes(4, "big")  # 600 s of 576-sample frames
    (tmp_path / "liar.mp3").write_bytes(bytes(data))
    assert audio_info(tmp_path / "liar.mp3").duration > 500
    with pytest.raises(AudioError, match="liar.mp3: truncated"):
        load_audio(tmp_path / "liar.mp3")


def test_float_wav_scaled_like_int16_is_named(tmp_path, noise):
    path = tmp_path / "int_scaled.wav"
    sf.write(path, noise(0.5) * 32767, 16_000, subtype="FLOAT")
    with pytest.raises(AudioError, match="int_scaled.wav: float samples reach .* 16-bit"):
        load_audio(path)
    sf.write(path, np.clip(noise(0.5) * 3, -1.5, 1.5), 16_000, subtype="FLOAT")  # clips: kept
    assert len(load_audio(path)) == 8_000


def test_a_file_name_that_is_not_utf8_is_read(tmp_path, noise):
    import os

    name = os.fsdecode(b"caf\xe9.wav")  # Latin-1: a surrogate escape in Python
    sf.write(tmp_path / "plain.wav", noise(0.5), 16_000)
    os.rename(tmp_path / "plain.wav", tmp_path / name)
    assert audio_info(tmp_path / name).frames == 8_000  # was "surrogates not allowed"
    assert len(load_audio(tmp_path / name)) == 8_000
