"""Training-time augmentation: speed perturbation, a room (reverberation), additive noise and
a microphone's band on waveforms (in the data-loading workers), VTLP and SpecAugment on
features (on the training device).

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
    "Channel",
    "SpecAugment",
    "add_noise",
    "band_limit",
    "reverberate",
    "room_impulse",
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
    # A room: the probability of convolving an utterance with a synthetic impulse response
    # (decaying noise behind the direct path) of a reverberation time drawn in [rt60_min, rt60_max]
    reverb_prob: float = 0.0
    rt60_min: float = 0.2  # seconds for the tail to fall 60 dB
    rt60_max: float = 0.8
    # A microphone or line: the probability of a band limit, high-pass at a cutoff drawn in
    # [highpass_min, highpass_max] Hz and low-pass in [lowpass_min, lowpass_max] Hz
    band_prob: float = 0.0
    highpass_min: float = 50.0
    highpass_max: float = 300.0
    lowpass_min: float = 3000.0
    lowpass_max: float = 7000.0

    def __post_init__(self) -> None:
        self.speeds = list(self.speeds)
        if not self.speeds:
            raise ValueError("augment.speeds must hold at least one factor")
        check_ranges("augment", self, _AUGMENT_RANGES)
        for low, high in _AUGMENT_INTERVALS:
            if getattr(self, low) > getattr(self, high):
                raise ValueError(
                    f"augment.{low} {getattr(self, low)} > {high} {getattr(self, high)}"
                )

    def active(self, epoch: int) -> bool:
        """Whether augmentation applies in 0-based `epoch`."""
        return epoch >= self.start_epoch

    @property
    def waveform_enabled(self) -> bool:
        return self.speed_perturb or self.noise_prob > 0 or self.channel_enabled

    @property
    def channel_enabled(self) -> bool:
        return self.reverb_prob > 0 or self.band_prob > 0

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
    "reverb_prob": (0.0, 1.0),
    "rt60_min": (0.05, 3.0),
    "rt60_max": (0.05, 3.0),
    "band_prob": (0.0, 1.0),
    "highpass_min": (1.0, 4000.0),
    "highpass_max": (1.0, 4000.0),
    "lowpass_min": (500.0, 7900.0),  # below the Nyquist frequency of 16 kHz audio
    "lowpass_max": (500.0, 7900.0),
}
# (lowest, highest) pairs of [augment] that draw between them
_AUGMENT_INTERVALS = (
    ("snr_min", "snr_max"),
    ("rt60_min", "rt60_max"),
    ("highpass_min", "highpass_max"),
    ("lowpass_min", "lowpass_max"),
    ("highpass_max", "lowpass_min"),  # a band, not a notch
)
# The direct path's energy over the reverberant tail's, dB, drawn per room
_DIRECT_TO_REVERB_DB = (0.0, 10.0)


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


def room_impulse(rt60: float, drr_db: float, sample_rate: int, rng: np.random.Generator):
    """(L,) impulse response of a synthetic room, L = rt60 seconds: a unit direct path, then
    Gaussian noise decaying 60 dB over `rt60` (Polack's model), scaled so that the direct
    path carries `drr_db` dB more energy than the tail."""
    length = max(2, int(rt60 * sample_rate))
    t = np.arange(1, length) / sample_rate
    tail = rng.standard_normal(length - 1) * np.exp(-3 * np.log(10) * t / rt60)
    tail *= math.sqrt(10 ** (-drr_db / 10) / max(float(np.sum(tail**2)), 1e-12))
    return torch.from_numpy(np.concatenate([[1.0], tail]).astype(np.float32))


def reverberate(waveform: torch.Tensor, impulse: torch.Tensor) -> torch.Tensor:
    """(S,) convolved with (L,) -> (S,): the tail past the end is cut, the level kept."""
    wet = AF.fftconvolve(waveform, impulse)[: len(waveform)]
    gain = waveform.square().mean().sqrt() / wet.square().mean().sqrt().clamp(min=1e-10)
    return wet * gain


def band_limit(waveform: torch.Tensor, sample_rate: int, low: float, high: float) -> torch.Tensor:
    """(S,) -> (S,) through a high-pass at `low` Hz and a low-pass at `high` Hz, each two
    biquads in a row (24 dB per octave), as a small microphone or a phone line."""
    for _ in range(2):
        waveform = AF.highpass_biquad(waveform, sample_rate, low)
        waveform = AF.lowpass_biquad(waveform, sample_rate, high)
    return waveform


@dataclass(frozen=True)
class Channel:
    """What one utterance goes through after its speed: a room (seconds of reverberation
    time and the direct-to-reverberant ratio in dB) and a band (high-pass, low-pass Hz);
    None where it does not."""

    room: tuple[float, float] | None = None
    band: tuple[float, float] | None = None

    @property
    def touched(self) -> bool:
        return self.room is not None or self.band is not None


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
        channel, channel_rng = self.channel(index)
        if channel.room is not None:
            rt60, drr_db = channel.room
            impulse = room_impulse(rt60, drr_db, self.sample_rate, channel_rng)
            waveform = reverberate(waveform, impulse)
        if rng.random() < self.cfg.noise_prob and self.cfg.active(self.epoch):
            snr = float(rng.uniform(self.cfg.snr_min, self.cfg.snr_max))
            waveform = add_noise(waveform, self._noise(len(waveform), rng), snr)
        if channel.band is not None:
            waveform = band_limit(waveform, self.sample_rate, *channel.band)
        return (waveform, *targets)

    def draws_waveform(self, index: int) -> bool:
        """Whether utterance `index` gets noise, a room or a band in this epoch: what needs
        its samples, not frames (the draws `__getitem__` makes)."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        noisy = rng.random() < self.cfg.noise_prob and self.cfg.active(self.epoch)
        return noisy or self.channel(index)[0].touched

    def channel(self, index: int) -> tuple[Channel, np.random.Generator]:
        """Utterance `index`'s room and band in this epoch, and the generator that draws its
        impulse response: a stream of its own, so noise draws are those of a run without."""
        rng = np.random.default_rng([self.seed, self.epoch, index, 2])
        if not (self.cfg.channel_enabled and self.cfg.active(self.epoch)):
            return Channel(), rng
        cfg = self.cfg
        room = band = None
        if rng.random() < cfg.reverb_prob:
            room = (float(rng.uniform(cfg.rt60_min, cfg.rt60_max)),
                    float(rng.uniform(*_DIRECT_TO_REVERB_DB)))  # fmt: skip
        if rng.random() < cfg.band_prob:
            band = (float(rng.uniform(cfg.highpass_min, cfg.highpass_max)),
                    float(rng.uniform(cfg.lowpass_min, cfg.lowpass_max)))  # fmt: skip
        return Channel(room, band), rng

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
