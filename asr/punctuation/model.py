"""The punctuation and case tagger: word embeddings, a bidirectional LSTM, two heads.

The network only: word ids in, per-word case and punctuation logits out. Training is in
train.py, the ONNX runtime (no torch) in runtime.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from asr.bilstm import bidirectional_lstm, check_sizes
from asr.punctuation.data import CASES, PUNCTS

__all__ = ["Tagger", "TaggerConfig"]


@dataclass(frozen=True)
class TaggerConfig:
    vocab_size: int = 32000  # words, index 0 the unknown word
    embed_dim: int = 64  # word embedding width
    hidden: int = 128  # LSTM units per direction
    layers: int = 2  # stacked bidirectional LSTM layers
    dropout: float = 0.2  # on the embeddings and between layers, training only

    def __post_init__(self) -> None:
        check_sizes(self, "tagger", ("vocab_size", "embed_dim", "hidden", "layers"))


class Tagger(nn.Module):
    def __init__(self, config: TaggerConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embed_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.lstm = bidirectional_lstm(config)
        self.case_head = nn.Linear(2 * config.hidden, len(CASES))
        self.punct_head = nn.Linear(2 * config.hidden, len(PUNCTS))

    def forward(self, word_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) word ids -> case logits (B, T, len(CASES)), punct logits (B, T, len(PUNCTS))."""
        x = self.dropout(self.embedding(word_ids))  # (B, T, E)
        x, _ = self.lstm(x)  # (B, T, 2H)
        x = self.dropout(x)
        return self.case_head(x), self.punct_head(x)
