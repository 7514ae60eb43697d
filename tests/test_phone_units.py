"""Phones as the output unit (model.units = "phones"): the phone vocabulary and its text,
and a phone model end to end on the tone corpus, spelled back into words by the lexicon
beam search."""

import json

import pytest
from helpers import assert_written, train_tone_model

from asr.cli import main
from asr.corpora.tones import _WORDS
from asr.inference.export import write_phone_lexicon
from asr.inference.lm import write_lexicon
from asr.manifest import read_manifest
from asr.text import PHONES, Vocabulary
from asr.training.validate import unit_error_counts


def test_phone_vocabulary_round_trips_phone_text():
    vocab = Vocabulary.phones()
    assert vocab.phonetic and not Vocabulary.english().phonetic
    assert len(vocab) == 41 and vocab.tokens[:2] == ("<blank>", " ")
    assert set(PHONES) < set(vocab.tokens)
    ids = vocab.encode("DH.AH K.AE.T")
    assert ids == [vocab.index(t) for t in ("DH", "AH", " ", "K", "AE", "T")]
    assert vocab.decode([0, *ids, 0]) == "DH.AH K.AE.T"
    assert vocab.find_unknown("DH.XX K") == {"XX"}
    assert Vocabulary.for_units("chars") == Vocabulary.english()
    with pytest.raises(ValueError, match="model.units"):
        Vocabulary.for_units("syllables")


def test_phone_error_rate_counts_phones_not_letters():
    counts = unit_error_counts(["DH.AH K.AE.T"], ["DH.AH K.AH.T"], Vocabulary.phones())
    assert (counts.errors, counts.reference_length) == (1, 5)
    chars = unit_error_counts(["the cat"], ["the cut"], Vocabulary.english())
    assert (chars.errors, chars.reference_length) == (1, 7)


def test_phone_lexicon_keeps_the_first_words_of_a_pronunciation(tmp_path, monkeypatch):
    monkeypatch.setattr("asr.inference.export.TRIE_MAX_WORDS", 2)
    write_lexicon(["to", "cat", "two", "too"], tmp_path / "chars.txt")
    write_phone_lexicon(tmp_path / "chars.txt", tmp_path / "lexicon.txt")
    lines = (tmp_path / "lexicon.txt").read_text().splitlines()
    assert lines == ["to T UW |", "cat K AE T |", "two T UW |"]  # "too" is the third T UW


@pytest.fixture(scope="module")
def phone_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("phones")
    _, manifest = train_tone_model(root, 'model.units="phones"', "train.stop_at_wer=0.0")
    write_lexicon(_WORDS, root / "chars.txt")
    write_phone_lexicon(root / "chars.txt", root / "lexicon.txt")
    return root, manifest


@pytest.mark.slow
def test_phone_model_learns_the_tones_and_the_lexicon_spells_words(phone_model, capsys):
    root, manifest = phone_model
    last = json.loads((root / "exp" / "train.log").read_text().splitlines()[-1])
    assert last["valid_cer"] == 0.0  # phone error rate on the training sentences
    lexicon = (root / "lexicon.txt").read_text().splitlines()
    assert "cat K AE T |" in lexicon and len(lexicon) == len(_WORDS)
    utterances = read_manifest(manifest)
    capsys.readouterr()
    args = ["transcribe", *(u.audio_filepath for u in utterances), "--model", str(root / "exp")]
    beam = ["--decoder", "beam", "--lexicon", str(root / "lexicon.txt")]
    assert main([*args, *beam, "--output-format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["raw_text"] for r in records] == [u.text for u in utterances]
    for record in records:  # the lexicon's words, written
        assert_written(record["text"], record["raw_text"])
    assert main([*args, "--decoder", "greedy", "--output-format", "json"]) == 0
    greedy = json.loads(capsys.readouterr().out)
    assert set(greedy[0]["text"].replace(".", " ").split()) <= set(PHONES)  # not written
