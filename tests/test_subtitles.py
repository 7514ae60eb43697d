"""Readable subtitle cues: line and cue limits, breaks at sentences, clauses and pauses,
whole words' timings."""

from __future__ import annotations

import pytest
from helpers import parse_srt

from asr.inference.align import WordTiming
from asr.inference.formats import to_srt
from asr.inference.subtitles import SubtitleConfig, layout_lines, split_cues

TEXT = (
    "And Mr. John Dashwood had then leisure to consider how much there might be prudently "
    "in his power to do for them. He was not an ill-disposed young man, unless to be rather "
    "cold hearted and rather selfish is to be ill-disposed: but he was, in general, well "
    "respected; for he conducted himself with propriety in the discharge of his ordinary duties."
)


def _timed(text: str, step: float = 0.3) -> list[WordTiming]:
    return [WordTiming(w, step * i, step * i + 0.25, 0.9) for i, w in enumerate(text.split())]


def test_cues_keep_every_word_in_order_within_the_limits():
    words = _timed(TEXT)
    cues = split_cues(words)
    assert " ".join(" ".join(c.lines) for c in cues) == TEXT
    for cue in cues:
        assert 1 <= len(cue.lines) <= 2
        assert all(len(line) <= 42 for line in cue.lines)
        assert cue.end - cue.start <= 7.0
    starts = {w.start for w in words}
    ends = {w.end for w in words}
    assert all(c.start in starts and c.end in ends for c in cues)  # whole words' timings


def test_a_sentence_end_closes_a_cue_but_a_title_does_not():
    cues = split_cues(_timed("Yes. And Mr. Smith said no. Dr. Who?"))
    assert [c.text for c in cues] == ["Yes.", "And Mr. Smith said no.", "Dr. Who?"]


def test_a_pause_closes_a_cue():
    words = _timed("the cat sat") + [WordTiming("down", 3.0, 3.4, 0.9)]
    assert [c.text for c in split_cues(words)] == ["the cat sat", "down"]


def test_an_overfull_cue_breaks_after_a_clause_mark():
    text = "When the rain had stopped at last, we walked down to the old harbour to see the boats"
    cues = split_cues(_timed(text), SubtitleConfig(max_line_chars=42, max_lines=1))
    assert cues[0].text == "When the rain had stopped at last,"


def test_lines_break_evenly_and_never_inside_a_word():
    text = "he conducted himself with propriety in the discharge of his duties"
    words = text.split(" ")
    lines = layout_lines(words, 42, 2)
    assert lines == ["he conducted himself with propriety", "in the discharge of his duties"]
    assert layout_lines(words, 20, 2) is None  # does not fit
    assert layout_lines(["x" * 50], 42, 2) == ["x" * 50]  # a word longer than a line


@pytest.mark.parametrize(
    "kwargs", [{"max_line_chars": 0}, {"max_lines": 0}, {"pause": float("nan")}, {"max_seconds": 0}]
)
def test_config_refuses_bad_numbers(kwargs):
    with pytest.raises(ValueError):
        SubtitleConfig(**kwargs)


def test_srt_uses_the_readable_cues():
    srt = to_srt(_timed(TEXT))
    blocks = [block.split("\n") for block in srt.strip().split("\n\n")]
    assert any(len(block) == 4 for block in blocks)  # number, timing and two lines of text
    assert all(len(line) <= 42 for block in blocks for line in block[2:])
    assert parse_srt(srt)[0][2].startswith("And Mr. John Dashwood had")
