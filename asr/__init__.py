"""asr: CTC speech recognition with log-mel features and a bidirectional LSTM/GRU.

import asr
recognizer = asr.load_model("exp/quickstart")  # no argument: the bundled model
print(recognizer.transcribe("speech.wav")[0].text)

The names below are imported on first use: `import asr` loads nothing else, and
transcription never loads torch when the model runs on onnxruntime (asr/transcribe.py).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "AudioError": "asr.audio",
    "CheckpointError": "asr.checkpoint",
    "DecodingOptions": "asr.decode",
    "Hypothesis": "asr.decode",
    "Recognizer": "asr.transcribe",
    "SegmentConfig": "asr.inference.segment",
    "Transcript": "asr.transcribe",
    "Vocabulary": "asr.text",
    "WordTiming": "asr.inference.align",
    "load_audio": "asr.audio",
    "load_model": "asr.transcribe",
    "normalize_text": "asr.text",
}

__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'asr' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
