"""Log-mel features in torch, batched, on any device; matches librosa's melspectrogram.

Normalization is global mean and variance per mel bin, estimated on the training set
before training and stored with the model (the ESPnet/NeMo default), or per utterance
(`normalization = "utterance"`), which needs no statistics and copes with unseen channels,
or causally ("running", `logmel.RunningNorm`: each frame by the frames before it), which a
stream can do as audio arrives.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

# The config and frame count live beside the numpy twin (logmel.py), which needs no torch.
from asr.logmel import RUNNING_PRIOR_FRAMES, FeatureConfig, frame_count, mel_filterbank

__all__ = [
    "FeatureConfig",
    "FeatureExtractor",
    "frame_count",
    "log_mel_spectrogram",
    "pad_sequences",
]

_LOG_OFFSET = 1e-6  # keeps log() finite on digital silence


def log_mel_spectrogram(
    waveforms: torch.Tensor,
    wave_lens: torch.Tensor,
    window: torch.Tensor,
    mel_fbank: torch.Tensor,
    cfg: FeatureConfig,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, S) zero-padded waveforms -> (B, T, n_mels) natural-log mel power, (B,) frame counts.

    Padding stays zero before the centered STFT, so each utterance's frames are those of
    the utterance alone: a padded batch equals item-by-item extraction.
    """
    spec = torch.stft(
        waveforms,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        window=window,
        center=True,
        pad_mode="constant",
        return_complex=True,
    )  # (B, n_fft // 2 + 1, T)
    power = spec.real.square() + spec.imag.square()
    mel = torch.matmul(power.transpose(1, 2), mel_fbank)  # (B, T, F') @ (F', n_mels)
    feat_lens = frame_count(wave_lens, cfg.hop_length)
    return torch.log(mel + _LOG_OFFSET), feat_lens


def pad_sequences(items: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Tensors of (L_i, ...) (waveforms, frames, token ids) -> (B, max L, ...) zero-padded
    along the first axis, (B,) lengths."""
    lens = torch.tensor([len(x) for x in items], dtype=torch.long)
    longest = int(lens.max()) if len(items) else 0
    padded = torch.zeros(len(items), longest, *items[0].shape[1:], dtype=items[0].dtype)
    for i, x in enumerate(items):
        padded[i, : len(x)] = x
    return padded, lens


def _valid_mask(feat_lens: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) -> (B, T, 1) True on real frames."""
    steps = torch.arange(max_len, device=feat_lens.device)
    return (steps[None, :] < feat_lens[:, None]).unsqueeze(-1)


def running_normalized(feats: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """`logmel.RunningNorm.batch` in torch: (B, T, F) -> (B, T, F), frame t by frames 0..t
    and RUNNING_PRIOR_FRAMES frames of the global (F,) mean and std; sums in float64."""
    x = feats.double()
    prior = float(RUNNING_PRIOR_FRAMES)
    mean, std = mean.double(), std.double()
    count = prior + torch.arange(1, x.shape[1] + 1, device=x.device, dtype=x.dtype)[:, None]
    avg = (prior * mean + x.cumsum(1)) / count  # (B, T, F)
    avg_sq = (prior * (std.square() + mean.square()) + x.square().cumsum(1)) / count
    spread = (avg_sq - avg.square()).clamp(min=1e-8).sqrt()
    return ((x - avg) / spread).to(feats.dtype)


def utterance_stats(feats: torch.Tensor, feat_lens: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Mean and std over each utterance's real frames: (B, T, F) -> (B, 1, F), (B, 1, F)."""
    mask = _valid_mask(feat_lens, feats.shape[1]).to(feats.dtype)
    count = feat_lens.clamp(min=1).to(feats.dtype)[:, None, None]
    mean = (feats * mask).sum(1, keepdim=True) / count
    var = ((feats - mean).square() * mask).sum(1, keepdim=True) / count
    return mean, var.clamp(min=1e-8).sqrt()


class FeatureExtractor(nn.Module):
    """Waveforms -> normalized log-mel frames. Holds the window, filterbank and statistics."""

    def __init__(self, cfg: FeatureConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("window", torch.hann_window(cfg.win_length), persistent=False)
        # The light runtime's filterbank: one definition (equals torchaudio's within 1e-6).
        fbank = torch.from_numpy(mel_filterbank(cfg))  # (n_fft // 2 + 1, n_mels)
        self.register_buffer("mel_fbank", fbank, persistent=False)
        self.register_buffer("mean", torch.zeros(cfg.n_mels))
        self.register_buffer("std", torch.ones(cfg.n_mels))

    def set_global_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.std.copy_(std.clamp(min=1e-5))

    def raw(self, waveforms: torch.Tensor, wave_lens: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Unnormalized log-mel: (B, S), (B,) -> (B, T, n_mels), (B,)."""
        return log_mel_spectrogram(waveforms, wave_lens, self.window, self.mel_fbank, self.cfg)

    def forward(self, waveforms: torch.Tensor, wave_lens: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(B, S), (B,) -> normalized (B, T, n_mels) with zeros past each length, (B,)."""
        return self.normalize(*self.raw(waveforms, wave_lens))

    def normalize(self, feats: torch.Tensor, feat_lens: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Raw log-mel (B, T, n_mels), (B,) -> normalized, zeros past each length; (B,)."""
        feats = _TORCH_NORMALIZE[self.cfg.normalization](feats, feat_lens, self.mean, self.std)
        feats = feats.masked_fill(~_valid_mask(feat_lens, feats.shape[1]), 0.0)
        return feats, feat_lens


def _global(feats, feat_lens, mean, std) -> torch.Tensor:
    return (feats - mean) / std


def _utterance(feats, feat_lens, mean, std) -> torch.Tensor:
    utt_mean, utt_std = utterance_stats(feats, feat_lens)
    return (feats - utt_mean) / utt_std


def _running(feats, feat_lens, mean, std) -> torch.Tensor:
    return running_normalized(feats, mean, std)


def _none(feats, feat_lens, mean, std) -> torch.Tensor:
    return feats


# The torch twin of logmel.NORMALIZERS, by the same names: (B, T, F) raw log-mel, (B,)
# lengths, (F,) training-set mean and std -> (B, T, F) normalized.
_TORCH_NORMALIZE = {"global": _global, "utterance": _utterance, "running": _running, "none": _none}
