"""Long recordings: chunks cover the file, cuts fall in pauses, stitched times are right,
and peak memory does not grow with the file's length."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
from helpers import ToneOracleRecognizer, assert_written

from asr.corpora.tones import ToneConfig, random_sentence, render_tones_timed
from asr.decode import DecodingOptions
from asr.inference.segment import SegmentConfig, iter_chunks

SR = 16_000


def _long_recording(num_sentences: int, seed: int = 0):
    """Tone sentences back to back: waveform, text, and (word, start, end) in file time.

    Each sentence but the last ends with a space chord, the "word boundary" between it
    and the next one; the silence around sentences is the pause a chunk may end in.
    """
    rng, text_rng = np.random.default_rng(seed), random.Random(seed)
    waves, texts, truth, offset = [], [], [], 0.0
    for i in range(num_sentences):
        text = random_sentence(text_rng, max_words=6)
        spoken = text if i == num_sentences - 1 else text + " "
        wave, words = render_tones_timed(spoken, rng, ToneConfig())
        waves.append(wave)
        texts.append(text)
        truth += [(w, offset + s, offset + e) for w, s, e in words]
        offset += len(wave) / SR
    return np.concatenate(waves), " ".join(texts), truth


@pytest.mark.parametrize("max_seconds", [8.0, 12.0])
def test_chunks_cover_the_file_and_cut_in_pauses(tmp_path, max_seconds):
    wave, _, truth = _long_recording(20)
    path = tmp_path / "long.wav"
    sf.write(path, wave, SR, subtype="FLOAT")
    chunks = list(iter_chunks(path, SR, SegmentConfig(max_seconds=max_seconds)))
    assert len(chunks) > 1
    assert np.array_equal(np.concatenate([c.wave for c in chunks]), wave)
    position = 0
    for chunk in chunks:
        assert chunk.start == position and len(chunk.wave) <= max_seconds * SR
        position += len(chunk.wave)
        cut = chunk.start / SR
        assert not any(s < cut < e for _, s, e in truth), f"cut at {cut:.2f}s splits a word"


def test_a_stretch_without_pauses_is_cut_at_the_limit():
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(25 * SR) / SR).astype(np.float32)
    chunks = list(iter_chunks(tone, SR, SegmentConfig(max_seconds=10.0)))
    assert [len(c.wave) for c in chunks] == [10 * SR, 10 * SR, 5 * SR]


def test_long_recording_is_stitched_with_correct_times(tmp_path):
    wave, text, truth = _long_recording(60)  # about two minutes
    path = tmp_path / "long.wav"
    sf.write(path, wave, SR, subtype="FLOAT")
    recognizer = ToneOracleRecognizer()
    segment = SegmentConfig(max_seconds=10.0)
    result = recognizer.transcribe(
        path, DecodingOptions(), batch_size=4, word_timestamps=True, segment=segment
    )[0]
    assert result.chunks >= len(wave) / SR / 10
    assert result.duration == pytest.approx(len(wave) / SR)
    assert result.raw_text == text
    assert_written(result.text, text)  # the stitched words, written as one text
    errors = [
        max(abs(w.start - s), abs(w.end - e))
        for w, (_, s, e) in zip(result.words, truth, strict=True)
    ]
    assert max(errors) < 0.1


_MEMORY_PROBE = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np, soundfile as sf, torch
    from asr.features import FeatureConfig, FeatureExtractor
    from asr.model import AcousticModel, ModelConfig
    from asr.inference.runtime_torch import TorchRunner
    from asr.inference.segment import SegmentConfig
    from asr.text import Vocabulary
    from asr.inference.recognizer import Recognizer

    torch.manual_seed(0)
    torch.set_num_threads(1)
    cfg = FeatureConfig(normalization="utterance")
    model = AcousticModel(ModelConfig(num_layers=1, hidden_size=16, conv_channels=4), 80, 29)
    recognizer = Recognizer(TorchRunner(FeatureExtractor(cfg), model, Vocabulary.english()))
    segment = SegmentConfig(max_seconds=20.0)
    # Warm up (lazy imports, first full batch of chunks) on 3 min, then measure the file.
    warmup = np.random.default_rng(0).standard_normal(180 * 16000).astype(np.float32)
    recognizer.transcribe(0.01 * warmup, batch_size=4, segment=segment)
    del warmup
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = recognizer.transcribe(sys.argv[1], batch_size=4, segment=segment)[0]
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"growth_kib": after - before, "chunks": result.chunks}))
    """
)


def _peak_growth(path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_length(tmp_path):
    rng = np.random.default_rng(0)
    for minutes in (2, 20):
        noise = (0.01 * rng.standard_normal(minutes * 60 * SR)).astype(np.float32)
        sf.write(tmp_path / f"{minutes}.wav", noise, SR, subtype="PCM_16")
    short, long = _peak_growth(tmp_path / "2.wav"), _peak_growth(tmp_path / "20.wav")
    assert long["chunks"] >= 10 * short["chunks"] - 1
    # The 20-minute waveform alone is 75 MiB as float32; reading it whole would show here.
    assert long["growth_kib"] - short["growth_kib"] < 16 * 1024, (short, long)
