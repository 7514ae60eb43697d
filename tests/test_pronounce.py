"""Pronunciations for phone targets: CMUdict lookup, the espeak-ng fallback, unknown words."""

import shutil

import pytest

from asr.pronounce import PHONE_TOKENS, PHONES, Pronouncer, ipa_to_phones, load_cmudict

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")


def test_phone_set_is_arpabet_without_stress():
    assert len(PHONES) == 39 and len(set(PHONES)) == 39
    assert PHONE_TOKENS[0] == "<blank>" and PHONE_TOKENS[1:] == PHONES


def test_cmudict_lookup_drops_stress():
    pron = Pronouncer(load_cmudict(), fallback=None)
    assert pron.phones("cat") == ["K", "AE", "T"]
    assert pron.sentence("the cat") == ["DH", "AH", "K", "AE", "T"]
    assert pron.phones("don't") == ["D", "OW", "N", "T"]
    assert all(p in PHONES for p in pron.sentence("hello world thought measure"))


def test_unknown_word_without_fallback_is_counted_not_guessed():
    pron = Pronouncer({"cat": ["K", "AE", "T"]}, fallback=None)
    assert pron.sentence("cat zzyzx cat") == ["K", "AE", "T", "K", "AE", "T"]
    assert pron.unknown == {"zzyzx": 1}


def test_fallback_fills_missing_words_in_one_pass():
    calls = []

    def fallback(words):
        calls.append(list(words))
        return {w: ["B"] for w in words if w != "qq"}

    pron = Pronouncer({"a": ["AH"]}, fallback=fallback)
    pron.prepare(["a", "bob", "qq", "bob"])
    assert calls == [["bob", "qq"]]
    assert pron.sentence("a bob qq") == ["AH", "B"]
    assert pron.unknown == {"qq": 1}
    assert pron.encode("bob a") == [PHONE_TOKENS.index("B"), PHONE_TOKENS.index("AH")]


@pytest.mark.parametrize(
    ("ipa", "phones"),
    [
        ("sˈælvɚ", ["S", "AE", "L", "V", "ER"]),
        ("tʃˈɜːtʃ", ["CH", "ER", "CH"]),
        ("kˈɑːɹɹəz", ["K", "AA", "R", "AH", "Z"]),  # doubled r merged
        ("dʒˈʌdʒ", ["JH", "AH", "JH"]),
        ("ˈaʊt", ["AW", "T"]),
    ],
)
def test_ipa_to_phones(ipa, phones):
    assert ipa_to_phones(ipa) == phones


@needs_espeak
def test_espeak_spells_a_word_cmudict_lacks():
    pron = Pronouncer.default()
    assert "gathercole" not in pron.dictionary
    phones = pron.phones("gathercole")
    assert phones[:3] == ["G", "AE", "DH"] and set(phones) <= set(PHONES)
    assert not pron.unknown
