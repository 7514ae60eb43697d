"""The acoustic model: convolutional subsampling, bidirectional LSTM/GRU layers, log-softmax.

Just the network: it maps features to per-frame log-probabilities and knows its own
subsampling. Loss, optimizer, decoding and I/O live elsewhere.
"""

from __future__ import annotations

import torch
from torch import nn

from asr.frames import StreamWindow, strided_length, subsampled_length, time_strides
from asr.model_config import RNN_CELLS, ModelConfig

__all__ = ["ENCODERS", "AcousticModel", "ModelConfig", "UtteranceSummary", "drop_aux_head"]

_RNN_TYPES = dict(zip(RNN_CELLS, (nn.LSTM, nn.GRU), strict=True))  # ModelConfig.rnn_type


class ConvSubsampling(nn.Module):
    """3x3 convolutions over (time, mel), each halving the mel axis and striding time as
    `asr.frames.time_strides(factor)` says, then a linear projection.

    Frames past each utterance's length are zeroed after every convolution, so padding in
    a batch never leaks into real frames: a padded batch equals item-by-item inference.
    With `first` (a streaming window that begins before the utterance), frames before it
    are zeroed too, as the convolutions' padding at the utterance's start.
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

    def forward(
        self, feats: torch.Tensor, feat_lens: torch.Tensor, first: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, ...]:
        """(B, T, n_mels), (B,) valid frames [, (B,) first valid frame, a multiple of the
        subsampling] -> (B, T', out_dim), (B,) valid output frames."""
        x = feats.unsqueeze(1)  # (B, T, F) -> (B, 1, T, F)
        lens = feat_lens
        for conv, stride in zip(self.convs, self.strides, strict=True):
            x = torch.relu(conv(x))  # (B, C, T', F')
            lens = strided_length(lens, stride)
            steps = torch.arange(x.shape[2], device=x.device)
            valid = steps[None, :] < lens[:, None]  # (B, T')
            if first is not None:
                first = torch.div(first, stride, rounding_mode="floor")
                valid = valid & (steps[None, :] >= first[:, None])
            x = x * valid.to(x.dtype)[:, None, :, None]
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


class UtteranceSummary(nn.Module):
    """An x-vector-like summary of who speaks and where (issue 32, direction 3): the mean
    and standard deviation of a layer's output over each utterance's own frames, projected
    and added to every frame, so the layers above read each frame knowing the whole
    utterance. The projection starts at zero: a model fine-tuned with it from a donor
    without one starts exactly where the donor stands."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.proj = nn.Linear(2 * size, size)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, D), (B,) valid frames -> (B, T, D); frames past a length do not count."""
        steps = torch.arange(x.shape[1], device=x.device)
        mask = (steps[None, :] < lengths.to(x.device)[:, None]).to(x.dtype)[..., None]  # (B, T, 1)
        count = mask.sum(1).clamp_min(1.0)  # (B, 1)
        mean = (x * mask).sum(1) / count  # (B, D)
        var = ((x - mean[:, None]) ** 2 * mask).sum(1) / count  # (B, D)
        summary = torch.cat([mean, (var + 1e-5).sqrt()], dim=-1)  # (B, 2D)
        return x + self.proj(summary)[:, None, :]


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
        self,
        rnn_type: str,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        dropout: float,
        summary_layer: int = 0,
    ) -> None:
        super().__init__()
        rnn = _RNN_TYPES[rnn_type]
        sizes = [input_size] + [2 * hidden_size] * (num_layers - 1)
        self.forward_layers = nn.ModuleList(rnn(n, hidden_size, batch_first=True) for n in sizes)
        self.backward_layers = nn.ModuleList(rnn(n, hidden_size, batch_first=True) for n in sizes)
        self.dropout = Dropout(dropout)
        self.output_size = 2 * hidden_size  # both directions
        self.summary_layer = summary_layer
        self.summary = UtteranceSummary(2 * hidden_size) if summary_layer else None

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> BidirectionalRNN:
        """The encoder of `cfg` (ENCODERS["birnn"]): its input is the front end's output."""
        return cls(
            cfg.rnn_type,
            cfg.hidden_size,
            cfg.hidden_size,
            cfg.num_layers,
            cfg.dropout,
            cfg.summary_layer,
        )

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
            if i + 1 == self.summary_layer:
                x = self.summary(x, lengths)  # (B, T, 2H)
            if i + 1 == tap:
                tapped = x
        return x, tapped


class LatencyControlledBiRNN(BidirectionalRNN):
    """The BidirectionalRNN's layers (and weights), latency-controlled (Zhang et al. 2016):
    time is cut into chunks of `chunk` output frames; the forward direction carries its
    state from chunk to chunk; the backward direction runs over each chunk and `right`
    frames after it, from a fresh state. Every layer sees each chunk's window (chunk +
    look-ahead), so a stream of steps (`step`) computes what `forward` computes on the whole
    utterance: what it was trained on is what it does live.
    """

    def __init__(self, rnn_type: str, size: int, layers: int, dropout: float, window) -> None:
        super().__init__(rnn_type, size, size, layers, dropout)
        self.chunk, self.right, self.jitter = window  # output frames; jitter: training only

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> LatencyControlledBiRNN:
        """ENCODERS["lc_birnn"]: chunk_frames, right_frames, chunk_jitter of `cfg`."""
        window = (cfg.chunk_frames, cfg.right_frames, cfg.chunk_jitter)
        return cls(cfg.rnn_type, cfg.hidden_size, cfg.num_layers, cfg.dropout, window)

    def _chunk_size(self) -> int:
        if not (self.training and self.jitter):
            return self.chunk
        return self.chunk + int(torch.randint(-self.jitter, self.jitter + 1, ()))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, tap: int = 0) -> tuple:
        """(B, T, D), (B,) -> (B, T, 2H) and, with `tap` > 0, layer `tap`'s (B, T, 2H)."""
        chunk, steps = self._chunk_size(), x.shape[1]
        count = -(-steps // chunk)  # chunks K
        padded = nn.functional.pad(x, (0, 0, 0, count * chunk + self.right - steps))
        windows = padded.unfold(1, chunk + self.right, chunk).transpose(2, 3)  # (B, K, W, D)
        starts = torch.arange(count, device=x.device) * chunk  # (K,)
        valid = (lengths.to(x.device)[:, None] - starts).clamp(0, chunk + self.right)  # (B, K)
        tapped = None
        for i in range(len(self.forward_layers)):
            if i > 0:
                windows = self.dropout(windows)
            windows, _ = self.layer(i, windows, valid, chunk, None)
            if i + 1 == tap:
                tapped = _chunk_frames(windows, chunk, steps)
        return _chunk_frames(windows, chunk, steps), tapped

    def step(self, x: torch.Tensor, valid: torch.Tensor, states: list) -> tuple:
        """One chunk of a stream: (B, chunk + right, D) inputs, (B,) valid frames of them,
        each layer's forward state (None at the start) -> (B, chunk, 2H), the new states."""
        windows, new_states = x[:, None], []  # (B, 1, W, D)
        for i, state in enumerate(states):
            windows, state = self.layer(i, windows, valid[:, None], self.chunk, state)
            new_states.append(state)
        return windows[:, 0, : self.chunk], new_states

    def layer(self, i: int, windows: torch.Tensor, valid: torch.Tensor, chunk: int, state):
        """Layer i over (B, K, chunk + right, D) windows with (B, K) valid frames each,
        starting from forward `state` -> (B, K, chunk + right, 2H), the forward state after
        the last chunk."""
        fwd, bwd = self.forward_layers[i], self.backward_layers[i]
        batch, count, width, _ = windows.shape
        ahead, boundaries = [], []
        for k in range(count):
            out, state = fwd(windows[:, k, :chunk], state)  # (B, chunk, H)
            ahead.append(out)
            boundaries.append(state)
        ahead = torch.stack(ahead, 1)  # (B, K, chunk, H)
        if width > chunk:  # the look-ahead frames, from each chunk's end state
            look, _ = fwd(windows[:, :, chunk:].flatten(0, 1), _batched_states(boundaries))
            ahead = torch.cat([ahead, look.unflatten(0, (batch, count))], 2)  # (B, K, W, H)
        flat, lens = windows.flatten(0, 1), valid.flatten()  # (B * K, W, D), (B * K,)
        behind, _ = bwd(reverse_within_lengths(flat, lens))  # (B * K, W, H), reversed time
        behind = reverse_within_lengths(behind, lens).unflatten(0, (batch, count))
        return torch.cat([ahead, behind], -1), state


def _batched_states(states: list):
    """Per-chunk forward states, each (1, B, H) or an LSTM's (h, c) pair of them -> one
    state of (1, B * K, H) (b-major, as `flatten(0, 1)` of (B, K, ...))."""
    if isinstance(states[0], tuple):
        return tuple(_batched_states([s[j] for s in states]) for j in range(len(states[0])))
    return torch.stack(states, 2).flatten(1, 2)  # (1, B, K, H) -> (1, B * K, H)


def _chunk_frames(windows: torch.Tensor, chunk: int, steps: int) -> torch.Tensor:
    """(B, K, chunk + right, E) -> (B, steps, E): each chunk's own frames, in order."""
    return windows[:, :, :chunk].flatten(1, 2)[:, :steps]


# Encoders by name (model.encoder): each builds from a ModelConfig a module with an
# `output_size` and forward(x (B, T', hidden_size), lengths (B,), tap) -> (B, T', output_size)
# output and the output of layer `tap` (or None), the auxiliary head's input.
ENCODERS = {"birnn": BidirectionalRNN.from_config, "lc_birnn": LatencyControlledBiRNN.from_config}


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

    @property
    def stream_window(self) -> StreamWindow | None:
        """The feature window of one streaming step; None for a model that cannot stream."""
        return self.cfg.stream_window

    def stream_step(
        self, feats: torch.Tensor, first: torch.Tensor, last: torch.Tensor, states: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of a stream (a latency-controlled encoder only).

        feats (B, stream_window.frames, n_mels) the step's window, (B,) first and last
        (exclusive) valid frames of it, states (L, S, B, H) each layer's forward state (S: 2
        for an LSTM's h and c, 1 for a GRU's h; zeros at the start) -> (B, chunk, V)
        log-probs of the chunk's output frames (those past the utterance's end are junk),
        the new states. Steps over a stream equal `forward` on the whole of it.
        """
        window = self.stream_window
        x, lens = self.frontend(feats, last, first)  # (B, W', H)
        skip = window.margin // window.stride
        x = x[:, skip : skip + window.chunk + window.right]  # (B, chunk + right, H)
        valid = (lens - skip).clamp(0, window.chunk + window.right)
        unpacked = [(s[0:1], s[1:2]) if s.shape[0] == 2 else s for s in states.unbind(0)]
        x, unpacked = self.rnn.step(x, valid, unpacked)
        packed = [torch.cat(s, 0) if isinstance(s, tuple) else s for s in unpacked]
        logits = self.output(x)  # (B, chunk, V)
        return torch.log_softmax(logits.float(), dim=-1), torch.stack(packed, 0)

    def initial_states(self, batch: int = 1) -> torch.Tensor:
        """(L, S, B, H) zero forward states of `stream_step` (ModelConfig.state_shape)."""
        return torch.zeros(self.cfg.state_shape(batch))


def drop_aux_head(config: dict, state: dict) -> tuple[dict, dict]:
    """An inference copy of a checkpoint's model config and weights: no auxiliary head."""
    config = {**config, "aux_layer": 0}
    state = {k: v for k, v in state.items() if not k.startswith("aux_output.")}
    return config, state
