import pytest

from asr.metrics import ErrorCounts, error_counts, score_utterance

WORD_CASES = [
    # refs, hyps, (S, D, I, hits)
    (["the cat sat"], ["the cat sat"], (0, 0, 0, 3)),
    (["the cat sat"], ["the bat sat"], (1, 0, 0, 2)),
    (["the cat sat"], ["the sat"], (0, 1, 0, 2)),
    (["the cat sat"], ["the cat sat down"], (0, 0, 1, 3)),
    (["the cat sat"], [""], (0, 3, 0, 0)),
    ([""], ["hello there"], (0, 0, 2, 0)),
    (["a b", "c d e"], ["a x", "c d e f"], (1, 0, 1, 4)),
]


@pytest.mark.parametrize(("refs", "hyps", "expected"), WORD_CASES)
def test_word_counts(refs, hyps, expected):
    counts = error_counts(refs, hyps, "word")
    assert (counts.substitutions, counts.deletions, counts.insertions, counts.hits) == expected


CHAR_CASES = [
    (["abc"], ["abc"], 0.0),
    (["abc"], ["abd"], 1 / 3),
    (["ab cd"], ["ab  cd"], 0.0),  # whitespace runs are folded before scoring
    (["abcd"], ["ab"], 2 / 4),
]


@pytest.mark.parametrize(("refs", "hyps", "rate"), CHAR_CASES)
def test_char_rate(refs, hyps, rate):
    assert error_counts(refs, hyps, "char").rate == pytest.approx(rate)


def test_rate_is_corpus_level_not_mean_of_utterances():
    # 1 error in 1 word and 0 errors in 9 words: corpus WER 10%, not the 50% mean.
    counts = error_counts(["a", "b c d e f g h i j"], ["x", "b c d e f g h i j"])
    assert counts.rate == pytest.approx(0.1)


def test_empty_reference_rates():
    assert ErrorCounts(0, 0, 0, 0).rate == 0.0
    assert ErrorCounts(0, 0, 2, 0).rate == float("inf")


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        error_counts(["a", "b"], ["a"])


def test_alignment_marks_edits():
    score = score_utterance("the cat sat", "the bat sat down")
    assert score.words.substitutions == 1 and score.words.insertions == 1
    lines = score.alignment.splitlines()
    assert lines[0].startswith("REF:") and lines[1].startswith("HYP:")
    assert "S" in lines[2] and "I" in lines[2]


def test_evaluation_counts_each_speakers_words_apart():
    from asr.evaluate import speaker_word_counts
    from asr.manifest import Utterance

    utts = [Utterance("a.wav", 1.0, "", speaker=s) for s in ("m1", "f2", "m1", "")]
    refs = ["the cat", "a dog", "sat down", "unknown speaker"]
    hyps = ["the cat", "a log", "sat", "unknown speaker"]
    counts = speaker_word_counts(utts, refs, hyps)
    assert list(counts) == ["f2", "m1"]  # sorted; an utterance without a speaker in none
    assert (counts["m1"].errors, counts["m1"].reference_length) == (1, 4)
    assert (counts["f2"].errors, counts["f2"].reference_length) == (1, 2)
