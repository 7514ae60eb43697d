"""The light runtime: an exported ONNX graph through onnxruntime, features in numpy; no torch.

One of the two interchangeable log-prob runners behind `asr.transcribe.Recognizer` (the
other is `asr/inference/runtime_torch.py`). The graph (`asr export --onnx`) is the acoustic model
alone, (B, T, n_mels) features and (B,) lengths to (B, T', V) log-probs and (B,) lengths;
it describes itself in one metadata entry, "asr": the JSON of the checkpoint's config,
vocabulary and feature statistics, so loading it needs no torch and runs no code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from asr.checkpoint import CheckpointError
from asr.config import ConfigError, from_dict
from asr.frames import frame_seconds
from asr.logmel import FeatureConfig, LogMelExtractor
from asr.text import Vocabulary

__all__ = ["GRAPH_INPUTS", "GRAPH_OUTPUTS", "OnnxRunner", "graph_metadata", "read_metadata"]

GRAPH_INPUTS = ("feats", "feat_lens")  # (B, T, n_mels) float32, (B,) int64
GRAPH_OUTPUTS = ("log_probs", "out_lens")  # (B, T', V) float32, (B,) int64
METADATA_KEY = "asr"
_FORMAT, _VERSION = "asr-onnx", 1


def graph_metadata(config: dict, vocab: list[str], mean: list[float], std: list[float]) -> str:
    """The JSON an exported graph carries: config (features, model), vocabulary, statistics."""
    record = {"format": _FORMAT, "version": _VERSION, "config": config, "vocab": vocab}
    record["features"] = {"mean": mean, "std": std}
    return json.dumps(record)


def read_metadata(text: str | None, path: str | Path) -> dict:
    """The record `graph_metadata` wrote; CheckpointError naming `path` when it is not one."""
    try:
        record = json.loads(text) if text is not None else None
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: unreadable '{METADATA_KEY}' metadata ({err})") from err
    if not isinstance(record, dict) or record.get("format") != _FORMAT:
        raise CheckpointError(f"{path}: not an asr ONNX graph (no '{_FORMAT}' metadata)")
    if record.get("version") != _VERSION:
        raise CheckpointError(f"{path}: graph format version {record.get('version')}, expected 1")
    return record


class OnnxRunner:
    """Waveforms -> log-probs with numpy log-mel features and an onnxruntime session."""

    def __init__(self, session, extractor: LogMelExtractor, vocab: Vocabulary, subsampling: int):
        self.session = session  # onnxruntime.InferenceSession of the exported graph
        self.extractor = extractor
        self.vocab = vocab
        self.subsampling = subsampling  # the model's time reduction, for word times
        cfg = extractor.cfg
        self.sample_rate = cfg.sample_rate  # Hz the waveforms must have
        self.frame_seconds = frame_seconds(cfg.hop_length, subsampling, cfg.sample_rate)

    @classmethod
    def from_file(cls, path: str | Path, threads: int = 0) -> OnnxRunner:
        """Load an exported graph; `threads` 0: onnxruntime's default (one per core)."""
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        # onnxruntime's arena keeps every block it ever allocated: over a long recording
        # decoded in batches of chunks its peak grew with the file (5 min 546 MiB, 15 min
        # 829 MiB); without it the peak stays that of one batch (benchmarks/bad_input.py).
        options.enable_cpu_mem_arena = False
        try:
            session = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises its own types for unreadable files
            raise CheckpointError(f"{path}: not a loadable ONNX graph ({err})") from err
        metadata = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        record = read_metadata(metadata, path)
        try:
            cfg = from_dict(FeatureConfig, record["config"]["features"], "features")
            stats = record["features"]
            extractor = LogMelExtractor(cfg, np.array(stats["mean"]), np.array(stats["std"]))
            vocab = Vocabulary.from_list(record["vocab"])
            subsampling = int(record["config"]["model"]["subsampling"])
        except (KeyError, TypeError, ValueError, ConfigError) as err:
            raise CheckpointError(f"{path}: inconsistent graph metadata ({err})") from err
        runner = cls(session, extractor, vocab, subsampling)
        runner.check_output(path)
        return runner

    def check_output(self, path: str | Path) -> None:
        """Run the graph once on a second of low noise: its log-probs must be (B, T', V)
        for the vocabulary it carries, and finite. A graph that disagrees (another
        vocabulary's width, a damaged weight) would decode to garbage or to nothing."""
        probe = np.random.default_rng(0).normal(0, 1e-3, self.sample_rate).astype(np.float32)
        try:
            log_probs, _ = self.log_probs([probe])
        except Exception as err:  # onnxruntime's own errors for a graph that cannot run
            raise CheckpointError(f"{path}: the graph does not run ({err})") from err
        if log_probs.ndim != 3 or log_probs.shape[-1] != len(self.vocab):
            raise CheckpointError(
                f"{path}: the graph's output has shape {list(log_probs.shape)}, not "
                f"(batch, frames, {len(self.vocab)}) for its vocabulary of {len(self.vocab)}"
            )
        if not np.isfinite(log_probs).all():
            raise CheckpointError(f"{path}: the graph's log-probs are not finite (NaN or inf)")

    def log_probs(self, waveforms: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Mono waveforms at `sample_rate` -> (B, T', V) float32 log-probs, (B,) lengths."""
        wave_lens = np.array([len(w) for w in waveforms], dtype=np.int64)  # (B,)
        batch = np.zeros((len(waveforms), int(wave_lens.max())), dtype=np.float32)  # (B, S)
        for b, wave in enumerate(waveforms):
            batch[b, : len(wave)] = wave
        feats, feat_lens = self.extractor(batch, wave_lens)  # (B, T, n_mels), (B,)
        inputs = dict(zip(GRAPH_INPUTS, (feats, feat_lens), strict=True))
        log_probs, out_lens = self.session.run(list(GRAPH_OUTPUTS), inputs)
        return log_probs, out_lens
