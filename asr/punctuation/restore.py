"""Written text from a recognizer's spoken words: case, punctuation, numbers and titles.

    punctuator = Punctuator()                         # the bundled data/models/punct-en
    punctuator.restore("and mister john dashwood paid twenty five dollars".split())
    # -> Restored(text="And Mr. John Dashwood paid $25.", words=[WrittenWord("And", (0,)), ...])

The tagger (runtime.py) gives each spoken word its case and the mark after it; the inverse
normalizer (itn.py) then writes numbers, money, dates and titles, merging words. Every written
word keeps the indices of the spoken words it stands for, so timings stay per word
(`restore_timed`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from asr.inference.align import WordTiming
from asr.punctuation.itn import ItnConfig, Token, inverse_normalize
from asr.punctuation.runtime import TaggerRuntime, Tagging
from asr.text import normalize_text
from asr.usererror import UserError

__all__ = [
    "DEFAULT_PUNCT_MODEL",
    "PunctInputError",
    "Punctuator",
    "RestoreOptions",
    "Restored",
    "WrittenWord",
    "cased_tokens",
    "default_punctuator",
    "read_lines",
    "restore",
    "restore_lines",
    "restore_timed",
    "restore_transcript",
    "time_written",
]

# The bundled model (asr/models/punct-en links to data/models/punct-en, as en-phones does).
DEFAULT_PUNCT_MODEL = Path(__file__).resolve().parent.parent / "models" / "punct-en"
_SENTENCE_ENDS = (".", "?", "!")


class PunctInputError(UserError, ValueError):
    """A text file to punctuate that cannot be read."""


@dataclass(frozen=True)
class RestoreOptions:
    sentence_start: bool = True  # the first word opens a sentence (capital)
    end_sentence: bool = True  # an utterance the tagger left open ends with "."
    itn: ItnConfig = field(default_factory=ItnConfig)  # numbers, money, dates, titles


@dataclass(frozen=True)
class WrittenWord:
    text: str  # the written word with its mark: "Dashwood,", "$25."
    spoken: tuple[int, ...]  # indices of the spoken words it stands for, in order


@dataclass(frozen=True)
class Restored:
    text: str  # the written words joined by spaces
    words: list[WrittenWord]


def _cased(word: str, case: str, mixed: str) -> str:
    if case == "upper":
        return word.upper()
    if case == "mixed" and mixed:
        return mixed
    if case in ("capital", "mixed"):
        return word[:1].upper() + word[1:]
    return word


def cased_tokens(words: Sequence[str], tagging: Tagging, options: RestoreOptions) -> list[Token]:
    """Tokens of the tagged words: each cased, with its mark; sentences open with a capital
    and, with `options.end_sentence`, the last one closes."""
    tokens, opens = [], options.sentence_start
    for i, word in enumerate(words):
        case = tagging.cases[i]
        if opens and case == "lower":
            case = "capital"
        tokens.append(Token(_cased(word, case, tagging.mixed[i]), tagging.puncts[i], (i,)))
        opens = tagging.puncts[i] in _SENTENCE_ENDS
    if options.end_sentence and tokens and tokens[-1].mark not in _SENTENCE_ENDS:
        last = tokens[-1]
        tokens[-1] = Token(last.text, ".", last.spoken)
    return tokens


class Punctuator:
    """A punctuation model folder, loaded once, restoring any number of utterances."""

    def __init__(self, folder: str | Path = DEFAULT_PUNCT_MODEL) -> None:
        self.tagger = TaggerRuntime(folder)

    def restore(self, words: Sequence[str], options: RestoreOptions = RestoreOptions()) -> Restored:
        """Written words of lower-case spoken `words` (as `normalize_text` or the recognizer
        writes them), each mapped to its spoken words' indices."""
        words = [w.lower() for w in words]
        tokens = inverse_normalize(
            cased_tokens(words, self.tagger.tag(words), options), options.itn
        )
        written = [WrittenWord(t.text + t.mark, t.spoken) for t in tokens]
        return Restored(" ".join(w.text for w in written), written)

    def restore_text(self, text: str, options: RestoreOptions = RestoreOptions()) -> str:
        """One utterance of spoken text -> its written text."""
        return self.restore(text.split(), options).text


@lru_cache(maxsize=4)
def default_punctuator(folder: str | None = None) -> Punctuator:
    """The Punctuator of `folder` (the bundled model when None), loaded once per process."""
    return Punctuator(folder or DEFAULT_PUNCT_MODEL)


def restore(words: Sequence[str], options: RestoreOptions = RestoreOptions()) -> Restored:
    """`Punctuator.restore` with the bundled model."""
    return default_punctuator().restore(words, options)


def restore_timed(
    timings: Sequence[WordTiming],
    punctuator: Punctuator | None = None,
    options: RestoreOptions = RestoreOptions(),
) -> list[WordTiming]:
    """Timed spoken words -> timed written words: each spans its spoken words' start to
    end, with their lowest confidence ("twenty five dollars" -> one "$25")."""
    punctuator = punctuator or default_punctuator()
    return time_written(punctuator.restore([t.word for t in timings], options).words, timings)


def time_written(written: Sequence[WrittenWord], timings: Sequence[WordTiming]) -> list[WordTiming]:
    """Written words timed by the spoken words they stand for (`timings`, one per spoken
    word): each spans their start to end, with their lowest confidence."""
    out = []
    for word in written:
        spans = [timings[k] for k in word.spoken]
        confidence = min(s.confidence for s in spans)
        out.append(WordTiming(word.text, spans[0].start, spans[-1].end, confidence))
    return out


def restore_transcript(
    text: str,
    words: Sequence[WordTiming] = (),
    punctuator: Punctuator | None = None,
    options: RestoreOptions = RestoreOptions(),
) -> tuple[str, list[WordTiming]]:
    """A recognizer's output (normalized text, and its timed words when it has them) ->
    the written text and timed written words. With words, the text is theirs, restored, so
    the two always agree; without, the text alone is restored."""
    if words:
        written = restore_timed(words, punctuator, options)
        return " ".join(w.word for w in written), written
    punctuator = punctuator or default_punctuator()
    return punctuator.restore(text.split(), options).text, []


def read_lines(path: str | Path) -> Iterator[str]:
    """The lines of a UTF-8 text file (PunctInputError naming it when it cannot be read)."""
    try:
        with open(path, encoding="utf-8") as f:
            yield from f
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else err
        raise PunctInputError(f"{path}: cannot read ({reason})") from err


def restore_lines(
    lines: Iterable[str],
    punctuator: Punctuator | None = None,
    options: RestoreOptions = RestoreOptions(),
) -> Iterator[str]:
    """Each line an utterance, in any spelling (it is normalized first, as `asr evaluate`
    normalizes: "Hello, 25 men" -> "hello twenty five men"), restored; blank lines stay."""
    punctuator = punctuator or default_punctuator()
    for line in lines:
        yield punctuator.restore(normalize_text(line).split(), options).text
