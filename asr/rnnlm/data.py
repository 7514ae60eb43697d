"""Word ids for the LSTM LM: a vocabulary ordered by frequency (the adaptive softmax puts
the commonest words in its head), sentences joined by an end-of-sentence id.

Held-out rule (fixed before training): every 500th line of the text file, counting from
line 0, is validation; the rest trains. The text leaves out the books read by dev speakers
(`asr lm prepare-text --exclude-ids`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

EOS = "</s>"  # ends every sentence, and starts the next
UNK = "<unk>"
VALID_EVERY = 500  # line i is validation when i % VALID_EVERY == 0


@dataclass(frozen=True)
class WordVocab:
    words: tuple[str, ...]  # id -> word: EOS, UNK, then by falling frequency

    @property
    def index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}

    def encode(self, sentence: str, index: dict[str, int] | None = None) -> list[int]:
        """Word ids of `sentence`, then EOS; unknown words -> UNK."""
        index = self.index if index is None else index
        unk = index[UNK]
        return [index.get(w, unk) for w in sentence.split()] + [index[EOS]]


def build_vocab(lines: Iterable[str], size: int) -> WordVocab:
    """The `size` - 2 commonest words of `lines`, with EOS and UNK first."""
    counts = Counter(w for line in lines for w in line.split())
    return WordVocab((EOS, UNK, *(w for w, _ in counts.most_common(size - 2))))


def read_lines(path: str | Path, max_lines: int | None = None) -> tuple[list[str], list[str]]:
    """(train, validation) sentences of a text file, by the held-out rule above."""
    train, valid = [], []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if max_lines is not None and i >= max_lines:
                break
            (valid if i % VALID_EVERY == 0 else train).append(line.strip())
    return train, valid


def to_ids(lines: Iterable[str], vocab: WordVocab) -> np.ndarray:
    """(N,) int32: every sentence's ids, each followed by EOS."""
    index = vocab.index
    ids = [i for line in lines if line for i in vocab.encode(line, index)]
    return np.asarray(ids, dtype=np.int32)


def stream_batches(ids: np.ndarray, batch_size: int, bptt: int, rng: np.random.Generator):
    """(B, bptt + 1) windows of `batch_size` parallel streams through `ids`, in order, so a
    window's LSTM state carries into the next (truncated backpropagation through time); the
    streams start at a random offset each pass."""
    start = int(rng.integers(0, bptt))
    usable = (len(ids) - start) // batch_size
    rows = ids[start : start + usable * batch_size].reshape(batch_size, usable)  # (B, N / B)
    for t in range(0, usable - bptt - 1, bptt):
        yield rows[:, t : t + bptt + 1]  # (B, bptt + 1): inputs [:, :-1], targets [:, 1:]
