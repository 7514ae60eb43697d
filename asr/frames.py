"""Frame arithmetic shared by the model, the data checks and training: how the front end's
strides shorten an utterance, and how many output frames CTC needs for a transcript.

Pure integer rules with no torch dependency; the functions take ints, or integer numpy
arrays and torch tensors through their own methods. The model (`output_lengths`), the
manifest checks (`output_frames`), training (`ctc_feasible`) and the forced aligner all
apply these, so the rules exist once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "SUBSAMPLING_FACTORS",
    "StreamWindow",
    "ctc_min_frames",
    "ctc_min_frames_batch",
    "frame_seconds",
    "strided_length",
    "subsampled_length",
    "time_strides",
]

# Time strides of the front end's convolutions (kernel 3, padding 1) for each factor.
# x3 keeps two convolutions (the second one halves only the mel axis), so its projection
# has the same input size as x4's.
_TIME_STRIDES = {1: (), 2: (2,), 3: (3, 1), 4: (2, 2), 8: (2, 2, 2)}
SUBSAMPLING_FACTORS = tuple(_TIME_STRIDES)


def time_strides(factor: int) -> tuple[int, ...]:
    """Time stride of each front-end convolution for a subsampling `factor`."""
    if factor not in _TIME_STRIDES:
        raise ValueError(f"subsampling must be one of {SUBSAMPLING_FACTORS}, got {factor}")
    return _TIME_STRIDES[factor]


def strided_length(frames, stride: int):
    """Frames after one front-end convolution (kernel 3, padding 1) of this time stride:
    an int or an integer tensor."""
    return (frames - 1) // stride + 1


def subsampled_length(frames, factor: int):
    """Output frames for `frames` feature frames (an int or an integer tensor)."""
    for stride in time_strides(factor):
        frames = strided_length(frames, stride)
    return frames


@dataclass(frozen=True)
class StreamWindow:
    """The feature frames one latency-controlled step reads (`AcousticModel.stream_step`).

    Step k emits output frames [k * chunk, (k + 1) * chunk); its backward direction also
    reads `right` output frames after them; the front end's convolutions need `margin`
    feature frames more on each side, so that the window's outputs equal those of the
    whole utterance. The window starts at feature frame `start(k)` (negative for step 0:
    frames before the first are given as zeros and masked).
    """

    chunk: int  # output frames a step emits
    right: int  # output frames of look-ahead of the backward direction
    stride: int  # feature frames per output frame (the subsampling factor)
    margin: int  # feature frames of front-end context on each side, a multiple of stride

    @classmethod
    def of(cls, subsampling: int, chunk: int, right: int) -> StreamWindow:
        strides = time_strides(subsampling)
        # Each kernel-3 convolution reaches one of its input frames further each way.
        reach = sum(math.prod(strides[:i]) for i in range(len(strides)))
        stride = math.prod(strides)
        return cls(chunk, right, stride, stride * math.ceil(reach / stride))

    @property
    def frames(self) -> int:
        """Feature frames of one step's window."""
        return 2 * self.margin + self.stride * (self.chunk + self.right)

    def start(self, step: int) -> int:
        """The feature frame (maybe negative) where step `step`'s window begins."""
        return self.stride * self.chunk * step - self.margin

    @property
    def lookahead_frames(self) -> int:
        """Feature frames past its last emitted frame a step waits for."""
        return self.stride * self.right + self.margin


def frame_seconds(hop_length: int, subsampling: int, sample_rate: int) -> float:
    """Seconds between two output frames of the acoustic model."""
    return hop_length * subsampling / sample_rate


def ctc_min_frames(target: Sequence) -> int:
    """Frames CTC needs for `target` (a string or token ids without blanks): one per
    symbol plus a blank between repeated neighbours."""
    repeats = sum(1 for a, b in zip(target, target[1:], strict=False) if a == b)
    return len(target) + repeats


def ctc_min_frames_batch(targets, target_lens):
    """`ctc_min_frames` of every row of a batch: (B, U) token ids (an integer tensor or
    array, padded past each length), (B,) lengths -> (B,) frames needed."""
    same = targets[:, 1:] == targets[:, :-1]  # (B, U - 1): token j + 1 repeats token j
    same = same & (targets[:, 1:] != 0)  # blank (0) is padding, never a target token
    positions = (targets[:, 1:] * 0 + 1).cumsum(1)  # (B, U - 1): j + 1, in targets' type
    repeats = (same & (positions < target_lens[:, None])).sum(1)  # pairs inside the length
    return target_lens + repeats
