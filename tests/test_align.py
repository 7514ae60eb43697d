"""Word timestamps and confidence on synthesized tone speech with known word boundaries."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import VOCAB, ToneOracleRecognizer, text_log_probs

from asr.corpora.tones import ToneConfig, random_sentence, render_tones_timed
from asr.decode import DecodingOptions
from asr.frames import frame_seconds
from asr.inference.align import align_words

TOLERANCE = 0.1  # seconds


def _boundary_errors(recognizer, sentences, options):
    rng = np.random.default_rng(0)
    errors = []
    for text in sentences:
        wave, truth = render_tones_timed(text, rng, ToneConfig())
        result = recognizer.transcribe(wave, options, word_timestamps=True)[0]
        assert result.raw_text == text  # the spoken words the times are for
        assert [w.word for w in result.words] == text.split()
        for word, (_, start, end) in zip(result.words, truth, strict=True):
            errors += [abs(word.start - start), abs(word.end - end)]
            assert 0.0 <= word.confidence <= 1.0
    return np.array(errors)


@pytest.mark.parametrize("decoder", ["greedy", "beam"])
def test_word_times_within_100ms_of_the_truth(decoder):
    import random

    sentences = [random_sentence(random.Random(seed), max_words=6) for seed in range(12)]
    errors = _boundary_errors(ToneOracleRecognizer(), sentences, DecodingOptions(decoder=decoder))
    # Measured: all 78 starts and ends of these 39 words within 24 ms (mean 12 ms).
    assert (errors <= TOLERANCE).mean() >= 0.95
    assert np.median(errors) < 0.04


def test_frame_seconds_is_hop_times_subsampling():
    assert frame_seconds(160, 4, 16_000) == pytest.approx(0.04)
    assert frame_seconds(160, 1, 8_000) == pytest.approx(0.02)


def test_offset_shifts_every_word():
    log_probs = text_log_probs("we go", frames_per_token=4)
    ids = VOCAB.encode("we go")
    plain = align_words(log_probs, ids, VOCAB, 0.04)
    shifted = align_words(log_probs, ids, VOCAB, 0.04, offset=12.5)
    assert [w.word for w in plain] == ["we", "go"]
    for a, b in zip(plain, shifted, strict=True):
        assert b.start == pytest.approx(a.start + 12.5) and b.end == pytest.approx(a.end + 12.5)
        assert a.start < a.end


def test_timed_words_take_the_decoders_words_when_they_line_up():
    log_probs = text_log_probs("we go", frames_per_token=4)
    ids = VOCAB.encode("we go")
    named = align_words(log_probs, ids, VOCAB, 0.04, text="wee goh")  # a lexicon's words
    assert [w.word for w in named] == ["wee", "goh"]
    spelled = align_words(log_probs, ids, VOCAB, 0.04, text="one")  # not one per word
    assert [w.word for w in spelled] == ["we", "go"]


def test_confidence_drops_where_the_acoustics_are_unsure():
    sure = text_log_probs("a b")
    unsure = sure.clone()
    unsure[6] = torch.full((len(VOCAB),), 1.0 / len(VOCAB)).log()  # the frame of "b": flat
    ids = VOCAB.encode("a b")
    high = align_words(sure, ids, VOCAB, 0.02)[1].confidence
    low = align_words(unsure, ids, VOCAB, 0.02)[1].confidence
    assert high > 0.9 and low < 0.2


def test_empty_hypothesis_has_no_words():
    assert align_words(text_log_probs("a"), [], VOCAB, 0.02) == []


def test_unalignable_path_falls_back_to_timesteps():
    # "aa" needs a blank between the two a's: 2 frames cannot hold it, timesteps still can.
    log_probs = torch.full((2, len(VOCAB)), 1.0 / len(VOCAB)).log()
    ids = VOCAB.encode("aa")
    words = align_words(log_probs, ids, VOCAB, 0.02, timesteps=[0, 1])
    assert [(w.word, w.start, w.end) for w in words] == [("aa", 0.0, pytest.approx(0.04))]
