"""Beam search: agrees with greedy when the acoustics are certain, follows the lexicon and
the LM when they are not, batches and parallel workers change nothing."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from helpers import VOCAB, needs_kenlm, peaky_log_probs, text_log_probs

from asr.decode import DecodingOptions, decode
from asr.inference.lm import build_lm, write_lexicon

BEAM = DecodingOptions(decoder="beam", beam_size=16)


def _batch(mats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lens = torch.tensor([m.shape[0] for m in mats])
    batch = torch.full((len(mats), int(lens.max()), len(VOCAB)), -30.0)
    for b, m in enumerate(mats):
        batch[b, : m.shape[0]] = m
    return batch, lens


@pytest.mark.parametrize("text", ["the cat", "a", "all will see", "don't go"])
def test_beam_equals_greedy_on_certain_input(text):
    log_probs, lens = _batch([text_log_probs(text)])
    greedy = decode(log_probs, lens, VOCAB)[0]
    beam = decode(log_probs, lens, VOCAB, BEAM)[0]
    assert beam.text == greedy.text == text
    assert beam.token_ids == greedy.token_ids
    assert beam.timesteps == greedy.timesteps


def test_batched_equals_one_by_one_and_workers_change_nothing():
    texts = ["the cat sat", "we go", "look up at the sun", "no"]
    mats = [text_log_probs(t, frames) for t, frames in zip(texts, [3, 4, 2, 5], strict=True)]
    log_probs, lens = _batch(mats)
    alone = [decode(*_batch([m]), VOCAB, BEAM)[0] for m in mats]
    batched = decode(log_probs, lens, VOCAB, BEAM)
    parallel = decode(log_probs, lens, VOCAB, DecodingOptions(**{**vars(BEAM), "num_workers": 2}))
    for a, b, p, text in zip(alone, batched, parallel, texts, strict=True):
        assert a.text == b.text == p.text == text
        assert a.timesteps == b.timesteps == p.timesteps
        assert a.score == pytest.approx(b.score, abs=1e-4) == pytest.approx(p.score, abs=1e-4)


def test_lexicon_constrains_words(tmp_path):
    # "c [a|s] t": acoustics prefer the non-word "cst"; the lexicon only allows "cat".
    spans = [{"c": 1.0}, {"s": 0.6, "a": 0.4}, {"t": 1.0}]
    log_probs, lens = _batch([peaky_log_probs(spans)])
    assert decode(log_probs, lens, VOCAB)[0].text == "cst"
    write_lexicon(["cat", "dog"], tmp_path / "lexicon.txt")
    opts = DecodingOptions(decoder="beam", lexicon_path=str(tmp_path / "lexicon.txt"))
    assert decode(log_probs, lens, VOCAB, opts)[0].text == "cat"


def test_lexicon_words_keeps_the_first_words_only(tmp_path):
    """decoding.lexicon_words: a word past the cap cannot be emitted (lexicons list the
    commonest words first); 0 keeps them all."""
    spans = [{"c": 1.0}, {"s": 0.6, "a": 0.4}, {"t": 1.0}]
    log_probs, lens = _batch([peaky_log_probs(spans)])
    write_lexicon(["cot", "cst", "cat"], tmp_path / "lexicon.txt")
    lexicon = str(tmp_path / "lexicon.txt")
    capped = {n: DecodingOptions("beam", lexicon_path=lexicon, lexicon_words=n) for n in (0, 2, 1)}
    texts = {n: decode(log_probs, lens, VOCAB, opts)[0].text for n, opts in capped.items()}
    assert texts == {0: "cst", 2: "cst", 1: "cot"}


def test_a_prepared_decoder_is_the_one_searches_use(tmp_path, monkeypatch):
    """prepare_decoder builds in the background; the search waits for it and does not build
    twice; a build that fails there fails the search with its own message."""
    import asr.decode as decode_module

    write_lexicon(["cat", "dog"], tmp_path / "prepared.txt")
    opts = DecodingOptions(decoder="beam", lexicon_path=str(tmp_path / "prepared.txt"))
    builds = []
    build = decode_module._beam_decoder.__wrapped__
    monkeypatch.setattr(decode_module, "_beam_decoder", functools.lru_cache(
        lambda *args: builds.append(args) or build(*args)))  # fmt: skip
    decode_module.prepare_decoder(VOCAB, opts)
    spans = [{"c": 1.0}, {"s": 0.6, "a": 0.4}, {"t": 1.0}]
    assert decode(*_batch([peaky_log_probs(spans)]), VOCAB, opts)[0].text == "cat"
    assert len(builds) == 1
    missing = DecodingOptions(decoder="beam", lm_path=str(tmp_path / "gone.bin"))
    decode_module.prepare_decoder(VOCAB, missing)
    with pytest.raises(FileNotFoundError, match="gone.bin"):
        decode(*_batch([text_log_probs("a")]), VOCAB, missing)


def test_nbest_is_sorted_and_distinct():
    spans = [{"c": 1.0}, {"a": 0.5, "o": 0.3, "u": 0.2}, {"t": 1.0}]
    log_probs, lens = _batch([peaky_log_probs(spans)])
    best = decode(log_probs, lens, VOCAB, DecodingOptions(decoder="beam", nbest=3))[0]
    texts = [best.text] + [h.text for h in best.alternatives]
    assert texts == ["cat", "cot", "cut"]
    scores = [best.score] + [h.score for h in best.alternatives]
    assert scores == sorted(scores, reverse=True)


def test_missing_lm_file_is_named(tmp_path):
    opts = DecodingOptions(decoder="beam", lm_path=str(tmp_path / "nope.bin"))
    with pytest.raises(FileNotFoundError, match="nope.bin"):
        decode(*_batch([text_log_probs("a")]), VOCAB, opts)


@pytest.mark.parametrize(
    "field, value",
    [
        ("beam_size", 0),
        ("nbest", 0),
        ("num_workers", 0),
        ("beam_threshold", 0),
        ("lexicon_words", -1),
        ("beam_size_token", -1),  # once: free(): invalid pointer, exit 134
        ("beam_size", 10**9),  # once: 71 s, 6 GB, then std::bad_alloc
        ("lm_weight", float("nan")),  # once: "" with exit 0
        ("beam_threshold", float("nan")),
        ("word_score", float("inf")),  # once: word salad
        ("lm_weight", -math.inf),
        ("sil_score", math.nan),
        ("unk_score", math.inf),
    ],
)
def test_bad_options_are_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        DecodingOptions(decoder="beam", **{field: value})


@needs_kenlm
@pytest.mark.parametrize("unit", ["word", "char"])
def test_lm_picks_the_likely_homophone(tmp_path, unit):
    # "we [see|sea]": equal acoustics; the LM has only ever seen "we see".
    text = tmp_path / "text.txt"
    text.write_text("we see\nwe see a cat\nthe sea is big\n" * 3)
    build_lm(text, tmp_path / "lm", order=3, unit=unit)
    spans = [{"w": 1.0}, {"e": 1.0}, {" ": 1.0}, {"s": 1.0}, {"e": 1.0}, {"a": 0.5, "e": 0.5}]
    log_probs, lens = _batch([peaky_log_probs(spans)])
    lexicon = str(tmp_path / "lm" / "lexicon.txt") if unit == "word" else None
    opts = DecodingOptions(
        decoder="beam", lm_path=str(tmp_path / "lm" / "lm.bin"), lexicon_path=lexicon, nbest=2
    )
    best = decode(log_probs, lens, VOCAB, opts)[0]
    assert [best.text, best.alternatives[0].text] == ["we see", "we sea"]
    # Not a tie broken by luck: the LM separates the two (it once scored the wrong letters).
    assert best.score > best.alternatives[0].score + 1.0
