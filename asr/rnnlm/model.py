"""The word LSTM: embedding -> LSTM layers -> adaptive softmax (cheap for a large vocabulary
on a CPU: the commonest words get full-width logits, rare ones narrower clusters)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class RNNLMConfig:
    vocab_size: int = 30_002  # words incl. EOS and UNK
    embed_dim: int = 256  # word embedding width
    hidden_size: int = 512  # LSTM units per layer
    num_layers: int = 1  # stacked LSTM layers
    dropout: float = 0.1  # on the embeddings and the LSTM output
    cutoffs: tuple[int, ...] = (2_000, 10_000)  # adaptive softmax cluster bounds

    def __post_init__(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not (min(self.cutoffs) > 0 and max(self.cutoffs) < self.vocab_size):
            raise ValueError(f"cutoffs {self.cutoffs} must lie inside (0, {self.vocab_size})")
        for name in ("vocab_size", "embed_dim", "hidden_size", "num_layers"):
            if not 0 < getattr(self, name) <= 1_000_000:
                raise ValueError(f"{name} must be in (0, 1e6], got {getattr(self, name)}")


class WordLSTM(nn.Module):
    def __init__(self, config: RNNLMConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim)
        self.drop = nn.Dropout(config.dropout)
        self.rnn = nn.LSTM(
            config.embed_dim, config.hidden_size, config.num_layers, batch_first=True
        )
        self.softmax = nn.AdaptiveLogSoftmaxWithLoss(
            config.hidden_size, config.vocab_size, list(config.cutoffs), div_value=4.0
        )

    def forward(self, ids: torch.Tensor, state=None) -> tuple[torch.Tensor, tuple]:
        """(B, T) word ids -> (B, T, H) hidden states, and the LSTM state to carry on."""
        hidden, state = self.rnn(self.drop(self.embed(ids)), state)
        return self.drop(hidden), state

    def target_log_probs(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(B, T, H) hidden states, (B, T) next words -> (B, T) log P(next word)."""
        flat = self.softmax(hidden.reshape(-1, hidden.shape[-1]), targets.reshape(-1))
        return flat.output.view(targets.shape)
