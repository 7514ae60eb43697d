"""Long recordings: split at pauses into chunks of bounded length, read block by block.

A file longer than `SegmentConfig.max_seconds` is read in blocks (`audio.iter_audio_blocks`:
soundfile blocks, downmixed and resampled as a stream), and each chunk
ends in the middle of the longest pause (found by `speech_intervals`, librosa's
`effects.split` in numpy) in the latter
part of its window, so that no word is cut; a stretch with no pause at all is cut at `max_seconds`.
Chunks cover the file without gaps or overlap, so every sample is decoded once and the
chunk's start offset turns its word times into file times. Only about two windows of audio
are held at once, whatever the file length.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asr.audio import iter_audio_blocks
from asr.config import ConfigError

__all__ = ["Chunk", "SegmentConfig", "iter_chunks", "speech_intervals", "split_points"]


MAX_CHUNK_SECONDS = 600.0  # a longer chunk is one batch item of unbounded memory


@dataclass(frozen=True)
class SegmentConfig:
    # files longer than this are split; no chunk is longer (the --max-seconds flag's help)
    max_seconds: float = field(
        default=30.0,
        metadata={"help": "longer recordings are split at pauses into chunks of at most this"},
    )
    top_db: float = 35.0  # frames this far below the window's peak (dB) count as pause
    min_fraction: float = 0.5  # a cut must fall in the last (1 - this) of a window

    def __post_init__(self) -> None:  # `not low <= x`: NaN is in no range
        if not 1.0 < self.max_seconds <= MAX_CHUNK_SECONDS:
            raise ConfigError(
                f"segment.max_seconds (--max-seconds) must be > 1 and <= {MAX_CHUNK_SECONDS:g}"
                f", got {self.max_seconds}"
            )
        if not 0.0 < self.top_db <= 200.0:
            raise ConfigError(f"segment.top_db must be > 0 and <= 200, got {self.top_db}")
        if not 0.0 <= self.min_fraction < 1.0:
            raise ConfigError(f"segment.min_fraction must be in [0, 1), got {self.min_fraction}")


@dataclass
class Chunk:
    start: int  # first sample, counted from the start of the file
    wave: np.ndarray  # (S,) mono float32 at the model's sample rate


def split_points(window: np.ndarray, cfg: SegmentConfig, sample_rate: int) -> int:
    """Where to end a chunk starting at window[0]: the middle of the longest pause after
    `min_fraction` of the window, or the whole window when it has no such pause."""
    limit = int(cfg.max_seconds * sample_rate)
    window = window[:limit]
    if len(window) < limit:
        return len(window)
    speech = speech_intervals(window, cfg.top_db, frame_length=512, hop_length=128)
    pauses = [(a, b) for (_, a), (b, _) in zip(speech[:-1], speech[1:], strict=True)]
    if len(speech) and speech[-1][1] < len(window):
        pauses.append((int(speech[-1][1]), len(window)))
    earliest = int(cfg.min_fraction * limit)
    # The longest pause (the latest of equals): a gap between sentences, not within a word.
    candidates = [(b - a, (a + b) // 2) for a, b in pauses if (a + b) // 2 >= earliest]
    return max(candidates)[1] if candidates else limit


def speech_intervals(
    wave: np.ndarray, top_db: float, frame_length: int, hop_length: int
) -> np.ndarray:
    """(N, 2) [start, end) sample intervals louder than `top_db` below the loudest frame.

    librosa's `effects.split` (centered RMS frames, dB relative to the maximum), without
    librosa: equal to it on the tests' signals (tests/test_light.py).
    """
    padded = np.pad(wave, frame_length // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, frame_length)[::hop_length]
    rms = np.sqrt(np.mean(np.square(frames, dtype=np.float32), axis=1))  # (T,)
    power = np.maximum(1e-10, np.square(rms))
    ref = np.maximum(1e-10, np.square(rms.max(initial=0.0)))
    loud = 10.0 * np.log10(power) - 10.0 * np.log10(ref) > -top_db  # (T,)
    edges = np.flatnonzero(np.diff(loud.astype(np.int8))) + 1
    if loud[0]:
        edges = np.concatenate([[0], edges])
    if loud[-1]:
        edges = np.concatenate([edges, [len(loud)]])
    return np.minimum(edges * hop_length, len(wave)).reshape(-1, 2)


def iter_chunks(
    source: str | Path | np.ndarray, sample_rate: int, cfg: SegmentConfig = SegmentConfig()
) -> Iterator[Chunk]:
    """Chunks of a file (streamed) or waveform, in order, together covering all of it."""
    limit = int(cfg.max_seconds * sample_rate)
    if isinstance(source, np.ndarray):
        blocks: Iterator[np.ndarray] = (source[i : i + limit] for i in range(0, len(source), limit))
    else:
        blocks = iter_audio_blocks(Path(source), sample_rate, cfg.max_seconds)
    buffer, start = np.zeros(0, np.float32), 0
    for block in blocks:
        buffer = np.concatenate([buffer, block.astype(np.float32, copy=False)])
        while len(buffer) >= 2 * limit:
            buffer, start = yield from _emit(buffer, start, cfg, sample_rate)
    while len(buffer) > 0:
        buffer, start = yield from _emit(buffer, start, cfg, sample_rate)


def _emit(buffer: np.ndarray, start: int, cfg: SegmentConfig, sample_rate: int):
    cut = split_points(buffer, cfg, sample_rate)
    yield Chunk(start, buffer[:cut].copy())
    return buffer[cut:], start + cut
