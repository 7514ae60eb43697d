"""Reading audio: any file soundfile reads, downmixed to mono and resampled to 16 kHz.

Numpy only (no torch): the light inference install reads audio through this module too.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.files import expand_paths
from asr.usererror import UserError

SAMPLE_RATE = 16_000
AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".au"}
AUDIO_EXTENSIONS |= {".webm", ".m4a", ".mp4", ".aac", ".mka"}  # with PyAV (asr/containers.py)

__all__ = [
    "AUDIO_EXTENSIONS",
    "SAMPLE_RATE",
    "AudioError",
    "AudioInfo",
    "audio_info",
    "decoded_blocks",
    "expand_audio_paths",
    "iter_audio_blocks",
    "load_audio",
    "resample",
    "StreamResampler",
    "wav_declared_frames",
]


# Rates read at all: below 1 kHz a header describes no speech (a 12 KB file at 1 Hz claims
# 6,000 s); above 384 kHz none is recorded.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1_000, 384_000
MAX_CHANNELS = 64  # a block of a 1,000-channel file would be 2 GB before the downmix
MAX_PHASES = 1_000  # polyphase filters a resampling ratio may need (`resampling_ratio`)
# Float samples have full scale 1.0: a hot recording may clip a little above it, but one
# 18 dB above is a file scaled like integers (its loudest 16-bit samples would be below 8,
# i.e. silence, at -72 dBFS), which read as is is loud noise to the model.
MAX_FLOAT_PEAK = 8.0
FLOAT_SUBTYPES = {"FLOAT", "DOUBLE"}


class AudioError(UserError, ValueError):
    """An audio file that cannot be used: missing, unreadable, empty, truncated, or holding
    NaN or infinite samples."""


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says, read without decoding the samples."""

    path: str
    sample_rate: int
    channels: int
    frames: int  # 0: not stated (a container may not say)
    container: bool = False  # read through PyAV (asr/containers.py), not libsndfile

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def expand_audio_paths(items: Sequence[str | Path]) -> list[Path]:
    """Files as given; folders replaced by the audio files (AUDIO_EXTENSIONS) below them."""
    return expand_paths(items, AUDIO_EXTENSIONS, AudioError)


def audio_info(path: str | Path) -> AudioInfo:
    """Read sample rate, channels and length from the header; raise AudioError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    try:
        info = sf.info(os.fsencode(path))  # bytes: names that are not UTF-8 too
    except PermissionError as err:
        raise AudioError(f"{path}: permission denied") from err
    except Exception as err:  # soundfile raises several types for undecodable input
        if not os.access(path, os.R_OK):
            raise AudioError(f"{path}: permission denied") from err
        from asr.containers import container_info  # WebM, MP4: PyAV's

        found = container_info(path)
        if found is None:
            raise AudioError(f"{path}: not a readable audio file ({err})") from err
        return _checked(found)
    return _checked(
        AudioInfo(str(path), int(info.samplerate), int(info.channels), int(info.frames))
    )


def _checked(info: AudioInfo) -> AudioInfo:
    """`info` of a rate and channel count this reads; AudioError naming the file else."""
    if not MIN_SAMPLE_RATE <= info.sample_rate <= MAX_SAMPLE_RATE:
        raise AudioError(
            f"{info.path}: sample rate {info.sample_rate} Hz is not audio this reads "
            f"({MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz)"
        )
    if not 1 <= info.channels <= MAX_CHANNELS:
        raise AudioError(f"{info.path}: {info.channels} channels; at most {MAX_CHANNELS} are read")
    return info


def resampling_ratio(orig_rate: int, new_rate: int) -> tuple[int, int]:
    """(orig, new): resampling reads `orig` input samples per `new` output samples. The
    exact reduced ratio when it needs at most MAX_PHASES filters (every common rate: 8,
    11.025, 22.05, 44.1, 48 kHz...), else the nearest ratio that does: an odd rate (16001,
    11127 Hz) is then read within about 0.05% of its speed (at worst 7996 Hz, read as 8000),
    and the filter bank stays a few MiB
    (the exact one for 16001 Hz would be 16000 x 16015 floats, 1 GiB)."""
    gcd = math.gcd(int(orig_rate), int(new_rate))
    orig, new = int(orig_rate) // gcd, int(new_rate) // gcd
    if new <= MAX_PHASES:
        return orig, new
    near = Fraction(int(orig_rate), int(new_rate)).limit_denominator(MAX_PHASES)
    return near.numerator, near.denominator


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode a file to a mono float32 waveform at `sample_rate`: (S,), validated as
    `iter_audio_blocks` validates it."""
    blocks = list(iter_audio_blocks(path, sample_rate))
    return np.concatenate(blocks) if len(blocks) != 1 else blocks[0]


def iter_audio_blocks(
    path: str | Path, sample_rate: int = SAMPLE_RATE, block_seconds: float = 30.0
) -> Iterator[np.ndarray]:
    """Decode a file block by block: mono float32 blocks (S_i,) at `sample_rate`, resampled
    as a stream, so memory does not grow with the file's length. The one reading function:
    every file is validated here, raising AudioError naming the file.

    Silence is valid audio; a file with no samples, fewer samples than its header promises
    (a truncated download; for WAV, the data chunk's declared size), or NaN / infinite
    samples is not.
    """
    info = audio_info(path)
    declared = wav_declared_frames(path)
    if declared is not None and declared > info.frames:
        raise AudioError(
            f"{path}: truncated: the header promises {declared} frames, the file holds "
            f"{info.frames}"
        )
    resampler = StreamResampler(info.sample_rate, sample_rate)
    block = max(1, int(block_seconds * info.sample_rate))
    decoded = 0
    try:
        for samples, floating in _decoded(info, block):
            _check_samples(path, samples, decoded, info.sample_rate, floating)
            decoded += samples.shape[0]
            out = resampler.push(samples.mean(axis=1))  # (S, C) -> (S,)
            if len(out):
                yield out
    except AudioError:
        raise
    except Exception as err:  # libsndfile raises several types for undecodable data
        raise AudioError(f"{path}: cannot decode audio after {decoded} frames ({err})") from err
    if decoded == 0:
        raise AudioError(f"{path}: the file holds no audio samples")
    # Compressed formats may report an approximate frame count; PCM headers are exact.
    if info.frames > 0 and decoded < 0.99 * info.frames:
        raise AudioError(
            f"{path}: truncated: the header promises {info.frames} frames, "
            f"only {decoded} could be decoded"
        )
    tail = resampler.flush()
    if len(tail):
        yield tail


def _decoded(info: AudioInfo, block: int) -> Iterator[tuple[np.ndarray, bool]]:
    """(samples (S_i, C), whether the file stores floats) as decoded: by libsndfile, or
    by PyAV for a container (lossy codecs decode to floats at full scale 1.0)."""
    if info.container:
        from asr.containers import container_blocks

        for samples in container_blocks(info.path):
            yield samples, False
        return
    with sf.SoundFile(os.fsencode(info.path)) as f:
        floating = f.subtype in FLOAT_SUBTYPES
        for samples in decoded_blocks(f, block):
            yield samples, floating


def decoded_blocks(f: sf.SoundFile, block: int) -> Iterator[np.ndarray]:
    """The samples `f` really decodes, (S_i, C) float32 blocks of at most `block` frames.

    Not `SoundFile.blocks`: it yields blocks of the size the header promises from one
    reused buffer, so a truncated MP3 (or one whose Xing header claims 600 s for 82 KB)
    comes out at its promised length, the missing part filled from stale or uninitialized
    memory. `read` returns only the frames the decoder produced: their count is the truth.
    """
    while True:
        samples = f.read(block, dtype="float32", always_2d=True)  # a fresh array each time
        if samples.shape[0]:
            yield samples
        if samples.shape[0] < block:
            return


def _check_samples(path, samples: np.ndarray, before: int, rate: int, floating: bool) -> None:
    """AudioError for NaN or infinite samples, or for a float file whose samples are
    scaled like 16-bit integers (up to 32767, not 1.0): read as they are, they would be
    transcribed as noise."""
    finite = np.isfinite(samples).all(axis=1)  # (S,)
    if not finite.all():
        at = (before + int(np.argmin(finite))) / rate
        raise AudioError(f"{path}: NaN or infinite samples (first at {at:.2f} s)")
    peak = float(np.abs(samples).max()) if floating and samples.size else 0.0
    if peak > MAX_FLOAT_PEAK:
        raise AudioError(
            f"{path}: float samples reach {peak:.1f}, where full scale is 1.0 (scaled like "
            "16-bit integers?): divide them by 32768, or write the file as 16-bit PCM"
        )


def wav_declared_frames(path: str | Path) -> int | None:
    """Frames a RIFF/WAVE header declares for its data chunk (libsndfile reports what the
    file holds instead, so a cut-off download would look whole); None for other files."""
    try:
        with Path(path).open("rb") as f:
            return _declared_frames(f)
    except OSError:
        return None


def _declared_frames(f) -> int | None:
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    block_align = 0
    while chunk := f.read(8):
        if len(chunk) < 8:
            return None
        size = int.from_bytes(chunk[4:], "little")
        if chunk[:4] == b"fmt ":
            fmt = f.read(size + size % 2)
            block_align = int.from_bytes(fmt[12:14], "little")
        elif chunk[:4] == b"data":
            streamed = size in (0, 0xFFFFFFFF)  # written before its length was known
            return None if streamed or not block_align else size // block_align
        else:
            f.seek(size + size % 2, 1)
    return None


class StreamResampler:
    """`resample` applied to a waveform that arrives in pieces: `push` each piece, then
    `flush`; the concatenated outputs equal `resample` of the whole within float rounding.

    Output frame j (`new` samples) reads input [j * orig - width, j * orig + width + orig):
    the resampler keeps only the input that frames not yet computed still need.
    """

    def __init__(self, orig_rate: int, new_rate: int) -> None:
        self.orig, self.new = resampling_ratio(orig_rate, new_rate)
        self.identity = self.orig == self.new
        if not self.identity:
            self.kernel, self.width = _sinc_kernel(self.orig, self.new)  # (new, K)
            self.buffer = np.zeros(self.width, np.float32)  # the left zero padding
        self.seen = 0  # input samples pushed
        self.emitted = 0  # output samples returned

    def push(self, waveform: np.ndarray) -> np.ndarray:
        waveform = np.ascontiguousarray(waveform, dtype=np.float32)
        self.seen += len(waveform)
        if self.identity:
            return waveform
        self.buffer = np.concatenate([self.buffer, waveform])
        return self._frames(final=False)

    def flush(self) -> np.ndarray:
        if self.identity:
            return np.zeros(0, np.float32)
        self.buffer = np.concatenate([self.buffer, np.zeros(self.width + self.orig, np.float32)])
        out = self._frames(final=True)
        total = math.ceil(self.new * self.seen / self.orig)
        return out[: max(0, total - (self.emitted - len(out)))]

    def _frames(self, final: bool) -> np.ndarray:
        size = self.kernel.shape[1]
        count = (len(self.buffer) - size) // self.orig + 1 if len(self.buffer) >= size else 0
        if final:  # frames past the input's end are cut by `flush`
            count = min(count, math.ceil(self.seen / self.orig) - self.emitted // self.new)
        if count <= 0:
            return np.zeros(0, np.float32)
        view = np.lib.stride_tricks.sliding_window_view(self.buffer, size)[: count * self.orig]
        out = (view[:: self.orig] @ self.kernel.T).reshape(-1)  # (n, K) @ (K, new) -> (n*new,)
        self.buffer = self.buffer[count * self.orig :]
        self.emitted += len(out)
        return out


def resample(waveform: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Band-limited resampling of a mono waveform (S,) -> (ceil(S * new_rate / orig_rate),).

    torchaudio's `resample` (windowed sinc, Hann window, 6 zero crossings, rolloff 0.99)
    in numpy, equal to it within 1e-5 (tests/test_light.py).
    """
    waveform = np.ascontiguousarray(waveform, dtype=np.float32)
    orig, new = resampling_ratio(orig_rate, new_rate)
    if orig == new:
        return waveform
    kernel, width = _sinc_kernel(orig, new)  # (new, 2 * width + orig)
    padded = np.pad(waveform, (width, width + orig))
    frames = np.lib.stride_tricks.sliding_window_view(padded, kernel.shape[1])[::orig]
    resampled = (frames @ kernel.T).reshape(-1)  # (n, K) @ (K, new) -> (n * new,)
    return resampled[: math.ceil(new * len(waveform) / orig)]


def _sinc_kernel(orig: int, new: int, zeros: int = 6, rolloff: float = 0.99):
    """Polyphase windowed-sinc filters: (new, 2 * width + orig) float32, and width."""
    base = min(orig, new) * rolloff
    width = math.ceil(zeros * orig / base)
    idx = np.arange(-width, width + orig, dtype=np.float32)[None, :] / orig
    t = np.arange(0, -new, -1, dtype=np.float32)[:, None] / new + idx  # (new, K)
    t = np.clip(t * np.float32(base), -zeros, zeros)
    window = np.cos(t * np.float32(math.pi / zeros / 2)) ** 2
    t = t * np.float32(math.pi)
    safe = np.where(t == 0, np.float32(1.0), t)
    kernel = np.where(t == 0, np.float32(1.0), np.sin(safe) / safe)
    return (kernel * window * np.float32(base / orig)).astype(np.float32), width
