import math

import pytest
import torch

from asr.decode import decode, greedy_search
from asr.text import Vocabulary

VOCAB = Vocabulary.english()
B = 0  # blank


def log_probs_for(paths: list[list[int]], vocab_size: int = len(VOCAB)) -> torch.Tensor:
    """(B, T, V) log-probs whose per-frame argmax is the given path (padded with blanks)."""
    frames = max(len(p) for p in paths)
    out = torch.full((len(paths), frames, vocab_size), math.log(0.01))
    for b, path in enumerate(paths):
        for t in range(frames):
            out[b, t, path[t] if t < len(path) else B] = math.log(0.9)
    return out


def ids(text: str) -> list[int]:
    return VOCAB.encode(text)


CASES = [
    # frame-level best path, expected text
    ([B, B, B], ""),
    (ids("a"), "a"),
    ([*ids("a"), *ids("a"), B, *ids("a")], "aa"),  # repeats merge, a blank separates
    ([*ids("h"), B, *ids("e"), *ids("l"), *ids("l"), B, *ids("l"), *ids("o")], "hello"),
    ([*ids(" "), *ids("h"), *ids("i"), *ids(" "), *ids(" ")], "hi"),  # edge spaces trimmed
    ([*ids("a"), *ids(" "), *ids(" "), B, *ids(" "), *ids("b")], "a b"),  # one space kept
]


@pytest.mark.parametrize(("path", "text"), CASES)
def test_greedy_text(path, text):
    log_probs = log_probs_for([path])
    (hyp,) = decode(log_probs, torch.tensor([len(path)]), VOCAB)
    assert hyp.text == text


def test_greedy_respects_lengths_in_a_padded_batch():
    long_path = ids("abc")
    short_path = ids("x")
    log_probs = log_probs_for([long_path, short_path])
    # Frames past the short utterance's length say "z": they must be ignored.
    log_probs[1, 1:, :] = math.log(0.01)
    log_probs[1, 1:, VOCAB.encode("z")[0]] = math.log(0.9)
    hyps = decode(log_probs, torch.tensor([3, 1]), VOCAB)
    assert [h.text for h in hyps] == ["abc", "x"]


def test_greedy_timesteps_and_score():
    path = [B, *ids("a"), *ids("a"), B, *ids("b")]
    log_probs = log_probs_for([path])
    ((tokens, frames, score),) = greedy_search(log_probs, torch.tensor([5]))
    assert tokens == ids("ab")
    assert frames == [1, 4]
    assert score == pytest.approx(5 * math.log(0.9))
