"""Word timestamps and confidences from CTC log-probs and a decoded token sequence.

The hypothesis is force-aligned to the log-probs (a Viterbi pass in numpy that picks the
path torchaudio's `forced_align` picks, tests/test_light.py), so each character gets a span
of frames; a word runs from its first character's first frame to its last character's last
frame. Frames become seconds through the model's frame rate (`asr.frames.frame_seconds`
= hop_length * subsampling / sample_rate). A word's confidence, in [0, 1], is the
frame-weighted geometric mean of its characters' mean frame posteriors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from asr.frames import ctc_min_frames
from asr.text import Vocabulary

__all__ = ["TokenSpan", "WordTiming", "align_words", "forced_align"]


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


@dataclass
class TokenSpan:
    token: int  # vocabulary id
    start: int  # first frame
    end: int  # frame after the last
    score: float  # mean posterior of the token over its frames


def forced_align(log_probs: np.ndarray, token_ids: list[int], blank_id: int) -> np.ndarray:
    """Best CTC path of `token_ids` through (T, V) log-probs: (T,) label per frame.

    Viterbi over the 2L + 1 states (blanks between and around the tokens), ties broken as
    torchaudio's CPU `forced_align` breaks them (stay, then one step, then a skip), so the
    spans are the same. ValueError when T frames cannot hold the tokens.
    """
    num_frames, targets = log_probs.shape[0], np.asarray(token_ids, dtype=np.int64)
    needed = ctc_min_frames(list(token_ids))
    if num_frames < needed:
        raise ValueError(f"{len(token_ids)} tokens need {needed}: more than {num_frames} frames")
    labels = np.full(2 * len(targets) + 1, blank_id, dtype=np.int64)  # (S,) blank, t1, blank, ...
    labels[1::2] = targets
    # A skip (state s-2 -> s) jumps a blank between two different tokens.
    can_skip = np.zeros(len(labels), dtype=bool)
    can_skip[3::2] = targets[1:] != targets[:-1]
    emit = log_probs[:, labels]  # (T, S)
    neg_inf = np.array(-np.inf, dtype=log_probs.dtype)
    alpha = np.full(len(labels), neg_inf)
    alpha[:2] = emit[0, :2]
    back = np.zeros((num_frames, len(labels)), dtype=np.int8)  # 0 stay, 1 step, 2 skip
    for t in range(1, num_frames):
        stay = alpha
        step = np.concatenate([[neg_inf], alpha[:-1]])
        skip = np.where(can_skip, np.concatenate([[neg_inf, neg_inf], alpha[:-2]]), neg_inf)
        step_wins = (step > stay) & (step > skip)
        choice = np.where((skip > step) & (skip > stay), 2, np.where(step_wins, 1, 0))
        alpha = np.choose(choice, [stay, step, skip]) + emit[t]
        back[t] = choice
    state = len(labels) - 1 if len(labels) == 1 or alpha[-1] > alpha[-2] else len(labels) - 2
    path = np.empty(num_frames, dtype=np.int64)
    for t in range(num_frames - 1, -1, -1):
        path[t] = labels[state]
        state -= int(back[t, state])
    return path


def merge_tokens(path: np.ndarray, probs: np.ndarray, blank_id: int) -> list[TokenSpan]:
    """(T,) frame labels and their posteriors -> one span per run of a non-blank label."""
    changes = np.flatnonzero(np.diff(path, prepend=-1, append=-1)).tolist()
    return [
        TokenSpan(int(path[a]), a, b, float(probs[a:b].mean()))
        for a, b in zip(changes[:-1], changes[1:], strict=True)
        if path[a] != blank_id
    ]


def _token_spans(log_probs: np.ndarray, token_ids: list[int], blank_id: int) -> list[TokenSpan]:
    """(T, V) log-probs, L tokens -> L spans (token, start frame, end frame excl., score)."""
    path = forced_align(log_probs, token_ids, blank_id)
    probs = np.exp(log_probs[np.arange(len(path)), path])  # (T,) posterior of each frame's label
    return merge_tokens(path, probs, blank_id)


def _timestep_spans(
    token_ids: list[int], timesteps: list[int], log_probs: np.ndarray
) -> list[TokenSpan]:
    """Fallback when the path cannot be aligned: one frame per token, at its timestep."""
    return [
        TokenSpan(t, s, s + 1, float(np.exp(log_probs[s, t])))
        for t, s in zip(token_ids, timesteps, strict=True)
    ]


def align_words(
    log_probs: np.ndarray,
    token_ids: list[int],
    vocab: Vocabulary,
    seconds_per_frame: float,
    timesteps: list[int] | None = None,
    offset: float = 0.0,
    text: str | None = None,
) -> list[WordTiming]:
    """Words of a hypothesis with start, end (seconds, plus `offset`) and confidence.

    `log_probs`: (T, V) for one utterance, padding removed; `token_ids`: the hypothesis
    (spaces between words, no blanks). When the tokens cannot fit the frames (CTC needs a
    blank between repeats), the decoder's `timesteps` give one-frame spans instead.
    `text`: the hypothesis's words. The timed words take their names from it when it has
    one word per spelled word: a phone model spells "DH.AH" where its lexicon wrote "the".
    """
    if not token_ids:
        return []
    log_probs = np.asarray(log_probs, dtype=np.float32)  # also takes a CPU torch tensor
    try:
        spans = _token_spans(log_probs, token_ids, vocab.blank_id)
    except ValueError:
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
    names = (text or "").split()
    if len(names) == len(words):
        for word, name in zip(words, names, strict=True):
            word.word = name
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
