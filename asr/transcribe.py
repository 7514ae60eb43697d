"""Transcription: a trained checkpoint rebuilt into features + model + decoder.

import asr
recognizer = asr.load_model("exp/quickstart")
print(recognizer.transcribe(["a.wav", "b.flac"])[0].text)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from asr.align import WordTiming, align_words, frame_seconds
from asr.audio import audio_info, load_audio
from asr.checkpoint import CheckpointError, load_checkpoint
from asr.config import ConfigError, from_dict
from asr.data import pad_sequences
from asr.decode import DecodingOptions, Hypothesis, decode
from asr.device import resolve_device
from asr.features import FeatureConfig, FeatureExtractor
from asr.model import AcousticModel, ModelConfig
from asr.model_folder import default_decoding
from asr.segment import SegmentConfig, iter_chunks
from asr.text import Vocabulary

__all__ = ["DEFAULT_MODEL", "Recognizer", "Transcript", "load_model", "resolve_model_path"]

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "data" / "models" / "en-default"

AudioInput = str | Path | np.ndarray


@dataclass
class Transcript:
    source: str  # file path, or "<array N>" for an in-memory waveform
    text: str
    duration: float  # seconds of audio
    # Decoder output: token ids, frames, score. For a recording decoded in chunks: the
    # stitched text and the sum of the chunks' scores, without token ids.
    hypothesis: Hypothesis
    words: list[WordTiming] = field(default_factory=list)  # timed words, when requested
    chunks: int = 1  # pieces a long recording was decoded in


class Recognizer:
    """Feature extractor, acoustic model and vocabulary from one checkpoint."""

    def __init__(
        self,
        extractor: FeatureExtractor,
        model: AcousticModel,
        vocab: Vocabulary,
        device: torch.device,
        source: str = "",
        default_options: DecodingOptions = DecodingOptions(),
    ) -> None:
        self.extractor = extractor.to(device).eval()
        self.model = model.to(device).eval()
        self.vocab = vocab
        self.device = device
        self.source = source
        self.default_options = default_options  # used when transcribe() is given no options

    @property
    def sample_rate(self) -> int:
        return self.extractor.cfg.sample_rate

    @property
    def frame_seconds(self) -> float:
        """Seconds between two output frames (log-prob rows) of the model."""
        cfg = self.extractor.cfg
        return frame_seconds(cfg.hop_length, self.model.cfg.subsampling, cfg.sample_rate)

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
        options: DecodingOptions | None = None,
        batch_size: int = 8,
        word_timestamps: bool = False,
        segment: SegmentConfig = SegmentConfig(),
    ) -> list[Transcript]:
        """Transcribe files or waveforms (mono float arrays at `sample_rate`), in input order.

        Inputs longer than `segment.max_seconds` are split at pauses, decoded `batch_size`
        chunks at a time and stitched (see `transcribe_long`); shorter ones are batched.
        Without `options`, the model folder's own settings (`default_options`) apply.
        """
        options = self.default_options if options is None else options
        if isinstance(inputs, str | Path | np.ndarray):
            inputs = [inputs]
        results: list[Transcript | None] = [None] * len(inputs)
        short = []
        for i, item in enumerate(inputs):
            if self._duration(item) > segment.max_seconds:
                long = self.transcribe_long(item, options, batch_size, word_timestamps, segment)
                long.source = _source(item, i)
                results[i] = long
            else:
                short.append((i, item))
        for start in range(0, len(short), batch_size):
            chunk = short[start : start + batch_size]
            waves = [self._waveform(x) for _, x in chunk]
            for (i, x), wave, (hyp, words) in zip(
                chunk, waves, self._decode(waves, options, word_timestamps), strict=True
            ):
                duration = len(wave) / self.sample_rate
                results[i] = Transcript(_source(x, i), hyp.text, duration, hyp, words)
        return results

    def transcribe_long(
        self,
        item: AudioInput,
        options: DecodingOptions | None = None,
        batch_size: int = 8,
        word_timestamps: bool = False,
        segment: SegmentConfig = SegmentConfig(),
    ) -> Transcript:
        """One recording of any length: read in chunks split at pauses, decoded in batches,
        word times shifted by each chunk's offset. Memory is bounded by the chunk size."""
        options = self.default_options if options is None else options
        source = item if isinstance(item, np.ndarray) else Path(item)
        texts, words, samples, count, score = [], [], 0, 0, 0.0
        batch: list = []
        for chunk in iter_chunks(source, self.sample_rate, segment):
            batch.append(chunk)
            if len(batch) == batch_size:
                score += self._decode_chunks(batch, options, word_timestamps, texts, words)
                batch = []
            samples, count = chunk.start + len(chunk.wave), count + 1
        if batch:
            score += self._decode_chunks(batch, options, word_timestamps, texts, words)
        text = " ".join(t for t in texts if t)
        hyp = Hypothesis(text, score=score)
        return Transcript(_source(item, 0), text, samples / self.sample_rate, hyp, words, count)

    def _decode_chunks(self, batch, options, word_timestamps, texts, words) -> float:
        """Decode chunks, appending to `texts` and `words`; return the summed score."""
        decoded = self._decode([c.wave for c in batch], options, word_timestamps, batch)
        for hyp, chunk_words in decoded:
            texts.append(hyp.text)
            words += chunk_words
        return sum(hyp.score for hyp, _ in decoded)

    def _decode(self, waves, options, word_timestamps, chunks=None):
        """(hypothesis, timed words) per waveform; `chunks` give the time offsets."""
        log_probs, out_lens = self.log_probs(waves)
        log_probs, out_lens = log_probs.cpu(), out_lens.cpu()
        hyps = decode(log_probs, out_lens, self.vocab, options)
        results = []
        for b, hyp in enumerate(hyps):
            words = []
            if word_timestamps:
                offset = chunks[b].start / self.sample_rate if chunks else 0.0
                frames = log_probs[b, : int(out_lens[b])]
                words = align_words(
                    frames, hyp.token_ids, self.vocab, self.frame_seconds, hyp.timesteps, offset
                )
                # The last frame may reach past the final sample: end at the audio's end.
                end = offset + len(waves[b]) / self.sample_rate
                for word in words:
                    word.end = min(word.end, end)
                    word.start = min(word.start, word.end)
            results.append((hyp, words))
        return results

    def _duration(self, item: AudioInput) -> float:
        if isinstance(item, np.ndarray):
            return len(item) / self.sample_rate
        return audio_info(item).duration

    def _waveform(self, item: AudioInput) -> np.ndarray:
        if isinstance(item, np.ndarray):
            if item.ndim != 1:
                raise ValueError(f"waveforms must be mono (S,), got shape {item.shape}")
            return item.astype(np.float32, copy=False)
        return load_audio(item, self.sample_rate)


def _source(item: AudioInput, index: int) -> str:
    return str(item) if not isinstance(item, np.ndarray) else f"<array {index}>"


def load_model(path: str | Path | None = None, device: str = "auto") -> Recognizer:
    """A Recognizer from a checkpoint file or model folder; the bundled model if None.

    A folder's decoding.json and lm/ (see model_folder.py) become the Recognizer's default
    decoding options: the bundled model decodes with its LM unless told otherwise.
    """
    path = resolve_model_path(path)
    recognizer = Recognizer.from_checkpoint(path, device)
    recognizer.default_options = DecodingOptions(**default_decoding(path))
    return recognizer


def resolve_model_path(path: str | Path | None) -> Path:
    """`path` itself, or the bundled model when None (a clear error when it is missing)."""
    if path is not None:
        return Path(path)
    if not (DEFAULT_MODEL / "model.pt").is_file():
        raise CheckpointError(
            f"no bundled model at {DEFAULT_MODEL}; pass a model path (e.g. exp/quickstart)"
        )
    return DEFAULT_MODEL
