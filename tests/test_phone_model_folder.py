"""The second shipped folder, data/models/en-phones (issue 10, direction 2): a phone-unit
model whose lexicon search spells words from pronunciations. Within the size budget, its
lexicon in the model's phones, and it transcribes the sample on both runtimes alike."""

import pytest
from helpers import MODEL_FOLDER_FILES, ROOT, SAMPLE, SAMPLE_TEXT, folder_file_sizes

import asr
from asr.metrics import error_counts
from asr.text import normalize_text

PHONES_MODEL = ROOT / "data" / "models" / "en-phones"
CHAR_LEXICON = ROOT / "data" / "models" / "en-default" / "lm" / "lexicon.txt"
SAMPLE_MAX_WER = 0.25  # measured: 0.0625 (1 of 16 words, "walked" as "looked")


@pytest.fixture(scope="module")
def recognizer():
    return asr.load_model(PHONES_MODEL, device="cpu")


def test_folder_holds_model_lm_and_phone_lexicon_within_60_mb():
    sizes = folder_file_sizes(PHONES_MODEL)
    assert sizes.keys() >= MODEL_FOLDER_FILES
    assert sum(sizes.values()) <= 60 * 2**20


def test_lexicon_spells_words_in_the_models_phones(recognizer):
    units = set(recognizer.vocab.tokens)
    lines = (PHONES_MODEL / "lm" / "lexicon.txt").read_text(encoding="utf-8").splitlines()
    words = [line.split(maxsplit=1)[0] for line in lines]
    chars = CHAR_LEXICON.read_text(encoding="utf-8").splitlines()
    char_words = [line.split(maxsplit=1)[0] for line in chars]
    kept = set(words)
    assert words == [w for w in char_words if w in kept]  # its words, in its order
    assert len(words) >= 0.99 * len(char_words)  # few are left out (unpronounced, homophones)
    word, *spelling = lines[0].split()
    assert (word, spelling) == ("the", ["DH", "AH", "|"])
    spellings = [line.split()[1:] for line in lines]
    assert all(s[-1] == "|" and set(s[:-1]) <= units for s in spellings)  # "|": word boundary


@pytest.mark.slow
def test_phone_model_transcribes_the_sample_alike_on_both_runtimes():
    texts = []
    for runtime in ("onnx", "torch"):
        (result,) = asr.load_model(PHONES_MODEL, device="cpu", runtime=runtime).transcribe([SAMPLE])
        texts.append(result.raw_text)  # the spoken words, as WER scores them
    wer = error_counts([SAMPLE_TEXT], [normalize_text(texts[0])], "word").rate
    assert wer <= SAMPLE_MAX_WER, texts[0]
    assert texts[0] == texts[1]


def test_phone_models_timed_words_are_its_lexicon_words(recognizer):
    (result,) = recognizer.transcribe([SAMPLE], word_timestamps=True)
    assert [w.word for w in result.words] == result.raw_text.split()  # not "DH.AH"
    assert all(w.start < w.end for w in result.words)
