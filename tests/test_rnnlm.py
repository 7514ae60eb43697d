"""The word LSTM LM (n-best rescoring, benchmarks/rescore.py): the held-out rule, a short
fit that learns word order, and the scorer reading back what the fit wrote."""

from __future__ import annotations

import json
import random

import pytest

torch = pytest.importorskip("torch")

from asr.rnnlm.data import EOS, UNK, VALID_EVERY, build_vocab, read_lines  # noqa: E402
from asr.rnnlm.model import RNNLMConfig  # noqa: E402
from asr.rnnlm.score import RNNLMScorer  # noqa: E402
from asr.rnnlm.train import RNNLMTrainConfig, fit  # noqa: E402

SUBJECTS = ["the cat", "a dog", "the old man", "my sister"]
VERBS = ["sat on", "looked at", "walked to", "slept near"]
PLACES = ["the mat", "a door", "the river", "my house"]


def _grammar_text(path, lines: int = 3000) -> None:
    rng = random.Random(0)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(lines):
            f.write(f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(PLACES)}\n")


def test_every_500th_line_is_held_out(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("".join(f"line {i}\n" for i in range(1200)))
    train, valid = read_lines(path)
    assert valid == [f"line {i}" for i in range(0, 1200, VALID_EVERY)]
    assert len(train) + len(valid) == 1200 and not set(train) & set(valid)
    vocab = build_vocab(train, 5)
    assert vocab.words[:3] == (EOS, UNK, "line") and len(vocab.words) == 5
    assert vocab.encode("line unheard") == [2, 1, 0]


@pytest.mark.slow
def test_a_short_fit_learns_word_order(tmp_path):
    _grammar_text(tmp_path / "text.txt")
    model = RNNLMConfig(vocab_size=20, embed_dim=16, hidden_size=32, cutoffs=(8, 14))
    config = RNNLMTrainConfig(
        model=model, batch_size=8, bptt=8, max_minutes=0.15, eval_every=100, threads=1
    )
    best = fit(tmp_path / "text.txt", tmp_path / "run", config)
    log = (tmp_path / "run/train.log").read_text().splitlines()
    logged = [json.loads(line) for line in log]
    assert best["valid_ppl"] == min(line["valid_ppl"] for line in logged) < 6
    scorer = RNNLMScorer(tmp_path / "run/rnnlm.pt")
    heard, shuffled, empty = scorer.log_probs(
        ["the cat sat on the mat", "mat the on sat cat the", ""]
    )
    assert heard > shuffled + 5 and empty < 0
    assert scorer.log_probs([]) == []
