"""Readable subtitle cues from timed words: at most 42 characters a line, 2 lines a cue.

A cue ends where a reader expects it to: at the end of a sentence (a word ending in . ? !),
at a pause of `SubtitleConfig.pause` seconds, or, when the next word would not fit in the
cue's lines or duration, at the best earlier break: after a clause mark (, ; : —), at a
pause, late rather than early, and not after "the" or "of". Its lines break the same way,
as evenly as they can. Words are never split, so each cue spans whole words' timings; a
single word longer than a line gets a line of its own.

    split_cues(words)  # words: WordTiming (written or spoken text) -> [Cue(start, end, text)]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from asr.config import check_ranges
from asr.inference.align import WordTiming

__all__ = ["SubtitleConfig", "SubtitleCue", "layout_lines", "split_cues"]

_SENTENCE_ENDS = (".", "?", "!", '."', '?"', '!"')
_CLAUSE_MARKS = (",", ";", ":", "\u2014", "-")
_ABBREVIATIONS = {"mr.", "mrs.", "dr.", "st.", "messrs.", "a.m.", "p.m."}  # no sentence end
# Words a line or cue should not end with: they lean on the word after them.
_LEANING = {"a", "an", "the", "of", "to", "and", "or", "but", "in", "on", "at", "by", "for"}
_LEANING |= {"with", "from", "my", "his", "her", "its", "our", "their"}


@dataclass(frozen=True)
class SubtitleConfig:
    max_line_chars: int = 42  # characters a line (the common broadcast guideline)
    max_lines: int = 2  # lines a cue
    max_seconds: float = 7.0  # a cue's longest duration
    pause: float = 0.8  # a silence this long (seconds) between words ends a cue

    def __post_init__(self) -> None:
        if self.max_line_chars < 1 or self.max_lines < 1:
            raise ValueError(
                f"subtitles: max_line_chars and max_lines must be >= 1, got "
                f"{self.max_line_chars}, {self.max_lines}"
            )
        check_ranges("subtitles", self, {"max_seconds": (1e-3, 3600.0), "pause": (1e-3, 60.0)})


@dataclass(frozen=True)
class SubtitleCue:
    start: float  # seconds: the first word's start
    end: float  # seconds: the last word's end
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _break_score(before: str, after_gap: float) -> float:
    """How good a place the point after word `before` is to break (higher is better)."""
    score = 3.0 if before.endswith(_CLAUSE_MARKS) else 0.0
    score += 4.0 * min(max(after_gap, 0.0), 1.0)
    return score - (1.0 if before.lower() in _LEANING else 0.0)


def layout_lines(words: Sequence[str], max_chars: int, max_lines: int) -> list[str] | None:
    """The words as at most `max_lines` lines of at most `max_chars` characters, broken at the
    best place (a clause mark, evenly); None when they do not fit."""
    text = " ".join(words)
    if len(text) <= max_chars or len(words) == 1:  # a word longer than a line: its own line
        return [text]
    if max_lines == 1:
        return None
    best, best_score = None, -math.inf
    for i in range(1, len(words)):
        first = " ".join(words[:i])
        if len(first) > max_chars and i > 1:
            break
        rest = layout_lines(words[i:], max_chars, max_lines - 1)
        if rest is None:
            continue
        balance = abs(len(first) - len(rest[0])) / max_chars
        score = _break_score(words[i - 1], 0.0) - 2.0 * balance
        if score > best_score:
            best, best_score = [first, *rest], score
    return best


def _ends_sentence(word: str) -> bool:
    """A word with a sentence's last mark, not a title ("Mr.") or an initial ("H.")."""
    initial = len(word) == 2 and word[0].isupper()
    return word.endswith(_SENTENCE_ENDS) and word.lower() not in _ABBREVIATIONS and not initial


def _fits(words: Sequence[WordTiming], config: SubtitleConfig) -> bool:
    if words[-1].end - words[0].start > config.max_seconds and len(words) > 1:
        return False
    texts = [w.word for w in words]
    return layout_lines(texts, config.max_line_chars, config.max_lines) is not None


def _best_break(words: Sequence[WordTiming]) -> int:
    """Where to end a cue that cannot take words[-1]: the index the next cue starts at."""
    total = sum(len(w.word) + 1 for w in words[:-1])
    best, best_score, chars = len(words) - 1, -math.inf, 0
    for k in range(1, len(words)):
        chars += len(words[k - 1].word) + 1
        gap = words[k].start - words[k - 1].end
        score = _break_score(words[k - 1].word, gap) + chars / max(total, 1)
        if score > best_score:
            best, best_score = k, score
    return best


def _cue(words: Sequence[WordTiming], config: SubtitleConfig) -> SubtitleCue:
    texts = [w.word for w in words]
    lines = layout_lines(texts, config.max_line_chars, config.max_lines) or [" ".join(texts)]
    return SubtitleCue(words[0].start, words[-1].end, tuple(lines))


def split_cues(
    words: Sequence[WordTiming], config: SubtitleConfig = SubtitleConfig()
) -> list[SubtitleCue]:
    """Subtitle cues of timed words (see the module docstring)."""
    cues: list[SubtitleCue] = []
    current: list[WordTiming] = []
    for word in words:
        if current and word.start - current[-1].end >= config.pause:
            cues.append(_cue(current, config))
            current = []
        current.append(word)
        while len(current) > 1 and not _fits(current, config):
            k = _best_break(current)
            cues.append(_cue(current[:k], config))
            current = current[k:]
        if _ends_sentence(word.word):
            cues.append(_cue(current, config))
            current = []
    if current:
        cues.append(_cue(current, config))
    return cues
