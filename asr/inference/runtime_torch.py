"""The PyTorch runtime: a checkpoint's feature extractor and acoustic model on a device.

One of the two interchangeable log-prob runners behind `asr.inference.recognizer.Recognizer` (the
other is `asr/inference/runtime_onnx.py`): waveforms in, numpy log-probs and output lengths out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from asr.checkpoint import CheckpointError, load_checkpoint
from asr.config import ConfigError, from_dict
from asr.device import resolve_device
from asr.features import FeatureConfig, FeatureExtractor, pad_sequences
from asr.frames import StreamWindow, frame_seconds
from asr.logmel import LogMelExtractor
from asr.model import AcousticModel, ModelConfig, drop_aux_head
from asr.text import Vocabulary

__all__ = ["TorchRunner", "load_torch_model"]


def load_torch_model(path: str | Path) -> tuple[FeatureExtractor, AcousticModel, Vocabulary]:
    """The feature extractor (with its statistics), fp32 model and vocabulary of a
    checkpoint file or folder (folder/model.pt); CheckpointError naming it otherwise."""
    record = load_checkpoint(path)
    try:
        config = record["config"]
        feature_cfg = from_dict(FeatureConfig, config["features"], "features")
        model_config, weights = drop_aux_head(config["model"], record["model"])
        model_cfg = from_dict(ModelConfig, model_config, "model")
        vocab = Vocabulary.from_list(record["vocab"])
        extractor = FeatureExtractor(feature_cfg)
        extractor.set_global_stats(record["features"]["mean"], record["features"]["std"])
        model = AcousticModel(model_cfg, feature_cfg.n_mels, len(vocab))
        model.load_state_dict({k: v.float() for k, v in weights.items()})
    except (KeyError, TypeError, ValueError, RuntimeError, ConfigError) as err:
        raise CheckpointError(f"{path}: inconsistent checkpoint ({err})") from err
    return extractor.eval(), model.eval(), vocab


class TorchRunner:
    """Waveforms -> log-probs with torch: FeatureExtractor, then AcousticModel."""

    def __init__(
        self,
        extractor: FeatureExtractor,
        model: AcousticModel,
        vocab: Vocabulary,
        device: str | torch.device = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.extractor = extractor.to(self.device).eval()
        self.model = model.to(self.device).eval()
        self.vocab = vocab
        cfg = extractor.cfg
        self.sample_rate = cfg.sample_rate  # Hz the waveforms must have
        # seconds between two output frames (log-prob rows) of the model
        self.frame_seconds = frame_seconds(cfg.hop_length, model.cfg.subsampling, cfg.sample_rate)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto") -> TorchRunner:
        return cls(*load_torch_model(path), resolve_device(device))

    @torch.no_grad()
    def log_probs(self, waveforms: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Mono waveforms at `sample_rate` -> (B, T', V) float32 log-probs, (B,) lengths."""
        batch, wave_lens = pad_sequences([torch.from_numpy(w) for w in waveforms])
        feats, feat_lens = self.extractor(batch.to(self.device), wave_lens.to(self.device))
        log_probs, out_lens = self.model(feats, feat_lens)
        return log_probs.float().cpu().numpy(), out_lens.cpu().numpy()

    # --- streaming (asr/inference/stream.py): one latency-controlled step at a time -----

    @property
    def stream_window(self) -> StreamWindow | None:
        return self.model.stream_window

    @property
    def stream_features(self) -> LogMelExtractor:
        """The numpy twin of the extractor (a stream's features are computed as they come)."""
        mean, std = self.extractor.mean.cpu().numpy(), self.extractor.std.cpu().numpy()
        return LogMelExtractor(self.extractor.cfg, mean, std)

    def initial_states(self) -> np.ndarray:
        return self.model.initial_states(1).numpy()

    @torch.no_grad()
    def stream_step(self, feats, first: int, last: int, states) -> tuple[np.ndarray, ...]:
        """(1, W, n_mels) window, valid frames [first, last), (L, S, 1, H) states ->
        (chunk, V) float32 log-probs, the new states."""
        log_probs, states = self.model.stream_step(
            torch.from_numpy(feats).to(self.device),
            torch.tensor([first], device=self.device),
            torch.tensor([last], device=self.device),
            torch.from_numpy(states).to(self.device),
        )
        return log_probs[0].float().cpu().numpy(), states.cpu().numpy()
