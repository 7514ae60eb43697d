"""Transcription: a trained checkpoint rebuilt into features + model + decoder.

import asr
recognizer = asr.load_model("exp/quickstart")
print(recognizer.transcribe(["a.wav", "b.flac"])[0].text)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from asr.audio import load_audio
from asr.checkpoint import CheckpointError, load_checkpoint
from asr.config import ConfigError, from_dict
from asr.data import pad_sequences
from asr.decode import DecodingOptions, Hypothesis, decode
from asr.device import resolve_device
from asr.features import FeatureConfig, FeatureExtractor
from asr.model import AcousticModel, ModelConfig
from asr.text import Vocabulary

__all__ = ["DEFAULT_MODEL", "Recognizer", "Transcript", "load_model"]

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "data" / "models" / "en-default"

AudioInput = str | Path | np.ndarray


@dataclass
class Transcript:
    source: str  # file path, or "<array N>" for an in-memory waveform
    text: str
    duration: float  # seconds of audio
    hypothesis: Hypothesis  # decoder output: token ids, frames, score


class Recognizer:
    """Feature extractor, acoustic model and vocabulary from one checkpoint."""

    def __init__(
        self,
        extractor: FeatureExtractor,
        model: AcousticModel,
        vocab: Vocabulary,
        device: torch.device,
        source: str = "",
    ) -> None:
        self.extractor = extractor.to(device).eval()
        self.model = model.to(device).eval()
        self.vocab = vocab
        self.device = device
        self.source = source

    @property
    def sample_rate(self) -> int:
        return self.extractor.cfg.sample_rate

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto") -> Recognizer:
        record = load_checkpoint(path)
        try:
            config = record["config"]
            feature_cfg = from_dict(FeatureConfig, config["features"], "features")
            model_cfg = from_dict(ModelConfig, config["model"], "model")
            vocab = Vocabulary.from_list(record["vocab"])
            extractor = FeatureExtractor(feature_cfg)
            extractor.set_global_stats(record["features"]["mean"], record["features"]["std"])
            model = AcousticModel(model_cfg, feature_cfg.n_mels, len(vocab))
            model.load_state_dict({k: v.float() for k, v in record["model"].items()})
        except (KeyError, TypeError, ValueError, RuntimeError, ConfigError) as err:
            raise CheckpointError(f"{path}: inconsistent checkpoint ({err})") from err
        return cls(extractor, model, vocab, resolve_device(device), str(path))

    @torch.no_grad()
    def log_probs(self, waveforms: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Mono waveforms at `sample_rate` -> (B, T', V) log-probs, (B,) output lengths."""
        batch, wave_lens = pad_sequences([torch.from_numpy(w) for w in waveforms])
        feats, feat_lens = self.extractor(batch.to(self.device), wave_lens.to(self.device))
        return self.model(feats, feat_lens)

    def transcribe(
        self,
        inputs: Sequence[AudioInput] | AudioInput,
        options: DecodingOptions = DecodingOptions(),
        batch_size: int = 8,
    ) -> list[Transcript]:
        """Transcribe files or waveforms (mono float arrays at `sample_rate`), in input order."""
        if isinstance(inputs, str | Path | np.ndarray):
            inputs = [inputs]
        results: list[Transcript | None] = [None] * len(inputs)
        for start in range(0, len(inputs), batch_size):
            chunk = list(enumerate(inputs))[start : start + batch_size]
            waves = [self._waveform(x) for _, x in chunk]
            log_probs, out_lens = self.log_probs(waves)
            for (i, x), wave, hyp in zip(
                chunk, waves, decode(log_probs, out_lens, self.vocab, options), strict=True
            ):
                source = str(x) if not isinstance(x, np.ndarray) else f"<array {i}>"
                results[i] = Transcript(source, hyp.text, len(wave) / self.sample_rate, hyp)
        return results

    def _waveform(self, item: AudioInput) -> np.ndarray:
        if isinstance(item, np.ndarray):
            if item.ndim != 1:
                raise ValueError(f"waveforms must be mono (S,), got shape {item.shape}")
            return item.astype(np.float32, copy=False)
        return load_audio(item, self.sample_rate)


def load_model(path: str | Path | None = None, device: str = "auto") -> Recognizer:
    """A Recognizer from a checkpoint file or experiment folder; the bundled model if None."""
    if path is None:
        if not (DEFAULT_MODEL / "model.pt").is_file():
            raise CheckpointError(
                f"no bundled model at {DEFAULT_MODEL}; pass a model path (e.g. exp/quickstart)"
            )
        path = DEFAULT_MODEL
    return Recognizer.from_checkpoint(path, device)
