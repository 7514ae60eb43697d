"""The acoustic model: convolutional subsampling, bidirectional LSTM/GRU layers, log-softmax.

Just the network: it maps features to per-frame log-probabilities and knows its own
subsampling. Loss, optimizer, decoding and I/O live elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["AcousticModel", "ModelConfig"]

_RNN_TYPES = {"lstm": nn.LSTM, "gru": nn.GRU}


@dataclass
class ModelConfig:
    rnn_type: str = "lstm"  # "lstm" or "gru"
    num_layers: int = 3  # stacked bidirectional layers
    hidden_size: int = 320  # units per direction
    dropout: float = 0.1  # between recurrent layers and before the output layer
    subsampling: int = 4  # time reduction of the front end: 1, 2, 4 or 8
    conv_channels: int = 32  # channels of each stride-2 convolution

    def __post_init__(self) -> None:
        if self.rnn_type not in _RNN_TYPES:
            raise ValueError(f"model.rnn_type must be 'lstm' or 'gru', got {self.rnn_type!r}")
        if self.subsampling not in (1, 2, 4, 8):
            raise ValueError(f"model.subsampling must be 1, 2, 4 or 8, got {self.subsampling}")
        if self.num_layers < 1 or self.hidden_size < 1:
            raise ValueError("model.num_layers and model.hidden_size must be positive")


def _conv_out_len(lengths: torch.Tensor) -> torch.Tensor:
    """Frames after one kernel-3, stride-2, padding-1 convolution."""
    return (lengths - 1) // 2 + 1


class ConvSubsampling(nn.Module):
    """log2(factor) stride-2 3x3 convolutions over (time, mel), then a linear projection.

    Frames past each utterance's length are zeroed after every convolution, so padding in
    a batch never leaks into real frames: a padded batch equals item-by-item inference.
    """

    def __init__(self, n_mels: int, factor: int, channels: int, out_dim: int) -> None:
        super().__init__()
        num_convs = factor.bit_length() - 1
        self.convs = nn.ModuleList(
            nn.Conv2d(1 if i == 0 else channels, channels, 3, stride=2, padding=1)
            for i in range(num_convs)
        )
        freq = n_mels
        for _ in range(num_convs):
            freq = (freq - 1) // 2 + 1
        in_dim = channels * freq if num_convs else n_mels
        self.proj = nn.Linear(in_dim, out_dim)

    def forward(self, feats: torch.Tensor, feat_lens: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = feats.unsqueeze(1)  # (B, T, F) -> (B, 1, T, F)
        lens = feat_lens
        for conv in self.convs:
            x = torch.relu(conv(x))  # (B, C, T', F')
            lens = _conv_out_len(lens)
            steps = torch.arange(x.shape[2], device=x.device)
            x = x * (steps[None, :] < lens[:, None]).to(x.dtype)[:, None, :, None]
        x = x.transpose(1, 2).flatten(2)  # (B, C, T', F') -> (B, T', C * F')
        return self.proj(x), lens


class AcousticModel(nn.Module):
    """(B, T, n_mels) features -> (B, T', vocab_size) log-probs, with T' = T / subsampling."""

    def __init__(self, cfg: ModelConfig, n_mels: int, vocab_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.frontend = ConvSubsampling(n_mels, cfg.subsampling, cfg.conv_channels, cfg.hidden_size)
        self.rnn = _RNN_TYPES[cfg.rnn_type](
            input_size=cfg.hidden_size,
            hidden_size=cfg.hidden_size,
            num_layers=cfg.num_layers,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
            bidirectional=True,
            batch_first=True,
        )
        self.dropout = nn.Dropout(cfg.dropout)
        self.output = nn.Linear(2 * cfg.hidden_size, vocab_size)

    def output_lengths(self, feat_lens: torch.Tensor) -> torch.Tensor:
        """Output frames for input frame counts (B,) -> (B,)."""
        lens = feat_lens
        for _ in self.frontend.convs:
            lens = _conv_out_len(lens)
        return lens

    def forward(self, feats: torch.Tensor, feat_lens: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(B, T, n_mels), (B,) -> log_probs (B, T', V), out_lens (B,)."""
        x, out_lens = self.frontend(feats, feat_lens)  # (B, T', H)
        # Packing costs time and is only needed when lengths differ.
        if bool((out_lens == x.shape[1]).all()):
            x, _ = self.rnn(x)  # (B, T', 2H)
        else:
            packed = pack_padded_sequence(x, out_lens.cpu(), batch_first=True, enforce_sorted=False)
            packed, _ = self.rnn(packed)
            x, _ = pad_packed_sequence(packed, batch_first=True, total_length=x.shape[1])
        logits = self.output(self.dropout(x))  # (B, T', V)
        return torch.log_softmax(logits.float(), dim=-1), out_lens
