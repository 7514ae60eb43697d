"""The punctuation and case tagger: labels from book text, the held-out rule, a tiny model
trained here and run by onnxruntime, the bundled model, and `asr punctuate` on stdin."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import numpy as np
import pytest
from helpers import ROOT

from asr.punctuation import PunctModelError, Punctuator, RestoreOptions, restore_lines
from asr.punctuation.data import (
    CASES,
    PUNCTS,
    held_out_ids,
    make_vocabulary,
    paragraphs,
    tag_paragraph,
)
from asr.punctuation.restore import DEFAULT_PUNCT_MODEL


def _words(text: str) -> list[str]:
    return text.split(" ")


_CASE_SIGNS = {"lower": "", "capital": "^", "upper": "^^", "mixed": "~"}


def _signed(paragraph: str) -> str:
    """'Mr. McDonald, 25?' -> 'mister mcdonald~, twenty five?' (^ capital, ^^ upper)."""
    tagged = tag_paragraph(paragraph)
    return " ".join(
        w + _CASE_SIGNS[CASES[c]] + PUNCTS[p]
        for w, c, p in zip(tagged.words, tagged.cases, tagged.puncts, strict=True)
    )


@pytest.mark.parametrize(
    "paragraph, signed",
    [
        ("The cat sat.", "the^ cat sat."),
        ("“Is it?” said he; “no—never!”", "is^ it? said he, no, never!"),
        (
            "Mr. McDonald paid $25 in 1998.",
            "mister mcdonald~ paid twenty five dollars in nineteen ninety eight.",
        ),
        ("The USA (then young) grew...", "the^ usa^^, then young, grew."),
        ("an after-dinner talk: 5% off", "an after dinner talk, five percent off"),
        ("I said, ‘don’t’", "i^ said, don't"),
    ],
)
def test_book_text_becomes_spoken_words_and_labels(paragraph, signed):
    assert _signed(paragraph) == signed


def test_paragraphs_skip_headings_and_verse():
    text = (
        "CHAPTER I\n\nThe Time Traveller (for so it will be convenient to speak of him) was\n"
        "expounding a recondite matter to us. His pale grey eyes shone and twinkled.\n\n"
        "Of Man's first disobedience, and the fruit\nOf that forbidden tree whose mortal taste\n"
        "Brought death into the World, and all our woe,\n"
    )
    assert [p[:20] for p in paragraphs(text)] == ["The Time Traveller ("]


def test_held_out_rule(tmp_path):
    rows = ["file\tgutenberg_id\ttitle"] + [f"books/pg{i}.txt\t{i}\tt" for i in range(1, 300)]
    (tmp_path / "index.tsv").write_text("\n".join(rows) + "\n")
    assert held_out_ids(tmp_path) == [7, 17, 27, 37, 47, 57, 67, 77, 87, 97]
    assert held_out_ids(tmp_path, "3")[:2] == [3, 13]


_SENTENCES = [
    "Is it raining?",
    "Yes, it is.",
    "John went home.",
    "Mary stayed with him.",
    "What did you see?",
    "We saw the sea, the sky and the hills.",
    "Stop!",
]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A 1-layer tagger trained for a few seconds on seven sentences, exported to ONNX."""
    torch = pytest.importorskip("torch")
    from asr.punctuation.model import Tagger, TaggerConfig
    from asr.punctuation.train import (
        TrainConfig,
        compute_loss,
        export,
        random_batch,
        save_checkpoint,
    )

    rng = random.Random(0)
    text = " ".join(rng.choice(_SENTENCES) for _ in range(600))
    tagged = tag_paragraph(text)
    vocabulary = make_vocabulary(tagged.words, 100)
    index = {w: i for i, w in enumerate(vocabulary)}
    split = {
        "ids": np.array([index[w] for w in tagged.words]),
        "cases": np.array(tagged.cases),
        "puncts": np.array(tagged.puncts),
    }
    torch.manual_seed(0)
    model = Tagger(TaggerConfig(len(vocabulary), embed_dim=16, hidden=32, layers=1, dropout=0))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    config, batches = TrainConfig(batch_words=512, min_len=6, max_len=24), np.random.default_rng(0)
    for _ in range(150):
        loss = compute_loss(model, *random_batch(split, config, batches))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    folder = tmp_path_factory.mktemp("punct")
    save_checkpoint(model.eval(), vocabulary, {}, folder / "tagger.pt")
    export(folder / "tagger.pt", folder / "model", half=False)
    return model, folder / "model"


def test_tiny_tagger_learns_its_sentences(tiny_model):
    _, folder = tiny_model
    punctuator = Punctuator(folder)
    restored = punctuator.restore(
        ["is", "it", "raining", "yes", "it", "is", "john", "went", "home"]
    )
    assert restored.text == "Is it raining? Yes, it is. John went home."


def test_onnx_runtime_equals_torch(tiny_model):
    torch = pytest.importorskip("torch")
    model, folder = tiny_model
    runtime = Punctuator(folder).tagger
    words = [
        "what",
        "did",
        "you",
        "see",
        "we",
        "saw",
        "the",
        "sea",
        "the",
        "sky",
        "and",
        "an",
        "unknown",
        "word",
    ]
    case_logits, punct_logits = runtime.logits(words)  # (T, C), (T, P)
    ids = torch.tensor([[runtime.index.get(w, 0) for w in words]])
    with torch.no_grad():
        expected = [x[0].numpy() for x in model(ids)]
    np.testing.assert_allclose(case_logits, expected[0], atol=1e-4)
    np.testing.assert_allclose(punct_logits, expected[1], atol=1e-4)


def test_every_spoken_word_maps_to_one_written_word(tiny_model):
    _, folder = tiny_model
    words = [
        "john",
        "paid",
        "twenty",
        "five",
        "dollars",
        "in",
        "nineteen",
        "ninety",
        "eight",
        "stop",
    ]
    restored = Punctuator(folder).restore(words)
    spoken = [k for w in restored.words for k in w.spoken]
    assert spoken == list(range(len(words)))
    assert "$25" in restored.text and "1998" in restored.text
    assert restored.text == " ".join(w.text for w in restored.words)


def test_timed_words_keep_their_timings(tiny_model):
    from asr.inference.align import WordTiming
    from asr.punctuation import restore_transcript

    words = _words("john paid twenty five dollars stop")
    timings = [WordTiming(w, i, i + 0.5, 0.9 - 0.1 * i) for i, w in enumerate(words)]
    punctuator = Punctuator(tiny_model[1])
    text, written = restore_transcript(" ".join(words), timings, punctuator)
    assert text == " ".join(w.word for w in written)
    money = next(w for w in written if w.word.startswith("$25"))
    assert (money.start, money.end) == (2, 4.5)
    assert money.confidence == pytest.approx(0.5)  # the lowest of its three words
    assert restore_transcript(" ".join(words), (), punctuator) == (text, [])


def test_options_leave_the_utterance_open(tiny_model):
    _, folder = tiny_model
    options = RestoreOptions(sentence_start=False, end_sentence=False)
    assert Punctuator(folder).restore(["and"], options).text == "and"


def test_not_a_model_folder_is_a_user_error(tmp_path):
    with pytest.raises(PunctModelError, match="no model.onnx"):
        Punctuator(tmp_path)


def test_punctuate_reads_stdin(tiny_model):
    _, folder = tiny_model
    run = subprocess.run(
        [sys.executable, "-m", "asr", "punctuate", "-", "--model", str(folder)],
        input="is it raining yes it is\n\nJohn went HOME\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[:3] == ["Is it raining? Yes, it is.", "", "John went home."]


_NO_TORCH = """
import sys
sys.modules["torch"] = None  # any import of torch now raises ImportError
from asr.cli import main
sys.exit(main(["punctuate", "-", "--model", sys.argv[1]]))
"""


def test_punctuate_runs_without_torch(tiny_model):
    """The light install has no torch: the restorer is numpy and onnxruntime only."""
    _, folder = tiny_model
    run = subprocess.run(
        [sys.executable, "-c", _NO_TORCH, str(folder)],
        input="stop\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == "Stop!\n"


def test_punctuate_names_a_missing_file(tiny_model):
    _, folder = tiny_model
    run = subprocess.run(
        [sys.executable, "-m", "asr", "punctuate", "no/such.txt", "--model", str(folder)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert run.returncode == 2 and "no/such.txt" in run.stderr


@pytest.mark.skipif(not DEFAULT_PUNCT_MODEL.is_dir(), reason="no bundled punctuation model")
def test_bundled_model_writes_the_issue_sentence():
    spoken = (
        "and mister john dashwood had then leisure to consider how much there might be "
        "prudently in his power to do for them"
    )
    text = next(restore_lines([spoken]))
    assert text.startswith("And Mr. John Dashwood had then leisure")
    assert text.endswith(".")


def test_calibration_finds_the_offset_a_rare_mark_needs():
    from asr.punctuation.calibrate import tune_case_bias, tune_punct_bias

    reference = np.array([0, 0, 3, 0, 3, 2, 0])  # "?" twice, "." once
    logits = np.zeros((7, len(PUNCTS)))
    logits[:, 0] = 1.0
    logits[[2, 4], 3] = 0.6  # the tagger's "?" is 0.4 short of winning where it belongs
    logits[5, 2] = 2.0
    bias = tune_punct_bias(logits, reference)
    assert 0.4 < bias[3] <= 1.0 and bias[0] == 0
    assert ((logits + bias).argmax(-1) == reference).all()
    case_logits = np.zeros((3, len(CASES)))
    case_logits[:, 0] = [0.5, 2.0, 2.0]  # "lower" barely wins on the capital word
    case_bias = tune_case_bias(case_logits, np.array([1, 0, 0]))
    assert -2.0 < case_bias[0] < -0.5


@pytest.mark.parametrize(
    "form,typography",
    [("McDonald", False), ("IDs", False), ("D'Artagnan", False), ("MacGregor", False),
     ("ANYthing", True), ("ALexander", True), ("AEneas", True), ("SOAMEs", True)],
)  # fmt: skip
def test_typography_stays_out_of_the_mixed_table(form, typography):
    from asr.punctuation.data import is_typography

    assert is_typography(form) is typography


def test_the_bundled_mixed_table_holds_no_typography():
    from asr.punctuation.data import is_typography

    labels = json.loads((ROOT / "data/models/punct-en/labels.json").read_text())
    assert labels["mixed"] and not [f for f in labels["mixed"].values() if is_typography(f)]
