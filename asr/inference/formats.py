"""Transcript writers: plain text, JSON (words with times and confidence), SRT, WebVTT.

Subtitle cues group consecutive words: a cue closes at a pause longer than `max_gap`,
when it would exceed `max_chars` characters or `max_seconds` seconds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from asr.inference.align import WordTiming

__all__ = ["FORMATS", "Cue", "make_cues", "to_json", "to_srt", "to_txt", "to_vtt"]

FORMATS = ("txt", "json", "srt", "vtt")


@dataclass
class Cue:
    start: float  # seconds
    end: float  # seconds
    text: str


def make_cues(
    words: Sequence[WordTiming],
    max_chars: int = 42,
    max_seconds: float = 6.0,
    max_gap: float = 0.8,
) -> list[Cue]:
    """Subtitle cues from timed words (see the module docstring for the rules)."""
    cues: list[Cue] = []
    current: list[WordTiming] = []
    for word in words:
        if current and _closes(current, word, max_chars, max_seconds, max_gap):
            cues.append(_cue(current))
            current = []
        current.append(word)
    if current:
        cues.append(_cue(current))
    return cues


def _closes(current: list[WordTiming], word: WordTiming, max_chars, max_seconds, max_gap):
    chars = sum(len(w.word) + 1 for w in current) + len(word.word)
    return (
        word.start - current[-1].end > max_gap
        or chars > max_chars
        or word.end - current[0].start > max_seconds
    )


def _cue(words: list[WordTiming]) -> Cue:
    return Cue(words[0].start, words[-1].end, " ".join(w.word for w in words))


def _timestamp(seconds: float, decimal: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def _fallback_cue(text: str, duration: float) -> list[Cue]:
    """One cue for the whole recording when no word times are known."""
    return [Cue(0.0, duration, text)] if text else []


def to_srt(words: Sequence[WordTiming], text: str = "", duration: float = 0.0) -> str:
    """SubRip: numbered cues 'HH:MM:SS,mmm --> HH:MM:SS,mmm'."""
    cues = make_cues(words) if words else _fallback_cue(text, duration)
    blocks = [
        f"{i}\n{_timestamp(c.start, ',')} --> {_timestamp(c.end, ',')}\n{c.text}\n"
        for i, c in enumerate(cues, start=1)
    ]
    return "\n".join(blocks)


def to_vtt(words: Sequence[WordTiming], text: str = "", duration: float = 0.0) -> str:
    """WebVTT: a 'WEBVTT' header, then cues 'HH:MM:SS.mmm --> HH:MM:SS.mmm'."""
    cues = make_cues(words) if words else _fallback_cue(text, duration)
    blocks = [f"{_timestamp(c.start, '.')} --> {_timestamp(c.end, '.')}\n{c.text}\n" for c in cues]
    return "\n".join(["WEBVTT\n", *blocks])


def to_txt(text: str) -> str:
    return text + "\n"


def to_json(record: dict) -> str:
    return json.dumps(record, indent=2, ensure_ascii=False) + "\n"
