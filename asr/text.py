"""The one English text normalizer and the character vocabulary.

Training targets, decoder output, language-model text and WER scoring all pass through
`normalize_text`, so a difference in spelling conventions can never count as an error:

- Unicode is decomposed and accents dropped ("café" -> "cafe"); curly quotes become "'".
- Lower case.
- Numbers are spelled out: "1984" -> "one thousand nine hundred and eighty four",
  "3rd" -> "third", "2.5" -> "two point five", "%" -> "percent", "&" -> "and".
- Hyphens, dashes and slashes separate words; every other punctuation mark or symbol
  is removed. An apostrophe is kept only between two letters ("don't", "o'clock").
- Runs of whitespace become one space; no leading or trailing space.

Letters outside a-z (e.g. "æ", "ß", Cyrillic) are kept, not dropped, so that
`Vocabulary.find_unknown` can report them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["BLANK", "WORD_BOUNDARY", "Vocabulary", "normalize_text", "number_to_words"]

BLANK = "<blank>"
_DEFAULT_CHARS = " '" + "abcdefghijklmnopqrstuvwxyz"
# The 39 ARPAbet phones of CMUdict without stress marks: the output symbols of a phone
# model (model.units = "phones") and of the auxiliary phone head.
_ARPABET = "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH"
PHONES = tuple(f"{_ARPABET} T TH UH UW V W Y Z ZH".split())
WORD_BOUNDARY = "|"  # the word-boundary token of lexicon spellings, character LMs and the search
PHONE_JOINER = "."  # phones of one word in phone text: "DH.AH K.AE.T" ("the cat")
UNITS = ("chars", "phones")  # what a model emits: model.units

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand")]
_ORDINAL_WORDS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
_SYMBOL_WORDS = {"%": " percent ", "&": " and ", "+": " plus ", "@": " at "}
_QUOTES = {"\u2018": "'", "\u2019": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"}

_CURRENCIES = {"$": ("dollar", "cent"), "\u00a3": ("pound", "penny"), "\u20ac": ("euro", "cent")}
_MONEY_RE = re.compile(r"([$\u00a3\u20ac])\s?(\d+(?:,\d{3})*)(?:\.(\d{2}))?\b")
# Digit by digit: phone numbers (555-1234), numbers with a leading zero (007), N11 codes.
_DIGITWISE_RE = re.compile(r"\b\d{3}(?:-\d{2,4})+\b|(?<![\d,.])\b(?:0\d+|[2-9]11)\b(?![,.]\d)")
_DECADE_RE = re.compile(r"\b(1[1-9]|20)(\d)0s\b")
_YEAR_RE = re.compile(r"(?<![\d,.])\b(1[1-9]\d\d|20\d\d)\b(?!,\d{3}|\.\d)")
_ORDINAL_RE = re.compile(r"\b(\d+)(st|nd|rd|th)\b")
_DECIMAL_RE = re.compile(r"\b(\d+)\.(\d+)\b")
_THOUSANDS_RE = re.compile(r"\b(\d{1,3}(?:,\d{3})+)\b")
_INTEGER_RE = re.compile(r"\d+")
_SEPARATOR_RE = re.compile(r"[-\u2010-\u2015/_]")
_APOSTROPHE_RE = re.compile(r"(?<![^\W\d_])'|'(?![^\W\d_])")  # not between two letters
_SPACE_RE = re.compile(r"\s+")


def number_to_words(number: int) -> str:
    """Spell out a non-negative integer in British-style English ("one hundred and five")."""
    if number < 0:
        raise ValueError(f"number_to_words takes non-negative integers, got {number}")
    if number < 20:
        return _ONES[number]
    if number < 100:
        tens, ones = divmod(number, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    if number < 1000:
        hundreds, rest = divmod(number, 100)
        words = _ONES[hundreds] + " hundred"
        return words if rest == 0 else words + " and " + number_to_words(rest)
    for scale, name in _SCALES:
        if number >= scale:
            high, rest = divmod(number, scale)
            words = number_to_words(high) + " " + name
            if rest == 0:
                return words
            joiner = " and " if rest < 100 else " "
            return words + joiner + number_to_words(rest)
    raise AssertionError("unreachable")


def _ordinal(number: int) -> str:
    words = number_to_words(number).split()
    last = words[-1]
    if last in _ORDINAL_WORDS:
        words[-1] = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def _money(m: re.Match) -> str:
    """ "$2.50" -> "two dollars and fifty cents", "$1" -> "one dollar"."""
    unit, cent = _CURRENCIES[m.group(1)]
    whole = int(m.group(2).replace(",", ""))
    words = f"{number_to_words(whole)} {unit}{'' if whole == 1 else 's'}"
    cents = int(m.group(3) or 0)
    if cents:
        plural = "pence" if cent == "penny" else "cents"
        words += f" and {number_to_words(cents)} {cent if cents == 1 else plural}"
    return f" {words} "


def _digitwise(m: re.Match) -> str:
    """ "555-1234" -> "five five five one two three four"; "007" -> "oh oh seven"."""
    digits = [d for d in m.group(0) if d.isdigit()]
    return " " + " ".join("oh" if d == "0" else _ONES[int(d)] for d in digits) + " "


def _year(number: int) -> str:
    """A year as it is said: 1998 "nineteen ninety eight", 1905 "nineteen oh five", 1900
    "nineteen hundred", 2005 "two thousand and five", 2019 "twenty nineteen"."""
    high, low = divmod(number, 100)
    if 2000 <= number < 2010:
        return number_to_words(number)
    if low == 0:
        return f"{number_to_words(high)} hundred"
    rest = f"oh {_ONES[low]}" if low < 10 else number_to_words(low)
    return f"{number_to_words(high)} {rest}"


def _decade(m: re.Match) -> str:
    """ "1990s" -> "nineteen nineties", "1900s" -> "nineteen hundreds", "2000s" ->
    "two thousands"."""
    century, tens = int(m.group(1)), int(m.group(2))
    if tens == 0:
        return f" {number_to_words(century * 100) if century == 20 else _year(century * 100)}s "
    plural = _TENS[tens][:-1] + "ies" if tens > 1 else "tens"
    return f" {number_to_words(century)} {plural} "


def _spell_numbers(text: str) -> str:
    text = _MONEY_RE.sub(_money, text)
    text = _DIGITWISE_RE.sub(_digitwise, text)
    text = _DECADE_RE.sub(_decade, text)
    text = _YEAR_RE.sub(lambda m: " " + _year(int(m.group(1))) + " ", text)
    text = _THOUSANDS_RE.sub(lambda m: m.group(1).replace(",", ""), text)
    text = _ORDINAL_RE.sub(lambda m: " " + _ordinal(int(m.group(1))) + " ", text)
    text = _DECIMAL_RE.sub(
        lambda m: (
            f" {number_to_words(int(m.group(1)))} point "
            + " ".join(_ONES[int(d)] for d in m.group(2))
            + " "
        ),
        text,
    )
    return _INTEGER_RE.sub(lambda m: " " + number_to_words(int(m.group(0))) + " ", text)


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _drop_punctuation(text: str) -> str:
    kept = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch == "'" or category[0] in "LN":
            kept.append(ch)
        elif category[0] in "PSCZ":
            kept.append(" ")
        # Marks (category M) left after decomposition are dropped with their base kept.
    return "".join(kept)


def normalize_text(text: str) -> str:
    """Normalize English text for training, decoding and scoring (see the module docstring)."""
    for quote, plain in _QUOTES.items():
        text = text.replace(quote, plain)
    text = _strip_accents(text).lower()
    for symbol, word in _SYMBOL_WORDS.items():
        text = text.replace(symbol, word)
    text = _spell_numbers(text)
    text = _SEPARATOR_RE.sub(" ", text)
    text = _drop_punctuation(text)
    text = _APOSTROPHE_RE.sub(" ", text)
    return _SPACE_RE.sub(" ", text).strip()


@dataclass(frozen=True)
class Vocabulary:
    """CTC output symbols: index 0 is the blank, then one entry per character, or (phone
    units) per phone, with " " as the word boundary in both."""

    tokens: tuple[str, ...]

    @classmethod
    def english(cls) -> Vocabulary:
        """Blank, space, apostrophe and a-z: 29 symbols."""
        return cls((BLANK, *_DEFAULT_CHARS))

    @classmethod
    def phones(cls) -> Vocabulary:
        """Blank, space (word boundary) and the 39 ARPAbet phones: 41 symbols."""
        return cls((BLANK, " ", *PHONES))

    @classmethod
    def for_units(cls, units: str) -> Vocabulary:
        """The vocabulary of `model.units`: "chars" or "phones"."""
        if units not in UNITS:
            raise ValueError(f"model.units must be one of {list(UNITS)}, got {units!r}")
        return cls.english() if units == "chars" else cls.phones()

    def __post_init__(self) -> None:
        if not self.tokens or self.tokens[0] != BLANK:
            raise ValueError(f"a vocabulary starts with {BLANK!r}, got {self.tokens[:3]!r}")
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("a vocabulary lists each token once")
        object.__setattr__(self, "_index", {tok: i for i, tok in enumerate(self.tokens)})

    @property
    def blank_id(self) -> int:
        return 0

    @property
    def space_id(self) -> int:
        return self._index[" "]

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def phonetic(self) -> bool:
        """Phone units (tokens of several letters), written as phone text "DH.AH K.AE.T"."""
        return any(len(tok) > 1 for tok in self.tokens[1:])

    def split(self, text: str) -> list[str]:
        """Normalized text (phone text for phone units) -> its token strings."""
        if not self.phonetic:
            return list(text)
        units: list[str] = []
        for word in text.split():
            units += ([" "] if units else []) + word.split(PHONE_JOINER)
        return units

    def __contains__(self, token: str) -> bool:
        return token in self._index

    def index(self, token: str) -> int:
        return self._index[token]

    def find_unknown(self, text: str) -> set[str]:
        """Characters (phones) of normalized (phone) text this vocabulary cannot spell."""
        return {tok for tok in self.split(text) if tok not in self._index}

    def encode(self, text: str) -> list[int]:
        """Token ids of normalized text; raises ValueError naming any unknown character."""
        unknown = self.find_unknown(text)
        if unknown:
            raise ValueError(f"characters outside the vocabulary: {sorted(unknown)!r} in {text!r}")
        return [self._index[tok] for tok in self.split(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of token ids (blanks are skipped; CTC collapsing is the decoder's job);
        phone text for phone units."""
        tokens = [self.tokens[i] for i in ids if i != self.blank_id]
        if not self.phonetic:
            return "".join(tokens)
        text = ""
        for tok in tokens:
            joined = tok == " " or not text or text.endswith(" ")
            text += tok if joined else PHONE_JOINER + tok
        return text

    def to_list(self) -> list[str]:
        return list(self.tokens)

    @classmethod
    def from_list(cls, tokens: Sequence[str]) -> Vocabulary:
        return cls(tuple(tokens))
