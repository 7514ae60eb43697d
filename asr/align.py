"""Word timestamps and confidences from CTC log-probs and a decoded token sequence.

The hypothesis is force-aligned to the log-probs (`torchaudio.functional.forced_align`), so
each character gets a span of frames; a word runs from its first character's first frame
to its last character's last frame. Frames become seconds through the model's frame rate
(`frame_seconds` = hop_length * subsampling / sample_rate). A word's confidence, in [0, 1],
is the frame-weighted geometric mean of its characters' mean frame posteriors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torchaudio.functional as AF

from asr.text import Vocabulary

__all__ = ["WordTiming", "align_words", "frame_seconds"]


@dataclass
class WordTiming:
    word: str
    start: float  # seconds from the start of the audio
    end: float  # seconds from the start of the audio
    confidence: float  # geometric-mean frame posterior of the word's characters, in [0, 1]

    def to_dict(self) -> dict:
        return {
            "word": self.word,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "confidence": round(self.confidence, 4),
        }


def frame_seconds(hop_length: int, subsampling: int, sample_rate: int) -> float:
    """Seconds between two output frames of the acoustic model."""
    return hop_length * subsampling / sample_rate


def _token_spans(log_probs: torch.Tensor, token_ids: list[int], blank_id: int):
    """(T, V) log-probs, L tokens -> L spans (token, start frame, end frame excl., score)."""
    targets = torch.tensor([token_ids], dtype=torch.int32)
    labels, scores = AF.forced_align(log_probs[None].float().cpu(), targets, blank=blank_id)
    # forced_align returns the log-prob of each frame's label; merge_tokens needs posteriors.
    return AF.merge_tokens(labels[0], scores[0].exp(), blank=blank_id)


def _timestep_spans(token_ids: list[int], timesteps: list[int], log_probs: torch.Tensor):
    """Fallback when the path cannot be aligned: one frame per token, at its timestep."""
    return [
        AF.TokenSpan(t, s, s + 1, float(log_probs[s, t].exp()))
        for t, s in zip(token_ids, timesteps, strict=True)
    ]


def align_words(
    log_probs: torch.Tensor,
    token_ids: list[int],
    vocab: Vocabulary,
    seconds_per_frame: float,
    timesteps: list[int] | None = None,
    offset: float = 0.0,
) -> list[WordTiming]:
    """Words of a hypothesis with start, end (seconds, plus `offset`) and confidence.

    `log_probs`: (T, V) for one utterance, padding removed; `token_ids`: the hypothesis
    (spaces between words, no blanks). When the tokens cannot fit the frames (CTC needs a
    blank between repeats), the decoder's `timesteps` give one-frame spans instead.
    """
    if not token_ids:
        return []
    try:
        spans = _token_spans(log_probs, token_ids, vocab.blank_id)
    except RuntimeError:
        if timesteps is None:
            raise
        spans = _timestep_spans(token_ids, timesteps, log_probs)
    words, current = [], []
    for span in [*spans, None]:
        if span is None or span.token == vocab.space_id:
            if current:
                words.append(_word(current, vocab, seconds_per_frame, offset))
            current = []
        else:
            current.append(span)
    return words


def _word(spans, vocab: Vocabulary, seconds_per_frame: float, offset: float) -> WordTiming:
    frames = sum(s.end - s.start for s in spans)
    # span.score is the mean posterior over the span's frames; weight it by the span length.
    log_conf = sum(math.log(max(s.score, 1e-12)) * (s.end - s.start) for s in spans) / frames
    return WordTiming(
        word=vocab.decode(s.token for s in spans),
        start=offset + spans[0].start * seconds_per_frame,
        end=offset + spans[-1].end * seconds_per_frame,
        confidence=math.exp(log_conf),
    )
