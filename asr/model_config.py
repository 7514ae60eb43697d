"""The acoustic model's configuration, without torch: what checks and tools that only read
a config (the frame rate, the units) need, on the light install too.

It is the one record of the network's geometry: what rebuilds it (asr.model), and what
streaming and export need of it, the step's window and the carried state's shape, read by
both runtimes (asr/inference/runtime_torch.py, runtime_onnx.py) through `from_dict`."""

from __future__ import annotations

from dataclasses import dataclass

from asr.config import check_ranges
from asr.frames import SUBSAMPLING_FACTORS, StreamWindow
from asr.text import UNITS

__all__ = ["RNN_CELLS", "ModelConfig"]

# the recurrent cells asr.model builds (its _RNN_TYPES), each with the tensors its state
# holds: an LSTM's h and c, a GRU's h
RNN_CELLS = {"lstm": 2, "gru": 1}


# Every number of [model]: (lowest, highest) accepted; the highs are far past any model
# this recognizer trains (a 16,384-wide layer alone is 2 GB of LSTM weights).
_MODEL_RANGES = {
    "num_layers": (1, 64),
    "hidden_size": (1, 16_384),
    "dropout": (0.0, 0.99),
    "conv_channels": (1, 4096),
    "chunk_frames": (0, 100_000),
    "right_frames": (0, 100_000),
    "chunk_jitter": (0, 100_000),
}


@dataclass
class ModelConfig:
    # the layers between the front end and the output: a name in asr.model.ENCODERS
    # ("birnn": stacked bidirectional LSTM/GRU layers of rnn_type; "lc_birnn": the same
    # layers latency-controlled, for streaming); checked there, where the table is
    encoder: str = "birnn"
    rnn_type: str = "lstm"  # a recurrent cell of RNN_CELLS: "lstm" or "gru"
    num_layers: int = 3  # stacked bidirectional layers
    hidden_size: int = 320  # units per direction
    dropout: float = 0.1  # between recurrent layers and before the output layer
    subsampling: int = 4  # time reduction of the front end: 1, 2, 3, 4 or 8
    conv_channels: int = 32  # channels of each front-end convolution
    # >0: an auxiliary phone CTC head reads the output of this recurrent layer (training
    # only: hierarchical multitask CTC; asr export drops it)
    aux_layer: int = 0
    # >0: the mean and standard deviation over the utterance of this recurrent layer's
    # output, projected, are added to its every frame (an utterance-level speaker summary,
    # asr.model.UtteranceSummary; encoder "birnn" only: a stream has no whole utterance)
    summary_layer: int = 0
    # what the model emits: "chars" (the default) or "phones" (39 ARPAbet phones; the
    # lexicon beam search spells words from their pronunciations)
    units: str = "chars"
    # encoder "lc_birnn" (latency-controlled, streams): output frames per chunk; the
    # forward direction carries its state from chunk to chunk, the backward direction
    # starts afresh at the end of each chunk's look-ahead
    chunk_frames: int = 0
    right_frames: int = 0  # lc_birnn: output frames of look-ahead for the backward direction
    chunk_jitter: int = 0  # lc_birnn, training only: each batch's chunk drawn from +- this

    def __post_init__(self) -> None:
        if self.units not in UNITS:
            raise ValueError(f"model.units must be one of {list(UNITS)}, got {self.units!r}")
        if self.rnn_type not in RNN_CELLS:
            raise ValueError(
                f"model.rnn_type must be one of {list(RNN_CELLS)}, got {self.rnn_type!r}"
            )
        if self.subsampling not in SUBSAMPLING_FACTORS:
            raise ValueError(
                f"model.subsampling must be one of {SUBSAMPLING_FACTORS}, got {self.subsampling}"
            )
        check_ranges("model", self, _MODEL_RANGES)
        if (self.encoder == "lc_birnn") != (self.chunk_frames > 0):
            raise ValueError(
                f"model.chunk_frames ({self.chunk_frames}) is for encoder 'lc_birnn' and "
                f"it needs one > 0 (encoder {self.encoder!r})"
            )
        if self.chunk_jitter >= max(self.chunk_frames, 1) and self.chunk_jitter:
            raise ValueError(
                f"model.chunk_jitter {self.chunk_jitter} must be below chunk_frames "
                f"{self.chunk_frames}"
            )
        if not 0 <= self.summary_layer < self.num_layers or (
            self.summary_layer and self.encoder != "birnn"
        ):
            raise ValueError(
                f"model.summary_layer must be 0 (none) or a layer below the last "
                f"(1..{self.num_layers - 1}) of encoder 'birnn', got {self.summary_layer} "
                f"(encoder {self.encoder!r})"
            )
        if not 0 <= self.aux_layer < self.num_layers:
            raise ValueError(
                f"model.aux_layer must be 0 (none) or a layer below the last "
                f"(1..{self.num_layers - 1}), got {self.aux_layer}"
            )

    @property
    def stream_window(self) -> StreamWindow | None:
        """The feature window of one streaming step (AcousticModel.stream_step); None for
        an encoder that cannot stream (only "lc_birnn" has chunks)."""
        if not self.chunk_frames:
            return None
        return StreamWindow.of(self.subsampling, self.chunk_frames, self.right_frames)

    def state_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        """(L, S, B, H): the forward states a streaming step carries, per layer the S
        tensors of its cell (2 for an LSTM's h and c, 1 for a GRU's h)."""
        return (self.num_layers, RNN_CELLS[self.rnn_type], batch, self.hidden_size)
