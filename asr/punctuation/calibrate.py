"""Per-class logit offsets that maximize each class's F1 on development words (numpy only).

A tagger trained with plain cross-entropy under-predicts rare marks: "?" is 0.5% of words.
Adding an offset to a class's logit before the argmax trades its precision for recall; the
offsets chosen here on the development books (never the test books) are stored in the model
folder's labels.json ("punct_bias", "case_bias") and added by the runtime.
"""

from __future__ import annotations

import numpy as np

from asr.punctuation.metrics import capital_f1, class_f1

__all__ = ["OFFSETS", "tune_case_bias", "tune_punct_bias"]

OFFSETS = np.round(np.arange(-2.0, 3.01, 0.25), 2)  # the grid searched for each class


def tune_punct_bias(logits: np.ndarray, reference: np.ndarray, rounds: int = 2) -> np.ndarray:
    """(N, P) punct logits and (N,) reference marks -> (P,) offsets (0 for "none"): each
    mark's offset in turn set to the one that maximizes its F1, `rounds` times over."""
    bias = np.zeros(logits.shape[1])
    for _ in range(rounds):
        for label in range(1, logits.shape[1]):
            scores = []
            for offset in OFFSETS:
                trial = bias.copy()
                trial[label] = offset
                scores.append(class_f1(reference, (logits + trial).argmax(-1), label).f1)
            bias[label] = _smallest_best(scores)
    return bias


def tune_case_bias(logits: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(N, C) case logits and (N,) reference cases -> (C,) offsets: one offset on "lower"
    (index 0) that maximizes the F1 of capitalized words."""
    scores = []
    for offset in OFFSETS:
        bias = np.zeros(logits.shape[1])
        bias[0] = offset
        scores.append(capital_f1(reference, (logits + bias).argmax(-1)).f1)
    bias = np.zeros(logits.shape[1])
    bias[0] = _smallest_best(scores)
    return bias


def _smallest_best(scores: list[float]) -> float:
    """The offset of the best score; of tied ones, the nearest to 0 (the least change)."""
    best = max(scores)
    tied = [offset for offset, score in zip(OFFSETS, scores, strict=True) if score >= best - 1e-12]
    return float(min(tied, key=abs))
