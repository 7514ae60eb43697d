"""Sentence log-probabilities from a trained word LSTM (rnnlm.pt)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from asr.rnnlm.data import EOS, WordVocab
from asr.rnnlm.model import RNNLMConfig, WordLSTM


class RNNLMScorer:
    """log P(sentence) under the LSTM, end of sentence included (natural log)."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        record = torch.load(path, map_location="cpu", weights_only=True)
        config = dict(record["config"], cutoffs=tuple(record["config"]["cutoffs"]))
        self.vocab = WordVocab(tuple(record["words"]))
        self.model = WordLSTM(RNNLMConfig(**config))
        self.model.load_state_dict(record["state_dict"])
        self.model.eval()
        self._index = self.vocab.index
        if threads is not None:
            torch.set_num_threads(threads)

    @torch.no_grad()
    def log_probs(self, sentences: Sequence[str]) -> list[float]:
        """One log-probability per sentence, scored as one padded batch."""
        if not sentences:
            return []
        targets = [self.vocab.encode(s, self._index) for s in sentences]
        width = max(map(len, targets))
        eos = self._index[EOS]
        ids = torch.full((len(targets), width + 1), eos, dtype=torch.int64)  # (B, L + 1)
        mask = torch.zeros(len(targets), width)  # (B, L): 1 where a target word is
        for b, row in enumerate(targets):
            ids[b, 1 : len(row) + 1] = torch.tensor(row)
            mask[b, : len(row)] = 1.0
        hidden, _ = self.model(ids[:, :-1])  # (B, L, H)
        scores = self.model.target_log_probs(hidden, ids[:, 1:]) * mask  # (B, L)
        return scores.sum(dim=1).tolist()
