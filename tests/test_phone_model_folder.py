"""The second shipped folder, data/models/en-phones (issue 10, direction 2): a phone-unit
model whose lexicon search spells words from pronunciations. Within the size budget, its
lexicon in the model's phones, and it transcribes the sample on both runtimes alike."""

from pathlib import Path

import pytest

import asr
from asr.metrics import error_counts
from asr.text import normalize_text

ROOT = Path(__file__).resolve().parent.parent
PHONES_MODEL = ROOT / "data" / "models" / "en-phones"
SAMPLE = ROOT / "data" / "samples" / "sample.wav"  # as in test_bundled_model.py
SAMPLE_TEXT = (
    "the old man walked slowly along the river thinking of the long winter that was coming"
)
SAMPLE_MAX_WER = 0.25  # measured: 0.0625 (1 of 16 words, "walked", dropped)


@pytest.fixture(scope="module")
def recognizer():
    return asr.load_model(PHONES_MODEL, device="cpu")


def test_folder_holds_model_lm_and_phone_lexicon_within_60_mb():
    files = [p for p in PHONES_MODEL.rglob("*") if p.is_file()]
    names = {p.relative_to(PHONES_MODEL).as_posix() for p in files}
    assert {"model.pt", "model.onnx", "decoding.json", "lm/lm.bin", "lm/lexicon.txt"} <= names
    assert sum(p.stat().st_size for p in files) <= 60 * 2**20


def test_lexicon_spells_words_in_the_models_phones(recognizer):
    units = set(recognizer.vocab.tokens)
    lines = (PHONES_MODEL / "lm" / "lexicon.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 99_929  # 100k words, 71 past 6 homophones left out (as the trie would)
    word, *spelling = lines[0].split()
    assert (word, spelling) == ("the", ["DH", "AH", "|"])
    spellings = [line.split()[1:] for line in lines]
    assert all(s[-1] == "|" and set(s[:-1]) <= units for s in spellings)  # "|": word boundary


@pytest.mark.slow
def test_phone_model_transcribes_the_sample_alike_on_both_runtimes():
    texts = []
    for runtime in ("onnx", "torch"):
        (result,) = asr.load_model(PHONES_MODEL, device="cpu", runtime=runtime).transcribe([SAMPLE])
        texts.append(result.text)
    wer = error_counts([SAMPLE_TEXT], [normalize_text(texts[0])], "word").rate
    assert wer <= SAMPLE_MAX_WER, texts[0]
    assert texts[0] == texts[1]
