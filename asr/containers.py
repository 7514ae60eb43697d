"""Audio in the containers libsndfile does not read (WebM/Opus from browsers' MediaRecorder,
MP4/M4A/AAC from Safari and phones, Matroska, QuickTime), decoded by PyAV (FFmpeg in its
wheels; the optional `media` extra: pip install 'asr[media]').

`asr.audio` turns here only for a file soundfile cannot open; every check it makes of the
samples (counted as decoded, NaN, truncation against the container's stated length) applies
to these too. Without PyAV, a file that looks like one of these containers gets an error
that says how to read it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from asr.audio import MAX_CHANNELS, AudioError, AudioInfo

__all__ = ["MEDIA_HINT", "container_blocks", "container_info", "looks_like_container"]

MEDIA_HINT = "pip install 'asr[media]' (PyAV) reads WebM, MP4 and M4A audio"
_MAGIC = {b"\x1a\x45\xdf\xa3": "WebM/Matroska"}  # at offset 0; MP4's "ftyp" is at offset 4


def looks_like_container(path: str | Path) -> str | None:
    """The container a file's first bytes name ("WebM/Matroska", "MP4/M4A"), or None."""
    try:
        with open(os.fsencode(path), "rb") as f:
            head = f.read(12)
    except OSError:
        return None
    if head[4:8] == b"ftyp":
        return "MP4/M4A"
    return _MAGIC.get(head[:4])


def _open(path: str | Path):
    """PyAV's container of `path` with an audio stream; AudioError otherwise."""
    try:
        import av
    except ImportError:
        kind = looks_like_container(path)
        if kind is None:
            return None
        raise AudioError(f"{path}: {kind} audio needs PyAV: {MEDIA_HINT}") from None
    try:
        container = av.open(os.fsdecode(os.fsencode(path)))
    except (av.FFmpegError, UnicodeDecodeError, ValueError):
        return None  # not a container FFmpeg knows either: soundfile's message stands
    if not container.streams.audio:
        container.close()
        raise AudioError(f"{path}: the file holds no audio stream")
    return container


def container_info(path: str | Path) -> AudioInfo | None:
    """What the container says of its first audio stream (frames 0 when it states no
    length, as MediaRecorder's WebM does); None when PyAV cannot open it either."""
    container = _open(path)
    if container is None:
        return None
    with container:
        stream = container.streams.audio[0]
        rate, channels = int(stream.codec_context.sample_rate), stream.codec_context.channels
        if stream.duration is not None and stream.time_base is not None:
            seconds = float(stream.duration * stream.time_base)
        else:
            seconds = (container.duration or 0) / 1_000_000  # AV_TIME_BASE
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(f"{path}: {channels} channels; at most {MAX_CHANNELS} are read")
    return AudioInfo(str(path), rate, channels, max(0, round(seconds * rate)), container=True)


def container_blocks(path: str | Path) -> Iterator[np.ndarray]:
    """The first audio stream's samples as decoded, (S_i, C) float32 blocks at its rate."""
    import av

    container = _open(path)
    with container:
        stream = container.streams.audio[0]
        planar = av.AudioResampler(format="fltp")  # its layout and rate, as float planes
        for frame in container.decode(stream):
            for out in planar.resample(frame):
                yield np.ascontiguousarray(out.to_ndarray().T, dtype=np.float32)  # (S, C)
