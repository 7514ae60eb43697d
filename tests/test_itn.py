"""Inverse text normalization: spoken words -> a book's written forms, table-driven."""

from __future__ import annotations

import pytest

from asr.punctuation.itn import ItnConfig, Token, inverse_normalize, parse_cardinal
from asr.text import normalize_text


def _tokens(text: str) -> list[Token]:
    """'Mister John, twenty' -> tokens with marks split off, one spoken index each."""
    tokens = []
    for i, word in enumerate(text.split()):
        mark = word[-1] if word[-1] in ",.?!" else ""
        tokens.append(Token(word.rstrip(",.?!"), mark, (i,)))
    return tokens


def _written(text: str, config: ItnConfig | None = None) -> str:
    tokens = inverse_normalize(_tokens(text), config or ItnConfig())
    return " ".join(t.text + t.mark for t in tokens)


@pytest.mark.parametrize(
    "spoken, written",
    [
        ("in nineteen ninety eight", "in 1998"),
        ("eighteen oh five", "1805"),
        ("twenty nineteen", "2019"),
        ("one thousand nine hundred and ninety eight", "1998"),
        ("twenty five dollars", "$25"),
        ("one dollar", "$1"),
        ("two dollars and fifty cents", "$2.50"),
        ("five percent", "5%"),
        ("two point five percent", "2.5%"),
        ("two point five", "2.5"),
        ("the third of may", "the 3rd of May"),
        ("the twenty first of june", "the 21st of June"),
        ("may third", "May 3rd"),
        ("at three thirty p m", "at 3:30 p.m."),
        ("at ten a m", "at 10 a.m."),
        ("at nine oh five a m", "at 9:05 a.m."),
        ("one hundred and five", "105"),
        ("three thousand two hundred and twelve", "3212"),
        ("Mister John", "Mr. John"),
        ("Missus Dashwood", "Mrs. Dashwood"),
        ("Doctor Watson", "Dr. Watson"),
        # book style: small and round numbers stay words
        ("twenty five years", "twenty five years"),
        ("three hundred men", "three hundred men"),
        ("a thousand and one nights", "a thousand and one nights"),
        ("the third man", "the third man"),
        ("the one who came", "the one who came"),
        ("the doctor came", "the doctor came"),  # no name after it
        ("mister, john", "mister, john"),  # a mark: no title
        ("nineteen, ninety", "nineteen, ninety"),  # a mark ends a number
        ("one two three", "one two three"),
        ("ten twenty", "ten twenty"),  # no year below 1100
    ],
)
def test_written_forms(spoken, written):
    assert _written(spoken) == written


@pytest.mark.parametrize(
    "number", [0, 7, 13, 20, 45, 100, 105, 999, 1000, 1001, 1998, 2005, 30_040, 1_200_300]
)
def test_parse_cardinal_inverts_the_normalizer(number):
    assert parse_cardinal(normalize_text(str(number + 10**7)).split()) == number + 10**7
    if not 1100 <= number <= 2099:  # the normalizer says those as years
        assert parse_cardinal(normalize_text(str(number)).split()) == number


@pytest.mark.parametrize("words", [["one", "two"], ["hundred"], ["and"], ["third"], []])
def test_parse_cardinal_refuses_what_is_not_one_number(words):
    assert parse_cardinal(words) is None


def test_merged_words_keep_their_spoken_indices():
    tokens = inverse_normalize(_tokens("he paid twenty five dollars in nineteen ninety eight."))
    assert [(t.text, t.mark, t.spoken) for t in tokens] == [
        ("he", "", (0,)),
        ("paid", "", (1,)),
        ("$25", "", (2, 3, 4)),
        ("in", "", (5,)),
        ("1998", ".", (6, 7, 8)),
    ]


def test_min_digits_is_the_plain_number_threshold():
    assert _written("forty two", ItnConfig(min_digits=10)) == "42"
    assert _written("one hundred and five", ItnConfig(min_digits=1000)) == "one hundred and five"
    with pytest.raises(ValueError, match="min_digits"):
        ItnConfig(min_digits=-1)
