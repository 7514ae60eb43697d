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
    ("in 1984", "in one thousand nine hundred and eighty four"),
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
