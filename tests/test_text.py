import pytest

from asr.text import BLANK, Vocabulary, normalize_text, number_to_words

NORMALIZE_CASES = [
    ("Hello, World!", "hello world"),
    ("  MANY   spaces\tand\nlines ", "many spaces and lines"),
    ("Don't stop", "don't stop"),
    ("\u2018quoted\u2019 dogs' bones", "quoted dogs bones"),
    ("it\u2019s", "it's"),
    ("Café naïve", "cafe naive"),
    ("well-known 1/2", "well known one two"),
    # numbers as they are said (issue 25: "1998" once scored a perfect "nineteen ninety
    # eight" at 33% WER): years, decades, money, digit-by-digit codes, ordinals
    ("in 1984", "in nineteen eighty four"),
    ("In 1998, it ended.", "in nineteen ninety eight it ended"),
    ("in 1905 and 1900", "in nineteen oh five and nineteen hundred"),
    ("in 2005 and 2019", "in two thousand and five and twenty nineteen"),
    ("the 1990s", "the nineteen nineties"),
    ("the 1900s and 2000s", "the nineteen hundreds and two thousands"),
    ("$2.50 and $5", "two dollars and fifty cents and five dollars"),
    ("$1 or \u00a31.01", "one dollar or one pound and one penny"),
    ("$1,200.05", "one thousand two hundred dollars and five cents"),
    ("call 911 or 555-1234", "call nine one one or five five five one two three four"),
    ("agent 007", "agent oh oh seven"),
    ("1,998 men", "one thousand nine hundred and ninety eight men"),
    ("3,911 votes", "three thousand nine hundred and eleven votes"),
    ("room 101", "room one hundred and one"),
    ("the 3rd and 21st", "the third and twenty first"),
    ("2.5 percent", "two point five percent"),
    ("50% & more", "fifty percent and more"),
    ("1,000,000 people", "one million people"),
    ("MR. SMITH; (aged 40)", "mr smith aged forty"),
    ("straße", "straße"),  # letters outside a-z are kept so they can be reported
]


@pytest.mark.parametrize(("raw", "expected"), NORMALIZE_CASES)
def test_normalize(raw, expected):
    assert normalize_text(raw) == expected


def test_normalize_is_idempotent():
    for raw, _ in NORMALIZE_CASES:
        once = normalize_text(raw)
        assert normalize_text(once) == once


@pytest.mark.parametrize(
    ("number", "words"),
    [
        (0, "zero"),
        (13, "thirteen"),
        (40, "forty"),
        (105, "one hundred and five"),
        (1001, "one thousand and one"),
        (2300000, "two million three hundred thousand"),
    ],
)
def test_number_to_words(number, words):
    assert number_to_words(number) == words


def test_vocabulary_round_trip():
    vocab = Vocabulary.english()
    assert len(vocab) == 29 and vocab.tokens[0] == BLANK and vocab.blank_id == 0
    text = "it's a test"
    assert vocab.decode(vocab.encode(text)) == text
    assert Vocabulary.from_list(vocab.to_list()) == vocab


def test_vocabulary_reports_unknown_characters():
    vocab = Vocabulary.english()
    assert vocab.find_unknown("straße") == {"ß"}
    with pytest.raises(ValueError, match="ß"):
        vocab.encode("straße")


def test_vocabulary_must_start_with_blank():
    with pytest.raises(ValueError, match="starts with"):
        Vocabulary(("a", "b"))
