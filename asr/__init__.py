"""asr: CTC speech recognition with log-mel features and a bidirectional LSTM/GRU.

    import asr
    recognizer = asr.load_model("exp/quickstart")  # no argument: the bundled model
    print(recognizer.transcribe("speech.wav")[0].text)
    result = asr.evaluate_manifest(recognizer, "dev.jsonl")  # WER/CER: result.words.rate
    trainer = asr.train("recipes/quickstart/config.toml", "exp/quickstart")

The names below are imported on first use: `import asr` loads nothing else, and
transcription never loads torch when the model runs on onnxruntime
(asr/inference/recognizer.py).
The pipeline and where each part lives: docs/architecture.md.
"""

from __future__ import annotations

import functools

from asr.lazy import lazy_attribute, lazy_names

_EXPORTS = {
    "AudioError": "asr.audio",
    "CheckpointError": "asr.checkpoint",
    "DecodingOptions": "asr.decode",
    "ErrorCounts": "asr.metrics",
    "EvaluationResult": "asr.evaluate",
    "ExperimentConfig": "asr.training.config",
    "Hypothesis": "asr.decode",
    "Recognizer": "asr.inference.recognizer",
    "SegmentConfig": "asr.inference.segment",
    "Transcript": "asr.inference.recognizer",
    "Vocabulary": "asr.text",
    "WordTiming": "asr.inference.align",
    "error_counts": "asr.metrics",
    "evaluate_manifest": "asr.evaluate",
    "fit": "asr.training.loop",
    "load_audio": "asr.audio",
    "load_model": "asr.inference.recognizer",
    "normalize_text": "asr.text",
    "resolve_decoding": "asr.inference.model_folder",
    "train": "asr.training.loop",
}

__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


__getattr__ = functools.partial(lazy_attribute, globals(), _EXPORTS)
__dir__ = functools.partial(lazy_names, globals(), _EXPORTS)
