"""Shared helpers for decoder tests: hand-built CTC log-prob matrices."""

from __future__ import annotations

import shutil

import pytest
import torch

from asr.text import Vocabulary

VOCAB = Vocabulary.english()

needs_kenlm = pytest.mark.skipif(
    shutil.which("lmplz") is None or shutil.which("build_binary") is None,
    reason="KenLM tools missing (scripts/install_kenlm.sh)",
)


def peaky_log_probs(
    spans: list[dict[str, float]], frames_per_token: int = 3, floor: float = -12.0
) -> torch.Tensor:
    """(T, V) log-probs: per span, one frame with the given {char: prob} mixture, then blanks.

    A span {"a": 0.6, "o": 0.4} is an acoustically ambiguous character; " " is a word
    boundary. Every other frame is blank, so repeats stay separate tokens.
    """
    rows = []
    for span in spans:
        emit = torch.full((len(VOCAB),), floor)
        for char, prob in span.items():
            emit[VOCAB.encode(char)[0]] = torch.tensor(prob).log()
        rows.append(emit)
        blank = torch.full((len(VOCAB),), floor)
        blank[VOCAB.blank_id] = 0.0
        rows += [blank] * (frames_per_token - 1)
    return torch.stack(rows).log_softmax(dim=-1)


def text_log_probs(text: str, frames_per_token: int = 3) -> torch.Tensor:
    """(T, V) log-probs that spell `text` with certainty."""
    return peaky_log_probs([{ch: 1.0} for ch in text], frames_per_token)
