"""The G2P network: letter embeddings, each letter's frame repeated, a bidirectional LSTM,
phone logits per frame for CTC (a word can have more phones than letters: "x" -> K S)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from asr.bilstm import bidirectional_lstm, check_sizes
from asr.g2p.data import LETTERS, PHONE_SYMBOLS

__all__ = ["G2PConfig", "G2PNet"]


@dataclass(frozen=True)
class G2PConfig:
    embed_dim: int = 64  # letter embedding width
    hidden: int = 128  # LSTM units per direction
    layers: int = 2  # stacked bidirectional LSTM layers
    repeat: int = 2  # frames per letter, so CTC has room for more phones than letters
    dropout: float = 0.2  # between layers, training only

    def __post_init__(self) -> None:
        check_sizes(self, "g2p", ("embed_dim", "hidden", "layers", "repeat"))


class G2PNet(nn.Module):
    def __init__(self, config: G2PConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(len(LETTERS), config.embed_dim)
        self.lstm = bidirectional_lstm(config)
        self.head = nn.Linear(2 * config.hidden, len(PHONE_SYMBOLS))

    def forward(self, letters: torch.Tensor) -> torch.Tensor:
        """(B, L) letter ids of B words of L letters each (batches are bucketed by length, so
        there is no padding) -> (B, L * repeat, phones + 1) log-probabilities."""
        x = self.embedding(letters).repeat_interleave(self.config.repeat, dim=1)  # (B, RL, E)
        x, _ = self.lstm(x)  # (B, RL, 2H)
        return self.head(x).log_softmax(-1)  # (B, RL, P)
