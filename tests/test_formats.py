"""Subtitle and JSON writers: valid SRT/WebVTT structure, cue grouping, timestamps."""

from __future__ import annotations

import json

import pytest
from helpers import parse_srt, parse_vtt

from asr.inference.align import WordTiming
from asr.inference.formats import make_cues, to_json, to_srt, to_vtt


def _words(spec: list[tuple[str, float, float]]) -> list[WordTiming]:
    return [WordTiming(w, s, e, 0.9) for w, s, e in spec]


WORDS = _words(
    [
        ("the", 0.1, 0.4),
        ("cat", 0.5, 0.9),
        ("sat", 1.0, 1.3),
        ("down", 3.0, 3.4),  # after a 1.7 s pause: a new cue
        ("here", 3.5, 3.9),
        ("at", 3661.0, 3661.2),  # past one hour
    ]
)


@pytest.mark.parametrize("writer, parser", [(to_srt, parse_srt), (to_vtt, parse_vtt)])
def test_subtitles_are_valid_and_timed(writer, parser):
    cues = parser(writer(WORDS))
    assert cues == [
        (0.1, 1.3, "the cat sat"),
        (3.0, 3.9, "down here"),
        (3661.0, 3661.2, "at"),
    ]
    assert all(a[1] <= b[0] for a, b in zip(cues, cues[1:], strict=False))


def test_timestamp_format():
    assert "01:01:01,000 --> 01:01:01,200" in to_srt(WORDS)
    assert "01:01:01.000 --> 01:01:01.200" in to_vtt(WORDS)


@pytest.mark.parametrize(
    "max_chars, max_seconds, expected",
    [
        (42, 6.0, [["a"] * 10]),
        (9, 6.0, [["a"] * 5, ["a"] * 5]),  # "a a a a a" is 9 characters
        (42, 1.0, [["a"] * 5, ["a"] * 5]),
    ],
)
def test_cue_limits(max_chars, max_seconds, expected):
    words = _words([("a", 0.2 * i, 0.2 * i + 0.15) for i in range(10)])
    cues = make_cues(words, max_chars=max_chars, max_seconds=max_seconds)
    assert [c.text.split() for c in cues] == expected


def test_no_word_times_gives_one_cue_for_the_whole_recording():
    assert parse_srt(to_srt([], "hello there", 4.25)) == [(0.0, 4.25, "hello there")]
    assert to_srt([], "", 4.25) == ""
    assert parse_vtt(to_vtt([], "hi", 2.0)) == [(0.0, 2.0, "hi")]


def test_json_round_trips():
    record = {"text": "the cat", "words": [w.to_dict() for w in WORDS[:2]]}
    assert json.loads(to_json(record)) == record


def test_segment_records_carry_whisper_fields_with_their_meaning_here():
    """verbose_json segments: seek in 10 ms frames, the spoken words' label ids, the
    duration-weighted mean log confidence, Whisper's compression ratio, and the chance that
    none of the words was spoken; Whisper's usual filter drops the doubtful one-word cue."""
    import math
    import zlib

    from asr.decode import Hypothesis
    from asr.inference.formats import segment_records
    from asr.inference.recognizer import Transcript
    from asr.text import Vocabulary

    words = [
        WordTiming("the", 0.1, 0.3, 0.9),
        WordTiming("cat", 0.4, 0.8, 0.5),
        WordTiming("hmm", 3.0, 3.2, 0.2),  # after a pause: its own segment
    ]
    text = "the cat hmm"
    transcript = Transcript("a.wav", text, 4.0, Hypothesis(text), words)
    vocab = Vocabulary.english()
    first, second = segment_records(transcript, vocab)
    assert (first["id"], first["text"], first["seek"], second["seek"]) == (0, "the cat", 10, 300)
    assert vocab.decode(first["tokens"]) == "the cat" and all(
        isinstance(t, int) for t in first["tokens"]
    )
    expected = (0.2 * math.log(0.9) + 0.4 * math.log(0.5)) / 0.6
    assert first["avg_logprob"] == pytest.approx(expected, abs=1e-4)
    assert first["no_speech_prob"] == pytest.approx(0.1 * 0.5, abs=1e-4)
    data = b"the cat"
    assert first["compression_ratio"] == pytest.approx(len(data) / len(zlib.compress(data)), 1e-3)
    assert first["temperature"] == second["temperature"] == 0.0
    dropped = [s for s in (first, second) if s["no_speech_prob"] > 0.6 and s["avg_logprob"] < -1]
    assert dropped == [second]


def test_segment_tokens_are_the_labels_the_model_emitted_for_each_word():
    """A phone model's words are lexicon words its vocabulary cannot spell: the segment's
    tokens are the hypothesis's own labels, split at word boundaries."""
    from asr.decode import Hypothesis
    from asr.inference.formats import segment_records
    from asr.inference.recognizer import Transcript
    from asr.text import Vocabulary

    vocab = Vocabulary.english()
    labels = vocab.encode("thee kat")  # what the model emitted
    words = [WordTiming("the", 0.1, 0.3, 0.9), WordTiming("cat", 0.4, 0.8, 0.5)]
    transcript = Transcript("a.wav", "the cat", 1.0, Hypothesis("the cat", labels), words)
    (record,) = segment_records(transcript, vocab)
    assert vocab.decode(record["tokens"]) == "thee kat"
