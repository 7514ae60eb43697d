"""Training-time augmentation: speed perturbation and additive noise on waveforms (in the
data-loading workers), SpecAugment on features (on the training device).

Waveform augmentation draws from a generator seeded by (seed, epoch, utterance index), so
an utterance gets the same perturbation in a given epoch whichever worker loads it and
whether or not the run was resumed in between. SpecAugment draws from torch's global
generator, which training checkpoints save and restore.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchaudio.functional as AF
import torchaudio.transforms as T
from torch import nn
from torch.utils.data import Dataset

from asr.audio import load_audio
from asr.config import check_ranges

__all__ = [
    "AugmentConfig",
    "AugmentedDataset",
    "SpecAugment",
    "add_noise",
    "speed_perturb",
    "speed_perturbed_length",
    "warp_mel",
]

_NOISE_EXTENSIONS = {".wav", ".flac", ".ogg"}


@dataclass
class AugmentConfig:
    spec_augment: bool = False  # frequency and time masks on training features
    freq_masks: int = 2  # frequency masks per utterance
    freq_mask_width: int = 27  # widest frequency mask, mel bins
    time_masks: int = 2  # time masks per utterance
    time_mask_width: int = 40  # widest time mask, frames
    time_mask_ratio: float = 0.05  # ... and at most this fraction of the utterance's frames
    speed_perturb: bool = False  # resample each training utterance at a random speed
    speeds: list[float] = (0.9, 1.0, 1.1)  # speed factors drawn uniformly
    noise_prob: float = 0.0  # probability of adding noise to a training utterance
    noise_dir: str = ""  # folder of noise recordings; empty: synthetic white noise
    snr_min: float = 5.0  # lowest signal-to-noise ratio, dB
    snr_max: float = 30.0  # highest signal-to-noise ratio, dB
    start_epoch: int = 0  # epochs trained without any augmentation first (leave the blank plateau)
    # >0: vocal tract length perturbation, each utterance's mel axis warped by a factor
    # drawn from [1 - vtlp, 1 + vtlp] (a new speaker's formants; Jaitly and Hinton 2013)
    vtlp: float = 0.0
    vtlp_boundary: float = 0.8  # fraction of the mel axis warped linearly; the rest is fixed up

    def __post_init__(self) -> None:
        self.speeds = list(self.speeds)
        if not self.speeds:
            raise ValueError("augment.speeds must hold at least one factor")
        check_ranges("augment", self, _AUGMENT_RANGES)
        if self.snr_min > self.snr_max:
            raise ValueError(f"augment.snr_min {self.snr_min} > snr_max {self.snr_max}")

    def active(self, epoch: int) -> bool:
        """Whether augmentation applies in 0-based `epoch`."""
        return epoch >= self.start_epoch

    @property
    def waveform_enabled(self) -> bool:
        return self.speed_perturb or self.noise_prob > 0

    @property
    def feature_enabled(self) -> bool:
        return self.spec_augment or self.vtlp > 0


# Every number of [augment]: (lowest, highest) accepted; speeds each.
_AUGMENT_RANGES = {
    "freq_masks": (0, 100),
    "freq_mask_width": (0, 10_000),
    "time_masks": (0, 1000),
    "time_mask_width": (0, 100_000),
    "time_mask_ratio": (0.0, 1.0),
    "speeds": (0.25, 4.0),  # resampled in steps of 1/100 (_speed_ratio)
    "noise_prob": (0.0, 1.0),
    "snr_min": (-100.0, 200.0),
    "snr_max": (-100.0, 200.0),
    "start_epoch": (0, 10_000),
    "vtlp": (0.0, 0.49),
    "vtlp_boundary": (0.01, 1.0),
}


def _speed_ratio(speed: float) -> tuple[int, int]:
    """Speed factor -> (orig_freq, new_freq) of the resampling that plays it back."""
    orig, new = round(100 * speed), 100
    g = math.gcd(orig, new)
    return orig // g, new // g


def speed_perturbed_length(num_samples: int, speed: float) -> int:
    """Samples after `speed_perturb`: ceil(num_samples / speed)."""
    orig, new = _speed_ratio(speed)
    return math.ceil(num_samples * new / orig)


def speed_perturb(waveform: torch.Tensor, speed: float) -> torch.Tensor:
    """(S,) -> (ceil(S / speed),): faster and higher for speed > 1, as sox `speed`."""
    if speed == 1.0:
        return waveform
    orig, new = _speed_ratio(speed)
    return AF.resample(waveform, orig, new)


def add_noise(waveform: torch.Tensor, noise: torch.Tensor, snr_db: float) -> torch.Tensor:
    """(S,) + (S,) noise scaled to `snr_db` relative to the waveform's power."""
    signal_power = waveform.square().mean().clamp(min=1e-10)
    noise_power = noise.square().mean().clamp(min=1e-10)
    scale = torch.sqrt(signal_power / (noise_power * 10 ** (snr_db / 10)))
    return waveform + scale * noise


def _noise_files(folder: str) -> list[str]:
    path = Path(folder)
    if not path.is_dir():
        raise ValueError(f"augment.noise_dir {folder!r}: no such folder")
    files = sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in _NOISE_EXTENSIONS)
    if not files:
        raise ValueError(f"augment.noise_dir {folder!r}: no {sorted(_NOISE_EXTENSIONS)} files")
    return files


class AugmentedDataset(Dataset):
    """Wraps a SpeechDataset: speed perturbation and noise on each loaded waveform.

    Set `epoch` before each epoch's loader iterator is created (workers copy the dataset).
    """

    def __init__(self, base: Dataset, cfg: AugmentConfig, seed: int):
        self.base = base
        self.cfg = cfg
        self.seed = seed
        self.epoch = 0
        self.utterances = base.utterances
        self.references = getattr(base, "references", None)
        self.sample_rate = base.sample_rate
        self.noise_files = _noise_files(cfg.noise_dir) if cfg.noise_dir else []
        self._speeds: tuple[int, np.ndarray] | None = None  # (epoch, factors) cache

    def speed_factors(self, epoch: int) -> np.ndarray:
        """(N,) speed factor of every utterance in `epoch` (1.0 without speed perturbation).

        Drawn for the whole epoch at once, so that the batch sampler can cut batches on
        the perturbed durations.
        """
        if self._speeds is None or self._speeds[0] != epoch:
            if self.cfg.speed_perturb and self.cfg.active(epoch):
                rng = np.random.default_rng([self.seed, epoch, 1 << 30])
                factors = rng.choice(np.asarray(self.cfg.speeds, np.float64), size=len(self))
            else:
                factors = np.ones(len(self))
            self._speeds = (epoch, factors)
        return self._speeds[1]

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        waveform, *targets = self.base[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if self.cfg.speed_perturb:
            waveform = speed_perturb(waveform, float(self.speed_factors(self.epoch)[index]))
        if rng.random() < self.cfg.noise_prob and self.cfg.active(self.epoch):
            snr = float(rng.uniform(self.cfg.snr_min, self.cfg.snr_max))
            waveform = add_noise(waveform, self._noise(len(waveform), rng), snr)
        return (waveform, *targets)

    def _noise(self, num_samples: int, rng: np.random.Generator) -> torch.Tensor:
        """(num_samples,) of a random noise file from a random offset (tiled), or white noise."""
        if not self.noise_files:
            return torch.from_numpy(rng.standard_normal(num_samples).astype(np.float32))
        path = self.noise_files[int(rng.integers(len(self.noise_files)))]
        noise = load_audio(path, self.sample_rate)
        if len(noise) == 0:
            raise ValueError(f"{path}: empty noise file")
        start = int(rng.integers(len(noise)))
        reps = math.ceil((start + num_samples) / len(noise))
        return torch.from_numpy(np.tile(noise, reps)[start : start + num_samples])


def vtlp_source_bins(num_bins: int, alphas: torch.Tensor, boundary: float) -> torch.Tensor:
    """(B,) warp factors -> (B, F) fractional source bin of each output mel bin.

    Piecewise linear (Jaitly and Hinton 2013): output bin f reads bin f / alpha below
    `boundary` * (F - 1); above it the map runs straight to the top bin, which stays put.
    alpha > 1 moves spectral content up (a shorter vocal tract), alpha < 1 down.
    """
    top = num_bins - 1
    knee = boundary * top
    bins = torch.arange(num_bins, dtype=torch.float32)[None, :]  # (1, F)
    alphas = alphas.float()[:, None]  # (B, 1)
    low = bins / alphas
    at_knee = knee / alphas
    high = at_knee + (bins - knee) * (top - at_knee) / max(top - knee, 1e-6)
    return torch.where(bins <= knee, low, high).clamp(0, top)


def warp_mel(feats: torch.Tensor, alphas: torch.Tensor, boundary: float) -> torch.Tensor:
    """(B, T, F) features, (B,) warp factors -> (B, T, F) with each utterance's mel axis
    warped (linear interpolation between neighbouring bins)."""
    batch, frames, num_bins = feats.shape
    source = vtlp_source_bins(num_bins, alphas, boundary).to(feats.device)  # (B, F)
    lower = source.floor().long().clamp(max=num_bins - 1)
    upper = (lower + 1).clamp(max=num_bins - 1)
    frac = (source - lower).to(feats.dtype)[:, None, :]  # (B, 1, F)
    index = (batch, frames, num_bins)
    below = feats.gather(2, lower[:, None, :].expand(index))  # (B, T, F)
    above = feats.gather(2, upper[:, None, :].expand(index))
    return below + frac * (above - below)


class SpecAugment(nn.Module):
    """Feature-domain augmentation: VTLP mel-axis warping (with augment.vtlp), then
    frequency masks over all frames and time masks within each utterance's real frames
    (with augment.spec_augment)."""

    def __init__(self, cfg: AugmentConfig):
        super().__init__()
        self.cfg = cfg
        self.freq_mask = T.FrequencyMasking(cfg.freq_mask_width, iid_masks=True)

    def forward(self, feats: torch.Tensor, feat_lens: torch.Tensor) -> torch.Tensor:
        """(B, T, F), (B,) -> (B, T, F) with masked regions set to 0 (the normalized mean)."""
        if self.cfg.vtlp > 0:
            alphas = 1 + self.cfg.vtlp * (2 * torch.rand(feats.shape[0]) - 1)  # (B,)
            feats = warp_mel(feats, alphas, self.cfg.vtlp_boundary)
        if not self.cfg.spec_augment:
            return feats
        x = feats.transpose(1, 2).unsqueeze(1)  # (B, T, F) -> (B, 1, F, T)
        for _ in range(self.cfg.freq_masks):
            x = self.freq_mask(x)
        x = x.squeeze(1).transpose(1, 2).clone()  # (B, 1, F, T) -> (B, T, F)
        for i, length in enumerate(feat_lens.tolist()):
            width = min(self.cfg.time_mask_width, int(self.cfg.time_mask_ratio * length))
            if width < 1:
                continue
            for _ in range(self.cfg.time_masks):
                # mask_along_axis wants (C, F, T): mask axis 2 of (1, F, T_i)
                view = x[i, :length].T.unsqueeze(0)  # (T_i, F) -> (1, F, T_i)
                x[i, :length] = AF.mask_along_axis(view, width, 0.0, 2)[0].T
        return x
