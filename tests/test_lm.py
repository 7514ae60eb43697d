"""LM text preparation (normalizer, sentence split, book exclusion) and the KenLM build."""

from __future__ import annotations

import json

import pytest
from helpers import needs_kenlm

from asr.inference.lm import LMError, build_lm, find_kenlm_tool, prepare_text, split_sentences

BOOK = """CHAPTER I.

It was 1984, and Mr. Smith's 3rd cat\u2014a "fine" one\u2014sat
on the mat. Was it? Yes!

He paid 2.5% of \u00a35 & left.  \u00c6sop\u2019s fable.
"""


@pytest.mark.parametrize(
    "paragraph, sentences",
    [
        ("One. Two! Three?", ["One.", "Two!", "Three?"]),
        ('"Go," he said. "Now."  Then   nothing', ['"Go," he said.', '"Now."', "Then nothing"]),
        ("No end", ["No end"]),
        ("Ask Mr. Brown. Or Dr. Who.", ["Ask Mr. Brown.", "Or Dr. Who."]),
        ("It cost 2.5 pounds. Fine.", ["It cost 2.5 pounds.", "Fine."]),
    ],
)
def test_split_sentences(paragraph, sentences):
    assert split_sentences(paragraph) == sentences


def test_prepare_text_normalizes_and_excludes_books(tmp_path):
    books = tmp_path / "books"
    books.mkdir()
    (books / "pg11.txt").write_text(BOOK)
    (books / "pg22.txt").write_text("Evaluation text. Must not leak.\n")
    out = tmp_path / "text.txt"
    stats = prepare_text([books], out, exclude_ids={22})
    lines = out.read_text().splitlines()
    assert lines == [
        "chapter i",
        "it was nineteen eighty four and mr smith's third cat a fine one sat on the mat",
        "was it",
        "yes",
        "he paid two point five percent of five pounds and left",
    ]
    # "Æsop's fable." has a letter outside a-z: dropped and reported, not silently.
    assert (stats.books, stats.excluded_books, stats.sentences) == (1, 1, 5)
    assert stats.dropped_sentences == 1 and "\u00e6" in stats.dropped_chars
    assert stats.words == sum(len(line.split()) for line in lines)


def test_prepare_text_reads_xz_compressed_books(tmp_path):
    import lzma

    books = tmp_path / "extra"
    books.mkdir()
    with lzma.open(books / "pg33.txt.xz", "wt", encoding="utf-8") as f:
        f.write("The \u2018second\u2019 folder\u2019s book.\n\nIt is compressed.\n")
    (books / "pg44.txt.xz").write_bytes(lzma.compress(b"Dev text, left out.\n"))
    out = tmp_path / "text.txt"
    stats = prepare_text([books], out, exclude_ids={44})
    assert out.read_text().splitlines() == ["the second folder's book", "it is compressed"]
    assert (stats.books, stats.excluded_books) == (1, 1)


def test_missing_book_is_named(tmp_path):
    with pytest.raises(LMError, match="nope.txt"):
        prepare_text([tmp_path / "nope.txt"], tmp_path / "out.txt")


def test_missing_kenlm_names_the_install_script(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("ASR_KENLM_BIN", raising=False)
    with pytest.raises(LMError, match="scripts/install_kenlm.sh"):
        find_kenlm_tool("lmplz")


@needs_kenlm
@pytest.mark.parametrize("unit, order", [("word", 3), ("char", 5)])
def test_build_lm_on_a_tiny_text(tmp_path, unit, order):
    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat\nthe dog sat\na cat ran\n")
    info = build_lm(text, tmp_path / "lm", order=order, unit=unit)
    arpa = (tmp_path / "lm" / "lm.arpa").read_text()
    assert f"\\{order}-grams:" in arpa
    assert (tmp_path / "lm" / "lm.bin").stat().st_size > 0
    assert json.loads((tmp_path / "lm" / "lm.json").read_text())["unit"] == unit
    if unit == "word":
        lexicon = (tmp_path / "lm" / "lexicon.txt").read_text().splitlines()
        assert lexicon[0] == "the t h e |"  # most frequent first
        assert sorted(line.split()[0] for line in lexicon) == sorted(
            {"the", "cat", "sat", "on", "mat", "dog", "a", "ran"}
        )
        assert info.vocab_size == 8
    else:
        assert " | " not in "\n".join(a for a in arpa.splitlines() if a.startswith("\\"))
        assert "\t|\t" in arpa or "\t|\n" in arpa  # the word boundary is an LM token


@needs_kenlm
def test_vocab_size_limits_lm_and_lexicon(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("the cat the dog the cat a bird\n")
    build_lm(text, tmp_path / "lm", order=2, vocab_size=2)
    words = [line.split()[0] for line in (tmp_path / "lm" / "lexicon.txt").read_text().splitlines()]
    assert words == ["the", "cat"]
    assert "bird" not in (tmp_path / "lm" / "lm.arpa").read_text()


@needs_kenlm
def test_a_failed_build_leaves_the_folder_as_it_was(tmp_path):
    from asr.inference.lm import LMError, build_lm

    (tmp_path / "good.txt").write_text("the cat sat\nthe dog ran\n" * 5)
    build_lm(tmp_path / "good.txt", tmp_path / "lm", order=2)
    before = {p.name: p.read_bytes() for p in (tmp_path / "lm").iterdir()}
    (tmp_path / "bad.txt").write_text("?! ...\n")  # normalizes to no words
    with pytest.raises(LMError, match="no words"):
        build_lm(tmp_path / "bad.txt", tmp_path / "lm", order=3)
    assert {p.name: p.read_bytes() for p in (tmp_path / "lm").iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.txt", "good.txt", "lm"]
