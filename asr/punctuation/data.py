"""Training examples for the punctuation and case tagger, from plain-text books.

A book's text is cut into paragraphs (poetry, headings and tables are skipped), each
paragraph into written tokens ("Dashwood,", "“Is", "after-dinner"), and each token into the
spoken words the recognizer would emit for it, each with two labels:

- case: how the word is written, one of CASES ("Mr." is said "mister": its word is lower and
  the inverse normalizer writes the title);
- punct: the mark after it, one of PUNCTS. ";", ":" and dashes count as ","; "..." as ".".

Held out before any training, by a rule fixed here (`held_out_ids`): the 10 lowest Gutenberg
ids of data/gutenberg/index.tsv that end in 7 are the test books, the 10 lowest that end in 3
the development books (checkpoint choice); neither is read for training or the vocabulary.
"""

from __future__ import annotations

import lzma
import random
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.text import normalize_text
from asr.usererror import UserError

__all__ = [
    "CASES",
    "PUNCTS",
    "Book",
    "BookError",
    "Tagged",
    "case_of",
    "held_out_ids",
    "list_books",
    "paragraphs",
    "punct_of",
    "PrepareConfig",
    "encode_words",
    "make_vocabulary",
    "mixed_forms",
    "split_books",
    "read_book",
    "sample_book",
    "sample_books",
    "tag_paragraph",
]

CASES = ("lower", "capital", "upper", "mixed")  # "dashwood" "Dashwood" "USA" "McDonald"
PUNCTS = ("", ",", ".", "?", "!")  # the mark after a word; "" none
TEST_DIGIT, DEV_DIGIT, N_HELD_OUT = "7", "3", 10  # the held-out rule (module docstring)
# Titles said in full by a reader ("Mr." -> "mister"); the inverse normalizer writes them back.
SPOKEN_TITLES = {"mr": "mister", "mrs": "missus", "dr": "doctor"}

_FAST_WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)*")  # already a normalized word
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "`": "'", "\u201c": '"', "\u201d": '"'})
_DASH_RE = re.compile(r"\s*(?:--+|[\u2013\u2014\u2015])\s*")  # a dash between words
_CURRENCY = "$\u00a3\u20ac"
_EDGE_RE = re.compile(r"^([^\w]*)(.*?)([^\w]*)$", re.S)  # leading marks, core, trailing marks


class BookError(UserError, ValueError):
    """A book index or book file that cannot be read."""


@dataclass(frozen=True)
class Book:
    gutenberg_id: int
    path: Path


@dataclass
class Tagged:
    """One paragraph's spoken words and their labels, three lists of one length."""

    words: list[str]  # normalized spoken words: "mister", "nineteen"
    cases: list[int]  # index into CASES
    puncts: list[int]  # index into PUNCTS
    mixed: list[str]  # the written form of each "mixed" word ("McDonald"), else ""


def _read_index(index: Path) -> list[Book]:
    books = []
    try:
        lines = index.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise BookError(f"{index}: cannot read the book index ({err.strerror or err})") from err
    for n, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) < 2 or not fields[1].isdigit():
            raise BookError(f"{index}:{n}: expected 'file<TAB>gutenberg_id...', got {line!r}")
        books.append(Book(int(fields[1]), index.parent / fields[0]))
    return books


def list_books(folders: Sequence[str | Path]) -> list[Book]:
    """Every book of the given folders (each with an index.tsv), by Gutenberg id."""
    books = [b for folder in folders for b in _read_index(Path(folder) / "index.tsv")]
    return sorted(books, key=lambda b: b.gutenberg_id)


def held_out_ids(gutenberg_dir: str | Path, digit: str = TEST_DIGIT) -> list[int]:
    """The N_HELD_OUT lowest Gutenberg ids of <gutenberg_dir>/index.tsv whose last digit is
    `digit` (TEST_DIGIT: test books; DEV_DIGIT: development books)."""
    ids = sorted(b.gutenberg_id for b in _read_index(Path(gutenberg_dir) / "index.tsv"))
    return [i for i in ids if str(i).endswith(digit)][:N_HELD_OUT]


def read_book(path: str | Path) -> str:
    """A book's text; .xz files are decompressed."""
    path = Path(path)
    try:
        if path.suffix == ".xz":
            with lzma.open(path, "rt", encoding="utf-8") as f:
                return f.read()
        return path.read_text(encoding="utf-8")
    except (OSError, lzma.LZMAError, UnicodeDecodeError) as err:
        raise BookError(f"{path}: cannot read the book ({err})") from err


def _is_prose(lines: list[str]) -> bool:
    """False for headings (mostly capitals), verse and tables (short lines that mostly open
    with a capital)."""
    text = " ".join(lines)
    letters = [c for c in text if c.isalpha()]
    if len(text.split()) < 4 or sum(c.islower() for c in letters) < 0.6 * len(letters):
        return False
    if len(lines) < 2:
        return True
    starts = [ln.lstrip(" \"'“‘(_")[:1] for ln in lines]
    capitals = sum(s.isupper() for s in starts)
    mean_len = sum(len(ln) for ln in lines) / len(lines)
    return not (capitals > 0.6 * len(lines) and mean_len < 55) and mean_len > 25


def paragraphs(text: str) -> Iterator[str]:
    """The prose paragraphs of a book, each on one line."""
    for block in re.split(r"\n\s*\n", text):
        lines = [ln for ln in block.splitlines() if ln.strip()]
        if lines and _is_prose(lines):
            yield " ".join(ln.strip() for ln in lines)


def case_of(core: str) -> int:
    """The CASES index of a written word (its letters decide; digits are "lower")."""
    letters = [c for c in core if c.isalpha()]
    if not letters or all(c.islower() for c in letters):
        return 0
    if all(c.isupper() for c in letters):
        return 2 if len(letters) > 1 else 1
    if letters[0].isupper() and all(c.islower() for c in letters[1:]):
        return 1
    return 3 if letters[0].isupper() else 1  # "iPhone" is rare enough to write "IPhone"


def punct_of(trailing: str) -> int:
    """The PUNCTS index of the marks after a word ("?”" -> "?", ";" -> ",", "..." -> ".")."""
    for mark, index in (("?", 3), ("!", 4), (".", 2)):
        if mark in trailing:
            return index
    return 1 if any(c in trailing for c in ",;:-\u2013\u2014") else 0


def _spoken(core: str) -> list[str]:
    lower = core.lower()
    if _FAST_WORD_RE.fullmatch(lower):
        return [lower]
    return normalize_text(core).split()


def _stripped(core: str) -> list[str]:
    """The written word lower-cased, its marks dropped and its digits kept ("$25" -> "25")."""
    word = "".join(c for c in core.lower() if c.isalnum() or c == "'").strip("'")
    return [word] if word else []


def tag_paragraph(paragraph: str, spoken: bool = True) -> Tagged:
    """The spoken words of a paragraph and each one's case and following mark; with
    `spoken` False, the written words lower-cased and stripped instead (digits stay digits,
    "Mr." is "mr")."""
    tagged = Tagged([], [], [], [])
    text = _DASH_RE.sub(" \u2014 ", paragraph.translate(_QUOTES))
    for token in text.split():
        lead, core, trail = _EDGE_RE.match(token).groups()
        if not core:  # a dash or a quote alone: its mark joins the word before
            _add_mark(tagged, lead + trail)
            continue
        if spoken and core.lower() in SPOKEN_TITLES and trail.startswith("."):
            _add_word(tagged, SPOKEN_TITLES[core.lower()], 0, "")
            _add_mark(tagged, trail[1:])
            continue
        if "(" in lead:  # a parenthesis opens: a clause boundary after the word before
            _add_mark(tagged, ",")
        if lead and lead[-1] in _CURRENCY:  # "$25" is said "twenty five dollars"
            core = lead[-1] + core
        parts = [p for p in re.split(r"[-\u2010\u2011/_]+", core) if p]
        for part in parts:
            words = _spoken(part) if spoken else _stripped(part)
            for i, word in enumerate(words):
                case = case_of(part) if i == 0 else 0
                _add_word(tagged, word, case, part if case == 3 and len(words) == 1 else "")
        if spoken and trail.startswith("%"):
            _add_word(tagged, "percent", 0, "")
        _add_mark(tagged, trail.replace(")", ","))
    return tagged


def _add_word(tagged: Tagged, word: str, case: int, mixed: str) -> None:
    tagged.words.append(word)
    tagged.cases.append(case)
    tagged.puncts.append(0)
    tagged.mixed.append(mixed)


def _add_mark(tagged: Tagged, marks: str) -> None:
    if tagged.words and marks:
        tagged.puncts[-1] = max(tagged.puncts[-1], punct_of(marks))


def sample_book(book: Book, n_words: int, seed: int, spoken: bool = True) -> Tagged:
    """About `n_words` words of a book's prose: consecutive paragraphs from a random one
    (seeded by the book's id), wrapping around to the start. `spoken`: see `tag_paragraph`."""
    paras = list(paragraphs(read_book(book.path)))
    out = Tagged([], [], [], [])
    if not paras:
        return out
    start = random.Random(seed * 1_000_003 + book.gutenberg_id).randrange(len(paras))
    for k in range(len(paras)):
        tagged = tag_paragraph(paras[(start + k) % len(paras)], spoken)
        out.words += tagged.words
        out.cases += tagged.cases
        out.puncts += tagged.puncts
        out.mixed += tagged.mixed
        if len(out.words) >= n_words:
            break
    return out


def sample_books(books: Sequence[Book], words_per_book: int, seed: int) -> tuple[Tagged, list[int]]:
    """`sample_book` of each book, concatenated; and where each book's words start."""
    out, starts = Tagged([], [], [], []), []
    for book in books:
        tagged = sample_book(book, words_per_book, seed)
        starts.append(len(out.words))
        out.words += tagged.words
        out.cases += tagged.cases
        out.puncts += tagged.puncts
        out.mixed += tagged.mixed
    return out, starts


# A printer's habit, not a word's spelling: a drop capital run into the word ("ANYthing",
# "ALexander", "AEneas" for the ligature) or an upper-case name with a lower-case ending
_TYPOGRAPHY = re.compile(r"[A-Z]{2,}[a-z]{2,}|[A-Z]{3,}s")


def is_typography(form: str) -> bool:
    """Whether a mixed written form is typography that must not enter the table."""
    return _TYPOGRAPHY.fullmatch(form) is not None


def mixed_forms(tagged: Tagged, min_count: int = 2) -> dict[str, str]:
    """Each word's commonest mixed written form ("mcdonald" -> "McDonald"), seen at least
    `min_count` times; typography ("ANYthing") left out, so such a word is capitalized."""
    counts: Counter[tuple[str, str]] = Counter(
        (w, m) for w, m in zip(tagged.words, tagged.mixed, strict=True) if m
    )
    table: dict[str, tuple[int, str]] = {}
    for (word, form), n in counts.items():
        if n >= min_count and n > table.get(word, (0, ""))[0] and not is_typography(form):
            table[word] = (n, form)
    return {word: form for word, (_, form) in sorted(table.items())}


@dataclass(frozen=True)
class PrepareConfig:
    words_per_book: int = 8000  # words sampled from each training book
    dev_words_per_book: int = 20000  # from each development book
    vocab_size: int = 32000  # commonest training words, index 0 the unknown word
    min_mixed: int = 2  # a mixed form ("McDonald") seen this often enters the table
    seed: int = 1  # where each book's sample starts

    def __post_init__(self) -> None:
        for name in ("words_per_book", "dev_words_per_book", "vocab_size", "min_mixed"):
            if getattr(self, name) < 1:
                raise ValueError(f"prepare.{name} must be >= 1, got {getattr(self, name)}")


UNKNOWN = "<unk>"


def make_vocabulary(words: Sequence[str], size: int) -> list[str]:
    """The unknown word, then the `size - 1` commonest words (ties by spelling)."""
    counts = Counter(words)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: size - 1]
    return [UNKNOWN, *(w for w, _ in ranked)]


def encode_words(words: Sequence[str], vocabulary: Sequence[str]) -> np.ndarray:
    """(N,) int64 word ids; unknown words get 0."""
    index = {w: i for i, w in enumerate(vocabulary)}
    return np.array([index.get(w, 0) for w in words], dtype=np.int64)


def split_books(folders: Sequence[str | Path]) -> dict[str, list[Book]]:
    """The "train", "dev" and "test" books of the given folders; the first holds index.tsv of
    data/gutenberg, whose ids `held_out_ids` reads."""
    test = set(held_out_ids(folders[0], TEST_DIGIT))
    dev = set(held_out_ids(folders[0], DEV_DIGIT))
    books = list_books(folders)
    return {
        "train": [b for b in books if b.gutenberg_id not in test | dev],
        "dev": [b for b in books if b.gutenberg_id in dev],
        "test": [b for b in books if b.gutenberg_id in test],
    }
