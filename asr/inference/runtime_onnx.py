"""The light runtime: an exported ONNX graph through onnxruntime, features in numpy; no torch.

A streaming model's graph is one latency-controlled step (STEP_INPUTS, STEP_OUTPUTS, as
`AcousticModel.stream_step`); whole files run through it step by step
(`stream.AcousticStream`), which equals the model on the whole file.

One of the two interchangeable log-prob runners behind `asr.inference.recognizer.Recognizer` (the
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
from asr.frames import StreamWindow, frame_seconds
from asr.logmel import FeatureConfig, LogMelExtractor
from asr.model_config import ModelConfig
from asr.text import Vocabulary

__all__ = [
    "GRAPH_INPUTS",
    "GRAPH_OUTPUTS",
    "STEP_INPUTS",
    "STEP_OUTPUTS",
    "OnnxRunner",
    "graph_metadata",
    "read_metadata",
]

GRAPH_INPUTS = ("feats", "feat_lens")  # (B, T, n_mels) float32, (B,) int64
GRAPH_OUTPUTS = ("log_probs", "out_lens")  # (B, T', V) float32, (B,) int64
# The streaming step (a latency-controlled model's model.onnx, in place of the whole-file
# graph): (1, W, n_mels) float32 window, (1,) int64 first and last (exclusive) valid frame,
# (L, S, 1, H) float32 forward states -> (1, chunk, V) log-probs, states.
STEP_INPUTS = ("feats", "first", "last", "states")
STEP_OUTPUTS = ("log_probs", "states_out")
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

    def __init__(
        self, session, extractor: LogMelExtractor, vocab: Vocabulary, subsampling: int
    ) -> None:
        self.session = session  # onnxruntime.InferenceSession of the exported graph
        self.stream_window: StreamWindow | None = None  # a streaming step graph's window
        self.state_shape = (0, 0, 1, 0)  # (L, S, 1, H) of its carried states
        self.stream_features = extractor
        self.extractor = extractor
        self.vocab = vocab
        self.subsampling = subsampling  # the model's time reduction, for word times
        cfg = extractor.cfg
        self.sample_rate = cfg.sample_rate  # Hz the waveforms must have
        self.frame_seconds = frame_seconds(cfg.hop_length, subsampling, cfg.sample_rate)

    @classmethod
    def from_file(cls, path: str | Path, threads: int = 0) -> OnnxRunner:
        """Load an exported graph; `threads` 0: onnxruntime's default (one per core)."""
        session = cpu_session(path, threads)
        metadata = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        record = read_metadata(metadata, path)
        try:
            config = record["config"]
            cfg = from_dict(FeatureConfig, config["features"], "features")
            model = from_dict(ModelConfig, config["model"], "model")  # the geometry
            stats = record["features"]
            extractor = LogMelExtractor(cfg, np.array(stats["mean"]), np.array(stats["std"]))
            vocab = Vocabulary.from_list(record["vocab"])
        except (KeyError, TypeError, ValueError, ConfigError) as err:
            raise CheckpointError(f"{path}: inconsistent graph metadata ({err})") from err
        runner = cls(session, extractor, vocab, model.subsampling)
        runner.stream_window = model.stream_window  # a streaming step graph's, else None
        runner.state_shape = model.state_shape(1)
        runner.check_output(path)
        return runner

    def initial_states(self) -> np.ndarray:
        """(L, S, 1, H) zero forward states of the streaming step."""
        return np.zeros(self.state_shape, np.float32)

    def stream_step(self, feats, first: int, last: int, states) -> tuple[np.ndarray, ...]:
        """(1, W, n_mels) window, valid frames [first, last), (L, S, 1, H) states ->
        (chunk, V) float32 log-probs, the new states."""
        inputs = dict(
            zip(STEP_INPUTS, (feats, np.array([first]), np.array([last]), states), strict=True)
        )
        log_probs, states = self.session.run(list(STEP_OUTPUTS), inputs)
        return log_probs[0], states

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
        if self.stream_window is not None:
            return self._stepped(feats, feat_lens)
        inputs = dict(zip(GRAPH_INPUTS, (feats, feat_lens), strict=True))
        log_probs, out_lens = self.session.run(list(GRAPH_OUTPUTS), inputs)
        return log_probs, out_lens

    def _stepped(self, feats: np.ndarray, feat_lens: np.ndarray) -> tuple[np.ndarray, ...]:
        """A streaming graph over whole utterances, one at a time, step by step."""
        from asr.inference.stream import AcousticStream

        rows = []
        for b, length in enumerate(feat_lens.tolist()):
            stream = AcousticStream(self)
            rows.append(np.concatenate([stream.accept(feats[b, :length]), stream.finish()]))
        out_lens = np.array([len(r) for r in rows], dtype=np.int64)
        log_probs = np.zeros((len(rows), int(out_lens.max()), len(self.vocab)), np.float32)
        for b, r in enumerate(rows):
            log_probs[b, : len(r)] = r
        return log_probs, out_lens


def cpu_session(path: str | Path, threads: int = 1, error: type[Exception] = CheckpointError):
    """An onnxruntime session of the graph at `path` on the CPU (every ONNX model of the
    toolkit loads through here); `error` when it cannot be loaded."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # onnxruntime's arena keeps every block it ever allocated: over a long recording
    # decoded in batches of chunks its peak grew with the file (5 min 546 MiB, 15 min
    # 829 MiB); without it the peak stays that of one batch (benchmarks/bad_input.py).
    options.enable_cpu_mem_arena = False
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own types for unreadable files
        raise error(f"{path}: not a loadable ONNX graph ({err})") from err
