"""Log-mel features in numpy: the inference twin of features.py, importing no torch.

The light runtime (onnxruntime, `asr/inference/runtime_onnx.py`) computes its features here; they
equal `FeatureExtractor`'s within 1e-4 (tests/test_light.py). The filterbank is the
slaney-scale, slaney-normalized one of torchaudio's `melscale_fbanks` (and librosa's),
recomputed here; the STFT runs in float64, so the remaining difference is torch's
float32 rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from asr.config import check_ranges

__all__ = [
    "NORMALIZERS",
    "FeatureConfig",
    "LogMelExtractor",
    "RunningNorm",
    "frame_count",
    "hann_window",
    "log_mel_frames",
    "log_mel_spectrogram",
    "mel_filterbank",
]

_LOG_OFFSET = 1e-6  # keeps log() finite on digital silence (as features.py)
# "running": frame t is normalized by the mean and variance of frames 0..t together with
# this many frames' worth of the training-set statistics (a prior for the first second).
# Causal, so a stream normalizes each frame as it arrives, exactly as training did.
RUNNING_PRIOR_FRAMES = 100
# normalizations that need the training-set statistics (estimated before training)
GLOBAL_STATS_NORMALIZATIONS = ("global", "running")
_MEL_BREAK_HZ = 1000.0  # slaney scale: linear below, logarithmic above
_MEL_LINEAR_HZ = 200.0 / 3  # Hz per mel on the linear part
_MEL_LOG_STEP = math.log(6.4) / 27.0  # log-Hz per mel on the logarithmic part


@dataclass
class FeatureConfig:
    sample_rate: int = 16_000  # Hz; audio is resampled to this on load
    n_fft: int = 400  # FFT size in samples (25 ms)
    win_length: int = 400  # Hann window length in samples (25 ms)
    hop_length: int = 160  # frame shift in samples (10 ms)
    n_mels: int = 80  # mel bins (slaney scale and area normalization, as librosa)
    f_min: float = 0.0  # lowest mel filter edge, Hz
    f_max: float = 8000.0  # highest mel filter edge, Hz
    # "global" (training-set statistics), "utterance", "running" (causal: streaming models,
    # see RUNNING_PRIOR_FRAMES) or "none"
    normalization: str = "global"

    def __post_init__(self) -> None:
        if self.normalization not in NORMALIZERS:
            raise ValueError(
                f"features.normalization must be one of {list(NORMALIZERS)}, "
                f"got {self.normalization!r}"
            )
        check_ranges("features", self, _FEATURE_RANGES)
        if self.win_length > self.n_fft:
            raise ValueError(f"features.win_length {self.win_length} > n_fft {self.n_fft}")
        if not self.f_min < self.f_max <= self.sample_rate / 2:
            raise ValueError(
                f"features: f_min {self.f_min} < f_max {self.f_max} <= sample_rate / 2 "
                f"({self.sample_rate / 2}) does not hold"
            )


# Every number of [features]: (lowest, highest) accepted.
_FEATURE_RANGES = {
    "sample_rate": (1000, 384_000),
    "n_fft": (2, 65_536),
    "win_length": (1, 65_536),
    "hop_length": (1, 65_536),
    "n_mels": (1, 1024),
    "f_min": (0.0, 192_000.0),
    "f_max": (0.0, 192_000.0),
}


def frame_count(num_samples, hop_length: int):
    """Frames of a centered STFT of `num_samples` samples (an int, array or tensor)."""
    return num_samples // hop_length + 1


def _hz_to_mel(freq: float) -> float:
    if freq < _MEL_BREAK_HZ:
        return freq / _MEL_LINEAR_HZ
    return _MEL_BREAK_HZ / _MEL_LINEAR_HZ + math.log(freq / _MEL_BREAK_HZ) / _MEL_LOG_STEP


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    break_mel = _MEL_BREAK_HZ / _MEL_LINEAR_HZ
    log_part = _MEL_BREAK_HZ * np.exp(_MEL_LOG_STEP * (mels - break_mel))
    return np.where(mels >= break_mel, log_part, mels * _MEL_LINEAR_HZ).astype(mels.dtype)


def mel_filterbank(cfg: FeatureConfig) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels) float32 triangles on the slaney mel scale, each scaled to
    unit area (slaney normalization); float32 steps as torchaudio's, for equal values."""
    n_freqs = cfg.n_fft // 2 + 1
    all_freqs = np.linspace(0, cfg.sample_rate // 2, n_freqs, dtype=np.float32)  # (F,)
    mel_points = np.linspace(
        _hz_to_mel(cfg.f_min), _hz_to_mel(cfg.f_max), cfg.n_mels + 2, dtype=np.float32
    )
    edges = _mel_to_hz(mel_points)  # (n_mels + 2,) Hz
    widths = edges[1:] - edges[:-1]  # (n_mels + 1,)
    slopes = edges[None, :] - all_freqs[:, None]  # (F, n_mels + 2)
    rising = -slopes[:, :-2] / widths[:-1]  # (F, n_mels)
    falling = slopes[:, 2:] / widths[1:]  # (F, n_mels)
    fbank = np.maximum(np.float32(0.0), np.minimum(rising, falling))
    area = np.float32(2.0) / (edges[2:] - edges[:-2])  # (n_mels,)
    return (fbank * area[None, :]).astype(np.float32)


def hann_window(cfg: FeatureConfig) -> np.ndarray:
    """(n_fft,) periodic Hann window of `win_length`, zero-padded to n_fft on both sides."""
    n = np.arange(cfg.win_length)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / cfg.win_length)
    left = (cfg.n_fft - cfg.win_length) // 2
    return np.pad(window, (left, cfg.n_fft - cfg.win_length - left))


def log_mel_spectrogram(
    waveforms: np.ndarray,
    wave_lens: np.ndarray,
    window: np.ndarray,
    mel_fbank: np.ndarray,
    cfg: FeatureConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """(B, S) zero-padded waveforms -> (B, T, n_mels) float32 natural-log mel power, (B,).

    A centered STFT with zero padding, as `features.log_mel_spectrogram`: each utterance's
    frames are those of the utterance alone.
    """
    half = cfg.n_fft // 2
    padded = np.pad(waveforms.astype(np.float64), ((0, 0), (half, half)))  # (B, S + n_fft)
    feat_lens = frame_count(np.asarray(wave_lens, dtype=np.int64), cfg.hop_length)
    return log_mel_frames(padded, window, mel_fbank, cfg), feat_lens


def log_mel_frames(
    padded: np.ndarray, window: np.ndarray, mel_fbank: np.ndarray, cfg: FeatureConfig
) -> np.ndarray:
    """(..., S) signal, already padded as the centered STFT pads it -> (..., T, n_mels)
    float32 log-mel of every whole n_fft frame at hop_length steps (a stream's frames are
    those of its signal so far)."""
    frames = np.lib.stride_tricks.sliding_window_view(padded, cfg.n_fft, axis=-1)
    frames = frames[..., :: cfg.hop_length, :]  # (..., T, n_fft)
    spec = np.fft.rfft(frames * window, axis=-1)  # (..., T, n_fft // 2 + 1)
    power = spec.real**2 + spec.imag**2
    mel = power @ mel_fbank.astype(np.float64)  # (..., T, F') @ (F', n_mels)
    return np.log(mel + _LOG_OFFSET).astype(np.float32)


def _valid_mask(feat_lens: np.ndarray, max_len: int) -> np.ndarray:
    """(B,) -> (B, T, 1) True on real frames."""
    return (np.arange(max_len)[None, :] < feat_lens[:, None])[:, :, None]


def utterance_stats(feats: np.ndarray, feat_lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std over each utterance's real frames: (B, T, F) -> (B, 1, F), (B, 1, F)."""
    mask = _valid_mask(feat_lens, feats.shape[1])
    count = np.maximum(feat_lens, 1)[:, None, None]
    mean = (feats * mask).sum(1, keepdims=True) / count
    var = (np.square(feats - mean) * mask).sum(1, keepdims=True) / count
    return mean, np.sqrt(np.maximum(var, 1e-8))


class LogMelExtractor:
    """Waveforms -> normalized log-mel frames, as `features.FeatureExtractor`, in numpy."""

    def __init__(self, cfg: FeatureConfig, mean: np.ndarray, std: np.ndarray) -> None:
        self.cfg = cfg
        self.window = hann_window(cfg)
        self.mel_fbank = mel_filterbank(cfg)
        self.mean = np.asarray(mean, dtype=np.float32)  # (n_mels,) training-set statistics
        self.std = np.maximum(np.asarray(std, dtype=np.float32), np.float32(1e-5))

    def normalizer(self):
        """A fresh normalizer of features.normalization (NORMALIZERS) with these statistics."""
        return NORMALIZERS[self.cfg.normalization](self.mean, self.std)

    def __call__(self, waveforms: np.ndarray, wave_lens: np.ndarray) -> tuple[np.ndarray, ...]:
        """(B, S), (B,) -> normalized (B, T, n_mels) float32, zeros past each length, (B,)."""
        feats, feat_lens = log_mel_spectrogram(
            waveforms, wave_lens, self.window, self.mel_fbank, self.cfg
        )
        feats = self.normalizer().batch(feats, feat_lens)
        feats = np.where(_valid_mask(feat_lens, feats.shape[1]), feats, np.float32(0.0))
        return feats.astype(np.float32, copy=False), feat_lens


class RunningNorm:
    """Causal mean/variance normalization ("running"): frame t by the statistics of frames
    0..t and RUNNING_PRIOR_FRAMES frames of the training set's. `batch` normalizes whole
    (B, T, F) utterances; `__call__` the next (n, F) frames of one stream, carrying the
    sums, so a stream fed in pieces gets `batch`'s values."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        prior = float(RUNNING_PRIOR_FRAMES)
        mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
        self.total = prior * mean  # (F,) sum of frames so far, the prior's included
        self.total_sq = prior * (np.square(std) + np.square(mean))  # (F,) sum of squares
        self.count = prior

    streams = True

    def batch(self, feats: np.ndarray, feat_lens: np.ndarray | None = None) -> np.ndarray:
        """(B, T, F) -> (B, T, F) float32; frames past a length do not reach earlier ones."""
        steps = np.arange(1, feats.shape[1] + 1, dtype=np.float64)[None, :, None]  # (1, T, 1)
        total = self.total + np.cumsum(feats, axis=1, dtype=np.float64)
        total_sq = self.total_sq + np.cumsum(np.square(feats, dtype=np.float64), axis=1)
        return _normalized(feats, total, total_sq, self.count + steps)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """(n, F) the stream's next frames -> (n, F) float32 normalized."""
        out = self.batch(frames[None])[0]
        self.total = self.total + frames.sum(0, dtype=np.float64)
        self.total_sq = self.total_sq + np.square(frames, dtype=np.float64).sum(0)
        self.count += len(frames)
        return out


class GlobalNorm:
    """ "global": every frame by the training set's mean and std."""

    streams = True  # frame by frame, nothing carried

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean, self.std = mean, std  # (F,)

    def batch(self, feats: np.ndarray, feat_lens: np.ndarray | None = None) -> np.ndarray:
        """(B, T, F) -> (B, T, F) float32."""
        return ((feats - self.mean) / self.std).astype(np.float32)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """(n, F) the stream's next frames -> (n, F) float32."""
        return self.batch(frames)


class UtteranceNorm:
    """ "utterance": each utterance by its own mean and std (known only at its end, so a
    stream cannot use it)."""

    streams = False

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        pass  # the training set's statistics play no part

    def batch(self, feats: np.ndarray, feat_lens: np.ndarray) -> np.ndarray:
        """(B, T, F), (B,) -> (B, T, F)."""
        mean, std = utterance_stats(feats, feat_lens)
        return (feats - mean) / std


class NoNorm(UtteranceNorm):
    """ "none": the log-mel as it is."""

    streams = True

    def batch(self, feats: np.ndarray, feat_lens: np.ndarray | None = None) -> np.ndarray:
        return feats

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return frames


# features.normalization -> its normalizer: batch(feats, feat_lens) for whole utterances,
# and where `streams`, a call per stream piece (n, F) equal to batch over the whole.
# features.py's FeatureExtractor.normalize is the torch twin of each (_TORCH_NORMALIZE).
NORMALIZERS = {
    "global": GlobalNorm,
    "utterance": UtteranceNorm,
    "running": RunningNorm,
    "none": NoNorm,
}


def _normalized(feats, total, total_sq, count) -> np.ndarray:
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - np.square(mean), 1e-8))
    return ((feats - mean) / std).astype(np.float32)
