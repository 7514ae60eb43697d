"""Transcript writers: plain text, JSON (words with times and confidence), SRT, WebVTT.

`FORMATS` maps each output format's name to its writer; `asr transcribe --output-format`
offers these names. Each writes the transcript's `text` (written, or the spoken words with
`--raw`); the subtitles show its written words, each timed by its spoken words, and JSON
keeps the timed spoken words beside the written ones. SRT and WebVTT cues are
`asr.inference.subtitles.split_cues`'s: two lines of at most 42 characters, split at
sentences, clauses and pauses. `make_cues` (one line a cue: closed at a pause longer than
`max_gap`, past `max_chars` characters or `max_seconds` seconds) gives the server's
verbose_json segments, and `segment_records` their fields in OpenAI's shape.
"""

from __future__ import annotations

import json
import math
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING

from asr.files import write_atomic
from asr.inference.align import WordTiming
from asr.inference.subtitles import split_cues
from asr.usererror import UserError

if TYPE_CHECKING:
    from asr.decode import DecodingOptions
    from asr.inference.recognizer import Transcript
    from asr.text import Vocabulary

__all__ = [
    "FORMATS",
    "Cue",
    "OutputError",
    "OutputFormat",
    "check_output_dir",
    "compression_ratio",
    "join_transcripts",
    "make_cues",
    "to_json",
    "to_srt",
    "to_txt",
    "to_vtt",
    "plan_outputs",
    "segment_records",
    "transcript_record",
    "write_transcript",
    "write_transcripts",
]


class OutputError(UserError, ValueError):
    """Transcripts that cannot be written where asked; raised before any transcription."""


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


def segment_records(transcript: Transcript, vocab: Vocabulary) -> list[dict]:
    """OpenAI's verbose_json segments of a timed transcript: one per `make_cues` cue of its
    written words, each with the fields Whisper gives a segment, meaning here:

    id, start, end, text  the cue: its written words and their times (seconds)
    seek               the start in 10 ms frames (Whisper: the offset, in its 10 ms mel
                       frames, of the window the segment was decoded in)
    tokens             the vocabulary ids of the segment's spoken words, word boundaries
                       between them: the labels the CTC model emitted for it (a phone
                       model's phones)
    temperature        0.0: decoding is deterministic, never sampled
    avg_logprob        the mean log-probability of the labels the model chose over the
                       segment's frames: each spoken word's log confidence (the mean log
                       posterior of its characters' frames), weighted by its duration
    compression_ratio  as Whisper computes it: UTF-8 bytes of the text over those bytes
                       zlib-compressed (high for a looping, repeated text)
    no_speech_prob     the probability that none of the segment's words was spoken, each
                       word's confidence read as the probability it was: prod(1 - conf)

    So Whisper's usual filter (`no_speech_prob > 0.6 and avg_logprob < -1`) drops a segment
    of one or two doubtful words, as it drops Whisper's own hallucinations.
    """
    spoken = transcript.words
    labels = _word_labels(transcript, vocab)
    records = []
    for i, cue in enumerate(make_cues(transcript.written_words)):
        inside = [k for k, w in enumerate(spoken) if cue.start <= (w.start + w.end) / 2 <= cue.end]
        words = [spoken[k] for k in inside]
        weights = [max(w.end - w.start, 1e-3) for w in words]
        logs = [math.log(max(w.confidence, 1e-12)) for w in words]
        avg_logprob = sum(x * n for x, n in zip(logs, weights, strict=True)) / sum(weights or [1])
        no_speech = math.prod(1.0 - min(max(w.confidence, 0.0), 1.0) for w in words)
        records.append(
            {
                "id": i,
                "seek": round(cue.start * 100),
                "start": round(cue.start, 3),
                "end": round(cue.end, 3),
                "text": cue.text,
                "tokens": [t for k in inside for t in [vocab.space_id, *labels[k]]][1:],
                "temperature": 0.0,
                "avg_logprob": round(avg_logprob, 4),
                "compression_ratio": round(compression_ratio(cue.text), 4),
                "no_speech_prob": round(no_speech, 4),
            }
        )
    return records


def _word_labels(transcript: Transcript, vocab: Vocabulary) -> list[list[int]]:
    """Each timed spoken word's label ids: the hypothesis's labels split at word
    boundaries, or, where they do not line up (a recording decoded in chunks keeps no
    labels), the word spelled again (nothing for a word the vocabulary cannot spell)."""
    ids = transcript.hypothesis.token_ids
    groups = [list(g) for gap, g in groupby(ids, lambda t: t == vocab.space_id) if not gap]
    if len(groups) == len(transcript.words):
        return groups
    return [_spell(vocab, w.word) for w in transcript.words]


def _spell(vocab: Vocabulary, word: str) -> list[int]:
    try:
        return vocab.encode(word)
    except ValueError:  # a phone model's lexicon word
        return []


def compression_ratio(text: str) -> float:
    """UTF-8 bytes over zlib-compressed bytes, as Whisper's `get_compression_ratio`."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


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
    cues = split_cues(words) if words else _fallback_cue(text, duration)
    blocks = [
        f"{i}\n{_timestamp(c.start, ',')} --> {_timestamp(c.end, ',')}\n{c.text}\n"
        for i, c in enumerate(cues, start=1)
    ]
    return "\n".join(blocks)


def to_vtt(words: Sequence[WordTiming], text: str = "", duration: float = 0.0) -> str:
    """WebVTT: a 'WEBVTT' header, then cues 'HH:MM:SS.mmm --> HH:MM:SS.mmm'."""
    cues = split_cues(words) if words else _fallback_cue(text, duration)
    blocks = [f"{_timestamp(c.start, '.')} --> {_timestamp(c.end, '.')}\n{c.text}\n" for c in cues]
    return "\n".join(["WEBVTT\n", *blocks])


def to_txt(text: str) -> str:
    return text + "\n"


def to_json(record: dict | list) -> str:
    return json.dumps(record, indent=2, ensure_ascii=False) + "\n"


def transcript_record(transcript: Transcript, options: DecodingOptions) -> dict:
    """The JSON record of a transcript: its text and raw_text (the spoken words), duration,
    timed spoken words, the written words (each with the indices of the spoken words it
    stands for; none when raw), the n-best (spoken words), the options."""
    alternatives = transcript.hypothesis.alternatives
    return {
        "audio": transcript.source,
        "text": transcript.text,
        "raw_text": transcript.raw_text,
        "duration": round(transcript.duration, 3),
        "words": [w.to_dict() for w in transcript.words],
        "written": [{"word": w.text, "spoken": list(w.spoken)} for w in transcript.written],
        "nbest": [{"text": h.text, "score": h.score} for h in alternatives],
        "options": options.to_dict(),
    }


@dataclass(frozen=True)
class OutputFormat:
    render: Callable[[Transcript, DecodingOptions], str]  # one transcript -> the file's text
    timed: bool  # needs timed words (transcribe with word_timestamps)
    help: str  # what a file of it holds, for --help
    # several transcripts printed as one text (asr transcribe without --output-dir); None:
    # each rendered, one after another
    join: Callable[[Sequence[Transcript], DecodingOptions], str] | None = None


def _join_json(transcripts: Sequence[Transcript], options: DecodingOptions) -> str:
    """One JSON record, or a list of them for several."""
    records = [transcript_record(t, options) for t in transcripts]
    return to_json(records if len(records) > 1 else records[0]).rstrip("\n")


def _join_txt(transcripts: Sequence[Transcript], options: DecodingOptions) -> str:
    """The text of one transcript; 'source<TAB>text' lines for several."""
    if len(transcripts) == 1:
        return to_txt(transcripts[0].text).rstrip("\n")
    return "\n".join(f"{t.source}\t{t.text}" for t in transcripts)


FORMATS = {
    "txt": OutputFormat(lambda t, _: to_txt(t.text), False, "the transcript", _join_txt),
    "json": OutputFormat(
        lambda t, options: to_json(transcript_record(t, options)),
        True,
        "text, raw_text, duration, spoken words with start, end, confidence, written words "
        "with their spoken words, and the decoding options",
        _join_json,
    ),
    "srt": OutputFormat(
        lambda t, _: to_srt(t.written_words, t.text, t.duration), True, "subtitles"
    ),
    "vtt": OutputFormat(
        lambda t, _: to_vtt(t.written_words, t.text, t.duration), True, "subtitles"
    ),
}


def plan_outputs(sources: Sequence[str | Path], name: str, out_dir: str | Path) -> list[Path]:
    """Where each source's transcript goes, decided before any work: <out_dir>/<stem>.<name>,
    or, when two sources share a stem, the source's path relative to the sources' common
    folder (a/x.wav -> out/a/x.txt). Raises OutputError for two sources that would still
    write one file, for an output path that is a folder (or under a file), and for an
    out_dir that cannot be written (see `check_output_dir`)."""
    out_dir = Path(out_dir)
    check_output_dir(out_dir)
    sources = [Path(s) for s in sources]
    paths = _output_paths(sources, name, out_dir)
    for path in paths:
        blocker = next((p for p in [path, *path.parents] if p.exists()), None)
        if blocker is not None and blocker != path and not blocker.is_dir():
            raise OutputError(f"{path}: cannot be written, {blocker} is a file")
        if path.is_dir():
            raise OutputError(f"{path}: cannot be written, it is a folder")
    return paths


def _output_paths(sources: list[Path], name: str, out_dir: Path) -> list[Path]:
    stems = [s.stem for s in sources]
    if len(set(stems)) == len(stems):
        return [out_dir / f"{stem}.{name}" for stem in stems]
    parents = [s.resolve().parent for s in sources]
    common = Path(os.path.commonpath(parents))
    paths = [
        out_dir / p.relative_to(common) / f"{s.stem}.{name}"
        for s, p in zip(sources, parents, strict=True)
    ]
    seen: dict[Path, Path] = {}
    for source, path in zip(sources, paths, strict=True):
        if path in seen:
            raise OutputError(f"{seen[path]} and {source} would both be written to {path}")
        seen[path] = source
    return paths


def check_output_dir(out_dir: str | Path) -> None:
    """Raise OutputError unless `out_dir` is (or can be made) a writable folder."""
    out_dir = Path(out_dir)
    existing = next((p for p in [out_dir, *out_dir.parents] if p.exists()), None)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: exists and is a file, not a folder")
    if existing is not None and not existing.is_dir():
        raise OutputError(f"{out_dir}: {existing} is a file, not a folder")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{out_dir}: permission denied: cannot write in {existing}")


def write_transcript(transcript: Transcript, name: str, path: Path, options) -> Path:
    """One transcript in format `name` to `path` (its folder made as needed)."""
    return write_atomic(path, FORMATS[name].render(transcript, options))  # whole or not at all


def write_transcripts(
    transcripts: Sequence[Transcript], name: str, out_dir: str | Path, options: DecodingOptions
) -> list[Path]:
    """<out_dir>/<audio name>.<name> per transcript (see `plan_outputs`); the files written."""
    paths = plan_outputs([t.source for t in transcripts], name, out_dir)
    return [write_transcript(t, name, p, options) for t, p in zip(transcripts, paths, strict=True)]


def join_transcripts(transcripts: Sequence[Transcript], name: str, options: DecodingOptions) -> str:
    """Transcripts as one text in format `name`, as `asr transcribe` prints them: the
    format's `join`, else each rendered, one after another."""
    fmt = FORMATS[name]
    if fmt.join is not None:
        return fmt.join(transcripts, options)
    return "\n".join(fmt.render(t, options).rstrip("\n") for t in transcripts)
