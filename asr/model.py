"""The acoustic model: convolutional subsampling, bidirectional LSTM/GRU layers, log-softmax.

Just the network: it maps features to per-frame log-probabilities and knows its own
subsampling. Loss, optimizer, decoding and I/O live elsewhere.
"""

from __future__ import annotations

import torch
from torch import nn

from asr.frames import strided_length, subsampled_length, time_strides
from asr.model_config import RNN_CELLS, ModelConfig

__all__ = ["ENCODERS", "AcousticModel", "ModelConfig", "drop_aux_head"]

_RNN_TYPES = dict(zip(RNN_CELLS, (nn.LSTM, nn.GRU), strict=True))  # ModelConfig.rnn_type


class ConvSubsampling(nn.Module):
    """3x3 convolutions over (time, mel), each halving the mel axis and striding time as
    `asr.frames.time_strides(factor)` says, then a linear projection.

    Frames past each utterance's length are zeroed after every convolution, so padding in
    a batch never leaks into real frames: a padded batch equals item-by-item inference.
    """

    def __init__(self, n_mels: int, factor: int, channels: int, out_dim: int) -> None:
        super().__init__()
        self.strides = time_strides(factor)
        self.convs = nn.ModuleList(
            nn.Conv2d(1 if i == 0 else channels, channels, 3, stride=(stride, 2), padding=1)
            for i, stride in enumerate(self.strides)
        )
        freq = n_mels
        for _ in self.strides:
            freq = (freq - 1) // 2 + 1
        in_dim = channels * freq if self.strides else n_mels
        self.proj = nn.Linear(in_dim, out_dim)

    def forward(self, feats: torch.Tensor, feat_lens: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = feats.unsqueeze(1)  # (B, T, F) -> (B, 1, T, F)
        lens = feat_lens
        for conv, stride in zip(self.convs, self.strides, strict=True):
            x = torch.relu(conv(x))  # (B, C, T', F')
            lens = strided_length(lens, stride)
            steps = torch.arange(x.shape[2], device=x.device)
            x = x * (steps[None, :] < lens[:, None]).to(x.dtype)[:, None, :, None]
        x = x.transpose(1, 2).flatten(2)  # (B, C, T', F') -> (B, T', C * F')
        return self.proj(x), lens


class Dropout(nn.Dropout):
    """nn.Dropout with its mask drawn by `torch.rand`, not `bernoulli_`: the same
    distribution from the same generator (a resumed run draws the same masks), but on the
    CPU about 3x cheaper to draw (in a torch.profiler run of one 192 s training step of
    configuration E, bernoulli_ took 13% of the step)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = torch.rand(x.shape, device=x.device) >= self.p  # (same shape as x)
        return x * keep.to(x.dtype) * (1.0 / (1.0 - self.p))


def reverse_within_lengths(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence's first `lengths[b]` frames, leaving padding at the end:
    (B, T, H) -> (B, T, H). Applying it twice restores the input."""
    steps = torch.arange(x.shape[1], device=x.device)[None, :]  # (1, T)
    lens = lengths.to(x.device)[:, None]  # (B, 1)
    index = torch.where(steps < lens, lens - 1 - steps, steps)  # (B, T)
    return x.gather(1, index[:, :, None].expand_as(x))


class BidirectionalRNN(nn.Module):
    """Stacked bidirectional LSTM/GRU over zero-padded batches, without packing.

    The forward direction runs on the padded batch as is (padding comes after the real
    frames, so it cannot reach them); the backward direction runs on each sequence
    reversed within its own length. Real frames therefore see exactly what they would
    see alone: the result equals packed sequences, but uses the fused dense kernels,
    which on CPU were 4-20x faster than PyTorch's packed-sequence path (measured when this
    module replaced packing; benchmarks/speed.py times the padded path alone).
    """

    def __init__(
        self, rnn_type: str, input_size: int, hidden_size: int, num_layers: int, dropout: float
    ) -> None:
        super().__init__()
        rnn = _RNN_TYPES[rnn_type]
        sizes = [input_size] + [2 * hidden_size] * (num_layers - 1)
        self.forward_layers = nn.ModuleList(rnn(n, hidden_size, batch_first=True) for n in sizes)
        self.backward_layers = nn.ModuleList(rnn(n, hidden_size, batch_first=True) for n in sizes)
        self.dropout = Dropout(dropout)
        self.output_size = 2 * hidden_size  # both directions

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> BidirectionalRNN:
        """The encoder of `cfg` (ENCODERS["birnn"]): its input is the front end's output."""
        return cls(cfg.rnn_type, cfg.hidden_size, cfg.hidden_size, cfg.num_layers, cfg.dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, tap: int = 0) -> tuple:
        """(B, T, input_size), (B,) -> (B, T, 2H) output and, with `tap` > 0, the (B, T, 2H)
        output of layer `tap` (else None); frames past a length are junk."""
        tapped = None
        for i, (fwd, bwd) in enumerate(zip(self.forward_layers, self.backward_layers, strict=True)):
            if i > 0:
                x = self.dropout(x)
            ahead, _ = fwd(x)  # (B, T, H)
            behind, _ = bwd(reverse_within_lengths(x, lengths))  # (B, T, H), reversed time
            x = torch.cat([ahead, reverse_within_lengths(behind, lengths)], dim=-1)
            if i + 1 == tap:
                tapped = x
        return x, tapped


# Encoders by name (model.encoder): each builds from a ModelConfig a module with an
# `output_size` and forward(x (B, T', hidden_size), lengths (B,), tap) -> (B, T', output_size)
# output and the output of layer `tap` (or None), the auxiliary head's input.
ENCODERS = {"birnn": BidirectionalRNN.from_config}


class AcousticModel(nn.Module):
    """(B, T, n_mels) features -> (B, T', vocab_size) log-probs, with T' = T / subsampling.

    With `aux_vocab_size` and `cfg.aux_layer` set, a linear head on that recurrent layer
    gives auxiliary (phone) log-probs too, when `forward` is asked for them.
    """

    def __init__(
        self, cfg: ModelConfig, n_mels: int, vocab_size: int, aux_vocab_size: int = 0
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.frontend = ConvSubsampling(n_mels, cfg.subsampling, cfg.conv_channels, cfg.hidden_size)
        if cfg.encoder not in ENCODERS:
            raise ValueError(f"model.encoder must be one of {list(ENCODERS)}, got {cfg.encoder!r}")
        self.rnn = ENCODERS[cfg.encoder](cfg)  # named "rnn": checkpoints' weights say so
        self.dropout = Dropout(cfg.dropout)
        self.output = nn.Linear(self.rnn.output_size, vocab_size)
        self.aux_output = None
        if cfg.aux_layer and aux_vocab_size:
            self.aux_output = nn.Linear(self.rnn.output_size, aux_vocab_size)

    def output_lengths(self, feat_lens: torch.Tensor) -> torch.Tensor:
        """Output frames for input frame counts (B,) -> (B,)."""
        return subsampled_length(feat_lens, self.cfg.subsampling)

    def forward(
        self, feats: torch.Tensor, feat_lens: torch.Tensor, with_aux: bool = False
    ) -> tuple[torch.Tensor, ...]:
        """(B, T, n_mels), (B,) -> log_probs (B, T', V), out_lens (B,); with `with_aux` (and
        an auxiliary head) also aux_log_probs (B, T', V_aux)."""
        x, out_lens = self.frontend(feats, feat_lens)  # (B, T', H)
        aux = with_aux and self.aux_output is not None
        x, tapped = self.rnn(x, out_lens, self.cfg.aux_layer if aux else 0)  # (B, T', 2H)
        logits = self.output(self.dropout(x))  # (B, T', V)
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        if not aux:
            return log_probs, out_lens
        aux_logits = self.aux_output(self.dropout(tapped))  # (B, T', V_aux)
        return log_probs, out_lens, torch.log_softmax(aux_logits.float(), dim=-1)


def drop_aux_head(config: dict, state: dict) -> tuple[dict, dict]:
    """An inference copy of a checkpoint's model config and weights: no auxiliary head."""
    config = {**config, "aux_layer": 0}
    state = {k: v for k, v in state.items() if not k.startswith("aux_output.")}
    return config, state
