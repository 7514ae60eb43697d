"""Per-class precision, recall and F1 of the tagger's labels (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asr.punctuation.data import PUNCTS

__all__ = ["F1", "capital_f1", "class_f1", "punct_f1s"]

PUNCT_NAMES = {",": "comma", ".": "period", "?": "question", "!": "exclamation"}


@dataclass(frozen=True)
class F1:
    precision: float
    recall: float
    f1: float
    support: int  # reference positives

    def __str__(self) -> str:
        return f"P {self.precision:.3f} R {self.recall:.3f} F1 {self.f1:.3f} (n={self.support})"


def _f1(hits: int, predicted: int, actual: int) -> F1:
    precision = hits / predicted if predicted else 0.0
    recall = hits / actual if actual else 0.0
    total = precision + recall
    return F1(precision, recall, 2 * precision * recall / total if total else 0.0, actual)


def class_f1(reference: np.ndarray, predicted: np.ndarray, label: int) -> F1:
    """F1 of one label over aligned label arrays (N,), (N,)."""
    ref, hyp = reference == label, predicted == label
    return _f1(int(np.sum(ref & hyp)), int(np.sum(hyp)), int(np.sum(ref)))


def punct_f1s(reference: np.ndarray, predicted: np.ndarray) -> dict[str, F1]:
    """F1 of each mark ("comma", "period", "question", "exclamation")."""
    return {PUNCT_NAMES[m]: class_f1(reference, predicted, PUNCTS.index(m)) for m in PUNCT_NAMES}


def capital_f1(reference: np.ndarray, predicted: np.ndarray) -> F1:
    """F1 of words written with a capital first letter (every case label but "lower")."""
    ref, hyp = reference != 0, predicted != 0
    return _f1(int(np.sum(ref & hyp)), int(np.sum(hyp)), int(np.sum(ref)))
