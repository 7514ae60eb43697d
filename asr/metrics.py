"""Word and character error rates with their edit counts, scored by jiwer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import jiwer

__all__ = ["ErrorCounts", "UtteranceScore", "error_counts", "score_utterance"]


@dataclass(frozen=True)
class ErrorCounts:
    """Edit operations of a minimum-edit alignment of hypotheses to references."""

    substitutions: int
    deletions: int
    insertions: int
    hits: int

    @property
    def reference_length(self) -> int:
        return self.substitutions + self.deletions + self.hits

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        """Errors per reference unit; 0 for an empty reference with no insertions."""
        if self.reference_length == 0:
            return 0.0 if self.insertions == 0 else float("inf")
        return self.errors / self.reference_length

    def to_dict(self) -> dict:
        return {**asdict(self), "reference_length": self.reference_length, "rate": self.rate}


def _split_empty(refs: Sequence[str], hyps: Sequence[str], unit: str) -> tuple[list[int], int]:
    """jiwer refuses empty references: count those pairs' insertions here, keep the rest."""
    keep, insertions = [], 0
    for i, (ref, hyp) in enumerate(zip(refs, hyps, strict=True)):
        if ref.strip():
            keep.append(i)
        else:
            insertions += len(hyp) if unit == "char" else len(hyp.split())
    return keep, insertions


def error_counts(refs: Sequence[str], hyps: Sequence[str], unit: str = "word") -> ErrorCounts:
    """Corpus-level edit counts of `hyps` against `refs` (equal-length lists of normalized
    texts, paired by position), by word (`unit` "word") or by character ("char"); `.rate`
    is then the WER or the CER.

        counts = error_counts(["the cat sat"], ["the cat sad"])
        counts.rate, counts.substitutions  # (0.333..., 1)
    """
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    if unit == "char":
        refs = [" ".join(r.split()) for r in refs]
        hyps = [" ".join(h.split()) for h in hyps]
    if unit not in ("word", "char"):
        raise ValueError(f"unit must be 'word' or 'char', got {unit!r}")
    keep, empty_insertions = _split_empty(refs, hyps, unit)
    if not keep:
        return ErrorCounts(0, 0, empty_insertions, 0)
    kept_refs = [refs[i] for i in keep]
    kept_hyps = [hyps[i] for i in keep]
    process = jiwer.process_characters if unit == "char" else jiwer.process_words
    out = process(kept_refs, kept_hyps)
    return ErrorCounts(
        out.substitutions, out.deletions, out.insertions + empty_insertions, out.hits
    )


@dataclass(frozen=True)
class UtteranceScore:
    ref: str
    hyp: str
    words: ErrorCounts
    chars: ErrorCounts
    alignment: str  # jiwer's three-line REF / HYP / edit-marks rendering


def score_utterance(ref: str, hyp: str) -> UtteranceScore:
    """Counts and a readable alignment of one hypothesis against its reference."""
    words = error_counts([ref], [hyp], "word")
    chars = error_counts([ref], [hyp], "char")
    if ref.strip():
        rendered = jiwer.visualize_alignment(
            jiwer.process_words(ref, hyp), show_measures=False, skip_correct=False
        )
        alignment = "\n".join(line for line in rendered.splitlines()[1:] if line.strip())
    else:
        alignment = f"REF: \nHYP: {hyp}"
    return UtteranceScore(ref, hyp, words, chars, alignment)
